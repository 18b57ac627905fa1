package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

// TestExitCodePrecedence: where several errors apply at once, cli.md's order decides: 2, then
// 1, then 4, then 3; a signal stops with 130/143 unless a refusal (2) applies.
func TestExitCodePrecedence(t *testing.T) {
	corrupt := fmt.Errorf("collection db.c: range 0: %w", &pipeline.CorruptError{File: "f.bson", Offset: 9, What: "short"})
	limit := &pipeline.RejectLimitError{Collection: "db.c", Rejected: 5, Read: 9}
	usage := usagef("refused")
	diff := &differencesError{n: 2}
	lock := &load.LockHeldError{}
	cases := []struct {
		name string
		err  error
		sig  any
		want int
	}{
		{"plain failure", errors.New("boom"), nil, 1},
		{"reject limit", limit, nil, 4},
		{"corrupt and reject limit", errors.Join(limit, corrupt), nil, 1},
		{"nested joins", errors.Join(errors.Join(nil, limit), errors.Join(corrupt)), nil, 1},
		{"reject limit and differences", errors.Join(diff, limit), nil, 4},
		{"differences", fmt.Errorf("verify: %w", diff), nil, 3},
		{"refusal outranks all", errors.Join(corrupt, limit, fmt.Errorf("x: %w", usage)), nil, 2},
		{"refusal under a wrapped join", fmt.Errorf("run: %w", errors.Join(limit, usage)), nil, 2},
		{"lock held", lock, nil, 5},
		{"SIGINT", context.Canceled, syscall.SIGINT, 130},
		{"SIGTERM with a reject limit", errors.Join(limit, context.Canceled), syscall.SIGTERM, 143},
		{"refusal during SIGINT", usage, syscall.SIGINT, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exitCode(c.err, c.sig); got != c.want {
				t.Errorf("exitCode = %d, want %d", got, c.want)
			}
		})
	}
	if n := len(problems(errors.Join(errors.Join(corrupt, limit), diff))); n != 3 {
		t.Errorf("problems lists %d errors, want 3", n)
	}
}
