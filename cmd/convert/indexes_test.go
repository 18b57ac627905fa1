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

// TestDeferIndexes converts the scheduler module of the sample three times: plainly; with
// --defer-indexes; and with --defer-indexes stopped by --max-rejects 0 at the first reject,
// which leaves the indexes dropped and listed by status, then resumed to the end. Each ends
// with the same checksums and the same indexes, every one valid, and nothing left deferred.
func TestDeferIndexes(t *testing.T) {
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
		var st struct {
			Deferred []map[string]any `json:"deferred_indexes"`
		}
		mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &st)
		if len(st.Deferred) != 0 {
			t.Errorf("%s: status lists deferred indexes after completion: %v", what, st.Deferred)
		}
	}

	deferURL := pgtest.Database(t)
	check("--defer-indexes", deferURL, parseReport(t, mustConvert(t, nil, args(deferURL, "--defer-indexes")...).stdout))

	stopURL := pgtest.Database(t)
	stopped := convert(t, nil, args(stopURL, "--defer-indexes", "--max-rejects", "0")...)
	if stopped.code != 4 {
		t.Fatalf("--max-rejects 0 on the sample: exit %d, want 4\n%s", stopped.code, stopped.stderr)
	}
	var st struct {
		Deferred []struct {
			Index string `json:"index"`
			RunID string `json:"run_id"`
		} `json:"deferred_indexes"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", stopURL, "--json").stdout, &st)
	if !slices.ContainsFunc(st.Deferred, func(d struct {
		Index string `json:"index"`
		RunID string `json:"run_id"`
	}) bool {
		return d.Index == "runs_schedule_id"
	}) {
		t.Fatalf("status of the stopped run does not list runs_schedule_id as deferred: %+v", st.Deferred)
	}
	if _, ok := pgtest.Indexes(t, pgConn(t, stopURL), "scheduler")["runs_schedule_id"]; ok {
		t.Fatal("runs_schedule_id exists while the stopped run has it deferred")
	}
	check("stopped, then resumed", stopURL, parseReport(t, mustConvert(t, nil, args(stopURL, "--resume")...).stdout))
}
