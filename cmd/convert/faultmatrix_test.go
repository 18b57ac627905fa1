package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// faultMatrixSource is the dump every fault of TestFaultMatrix starts from: two generic
// collections, one with a few documents no mapping accepts (invalid UTF-8), so that rejects
// and the reject limit are part of what must come out equal.
type faultMatrixSource struct {
	dir   string
	runs  []bson.Raw
	evts  []bson.Raw
	asOf  string
	colls []string
}

func newFaultMatrixSource(t *testing.T) *faultMatrixSource {
	t.Helper()
	set := seedSet(1500, 0, 300)
	s := &faultMatrixSource{dir: t.TempDir(), asOf: "2026-06-01T00:00:00Z", colls: collectionArgs("fm", "runs", "events")}
	for i, d := range set["runs"] {
		if i%250 == 7 {
			d = append(slices.Clone(d), bson.E{Key: "broken", Value: "bad \xff utf-8"})
		}
		s.runs = append(s.runs, marshal(t, d))
	}
	for i, d := range set["events"] {
		if i%100 == 3 {
			d = append(slices.Clone(d), bson.E{Key: "broken", Value: "bad \xfe utf-8"})
		}
		s.evts = append(s.evts, marshal(t, d))
	}
	s.write(t, s.runs)
	return s
}

// write lays the dump out again with runs as given (events unchanged).
func (s *faultMatrixSource) write(t *testing.T, runs []bson.Raw) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(s.dir, "fm")); err != nil {
		t.Fatal(err)
	}
	writeDumpDir(t, s.dir, "fm", map[string][]bson.Raw{"runs": runs, "events": s.evts}, dump.None)
}

// truncateRuns cuts fm/runs.bson inside document n: a broken frame after n whole documents.
func (s *faultMatrixSource) truncateRuns(t *testing.T, n int) {
	t.Helper()
	size := 0
	for _, d := range s.runs[:n] {
		size += len(d)
	}
	if err := os.Truncate(filepath.Join(s.dir, "fm", "runs.bson"), int64(size+9)); err != nil {
		t.Fatal(err)
	}
}

func (s *faultMatrixSource) args(to string, extra ...string) []string {
	a := append([]string{"run", "--from", s.dir, "--to", to, "--as-of", s.asOf, "--workers", "1", "--batch-size", "5"}, extra...)
	return append(a, s.colls...)
}

// waitForBatches polls the target until at least n batches are committed (or the process ended).
func waitForBatches(t *testing.T, pgURL string, n int, exited func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && !exited() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		conn, err := pgx.Connect(ctx, pgURL)
		if err == nil {
			var got int
			err = conn.QueryRow(ctx, `SELECT count(*) FROM convert.batches`).Scan(&got)
			_ = conn.Close(ctx)
			if err == nil && got >= n {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(10 * time.Millisecond)
	}
}

// interrupt starts a run and hits it with fault once a few batches are committed; the run must
// not have completed by then, or the fault tested nothing.
func interrupt(t *testing.T, pgURL string, args []string, fault func(cmd interface{ Signal(os.Signal) error }) error) (int, string) {
	t.Helper()
	cmd, wait := startConvert(t, args...)
	exited := make(chan struct{})
	var code int
	var stderr string
	go func() { code, stderr = wait(); close(exited) }()
	waitForBatches(t, pgURL, 3, func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	})
	select {
	case <-exited:
		t.Fatalf("the run ended (exit %d) before the fault could hit it:\n%s", code, stderr)
	default:
	}
	if err := fault(cmd.Process); err != nil {
		t.Fatal(err)
	}
	<-exited
	return code, stderr
}

// TestFaultMatrix walks the faults an operator meets — kill -9, SIGTERM, a PostgreSQL restart, a
// source file replaced or repaired after a broken frame, a newer --replace run, a crossed reject
// limit — each followed by --resume and verify. After each, exactly one of two outcomes is
// acceptable: the target equals an uninterrupted run (same checksums, verify exit 0), or a
// refusal with exit 2 whose message names the way out. A crossed limit stays crossed: its
// resume exits 4 again and completes nothing.
func TestFaultMatrix(t *testing.T) {
	src := newFaultMatrixSource(t)
	refRep := parseReport(t, mustConvert(t, nil, src.args(pgtest.Database(t), "--json")...).stdout)
	ref := checksums(refRep)
	var rejected int64
	for _, c := range refRep.Collections {
		rejected += c.Rejected
	}
	if len(ref) != 2 || rejected == 0 {
		t.Fatalf("reference run: %+v", refRep)
	}

	// outcome checks the result of a resume: equal to the reference and verified clean, or
	// (where refusal is acceptable) exit 2 naming the way out.
	outcome := func(t *testing.T, pgURL string, r result, refusal bool) {
		t.Helper()
		switch {
		case r.code == 0:
			rep := parseReport(t, r.stdout)
			if rep.Status != "completed" {
				t.Fatalf("exit 0 but run %s is %s", rep.RunID, rep.Status)
			}
			for name, want := range ref {
				if got := checksums(rep)[name]; got != want {
					t.Errorf("%s: checksum %s after the fault, uninterrupted %s", name, got, want)
				}
			}
			for _, c := range rep.Collections {
				if c.Read != c.Loaded+c.Rejected+c.Skipped {
					t.Errorf("%s: read %d != loaded %d + rejected %d + skipped %d", c.Collection, c.Read, c.Loaded, c.Rejected, c.Skipped)
				}
			}
			verifyClean(t, src.dir, pgURL, rep.RunID)
		case r.code == 2 && refusal:
			if !strings.Contains(r.stderr, "--replace") {
				t.Errorf("refusal without the way out (--replace):\n%s", r.stderr)
			}
		default:
			t.Fatalf("exit %d: neither equal to a clean run nor a refusal\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	}
	resume := func(t *testing.T, pgURL string) result {
		return convert(t, nil, src.args(pgURL, "--resume", "--json")...)
	}

	t.Run("kill -9", func(t *testing.T) {
		pgURL := pgtest.Database(t)
		interrupt(t, pgURL, src.args(pgURL), func(p interface{ Signal(os.Signal) error }) error { return p.Signal(os.Kill) })
		// The killed process's session may hold the module lock a moment longer.
		r := resume(t, pgURL)
		for i := 0; r.code == 5 && i < 20; i++ {
			time.Sleep(250 * time.Millisecond)
			r = resume(t, pgURL)
		}
		outcome(t, pgURL, r, false)
	})

	t.Run("SIGTERM", func(t *testing.T) {
		pgURL := pgtest.Database(t)
		code, stderr := interrupt(t, pgURL, src.args(pgURL), func(p interface{ Signal(os.Signal) error }) error { return p.Signal(syscall.SIGTERM) })
		if code != 143 {
			t.Fatalf("SIGTERM: exit %d, want 143\n%s", code, stderr)
		}
		outcome(t, pgURL, resume(t, pgURL), false)
	})

	t.Run("PostgreSQL restart", func(t *testing.T) {
		srv := pgtest.StartServer(t)
		pgURL := srv.URL()
		code, stderr := interrupt(t, pgURL, src.args(pgURL), func(interface{ Signal(os.Signal) error }) error {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			return srv.Restart(ctx)
		})
		if code != 0 {
			t.Fatalf("run across a PostgreSQL restart: exit %d\n%s", code, stderr)
		}
		outcome(t, pgURL, resume(t, pgURL), false)
	})

	// A broken frame stops the run with exit 1 after the documents before it are committed.
	brokenRun := func(t *testing.T, pgURL string) {
		t.Helper()
		src.truncateRuns(t, 600)
		r := convert(t, nil, src.args(pgURL)...)
		if r.code != 1 || !strings.Contains(r.stderr, "runs.bson") {
			t.Fatalf("broken frame: exit %d, want 1 naming the file\n%s", r.code, r.stderr)
		}
	}

	t.Run("file replaced", func(t *testing.T) {
		defer src.write(t, src.runs)
		pgURL := pgtest.Database(t)
		brokenRun(t, pgURL)
		// A complete dump of the same documents in another order: what was committed is not
		// what the file now holds at those offsets.
		reordered := slices.Clone(src.runs)
		slices.Reverse(reordered)
		src.write(t, reordered)
		r := resume(t, pgURL)
		outcome(t, pgURL, r, true)
		if r.code == 2 {
			// The way out it names: a new run over the file as it now is.
			outcome(t, pgURL, convert(t, nil, src.args(pgURL, "--replace", "--json")...), false)
		}
	})

	t.Run("file repaired", func(t *testing.T) {
		defer src.write(t, src.runs)
		pgURL := pgtest.Database(t)
		brokenRun(t, pgURL)
		src.write(t, src.runs)
		outcome(t, pgURL, resume(t, pgURL), false)
	})

	t.Run("newer --replace run", func(t *testing.T) {
		defer src.write(t, src.runs)
		pgURL := pgtest.Database(t)
		brokenRun(t, pgURL)
		src.write(t, src.runs)
		replaced := parseReport(t, mustConvert(t, nil, src.args(pgURL, "--replace", "--json")...).stdout)
		r := resume(t, pgURL)
		outcome(t, pgURL, r, true)
		if r.code == 0 {
			if got := parseReport(t, r.stdout).RunID; got != replaced.RunID {
				t.Errorf("--resume continued run %s, not the newer completed run %s", got, replaced.RunID)
			}
		}
	})

	// 6 rejects of 1500 runs (0.4 %) and 3 of 300 events (1 %): a count of 1 is crossed in the
	// middle of runs, 0.5 % only when events ends (a share applies before 1000 documents are
	// read only at the collection's end).
	for limit, crossed := range map[string]string{"1": "fm.runs", "0.5%": "fm.events"} {
		t.Run("limit "+limit+" crossed", func(t *testing.T) {
			pgURL := pgtest.Database(t)
			flag := "--max-rejects=" + limit
			if r := convert(t, nil, src.args(pgURL, flag)...); r.code != 4 {
				t.Fatalf("limit crossed: exit %d, want 4\n%s", r.code, r.stderr)
			}
			r := convert(t, nil, src.args(pgURL, "--resume", flag, "--json")...)
			if r.code != 4 {
				t.Fatalf("resume past the limit: exit %d, want 4 again\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			var completed int
			if err := pgConn(t, pgURL).QueryRow(t.Context(), `SELECT count(*) FROM convert.collections
WHERE collection = $1 AND status = 'completed'`, crossed).Scan(&completed); err != nil {
				t.Fatal(err)
			}
			if completed != 0 {
				t.Errorf("%s, past its limit, was recorded completed", crossed)
			}
			// The way out: a new run without the limit.
			outcome(t, pgURL, convert(t, nil, src.args(pgURL, "--replace", "--json")...), false)
		})
	}
}
