package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/profile"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// planEntry is one collection of a plan.
type planEntry struct {
	Order      int             `json:"load_order"`
	Module     string          `json:"module"`
	Collection string          `json:"collection"`
	Source     string          `json:"source"`
	Tier       string          `json:"tier"`
	Filter     json.RawMessage `json:"filter"`
	AsOf       time.Time       `json:"as_of"`
	Estimate   int64           `json:"source_estimate"`
	EstimateBy string          `json:"estimate_by"`
	Bytes      int64           `json:"source_bytes"`
	Ranges     int             `json:"ranges"`
	Tables     []string        `json:"target_tables"`
	Missing    bool            `json:"missing,omitempty"`
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from, to, module, asOfS string
	var colls multiFlag
	var jsonOut, doProfile bool
	var rangeDocs int
	var sample int64
	fs.StringVar(&from, "from", "", "source: mongodb:// URI, mongodump directory or archive (default $MONGO_URI)")
	fs.StringVar(&to, "to", "", "target PostgreSQL DSN: with --profile, lets module rules that depend on loaded parents be judged")
	fs.StringVar(&module, "module", "", "modules")
	fs.Var(&colls, "collection", "DB.COLL[=SCHEMA.TABLE] (repeatable)")
	fs.StringVar(&asOfS, "as-of", "", "RFC 3339 (default now)")
	fs.IntVar(&rangeDocs, "range-docs", live.DefaultRangeDocs, "documents per planned range of a live collection")
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	fs.BoolVar(&doProfile, "profile", false, "scan each collection: field paths with their BSON types, and what each mapping rule would reject")
	fs.Int64Var(&sample, "sample", 0, "with --profile, read at most this many documents per collection (0 = all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	asOf, err := tiers.ParseAsOf(asOfS, time.Now())
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	sel, err := selectCollections(module, colls, asOf, transforms.Options{}, nil)
	if err != nil {
		return err
	}
	src, err := openSource(ctx, from, rangeDocs)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	var entries []planEntry
	for i, j := range sel.jobs {
		e := planEntry{Order: i + 1, Module: j.Module, Collection: j.Name, Source: j.NS.String(), Tier: j.Tier, Filter: j.Filter, AsOf: asOf}
		for _, t := range j.Transform.Tables() {
			e.Tables = append(e.Tables, t.FullName())
		}
		p, err := src.Plan(ctx, j.NS)
		switch {
		case err == nil:
			e.Estimate, e.Bytes, e.Ranges, e.EstimateBy = p.Count, p.Bytes, len(p.Ranges), "server count"
			if p.Count < 0 {
				// A dump holds no count: read its frames (no transform) to give a real one.
				if e.Estimate, err = countByScan(ctx, src, j.NS, p.Ranges); err != nil {
					return err
				}
				e.EstimateBy = "dump scan"
			}
		case isNoCollection(err):
			e.Missing = true
		default:
			return err
		}
		entries = append(entries, e)
	}
	unmapped, err := unmappedCollections(ctx, src, sel)
	if err != nil {
		return err
	}
	var profiles []*profile.Collection
	var target *load.Target
	targetNote := ""
	if to != "" || os.Getenv("DATABASE_URL") != "" {
		pool, _, err := openTarget(ctx, to, 2)
		if err != nil {
			return err
		}
		defer pool.Close()
		target = load.NewTarget(pool)
		// The role must be able to write every tenant's rows (row-level security): a refusal
		// found now saves a run that would fail. A schema that is not there yet is fine:
		// --create-schema makes it.
		var tables []pipeline.Table
		for _, j := range sel.jobs {
			tables = append(tables, j.Transform.Tables()...)
		}
		var sme *load.SchemaMismatchError
		switch err := target.Check(ctx, tables); {
		case errors.As(err, &sme):
			targetNote = fmt.Sprintf("target schema: %d differences from the spec (create it with run --create-schema, or see run's refusal for the list)", len(sme.Problems))
		case err != nil:
			return err
		default:
			targetNote = "target schema: matches the spec; the loading role may write every tenant's rows"
		}
	}
	if doProfile {
		for _, j := range sel.jobs {
			if isMissing(entries, j.Name) {
				continue
			}
			p, err := profile.Survey(ctx, src, surveyTarget(target), j, sample)
			if err != nil {
				return err
			}
			profiles = append(profiles, p)
		}
	}
	if jsonOut {
		out := map[string]any{"format_version": pipeline.FormatVersion, "as_of": asOf, "source": src.Fingerprint(),
			"collections": entries, "unmapped": nonNil(unmapped)}
		if doProfile {
			out["profiles"] = profiles
		}
		if targetNote != "" {
			out["target"] = targetNote
		}
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "plan as of %s, source %s\n", asOf.Format(time.RFC3339Nano), src.Fingerprint())
	t := newLeftTable(stdout, "ORDER", "COLLECTION", "TIER", "ESTIMATE", "RANGES", "TARGET TABLES", "FILTER")
	for _, e := range entries {
		est := any(e.Estimate)
		if e.Missing {
			est = "missing"
		} else if e.Estimate < 0 {
			est = "unknown"
		}
		t.row(e.Order, e.Collection, e.Tier, est, e.Ranges, strings.Join(e.Tables, ","), filterSummary(e.Filter))
	}
	t.flush()
	if len(unmapped) > 0 {
		io.WriteString(stdout, "not mapped by the selection: "+strings.Join(unmapped, ", ")+"\n")
	}
	if targetNote != "" {
		io.WriteString(stdout, targetNote+"\n")
	}
	for _, p := range profiles {
		printProfile(stdout, p)
	}
	return nil
}

func isMissing(entries []planEntry, name string) bool {
	for _, e := range entries {
		if e.Collection == name {
			return e.Missing
		}
	}
	return false
}

func printProfile(w io.Writer, p *profile.Collection) {
	fmt.Fprintf(w, "\nprofile of %s: %d documents scanned", p.Collection, p.Scanned)
	if p.Sampled {
		fmt.Fprintf(w, " (%s)", p.SampleNote)
	}
	if p.RulesNote != "" {
		fmt.Fprintf(w, "; %s\n", p.RulesNote)
	} else {
		fmt.Fprintf(w, "; %d loadable\n", p.Loadable)
	}
	t := newTable(w, "FIELD", "COUNT", "TYPES")
	for _, f := range p.Fields {
		var types []string
		for typ, n := range f.Types {
			types = append(types, fmt.Sprintf("%s %d", typ, n))
		}
		sort.Strings(types)
		t.row(f.Path, f.Count, strings.Join(types, ", "))
	}
	t.flush()
	if len(p.Rejects) > 0 || len(p.Skips) > 0 {
		t := newTable(w, "WOULD", "RULE", "DOCUMENTS")
		for _, k := range sortedKeys(p.Rejects) {
			t.row("reject", k, p.Rejects[k])
		}
		for _, k := range sortedKeys(p.Skips) {
			t.row("skip", k, p.Skips[k])
		}
		t.flush()
	}
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func filterSummary(f json.RawMessage) string {
	var d map[string]any
	if json.Unmarshal(f, &d) != nil {
		return string(f)
	}
	q, _ := json.Marshal(d["query"])
	if note, ok := d["note"].(string); ok {
		return string(q) + " (" + note + ")"
	}
	return string(q)
}

func isNoCollection(err error) bool { return errorsIs(err, pipeline.ErrNoCollection) }

// countByScan counts a collection's documents by reading them.
func countByScan(ctx context.Context, src pipeline.Source, ns pipeline.Namespace, ranges []pipeline.Range) (int64, error) {
	var n int64
	for _, r := range ranges {
		if err := src.Scan(ctx, ns, r, pipeline.Cursor{}, func(bson.Raw, pipeline.Position) error {
			n++
			return nil
		}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// surveyTarget keeps a nil *load.Target a nil interface.
func surveyTarget(t *load.Target) pipeline.Target {
	if t == nil {
		return nil
	}
	return t
}
