package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

func parseMaxRejects(s string) (pipeline.RejectLimit, error) {
	if s == "" {
		return pipeline.RejectLimit{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return pipeline.RejectLimit{}, usagef("--max-rejects %q: want N or P%% with P in 0..100", s)
		}
		return pipeline.RejectLimit{Fraction: f / 100}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return pipeline.RejectLimit{}, usagef("--max-rejects %q: want N or P%%", s)
	}
	if n == 0 {
		// Zero rejects allowed: any reject crosses the limit.
		return pipeline.RejectLimit{Count: 0, Fraction: 1e-300}, nil
	}
	return pipeline.RejectLimit{Count: n}, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		from, to, module, asOfS, runID, maxRej, report, manifest, config string
		colls                                                            multiFlag
		workers, batchSize, rangeDocs                                    int
		resume, replace, createSchema, fixStrings, allowMissing, jsonL   bool
		delta                                                            bool
		sourceDB, sourceColl, tierDays                                   multiFlag
		sinceRun                                                         string
		retryFor                                                         time.Duration
	)
	fs.StringVar(&from, "from", "", "source: mongodb:// URI, mongodump directory or archive (default $MONGO_URI)")
	fs.StringVar(&to, "to", "", "target PostgreSQL DSN (default $DATABASE_URL, then PG* variables)")
	fs.StringVar(&module, "module", "", "modules to convert (authority, scheduler, concelier, excititor, all)")
	fs.Var(&colls, "collection", "with --module: a collection NAME to restrict it to; without: DB.COLL[=SCHEMA.TABLE], the generic JSONB mode (repeatable)")
	fs.StringVar(&asOfS, "as-of", "", "RFC 3339 time tier windows are relative to (default now)")
	fs.IntVar(&workers, "workers", runtime.NumCPU(), "parallel ranges")
	fs.IntVar(&batchSize, "batch-size", pipeline.DefaultBatchSize, "documents per batch (a batch also closes at 8 MiB)")
	fs.IntVar(&rangeDocs, "range-docs", live.DefaultRangeDocs, "documents per planned range of a live collection")
	fs.StringVar(&runID, "run-id", "", "continue this unfinished run")
	fs.BoolVar(&resume, "resume", false, "continue the latest unfinished run of the same selection")
	fs.BoolVar(&replace, "replace", false, "truncate the selected tables and start a new run")
	fs.BoolVar(&createSchema, "create-schema", false, "create the module schemas")
	fs.StringVar(&maxRej, "max-rejects", "", "stop (exit 4) past N rejects or P% of documents read")
	fs.BoolVar(&fixStrings, "fix-strings", false, "remove NUL and replace invalid UTF-8 instead of rejecting")
	fs.StringVar(&config, "config", "", "operator overrides (JSON: {\"modules\": {M: {\"database\", \"collections\", \"tier_days\"}}})")
	fs.Var(&sourceDB, "source-db", "MODULE=DB: the module's source database (repeatable)")
	fs.Var(&sourceColl, "source-collection", "MODULE.DEFAULT=ACTUAL: a collection's name in this deployment (repeatable)")
	fs.Var(&tierDays, "tier-days", "MODULE.COLLECTION=DAYS: a Tier B window's length (repeatable)")
	fs.BoolVar(&allowMissing, "allow-missing", false, "convert the rest when a collection is absent from the source")
	fs.StringVar(&report, "report", "", "write the report as JSON to this file")
	fs.StringVar(&manifest, "manifest", "", "export the run's manifest as JSON (zstd if it ends in .zst)")
	fs.BoolVar(&delta, "delta", false, "delta catch-up after --since-run")
	fs.StringVar(&sinceRun, "since-run", "", "the run a delta catches up from")
	fs.DurationVar(&retryFor, "retry-for", pipeline.DefaultRetryFor, "how long to retry transient errors")
	fs.BoolVar(&jsonL, "json", false, "JSON log lines and a JSON report on stdout")
	if err := fs.Parse(args); err != nil {
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("run: unexpected argument %q", fs.Arg(0))
	}
	modes := 0
	for _, b := range []bool{runID != "", resume, replace} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return usagef("--run-id, --resume and --replace exclude each other")
	}
	if delta || sinceRun != "" {
		return usagef("--delta is not available in this version")
	}
	ov, err := loadOverrides(config, sourceDB, sourceColl, tierDays)
	if err != nil {
		return err
	}
	if createSchema && module == "" {
		return usagef("--create-schema applies to --module runs (generic tables are created when missing)")
	}
	if workers < 1 || batchSize < 1 {
		return usagef("--workers and --batch-size must be at least 1")
	}
	limit, err := parseMaxRejects(maxRej)
	if err != nil {
		return err
	}
	var asOf time.Time
	if asOfS != "" {
		if asOf, err = tiers.ParseAsOf(asOfS, time.Now()); err != nil {
			return &usageError{msg: err.Error()}
		}
	}
	logger := newLogger(stderr, jsonL)

	opt := transforms.Options{FixStrings: fixStrings}
	// The selection's key does not depend on the as-of; its filters do, and are bound below.
	sel, err := selectCollections(module, colls, time.Time{}, opt, ov)
	if err != nil {
		return err
	}
	pool, store, err := openTarget(ctx, to, workers+4)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, key := range sel.lockKeys() {
		lock, err := load.TryLock(ctx, pool, key)
		if err != nil {
			return err
		}
		defer lock.Release(context.WithoutCancel(ctx))
	}
	if createSchema {
		for schema, migs := range moduleMigrations(sel.modules) {
			if err := load.ApplyMigrations(ctx, pool, schema, migs); err != nil {
				return err
			}
		}
	}

	// A resumed run keeps its recorded as-of (an explicit, different --as-of is refused by the
	// pipeline); a new run fixes its as-of now, so filters and record agree.
	bind := asOf
	if bind.IsZero() {
		var prev *manifests.Run
		if runID != "" {
			if prev, err = store.GetRun(ctx, runID); err != nil && !errors.Is(err, manifests.ErrNoRun) {
				return err
			}
		} else if resume {
			if prev, err = store.LatestUnfinished(ctx, sel.key, "run"); err != nil {
				return err
			}
		}
		if prev != nil {
			bind = prev.AsOf
		} else {
			bind = time.Now().UTC().Truncate(time.Millisecond)
			asOf = bind
		}
	}
	if sel, err = selectCollections(module, colls, bind, opt, ov); err != nil {
		return err
	}
	for i := range sel.jobs {
		sel.jobs[i].Optional = allowMissing
	}

	src, err := openSource(ctx, from, rangeDocs)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	logSourceWarnings(src, logger)
	if err := checkPresent(ctx, src, sel); err != nil {
		return err
	}

	progress := newProgress(stderr, logger)
	defer progress.Close()
	o := pipeline.Options{
		RunID: runID, Resume: resume, Replace: replace, Workers: workers, BatchSize: batchSize, MaxRejects: limit,
		RetryFor: retryFor, AsOf: asOf, Selection: sel.key, Modules: sel.modules, Collections: sel.colls, Result: sel.result,
		ToolVersion: toolVersion, TransformVersion: sel.version,
	}
	d := pipeline.Deps{
		Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: store, Collections: sel.jobs,
		Logger: logger, Progress: progress,
		IsTransient: func(err error) bool { return load.IsTransient(err) || live.IsTransient(err) },
	}
	rep, runErr := pipeline.Run(ctx, o, d)
	progress.Close()
	if rep != nil {
		if report != "" {
			if err := manifests.WriteFileAtomic(report, func(w io.Writer) error { return writeJSON(w, rep) }); err != nil && runErr == nil {
				runErr = err
			}
		}
		if manifest != "" {
			if err := store.WriteExport(context.WithoutCancel(ctx), rep.RunID, manifest); err != nil && runErr == nil {
				runErr = err
			}
		}
		if jsonL {
			_ = writeJSON(stdout, rep)
		} else {
			printReport(stdout, rep)
		}
	}
	return runErr
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printReport prints the per-collection summary table.
func printReport(w io.Writer, rep *pipeline.Report) {
	fmt.Fprintf(w, "run %s  status %s  as-of %s\n", rep.RunID, rep.Status, rep.AsOf.Format(time.RFC3339Nano))
	tw := newTable(w, "COLLECTION", "TIER", "READ", "LOADED", "REJECTED", "SKIPPED", "ROWS", "DOCS/S", "CHECKSUM")
	for _, c := range rep.Collections {
		var rows int64
		for _, n := range c.RowsByTable {
			rows += n
		}
		sum := c.Checksum
		if len(sum) > 16 {
			sum = sum[:16]
		}
		tw.row(c.Collection, c.Tier, c.Read, c.Loaded, c.Rejected, c.Skipped, rows, fmt.Sprintf("%.0f", c.DocsPerS), sum)
	}
	tw.row("TOTAL", "", rep.Totals.Read, rep.Totals.Loaded, rep.Totals.Rejected, rep.Totals.Skipped, rep.Totals.Rows, "", "")
	tw.flush()
}
