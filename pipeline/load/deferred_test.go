package load

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// TestDeferIndexes: StartRun drops exactly the indexes that constrain nothing (a plain one,
// an expression one, one on a partitioned table with its partitions' ones), keeps the primary
// key, unique indexes and an index backing a constraint, and records what it dropped in the
// same transaction; RestoreDeferred restores every index as it was, valid and covering the
// partitions (a partition created meanwhile included), and forgets the records.
func TestDeferIndexes(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA s;
CREATE TABLE s.plain (id integer PRIMARY KEY, a text, b text, c integer, UNIQUE (b));
CREATE INDEX plain_a ON s.plain (a);
CREATE INDEX plain_lower_a ON s.plain (lower(a)) WHERE c > 0;
CREATE UNIQUE INDEX plain_c_unique ON s.plain (c);
ALTER TABLE s.plain ADD CONSTRAINT plain_excl EXCLUDE USING btree (c WITH =);
CREATE TABLE s.parts (id integer, at timestamptz NOT NULL, ref integer, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE s.parts_y2026m01 PARTITION OF s.parts FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
CREATE INDEX parts_ref ON s.parts (ref);`); err != nil {
		t.Fatal(err)
	}
	before := pgtest.Indexes(t, pool, "s")
	tables := []pipeline.Table{{Schema: "s", Name: "plain"}, {Schema: "s", Name: "parts"}}
	run := &manifests.Run{ID: pipeline.NewRunID(time.Now()), Kind: "run", Selection: "test", AsOf: time.Now(), SourceKind: "test",
		SourceFingerprint: "test", Options: []byte(`{}`), ToolVersion: "t", TransformVersion: "t", Status: "running", StartedAt: time.Now()}
	target := NewTarget(pool)
	if err := target.StartRun(ctx, run, tables, pipeline.Deferral{Indexes: tables}); err != nil {
		t.Fatal(err)
	}
	during := pgtest.Indexes(t, pool, "s")
	var gone []string
	for name := range before {
		if _, ok := during[name]; !ok {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	if want := []string{"parts_ref", "parts_y2026m01_ref_idx", "plain_a", "plain_lower_a"}; !slices.Equal(gone, want) {
		t.Fatalf("dropped %v, want %v", gone, want)
	}
	store := manifests.NewStore(pool)
	for _, d := range checkRecorded(t, store, run.ID, manifests.DeferredIndexKind, "parts/parts_ref", "plain/plain_a", "plain/plain_lower_a") {
		if strings.Contains(d.Definition, " ON ONLY ") {
			t.Errorf("record %+v", d)
		}
	}

	// A partition created while the index is away (the scheduler creates monthly ones before
	// loading) gets it too.
	if _, err := pool.Exec(ctx, `CREATE TABLE s.parts_y2026m02 PARTITION OF s.parts FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00')`); err != nil {
		t.Fatal(err)
	}
	if err := target.RestoreDeferred(ctx, tables); err != nil {
		t.Fatal(err)
	}
	after := pgtest.Indexes(t, pool, "s")
	sameDefinitions(t, "index", before, after)
	if def, ok := after["parts_y2026m02_ref_idx"]; !ok || strings.HasSuffix(def, "INVALID") {
		t.Errorf("the new partition's index: %q (present %v); all: %v", def, ok, after)
	}
	if left, err := store.Deferred(ctx, "", ""); err != nil || len(left) != 0 {
		t.Fatalf("records left after the rebuild: %v %v", left, err)
	}
	// Rebuilding again, or a record whose index someone already recreated, is harmless.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.RecordDeferred(ctx, tx, manifests.Deferred{Kind: manifests.DeferredIndexKind, Schema: "s", Table: "plain", Name: "plain_a", Definition: "CREATE INDEX plain_a ON s.plain USING btree (a)", RunID: run.ID}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := target.RestoreDeferred(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if left, err := store.Deferred(ctx, "", ""); err != nil || len(left) != 0 {
		t.Fatalf("records left: %v %v", left, err)
	}
}

// TestDeferIndexesRollsBackWithTheRun: when the run cannot be recorded, no index is dropped.
func TestDeferIndexesRollsBackWithTheRun(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA s; CREATE TABLE s.plain (id integer PRIMARY KEY, a text); CREATE INDEX plain_a ON s.plain (a)`); err != nil {
		t.Fatal(err)
	}
	run := &manifests.Run{ID: pipeline.NewRunID(time.Now()), Kind: "run", Selection: "test", AsOf: time.Now(), SourceKind: "test",
		SourceFingerprint: "test", Options: []byte(`{}`), ToolVersion: "t", TransformVersion: "t", Status: "running", StartedAt: time.Now()}
	tables := []pipeline.Table{{Schema: "s", Name: "plain"}, {Schema: "s", Name: "missing"}}
	if err := NewTarget(pool).StartRun(ctx, run, nil, pipeline.Deferral{Indexes: tables}); err == nil {
		t.Fatal("StartRun deferred the indexes of a missing table")
	}
	if _, ok := pgtest.Indexes(t, pool, "s")["plain_a"]; !ok {
		t.Error("plain_a was dropped by a run that was never recorded")
	}
	var runs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM convert.runs WHERE id = $1`, run.ID).Scan(&runs); err != nil || runs != 0 {
		t.Errorf("run recorded: %d %v", runs, err)
	}
}

// TestDeferForeignKeys: StartRun drops the foreign keys of the tables (a partitioned table's
// and thereby its partitions' copies) and records them in the same transaction;
// RestoreDeferred adds each again as it was, validated, on a partition created meanwhile too.
// A row that violates a deferred key makes the restore fail naming the key, which stays
// recorded; once the row is corrected the restore completes.
func TestDeferForeignKeys(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA s;
CREATE TABLE s.parent (id integer PRIMARY KEY, code text UNIQUE);
CREATE TABLE s.child (id integer PRIMARY KEY, parent_id integer REFERENCES s.parent, code text,
    CONSTRAINT "child code" FOREIGN KEY (code) REFERENCES s.parent (code) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE s.parts (id integer, at timestamptz NOT NULL, ref integer REFERENCES s.parent, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE s.parts_y2026m01 PARTITION OF s.parts FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
INSERT INTO s.parent VALUES (1, 'a'), (2, 'b');`); err != nil {
		t.Fatal(err)
	}
	before := pgtest.ForeignKeys(t, pool, "s")
	if len(before) != 4 {
		t.Fatalf("setup: foreign keys %v", before)
	}
	tables := []pipeline.Table{{Schema: "s", Name: "parent"}, {Schema: "s", Name: "child"}, {Schema: "s", Name: "parts"}}
	newRun := func() *manifests.Run {
		return &manifests.Run{ID: pipeline.NewRunID(time.Now()), Kind: "run", Selection: "test", AsOf: time.Now(), SourceKind: "test",
			SourceFingerprint: "test", Options: []byte(`{}`), ToolVersion: "t", TransformVersion: "t", Status: "running", StartedAt: time.Now()}
	}
	target := NewTarget(pool)
	store := manifests.NewStore(pool)
	run := newRun()
	if err := target.StartRun(ctx, run, nil, pipeline.Deferral{ForeignKeys: tables}); err != nil {
		t.Fatal(err)
	}
	if during := pgtest.ForeignKeys(t, pool, "s"); len(during) != 0 {
		t.Fatalf("foreign keys left while deferred: %v", during)
	}
	checkRecorded(t, store, run.ID, manifests.DeferredForeignKeyKind, "child/child code", "child/child_parent_id_fkey", "parts/parts_ref_fkey")
	if _, err := pool.Exec(ctx, `CREATE TABLE s.parts_y2026m02 PARTITION OF s.parts FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00');
INSERT INTO s.child VALUES (1, 1, 'a'), (2, NULL, 'b');
INSERT INTO s.parts VALUES (1, '2026-01-05', 1), (2, '2026-02-05', 2);`); err != nil {
		t.Fatal(err)
	}
	if err := target.RestoreDeferred(ctx, tables); err != nil {
		t.Fatal(err)
	}
	after := pgtest.ForeignKeys(t, pool, "s")
	sameDefinitions(t, "foreign key", before, after)
	if _, ok := after["parts_y2026m02.parts_ref_fkey"]; !ok {
		t.Errorf("the new partition has no copy of parts_ref_fkey: %v", after)
	}
	if left, err := store.Deferred(ctx, "", ""); err != nil || len(left) != 0 {
		t.Fatalf("records left after the restore: %v %v", left, err)
	}

	// A violating row: the restore fails naming the key, which stays deferred and absent.
	if err := target.StartRun(ctx, newRun(), nil, pipeline.Deferral{ForeignKeys: tables[1:2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO s.child VALUES (3, 99, 'a')`); err != nil {
		t.Fatal(err)
	}
	err := target.RestoreDeferred(ctx, tables)
	if err == nil || !strings.Contains(err.Error(), "child_parent_id_fkey") || !strings.Contains(err.Error(), "stays deferred") {
		t.Fatalf("restore over a violating row: %v", err)
	}
	if _, ok := pgtest.ForeignKeys(t, pool, "s")["child.child_parent_id_fkey"]; ok {
		t.Error("child_parent_id_fkey exists although it did not validate")
	}
	left, err := store.Deferred(ctx, "", "")
	if err != nil || len(left) != 1 || left[0].Name != "child_parent_id_fkey" {
		t.Fatalf("records after the failed restore: %+v %v", left, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE s.child SET parent_id = 2 WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if err := target.RestoreDeferred(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.ForeignKeys(t, pool, "s"); !maps.Equal(got, after) {
		t.Errorf("foreign keys after the second restore\n%v\nwant\n%v", got, after)
	}
}

// checkRecorded checks that exactly want ("table/name") are recorded as deferred, each of kind
// and by runID, and returns the records.
func checkRecorded(t *testing.T, store *manifests.Store, runID, kind string, want ...string) []manifests.Deferred {
	t.Helper()
	recorded, err := store.Deferred(t.Context(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range recorded {
		names = append(names, d.Table+"/"+d.Name)
		if d.RunID != runID || d.Kind != kind {
			t.Errorf("record %+v", d)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("recorded %v, want %v", names, want)
	}
	return recorded
}

// sameDefinitions reports every object of before whose definition differs after the restore.
func sameDefinitions(t *testing.T, kind string, before, after map[string]string) {
	t.Helper()
	for name, def := range before {
		if after[name] != def {
			t.Errorf("%s %s after the restore: %q, before: %q", kind, name, after[name], def)
		}
	}
}
