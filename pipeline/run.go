package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
)

// Defaults (cli.md).
const (
	DefaultBatchSize  = 1000
	DefaultBatchBytes = 8 << 20
	DefaultRetryFor   = 10 * time.Minute
	FormatVersion     = 1
)

// CollectionJob is one source collection to convert.
type CollectionJob struct {
	// Name identifies the collection in the manifest and the report: the module's default
	// collection name, or DB.COLL in generic mode.
	Name      string
	Module    string
	NS        Namespace
	Tier      string
	Filter    json.RawMessage
	Transform Transform
	// Optional lets a missing source collection load nothing instead of refusing (--allow-missing).
	Optional bool
}

// RejectLimit is --max-rejects: a count, or a fraction of the documents read.
type RejectLimit struct {
	HasCount bool    `json:"has_count,omitempty"`
	Count    int64   `json:"count,omitempty"`    // with HasCount: at most this many (0: none)
	Fraction float64 `json:"fraction,omitempty"` // > 0: at most this share of read, once read >= max(1000, batch size)
}

// Set tells whether the limit is given (--max-rejects has no limit by default).
func (l RejectLimit) Set() bool { return l.HasCount || l.Fraction > 0 }

// MaxRejectsOption is the key under which a run's options record its --max-rejects: a resume
// that does not give the flag applies the recorded limit. It does not change the result, so
// it is not compared like the result-affecting options.
const MaxRejectsOption = "max_rejects"

// RecordedRejectLimit reads the --max-rejects a run recorded (none when it recorded none).
func RecordedRejectLimit(run *manifests.Run) (RejectLimit, error) {
	var opts map[string]json.RawMessage
	var l RejectLimit
	if err := json.Unmarshal(run.Options, &opts); err != nil {
		return l, fmt.Errorf("run %s: options: %w", run.ID, err)
	}
	if raw, ok := opts[MaxRejectsOption]; ok {
		if err := json.Unmarshal(raw, &l); err != nil {
			return l, fmt.Errorf("run %s: option %s: %w", run.ID, MaxRejectsOption, err)
		}
	}
	return l, nil
}

// Exceeded tells whether rejected of read crosses the limit; final is true when the collection
// has ended (then a fraction applies whatever the count read).
func (l RejectLimit) Exceeded(rejected, read int64, batchSize int, final bool) bool {
	if l.HasCount && rejected > l.Count {
		return true
	}
	if l.Fraction > 0 && read > 0 {
		min := int64(math.Max(1000, float64(batchSize)))
		if (final || read >= min) && float64(rejected)/float64(read) > l.Fraction {
			return true
		}
	}
	return false
}

// Options are a run's settings. Those that change the result are in Result: a resume compares
// them with the run's record.
type Options struct {
	RunID   string // continue this run
	Resume  bool   // continue the latest unfinished run of the same selection
	Replace bool   // truncate the selected tables first
	// DeferIndexes drops the selected tables' secondary indexes when a new run starts and
	// rebuilds them as their collections complete (fresh targets; not with delta);
	// DeferForeignKeys does the same with their foreign keys.
	DeferIndexes     bool
	DeferForeignKeys bool
	Kind             string // run (default), job, delta
	// SinceRun is the completed run a delta catches up from (Kind "delta").
	SinceRun   string
	Workers    int
	BatchSize  int
	BatchBytes int
	MaxRejects RejectLimit
	RetryFor   time.Duration

	AsOf time.Time
	// Selection is the canonical key of what is converted ("module:authority,scheduler" or
	// "collections:db.a,db.b"): --resume finds the latest unfinished run by it.
	Selection   string
	Modules     []string
	Collections []string
	// Result holds the result-affecting options as recorded in the run (as-of excluded).
	Result map[string]any

	ToolVersion      string
	TransformVersion string
}

func (o *Options) defaults() {
	if o.Kind == "" {
		o.Kind = "run"
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.RetryFor <= 0 {
		o.RetryFor = DefaultRetryFor
	}
}

// Deferral names the tables whose secondary indexes and whose foreign keys a new run drops
// (--defer-indexes, --defer-foreign-keys).
type Deferral struct {
	Indexes, ForeignKeys []Table
}

// Target prepares and inspects the target database beyond batch commits.
type Target interface {
	// Prepare makes sure the tables exist as specified (creating or validating them).
	Prepare(ctx context.Context, tables []Table) error
	// NonEmpty lists the tables among these that hold rows.
	NonEmpty(ctx context.Context, tables []Table) ([]string, error)
	// ReferencedFromOutside lists the tables outside these whose foreign keys reference them
	// (directly or through each other) and that hold rows.
	ReferencedFromOutside(ctx context.Context, tables []Table) ([]string, error)
	// StartRun records a new run, truncating the given tables and dropping what the deferral
	// names (recorded, to be restored) in the same transaction, in which it also marks every
	// unfinished earlier run that writes any of run.Tables superseded by it.
	StartRun(ctx context.Context, run *manifests.Run, truncate []Table, deferral Deferral) error
	// RestoreDeferred creates again the deferred indexes, then foreign keys, of the tables of
	// a completing collection, whichever run deferred them.
	RestoreDeferred(ctx context.Context, tables []Table) error
	// Analyze refreshes planner statistics of the tables of a completed collection.
	Analyze(ctx context.Context, tables []Table) error
	// Query and Exec serve a transform's key pass (KeyPass.Query, KeyPass.Exec).
	Query(ctx context.Context, sql string, fn func(vals []*string) error) error
	Exec(ctx context.Context, sql string) error
	// TableSum recomputes a table's checksum from its rows.
	TableSum(ctx context.Context, tb Table) (manifests.TableSum, error)
	// DerivedSum is a derived table's checksum over the rows the run produced (staged with
	// its batches), folded as the sink merges them.
	DerivedSum(ctx context.Context, runID string, tb Table) (manifests.TableSum, error)
	// DeleteUnproduced and RebuildDerived finish a delta run's collections and modules: rows
	// the run did not produce are deleted, derived tables rebuilt from what it produced.
	DeleteUnproduced(ctx context.Context, runID string, tables []Table) error
	RebuildDerived(ctx context.Context, runID string, tb Table) error
}

// Progress receives progress events; implementations must be safe for concurrent use.
type Progress interface {
	CollectionStarted(name string, total int64, done int64)
	Advanced(name string, docs int)
	CollectionDone(name string)
}

type noProgress struct{}

func (noProgress) CollectionStarted(string, int64, int64) {}
func (noProgress) Advanced(string, int)                   {}
func (noProgress) CollectionDone(string)                  {}

// Deps are the parts a run works with, built by the caller.
type Deps struct {
	Source      Source
	Sink        Sink
	Target      Target
	Store       *manifests.Store
	Collections []CollectionJob
	Logger      *slog.Logger
	Progress    Progress
	// IsTransient classifies errors worth retrying (network, server restart, serialization).
	IsTransient func(error) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// UsageError is a refusal decided before any data is written (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// RejectLimitError: --max-rejects was crossed (exit code 4). The crossing batch is committed.
type RejectLimitError struct {
	Collection string
	Rejected   int64
	Read       int64
}

func (e *RejectLimitError) Error() string {
	return fmt.Sprintf("collection %s: %d rejects of %d documents read exceeds --max-rejects", e.Collection, e.Rejected, e.Read)
}

// GaveUpError: transient errors went on for longer than --retry-for (exit code 1). It keeps
// only the last error's text, so that no outer retry loop takes it for transient again.
type GaveUpError struct {
	After time.Duration
	Last  string
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("giving up after retrying for %s: %s", e.After, e.Last)
}

// NewRunID makes a sortable, unique run id.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Run converts the collections of d in order and returns the run's report. On error the run is
// recorded as failed (or stopped, on cancellation) and everything committed stays committed, so
// a later --resume continues after the last committed batch of every range.
func Run(ctx context.Context, o Options, d Deps) (*Report, error) {
	o.defaults()
	r := newRunner(o, d)
	run, err := r.establish(ctx)
	if err != nil {
		return nil, err
	}
	r.run = run
	r.log = r.d.Logger.With("run", run.ID)
	if r.alreadyDone {
		r.log.Info("nothing to resume: the latest run of this selection is completed (start a new one with --replace, or catch up with --delta --since-run " + run.ID + ")")
		return BuildReport(ctx, r.d.Store, run.ID)
	}
	r.log.Info("run started", "as_of", run.AsOf.Format(time.RFC3339Nano), "source", run.SourceFingerprint, "workers", o.Workers, "batch_size", o.BatchSize)
	return r.finish(ctx, r.convertAll(ctx))
}

// finish records the run's final status and builds its report from the manifest.
func (r *runner) finish(ctx context.Context, runErr error) (*Report, error) {
	status, text := manifests.StatusCompleted, ""
	switch {
	case runErr == nil:
	case errors.Is(runErr, context.Canceled) || ctx.Err() != nil:
		status, text = manifests.StatusStopped, runErr.Error()
	default:
		status, text = manifests.StatusFailed, runErr.Error()
	}
	if err := r.d.Store.SetRunStatus(context.WithoutCancel(ctx), r.run.ID, status, text); err != nil && runErr == nil {
		runErr = err
	}
	rep, repErr := BuildReport(context.WithoutCancel(ctx), r.d.Store, r.run.ID)
	if repErr != nil && runErr == nil {
		runErr = repErr
	}
	return rep, runErr
}

type runner struct {
	o        Options
	d        Deps
	run      *manifests.Run
	log      *slog.Logger
	throttle *throttle // job mode: --rate and --pause; nil otherwise
	// batches are reused from range to range: a batch grows to megabytes, and growing two
	// afresh per range (a dump file is several) was a large share of the tool's CPU.
	batches *FreeList[*Batch]
	// alreadyDone: --resume found the latest run of the selection completed.
	alreadyDone bool
	// resumed: the run existed (--resume, --run-id, a job resuming its run).
	resumed bool
	// proven holds the ranges ("collection\x00range") whose committed batches this process
	// proved unchanged in the source, or started itself (proof.go).
	proven sync.Map
}

func (r *runner) allTables() []Table {
	var out []Table
	for _, c := range r.d.Collections {
		out = append(out, c.Transform.Tables()...)
	}
	return out
}

// establish finds or creates the run: a new one, the one --run-id names, or the latest
// unfinished one for --resume. Every refusal here happens before data is written.
func (r *runner) establish(ctx context.Context) (*manifests.Run, error) {
	o, d := r.o, r.d
	result, err := json.Marshal(o.Result)
	if err != nil {
		return nil, fmt.Errorf("record options: %w", err)
	}
	// The record adds --max-rejects, which a resume applies unless given again.
	recorded := result
	if o.MaxRejects.Set() {
		withLimit := map[string]any{MaxRejectsOption: o.MaxRejects}
		for k, v := range o.Result {
			withLimit[k] = v
		}
		if recorded, err = json.Marshal(withLimit); err != nil {
			return nil, fmt.Errorf("record options: %w", err)
		}
	}
	var existing *manifests.Run
	switch {
	case o.RunID != "":
		existing, err = d.Store.GetRun(ctx, o.RunID)
		if errors.Is(err, manifests.ErrNoRun) {
			return nil, usagef("--run-id %s: no such run in the target", o.RunID)
		}
		if err != nil {
			return nil, err
		}
		if existing.Status == manifests.StatusCompleted {
			return nil, usagef("--run-id %s: the run is already completed", o.RunID)
		}
		if existing.Status == manifests.StatusSuperseded {
			return nil, usagef("--run-id %s: the run was superseded by run %s, which wrote its tables; it cannot be continued", o.RunID, existing.SupersededBy)
		}
		if existing.Selection != o.Selection {
			return nil, usagef("--run-id %s: the run converts %s, not %s", o.RunID, existing.Selection, o.Selection)
		}
	case o.Resume:
		existing, err = d.Store.RunToResume(ctx, o.Selection, o.Kind)
		if err != nil {
			return nil, err
		}
		if existing != nil && existing.Status == manifests.StatusCompleted {
			if o.Kind == "job" {
				// A completed job run is finished: a new job starts a new run (cli.md, Job
				// mode), with --replace where the target holds rows.
				existing = nil
				break
			}
			// A run killed after it recorded its completion, resumed: nothing is left to do,
			// which is the answer, not a refusal to start a new run over its tables.
			if err := r.checkResume(existing, result); err != nil {
				return nil, err
			}
			r.alreadyDone = true
			return existing, nil
		}
	}
	if (o.DeferIndexes || o.DeferForeignKeys) && o.Kind == "delta" {
		return nil, usagef("--defer-indexes and --defer-foreign-keys are for fresh targets: a delta run updates loaded tables in place")
	}
	tables := r.allTables()
	if err := d.Target.Prepare(ctx, tables); err != nil {
		return nil, err
	}
	if o.Kind == "delta" && existing == nil {
		since, err := d.Store.GetRun(ctx, o.SinceRun)
		if errors.Is(err, manifests.ErrNoRun) {
			return nil, usagef("--since-run %s: no such run in the target", o.SinceRun)
		}
		if err != nil {
			return nil, err
		}
		if since.Status != manifests.StatusCompleted {
			return nil, usagef("--since-run %s: the run is %s, not completed", since.ID, since.Status)
		}
		if since.Selection != o.Selection {
			return nil, usagef("--since-run %s converted %s, not %s", since.ID, since.Selection, o.Selection)
		}
		if err := sameResultOptions(since, result, "--since-run "+since.ID); err != nil {
			return nil, err
		}
		if !o.AsOf.IsZero() && !o.AsOf.After(since.AsOf) {
			return nil, usagef("--as-of %s is not after run %s's as-of %s", o.AsOf.Format(time.RFC3339Nano), since.ID, since.AsOf.Format(time.RFC3339Nano))
		}
		// A delta deletes the rows of documents gone from the source with the rows that
		// reference them (load.DeleteUnproduced). Rows of a table outside the selection (a
		// --collection restriction leaves its module's other tables out) are not the run's to
		// delete: refuse, as --replace does, rather than delete them unasked.
		full, err := d.Target.ReferencedFromOutside(ctx, tables)
		if err != nil {
			return nil, err
		}
		if len(full) > 0 {
			return nil, usagef("--delta could delete rows of %v, which reference the selected tables and are not part of this selection; include their collections in the delta", full)
		}
	}
	if existing != nil {
		if err := r.checkResume(existing, result); err != nil {
			return nil, err
		}
		if err := d.Store.SetRunStatus(ctx, existing.ID, manifests.StatusRunning, ""); err != nil {
			return nil, err
		}
		existing.Status = manifests.StatusRunning
		r.resumed = true
		if o.DeferIndexes || o.DeferForeignKeys {
			r.d.Logger.Info("--defer-indexes and --defer-foreign-keys act when a run starts: what this run deferred then is restored as its collections complete", "run", existing.ID)
		}
		return existing, nil
	}
	var truncate []Table
	if o.Replace {
		truncate = tables
	} else if o.Kind != "delta" {
		full, err := d.Target.NonEmpty(ctx, tables)
		if err != nil {
			return nil, err
		}
		if len(full) > 0 {
			if o.Kind == "job" {
				return nil, usagef("target tables already hold rows: %v and no job run is unfinished (use --replace to truncate them and start a new job run, or run --delta --since-run R to bring them up to date)", full)
			}
			return nil, usagef("target tables already hold rows: %v (use --replace to truncate them, --resume to continue an unfinished run, or --delta --since-run R to bring them up to date)", full)
		}
	}
	asOf := o.AsOf
	if asOf.IsZero() {
		asOf = d.Now().UTC().Truncate(time.Millisecond)
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.FullName()
	}
	run := &manifests.Run{
		ID: NewRunID(d.Now()), Kind: o.Kind, Modules: o.Modules, Collections: o.Collections, Selection: o.Selection,
		StartedAt: d.Now().UTC(), AsOf: asOf, SourceKind: d.Source.Kind(), SourceFingerprint: d.Source.Fingerprint(),
		Options: recorded, ToolVersion: o.ToolVersion, TransformVersion: o.TransformVersion, Status: manifests.StatusRunning,
		Tables: names,
	}
	var deferral Deferral
	if o.DeferIndexes {
		deferral.Indexes = tables
	}
	if o.DeferForeignKeys {
		deferral.ForeignKeys = tables
	}
	if err := d.Target.StartRun(ctx, run, truncate, deferral); err != nil {
		return nil, err
	}
	if ids, err := d.Store.Superseded(ctx, run.ID); err == nil && len(ids) > 0 {
		d.Logger.Info("unfinished runs superseded: this run writes their tables, they will not be continued", "run", run.ID, "superseded", ids)
	}
	return run, nil
}

// checkResume refuses a resume whose explicit options would change the result.
func (r *runner) checkResume(run *manifests.Run, result []byte) error {
	o := r.o
	if !o.AsOf.IsZero() && !o.AsOf.Equal(run.AsOf) {
		return usagef("cannot resume run %s: --as-of %s differs from the run's %s", run.ID, o.AsOf.Format(time.RFC3339Nano), run.AsOf.Format(time.RFC3339Nano))
	}
	if run.TransformVersion != o.TransformVersion {
		return usagef("cannot resume run %s: it was made by transform version %s, this tool has %s", run.ID, run.TransformVersion, o.TransformVersion)
	}
	if run.SourceFingerprint != r.d.Source.Fingerprint() {
		return usagef("cannot resume run %s: its source was %s, not %s", run.ID, run.SourceFingerprint, r.d.Source.Fingerprint())
	}
	return sameResultOptions(run, result, "cannot resume run "+run.ID)
}

// sameResultOptions refuses when the recorded result-affecting options differ from these.
func sameResultOptions(run *manifests.Run, result []byte, what string) error {
	var was, now map[string]any
	_ = json.Unmarshal(run.Options, &was)
	_ = json.Unmarshal(result, &now)
	delete(was, MaxRejectsOption)
	delete(now, MaxRejectsOption)
	for k, v := range now {
		wb, _ := json.Marshal(was[k])
		nb, _ := json.Marshal(v)
		if string(wb) != string(nb) {
			return usagef("%s: option %s was %s, now %s", what, k, wb, nb)
		}
	}
	for k := range was {
		if _, ok := now[k]; !ok {
			return usagef("%s: option %s was set, now it is not", what, k)
		}
	}
	return nil
}

func (r *runner) convertAll(ctx context.Context) error {
	jobs := r.d.Collections
	for i, job := range jobs {
		// convert is idempotent up to the committed batches, so a transient failure outside a
		// range (planning, completing) starts the collection over from what is committed.
		if err := r.retry(ctx, job.Name, -1, func() error { return r.convert(ctx, job) }, nil); err != nil {
			if ctx.Err() == nil {
				// The collection's own status says where the run stopped (a stop leaves it
				// running); the run's error says why.
				if ferr := r.d.Store.FailCollection(context.WithoutCancel(ctx), r.run.ID, job.Name); ferr != nil {
					r.log.Warn("could not record the collection failed", "collection", job.Name, "err", ferr)
				}
			}
			return err
		}
		if i == len(jobs)-1 || jobs[i+1].Module != job.Module {
			if err := r.completeDerived(ctx, job.Module); err != nil {
				return err
			}
		}
	}
	return nil
}

// DerivedName is the manifest and report name of a module's derived tables.
func DerivedName(module string) string { return module + ".(derived)" }

// completeDerived records the checksums of a module's derived tables as the module's
// "(derived)" entry, once every collection that feeds them is complete: computed from the rows
// the run produced (cli.md: never the target as its own reference). A target that holds other
// rows is logged; verify reports it by row.
func (r *runner) completeDerived(ctx context.Context, module string) error {
	var derived []Table
	seen := map[string]bool{}
	for _, j := range r.d.Collections {
		if j.Module != module {
			continue
		}
		for _, t := range j.Transform.Tables() {
			if t.Derived && !seen[t.FullName()] {
				seen[t.FullName()] = true
				derived = append(derived, t)
			}
		}
	}
	if len(derived) == 0 {
		return nil
	}
	if r.run.Kind == "delta" {
		// Children first: user_roles before roles, as they are listed after them.
		for i := len(derived) - 1; i >= 0; i-- {
			if err := r.d.Target.RebuildDerived(ctx, r.run.ID, derived[i]); err != nil {
				return err
			}
		}
	}
	sums := manifests.TableSums{}
	rows := map[string]int64{}
	for _, t := range derived {
		s, err := r.d.Target.DerivedSum(ctx, r.run.ID, t)
		if err != nil {
			return err
		}
		sums[t.FullName()] = s
		rows[t.FullName()] = s.Count
		held, err := r.d.Target.TableSum(ctx, t)
		if err != nil {
			return err
		}
		if held != s {
			r.log.Warn("a derived table holds other rows than the run produced; verify will name them", "table", t.FullName(),
				"produced_rows", s.Count, "held_rows", held.Count)
		}
	}
	if err := r.d.Target.RestoreDeferred(ctx, derived); err != nil {
		return err
	}
	if err := r.d.Target.Analyze(ctx, derived); err != nil {
		return err
	}
	return r.d.Store.CompleteDerived(ctx, r.run.ID, DerivedName(module), module, sums)
}

// collectionCounters hold a collection's committed totals for --max-rejects.
type collectionCounters struct {
	read, rejected atomic.Int64
}

func (r *runner) convert(ctx context.Context, job CollectionJob) error {
	d := r.d
	started := time.Now()
	st, err := d.Store.CollectionStatus(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	if st == "completed" {
		r.log.Info("collection already completed", "collection", job.Name)
		return nil
	}
	if err := d.Store.EnsureCollection(ctx, &manifests.Collection{RunID: r.run.ID, Name: job.Name, Module: job.Module,
		SourceNS: job.NS.String(), Tier: job.Tier, Filter: job.Filter}); err != nil {
		return err
	}
	if err := d.Store.StartCollection(ctx, r.run.ID, job.Name); err != nil {
		return err
	}
	ranges, err := d.Store.Ranges(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	var total int64 = -1
	if len(ranges) == 0 {
		plan, err := d.Source.Plan(ctx, job.NS)
		switch {
		case errors.Is(err, ErrNoCollection) && job.Optional:
			r.log.Warn("collection absent from the source; --allow-missing loads nothing", "collection", job.Name, "source", job.NS.String())
			plan = CollectionPlan{Count: 0}
		case err != nil:
			return fmt.Errorf("collection %s: %w", job.Name, err)
		}
		total = plan.Count
		rows := make([]manifests.Range, len(plan.Ranges))
		for i, pr := range plan.Ranges {
			rows[i] = manifests.Range{No: pr.No, TypeClass: pr.TypeClass, Lower: pr.Lower, Upper: pr.Upper}
		}
		if err := d.Store.SaveRanges(ctx, r.run.ID, job.Name, rows); err != nil {
			return err
		}
		if ranges, err = d.Store.Ranges(ctx, r.run.ID, job.Name); err != nil {
			return err
		}
	}
	tot, err := d.Store.Totals(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	// A resume re-checks the limit on the recorded counts first: a collection that stopped past
	// it never completes by resuming.
	if err := r.checkLimit(job, tot.Rejected, tot.Read, false); err != nil {
		return err
	}
	counters := &collectionCounters{}
	counters.read.Store(tot.Read)
	counters.rejected.Store(tot.Rejected)
	d.Progress.CollectionStarted(job.Name, total, tot.Read)
	r.log.Info("collection started", "collection", job.Name, "source", job.NS.String(), "tier", job.Tier, "ranges", len(ranges), "estimate", total)

	if p, ok := job.Transform.(Preparer); ok {
		if err := r.keyPass(ctx, job, p, ranges); err != nil {
			return fmt.Errorf("collection %s: key pass: %w", job.Name, err)
		}
	}

	// After the key pass: a live proof asks the transform which documents it skips.
	if err := r.proveCollection(ctx, job, ranges); err != nil {
		return err
	}

	g := newWorkGroup(ctx, r.o.Workers)
	for _, rg := range ranges {
		if rg.Status == manifests.RangeDone {
			continue
		}
		g.Go(func(gctx context.Context) error { return r.rangeWithRetry(gctx, job, rg, counters, nil) })
	}
	if err := g.Wait(); err != nil {
		_ = d.Store.AddElapsed(context.WithoutCancel(ctx), r.run.ID, job.Name, time.Since(started))
		return err
	}
	d.Progress.CollectionDone(job.Name)
	return r.completeCollection(ctx, job, started)
}

// checkLimit applies --max-rejects to a collection's committed counts.
func (r *runner) checkLimit(job CollectionJob, rejected, read int64, final bool) error {
	if r.o.MaxRejects.Exceeded(rejected, read, r.o.BatchSize, final) {
		return &RejectLimitError{Collection: job.Name, Rejected: rejected, Read: read}
	}
	return nil
}

// completeCollection applies --max-rejects to the collection's final committed counts (every
// worker's, other processes' included), then finishes a delta collection (deleting the rows the
// run did not produce), records its totals and checksum from its committed batches (derived
// tables aside: they complete with their module), and analyzes its tables. A collection past
// its limit is not recorded completed, so no resume completes it.
func (r *runner) completeCollection(ctx context.Context, job CollectionJob, started time.Time) error {
	d := r.d
	tot, err := d.Store.Totals(ctx, r.run.ID, job.Name)
	if err != nil {
		return err
	}
	if err := r.checkLimit(job, tot.Rejected, tot.Read, true); err != nil {
		_ = d.Store.AddElapsed(context.WithoutCancel(ctx), r.run.ID, job.Name, time.Since(started))
		return err
	}
	if r.run.Kind == "delta" {
		var own []Table
		tabs := job.Transform.Tables()
		for i := len(tabs) - 1; i >= 0; i-- { // children first
			if !tabs[i].Derived {
				own = append(own, tabs[i])
			}
		}
		if err := d.Target.DeleteUnproduced(ctx, r.run.ID, own); err != nil {
			return err
		}
	}
	var names []string
	for _, t := range job.Transform.Tables() {
		if !t.Derived {
			names = append(names, t.FullName())
		}
	}
	// Deferred indexes and foreign keys first: a foreign key that no longer validates keeps the
	// collection from completing (a resume tries again), and ANALYZE also gathers the
	// statistics of expression indexes. Derived tables get theirs back with their module.
	var own []Table
	for _, t := range job.Transform.Tables() {
		if !t.Derived {
			own = append(own, t)
		}
	}
	if err := r.d.Target.RestoreDeferred(ctx, own); err != nil {
		return err
	}
	c, err := r.d.Store.CompleteCollection(ctx, &manifests.Collection{RunID: r.run.ID, Name: job.Name}, names, time.Since(started))
	if err != nil {
		return err
	}
	if err := r.d.Target.Analyze(ctx, job.Transform.Tables()); err != nil {
		return err
	}
	r.log.Info("collection completed", "collection", job.Name, "read", c.Read, "loaded", c.Loaded, "rejected", c.Rejected,
		"skipped", c.Skipped, "checksum", c.Checksum.String())
	return nil
}

// keyPass runs the collection's key pass, retrying transient errors from the start.
func (r *runner) keyPass(ctx context.Context, job CollectionJob, p Preparer, ranges []manifests.Range) error {
	planned := make([]Range, len(ranges))
	for i, rg := range ranges {
		planned[i] = Range{No: rg.No, TypeClass: rg.TypeClass, Lower: rg.Lower, Upper: rg.Upper}
	}
	return r.retry(ctx, job.Name, -1, func() error { return KeyPassOf(ctx, r.d.Source, job, p, planned, r.log, r.d.Target) }, nil)
}

// KeyPassOf lets a Preparer read the collection over the given ranges before its first batch.
// A corrupt frame ends the pass where it is: decisions rest on the documents before it, which
// are all that will load before the run stops there. verify replays it the same way.
func KeyPassOf(ctx context.Context, src Source, job CollectionJob, p Preparer, ranges []Range, log *slog.Logger, target Target) error {
	kp := KeyPass{Scan: func(fn func(bson.Raw) error) error {
		for _, pr := range ranges {
			err := src.Scan(ctx, job.NS, pr, Cursor{}, func(doc bson.Raw, _ Position) error { return fn(doc) })
			var ce *CorruptError
			if errors.As(err, &ce) {
				// The range's batches will stop at the same frame and say so; the other
				// ranges are still read.
				log.Warn("key pass stops reading a range at a corrupt frame", "collection", job.Name, "range", pr.No, "err", err)
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	}}
	if target != nil {
		kp.Query = func(sql string, fn func([]*string) error) error { return target.Query(ctx, sql, fn) }
		kp.Exec = func(sql string) error { return target.Exec(ctx, sql) }
	}
	seen := map[string]bool{}
	for _, rg := range ranges {
		if rg.TypeClass == "" {
			kp.IDClasses = nil
			break
		}
		if !seen[rg.TypeClass] {
			seen[rg.TypeClass] = true
			kp.IDClasses = append(kp.IDClasses, rg.TypeClass)
		}
	}
	return p.Prepare(ctx, kp)
}

// retry runs fn, retrying transient failures with backoff from 0.5 s to 30 s until RetryFor
// has passed; before each new attempt it calls reload (when not nil).
func (r *runner) retry(ctx context.Context, collection string, rangeNo int, fn func() error, reload func() error) error {
	backoff := 500 * time.Millisecond
	var deadline time.Time
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !r.d.IsTransient(err) {
			return err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(r.o.RetryFor)
		}
		if time.Now().After(deadline) {
			return &GaveUpError{After: r.o.RetryFor, Last: err.Error()}
		}
		r.log.Warn("transient error, retrying from the last committed batch", "collection", collection, "range", rangeNo, "in", backoff, "err", err)
		// Stopped while waiting: the error being retried is the cause worth printing, not
		// the bare cancellation.
		stopped := func() error {
			return fmt.Errorf("collection %s range %d: stopped while retrying a transient error: %v: %w", collection, rangeNo, err, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
		if reload != nil {
			for {
				lerr := reload()
				if lerr == nil {
					break
				}
				if !r.d.IsTransient(lerr) || time.Now().After(deadline) {
					return lerr
				}
				select {
				case <-ctx.Done():
					return stopped()
				case <-time.After(backoff):
				}
			}
		}
	}
}

// rangeWithRetry works on one range, retrying transient failures from the last committed batch:
// the committed prefix, reloaded from the store, is the only truth.
func (r *runner) rangeWithRetry(ctx context.Context, job CollectionJob, rg manifests.Range, counters *collectionCounters, claim *Claim) error {
	return r.retry(ctx, job.Name, rg.No, func() error { return r.processRange(ctx, job, rg, counters, claim) }, func() error {
		ranges, err := r.d.Store.Ranges(ctx, r.run.ID, job.Name)
		if err != nil {
			return err
		}
		for _, x := range ranges {
			if x.No == rg.No {
				rg = x
			}
		}
		return nil
	})
}

// processRange reads a range from its resume point and commits it batch by batch. Reading and
// transforming the next batch overlaps with committing the previous one; commits stay in order,
// so the committed batches of a range are always a gap-free prefix.
func (r *runner) processRange(ctx context.Context, job CollectionJob, rg manifests.Range, counters *collectionCounters, claim *Claim) error {
	d := r.d
	pr := Range{No: rg.No, TypeClass: rg.TypeClass, Lower: rg.Lower, Upper: rg.Upper}
	from := Cursor{}
	if rg.TypeClass == "" {
		from.Offset, _ = FileSpan(pr)
	}
	if rg.LastSeq >= 0 {
		from = Cursor{AfterID: rg.ResumeID, Offset: rg.EndOffset}
	}
	seq := rg.LastSeq + 1
	tables := job.Transform.Tables()
	file := rg.TypeClass == ""
	var srcFile, srcIdentity string
	if fs, ok := d.Source.(FileSource); ok && file {
		var err error
		if srcFile, srcIdentity, err = fs.File(job.NS); err != nil {
			return fmt.Errorf("collection %s: %w", job.Name, err)
		}
	}

	free := make(chan *Batch, 2)
	full := make(chan *Batch, 1)
	for i := 0; i < 2; i++ {
		b, ok := r.batches.Get()
		if !ok {
			b = &Batch{}
		}
		free <- b
	}
	// The batches back in free when the range ends are kept for the next one; one the
	// committer dropped after a failure is left to the garbage collector.
	defer func() {
		for {
			select {
			case b := <-free:
				r.batches.Put(b)
			default:
				return
			}
		}
	}()
	// The committer uses ctx, not the producer's context: batches already handed over (the
	// documents before a corrupt frame among them) are committed even when reading failed.
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	committed := make(chan error, 1)
	go func() {
		var failed error
		for b := range full {
			if failed != nil {
				continue // drain so the producer never blocks
			}
			c, err := d.Sink.Commit(ctx, b)
			if err != nil {
				failed = err
				stopProducer()
				continue
			}
			read := counters.read.Add(int64(c.Read))
			rejected := counters.rejected.Add(int64(c.Rejected))
			d.Progress.Advanced(job.Name, c.Read)
			if c.LoadRejects > 0 {
				r.log.Warn("database refused rows; their documents are rejected", "collection", job.Name, "range", b.RangeNo, "batch", b.Seq, "rejected", c.LoadRejects)
			}
			if claim != nil && r.o.MaxRejects.Set() {
				// Job mode: other processes commit batches of the collection too; the limit
				// is on the collection's committed counts, which only the manifest holds.
				if read, rejected, err = d.Store.Committed(ctx, r.run.ID, job.Name); err != nil {
					failed = err
					stopProducer()
					continue
				}
			}
			if r.o.MaxRejects.Exceeded(rejected, read, r.o.BatchSize, false) {
				failed = &RejectLimitError{Collection: job.Name, Rejected: rejected, Read: read}
				stopProducer()
				continue
			}
			if r.throttle != nil {
				if err := r.throttle.wait(ctx, c.Read); err != nil {
					failed = err
					stopProducer()
					continue
				}
			}
			free <- b
		}
		committed <- failed
	}()

	readErr := func() error {
		defer close(full)
		var b *Batch
		next := func() error {
			select {
			case b = <-free:
			case <-pctx.Done():
				return pctx.Err()
			}
			b.Reset()
			b.RunID, b.Collection, b.RangeNo, b.Seq, b.Tables, b.File = r.run.ID, job.Name, rg.No, seq, tables, file
			b.Claim = claim
			b.Delta = r.run.Kind == "delta"
			b.StartOffset = from.Offset
			b.SourceFile, b.SourceIdentity = srcFile, srcIdentity
			seq++
			return nil
		}
		send := func() error {
			b.SourceDigest = sourceDigest(b.Raw, b.Docs, file)
			select {
			case full <- b:
				b = nil
				return nil
			case <-pctx.Done():
				return pctx.Err()
			}
		}
		if err := next(); err != nil {
			return err
		}
		err := d.Source.Scan(pctx, job.NS, pr, from, func(doc bson.Raw, pos Position) error {
			start := len(b.Raw)
			b.Raw = append(b.Raw, doc...)
			raw := b.Raw[start:]
			i := len(b.Docs)
			rows, data := b.Rows.Mark()
			b.Rows.SetDoc(i)
			v := job.Transform.Apply(raw, &b.Rows)
			if v.Skip != "" || v.Reject != nil {
				b.Rows.Truncate(rows, data)
			}
			b.Docs = append(b.Docs, BatchDoc{Start: start, End: len(b.Raw), ID: v.ID, Reject: v.Reject, Skip: v.Skip})
			b.StringsFixed += v.StringsFixed
			b.Collapsed += v.Collapsed
			if i == 0 {
				b.FirstID = v.ID
			}
			b.LastID = v.ID
			b.ResumeID = pos.ID
			b.EndOffset = pos.End
			if len(b.Docs) >= r.o.BatchSize || len(b.Raw) >= r.o.BatchBytes {
				from.Offset = pos.End
				if err := send(); err != nil {
					return err
				}
				return next()
			}
			return nil
		})
		if err != nil {
			// Commit what was read before a corrupt frame: those documents are accounted.
			var ce *CorruptError
			if errors.As(err, &ce) && b != nil && len(b.Docs) > 0 {
				if serr := send(); serr != nil {
					return serr
				}
			}
			return err
		}
		if b != nil && len(b.Docs) > 0 {
			return send()
		}
		return nil
	}()
	commitErr := <-committed
	if commitErr != nil && errors.Is(readErr, context.Canceled) && ctx.Err() == nil {
		readErr = nil // the committer stopped the reading; that is no failure of its own
	}
	var ce *CorruptError
	if errors.As(readErr, &ce) {
		readErr = fmt.Errorf("collection %s: range %d: %w", job.Name, rg.No, readErr)
	}
	// Both are kept: corrupt input read after a batch that then crossed --max-rejects is
	// reported, and decides the exit code, with the crossed limit (cli.md, Exit codes).
	if err := errors.Join(readErr, commitErr); err != nil {
		return err
	}
	if claim != nil {
		return d.Store.MarkClaimedRangeDone(ctx, r.run.ID, job.Name, rg.No, claim.Worker, claim.Epoch)
	}
	return d.Store.MarkRangeDone(ctx, r.run.ID, job.Name, rg.No)
}
