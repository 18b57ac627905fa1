package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := manifests.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// startRun records a run, a collection and its range so that batches can be committed.
func startRun(t *testing.T, pool *pgxpool.Pool, coll string) string {
	t.Helper()
	ctx := t.Context()
	store := manifests.NewStore(pool)
	run := &manifests.Run{ID: pipeline.NewRunID(time.Now()), Kind: "run", Selection: "test", AsOf: time.Now(), SourceKind: "test",
		SourceFingerprint: "test", Options: []byte(`{}`), ToolVersion: "t", TransformVersion: "t", Status: "running", StartedAt: time.Now()}
	if err := NewTarget(pool).StartRun(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureCollection(ctx, &manifests.Collection{RunID: run.ID, Name: coll, Module: "test", SourceNS: "x." + coll, Tier: "A", Filter: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveRanges(ctx, run.ID, coll, []manifests.Range{{No: 0, TypeClass: ""}}); err != nil {
		t.Fatal(err)
	}
	return run.ID
}

func int4(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// TestSinkIsolatesRefusedRows: rows PostgreSQL refuses (a CHECK and a unique key here) reject
// only their own documents, with SQLSTATE and message, and the rest of the batch loads, with
// the parent rows of a refused child rolled back too.
func TestSinkIsolatesRefusedRows(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA s;
CREATE TABLE s.parent (id integer PRIMARY KEY, note text CHECK (note <> 'bad'));
CREATE TABLE s.child (parent_id integer REFERENCES s.parent (id), n integer CHECK (n >= 0))`); err != nil {
		t.Fatal(err)
	}
	runID := startRun(t, pool, "things")
	tables := []pipeline.Table{
		{Schema: "s", Name: "parent", Columns: []pipeline.Column{{Name: "id", Type: pipeline.TypeInt4}, {Name: "note", Type: pipeline.TypeText}}},
		{Schema: "s", Name: "child", Columns: []pipeline.Column{{Name: "parent_id", Type: pipeline.TypeInt4}, {Name: "n", Type: pipeline.TypeInt4}}},
	}
	b := &pipeline.Batch{RunID: runID, Collection: "things", RangeNo: 0, Seq: 0, Tables: tables, File: true}
	b.Rows.Reset()
	notes := map[int]string{3: "bad"}
	childN := map[int]int32{5: -1}
	for i := 0; i < 10; i++ {
		id := fmt.Sprint(i)
		if i == 7 {
			id = "dup"
		}
		raw := []byte{byte(i)}
		b.Docs = append(b.Docs, pipeline.BatchDoc{Start: len(b.Raw), End: len(b.Raw) + 1, ID: &id})
		b.Raw = append(b.Raw, raw...)
		b.Rows.SetDoc(i)
		pk := int32(i)
		if i == 7 {
			pk = 6 // collides with document 6
		}
		b.Rows.StartRow(0)
		b.Rows.Cell(int4(pk))
		note := "ok"
		if n, ok := notes[i]; ok {
			note = n
		}
		b.Rows.Text(note)
		b.Rows.EndRow()
		b.Rows.StartRow(1)
		b.Rows.Cell(int4(pk))
		n := int32(i)
		if v, ok := childN[i]; ok {
			n = v
		}
		b.Rows.Cell(int4(n))
		b.Rows.EndRow()
	}
	c, err := NewSink(pool).Commit(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Loaded != 7 || c.Rejected != 3 || c.LoadRejects != 3 {
		t.Fatalf("committed %+v, want 7 loaded and 3 rejected", c)
	}
	var parents, children int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM s.parent), (SELECT count(*) FROM s.child)`).Scan(&parents, &children); err != nil {
		t.Fatal(err)
	}
	if parents != 7 || children != 7 {
		t.Errorf("parents %d children %d, want 7 each (document 5's parent row rolled back with its child)", parents, children)
	}
	rows, err := pool.Query(ctx, `SELECT _id, reason, raw FROM convert.rejects WHERE run_id = $1 ORDER BY _id`, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]string{"3": "23514", "5": "23514", "dup": "23505"}
	got := 0
	for rows.Next() {
		var id, reason string
		var raw []byte
		if err := rows.Scan(&id, &reason, &raw); err != nil {
			t.Fatal(err)
		}
		got++
		if code, ok := want[id]; !ok || !strings.Contains(reason, "SQLSTATE "+code) {
			t.Errorf("reject %s: %s", id, reason)
		}
		if strings.Contains(reason, "Key (") || strings.Contains(reason, "Failing row") {
			t.Errorf("reject %s leaks DETAIL: %s", id, reason)
		}
		if len(raw) != 1 {
			t.Errorf("reject %s raw = %x", id, raw)
		}
	}
	if got != 3 {
		t.Errorf("%d rejects stored, want 3", got)
	}
	var loaded, rejected int
	if err := pool.QueryRow(ctx, `SELECT loaded, rejected FROM convert.batches WHERE run_id = $1`, runID).Scan(&loaded, &rejected); err != nil {
		t.Fatal(err)
	}
	if loaded != 7 || rejected != 3 {
		t.Errorf("manifest batch: loaded %d rejected %d", loaded, rejected)
	}
}

// TestSinkChecksumMatchesReadBack: the table sums a commit records equal what ReadTableSum
// recomputes from the rows PostgreSQL holds, for every column type.
func TestSinkChecksumMatchesReadBack(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	tb := pipeline.Table{Schema: "s", Name: "typed", CreateIfMissing: true, Columns: []pipeline.Column{
		{Name: "i", Type: pipeline.TypeInt4}, {Name: "t", Type: pipeline.TypeText}, {Name: "j", Type: pipeline.TypeJSONB},
		{Name: "n", Type: pipeline.TypeNumeric}, {Name: "b", Type: pipeline.TypeBool}, {Name: "l", Type: pipeline.TypeInt8},
		{Name: "g", Type: pipeline.TypeInt4, Generated: "i * 2"},
	}}
	if err := NewTarget(pool).Prepare(ctx, []pipeline.Table{tb}); err != nil {
		t.Fatal(err)
	}
	runID := startRun(t, pool, "typed")
	b := &pipeline.Batch{RunID: runID, Collection: "typed", Tables: []pipeline.Table{tb}, File: true}
	nums := []string{"0", "1.50", "-123456789012345678901234567890.000100", "NaN", "Infinity", "-Infinity", "0.0001", "10000"}
	for i, n := range nums {
		id := fmt.Sprint(i)
		b.Docs = append(b.Docs, pipeline.BatchDoc{ID: &id})
		b.Rows.SetDoc(i)
		b.Rows.StartRow(0)
		b.Rows.Cell(int4(int32(i)))
		b.Rows.Text("é ✓ " + id)
		b.Rows.Text(`{"a": [1, 2.5], "bb": {"c": null}}`)
		b.Rows.Text(n)
		b.Rows.Cell([]byte{byte(i % 2)})
		if i == 0 {
			b.Rows.Null()
		} else {
			b.Rows.Cell(binary.BigEndian.AppendUint64(nil, uint64(1)<<62+uint64(i)))
		}
		b.Rows.EndRow()
	}
	if _, err := NewSink(pool).Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	var sumsJSON []byte
	if err := pool.QueryRow(ctx, `SELECT table_sums FROM convert.batches WHERE run_id = $1`, runID).Scan(&sumsJSON); err != nil {
		t.Fatal(err)
	}
	recorded, err := manifests.DecodeTableSums(sumsJSON)
	if err != nil {
		t.Fatal(err)
	}
	readBack, err := ReadTableSum(ctx, pool, tb)
	if err != nil {
		t.Fatal(err)
	}
	if recorded["s.typed"] != readBack || readBack.Count != int64(len(nums)) {
		t.Fatalf("recorded %+v, read back %+v", recorded["s.typed"], readBack)
	}
	// Numeric binary encoding: PostgreSQL prints back exactly the text hashed.
	var printed []string
	rows, _ := pool.Query(ctx, `SELECT n::text FROM s.typed ORDER BY i`)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		printed = append(printed, s)
	}
	rows.Close()
	if strings.Join(printed, " ") != strings.Join(nums, " ") {
		t.Errorf("numeric round trip: %v, sent %v", printed, nums)
	}
}

var _ = context.Background
