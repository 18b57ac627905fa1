package main

import (
	"context"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

// TestJobSurvivesPostgresRestart: PostgreSQL restarted (pg_ctl restart -m fast) mid-job; the job
// retries from its last committed batches, takes its lock again, completes, and verify is clean.
func TestJobSurvivesPostgresRestart(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(2500, 0, 0)
	seedCollection(t, client, db, "runs", set["runs"])
	srv := pgtest.StartServer(t)
	pgURL := srv.URL()

	_, waitJob := startConvert(t, "job", "--from", uri, "--to", pgURL, "--collection", db+".runs", "--batch-size", "25",
		"--range-docs", "400", "--workers", "2", "--rate", "400")
	time.Sleep(2500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if code, stderr := waitJob(); code != 0 {
		t.Fatalf("job after a PostgreSQL restart: exit %d\n%s", code, stderr)
	}
	verifyClean(t, uri, pgURL, jobRunID(t, pgURL))
}

// TestRunSurvivesMongoRestart: the Mongo server stopped mid-run and started again a few seconds
// later; the run retries its cursors from the last committed batch and completes, verify clean.
func TestRunSurvivesMongoRestart(t *testing.T) {
	fdb := ferrettest.StartServer(t)
	uri := fdb.URI()
	client := mongoClient(t, uri)
	set := seedSet(2500, 0, 0)
	seedCollection(t, client, "faults", "runs", set["runs"])
	pgURL := pgtest.Database(t)

	_, waitJob := startConvert(t, "job", "--from", uri, "--to", pgURL, "--collection", "faults.runs", "--batch-size", "25",
		"--range-docs", "400", "--workers", "2", "--rate", "400")
	time.Sleep(2500 * time.Millisecond)
	if err := fdb.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := fdb.Start(); err != nil {
		t.Fatal(err)
	}
	if code, stderr := waitJob(); code != 0 {
		t.Fatalf("job after a Mongo restart: exit %d\n%s", code, stderr)
	}
	verifyClean(t, uri, pgURL, jobRunID(t, pgURL))
}
