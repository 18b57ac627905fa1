package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// trustDump writes a plain dump of n documents into db "trust", collection "things": every
// badEvery-th holds invalid UTF-8 (rejected unless --fix-strings mends it), every dupEvery-th
// a duplicate key (rejected always); 0 turns a kind off.
func trustDump(t *testing.T, n, badEvery, dupEvery int) string {
	t.Helper()
	var docs []bson.Raw
	for i := 0; i < n; i++ {
		d := bson.D{{Key: "_id", Value: fmt.Sprintf("d%05d", i)}, {Key: "tenant", Value: tenants[i%4]}, {Key: "n", Value: int32(i)}}
		switch {
		case dupEvery > 0 && i%dupEvery == dupEvery-1:
			d = append(d, bson.E{Key: "k", Value: int32(1)}, bson.E{Key: "k", Value: int32(2)})
		case badEvery > 0 && i%badEvery == badEvery-1:
			d = append(d, bson.E{Key: "s", Value: "bad \xff\xfe"})
		}
		docs = append(docs, marshal(t, d))
	}
	root := filepath.Join(t.TempDir(), "dump")
	writeDumpDir(t, root, "trust", map[string][]bson.Raw{"things": docs}, dump.None)
	return root
}

// runRow reads one run's status, superseding run and committed batch count.
func runRow(t *testing.T, pgURL, id string) (status, supersededBy string, batches int) {
	t.Helper()
	conn := pgConn(t, pgURL)
	if err := conn.QueryRow(t.Context(), `SELECT status, (SELECT count(*) FROM convert.batches b WHERE b.run_id = r.id) FROM convert.runs r WHERE id = $1`, id).
		Scan(&status, &batches); err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	// superseded_by exists only once the fix's migration ran; before it the status says enough.
	_ = conn.QueryRow(t.Context(), `SELECT coalesce(superseded_by, '') FROM convert.runs WHERE id = $1`, id).Scan(&supersededBy)
	return status, supersededBy, batches
}

func onlyRunID(t *testing.T, pgURL, kind string) string {
	t.Helper()
	conn := pgConn(t, pgURL)
	var id string
	if err := conn.QueryRow(t.Context(), `SELECT id FROM convert.runs WHERE kind = $1 ORDER BY started_at DESC LIMIT 1`, kind).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// statusOf is the status `status --json` lists for a run.
func statusOf(t *testing.T, pgURL, id string) string {
	t.Helper()
	var listed struct {
		Runs []report `json:"runs"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &listed)
	for _, r := range listed.Runs {
		if r.RunID == id {
			return r.Status
		}
	}
	t.Fatalf("status does not list run %s", id)
	return ""
}

// TestResumePassesOverSupersededRun: run A stops mid-way (--max-rejects), run B --replace
// completes over the same tables; --resume must not continue A (that would write A's remaining
// documents onto B's rows) but say there is nothing to resume and print B's report; status shows
// A superseded, and --run-id A refuses naming B.
func TestResumePassesOverSupersededRun(t *testing.T) {
	root := trustDump(t, 300, 10, 0)
	pgURL := pgtest.Database(t)
	common := []string{"--from", root, "--to", pgURL, "--collection", "trust.things", "--batch-size", "10", "--workers", "1",
		"--as-of", "2026-06-01T00:00:00Z"}
	a := convert(t, nil, append([]string{"run", "--max-rejects", "3"}, common...)...)
	if a.code != 4 {
		t.Fatalf("run A: exit %d, want 4\n%s", a.code, a.stderr)
	}
	aID := onlyRunID(t, pgURL, "run")
	_, _, aBatches := runRow(t, pgURL, aID)
	b := parseReport(t, mustConvert(t, nil, append([]string{"run", "--replace", "--json"}, common...)...).stdout)
	if b.Status != "completed" || b.RunID == aID {
		t.Fatalf("run B: %+v", b)
	}

	res := convert(t, nil, append([]string{"run", "--resume", "--json"}, common...)...)
	if res.code != 0 {
		t.Fatalf("--resume: exit %d, want 0\n%s", res.code, res.stderr)
	}
	if got := parseReport(t, res.stdout); got.RunID != b.RunID || !strings.Contains(res.stderr, "nothing to resume") {
		t.Errorf("--resume reported run %s (A %s, B %s); want B's report and nothing to resume\n%s", got.RunID, aID, b.RunID, res.stderr)
	}
	status, by, batches := runRow(t, pgURL, aID)
	if batches != aBatches {
		t.Errorf("run A was continued: %d batches, %d before", batches, aBatches)
	}
	if status != "superseded" || by != b.RunID {
		t.Errorf("run A is %s (superseded by %q), want superseded by %s", status, by, b.RunID)
	}
	if st := statusOf(t, pgURL, aID); st != "superseded" {
		t.Errorf("status lists run A as %s", st)
	}
	byID := convert(t, nil, append([]string{"run", "--run-id", aID}, common...)...)
	if byID.code != 2 || !strings.Contains(byID.stderr, b.RunID) {
		t.Errorf("--run-id of a superseded run: exit %d, want 2 naming %s\n%s", byID.code, b.RunID, byID.stderr)
	}
	verifyClean(t, root, pgURL, b.RunID)
}

// TestDeltaSupersededByLaterDelta: an unfinished delta D1 is superseded by a later delta D2 over
// the same tables; a --resume after D2 completed must not continue D1 at its old as-of.
func TestDeltaSupersededByLaterDelta(t *testing.T) {
	root := trustDump(t, 300, 10, 0)
	pgURL := pgtest.Database(t)
	common := []string{"--from", root, "--to", pgURL, "--collection", "trust.things", "--batch-size", "10", "--workers", "1"}
	r := parseReport(t, mustConvert(t, nil, append([]string{"run", "--json", "--as-of", "2026-06-01T00:00:00Z"}, common...)...).stdout)
	d1 := convert(t, nil, append([]string{"run", "--delta", "--since-run", r.RunID, "--as-of", "2026-07-01T00:00:00Z", "--max-rejects", "3"}, common...)...)
	if d1.code != 4 {
		t.Fatalf("delta D1: exit %d, want 4\n%s", d1.code, d1.stderr)
	}
	d1ID := onlyRunID(t, pgURL, "delta")
	_, _, d1Batches := runRow(t, pgURL, d1ID)
	d2 := parseReport(t, mustConvert(t, nil, append([]string{"run", "--json", "--delta", "--since-run", r.RunID, "--as-of", "2026-08-01T00:00:00Z"}, common...)...).stdout)
	if d2.Status != "completed" {
		t.Fatalf("delta D2: %+v", d2)
	}

	res := convert(t, nil, append([]string{"run", "--json", "--delta", "--since-run", d2.RunID, "--resume"}, common...)...)
	if res.code != 0 {
		t.Fatalf("delta --resume: exit %d, want 0\n%s", res.code, res.stderr)
	}
	if got := parseReport(t, res.stdout); got.RunID != d2.RunID || !strings.Contains(res.stderr, "nothing to resume") {
		t.Errorf("delta --resume reported run %s (D1 %s, D2 %s); want D2's report and nothing to resume\n%s", got.RunID, d1ID, d2.RunID, res.stderr)
	}
	status, by, batches := runRow(t, pgURL, d1ID)
	if batches != d1Batches || status != "superseded" || by != d2.RunID {
		t.Errorf("delta D1: %s superseded by %q, %d batches (%d before); want superseded by %s, not continued", status, by, batches, d1Batches, d2.RunID)
	}
	verifyClean(t, root, pgURL, d2.RunID)
}

// TestRejectLimitAtCollectionEndHoldsOnResume: a P% limit crossed only when the collection ends
// (fewer than 1000 documents read) exits 4 without recording the collection completed, and a
// resume, with the limit recorded or repeated, exits 4 again instead of completing.
func TestRejectLimitAtCollectionEndHoldsOnResume(t *testing.T) {
	root := trustDump(t, 200, 6, 0) // 33 of 200 rejected: 16.5 %
	pgURL := pgtest.Database(t)
	common := []string{"--from", root, "--to", pgURL, "--collection", "trust.things", "--batch-size", "50", "--workers", "1"}
	first := convert(t, nil, append([]string{"run", "--max-rejects", "10%"}, common...)...)
	if first.code != 4 {
		t.Fatalf("run: exit %d, want 4\n%s", first.code, first.stderr)
	}
	id := onlyRunID(t, pgURL, "run")
	conn := pgConn(t, pgURL)
	collStatus := func() string {
		var st string
		if err := conn.QueryRow(t.Context(), `SELECT status FROM convert.collections WHERE run_id = $1`, id).Scan(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := collStatus(); st == "completed" {
		t.Errorf("collection past its limit recorded %s", st)
	}
	for _, extra := range [][]string{{"--resume"}, {"--resume", "--max-rejects", "10%"}, {"--run-id", id}} {
		res := convert(t, nil, append(append([]string{"run"}, extra...), common...)...)
		if res.code != 4 {
			t.Errorf("%v: exit %d, want 4\n%s", extra, res.code, res.stderr)
		}
	}
	status, _, _ := runRow(t, pgURL, id)
	if st := collStatus(); st == "completed" || status == "completed" {
		t.Errorf("after resumes: run %s, collection %s; want neither completed", status, st)
	}
}

// TestResumeUsesRecordedFixStrings: a run with --fix-strings stopped mid-way resumes without
// repeating the flag (a resume uses its recorded options), while an explicit --fix-strings=false
// refuses naming it; the result verifies clean.
func TestResumeUsesRecordedFixStrings(t *testing.T) {
	root := trustDump(t, 300, 7, 25) // duplicate keys reject even with --fix-strings
	pgURL := pgtest.Database(t)
	common := []string{"--from", root, "--to", pgURL, "--collection", "trust.things", "--batch-size", "10", "--workers", "1"}
	first := convert(t, nil, append([]string{"run", "--fix-strings", "--max-rejects", "2"}, common...)...)
	if first.code != 4 {
		t.Fatalf("run: exit %d, want 4\n%s", first.code, first.stderr)
	}
	id := onlyRunID(t, pgURL, "run")
	changed := convert(t, nil, append([]string{"run", "--resume", "--fix-strings=false", "--max-rejects", "100"}, common...)...)
	if changed.code != 2 || !strings.Contains(changed.stderr, "fix") {
		t.Errorf("--resume --fix-strings=false: exit %d, want 2 naming the option\n%s", changed.code, changed.stderr)
	}
	res := convert(t, nil, append([]string{"run", "--resume", "--json", "--max-rejects", "100"}, common...)...)
	if res.code != 0 {
		t.Fatalf("--resume without --fix-strings: exit %d, want 0\n%s", res.code, res.stderr)
	}
	rep := parseReport(t, res.stdout)
	if rep.RunID != id || rep.Status != "completed" || rep.Collections[0].Rejected != 12 || rep.Collections[0].Loaded != 288 {
		t.Errorf("resumed run: %+v (want run %s completed, 12 rejected, 288 loaded)", rep, id)
	}
	verifyClean(t, root, pgURL, id)
}

// TestJobAfterCompletedJob: once a job run completed, a plain `job` on the loaded target refuses
// naming --replace (it must not try to resume the finished run), and `job --replace` starts a new
// job run that loads the documents inserted meanwhile.
func TestJobAfterCompletedJob(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(300, 0, 0)
	seedCollection(t, client, db, "runs", set["runs"])
	pgURL := pgtest.Database(t)
	common := []string{"--from", uri, "--to", pgURL, "--collection", db + ".runs", "--batch-size", "50", "--workers", "1"}
	mustConvert(t, nil, append([]string{"job"}, common...)...)
	first := jobRunID(t, pgURL)

	var more []bson.D
	for i := 300; i < 350; i++ {
		more = append(more, bson.D{{Key: "_id", Value: oid(i, 1)}, {Key: "tenant", Value: "default"}, {Key: "n", Value: int32(i)}})
	}
	seedCollection(t, client, db, "runs", more)
	time.Sleep(10 * time.Millisecond) // a new as-of after the inserts

	again := convert(t, nil, append([]string{"job"}, common...)...)
	if again.code != 2 || !strings.Contains(again.stderr, "--replace") || strings.Contains(again.stderr, "cannot resume") {
		t.Errorf("job after a completed job: exit %d, want 2 naming --replace\n%s", again.code, again.stderr)
	}
	mustConvert(t, nil, append([]string{"job", "--replace"}, common...)...)
	second := jobRunID(t, pgURL)
	if second == first {
		t.Fatalf("job --replace continued run %s instead of starting a new one", first)
	}
	conn := pgConn(t, pgURL)
	var rows int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+db+`.runs`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 350 {
		t.Errorf("after job --replace: %d rows, want 350", rows)
	}
	verifyClean(t, uri, pgURL, second)
}

// TestJobRejectLimitCountsEveryWorker: a job's --max-rejects holds for the whole job: a joined
// worker that was not given the flag applies the job's recorded limit, the job stops on the
// committed counts of every process, and the collection is never recorded completed.
func TestJobRejectLimitCountsEveryWorker(t *testing.T) {
	root := trustDump(t, 1000, 10, 0) // 100 rejects
	pgURL := pgtest.Database(t)
	common := []string{"--from", root, "--to", pgURL, "--collection", "trust.things", "--batch-size", "10", "--span-bytes", "4000"}
	_, waitJob := startConvert(t, append([]string{"job", "--workers", "1", "--rate", "200", "--max-rejects", "60"}, common...)...)
	time.Sleep(1200 * time.Millisecond)
	_, waitJoin := startConvert(t, append([]string{"job", "--join", "--wait-for-job", "10s", "--workers", "2"}, common...)...)
	joinCode, joinErr := waitJoin()
	jobCode, jobErr := waitJob()
	if joinCode != 4 || jobCode != 4 {
		t.Errorf("job past its limit: job exit %d, joined worker exit %d; want 4 for both\njob:\n%s\njoined:\n%s", jobCode, joinCode, jobErr, joinErr)
	}
	conn := pgConn(t, pgURL)
	var status string
	var rejected int64
	if err := conn.QueryRow(t.Context(), `SELECT c.status, (SELECT coalesce(sum(rejected), 0) FROM convert.batches b WHERE b.run_id = c.run_id)
FROM convert.collections c JOIN convert.runs r ON r.id = c.run_id WHERE r.kind = 'job'`).Scan(&status, &rejected); err != nil {
		t.Fatal(err)
	}
	if status == "completed" || rejected <= 60 {
		t.Errorf("collection %s with %d rejects committed; want it stopped past 60, not completed", status, rejected)
	}
}

// TestResumeUsesRecordedOverrides: a module run with a --tier-days override stopped by
// --max-rejects resumes without repeating the override, with the recorded window (the result
// equals an uninterrupted run with it and verifies clean), while an explicitly different window
// refuses naming the overrides.
func TestResumeUsesRecordedOverrides(t *testing.T) {
	asOf := sample.DefaultAsOf
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, sample.Generate(sample.Options{Seed: 11, Scale: 1, AsOf: asOf}), dump.None); err != nil {
		t.Fatal(err)
	}
	args := func(pgURL string, extra ...string) []string {
		return append([]string{"run", "--from", dir, "--to", pgURL, "--module", "scheduler", "--create-schema",
			"--as-of", asOf.Format(time.RFC3339), "--batch-size", "20", "--json"}, extra...)
	}
	const window = "scheduler.runs=365"
	ref := parseReport(t, mustConvert(t, nil, args(pgtest.Database(t), "--tier-days", window)...).stdout)
	plain := parseReport(t, mustConvert(t, nil, args(pgtest.Database(t))...).stdout)
	if checksums(plain)["scheduler.runs"] == checksums(ref)["scheduler.runs"] {
		t.Fatalf("the window %s changes nothing on the sample: %v", window, checksums(ref))
	}

	pgURL := pgtest.Database(t)
	if stopped := convert(t, nil, args(pgURL, "--tier-days", window, "--max-rejects", "0")...); stopped.code != 4 {
		t.Fatalf("--max-rejects 0: exit %d, want 4\n%s", stopped.code, stopped.stderr)
	}
	other := convert(t, nil, args(pgURL, "--resume", "--max-rejects", "100", "--tier-days", "scheduler.runs=180")...)
	if other.code != 2 || !strings.Contains(other.stderr, "overrides") {
		t.Errorf("--resume with another window: exit %d, want 2 naming the overrides\n%s", other.code, other.stderr)
	}
	res := convert(t, nil, args(pgURL, "--resume", "--max-rejects", "100")...)
	if res.code != 0 {
		t.Fatalf("--resume without --tier-days: exit %d, want 0\n%s", res.code, res.stderr)
	}
	rep := parseReport(t, res.stdout)
	if got, want := checksums(rep), checksums(ref); rep.Status != "completed" || !maps.Equal(got, want) {
		t.Errorf("resumed run %s: checksums %v, uninterrupted run with the override %v", rep.Status, got, want)
	}
	verifyClean(t, dir, pgURL, rep.RunID)
}
