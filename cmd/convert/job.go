package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/pipeline/load"
)

// cmdJob is the batched data-migration job (cli.md, Job mode): the job process holds the
// module's lock for its life; `--join` processes add workers from anywhere.
func cmdJob(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f convFlags
	f.register(fs)
	var (
		join, wait        bool
		rate              float64
		pause, waitForJob time.Duration
	)
	fs.BoolVar(&join, "join", false, "be an extra worker of the module's running job")
	fs.BoolVar(&wait, "wait", false, "wait for the module's lock instead of exiting 5")
	fs.Float64Var(&rate, "rate", 0, "documents per second for this process (0 = unlimited)")
	fs.DurationVar(&pause, "pause", 0, "sleep this long after each committed batch, per worker")
	fs.DurationVar(&waitForJob, "wait-for-job", 0, "with --join: how long to wait for a job to appear")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("job: unexpected argument %q", fs.Arg(0))
	}
	if err := f.parse(); err != nil {
		return err
	}
	if rate < 0 || pause < 0 {
		return usagef("--rate and --pause must not be negative")
	}
	logger := newLogger(stderr, f.jsonL)
	sel, err := f.selection(time.Time{})
	if err != nil {
		return err
	}
	pool, store, err := openTarget(ctx, f.to, f.workers+4)
	if err != nil {
		return err
	}
	defer pool.Close()
	host, _ := os.Hostname()
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	worker := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(suffix[:]))

	jo := pipeline.JobOptions{Worker: worker, Rate: rate, Pause: pause}
	jo.Workers, jo.BatchSize, jo.MaxRejects, jo.RetryFor = f.workers, f.batchSize, f.limit, f.retryFor
	jo.Selection, jo.Modules, jo.ToolVersion = sel.key, sel.modules, toolVersion

	deps := func(sel *selection, src pipeline.Source) pipeline.Deps {
		return pipeline.Deps{Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: store, Collections: sel.jobs,
			Logger: logger, Progress: newProgress(stderr, logger),
			IsTransient: func(err error) bool { return load.IsTransient(err) || live.IsTransient(err) }}
	}

	if join {
		// Find the job first: the worker binds its filters to the job's as-of.
		deadline := time.Now().Add(waitForJob)
		var run *manifests.Run
		for {
			if run, err = store.LatestRunning(ctx, sel.key, "job"); err != nil {
				return err
			}
			if run != nil || !time.Now().Before(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		if run == nil {
			return fmt.Errorf("%s: %w", sel.key, pipeline.ErrNoJob)
		}
		if sel, err = selectionOfRun(run); err != nil {
			return err
		}
		// The job's --max-rejects holds for every worker that joins it, unless given here.
		if err := f.adoptRecorded(fs, run); err != nil {
			return err
		}
		jo.MaxRejects = f.limit
		src, err := openSource(ctx, f.from, f.rangeDocs, f.spanBytes)
		if err != nil {
			return err
		}
		defer src.Close(context.WithoutCancel(ctx))
		jo.Result, jo.TransformVersion = sel.result, sel.version
		return pipeline.JoinJob(ctx, jo, deps(sel, src), 0)
	}

	var locks []*load.Lock
	defer func() {
		for _, l := range locks {
			l.Release(context.WithoutCancel(ctx))
		}
	}()
	for _, key := range sel.lockKeys() {
		var l *load.Lock
		if wait {
			l, err = load.WaitLock(ctx, pool, key)
		} else {
			l, err = load.TryLock(ctx, pool, key)
		}
		if err != nil {
			return err
		}
		locks = append(locks, l)
	}
	// Losing the lock (the server restarted, the connection broke) while another process takes
	// it stops this job with exit code 5 before it writes again.
	jctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for _, l := range locks {
			go l.Watch(jctx, pool, 2*time.Second, f.retryFor, func(err error) { stop(err) })
		}
		<-jctx.Done()
	}()
	defer func() { stop(nil); <-watchDone }()

	if f.createSchema {
		for schema, migs := range moduleMigrations(sel.modules) {
			if err := load.ApplyMigrations(ctx, pool, schema, migs); err != nil {
				return err
			}
		}
	}
	// A job resumes the selection's unfinished job run with its recorded as-of and options;
	// after a completed one it starts a new run (the pipeline decides the same way).
	prev, err := store.LatestUnfinished(ctx, sel.key, "job")
	if err != nil {
		return err
	}
	if prev != nil {
		if err := f.adoptRecorded(fs, prev); err != nil {
			return err
		}
	}
	asOf := f.asOf
	if asOf.IsZero() {
		if prev != nil {
			asOf = prev.AsOf
		} else {
			asOf = time.Now().UTC().Truncate(time.Millisecond)
		}
	}
	if sel, err = f.selection(asOf); err != nil {
		return err
	}
	src, err := openSource(ctx, f.from, f.rangeDocs, f.spanBytes)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	logSourceWarnings(src, logger)
	if err := checkPresent(ctx, src, sel); err != nil {
		return err
	}
	jo.AsOf, jo.Replace, jo.Result, jo.TransformVersion, jo.Collections = asOf, f.replace, sel.result, sel.version, sel.colls
	jo.MaxRejects = f.limit
	schemas := map[string]bool{}
	for _, m := range sel.modules {
		schemas[moduleSchema(m)] = true
	}
	jo.Started = func(ctx context.Context, run *manifests.Run) error {
		for s := range schemas {
			if err := load.RecordDM(ctx, pool, s, run.ID, run.Options); err != nil {
				return err
			}
		}
		return nil
	}
	jo.Completed = func(ctx context.Context, run *manifests.Run) error {
		for s := range schemas {
			if err := load.CompleteDM(ctx, pool, s, run.ID); err != nil {
				return err
			}
		}
		return nil
	}
	rep, runErr := pipeline.RunJob(jctx, jo, deps(sel, src))
	if cause := context.Cause(jctx); runErr != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		runErr = cause // the lock was lost: that is the reason, not the cancellation it caused
	}
	if rep != nil {
		if f.report != "" {
			if err := manifests.WriteFileAtomic(f.report, func(w io.Writer) error { return writeJSON(w, rep) }); err != nil && runErr == nil {
				runErr = err
			}
		}
		if f.jsonL {
			_ = writeJSON(stdout, rep)
		} else {
			printReport(stdout, rep)
		}
	}
	return runErr
}
