package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
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
	var jsonOut bool
	var rangeDocs int
	fs.StringVar(&from, "from", "", "source: mongodb:// URI, mongodump directory or archive (default $MONGO_URI)")
	fs.StringVar(&to, "to", "", "target PostgreSQL DSN (accepted for symmetry with run; plan reads only the source)")
	fs.StringVar(&module, "module", "", "modules")
	fs.Var(&colls, "collection", "DB.COLL[=SCHEMA.TABLE] (repeatable)")
	fs.StringVar(&asOfS, "as-of", "", "RFC 3339 (default now)")
	fs.IntVar(&rangeDocs, "range-docs", live.DefaultRangeDocs, "documents per planned range of a live collection")
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	if err := fs.Parse(args); err != nil {
		return &usageError{msg: err.Error()}
	}
	asOf, err := tiers.ParseAsOf(asOfS, time.Now())
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	sel, err := selectCollections(module, colls, asOf, transforms.Options{})
	if err != nil {
		return err
	}
	src, err := openSource(ctx, from, rangeDocs)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	var entries []planEntry
	mapped := map[string]bool{}
	for i, j := range sel.jobs {
		e := planEntry{Order: i + 1, Module: j.Module, Collection: j.Name, Source: j.NS.String(), Tier: j.Tier, Filter: j.Filter, AsOf: asOf}
		for _, t := range j.Transform.Tables() {
			e.Tables = append(e.Tables, t.FullName())
		}
		mapped[j.NS.String()] = true
		p, err := src.Plan(ctx, j.NS)
		switch {
		case err == nil:
			e.Estimate, e.Bytes, e.Ranges = p.Count, p.Bytes, len(p.Ranges)
		case isNoCollection(err):
			e.Missing = true
		default:
			return err
		}
		entries = append(entries, e)
	}
	var unmapped []string
	for _, db := range sel.dbs {
		names, err := src.Collections(ctx, db)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !mapped[db+"."+n] {
				unmapped = append(unmapped, db+"."+n)
			}
		}
	}
	if jsonOut {
		return writeJSON(stdout, map[string]any{"format_version": pipeline.FormatVersion, "as_of": asOf, "source": src.Fingerprint(),
			"collections": entries, "unmapped": nonNil(unmapped)})
	}
	t := newTable(stdout, "ORDER", "COLLECTION", "TIER", "FILTER", "ESTIMATE", "RANGES", "TARGET")
	for _, e := range entries {
		est := any(e.Estimate)
		if e.Missing {
			est = "missing"
		} else if e.Estimate < 0 {
			est = "unknown"
		}
		t.row(e.Order, e.Collection, e.Tier, filterSummary(e.Filter), est, e.Ranges, strings.Join(e.Tables, ","))
	}
	t.flush()
	if len(unmapped) > 0 {
		io.WriteString(stdout, "not mapped by the selection: "+strings.Join(unmapped, ", ")+"\n")
	}
	return nil
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
	return string(q) + " as of " + asString(d["as_of"])
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func isNoCollection(err error) bool { return errorsIs(err, pipeline.ErrNoCollection) }
