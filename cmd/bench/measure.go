package main

// The measurements of bench.md: (a) the limit, (b) convert run from a dump, (c) the naive path,
// (d) convert run from FerretDB, and each stage alone. Every function here times one run; the
// caller repeats it and takes the median. Setup (truncating the tables, a checkpoint, opening
// connections) happens before the clock starts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
	"github.com/stellaops/convert/pipeline/load"
)

// resetTables empties the tables and checkpoints, so that every timed run starts from empty
// tables and no dirty buffers or pending WAL of the previous one.
func resetTables(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Ident()
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return checkpoint(ctx, pool)
}

func checkpoint(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// copyLimit is (a): the precomputed rows COPYed from their files in `streams` parallel COPY
// statements per table (one connection each), tables in order. With several streams, each
// takes a contiguous run of batches, balanced by bytes.
func copyLimit(ctx context.Context, pool *pgxpool.Pool, p *precomputed, streams int) (time.Duration, error) {
	if err := resetTables(ctx, pool, p.Tables); err != nil {
		return 0, err
	}
	conns := make([]*pgxpool.Conn, streams)
	for i := range conns {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		defer c.Release()
		conns[i] = c
	}
	files := make([]*os.File, len(p.Files))
	for i, path := range p.Files {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		files[i] = f
	}
	start := time.Now()
	for t, tb := range p.Tables {
		if p.Rows[t] == 0 {
			continue
		}
		sql := copySQL(tb)
		parts := splitBatches(p, t, streams)
		errs := make(chan error, len(parts))
		for i, pt := range parts {
			go func() {
				var r io.Reader
				if len(parts) == 1 {
					r = io.NewSectionReader(files[t], 0, p.FileBytes[t])
				} else {
					r = io.MultiReader(bytes.NewReader(copyHeader), io.NewSectionReader(files[t], pt.start, pt.end-pt.start), bytes.NewReader(copyTrailer))
				}
				tag, err := conns[i].Conn().PgConn().CopyFrom(ctx, r, sql)
				if err == nil && tag.RowsAffected() != pt.rows {
					err = fmt.Errorf("COPY into %s wrote %d of %d rows", tb.FullName(), tag.RowsAffected(), pt.rows)
				}
				errs <- err
			}()
		}
		var all []error
		for range parts {
			all = append(all, <-errs)
		}
		if err := errors.Join(all...); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// freshFlags are the bin/convert flags of a fresh target, measured as (b-fresh).
var freshFlags = []string{"--defer-indexes", "--defer-foreign-keys"}

// copyLimitFresh is the limit of a fresh target, what (b-fresh) is compared with: the tables'
// secondary indexes and foreign keys dropped (untimed) by the tool's own StartRun, the rows
// COPYed as copyLimit does, then the indexes built and the keys validated once by the tool's
// own RestoreDeferred (timed): the work a fresh-target run does instead of maintaining them
// row by row.
func copyLimitFresh(ctx context.Context, pool *pgxpool.Pool, p *precomputed, streams int) (time.Duration, error) {
	if err := manifests.Migrate(ctx, pool); err != nil {
		return 0, err
	}
	run := &manifests.Run{
		ID: pipeline.NewRunID(time.Now()), Kind: "run", Selection: "bench:limit-fresh", StartedAt: time.Now().UTC(), AsOf: benchAsOf,
		SourceKind: "bench", SourceFingerprint: "bench", Options: json.RawMessage(`{}`), ToolVersion: "bench", TransformVersion: "bench",
		Status: manifests.StatusRunning,
	}
	target := load.NewTarget(pool)
	// copyLimit empties the tables itself.
	if err := target.StartRun(ctx, run, nil, pipeline.Deferral{Indexes: p.Tables, ForeignKeys: p.Tables}); err != nil {
		return 0, err
	}
	d, err := copyLimit(ctx, pool, p, streams)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := target.RestoreDeferred(ctx, p.Tables); err != nil {
		return 0, err
	}
	d += time.Since(start)
	return d, manifests.NewStore(pool).SetRunStatus(ctx, run.ID, manifests.StatusCompleted, "")
}

type part struct {
	start, end int64
	rows       int64
}

// splitBatches cuts table t's tuples into at most n contiguous parts of about equal bytes, at
// batch boundaries.
func splitBatches(p *precomputed, t, n int) []part {
	total := p.FileBytes[t]
	var parts []part
	cur := part{start: -1}
	for _, b := range p.Batches {
		sp := b.Spans[t]
		if sp.Rows == 0 {
			continue
		}
		if cur.start < 0 {
			cur.start = sp.Start
		}
		cur.end = sp.End
		cur.rows += int64(sp.Rows)
		if len(parts) < n-1 && cur.end-int64(len(copyHeader)) >= total*int64(len(parts)+1)/int64(n) {
			parts = append(parts, cur)
			cur = part{start: -1}
		}
	}
	if cur.start >= 0 {
		parts = append(parts, cur)
	}
	return parts
}

// convertRun is one `bin/convert run` (b, d): its wall time from start to exit, its peak RSS,
// and its report, which must account for every document as loaded.
type convertRun struct {
	Elapsed time.Duration
	MaxRSS  int64 // bytes
}

// timeBin measures peak RSS. Go starts children with clone(CLONE_VM|CLONE_VFORK), and at exec
// Linux folds the high-water RSS of the memory the child shared — the harness's — into the
// child's ru_maxrss, so wait4's Maxrss of a direct child reports the harness's peak whenever
// that is larger. /usr/bin/time fork()s from its own small image and prints the child's own
// peak ("%M", kilobytes), which is what -v calls "Maximum resident set size".
const timeBin = "/usr/bin/time"

func runConvert(ctx context.Context, bin string, args []string, logPath string) (*convertRun, error) {
	if _, err := os.Stat(timeBin); err != nil {
		return nil, fmt.Errorf("%s is needed to read the peak RSS of bin/convert (apt-get install -y time): %w", timeBin, err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	rssPath := logPath + ".rss"
	argv := append([]string{"-f", "%M", "-o", rssPath, bin}, args...)
	cmd := exec.CommandContext(ctx, timeBin, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: on timeout or Ctrl-C the whole group gets SIGINT, and convert stops
	// the way an operator would stop it (the batch in flight commits or rolls back); time(1)
	// itself ignores SIGINT while it waits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	werr := cmd.Wait()
	r := &convertRun{Elapsed: time.Since(start)}
	if werr != nil {
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), werr, tail(log, 3000))
	}
	b, err := os.ReadFile(rssPath)
	if err != nil {
		return nil, err
	}
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s wrote no peak RSS to %s", timeBin, rssPath)
	}
	kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: peak RSS %q: %w", rssPath, lines[len(lines)-1], err)
	}
	r.MaxRSS = kb * 1024
	return r, nil
}

// readReport reads the run's --report file and checks that it loaded want documents of
// collection, rejecting and skipping none.
func readReport(path, collection string, want int) (*pipeline.Report, *pipeline.CollectionReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var rep pipeline.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, nil, fmt.Errorf("report %s: %w", path, err)
	}
	if rep.Status != manifests.StatusCompleted {
		return nil, nil, fmt.Errorf("report %s: run status %s: %s", path, rep.Status, rep.Error)
	}
	for i := range rep.Collections {
		c := &rep.Collections[i]
		if c.Collection != collection {
			continue
		}
		if c.Read != int64(want) || c.Loaded != int64(want) || c.Rejected != 0 || c.Skipped != 0 {
			return nil, nil, fmt.Errorf("report %s: %s read %d, loaded %d, rejected %d, skipped %d; want %d loaded",
				path, collection, c.Read, c.Loaded, c.Rejected, c.Skipped, want)
		}
		return &rep, c, nil
	}
	return nil, nil, fmt.Errorf("report %s: no collection %s", path, collection)
}

// naiveRow is one row of the naive path, its values as binary parameters.
type naiveRow struct {
	table  int
	params [][]byte
}

// naiveRows collects the first k documents' rows, per document its rows in table order
// (parents first), as the binary parameters of the prepared INSERTs.
func naiveRows(p *precomputed, k int) ([]naiveRow, error) {
	br, err := openBatches(p)
	if err != nil {
		return nil, err
	}
	defer br.close()
	var out []naiveRow
	for bi, docs := 0, 0; bi < len(p.Batches) && docs < k; bi++ {
		b := p.Batches[bi]
		perDoc := make([][]naiveRow, b.Docs)
		for t := range p.Tables {
			sp := b.Spans[t]
			err := br.tuples(bi, t, func(i int, fields [][]byte) error {
				params := make([][]byte, len(fields))
				for j, f := range fields {
					if f != nil {
						params[j] = append([]byte{}, f...)
					}
				}
				d := sp.RowDocs[i]
				perDoc[d] = append(perDoc[d], naiveRow{table: t, params: params})
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		for d := 0; d < b.Docs && docs < k; d++ {
			out = append(out, perDoc[d]...)
			docs++
		}
	}
	return out, nil
}

// naive is (c): one autocommitted prepared INSERT per row, on one connection.
func naive(ctx context.Context, pool *pgxpool.Pool, p *precomputed, rows []naiveRow) (time.Duration, error) {
	if err := resetTables(ctx, pool, p.Tables); err != nil {
		return 0, err
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	pc := c.Conn().PgConn()
	formats := make([][]int16, len(p.Tables))
	for t, tb := range p.Tables {
		name := fmt.Sprintf("bench_naive_%d", t)
		if _, err := pc.Prepare(ctx, name, insertSQL(tb), nil); err != nil {
			return 0, fmt.Errorf("prepare insert into %s: %w", tb.FullName(), err)
		}
		defer func() { _, _ = pc.Exec(context.WithoutCancel(ctx), "DEALLOCATE "+name).ReadAll() }()
		formats[t] = make([]int16, len(tb.Written()))
		for i := range formats[t] {
			formats[t][i] = 1
		}
	}
	start := time.Now()
	for _, r := range rows {
		tag, err := pc.ExecPrepared(ctx, fmt.Sprintf("bench_naive_%d", r.table), r.params, formats[r.table], nil).Close()
		if err != nil {
			return 0, fmt.Errorf("insert into %s: %w", p.Tables[r.table].FullName(), err)
		}
		if tag.RowsAffected() != 1 {
			return 0, fmt.Errorf("insert into %s affected %d rows", p.Tables[r.table].FullName(), tag.RowsAffected())
		}
	}
	return time.Since(start), nil
}

// extractStage reads the dump with dump.Open and Scan, touching nothing but the frames.
func extractStage(ctx context.Context, root string, sh shape) (time.Duration, int, int64, error) {
	start := time.Now()
	docs, bytes := 0, int64(0)
	err := scanDump(ctx, root, sh, func(doc bson.Raw, _ pipeline.Position) error {
		docs++
		bytes += int64(len(doc))
		return nil
	})
	return time.Since(start), docs, bytes, err
}

// keyPassStage is the transform's key pass over the dump, as run before the first batch.
func keyPassStage(ctx context.Context, root string, sh shape, asOf time.Time, target pipeline.Target) (time.Duration, error) {
	tr := sh.Job(asOf).Transform
	start := time.Now()
	err := keyPass(ctx, root, sh, tr, target)
	return time.Since(start), err
}

// memDocs are documents held in memory for the transform stage.
type memDocs struct {
	data []byte
	ends []int
}

func (m *memDocs) doc(i int) bson.Raw {
	start := 0
	if i > 0 {
		start = m.ends[i-1]
	}
	return m.data[start:m.ends[i]]
}

// loadMemDocs reads the first documents of the dump, up to limit bytes.
func loadMemDocs(ctx context.Context, root string, sh shape, limit int64) (*memDocs, error) {
	m := &memDocs{}
	err := scanDump(ctx, root, sh, func(doc bson.Raw, _ pipeline.Position) error {
		if int64(len(m.data)+len(doc)) > limit {
			return errStop
		}
		m.data = append(m.data, doc...)
		m.ends = append(m.ends, len(m.data))
		return nil
	})
	return m, err
}

// transformStage applies the transform to in-memory documents in one goroutine, as the
// pipeline's producer does for a range, into a RowBuffer cut into the tool's batches. The key
// pass runs first over the whole dump against target, untimed.
func transformStage(ctx context.Context, m *memDocs, sh shape, asOf time.Time, root string, target pipeline.Target) (time.Duration, error) {
	tr := sh.Job(asOf).Transform
	if err := keyPass(ctx, root, sh, tr, target); err != nil {
		return 0, err
	}
	var rb pipeline.RowBuffer
	rb.Reset()
	start := time.Now()
	docs, raw := 0, 0
	for i := range m.ends {
		doc := m.doc(i)
		rb.SetDoc(docs)
		if v := tr.Apply(doc, &rb); v.Reject != nil || v.Skip != "" {
			return 0, fmt.Errorf("document %d not loaded: reject %v, skip %q", i, v.Reject, v.Skip)
		}
		docs++
		raw += len(doc)
		if docs >= pipeline.DefaultBatchSize || raw >= pipeline.DefaultBatchBytes {
			rb.Reset()
			docs, raw = 0, 0
		}
	}
	return time.Since(start), nil
}

// sinkStage is load alone through the tool's sink: the precomputed batches, read back from the
// COPY files into the pipeline.Batch the tool's producer hands over (rows in checksum
// encoding), committed by load.Sink with their manifest rows in a new run. As the pipeline does
// for a dump split into spans, `workers` ranges (contiguous runs of batches) load in parallel,
// each committing in order with the next batch read while one commits (processRange).
func sinkStage(ctx context.Context, pool *pgxpool.Pool, p *precomputed, sh shape, asOf time.Time, workers int) (time.Duration, error) {
	job := sh.Job(asOf)
	store := manifests.NewStore(pool)
	run := &manifests.Run{
		ID: pipeline.NewRunID(time.Now()), Kind: "run", Collections: []string{job.Name}, Selection: "bench:load-stage:" + job.Name,
		StartedAt: time.Now().UTC(), AsOf: asOf, SourceKind: "dump", SourceFingerprint: "bench", Options: json.RawMessage(`{}`),
		ToolVersion: "bench", TransformVersion: sh.Version, Status: manifests.StatusRunning,
	}
	if err := load.NewTarget(pool).StartRun(ctx, run, p.Tables, pipeline.Deferral{}); err != nil { // truncates the tables
		return 0, err
	}
	if err := store.EnsureCollection(ctx, &manifests.Collection{RunID: run.ID, Name: job.Name, Module: job.Module,
		SourceNS: job.NS.String(), Tier: job.Tier, Filter: job.Filter}); err != nil {
		return 0, err
	}
	// Contiguous groups of batches, one range each.
	var groups [][2]int
	per := (len(p.Batches) + workers - 1) / workers
	for lo := 0; lo < len(p.Batches); lo += per {
		groups = append(groups, [2]int{lo, min(lo+per, len(p.Batches))})
	}
	ranges := make([]manifests.Range, len(groups))
	for i := range ranges {
		ranges[i] = manifests.Range{No: i}
	}
	if err := store.SaveRanges(ctx, run.ID, job.Name, ranges); err != nil {
		return 0, err
	}
	if err := checkpoint(ctx, pool); err != nil {
		return 0, err
	}
	readers := make([]*batchReader, len(groups))
	for i := range readers {
		br, err := openBatches(p)
		if err != nil {
			return 0, err
		}
		defer br.close()
		readers[i] = br
	}
	sink := load.NewSink(pool)
	type result struct {
		loaded int
		err    error
	}
	results := make(chan result, len(groups))
	start := time.Now()
	for g, grp := range groups {
		go func() {
			n, err := loadRange(ctx, sink, readers[g], run.ID, job.Name, g, grp[0], grp[1])
			results <- result{n, err}
		}()
	}
	loaded := 0
	var errs []error
	for range groups {
		r := <-results
		loaded += r.loaded
		errs = append(errs, r.err)
	}
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if loaded != p.Docs {
		return 0, fmt.Errorf("load stage committed %d of %d documents", loaded, p.Docs)
	}
	if err := store.SetRunStatus(ctx, run.ID, manifests.StatusCompleted, ""); err != nil {
		return 0, err
	}
	return elapsed, nil
}

// loadRange commits batches [lo, hi) as range rangeNo, reading the next batch while one commits.
func loadRange(ctx context.Context, sink *load.Sink, br *batchReader, runID, collection string, rangeNo, lo, hi int) (int, error) {
	free := make(chan *pipeline.Batch, 2)
	full := make(chan *pipeline.Batch, 1)
	free <- &pipeline.Batch{}
	free <- &pipeline.Batch{}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for k := lo; k < hi; k++ {
			var b *pipeline.Batch
			select {
			case b = <-free:
			case <-pctx.Done():
				readErr <- pctx.Err()
				return
			}
			if err := br.fill(k, b); err != nil {
				readErr <- err
				return
			}
			b.RunID, b.Collection, b.RangeNo, b.Seq = runID, collection, rangeNo, k-lo
			select {
			case full <- b:
			case <-pctx.Done():
				readErr <- pctx.Err()
				return
			}
		}
		readErr <- nil
	}()
	loaded := 0
	var commitErr error
	for b := range full {
		if commitErr != nil {
			continue
		}
		c, err := sink.Commit(ctx, b)
		if err != nil {
			commitErr = err
			cancel()
			continue
		}
		loaded += c.Loaded
		free <- b
	}
	return loaded, errors.Join(commitErr, <-readErr)
}

// profiledRun runs the pipeline in this process exactly as `convert run --from DUMP
// --collection ... --replace` composes it (cmd/convert run.go), under the CPU profiler: the tool
// reads no profiling switch, so this is how its hot spots are seen.
func profiledRun(ctx context.Context, dsn, root string, sh shape, workers int, profilePath string) (time.Duration, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return 0, err
	}
	cfg.MaxConns = int32(max(workers+4, 4))
	cfg.ConnConfig.RuntimeParams["application_name"] = "convert-bench-profile"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	f, err := os.Create(profilePath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return 0, err
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = convertInProcess(ctx, pool, root, sh.Job(benchAsOf), sh.Version, workers)
	elapsed := time.Since(start)
	pprof.StopCPUProfile()
	if err != nil {
		return 0, err
	}
	// Where the run allocated (go tool pprof -sample_index=alloc_space): the profile covers the
	// process's whole history, so the harness's own allocations before the run are in it too.
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	logf("  profiled run: %.2f GB allocated, %d GCs", float64(after.TotalAlloc-before.TotalAlloc)/1e9, after.NumGC-before.NumGC)
	af, err := os.Create(strings.TrimSuffix(profilePath, ".cpu.pprof") + ".allocs.pprof")
	if err != nil {
		return 0, err
	}
	defer af.Close()
	if err := pprof.Lookup("allocs").WriteTo(af, 0); err != nil {
		return 0, err
	}
	return elapsed, errors.Join(f.Close(), af.Close())
}

// convertInProcess runs the pipeline in this process as `convert run --from DUMP --replace`
// composes it (cmd/convert run.go) for one collection job, with the as-of of the benchmark.
func convertInProcess(ctx context.Context, pool *pgxpool.Pool, root string, job pipeline.CollectionJob, version string, workers int) (*pipeline.Report, error) {
	if err := manifests.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	src, err := dump.Open(ctx, root)
	if err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	o := pipeline.Options{
		Replace: true, Workers: workers, BatchSize: pipeline.DefaultBatchSize, RetryFor: pipeline.DefaultRetryFor, AsOf: benchAsOf,
		Selection: "bench:" + job.Name, Collections: []string{job.Name}, Result: map[string]any{"fix_strings": false},
		ToolVersion: "bench", TransformVersion: version,
	}
	d := pipeline.Deps{
		Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: manifests.NewStore(pool),
		Collections: []pipeline.CollectionJob{job}, IsTransient: load.IsTransient,
	}
	rep, err := pipeline.Run(ctx, o, d)
	if err != nil {
		return nil, err
	}
	if rep.Status != manifests.StatusCompleted {
		return nil, fmt.Errorf("run of %s ended %s: %s", job.Name, rep.Status, rep.Error)
	}
	return rep, nil
}

// analyzeTables analyzes the tables as the tool does when a collection completes
// (load.Target.Analyze), timed: the limit's rows with the statistics (b) leaves.
func analyzeTables(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table) (time.Duration, error) {
	start := time.Now()
	err := load.NewTarget(pool).Analyze(ctx, tables)
	return time.Since(start), err
}
