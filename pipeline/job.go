package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stellaops/convert/manifests"
)

// JobOptions extend Options for the batched data-migration job (cli.md, Job mode).
type JobOptions struct {
	Options
	// Worker names this process's claims (host:pid and a random suffix, say).
	Worker string
	// Rate limits this process to documents per second (0 = no limit); Pause sleeps after each
	// committed batch, per worker.
	Rate  float64
	Pause time.Duration
	// Poll is how often a worker looks for claimable ranges while others finish (default 1 s).
	Poll time.Duration
	// Started and Completed are called with the job's run once it is established and once it
	// completes (the command records the job in the module schema's ledger).
	Started   func(ctx context.Context, run *manifests.Run) error
	Completed func(ctx context.Context, run *manifests.Run) error
}

// ErrNoJob: a joining worker found no running job to join.
var ErrNoJob = errors.New("no running job to join")

// throttle applies --rate and --pause after each committed batch.
type throttle struct {
	mu    sync.Mutex
	rate  float64
	pause time.Duration
	next  time.Time
}

func (t *throttle) wait(ctx context.Context, docs int) error {
	var d time.Duration
	if t.rate > 0 {
		t.mu.Lock()
		now := time.Now()
		if t.next.Before(now) {
			t.next = now
		}
		t.next = t.next.Add(time.Duration(float64(docs) / t.rate * float64(time.Second)))
		d = time.Until(t.next)
		t.mu.Unlock()
	}
	d = max(d, t.pause)
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (o *JobOptions) jobDefaults() {
	o.Kind = "job"
	o.defaults()
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
}

// RunJob is the job process: it holds the module's lock (taken by the caller), establishes or
// resumes the job's run, plans each collection's ranges once its parents are complete, works on
// them with o.Workers claims alongside any joined processes, and completes collections and the
// run when every range is done. A job whose run is unfinished resumes it.
func RunJob(ctx context.Context, o JobOptions, d Deps) (*Report, error) {
	o.jobDefaults()
	// A new job resumes the module's unfinished job run; after a completed one it starts a new
	// run (establish).
	o.Resume = true
	r := newRunner(o.Options, d)
	r.throttle = &throttle{rate: o.Rate, pause: o.Pause}
	run, err := r.establish(ctx)
	if err != nil {
		return nil, err
	}
	r.run = run
	r.log = r.d.Logger.With("run", run.ID, "worker", o.Worker)
	r.log.Info("job started", "as_of", run.AsOf.Format(time.RFC3339Nano), "workers", o.Workers)
	if o.Started != nil {
		if err := o.Started(ctx, run); err != nil {
			return nil, err
		}
	}
	jobErr := r.jobCollections(ctx, o, true)
	if jobErr == nil && o.Completed != nil {
		jobErr = o.Completed(ctx, run)
	}
	return r.finish(ctx, jobErr)
}

// JoinJob is an extra worker process: it takes no lock, claims ranges of the running job run
// until none is left, and returns. It waits up to wait for a job to appear.
func JoinJob(ctx context.Context, o JobOptions, d Deps, wait time.Duration) error {
	o.jobDefaults()
	r := newRunner(o.Options, d)
	r.throttle = &throttle{rate: o.Rate, pause: o.Pause}
	deadline := time.Now().Add(wait)
	for {
		run, err := d.Store.LatestRunning(ctx, o.Selection, "job")
		if err != nil {
			return err
		}
		if run != nil {
			if run.SourceFingerprint != d.Source.Fingerprint() {
				return usagef("job %s reads %s, this worker %s", run.ID, run.SourceFingerprint, d.Source.Fingerprint())
			}
			if run.TransformVersion != o.TransformVersion {
				return usagef("job %s uses transform version %s, this worker %s", run.ID, run.TransformVersion, o.TransformVersion)
			}
			r.run = run
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", o.Selection, ErrNoJob)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(o.Poll, time.Until(deadline)+time.Millisecond)):
		}
	}
	r.log = r.d.Logger.With("run", r.run.ID, "worker", o.Worker)
	r.log.Info("joined job")
	return r.jobCollections(ctx, o, false)
}

func newRunner(o Options, d Deps) *runner {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Progress == nil {
		d.Progress = noProgress{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.IsTransient == nil {
		d.IsTransient = func(error) bool { return false }
	}
	return &runner{o: o, d: d, log: d.Logger, batches: NewFreeList[*Batch](2*max(o.Workers, 1) + 2)}
}

// jobCollections walks the collections in load order. The leader plans and completes them;
// a joiner waits for each to be planned and moves on once its ranges are all done.
func (r *runner) jobCollections(ctx context.Context, o JobOptions, leader bool) error {
	jobs := r.d.Collections
	for i, job := range jobs {
		// Every step of a collection is idempotent, so a transient failure outside a range
		// (the target restarting while planning or waiting) starts the collection over.
		if err := r.retry(ctx, job.Name, -1, func() error { return r.jobCollection(ctx, o, job, leader) }, nil); err != nil {
			return err
		}
		if leader && (i == len(jobs)-1 || jobs[i+1].Module != job.Module) {
			if err := r.completeDerived(ctx, job.Module); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) jobCollection(ctx context.Context, o JobOptions, job CollectionJob, leader bool) error {
	d := r.d
	started := time.Now()
	for {
		st, err := d.Store.CollectionStatus(ctx, r.run.ID, job.Name)
		if err != nil {
			return err
		}
		if st == "completed" {
			return nil
		}
		if leader {
			if err := r.planCollection(ctx, job); err != nil {
				return err
			}
			break
		}
		if st == "running" {
			break
		}
		// A joiner waits for the leader to plan the collection (its parents come first).
		if err := r.stillRunning(ctx); err != nil {
			return err
		}
		if err := sleepCtx(ctx, o.Poll); err != nil {
			return err
		}
	}
	ranges, err := d.Store.Ranges(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	if p, ok := job.Transform.(Preparer); ok {
		if err := r.keyPass(ctx, job, p, ranges); err != nil {
			return fmt.Errorf("collection %s: key pass: %w", job.Name, err)
		}
	}
	// A job resuming its run proves what is committed before its workers claim ranges, as a
	// run's resume does; joiners work on what the leader proves. A range reclaimed from a dead
	// worker while the job runs is not proved again: it was committed during this job.
	if leader && r.resumed {
		if err := r.proveCollection(ctx, job, ranges); err != nil {
			return err
		}
	}
	tot, err := d.Store.Totals(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	// A resumed job re-checks the limit on the recorded counts first (as a resumed run does).
	if err := r.checkLimit(job, tot.Rejected, tot.Read, false); err != nil {
		return err
	}
	counters := &collectionCounters{}
	counters.read.Store(tot.Read)
	counters.rejected.Store(tot.Rejected)
	d.Progress.CollectionStarted(job.Name, -1, tot.Read)
	for {
		g := newWorkGroup(ctx, 0)
		for w := 0; w < r.o.Workers; w++ {
			// Each worker claims under a name of its own: a claim names exactly one worker, which
			// may take back its own range after a failure, and no other.
			wo := o
			wo.Worker = fmt.Sprintf("%s/%d", o.Worker, w)
			g.Go(func(gctx context.Context) error { return r.claimLoop(gctx, wo, job, counters) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		done, total, err := d.Store.RangeCounts(ctx, r.run.ID, job.Name)
		if err != nil {
			return err
		}
		if done == total {
			break
		}
		// Other processes hold the remaining ranges: wait, and reclaim any whose worker died.
		if err := r.stillRunning(ctx); err != nil {
			return err
		}
		if err := sleepCtx(ctx, o.Poll); err != nil {
			return err
		}
	}
	d.Progress.CollectionDone(job.Name)
	if !leader {
		return nil
	}
	return r.completeCollection(ctx, job, started)
}

// stillRunning fails when the job's run ended while this process waited.
func (r *runner) stillRunning(ctx context.Context) error {
	run, err := r.d.Store.GetRun(ctx, r.run.ID)
	if err != nil {
		return err
	}
	if run.Status != manifests.StatusRunning {
		return fmt.Errorf("job %s is %s", run.ID, run.Status)
	}
	return nil
}

// claimLoop claims ranges of one collection until none is claimable, keeping each claim alive
// with a heartbeat while the range is worked on.
func (r *runner) claimLoop(ctx context.Context, o JobOptions, job CollectionJob, counters *collectionCounters) error {
	for {
		rg, ok, err := r.d.Store.ClaimRange(ctx, r.run.ID, job.Name, o.Worker, manifests.ClaimStale)
		if err != nil {
			if r.d.IsTransient(err) {
				if err := sleepCtx(ctx, o.Poll); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if !ok {
			return nil
		}
		claim := &Claim{Worker: o.Worker, Epoch: rg.Epoch}
		rctx, cancel := context.WithCancelCause(ctx)
		hbDone := make(chan struct{})
		go func() {
			defer close(hbDone)
			t := time.NewTicker(manifests.HeartbeatEvery)
			defer t.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-t.C:
					if err := r.d.Store.Heartbeat(rctx, r.run.ID, job.Name, rg.No, o.Worker, rg.Epoch); errors.Is(err, manifests.ErrClaimLost) {
						cancel(err)
						return
					}
				}
			}
		}()
		err = r.rangeWithRetry(rctx, job, rg, counters, claim)
		cause := context.Cause(rctx)
		cancel(nil)
		<-hbDone
		switch {
		case err == nil:
		case errors.Is(err, manifests.ErrClaimLost) || errors.Is(cause, manifests.ErrClaimLost):
			// Another worker reclaimed the range: its committed prefix stands, it continues.
			r.log.Warn("range reclaimed by another worker", "collection", job.Name, "range", rg.No)
		default:
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// planCollection records a collection and plans its ranges once (the leader).
func (r *runner) planCollection(ctx context.Context, job CollectionJob) error {
	d := r.d
	if err := d.Store.EnsureCollection(ctx, &manifests.Collection{RunID: r.run.ID, Name: job.Name, Module: job.Module,
		SourceNS: job.NS.String(), Tier: job.Tier, Filter: job.Filter}); err != nil {
		return err
	}
	ranges, err := d.Store.Ranges(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		plan, err := d.Source.Plan(ctx, job.NS)
		switch {
		case errors.Is(err, ErrNoCollection) && job.Optional:
			plan = CollectionPlan{}
		case err != nil:
			return fmt.Errorf("collection %s: %w", job.Name, err)
		}
		rows := make([]manifests.Range, len(plan.Ranges))
		for i, pr := range plan.Ranges {
			rows[i] = manifests.Range{No: pr.No, TypeClass: pr.TypeClass, Lower: pr.Lower, Upper: pr.Upper}
		}
		if err := d.Store.SaveRanges(ctx, r.run.ID, job.Name, rows); err != nil {
			return err
		}
	}
	return d.Store.StartCollection(ctx, r.run.ID, job.Name)
}
