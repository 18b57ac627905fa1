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
	return pipeline.RejectLimit{HasCount: true, Count: n}, nil
}

// convFlags are the flags run and job share: where to read and write, what to convert, and
// the result-affecting options a resume must repeat.
type convFlags struct {
	from, to, module, asOfS, maxRej, report, config string
	colls, sourceDB, sourceColl, tierDays           multiFlag
	workers, batchSize, rangeDocs                   int
	spanBytes                                       int64
	replace, createSchema, fixStrings               bool
	allowMissing, jsonL                             bool
	retryFor                                        time.Duration

	// Parsed.
	ov    *Overrides
	limit pipeline.RejectLimit
	asOf  time.Time
	opt   transforms.Options
}

func (f *convFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from", "", "source: mongodb:// URI, mongodump directory or archive (default $MONGO_URI)")
	fs.StringVar(&f.to, "to", "", "target PostgreSQL DSN (default $DATABASE_URL, then PG* variables)")
	fs.StringVar(&f.module, "module", "", "modules to convert (authority, scheduler, concelier, excititor, all)")
	fs.Var(&f.colls, "collection", "with --module: a collection NAME to restrict it to; without: DB.COLL[=SCHEMA.TABLE], the generic JSONB mode (repeatable)")
	fs.StringVar(&f.asOfS, "as-of", "", "RFC 3339 time tier windows are relative to (default now)")
	fs.IntVar(&f.workers, "workers", runtime.NumCPU(), "parallel ranges")
	fs.IntVar(&f.batchSize, "batch-size", pipeline.DefaultBatchSize, "documents per batch (a batch also closes at 8 MiB)")
	fs.IntVar(&f.rangeDocs, "range-docs", live.DefaultRangeDocs, "documents per planned range of a live collection")
	fs.Int64Var(&f.spanBytes, "span-bytes", 0, "bytes per planned range of a plain dump file (0: about 1/16 of the file, 4 to 64 MiB)")
	fs.BoolVar(&f.replace, "replace", false, "truncate the selected tables and start a new run")
	fs.BoolVar(&f.createSchema, "create-schema", false, "create the module schemas")
	fs.StringVar(&f.maxRej, "max-rejects", "", "stop (exit 4) past N rejects or P% of documents read")
	fs.BoolVar(&f.fixStrings, "fix-strings", false, "remove NUL and replace invalid UTF-8 instead of rejecting")
	fs.StringVar(&f.config, "config", "", "operator overrides (JSON: {\"modules\": {M: {\"database\", \"collections\", \"tier_days\"}}})")
	fs.Var(&f.sourceDB, "source-db", "MODULE=DB: the module's source database (repeatable)")
	fs.Var(&f.sourceColl, "source-collection", "MODULE.DEFAULT=ACTUAL: a collection's name in this deployment (repeatable)")
	fs.Var(&f.tierDays, "tier-days", "MODULE.COLLECTION=DAYS: a Tier B window's length (repeatable)")
	fs.BoolVar(&f.allowMissing, "allow-missing", false, "convert the rest when a collection is absent from the source")
	fs.StringVar(&f.report, "report", "", "write the report as JSON to this file")
	fs.DurationVar(&f.retryFor, "retry-for", pipeline.DefaultRetryFor, "how long to retry transient errors")
	fs.BoolVar(&f.jsonL, "json", false, "JSON log lines and a JSON report on stdout")
}

// parse checks and reads the shared flags after fs.Parse.
func (f *convFlags) parse() error {
	var err error
	if f.ov, err = loadOverrides(f.config, f.sourceDB, f.sourceColl, f.tierDays); err != nil {
		return err
	}
	if f.createSchema && f.module == "" {
		return usagef("--create-schema applies to --module runs (generic tables are created when missing)")
	}
	if f.workers < 1 || f.batchSize < 1 {
		return usagef("--workers and --batch-size must be at least 1")
	}
	if f.limit, err = parseMaxRejects(f.maxRej); err != nil {
		return err
	}
	if f.asOfS != "" {
		if f.asOf, err = tiers.ParseAsOf(f.asOfS, time.Now()); err != nil {
			return &usageError{msg: err.Error()}
		}
	}
	f.opt = transforms.Options{FixStrings: f.fixStrings}
	return nil
}

// adoptRecorded makes a resume use the options its run recorded wherever the command line does
// not give them (cli.md: a resumed run always uses its recorded as-of and options; only an
// option given explicitly that would change the result refuses, which the pipeline decides by
// comparing the record with what is built here): --fix-strings, the overrides (--config,
// --source-db, --source-collection, --tier-days) and --max-rejects.
func (f *convFlags) adoptRecorded(fs *flag.FlagSet, run *manifests.Run) error {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(run.Options, &rec); err != nil {
		return fmt.Errorf("run %s: options: %w", run.ID, err)
	}
	if raw, ok := rec["fix_strings"]; ok && !given["fix-strings"] {
		if err := json.Unmarshal(raw, &f.fixStrings); err != nil {
			return fmt.Errorf("run %s: option fix_strings: %w", run.ID, err)
		}
		f.opt.FixStrings = f.fixStrings
	}
	if raw, ok := rec["overrides"]; ok && !given["config"] && !given["source-db"] && !given["source-collection"] && !given["tier-days"] {
		ov := &Overrides{}
		if err := json.Unmarshal(raw, &ov.Modules); err != nil {
			return fmt.Errorf("run %s: option overrides: %w", run.ID, err)
		}
		if ov.Modules == nil {
			ov.Modules = map[string]ModuleOverride{}
		}
		f.ov = ov
	}
	if !given["max-rejects"] {
		l, err := pipeline.RecordedRejectLimit(run)
		if err != nil {
			return err
		}
		f.limit = l
	}
	return nil
}

// selection binds the selection's filters to an as-of and marks --allow-missing.
func (f *convFlags) selection(asOf time.Time) (*selection, error) {
	sel, err := selectCollections(f.module, f.colls, asOf, f.opt, f.ov)
	if err != nil {
		return nil, err
	}
	for i := range sel.jobs {
		sel.jobs[i].Optional = f.allowMissing
	}
	return sel, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f convFlags
	f.register(fs)
	var (
		runID, manifest, sinceRun                     string
		resume, delta, deferIndexes, deferForeignKeys bool
	)
	fs.StringVar(&runID, "run-id", "", "continue this unfinished run")
	fs.BoolVar(&resume, "resume", false, "continue the latest unfinished run of the same selection")
	fs.StringVar(&manifest, "manifest", "", "export the run's manifest as JSON (zstd if it ends in .zst)")
	fs.BoolVar(&delta, "delta", false, "delta catch-up after --since-run")
	fs.StringVar(&sinceRun, "since-run", "", "the run a delta catches up from")
	fs.BoolVar(&deferIndexes, "defer-indexes", false, "fresh targets: drop the tables' secondary indexes when the run starts, rebuild each when its collection completes")
	fs.BoolVar(&deferForeignKeys, "defer-foreign-keys", false, "fresh targets: drop the tables' foreign keys when the run starts, add (and validate) each again when its collection completes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run: unexpected argument %q", fs.Arg(0))
	}
	modes := 0
	for _, b := range []bool{runID != "", resume, f.replace} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return usagef("--run-id, --resume and --replace exclude each other")
	}
	kind := "run"
	if delta || sinceRun != "" {
		if !delta || sinceRun == "" {
			return usagef("--delta and --since-run R go together")
		}
		if f.replace || runID != "" {
			return usagef("--delta excludes --replace and --run-id (use --resume to continue a delta)")
		}
		if deferIndexes || deferForeignKeys {
			return usagef("--defer-indexes and --defer-foreign-keys are for fresh targets: a delta run updates loaded tables in place")
		}
		kind = "delta"
	}
	if err := f.parse(); err != nil {
		return err
	}
	from, to, workers, batchSize, rangeDocs := f.from, f.to, f.workers, f.batchSize, f.rangeDocs
	replace, createSchema, jsonL, report, retryFor, asOf := f.replace, f.createSchema, f.jsonL, f.report, f.retryFor, f.asOf
	logger := newLogger(stderr, jsonL)

	// The selection's key does not depend on the as-of; its filters do, and are bound below.
	sel, err := f.selection(time.Time{})
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

	// A resumed run keeps its recorded as-of and options (an explicit, different one is refused
	// by the pipeline); a new run fixes its as-of now, so filters and record agree.
	var prev *manifests.Run
	if runID != "" {
		if prev, err = store.GetRun(ctx, runID); err != nil && !errors.Is(err, manifests.ErrNoRun) {
			return err
		}
	} else if resume {
		if prev, err = store.RunToResume(ctx, sel.key, kind); err != nil {
			return err
		}
	}
	if prev != nil {
		if err := f.adoptRecorded(fs, prev); err != nil {
			return err
		}
	}
	bind := asOf
	if bind.IsZero() {
		if prev != nil {
			bind = prev.AsOf
		} else {
			bind = time.Now().UTC().Truncate(time.Millisecond)
			asOf = bind
		}
	}
	if sel, err = f.selection(bind); err != nil {
		return err
	}

	src, err := openSource(ctx, from, rangeDocs, f.spanBytes)
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
		RunID: runID, Resume: resume, Replace: replace, DeferIndexes: deferIndexes, DeferForeignKeys: deferForeignKeys, Kind: kind, SinceRun: sinceRun, Workers: workers, BatchSize: batchSize, MaxRejects: f.limit,
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
		if um, err := unmappedCollections(context.WithoutCancel(ctx), src, sel); err == nil {
			rep.Unmapped = um
		}
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
	if len(rep.Unmapped) > 0 {
		fmt.Fprintf(w, "not converted (no module maps them): %s\n", strings.Join(rep.Unmapped, ", "))
	}
	printDeferred(w, rep.Deferred)
}

// printDeferred lists the indexes and foreign keys --defer-indexes and --defer-foreign-keys
// dropped that are still missing.
func printDeferred(w io.Writer, deferred []manifests.Deferred) {
	for _, d := range deferred {
		fmt.Fprintf(w, "%s %s on %s.%s deferred by run %s, not restored yet (restored when a collection loading the table completes): %s\n",
			d.Kind, d.Name, d.Schema, d.Table, d.RunID, d.Definition)
	}
}
