package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

// TestCrashResume kills the real binary with SIGKILL at random moments of a run, resumes it
// each time, and checks that the result equals an uninterrupted run: same checksum (so the same
// rows, no duplicates, no gaps), same counts, and status completed.
func TestCrashResume(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(3000, 1500, 1000)
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
	}
	colls := collectionArgs(db, "runs", "schedules", "events")
	asOf := "2026-06-01T00:00:00Z"

	refURL := pgtest.Database(t)
	ref := parseReport(t, mustConvert(t, nil, append([]string{"run", "--from", uri, "--to", refURL, "--as-of", asOf,
		"--workers", "2", "--json"}, colls...)...).stdout)

	pgURL := pgtest.Database(t)
	args := append([]string{"run", "--from", uri, "--to", pgURL, "--as-of", asOf, "--resume", "--workers", "2",
		"--batch-size", "25", "--range-docs", "900"}, colls...)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, finished, lockRetries := 0, false, 0
	for attempt := 0; attempt < 60 && !finished; attempt++ {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, binPath, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		wait := time.Duration(100+rng.IntN(1900)) * time.Millisecond
		if kills >= 12 {
			wait = 3 * time.Minute // enough kills: let it finish
		}
		select {
		case err := <-done:
			if err != nil && cmd.ProcessState.ExitCode() == 5 && lockRetries < 5 {
				// The killed process's server session still held the lock: try again.
				lockRetries++
				cancel()
				continue
			}
			if err != nil {
				cancel()
				t.Fatalf("run exited on its own with %v:\n%s", err, stderr.String())
			}
			finished = true
		case <-time.After(wait):
			_ = cmd.Process.Signal(os.Kill)
			<-done
			kills++
		}
		cancel()
	}
	if !finished || kills < 10 {
		t.Fatalf("finished %v after %d kills; want completion after at least 10", finished, kills)
	}
	t.Logf("completed after %d kills", kills)

	conn := pgConn(t, pgURL)
	var runs, unfinished int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE status <> 'completed') FROM convert.runs`).Scan(&runs, &unfinished); err != nil {
		t.Fatal(err)
	}
	if unfinished != 0 {
		t.Errorf("%d of %d runs are unfinished", unfinished, runs)
	}
	st := mustConvert(t, nil, "status", "--to", pgURL, "--json")
	var listed struct {
		Runs []report `json:"runs"`
	}
	mustUnmarshal(t, st.stdout, &listed)
	if len(listed.Runs) == 0 || listed.Runs[0].Status != "completed" {
		t.Fatalf("status after resumes: %s", st.stdout)
	}
	got := listed.Runs[0]
	for name, want := range checksums(ref) {
		if checksums(got)[name] != want {
			t.Errorf("%s: checksum after %d kills %s, uninterrupted %s", name, kills, checksums(got)[name], want)
		}
	}
	for _, c := range got.Collections {
		if c.Read != c.Loaded+c.Rejected+c.Skipped || c.Read != int64(len(set[c.Collection[len(db)+1:]])) {
			t.Errorf("%s: read %d loaded %d rejected %d skipped %d", c.Collection, c.Read, c.Loaded, c.Rejected, c.Skipped)
		}
	}
	schema := db
	for name, docs := range set {
		checkGenericTable(t, conn, schema+"."+name, db, name, docs)
	}
	checkTargetChecksums(t, pgURL, got)
}

// TestDeterminism: the same input with one worker and small batches, and with four workers
// and large batches, gives identical collection checksums.
func TestDeterminism(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(2000, 800, 700)
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
	}
	colls := collectionArgs(db, "runs", "schedules", "events")
	var sums []map[string]string
	for _, opts := range [][]string{{"--workers", "1", "--batch-size", "100", "--range-docs", "300"}, {"--workers", "4", "--batch-size", "5000"}} {
		pgURL := pgtest.Database(t)
		args := append(append([]string{"run", "--from", uri, "--to", pgURL, "--as-of", "2026-06-01T00:00:00Z", "--json"}, opts...), colls...)
		sums = append(sums, checksums(parseReport(t, mustConvert(t, nil, args...).stdout)))
	}
	if len(sums[0]) != 3 {
		t.Fatalf("checksums: %v", sums[0])
	}
	for name, a := range sums[0] {
		if b := sums[1][name]; a != b || a == "" {
			t.Errorf("%s: workers 1/batch 100 gives %s, workers 4/batch 5000 gives %s", name, a, b)
		}
	}
}
