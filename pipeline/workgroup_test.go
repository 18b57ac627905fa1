package pipeline

import (
	"context"
	"errors"
	"testing"
)

// TestWorkGroupKeepsEveryFailure: every worker's own failure is returned, the cancellations
// the first failure caused are not, and a stopped run still says it was stopped.
func TestWorkGroupKeepsEveryFailure(t *testing.T) {
	corrupt, limit := errors.New("corrupt input"), errors.New("reject limit")
	wait := errors.New("wait") // the worker waits for the group's context and returns its error
	cases := []struct {
		name   string
		fails  []error // what each worker returns; nil succeeds
		stop   bool    // cancel the parent context as a signal would
		want   []error
		wantNo []error
	}{
		{name: "all succeed", fails: []error{nil}},
		{name: "two failures", fails: []error{corrupt, limit}, want: []error{corrupt, limit}},
		{name: "one failure cancels the rest", fails: []error{corrupt, wait, wait}, want: []error{corrupt}, wantNo: []error{context.Canceled}},
		{name: "stopped", fails: []error{wait, wait}, stop: true, want: []error{context.Canceled}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			g := newWorkGroup(parent, 0)
			for _, f := range c.fails {
				if f == wait {
					g.Go(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
					continue
				}
				g.Go(func(context.Context) error { return f })
			}
			if c.stop {
				cancel()
			}
			err := g.Wait()
			if len(c.want) == 0 && err != nil {
				t.Fatalf("Wait = %v, want nil", err)
			}
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("Wait = %v, want it to hold %v", err, w)
				}
			}
			for _, w := range c.wantNo {
				if errors.Is(err, w) {
					t.Errorf("Wait = %v, want no %v", err, w)
				}
			}
		})
	}
}
