package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/stellaops/convert/pipeline"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var to, runID string
	var jsonOut bool
	fs.StringVar(&to, "to", "", "target PostgreSQL DSN (default $DATABASE_URL, then PG* variables)")
	fs.StringVar(&runID, "run-id", "", "show this run (default: list recent runs)")
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pool, store, err := openTarget(ctx, to, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if runID == "" {
		runs, err := store.Runs(ctx, 20)
		if err != nil {
			return err
		}
		var reps []*pipeline.Report
		for _, r := range runs {
			rep, err := pipeline.BuildReport(ctx, store, r.ID)
			if err != nil {
				return err
			}
			reps = append(reps, rep)
		}
		deferred, err := store.Deferred(ctx, "", "")
		if err != nil {
			return err
		}
		if jsonOut {
			return writeJSON(stdout, map[string]any{"format_version": pipeline.FormatVersion, "runs": reps, "deferred": deferred})
		}
		defer printDeferred(stdout, deferred)
		t := newTable(stdout, "RUN", "STATUS", "STARTED", "AS-OF", "COLLECTIONS", "READ", "LOADED", "REJECTED", "SKIPPED")
		for _, rep := range reps {
			status := rep.Status
			if rep.SupersededBy != "" {
				status += " by " + rep.SupersededBy
			}
			t.row(rep.RunID, status, rep.StartedAt.Format(time.RFC3339), rep.AsOf.Format(time.RFC3339), len(rep.Collections),
				rep.Totals.Read, rep.Totals.Loaded, rep.Totals.Rejected, rep.Totals.Skipped)
		}
		t.flush()
		return nil
	}
	rep, err := pipeline.BuildReport(ctx, store, runID)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	if jsonOut {
		return writeJSON(stdout, rep)
	}
	printReport(stdout, rep)
	if rep.Status == "running" {
		t := newTable(stdout, "COLLECTION", "STATUS", "RANGES DONE")
		for _, c := range rep.Collections {
			t.row(c.Collection, c.Status, fmt.Sprintf("%d/%d", c.RangesDone, c.RangesTotal))
		}
		t.flush()
	}
	if rep.SupersededBy != "" {
		fmt.Fprintf(stdout, "superseded by run %s, which wrote its tables: it is never continued\n", rep.SupersededBy)
	}
	if rep.Error != "" {
		fmt.Fprintf(stdout, "error: %s\n", rep.Error)
	}
	return nil
}
