package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// startConvert starts the binary in the background; wait returns its exit code and stderr.
func startConvert(t *testing.T, args ...string) (cmd *exec.Cmd, wait func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	cmd = exec.CommandContext(ctx, binPath, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	var code *int
	return cmd, func() (int, string) {
		if code == nil {
			c := <-done
			code = &c
			cancel()
		}
		return *code, stderr.String()
	}
}

func verifyClean(t *testing.T, uri, pgURL, runID string) {
	t.Helper()
	r := convert(t, nil, "verify", "--from", uri, "--to", pgURL, "--run-id", runID, "--json")
	var v verifyReport
	mustUnmarshal(t, r.stdout, &v)
	if r.code != 0 || !v.Clean {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func jobRunID(t *testing.T, pgURL string) string {
	t.Helper()
	conn := pgConn(t, pgURL)
	var id, status string
	if err := conn.QueryRow(t.Context(), `SELECT id, status FROM convert.runs WHERE kind = 'job' ORDER BY started_at DESC LIMIT 1`).Scan(&id, &status); err != nil {
		t.Fatal(err)
	}
	if status != "completed" {
		t.Fatalf("job run %s is %s", id, status)
	}
	return id
}

// TestJobSharedByThreeWorkers: a job and two joined workers share one selection; every range is
// done exactly once (one committed batch sequence per range, no duplicate rows), a second job
// for the same selection exits 5 while the first runs, and verify is clean.
func TestJobSharedByThreeWorkers(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(3000, 0, 0)
	seedCollection(t, client, db, "runs", set["runs"])
	pgURL := pgtest.Database(t)
	common := []string{"--from", uri, "--to", pgURL, "--collection", db + ".runs", "--batch-size", "50", "--range-docs", "200", "--workers", "1"}

	_, waitJob := startConvert(t, append([]string{"job", "--rate", "600"}, common...)...)
	// Let the job take its lock and plan, then add the others.
	time.Sleep(1500 * time.Millisecond)
	second := convert(t, nil, append([]string{"job"}, common...)...)
	if second.code != 5 {
		t.Errorf("second job: exit %d, want 5\n%s", second.code, second.stderr)
	}
	// status shows the running job's live progress from the manifest tables.
	var live struct {
		Runs []struct {
			Status      string `json:"status"`
			Collections []struct {
				RangesTotal int `json:"ranges_total"`
			} `json:"collections"`
		} `json:"runs"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &live)
	if len(live.Runs) != 1 || live.Runs[0].Status != "running" || len(live.Runs[0].Collections) != 1 || live.Runs[0].Collections[0].RangesTotal < 10 {
		t.Errorf("status while the job runs: %+v", live)
	}
	_, waitJ1 := startConvert(t, append([]string{"job", "--join", "--wait-for-job", "10s", "--rate", "600"}, common...)...)
	_, waitJ2 := startConvert(t, append([]string{"job", "--join", "--wait-for-job", "10s", "--rate", "600"}, common...)...)
	for name, w := range map[string]func() (int, string){"job": waitJob, "join 1": waitJ1, "join 2": waitJ2} {
		if code, stderr := w(); code != 0 {
			t.Fatalf("%s: exit %d\n%s", name, code, stderr)
		}
	}
	runID := jobRunID(t, pgURL)
	conn := pgConn(t, pgURL)
	var ranges, done, workers, dupBatches, rows int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(DISTINCT claimed_by) FROM convert.ranges WHERE run_id = $1`, runID).Scan(&ranges, &done, &workers); err != nil {
		t.Fatal(err)
	}
	if ranges < 10 || done != ranges {
		t.Errorf("%d of %d ranges done", done, ranges)
	}
	if workers < 2 {
		t.Errorf("ranges were claimed by %d worker(s); want the work shared", workers)
	}
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT range_no, first_id FROM convert.batches WHERE run_id = $1 GROUP BY 1, 2 HAVING count(*) > 1) d`, runID).Scan(&dupBatches); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+db+`.runs`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if dupBatches != 0 || rows != 3000 {
		t.Errorf("duplicate batches %d, rows %d (want 0 and 3000)", dupBatches, rows)
	}
	var dm int
	_ = conn.QueryRow(t.Context(), `SELECT count(*) FROM convert.runs WHERE id = $1 AND kind = 'job' AND status = 'completed'`, runID).Scan(&dm)
	if dm != 1 {
		t.Errorf("job run not completed")
	}
	verifyClean(t, uri, pgURL, runID)
}

// TestJobWorkerKilledMidBatch: a joined worker killed with SIGKILL while it holds ranges; its
// ranges are reclaimed once their heartbeat is stale, the job completes, verify is clean.
func TestJobWorkerKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a stale claim (30 s)")
	}
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(2000, 0, 0)
	seedCollection(t, client, db, "runs", set["runs"])
	pgURL := pgtest.Database(t)
	common := []string{"--from", uri, "--to", pgURL, "--collection", db + ".runs", "--batch-size", "20", "--range-docs", "250", "--workers", "1"}

	_, waitJob := startConvert(t, append([]string{"job", "--rate", "150"}, common...)...)
	time.Sleep(1200 * time.Millisecond)
	victim, waitVictim := startConvert(t, append([]string{"job", "--join", "--wait-for-job", "10s", "--workers", "2", "--rate", "400"}, common...)...)
	time.Sleep(2500 * time.Millisecond)
	_ = victim.Process.Signal(os.Kill)
	waitVictim()
	if code, stderr := waitJob(); code != 0 {
		t.Fatalf("job: exit %d\n%s", code, stderr)
	}
	runID := jobRunID(t, pgURL)
	conn := pgConn(t, pgURL)
	var reclaimed int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM convert.ranges WHERE run_id = $1 AND claim_epoch > 1`, runID).Scan(&reclaimed); err != nil {
		t.Fatal(err)
	}
	if reclaimed == 0 {
		t.Errorf("no range was reclaimed: the kill did not hit a claimed range")
	}
	verifyClean(t, uri, pgURL, runID)
	if st := mustConvert(t, nil, "status", "--to", pgURL, "--run-id", runID); !strings.Contains(st.stdout, "completed") {
		t.Errorf("status: %s", st.stdout)
	}
}

// TestJobStopsCleanlyAndRecordsItself: a module job stopped with SIGTERM exits 143 with its run
// stopped and no half batch; a new job resumes it to completion, records itself in the module
// schema's ledger as a data migration with its checksum and applied_at, and verify is clean.
func TestJobStopsCleanlyAndRecordsItself(t *testing.T) {
	asOf := sample.DefaultAsOf
	colls := sample.Generate(sample.Options{Seed: 5, Scale: 2, AsOf: asOf})
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, colls, dump.None); err != nil {
		t.Fatal(err)
	}
	pgURL := pgtest.Database(t)
	args := []string{"job", "--from", dir, "--to", pgURL, "--module", "scheduler", "--create-schema", "--as-of", asOf.Format(time.RFC3339),
		"--batch-size", "10", "--workers", "1", "--rate", "300"}
	cmd, wait := startConvert(t, args...)
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code, stderr := wait(); code != 143 {
		t.Fatalf("SIGTERM: exit %d, want 143\n%s", code, stderr)
	}
	conn := pgConn(t, pgURL)
	var status string
	var half int
	if err := conn.QueryRow(t.Context(), `SELECT status FROM convert.runs WHERE kind = 'job'`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "stopped" {
		t.Errorf("run after SIGTERM is %s, want stopped", status)
	}
	// Every committed batch carries exactly its rows: no half batch.
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT sum(loaded) AS l FROM convert.batches WHERE collection = 'scheduler.schedules') b
WHERE b.l <> (SELECT count(*) FROM scheduler.schedules)`).Scan(&half); err != nil {
		t.Fatal(err)
	}
	if half != 0 {
		t.Error("rows in scheduler.schedules differ from the committed batches' counts")
	}
	if code, stderr := func() (int, string) { _, w := startConvert(t, args[:len(args)-2]...); return w() }(); code != 0 {
		t.Fatalf("resumed job: exit %d\n%s", code, stderr)
	}
	runID := jobRunID(t, pgURL)
	var name string
	var applied *time.Time
	var sum []byte
	if err := conn.QueryRow(t.Context(), `SELECT name, checksum, applied_at FROM scheduler.schema_migrations WHERE kind = 'dm' AND version = $1`, "convert-"+runID).Scan(&name, &sum, &applied); err != nil {
		t.Fatalf("data migration row: %v", err)
	}
	if applied == nil || len(sum) != 32 {
		t.Errorf("data migration row: applied_at %v, checksum %x", applied, sum)
	}
	verifyClean(t, dir, pgURL, runID)
}
