package main

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// TestDeferIndexesAndForeignKeys converts the scheduler module of the sample three times:
// plainly; with --defer-indexes --defer-foreign-keys; and with both stopped by --max-rejects 0
// at the first reject, which leaves the indexes and foreign keys dropped and listed by status,
// then resumed to the end (with a limit given again that the run's rejects do not cross: the
// recorded one would stop the resume again). Each ends with the same checksums, the same indexes, every one valid,
// the same validated foreign keys, and nothing left deferred.
func TestDeferIndexesAndForeignKeys(t *testing.T) {
	asOf := sample.DefaultAsOf
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, sample.Generate(sample.Options{Seed: 11, Scale: 1, AsOf: asOf}), dump.None); err != nil {
		t.Fatal(err)
	}
	args := func(pgURL string, extra ...string) []string {
		return append([]string{"run", "--from", dir, "--to", pgURL, "--module", "scheduler", "--create-schema",
			"--as-of", asOf.Format(time.RFC3339), "--batch-size", "20", "--json"}, extra...)
	}

	plainURL := pgtest.Database(t)
	plain := parseReport(t, mustConvert(t, nil, args(plainURL)...).stdout)
	want := pgtest.Indexes(t, pgConn(t, plainURL), "scheduler")
	if _, ok := want["runs_schedule_id"]; !ok {
		t.Fatalf("the scheduler schema has no secondary index to defer: %v", slices.Sorted(maps.Keys(want)))
	}
	wantFKs := pgtest.ForeignKeys(t, pgConn(t, plainURL), "scheduler")
	if _, ok := wantFKs["runs.runs_schedule_id_fkey"]; !ok {
		t.Fatalf("the scheduler schema has no foreign key to defer: %v", wantFKs)
	}

	check := func(what, pgURL string, rep report) {
		t.Helper()
		if rep.Status != "completed" {
			t.Fatalf("%s: run %s", what, rep.Status)
		}
		if got, exp := checksums(rep), checksums(plain); !maps.Equal(got, exp) {
			t.Errorf("%s: checksums %v, plain run %v", what, got, exp)
		}
		if got := pgtest.Indexes(t, pgConn(t, pgURL), "scheduler"); !maps.Equal(got, want) {
			t.Errorf("%s: indexes\n%v\nwant\n%v", what, got, want)
		}
		if got := pgtest.ForeignKeys(t, pgConn(t, pgURL), "scheduler"); !maps.Equal(got, wantFKs) {
			t.Errorf("%s: foreign keys\n%v\nwant\n%v", what, got, wantFKs)
		}
		var st struct {
			Deferred []map[string]any `json:"deferred"`
		}
		mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &st)
		if len(st.Deferred) != 0 {
			t.Errorf("%s: status lists deferred indexes after completion: %v", what, st.Deferred)
		}
	}

	deferURL := pgtest.Database(t)
	check("deferred", deferURL, parseReport(t, mustConvert(t, nil, args(deferURL, "--defer-indexes", "--defer-foreign-keys")...).stdout))

	stopURL := pgtest.Database(t)
	stopped := convert(t, nil, args(stopURL, "--defer-indexes", "--defer-foreign-keys", "--max-rejects", "0")...)
	if stopped.code != 4 {
		t.Fatalf("--max-rejects 0 on the sample: exit %d, want 4\n%s", stopped.code, stopped.stderr)
	}
	var st struct {
		Deferred []struct {
			Kind  string `json:"kind"`
			Table string `json:"table"`
			Name  string `json:"name"`
		} `json:"deferred"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", stopURL, "--json").stdout, &st)
	listed := map[string]bool{}
	for _, d := range st.Deferred {
		listed[d.Kind+" "+d.Table+"."+d.Name] = true
	}
	for _, w := range []string{"index runs.runs_schedule_id", "foreign key runs.runs_schedule_id_fkey"} {
		if !listed[w] {
			t.Errorf("status of the stopped run does not list %s as deferred: %+v", w, st.Deferred)
		}
	}
	if _, ok := pgtest.Indexes(t, pgConn(t, stopURL), "scheduler")["runs_schedule_id"]; ok {
		t.Fatal("runs_schedule_id exists while the stopped run has it deferred")
	}
	if _, ok := pgtest.ForeignKeys(t, pgConn(t, stopURL), "scheduler")["runs.runs_schedule_id_fkey"]; ok {
		t.Fatal("runs_schedule_id_fkey exists while the stopped run has it deferred")
	}
	check("stopped, then resumed", stopURL, parseReport(t, mustConvert(t, nil, args(stopURL, "--resume", "--max-rejects", "100")...).stdout))
}

// TestDeferForeignKeysDerived: authority's derived tables (tenants, roles, user_roles) carry
// foreign keys and are restored with their module, after the collections that feed them. A
// run with --defer-foreign-keys ends like a plain one: same checksums, derived tables
// included, the same validated foreign keys, nothing left deferred.
func TestDeferForeignKeysDerived(t *testing.T) {
	asOf := sample.DefaultAsOf
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, sample.Generate(sample.Options{Seed: 12, Scale: 1, AsOf: asOf}), dump.None); err != nil {
		t.Fatal(err)
	}
	args := func(pgURL string, extra ...string) []string {
		return append([]string{"run", "--from", dir, "--to", pgURL, "--module", "authority", "--create-schema",
			"--as-of", asOf.Format(time.RFC3339), "--batch-size", "20", "--json"}, extra...)
	}
	plainURL := pgtest.Database(t)
	plain := parseReport(t, mustConvert(t, nil, args(plainURL)...).stdout)
	wantFKs := pgtest.ForeignKeys(t, pgConn(t, plainURL), "authority")
	for _, fk := range []string{"user_roles.user_roles_user_id_fkey", "user_roles.user_roles_role_id_fkey", "users.users_tenant_id_fkey"} {
		if _, ok := wantFKs[fk]; !ok {
			t.Fatalf("the authority schema has no foreign key %s: %v", fk, slices.Sorted(maps.Keys(wantFKs)))
		}
	}

	deferURL := pgtest.Database(t)
	rep := parseReport(t, mustConvert(t, nil, args(deferURL, "--defer-foreign-keys")...).stdout)
	if rep.Status != "completed" {
		t.Fatalf("run %s", rep.Status)
	}
	if got, exp := checksums(rep), checksums(plain); !maps.Equal(got, exp) {
		t.Errorf("checksums %v, plain run %v", got, exp)
	}
	if got := pgtest.ForeignKeys(t, pgConn(t, deferURL), "authority"); !maps.Equal(got, wantFKs) {
		t.Errorf("foreign keys\n%v\nwant\n%v", got, wantFKs)
	}
	var st struct {
		Deferred []map[string]any `json:"deferred"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", deferURL, "--json").stdout, &st)
	if len(st.Deferred) != 0 {
		t.Errorf("status lists deferred objects after completion: %v", st.Deferred)
	}
}
