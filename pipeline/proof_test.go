package pipeline_test

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/transforms/generic"
)

// skipOld is the generic transform with a tier rule of its own: documents with old: true are
// skipped, as a tier window skips them.
type skipOld struct{ *generic.Transform }

func (s skipOld) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	v := s.Transform.Apply(doc, out)
	if old, ok := doc.Lookup("old").BooleanOK(); ok && old && v.Reject == nil {
		v.Skip = "outside tier window"
	}
	return v
}

func tierDocs(n int, edit func(i int, d bson.D) bson.D) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		d := bson.D{{Key: "_id", Value: fmt.Sprintf("id-%04d", i)}, {Key: "tenant", Value: "t1"}, {Key: "name", Value: fmt.Sprintf("doc %d", i)},
			{Key: "old", Value: i%3 == 0}}
		if edit != nil {
			if d = edit(i, d); d == nil {
				continue
			}
		}
		b, _ := bson.Marshal(d)
		out = append(out, b)
	}
	return out
}

// TestLiveResumeProofFollowsTierRules: a live-like run stopped after 60 of 100 documents, then
// resumed over a source changed behind the resume point. A change to a document the tier rules
// skip changes no result and resumes; a change, deletion or un-skipping of a document they keep
// refuses with a SourceChangedError.
func TestLiveResumeProofFollowsTierRules(t *testing.T) {
	set := func(i int, key string, v any) func(int, bson.D) bson.D {
		return func(j int, d bson.D) bson.D {
			if j != i {
				return d
			}
			for k := range d {
				if d[k].Key == key {
					d[k].Value = v
				}
			}
			return d
		}
	}
	for _, tc := range []struct {
		name    string
		edit    func(int, bson.D) bson.D
		refused bool
	}{
		{"unchanged", nil, false},
		{"skipped document changed", set(3, "name", "changed"), false},
		{"changed after the resume point", set(70, "name", "changed"), false},
		{"kept document changed", set(4, "name", "changed"), true},
		{"skipped document now kept", set(3, "old", false), true},
		{"kept document deleted", func(i int, d bson.D) bson.D {
			if i == 4 {
				return nil
			}
			return d
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			j := job(t)
			j.Transform = skipOld{j.Transform.(*generic.Transform)}
			runWith := func(src pipeline.Source, o pipeline.Options) (*pipeline.Report, error) {
				o.AsOf, o.Selection, o.TransformVersion, o.BatchSize = asOf, "collections:db.c", generic.Version, 10
				return pipeline.Run(t.Context(), o, pipeline.Deps{Source: src, Sink: load.NewSink(e.pool), Target: load.NewTarget(e.pool), Store: e.store,
					Collections: []pipeline.CollectionJob{j}})
			}
			corrupt := &pipeline.CorruptError{File: "x", Offset: 1, What: "stop here"}
			if _, err := runWith(&memSource{docs: tierDocs(100, nil), class: "string", failAt: 60, failErr: corrupt}, pipeline.Options{}); !errors.As(err, new(*pipeline.CorruptError)) {
				t.Fatalf("first run: %v, want the injected stop", err)
			}
			rep, err := runWith(&memSource{docs: tierDocs(100, tc.edit), class: "string"}, pipeline.Options{Resume: true})
			var sc *pipeline.SourceChangedError
			switch {
			case tc.refused && !errors.As(err, &sc):
				t.Fatalf("resume: %v, want a SourceChangedError", err)
			case tc.refused:
				var loaded int
				if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM db.c`).Scan(&loaded); err != nil || loaded != 40 {
					t.Errorf("after the refusal the target holds %d rows (%v), want the 40 committed before", loaded, err)
				}
			case err != nil:
				t.Fatalf("resume: %v", err)
			case rep.Status != "completed" || rep.Collections[0].Read != 100:
				t.Fatalf("resume: %s, read %d", rep.Status, rep.Collections[0].Read)
			}
		})
	}
}
