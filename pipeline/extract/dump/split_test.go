package dump

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

// TestPlainFilesSplitIntoSpans: a plain data file larger than the split size is planned as
// several spans starting at document boundaries; reading every span gives every document
// exactly once, in order; a span resumes at an offset inside it; compressed files stay whole.
func TestPlainFilesSplitIntoSpans(t *testing.T) {
	var docs [][]byte
	for i := 0; i < 500; i++ {
		b, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: fmt.Sprintf("%0*d", 50+i%97, i)}})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	raw := concat(docs)
	for _, c := range comps {
		t.Run(c.String(), func(t *testing.T) {
			root := t.TempDir()
			writeDirColl(t, root, "app", "things", c, raw)
			writeFile(t, filepath.Join(root, "app", "things.metadata.json"), []byte(`{}`))
			s := openSource(t, root)
			s.splitBytes = 4096
			ns := pipeline.Namespace{DB: "app", Collection: "things"}
			plan, err := s.Plan(context.Background(), ns)
			if err != nil {
				t.Fatal(err)
			}
			if c != None {
				if len(plan.Ranges) != 1 {
					t.Fatalf("compressed file planned as %d ranges", len(plan.Ranges))
				}
				return
			}
			if want := len(raw) / 4096; len(plan.Ranges) < want {
				t.Fatalf("%d ranges for %d bytes at 4096 per span", len(plan.Ranges), len(raw))
			}
			starts := map[int64]bool{}
			var off int64
			for _, d := range docs {
				starts[off] = true
				off += int64(len(d))
			}
			var got [][]byte
			for i, r := range plan.Ranges {
				start, end := pipeline.FileSpan(r)
				if !starts[start] || (end >= 0 && !starts[end]) || r.No != i {
					t.Fatalf("range %d [%d, %d) does not start at document boundaries", r.No, start, end)
				}
				err := s.Scan(context.Background(), ns, r, pipeline.Cursor{}, func(doc bson.Raw, pos pipeline.Position) error {
					if pos.Start < start || (end >= 0 && pos.Start >= end) {
						t.Errorf("range %d delivered a document at %d", r.No, pos.Start)
					}
					got = append(got, bytes.Clone(doc))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			wantDocs(t, got, docs)

			// Resume after the first document of the second span: the rest of that span only.
			r := plan.Ranges[1]
			start, end := pipeline.FileSpan(r)
			var firstIdx int
			off = 0
			for i, d := range docs {
				if off >= start {
					firstIdx = i
					break
				}
				off += int64(len(d))
			}
			resume := start + int64(len(docs[firstIdx]))
			var rest int
			if err := s.Scan(context.Background(), ns, r, pipeline.Cursor{Offset: resume}, func(doc bson.Raw, pos pipeline.Position) error {
				if pos.Start < resume || pos.Start >= end {
					t.Errorf("resumed span delivered %d", pos.Start)
				}
				rest++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if rest == 0 {
				t.Error("resumed span delivered nothing")
			}
		})
	}
}
