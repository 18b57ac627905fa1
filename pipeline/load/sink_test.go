package load

import (
	"bytes"
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
	if err := NewTarget(pool).StartRun(ctx, run, nil, pipeline.Deferral{}); err != nil {
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

// TestSinkDerivedRows: derived rows shared by several documents are inserted once, folded to the
// least by their other columns, merged with earlier batches by the table's conflict action, and
// left out of the batch's row counts and sums.
func TestSinkDerivedRows(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA a;
CREATE TABLE a.tenants (tenant_id text PRIMARY KEY, created_at integer);
CREATE TABLE a.users (id integer PRIMARY KEY, tenant_id text NOT NULL REFERENCES a.tenants)`); err != nil {
		t.Fatal(err)
	}
	runID := startRun(t, pool, "users")
	tables := []pipeline.Table{
		{Schema: "a", Name: "tenants", Derived: true, ConflictKey: []string{"tenant_id"}, Least: []string{"created_at"},
			Columns: []pipeline.Column{{Name: "tenant_id", Type: pipeline.TypeText}, {Name: "created_at", Type: pipeline.TypeInt4}}},
		{Schema: "a", Name: "users", Columns: []pipeline.Column{{Name: "id", Type: pipeline.TypeInt4}, {Name: "tenant_id", Type: pipeline.TypeText}}},
	}
	var sent [][]byte // every tenants row the batches carried
	commit := func(seq int, users []struct {
		id      int32
		tenant  string
		created int32
	}) pipeline.Committed {
		b := &pipeline.Batch{RunID: runID, Collection: "users", Seq: seq, Tables: tables, File: true}
		defer func() {
			for _, r := range b.Rows.Rows {
				if r.Table == 0 {
					sent = append(sent, bytes.Clone(b.Rows.RowBytes(r)))
				}
			}
		}()
		for i, u := range users {
			id := fmt.Sprint(u.id)
			b.Docs = append(b.Docs, pipeline.BatchDoc{ID: &id})
			b.Rows.SetDoc(i)
			b.Rows.StartRow(0)
			b.Rows.Text(u.tenant)
			b.Rows.Cell(int4(u.created))
			b.Rows.EndRow()
			b.Rows.StartRow(1)
			b.Rows.Cell(int4(u.id))
			b.Rows.Text(u.tenant)
			b.Rows.EndRow()
		}
		c, err := NewSink(pool).Commit(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	type u = struct {
		id      int32
		tenant  string
		created int32
	}
	c := commit(0, []u{{1, "t1", 50}, {2, "t1", 20}, {3, "t2", 70}})
	if c.Loaded != 3 || c.Rows["a.users"] != 3 || c.Rows["a.tenants"] != 0 {
		t.Fatalf("first batch: %+v", c)
	}
	commit(1, []u{{4, "t1", 30}, {5, "t2", 10}, {6, "t3", 5}})
	// -5 is bytewise greater than 7 (0xfffffffb): least() orders numbers, not bytes.
	commit(2, []u{{7, "t4", 7}, {8, "t4", -5}, {9, "t3", 6}})
	got := map[string]int32{}
	rows, _ := pool.Query(ctx, `SELECT tenant_id, created_at FROM a.tenants`)
	for rows.Next() {
		var k string
		var v int32
		_ = rows.Scan(&k, &v)
		got[k] = v
	}
	rows.Close()
	if len(got) != 4 || got["t1"] != 20 || got["t2"] != 10 || got["t3"] != 5 || got["t4"] != -5 {
		t.Fatalf("tenants: %v, want the least created_at per tenant", got)
	}
	// pipeline.DerivedRows folds the same rows, in any order, to what the table holds.
	for _, reverse := range []bool{false, true} {
		var fold pipeline.DerivedRows
		for i := range sent {
			row := sent[i]
			if reverse {
				row = sent[len(sent)-1-i]
			}
			if err := fold.Add(tables[0], row); err != nil {
				t.Fatal(err)
			}
		}
		want, err := ReadTableSum(ctx, pool, tables[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := fold.Sum(tables[0]); got != want {
			t.Errorf("reverse %v: folded tenants %+v, the target holds %+v", reverse, got, want)
		}
		// The rows the batches staged fold to the same: the run records that checksum.
		if got, err := DerivedSum(ctx, pool, runID, tables[0]); err != nil || got != want {
			t.Errorf("staged tenants fold to %+v (%v), the target holds %+v", got, err, want)
		}
	}
	var sums []byte
	if err := pool.QueryRow(ctx, `SELECT table_sums FROM convert.batches WHERE run_id = $1 AND seq = 0`, runID).Scan(&sums); err != nil || strings.Contains(string(sums), "a.tenants") {
		t.Fatalf("batch sums include the derived table: %s %v", sums, err)
	}
}
