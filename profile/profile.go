// Package profile surveys source collections before a conversion (plan --profile): every field
// path with its observed BSON types and counts, and how many documents each mapping rule would
// reject or skip, so an operator sees problems before loading.
//
// The survey runs the collection's real transform (strict reading, tier filter, value checks),
// so its reject counts are what a run would reject, except for refusals only PostgreSQL can
// decide. A full scan also runs the key pass (identity collisions, unique keys); a sampled one
// (--sample N) reads the first N documents in range order — not a random sample, since not every
// server has $sample — and skips the key pass, which needs every document.
package profile

import (
	"context"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

// Field is one field path with the BSON types seen there.
type Field struct {
	Path  string           `json:"path"`
	Count int64            `json:"count"`
	Types map[string]int64 `json:"types"`
}

// Collection is one collection's profile.
type Collection struct {
	Collection string           `json:"collection"`
	Source     string           `json:"source"`
	Scanned    int64            `json:"scanned"`
	Estimate   int64            `json:"source_estimate"`
	Sampled    bool             `json:"sampled"`
	SampleNote string           `json:"sample_note,omitempty"`
	RulesNote  string           `json:"rules_note,omitempty"`
	Loadable   int64            `json:"loadable"`
	Rejects    map[string]int64 `json:"rejects_by_rule"`
	Skips      map[string]int64 `json:"skipped_by_reason"`
	Fields     []Field          `json:"fields"`
}

// Survey profiles one collection; sample > 0 reads at most that many documents.
// target, when not nil, lets module transforms resolve references against already loaded
// parent tables.
func Survey(ctx context.Context, src pipeline.Source, target pipeline.Target, job pipeline.CollectionJob, sample int64) (*Collection, error) {
	plan, err := src.Plan(ctx, job.NS)
	if err != nil {
		return nil, err
	}
	c := &Collection{Collection: job.Name, Source: job.NS.String(), Estimate: plan.Count, Rejects: map[string]int64{}, Skips: map[string]int64{}}
	if sample > 0 {
		c.Sampled = true
		c.SampleNote = "first documents in range order, at most " + itoa(sample) + "; key-pass rules (collisions, unique keys) not evaluated"
	} else if p, ok := job.Transform.(pipeline.Preparer); ok {
		if err := pipeline.KeyPassOf(ctx, src, job, p, plan.Ranges, slog.New(slog.DiscardHandler), target); err != nil {
			// Without its key pass (parents not loaded yet, no target given) the collection's
			// rules cannot be judged: say so, and still survey the fields.
			c.RulesNote = "mapping rules not evaluated: " + err.Error()
		}
	}
	fields := map[string]*Field{}
	var buf pipeline.RowBuffer
	stop := errStop{}
	for _, r := range plan.Ranges {
		err := src.Scan(ctx, job.NS, r, pipeline.Cursor{}, func(doc bson.Raw, _ pipeline.Position) error {
			if sample > 0 && c.Scanned >= sample {
				return stop
			}
			c.Scanned++
			walk(doc, "", fields)
			if c.RulesNote != "" {
				return nil
			}
			buf.Reset()
			v := job.Transform.Apply(doc, &buf)
			switch {
			case v.Reject != nil:
				c.Rejects[ruleOf(v.Reject)]++
			case v.Skip != "":
				c.Skips[v.Skip]++
			default:
				c.Loadable++
			}
			return nil
		})
		if err == stop {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	for _, f := range fields {
		c.Fields = append(c.Fields, *f)
	}
	sort.Slice(c.Fields, func(i, j int) bool { return c.Fields[i].Path < c.Fields[j].Path })
	return c, nil
}

type errStop struct{}

func (errStop) Error() string { return "sample complete" }

// walk records every field path of doc; array elements are path[].
func walk(doc bson.Raw, prefix string, fields map[string]*Field) {
	elems, err := doc.Elements()
	if err != nil {
		note(fields, prefix+"<unreadable>", "invalid")
		return
	}
	for _, e := range elems {
		path := e.Key()
		if prefix != "" {
			path = prefix + "." + path
		}
		walkValue(e.Value(), path, fields)
	}
}

func walkValue(v bson.RawValue, path string, fields map[string]*Field) {
	note(fields, path, v.Type.String())
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		walk(v.Document(), path, fields)
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return
		}
		for _, x := range vals {
			walkValue(x, path+"[]", fields)
		}
	}
}

func note(fields map[string]*Field, path, typ string) {
	f := fields[path]
	if f == nil {
		f = &Field{Path: path, Types: map[string]int64{}}
		fields[path] = f
	}
	f.Count++
	f.Types[typ]++
}

var atByte = regexp.MustCompile(`at byte [0-9]+`)

// ruleOf names the rule behind a reject without the document's own ids and offsets, so that
// documents failing the same rule count together.
func ruleOf(r *pipeline.Reject) string {
	reason := r.Reason
	for _, p := range []string{"identity collision", "missing parent", "cross-tenant reference"} {
		if strings.HasPrefix(reason, p) {
			reason = p
		}
	}
	reason = atByte.ReplaceAllString(reason, "at byte N")
	if r.Path != "" {
		return r.Path + ": " + reason
	}
	return reason
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
