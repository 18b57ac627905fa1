package main

// Correctness of the harness's own code (no timing here: a benchmark is never a test
// assertion), and a Go benchmark of the transform stage for `go test -cpuprofile`.

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

func TestNumericRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "10000", "123456789", "0.5", "-0.0001", "10.00", "9.9", "12345.678901",
		"0.00000001", "100000000.1", "NaN", "Infinity", "-Infinity", "0.000", "7.50"} {
		var rb pipeline.RowBuffer
		rb.Reset()
		rb.StartRow(0)
		rb.Text(s)
		rb.EndRow()
		tuple, err := appendCopyRow(nil, []pipeline.Column{{Name: "x", Type: pipeline.TypeNumeric}}, rb.RowBytes(rb.Rows[0]))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		b := tuple[2+4:] // field count, then the field's length

		got, err := numericText(b)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got != s {
			t.Errorf("numeric %s came back as %s", s, got)
		}
	}
}

func TestCopyRowRoundTrip(t *testing.T) {
	cols := []pipeline.Column{
		{Name: "id", Type: pipeline.TypeUUID}, {Name: "t", Type: pipeline.TypeText}, {Name: "n", Type: pipeline.TypeText},
		{Name: "doc", Type: pipeline.TypeJSONB}, {Name: "x", Type: pipeline.TypeNumeric},
	}
	var in pipeline.RowBuffer
	in.Reset()
	in.StartRow(0)
	in.Cell(bytes.Repeat([]byte{7}, 16))
	in.Text("hello")
	in.Null()
	in.Text(`{"a": [1, 2]}`)
	in.Text("-12.50")
	in.EndRow()
	tuple, err := appendCopyRow(nil, cols, in.RowBytes(in.Rows[0]))
	if err != nil {
		t.Fatal(err)
	}
	fields, n, err := copyFields(tuple, nil)
	if err != nil || n != len(tuple) {
		t.Fatalf("copyFields: %v, used %d of %d", err, n, len(tuple))
	}
	var out pipeline.RowBuffer
	out.Reset()
	out.StartRow(0)
	if err := appendChecksumRow(&out, cols, fields); err != nil {
		t.Fatal(err)
	}
	out.EndRow()
	if !bytes.Equal(out.RowBytes(out.Rows[0]), in.RowBytes(in.Rows[0])) {
		t.Fatalf("row changed in the round trip:\n%x\n%x", in.RowBytes(in.Rows[0]), out.RowBytes(out.Rows[0]))
	}
}

// TestShapesLoad checks that every generated document loads (no reject, no skip), that the
// generator is deterministic, and that the advisory sizes stay within 2–20 KiB. A module shape
// with parents gets them loaded into a throwaway database first, and its key pass run.
func TestShapesLoad(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.Name, func(t *testing.T) {
			tr := sh.Job(benchAsOf).Transform
			if sh.Parents != nil {
				prepareKeyPass(t, sh, tr, 300)
			}
			var rb pipeline.RowBuffer
			var first []byte
			lo, hi := 1<<30, 0
			err := genDocs(sh, 300, func(d bson.Raw) error {
				if first == nil {
					first = append([]byte{}, d...)
				}
				lo, hi = min(lo, len(d)), max(hi, len(d))
				rb.Reset()
				if v := tr.Apply(d, &rb); v.Reject != nil || v.Skip != "" {
					t.Fatalf("document not loaded: %v %q\n%s", v.Reject, v.Skip, d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := genDocs(sh, 1, func(d bson.Raw) error {
				if !bytes.Equal(d, first) {
					t.Error("document 0 differs between two generations")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if sh.Kind == kindJSONB && (lo < 2048 || hi > 20*1024+64) {
				t.Errorf("advisory sizes %d..%d outside 2..20 KiB", lo, hi)
			}
			t.Logf("%s: documents of %d..%d bytes", sh.Name, lo, hi)
		})
	}
}

// BenchmarkTransform is the transform stage under the Go benchmark runner, for profiles:
// go test ./cmd/bench -run '^$' -bench Transform -cpuprofile cpu.out
func BenchmarkTransform(b *testing.B) {
	for _, sh := range shapes {
		b.Run(sh.Name, func(b *testing.B) {
			var docs [][]byte
			var size int64
			if err := genDocs(sh, 2000, func(d bson.Raw) error {
				docs = append(docs, append([]byte{}, d...))
				size += int64(len(d))
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			tr := sh.Job(benchAsOf).Transform
			if sh.Parents != nil {
				prepareKeyPass(b, sh, tr, len(docs))
			} else if pr, ok := tr.(pipeline.Preparer); ok {
				kp := pipeline.KeyPass{Scan: func(fn func(bson.Raw) error) error {
					for _, d := range docs {
						if err := fn(d); err != nil {
							return err
						}
					}
					return nil
				}}
				if err := pr.Prepare(b.Context(), kp); err != nil {
					b.Fatal(err)
				}
			}
			var rb pipeline.RowBuffer
			b.SetBytes(size / int64(len(docs)))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i%pipeline.DefaultBatchSize == 0 {
					rb.Reset()
				}
				rb.SetDoc(i % pipeline.DefaultBatchSize)
				tr.Apply(docs[i%len(docs)], &rb)
			}
		})
	}
}

// prepareKeyPass loads the shape's parents into a new database and runs the transform's key
// pass over the first n documents, as the harness does before it precomputes the rows.
func prepareKeyPass(t testing.TB, sh shape, tr pipeline.Transform, n int) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	root := filepath.Join(t.TempDir(), "dump")
	if _, _, err := writeDump(ctx, sh, n, root); err != nil {
		t.Fatal(err)
	}
	if err := sh.prepareTables(ctx, pool, root, tr.Tables()); err != nil {
		t.Fatal(err)
	}
	if err := keyPass(ctx, root, sh, tr, load.NewTarget(pool)); err != nil {
		t.Fatal(err)
	}
}

// TestPairedRatio: each run's faster limit against that run's (b), then the median; nothing
// when the runs do not pair up.
func TestPairedRatio(t *testing.T) {
	m := func(runs ...float64) *measurement { return &measurement{RunsS: runs} }
	for _, tc := range []struct {
		name   string
		b      *measurement
		limits []*measurement
		want   float64
	}{
		{"faster limit per run", m(10, 20, 30), []*measurement{m(8, 10, 60), m(5, 12, 30)}, 0.5},
		{"even count: mean of the middle two", m(10, 10), []*measurement{m(2, 6)}, 0.4},
		{"runs do not pair up", m(10, 20), []*measurement{m(5, 10, 15)}, 0},
		{"a limit not measured", m(10), []*measurement{nil, m(5)}, 0},
	} {
		if got := pairedRatio(tc.b, tc.limits...); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
