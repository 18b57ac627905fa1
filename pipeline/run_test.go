package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/transforms/generic"
)

// memSource is a file-like source over documents in memory: one range, byte offsets.
// failAt makes a Scan that reaches that document return failErr there: once for a transient
// error, every time for corruption.
type memSource struct {
	docs    [][]byte
	class   string // "" file-like (offsets), else live-like (resume after _id)
	mu      sync.Mutex
	failAt  int
	failErr error
}

func (s *memSource) Kind() string                                          { return "memory" }
func (s *memSource) Fingerprint() string                                   { return "memory:test" }
func (s *memSource) Close(context.Context) error                           { return nil }
func (s *memSource) Collections(context.Context, string) ([]string, error) { return []string{"c"}, nil }
func (s *memSource) Plan(context.Context, pipeline.Namespace) (pipeline.CollectionPlan, error) {
	return pipeline.CollectionPlan{Count: int64(len(s.docs)), Ranges: []pipeline.Range{{No: 0, TypeClass: s.class}}}, nil
}

func (s *memSource) Scan(ctx context.Context, _ pipeline.Namespace, r pipeline.Range, from pipeline.Cursor, fn func(bson.Raw, pipeline.Position) error) error {
	var off int64
	skipping := from.AfterID != nil
	for i, d := range s.docs {
		start := off
		off += int64(len(d))
		id := bson.Raw(d).Lookup("_id")
		enc := append([]byte{byte(id.Type)}, id.Value...)
		// Live-like ranges keep (Lower, Upper]: the test's _ids are strings of one length, whose
		// encodings sort as the strings do.
		if s.class != "" && (r.Lower != nil && string(enc) <= string(r.Lower) || r.Upper != nil && string(enc) > string(r.Upper)) {
			continue
		}
		if skipping {
			skipping = string(enc) != string(from.AfterID)
			continue
		}
		if start < from.Offset {
			continue
		}
		s.mu.Lock()
		fail := s.failErr != nil && i == s.failAt
		err := s.failErr
		if fail && errors.Is(err, errFlaky) {
			s.failErr = nil // transient: once; corruption stays
		}
		s.mu.Unlock()
		if fail {
			return err
		}
		if err := fn(d, pipeline.Position{ID: enc, Start: start, End: off}); err != nil {
			return err
		}
	}
	return nil
}

// flakySink fails commit number failOn with a transient error, before writing anything.
type flakySink struct {
	inner  pipeline.Sink
	mu     sync.Mutex
	n      int
	failOn int
}

var errFlaky = errors.New("connection reset (injected)")

func (f *flakySink) Commit(ctx context.Context, b *pipeline.Batch) (pipeline.Committed, error) {
	f.mu.Lock()
	f.n++
	fail := f.n == f.failOn
	f.mu.Unlock()
	if fail {
		return pipeline.Committed{}, errFlaky
	}
	return f.inner.Commit(ctx, b)
}

func docs(n int, bad map[int]bool) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("doc %d", i)
		if bad[i] {
			name = "nul\x00inside"
		}
		b, _ := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("id-%04d", i)}, {Key: "tenant", Value: "t1"}, {Key: "name", Value: name}})
		out = append(out, b)
	}
	return out
}

type env struct {
	pool  *pgxpool.Pool
	store *manifests.Store
}

func newEnv(t *testing.T) env {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := manifests.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	return env{pool: pool, store: manifests.NewStore(pool)}
}

var asOf = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func job(t *testing.T) pipeline.CollectionJob {
	sp, err := generic.ParseSpec("db.c")
	if err != nil {
		t.Fatal(err)
	}
	f := tiers.Full().Bind(asOf)
	return pipeline.CollectionJob{Name: "db.c", Module: "generic", NS: pipeline.Namespace{DB: "db", Collection: "c"},
		Tier: "A", Filter: f.Describe(), Transform: generic.New(sp, f, transforms.Options{})}
}

func run(t *testing.T, e env, src pipeline.Source, sink pipeline.Sink, o pipeline.Options) (*pipeline.Report, error) {
	t.Helper()
	o.AsOf = asOf
	o.Selection = "collections:db.c"
	o.TransformVersion = generic.Version
	if sink == nil {
		sink = load.NewSink(e.pool)
	}
	return pipeline.Run(t.Context(), o, pipeline.Deps{Source: src, Sink: sink, Target: load.NewTarget(e.pool), Store: e.store,
		Collections: []pipeline.CollectionJob{job(t)}, IsTransient: func(err error) bool { return errors.Is(err, errFlaky) }})
}

// TestRetryResumesFromLastCommittedBatch: a transient sink failure and a transient source
// failure are retried from the last committed batch, and the result equals a clean run.
func TestRetryResumesFromLastCommittedBatch(t *testing.T) {
	d := docs(1000, map[int]bool{17: true, 640: true})
	clean, err := run(t, newEnv(t), &memSource{docs: d}, nil, pipeline.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	src := &memSource{docs: d, class: "string", failAt: 700, failErr: errFlaky}
	rep, err := run(t, e, src, &flakySink{inner: load.NewSink(e.pool), failOn: 5}, pipeline.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	c, w := rep.Collections[0], clean.Collections[0]
	if c.Checksum != w.Checksum || c.Read != 1000 || c.Loaded != 998 || c.Rejected != 2 || c.Read != c.Loaded+c.Rejected+c.Skipped {
		t.Fatalf("after retries: %+v\nclean: %+v", c, w)
	}
	var dup int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) - count(DISTINCT id) FROM db.c`).Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("duplicates: %d %v", dup, err)
	}
}

// TestCorruptFrameCommitsWhatCameBefore: documents before a corrupt frame are committed and
// accounted; the run fails; a resume after the repair continues after them.
func TestCorruptFrameCommitsWhatCameBefore(t *testing.T) {
	e := newEnv(t)
	d := docs(300, nil)
	corrupt := &pipeline.CorruptError{File: "db/c.bson", Offset: 12345, What: "length 3 below 5"}
	_, err := run(t, e, &memSource{docs: d, failAt: 150, failErr: corrupt}, nil, pipeline.Options{BatchSize: 40})
	var ce *pipeline.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("run error %v, want the corrupt frame", err)
	}
	var read int
	if err := e.pool.QueryRow(t.Context(), `SELECT sum(read) FROM convert.batches`).Scan(&read); err != nil || read != 150 {
		t.Fatalf("committed read %d (%v), want the 150 documents before the corrupt frame", read, err)
	}
	rep, err := run(t, e, &memSource{docs: d}, nil, pipeline.Options{BatchSize: 40, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Collections[0]; c.Read != 300 || c.Loaded != 300 || rep.Status != "completed" {
		t.Fatalf("after resume: %+v", c)
	}
}

// TestMaxRejects: past the limit the run stops with RejectLimitError and the crossing batch
// stays committed; without a limit every reject is kept and the run succeeds.
func TestMaxRejects(t *testing.T) {
	bad := map[int]bool{}
	for i := 0; i < 1000; i += 10 {
		bad[i] = true
	}
	d := docs(1000, bad)
	e := newEnv(t)
	_, err := run(t, e, &memSource{docs: d}, nil, pipeline.Options{BatchSize: 100, MaxRejects: pipeline.RejectLimit{HasCount: true, Count: 25}})
	var rl *pipeline.RejectLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("err %v, want RejectLimitError", err)
	}
	var rejects int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM convert.rejects`).Scan(&rejects); err != nil || rejects != 30 {
		t.Fatalf("%d rejects committed (%v), want 30: the crossing batch stays committed", rejects, err)
	}
	rep, err := run(t, newEnv(t), &memSource{docs: d}, nil, pipeline.Options{BatchSize: 100})
	if err != nil || rep.Collections[0].Rejected != 100 || rep.Collections[0].Loaded != 900 {
		t.Fatalf("no limit: %+v %v", rep, err)
	}
	// Zero allowed: the first batch with a reject stops the run, and stays committed.
	e0 := newEnv(t)
	_, err = run(t, e0, &memSource{docs: d}, nil, pipeline.Options{BatchSize: 100, MaxRejects: pipeline.RejectLimit{HasCount: true}})
	if !errors.As(err, &rl) || rl.Rejected != 10 || rl.Read != 100 {
		t.Fatalf("zero allowed: %v, want a stop after the first batch", err)
	}
	// 5% allowed, 10% rejected: crosses once read reaches 1000.
	_, err = run(t, newEnv(t), &memSource{docs: d}, nil, pipeline.Options{BatchSize: 100, MaxRejects: pipeline.RejectLimit{Fraction: 0.05}})
	if !errors.As(err, &rl) {
		t.Fatalf("5%%: err %v, want RejectLimitError", err)
	}
}

// TestResumeRefusesChangedOptions: a resume whose as-of or result options differ exits with a
// usage error naming the option.
func TestResumeRefusesChangedOptions(t *testing.T) {
	e := newEnv(t)
	d := docs(200, nil)
	corrupt := &pipeline.CorruptError{File: "x", Offset: 1, What: "test"}
	if _, err := run(t, e, &memSource{docs: d, failAt: 100, failErr: corrupt}, nil, pipeline.Options{BatchSize: 50, Result: map[string]any{"fix_strings": false}}); err == nil {
		t.Fatal("want the injected failure")
	}
	_, err := run(t, e, &memSource{docs: d}, nil, pipeline.Options{BatchSize: 50, Resume: true, Result: map[string]any{"fix_strings": true}})
	var ue *pipeline.UsageError
	if !errors.As(err, &ue) || !contains(ue.Msg, "fix_strings") {
		t.Fatalf("err %v, want a refusal naming fix_strings", err)
	}
	// Workers and batch size may differ.
	rep, err := run(t, e, &memSource{docs: d}, nil, pipeline.Options{BatchSize: 7, Workers: 3, Resume: true, Result: map[string]any{"fix_strings": false}})
	if err != nil || rep.Collections[0].Loaded != 200 {
		t.Fatalf("resume with other batch size: %+v %v", rep, err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// alwaysFailing fails every commit with a transient error, counting the attempts.
type alwaysFailing struct{ attempts atomic.Int32 }

func (a *alwaysFailing) Commit(context.Context, *pipeline.Batch) (pipeline.Committed, error) {
	a.attempts.Add(1)
	return pipeline.Committed{}, errFlaky
}

// TestRetryGivesUp: transient errors that outlast --retry-for end the run once, with a
// GaveUpError that no outer loop retries again.
func TestRetryGivesUp(t *testing.T) {
	e := newEnv(t)
	sink := &alwaysFailing{}
	_, err := run(t, e, &memSource{docs: docs(50, nil), class: "string"}, sink, pipeline.Options{BatchSize: 10, RetryFor: 1200 * time.Millisecond})
	var gu *pipeline.GaveUpError
	if !errors.As(err, &gu) {
		t.Fatalf("err %v, want GaveUpError", err)
	}
	// Backoff 0.5 s then 1 s: the third failure is past the 1.2 s deadline. A second, outer
	// retry loop would start the count again.
	if n := sink.attempts.Load(); n < 2 || n > 4 {
		t.Errorf("%d commit attempts, want one retry loop (2 to 4)", n)
	}
}

// TestRetryStoppedNamesTheError: a run stopped while it waits to retry a transient error says
// which error it was retrying, not a bare "context canceled", and still counts as stopped.
func TestRetryStoppedNamesTheError(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(700*time.Millisecond, cancel) // during the second backoff (0.5 s, then 1 s)
	o := pipeline.Options{BatchSize: 10, AsOf: asOf, Selection: "collections:db.c", TransformVersion: generic.Version}
	_, err := pipeline.Run(ctx, o, pipeline.Deps{Source: &memSource{docs: docs(50, nil), class: "string"}, Sink: &alwaysFailing{},
		Target: load.NewTarget(e.pool), Store: e.store, Collections: []pipeline.CollectionJob{job(t)},
		IsTransient: func(err error) bool { return errors.Is(err, errFlaky) }})
	if !errors.Is(err, context.Canceled) || !contains(err.Error(), errFlaky.Error()) || !contains(err.Error(), "db.c") {
		t.Fatalf("err %v: want the cancellation, naming the collection and the error being retried", err)
	}
}
