package pipeline

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// workGroup is the one worker-pool shape (errgroup with a limit, STYLE practice 5) keeping
// every worker's error instead of the first only: one range may meet corrupt input while
// another crosses --max-rejects, and the command decides the exit code by precedence over all
// of them (cli.md, Exit codes). The first failure cancels the other workers' context, as
// errgroup.WithContext does; the cancellations that causes are not failures of their own and
// are left out of Wait's result.
type workGroup struct {
	g      errgroup.Group
	ctx    context.Context
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	errs   []error
}

// errWorkerFailed is the cause a workGroup cancels its context with.
var errWorkerFailed = errors.New("another worker failed")

// newWorkGroup runs at most limit functions at once (no limit when limit <= 0).
func newWorkGroup(ctx context.Context, limit int) *workGroup {
	w := &workGroup{}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	if limit > 0 {
		w.g.SetLimit(limit)
	}
	return w
}

// Go runs fn with the group's context, waiting for a free slot first.
func (w *workGroup) Go(fn func(ctx context.Context) error) {
	w.g.Go(func() error {
		if err := fn(w.ctx); err != nil {
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
			w.cancel(errWorkerFailed)
		}
		return nil
	})
}

// Wait waits for every function and returns their errors joined (errors.Join), cancellations
// left out unless nothing else failed, or nil.
func (w *workGroup) Wait() error {
	_ = w.g.Wait()
	defer w.cancel(nil)
	var kept []error
	for _, err := range w.errs {
		if !errors.Is(err, context.Canceled) {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 && len(w.errs) > 0 {
		kept = w.errs[:1] // the run was stopped: its cancellation is the answer
	}
	return errors.Join(kept...)
}
