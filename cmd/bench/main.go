// Command bench is the benchmark harness behind `make bench` and `make bench-scale`
// (../shared/spec/bench.md says what its figures mean). For each shape of shapes.go and each
// requested size it:
//
//   - writes the documents as a plain mongodump directory (dump.DirWriter) and, with the
//     project's own transform, their exact final rows as binary COPY files, before any timing;
//   - measures (a) the limit: those rows COPYed from the files into empty tables created as the
//     tool creates them, over one stream and over --workers streams; (b) `bin/convert run` from
//     the dump, with its peak RSS; (c) the naive path: one autocommitted prepared INSERT per
//     row on a subset, extrapolated; (d) `bin/convert run` from a live FerretDB on at most 50k
//     documents (FerretDB's ceiling); and each stage alone (extract, key pass, transform, load);
//   - checks that (a) and (b) loaded the same rows (collection checksums) and that (b) loaded
//     every document, so a figure never comes from a run that did something else;
//   - prints a table with docs/s, MB/s and the ratios (b)/(a) and (b)/(c) against bench.md's
//     targets, and writes everything to bench/results/<stamp>.json and latest.json.
//
// It starts and stops its own PostgreSQL 15 and FerretDB, deletes its data, and is bounded by
// -timeout. It builds nothing: the Makefile builds bin/convert and bin/ferretdb first. Figures
// are never pass/fail: the exit status only says whether the benchmark itself ran.
//
// Every flag defaults to an environment variable (BENCH_DOCS for -docs, and so on).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

type config struct {
	convertBin, ferretBin string
	sizes                 []int
	shapes                map[string]bool // nil: all
	runs                  int
	workers               int
	naiveDocs             int
	ferretDocs            int
	ferretMB              int
	stageMemMB            int
	maxSourceGB           float64
	workDir, outDir       string
	timeout               time.Duration
	cpuProfile            bool
	durable               bool
	convertArgs           []string
	keepLogs              bool
	keepDump              string
	skip                  map[string]bool
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseConfig(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		docs, shapesS, skipS, timeoutS string
		convertArgsS                   string
		c                              config
	)
	atoi := func(env string, def int) int {
		n, err := strconv.Atoi(envOr(env, strconv.Itoa(def)))
		if err != nil {
			return -1 // refused below
		}
		return n
	}
	fs.StringVar(&c.convertBin, "convert", envOr("BENCH_CONVERT", "bin/convert"), "the convert binary (BENCH_CONVERT)")
	fs.StringVar(&c.ferretBin, "ferretdb", envOr("BENCH_FERRETDB", "bin/ferretdb"), "the FerretDB binary (BENCH_FERRETDB)")
	fs.StringVar(&docs, "docs", envOr("BENCH_DOCS", ""), "documents per shape; a comma list runs each size in turn; empty: each shape's default, 1 M normalized and 200 000 JSONB-kept (BENCH_DOCS)")
	fs.StringVar(&shapesS, "shapes", envOr("BENCH_SHAPES", ""), "comma list of shapes to run; empty: all (BENCH_SHAPES)")
	fs.IntVar(&c.runs, "runs", atoi("BENCH_RUNS", 3), "runs per figure; the figure is their median (BENCH_RUNS)")
	fs.IntVar(&c.workers, "workers", atoi("BENCH_WORKERS", runtime.NumCPU()), "streams of the parallel limit; bin/convert keeps its default --workers, the CPU count (BENCH_WORKERS)")
	fs.IntVar(&c.naiveDocs, "naive-docs", atoi("BENCH_NAIVE_DOCS", 5000), "documents of the naive path's subset (BENCH_NAIVE_DOCS)")
	fs.IntVar(&c.ferretDocs, "ferret-docs", atoi("BENCH_FERRET_DOCS", 50000), "documents loaded into FerretDB, at most 50000 (BENCH_FERRET_DOCS)")
	fs.IntVar(&c.ferretMB, "ferret-mb", atoi("BENCH_FERRET_MB", 32), "and at most this many MB of source BSON: FerretDB reads a few MB/s (BENCH_FERRET_MB)")
	fs.IntVar(&c.stageMemMB, "stage-mem-mb", atoi("BENCH_STAGE_MEM_MB", 512), "source MB held in memory for the transform stage (BENCH_STAGE_MEM_MB)")
	fs.Float64Var(&c.maxSourceGB, "max-source-gb", 20, "cap on a shape's source BSON, in GB (bench.md: 20)")
	fs.StringVar(&c.workDir, "workdir", envOr("BENCH_WORKDIR", os.TempDir()), "where data, dumps and the cluster live while running (BENCH_WORKDIR)")
	fs.StringVar(&c.outDir, "out", envOr("BENCH_OUT", "bench/results"), "where the JSON goes (BENCH_OUT)")
	fs.StringVar(&timeoutS, "timeout", envOr("BENCH_TIMEOUT", "30m"), "bound on the whole benchmark (BENCH_TIMEOUT)")
	fs.BoolVar(&c.cpuProfile, "cpuprofile", envOr("BENCH_CPUPROFILE", "") != "", "also run the pipeline in this process under the CPU profiler, per shape (BENCH_CPUPROFILE=1)")
	fs.BoolVar(&c.durable, "durable", envOr("BENCH_PG_DURABLE", "") != "", "run PostgreSQL with fsync, synchronous_commit and full_page_writes on instead of the test bed's off (BENCH_PG_DURABLE=1)")
	fs.StringVar(&convertArgsS, "convert-args", envOr("BENCH_CONVERT_ARGS", ""), "extra bin/convert run flags for (b) and (d), space-separated, e.g. \"--batch-size 5000\" (BENCH_CONVERT_ARGS)")
	fs.StringVar(&c.keepDump, "keep-dump", os.Getenv("BENCH_KEEP_DUMP"), "write each shape's mongodump directory under this directory and keep it, to rerun a figure by hand (BENCH_KEEP_DUMP)")
	fs.BoolVar(&c.keepLogs, "keep-logs", envOr("BENCH_KEEP_LOGS", "") != "", "copy the logs of every bin/convert run into -out (BENCH_KEEP_LOGS=1); GODEBUG and other variables reach bin/convert")
	fs.StringVar(&skipS, "skip", envOr("BENCH_SKIP", ""), "comma list of measurements to leave out: a, b, c, d, stages (BENCH_SKIP)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if strings.TrimSpace(docs) == "" {
		c.sizes = []int{0} // each shape's DefaultDocs
	}
	for _, s := range strings.Split(docs, ",") {
		if strings.TrimSpace(docs) == "" {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-docs %q: want positive document counts, comma-separated", docs)
		}
		c.sizes = append(c.sizes, n)
	}
	if shapesS != "" {
		c.shapes = map[string]bool{}
		for _, s := range strings.Split(shapesS, ",") {
			known := false
			for _, sh := range shapes {
				known = known || sh.Name == s
			}
			if !known {
				return nil, fmt.Errorf("-shapes: unknown shape %q", s)
			}
			c.shapes[s] = true
		}
	}
	c.convertArgs = strings.Fields(convertArgsS)
	c.skip = map[string]bool{}
	for _, s := range strings.Split(skipS, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "a", "b", "c", "d", "stages":
			c.skip[s] = true
		default:
			return nil, fmt.Errorf("-skip: unknown measurement %q (a, b, c, d, stages)", s)
		}
	}
	var err error
	if c.timeout, err = time.ParseDuration(timeoutS); err != nil || c.timeout <= 0 {
		return nil, fmt.Errorf("-timeout %q: want a duration such as 30m", timeoutS)
	}
	if c.runs < 1 || c.workers < 1 || c.naiveDocs < 1 || c.ferretDocs < 1 || c.ferretMB < 1 || c.stageMemMB < 1 || c.maxSourceGB <= 0 {
		return nil, errors.New("-runs, -workers, -naive-docs, -ferret-docs, -ferret-mb, -stage-mem-mb and -max-source-gb must be positive")
	}
	c.ferretDocs = min(c.ferretDocs, 50000) // bench.md: at most 50k
	for _, b := range []*string{&c.convertBin, &c.ferretBin} {
		abs, err := filepath.Abs(*b)
		if err != nil {
			return nil, err
		}
		*b = abs
	}
	return &c, nil
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	stamp := time.Now().UTC().Format("20060102T150405Z")
	res := &results{FormatVersion: formatVersion, StartedAt: time.Now().UTC(), Status: "ok"}
	runErr := run(ctx, cfg, res, stamp)
	if runErr != nil && ctx.Err() == context.DeadlineExceeded {
		runErr = fmt.Errorf("stopped at -timeout %s: %w", cfg.timeout, runErr)
	}
	res.FinishedAt = time.Now().UTC()
	res.ElapsedS = res.FinishedAt.Sub(res.StartedAt).Seconds()
	if runErr != nil {
		res.Status, res.Error = "failed", runErr.Error()
	}
	path, werr := writeResults(cfg.outDir, stamp, res)
	if werr != nil {
		fmt.Fprintf(os.Stderr, "bench: write results: %v\n", werr)
	} else {
		fmt.Printf("\nresults: %s (also %s)\n", path, filepath.Join(cfg.outDir, "latest.json"))
	}
	fmt.Printf("total %.0f s\n", res.ElapsedS)
	if runErr != nil || werr != nil {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", errors.Join(runErr, werr))
		os.Exit(1)
	}
}

// env is what the shapes share within one benchmark.
type env struct {
	cfg  *config
	work string // per-run scratch directory
	pg   *pgServer
	dsn  string
	pool *pgxpool.Pool
	res  *results
	// stamp names this run's files in -out.
	stamp string
	// convertExe and ferretExe are the copies of the binaries that are run.
	convertExe, ferretExe string
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func run(ctx context.Context, cfg *config, res *results, stamp string) (err error) {
	for _, b := range []string{cfg.convertBin, cfg.ferretBin} {
		if fi, err := os.Stat(b); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is missing or not executable: build it first (make build ferretdb)", b)
		}
	}
	res.Machine = machineInfo()
	res.Config = map[string]any{
		"docs": cfg.sizes, "runs": cfg.runs, "workers_of_limit": cfg.workers, "convert_workers": "default (--workers = number of CPUs)",
		"naive_docs": cfg.naiveDocs, "ferretdb_docs": cfg.ferretDocs, "ferretdb_mb": cfg.ferretMB, "stage_mem_mb": cfg.stageMemMB,
		"max_source_gb": cfg.maxSourceGB, "batch_size": pipeline.DefaultBatchSize, "batch_bytes": pipeline.DefaultBatchBytes,
		"timeout": cfg.timeout.String(), "cpu_profile": cfg.cpuProfile, "durable": cfg.durable, "convert_args": cfg.convertArgs, "godebug": os.Getenv("GODEBUG"), "gogc": os.Getenv("GOGC"), "gomemlimit": os.Getenv("GOMEMLIMIT"), "skip": keys(cfg.skip), "convert_bin": cfg.convertBin,
		"ferretdb_bin": cfg.ferretBin, "git_commit": gitCommit(),
	}
	res.Units = map[string]string{
		"docs_per_s": "source documents per second of the median run",
		"mb_per_s":   "source BSON bytes / 10^6 per second of the median run",
		"median_s":   "median wall time of the runs, setup excluded (bin/convert: process start to exit)",
		"peak_rss":   "Maximum resident set size of the bin/convert process (wait4 rusage)",
	}
	res.Commands = map[string]string{
		"harness":   strings.Join(os.Args, " "),
		"limit":     "COPY <table> (<columns>) FROM STDIN (FORMAT binary), streamed from the precomputed file; several streams: one connection each, contiguous batch ranges",
		"naive":     "PREPARE: INSERT INTO <table> (<columns>) VALUES ($1..$n); one autocommitted EXECUTE per row, binary parameters, one connection",
		"reset":     "TRUNCATE <tables>; CHECKPOINT (before every timed run)",
		"convert_b": cfg.convertBin + " run --from <dump dir> --to <dsn> <shape selection> --replace --report <file>",
		"convert_d": cfg.convertBin + " run --from mongodb://127.0.0.1:<port>/ --to <dsn> <shape selection> --replace --report <file>",
	}

	if err := os.MkdirAll(cfg.workDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.workDir, "convert-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Other builds rewrite bin/convert at any time (make build, make test): measure one binary
	// throughout, a copy taken now, and record which.
	convertExe, convertSum, err := snapshot(cfg.convertBin, work)
	if err != nil {
		return err
	}
	ferretExe, ferretSum, err := snapshot(cfg.ferretBin, work)
	if err != nil {
		return err
	}
	res.Config["convert_sha256"], res.Config["ferretdb_sha256"] = convertSum, ferretSum
	logf("measuring %s (sha256 %.12s), copied to the scratch directory", cfg.convertBin, convertSum)

	logf("starting PostgreSQL 15")
	pg, err := startPG(ctx, cfg.workDir, cfg.durable)
	if err != nil {
		return err
	}
	defer func() {
		if serr := pg.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", serr))
		}
	}()
	if err := createDatabase(ctx, pg.URL("postgres"), "bench"); err != nil {
		return err
	}
	e := &env{cfg: cfg, work: work, pg: pg, dsn: pg.URL("bench"), res: res, stamp: stamp, convertExe: convertExe, ferretExe: ferretExe}
	if cfg.keepLogs {
		if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
			return err
		}
	}
	pcfg, err := pgxpool.ParseConfig(e.dsn)
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(cfg.workers + 4)
	pcfg.ConnConfig.RuntimeParams["application_name"] = "convert-bench"
	if e.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return err
	}
	defer e.pool.Close()
	if err := manifests.Migrate(ctx, e.pool); err != nil {
		return err
	}
	if res.Server, err = pg.settings(ctx, e.pool); err != nil {
		return err
	}
	logf("PostgreSQL %s on port %d: fsync=%s synchronous_commit=%s shared_buffers=%s max_wal_size=%s",
		res.Server["server_version"], pg.port, res.Server["fsync"], res.Server["synchronous_commit"], res.Server["shared_buffers"], res.Server["max_wal_size"])

	fmt.Printf("bench: %d CPUs (%s), %s RAM, load average %s at start; PostgreSQL %s: fsync=%s synchronous_commit=%s full_page_writes=%s shared_buffers=%s max_wal_size=%s\n",
		runtime.NumCPU(), res.Machine["cpu"], human(toInt64(res.Machine["mem_total_bytes"])), res.Machine["loadavg_start"], res.Server["server_version"],
		res.Server["fsync"], res.Server["synchronous_commit"], res.Server["full_page_writes"], res.Server["shared_buffers"], res.Server["max_wal_size"])
	for _, size := range cfg.sizes {
		sr := &sizeResult{RequestedDocs: size}
		res.Sizes = append(res.Sizes, sr)
		for _, sh := range shapes {
			if cfg.shapes != nil && !cfg.shapes[sh.Name] {
				continue
			}
			n := size
			if n == 0 {
				n = sh.DefaultDocs
			}
			if n < 1_000_000 {
				why := smallDefaultWhy
				if size != 0 {
					why = "as requested"
				}
				note := fmt.Sprintf("%s: %d documents, not 1 M: %s", sh.Name, n, why)
				res.Notes = append(res.Notes, note)
				fmt.Println("bench: " + note)
			}
			r := &shapeResult{Shape: sh.Name, Kind: sh.Kind, Note: sh.Note, Collection: sh.ns().String(), RequestedDocs: n}
			sr.Shapes = append(sr.Shapes, r)
			err := e.runShape(ctx, sh, n, r)
			r.computeRatios()
			printShape(os.Stdout, r)
			if err != nil {
				return fmt.Errorf("shape %s, %d docs: %w", sh.Name, n, err)
			}
		}
	}
	res.Machine["loadavg_end"] = loadavg()
	res.Scale = scaleSummary(res.Sizes)
	printScale(os.Stdout, res.Scale)
	return nil
}

func keys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

func createDatabase(ctx context.Context, url, name string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0")
	return err
}

// repeat runs fn cfg.runs times and returns the durations it reports.
func (e *env) repeat(what string, fn func(i int) (time.Duration, error)) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < e.cfg.runs; i++ {
		d, err := fn(i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		logf("  %s run %d: %.2f s", what, i+1, d.Seconds())
		out = append(out, d)
	}
	return out, nil
}

// sizeFor decides how many documents of a shape this machine can hold: bench.md caps a run at
// 20 GB of source data, and the dump, the COPY files and the loaded table must fit on the
// free disk. It samples the shape to estimate per-document sizes.
func (e *env) sizeFor(ctx context.Context, sh shape, n int, files bool, dir string) (int, string, error) {
	const sample = 500
	var src, cp int64
	tr := sh.Job(benchAsOf).Transform
	if _, ok := tr.(pipeline.Preparer); ok {
		// The key pass over the sample, as over the whole dump later: references are checked
		// against the loaded parents.
		root := filepath.Join(dir, "sample")
		if _, _, err := writeDump(ctx, sh, sample, root); err != nil {
			return 0, "", err
		}
		err := keyPass(ctx, root, sh, tr, load.NewTarget(e.pool))
		if err := errors.Join(err, os.RemoveAll(root)); err != nil {
			return 0, "", err
		}
	}
	var rb pipeline.RowBuffer
	rb.Reset()
	var tuple []byte
	err := genDocs(sh, sample, func(d bson.Raw) error {
		src += int64(len(d))
		rb.Reset()
		if v := tr.Apply(d, &rb); v.Reject != nil || v.Skip != "" {
			return fmt.Errorf("generated document not loaded: %v %s", v.Reject, v.Skip)
		}
		for _, r := range rb.Rows {
			var err error
			if tuple, err = appendCopyRow(tuple[:0], tr.Tables()[r.Table].Written(), rb.RowBytes(r)); err != nil {
				return err
			}
			cp += int64(len(tuple))
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	avgSrc, avgCopy := float64(src)/sample, float64(cp)/sample
	// The loaded table is estimated at the COPY size (jsonb is TOASTed with pglz, indexes and
	// tuple headers add back); WAL and FerretDB get a fixed reserve.
	perDoc := avgSrc + 2*avgCopy
	if !files {
		perDoc = avgSrc + avgCopy
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(e.work, &st); err != nil {
		return 0, "", err
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	reserve := 4.0*(1<<30) + float64(min(n, e.cfg.ferretDocs))*avgSrc*3
	byDisk := int((free - reserve) / perDoc)
	bySource := int(e.cfg.maxSourceGB * 1e9 / avgSrc)
	switch {
	case n <= byDisk && n <= bySource:
		return n, "", nil
	case bySource <= byDisk:
		return bySource, fmt.Sprintf("reduced from %d to %d documents: %d documents of %.0f B would exceed the %.0f GB cap on source data (bench.md)",
			n, bySource, n, avgSrc, e.cfg.maxSourceGB), nil
	case byDisk < 1000:
		return 0, "", fmt.Errorf("only %s free under %s: not enough for 1000 documents of shape %s", human(int64(free)), e.work, sh.Name)
	default:
		return byDisk, fmt.Sprintf("reduced from %d to %d documents: %s free under %s holds the dump, the COPY files and the table for about that many (%.0f B/doc estimated)",
			n, byDisk, human(int64(free)), e.work, perDoc), nil
	}
}

func (e *env) runShape(ctx context.Context, sh shape, requested int, r *shapeResult) error {
	cfg := e.cfg
	dir, err := os.MkdirTemp(e.work, sh.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "dump")
	if cfg.keepDump != "" {
		root = filepath.Join(cfg.keepDump, fmt.Sprintf("%s-%d", sh.Name, requested))
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		logf("%s: the dump is kept in %s", sh.Name, root)
	}
	// The target first: a module shape's key pass reads the parents loaded there.
	asOf := benchAsOf
	tables := sh.Job(asOf).Transform.Tables()
	if err := sh.prepareTables(ctx, e.pool, root, tables); err != nil {
		return err
	}
	defer sh.dropTables(e.pool, tables)
	n, note, err := e.sizeFor(ctx, sh, requested, !cfg.skip["a"] || !cfg.skip["c"] || !cfg.skip["stages"], dir)
	if err != nil {
		return err
	}
	r.CountNote = note
	if note != "" {
		logf("%s: %s", sh.Name, note)
	}

	logf("%s: writing %d documents as a mongodump directory", sh.Name, n)
	t0 := time.Now()
	_, size, err := writeDump(ctx, sh, n, root)
	if err != nil {
		return err
	}
	r.GenerateS = time.Since(t0).Seconds()
	r.Docs, r.SourceBytes, r.AvgDocBytes = n, size, float64(size)/float64(n)

	logf("%s: %s written in %.1f s; precomputing the final rows", sh.Name, human(size), r.GenerateS)
	t0 = time.Now()
	ferretN, err := prefixCount(ctx, root, sh, min(n, cfg.ferretDocs), int64(cfg.ferretMB)*1e6)
	if err != nil {
		return err
	}
	// The COPY files feed (a), (c) and the load stage; without them only the checksum is kept.
	files := !cfg.skip["a"] || !cfg.skip["c"] || !cfg.skip["stages"]
	p, err := precompute(ctx, sh, root, dir, asOf, ferretN, load.NewTarget(e.pool), files)
	if err != nil {
		return err
	}
	defer p.remove()
	r.PrecomputeS = time.Since(t0).Seconds()
	r.CopyBytes, r.Checksum = p.copyBytes(), p.Checksum
	r.RowsByTable = map[string]int64{}
	for i, t := range p.Tables {
		r.RowsByTable[t.FullName()] = p.Rows[i]
	}
	logf("%s: %s of COPY rows in %.1f s (files written: %v)", sh.Name, human(r.CopyBytes), r.PrecomputeS, files)
	selection := strings.Join(append(append(slices.Clone(sh.Select), "--as-of", asOf.Format(time.RFC3339Nano)), cfg.convertArgs...), " ")
	r.Commands = []string{
		fmt.Sprintf("(a) %s", copySQL(p.Tables[0])),
		fmt.Sprintf("(b) %s run --from %s --to %s %s --replace --report <file>", cfg.convertBin, root, e.dsn, selection),
		fmt.Sprintf("(c) %s", insertSQL(p.Tables[0])),
		fmt.Sprintf("(d) %s run --from mongodb://127.0.0.1:<port>/ --to %s %s --replace --report <file>", cfg.convertBin, e.dsn, selection),
	}

	// (a) and (b), their runs interleaved so that drift on a shared machine hits both alike.
	streams := []int{1}
	if cfg.workers > 1 {
		streams = append(streams, cfg.workers)
	}
	aRuns := make([][]time.Duration, len(streams))
	var bRuns, bFreshRuns, aFreshRuns, analyzeRuns []time.Duration
	var bRSS []int64
	for i := 0; i < cfg.runs; i++ {
		if !cfg.skip["a"] {
			for si, st := range streams {
				d, err := copyLimit(ctx, e.pool, p, st)
				if err != nil {
					return fmt.Errorf("(a) limit, %d streams: %w", st, err)
				}
				logf("  (a) limit, %d stream(s), run %d: %.2f s", st, i+1, d.Seconds())
				aRuns[si] = append(aRuns[si], d)
			}
			if i == 0 {
				if err := checkTables(ctx, e.pool, p.Tables, p.Checksum); err != nil {
					return fmt.Errorf("(a) limit: %w", err)
				}
			}
			d, err := analyzeTables(ctx, e.pool, p.Tables)
			if err != nil {
				return fmt.Errorf("ANALYZE after (a): %w", err)
			}
			logf("  ANALYZE after (a), run %d: %.2f s", i+1, d.Seconds())
			analyzeRuns = append(analyzeRuns, d)
			if sh.Fresh {
				d, err := copyLimitFresh(ctx, e.pool, p, streams[len(streams)-1])
				if err != nil {
					return fmt.Errorf("(a-fresh) limit: %w", err)
				}
				logf("  (a-fresh) limit, %d stream(s), run %d: %.2f s", streams[len(streams)-1], i+1, d.Seconds())
				aFreshRuns = append(aFreshRuns, d)
			}
		}
		if !cfg.skip["b"] {
			cr, err := e.convertB(ctx, sh, p, root, dir, n, "b", i)
			if err != nil {
				return err
			}
			bRuns = append(bRuns, cr.Elapsed)
			bRSS = append(bRSS, cr.MaxRSS)
			if sh.Fresh {
				cr, err := e.convertB(ctx, sh, p, root, dir, n, "b-fresh", i, freshFlags...)
				if err != nil {
					return err
				}
				bFreshRuns = append(bFreshRuns, cr.Elapsed)
			}
		}
	}
	for si, st := range streams {
		if cfg.skip["a"] {
			break
		}
		m := &measurement{ID: "a1", What: "(a) limit: binary COPY, 1 stream", Streams: st}
		if st > 1 {
			m.ID, m.What = "aW", fmt.Sprintf("(a) limit: binary COPY, %d streams", st)
		}
		r.add(m, n, size, aRuns[si])
	}
	if len(analyzeRuns) > 0 {
		m := &measurement{ID: "analyze", What: "ANALYZE of the tables (a) loaded", Extra: "cli.md: (b) analyzes every loaded table, (a) does not"}
		r.add(m, n, size, analyzeRuns)
	}
	if len(aFreshRuns) > 0 {
		m := &measurement{ID: "a-fresh", What: fmt.Sprintf("(a-fresh) limit, fresh target: %d streams", streams[len(streams)-1]),
			Extra: "secondary indexes and foreign keys dropped, COPY, then restored (timed)"}
		r.add(m, n, size, aFreshRuns)
	}
	if !cfg.skip["b"] {
		// What the last run left: the loaded tables' size on disk, TOAST and indexes included.
		for _, t := range p.Tables {
			var tb int64
			if err := e.pool.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", t.Ident()).Scan(&tb); err != nil {
				return err
			}
			r.TableBytes += tb
		}
		m := &measurement{ID: "b", What: "(b) convert run from the dump", PeakRSSBytes: bRSS}
		r.add(m, n, size, bRuns)
	}
	if len(bFreshRuns) > 0 {
		m := &measurement{ID: "b-fresh", What: "(b-fresh) convert run " + strings.Join(freshFlags, " "),
			Extra: "secondary indexes and foreign keys deferred, restored when the collection completes"}
		r.add(m, n, size, bFreshRuns)
	}

	if !cfg.skip["c"] {
		k := min(n, cfg.naiveDocs)
		rows, err := naiveRows(p, k)
		if err != nil {
			return err
		}
		kBytes, err := prefixBytes(ctx, root, sh, k)
		if err != nil {
			return err
		}
		runs, err := e.repeat("(c) naive", func(int) (time.Duration, error) { return naive(ctx, e.pool, p, rows) })
		if err != nil {
			return err
		}
		m := &measurement{ID: "c", What: fmt.Sprintf("(c) naive: INSERT per row, %d docs", k)}
		r.add(m, k, kBytes, runs)
		m.ExtrapolatedS = m.MedianS * float64(n) / float64(k)
		m.Extra = fmt.Sprintf("%d docs extrapolated: %.0f s", n, m.ExtrapolatedS)
	}

	if !cfg.skip["stages"] {
		var docs int
		var bytes int64
		runs, err := e.repeat("stage extract", func(int) (time.Duration, error) {
			d, nd, nb, err := extractStage(ctx, root, sh)
			docs, bytes = nd, nb
			return d, err
		})
		if err != nil {
			return err
		}
		if docs != n {
			return fmt.Errorf("stage extract read %d of %d documents", docs, n)
		}
		m := &measurement{ID: "extract", What: "stage extract: dump.Open + Scan", Extra: "dump file in page cache"}
		r.add(m, docs, bytes, runs)

		if _, ok := sh.Job(asOf).Transform.(pipeline.Preparer); ok {
			runs, err = e.repeat("stage key pass", func(int) (time.Duration, error) { return keyPassStage(ctx, root, sh, asOf, load.NewTarget(e.pool)) })
			if err != nil {
				return err
			}
			m = &measurement{ID: "keypass", What: "stage key pass: Prepare over the dump"}
			r.add(m, n, size, runs)
		}

		mem, err := loadMemDocs(ctx, root, sh, int64(cfg.stageMemMB)*1e6)
		if err != nil {
			return err
		}
		runs, err = e.repeat("stage transform", func(int) (time.Duration, error) {
			return transformStage(ctx, mem, sh, asOf, root, load.NewTarget(e.pool))
		})
		if err != nil {
			return err
		}
		m = &measurement{ID: "transform", What: fmt.Sprintf("stage transform: Apply, 1 goroutine, %d docs in memory", len(mem.ends))}
		r.add(m, len(mem.ends), int64(len(mem.data)), runs)
		mem = nil

		runs, err = e.repeat("stage load", func(int) (time.Duration, error) { return sinkStage(ctx, e.pool, p, sh, asOf, runtime.NumCPU()) })
		if err != nil {
			return err
		}
		m = &measurement{ID: "load", What: fmt.Sprintf("stage load: load.Sink.Commit of precomputed batches, %d ranges", runtime.NumCPU())}
		r.add(m, n, size, runs)
	}

	if cfg.cpuProfile {
		if err := resetTables(ctx, e.pool, p.Tables); err != nil {
			return err
		}
		path, err := filepath.Abs(filepath.Join(cfg.outDir, fmt.Sprintf("%s-%s-%d.cpu.pprof", e.stamp, sh.Name, n)))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
			return err
		}
		logf("%s: profiled in-process run", sh.Name)
		d, err := profiledRun(ctx, e.dsn, root, sh, runtime.NumCPU(), path)
		if err != nil {
			return fmt.Errorf("profiled run: %w", err)
		}
		r.Profile, r.ProfiledRunS = path, d.Seconds()
	}

	if !cfg.skip["d"] {
		if err := e.ferretRuns(ctx, sh, root, dir, p, ferretN, r); err != nil {
			return fmt.Errorf("(d) FerretDB: %w", err)
		}
	}
	return nil
}

// ferretRuns is (d): the first k documents in a fresh FerretDB, converted by bin/convert.
func (e *env) ferretRuns(ctx context.Context, sh shape, root, dir string, p *precomputed, k int, r *shapeResult) (err error) {
	logf("%s: starting FerretDB and loading %d documents", sh.Name, k)
	fs, err := startFerret(ctx, e.ferretExe, e.work)
	if err != nil {
		return err
	}
	defer func() {
		if serr := fs.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	var kBytes int64
	t0 := time.Now()
	loaded, err := fs.load(ctx, sh.DB, sh.Coll, func(emit func(bson.Raw) error) error {
		i := 0
		return scanDump(ctx, root, sh, func(doc bson.Raw, _ pipeline.Position) error {
			if i == k {
				return errStop
			}
			i++
			kBytes += int64(len(doc))
			return emit(doc)
		})
	})
	if err != nil {
		return err
	}
	if loaded != k {
		return fmt.Errorf("FerretDB took %d of %d documents", loaded, k)
	}
	logf("%s: %d documents in FerretDB after %.1f s", sh.Name, k, time.Since(t0).Seconds())
	var rss []int64
	var alone []time.Duration
	matches := true
	runs, err := e.repeat("(d) convert run from FerretDB", func(i int) (time.Duration, error) {
		t0 := time.Now()
		got, _, err := fs.findAll(ctx, sh.DB, sh.Coll)
		if err != nil {
			return 0, err
		}
		if got != k {
			return 0, fmt.Errorf("find returned %d of %d documents", got, k)
		}
		alone = append(alone, time.Since(t0))
		logf("  (d0) FerretDB alone, find sorted by _id, run %d: %.2f s", i+1, time.Since(t0).Seconds())
		if err := resetTables(ctx, e.pool, p.Tables); err != nil {
			return 0, err
		}
		report := filepath.Join(dir, fmt.Sprintf("report-d-%d.json", i))
		args := append([]string{"run", "--from", fs.URI(), "--to", e.dsn}, sh.Select...)
		args = append(args, "--as-of", benchAsOf.Format(time.RFC3339Nano), "--replace", "--report", report)
		args = append(args, e.cfg.convertArgs...)
		cr, err := runConvert(ctx, e.convertExe, args, e.logPath(dir, sh, k, "d", i))
		if err != nil {
			return 0, err
		}
		_, c, err := readReport(report, sh.Job(benchAsOf).Name, k)
		if err != nil {
			return 0, err
		}
		matches = matches && c.Checksum == p.PrefixChecksum
		rss = append(rss, cr.MaxRSS)
		return cr.Elapsed, nil
	})
	if err != nil {
		return err
	}
	m0 := &measurement{ID: "d0", What: fmt.Sprintf("(d0) FerretDB alone: find sorted by _id, %d docs", k),
		Label: "no convert: what FerretDB serves at best",
		Extra: fmt.Sprintf("first %d docs: at most %d docs and %d MB", k, e.cfg.ferretDocs, e.cfg.ferretMB)}
	r.add(m0, k, kBytes, alone)
	m := &measurement{ID: "d", What: fmt.Sprintf("(d) convert run from FerretDB, %d docs", k), PeakRSSBytes: rss,
		Label: "FerretDB's ceiling: it sorts in memory and pushes down little"}
	if !matches {
		m.Extra = "checksum differs from the dump's rows (FerretDB changed values)"
	}
	r.add(m, k, kBytes, runs)
	return nil
}

// convertB is one timed (b) run: the tables emptied, bin/convert run from the dump with the
// shape's selection and extra flags, and its report checked against the precomputed rows.
func (e *env) convertB(ctx context.Context, sh shape, p *precomputed, root, dir string, n int, what string, i int, extra ...string) (*convertRun, error) {
	if err := resetTables(ctx, e.pool, p.Tables); err != nil {
		return nil, err
	}
	report := filepath.Join(dir, fmt.Sprintf("report-%s-%d.json", what, i))
	args := append([]string{"run", "--from", root, "--to", e.dsn}, sh.Select...)
	args = append(args, "--as-of", benchAsOf.Format(time.RFC3339Nano), "--replace", "--report", report)
	args = append(append(args, extra...), e.cfg.convertArgs...)
	cr, err := runConvert(ctx, e.convertExe, args, e.logPath(dir, sh, n, what, i))
	if err != nil {
		return nil, fmt.Errorf("(%s) convert run: %w", what, err)
	}
	_, c, err := readReport(report, sh.Job(benchAsOf).Name, n)
	if err != nil {
		return nil, fmt.Errorf("(%s) convert run: %w", what, err)
	}
	if c.Checksum != p.Checksum {
		return nil, fmt.Errorf("(%s) convert run: collection checksum %s differs from the precomputed rows' %s", what, c.Checksum, p.Checksum)
	}
	logf("  (%s) convert run, run %d: %.2f s, peak RSS %s", what, i+1, cr.Elapsed.Seconds(), mib(cr.MaxRSS))
	return cr, nil
}

// logPath is where a bin/convert run logs: the shape's scratch directory, or -out with
// -keep-logs.
func (e *env) logPath(dir string, sh shape, n int, what string, run int) string {
	name := fmt.Sprintf("convert-%s-%d.log", what, run)
	if !e.cfg.keepLogs {
		return filepath.Join(dir, name)
	}
	return filepath.Join(e.cfg.outDir, fmt.Sprintf("%s-%s-%d-%s", e.stamp, sh.Name, n, name))
}

// checkTables compares what the tables hold with the precomputed rows' collection checksum.
func checkTables(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table, want string) error {
	sums := manifests.TableSums{}
	for _, t := range tables {
		s, err := load.ReadTableSum(ctx, pool, t)
		if err != nil {
			return err
		}
		sums[t.FullName()] = s
	}
	if got := manifests.CollectionChecksum(sums).String(); got != want {
		return fmt.Errorf("tables hold checksum %s, the precomputed rows %s", got, want)
	}
	return nil
}

func dropTables(pool *pgxpool.Pool, tables []pipeline.Table) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := len(tables) - 1; i >= 0; i-- {
		if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+tables[i].Ident()+" CASCADE"); err != nil {
			logf("drop %s: %v", tables[i].FullName(), err)
		}
	}
}

// prefixCount is how many of the first documents, at most k, fit in limit bytes.
func prefixCount(ctx context.Context, root string, sh shape, k int, limit int64) (int, error) {
	n, size := 0, int64(0)
	err := scanDump(ctx, root, sh, func(doc bson.Raw, _ pipeline.Position) error {
		if n == k || size+int64(len(doc)) > limit {
			return errStop
		}
		n++
		size += int64(len(doc))
		return nil
	})
	return max(n, 1), err
}

// prefixBytes is the source size of the first k documents.
func prefixBytes(ctx context.Context, root string, sh shape, k int) (int64, error) {
	var n int64
	i := 0
	err := scanDump(ctx, root, sh, func(doc bson.Raw, _ pipeline.Position) error {
		if i == k {
			return errStop
		}
		i++
		n += int64(len(doc))
		return nil
	})
	return n, err
}

// scaleSummary compares each shape's (b) across sizes.
func scaleSummary(sizes []*sizeResult) []*scaleResult {
	if len(sizes) < 2 {
		return nil
	}
	by := map[string]*scaleResult{}
	var order []string
	for _, sz := range sizes {
		for _, s := range sz.Shapes {
			b := s.get("b")
			if b == nil {
				continue
			}
			sc := by[s.Shape]
			if sc == nil {
				sc = &scaleResult{Shape: s.Shape}
				by[s.Shape] = sc
				order = append(order, s.Shape)
			}
			sc.Docs = append(sc.Docs, s.Docs)
			sc.SourceBytes = append(sc.SourceBytes, s.SourceBytes)
			sc.PeakRSSBytes = append(sc.PeakRSSBytes, s.PeakRSSBytes)
			sc.SecPerMDoc = append(sc.SecPerMDoc, b.MedianS/float64(s.Docs)*1e6)
		}
	}
	var out []*scaleResult
	for _, name := range order {
		sc := by[name]
		if len(sc.Docs) < 2 {
			continue
		}
		small, large := 0, 0
		for i := range sc.Docs {
			if sc.Docs[i] < sc.Docs[small] {
				small = i
			}
			if sc.Docs[i] > sc.Docs[large] {
				large = i
			}
		}
		sc.RSSSpread = float64(sc.PeakRSSBytes[large]) / float64(sc.PeakRSSBytes[small])
		sc.RSSFlat = sc.RSSSpread >= 0.8 && sc.RSSSpread <= 1.2
		sc.TimeLinear = sc.SecPerMDoc[large] / sc.SecPerMDoc[small]
		out = append(out, sc)
	}
	return out
}

// smallDefaultWhy explains the default size of `make bench`.
const smallDefaultWhy = "on 2 shared cores all measurements of 1 M JSONB-kept documents (~11 GB of BSON) take 50-60 minutes, " +
	"so `make bench` converts 200 000 of them (and 1 M normalized ones) to finish within about 20 minutes; `make bench-scale` runs 1 M and 5 M of both"

func toInt64(v any) int64 {
	n, _ := v.(int64)
	return n
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute figures: the machine is shared, so they say
// how much else ran.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func machineInfo() map[string]any {
	m := map[string]any{"nproc": runtime.NumCPU(), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(),
		"loadavg_start": loadavg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m["mem_total_bytes"] = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		b := make([]byte, 0, len(u.Release))
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		m["kernel"] = string(b)
	}
	return m
}

// snapshot copies an executable into dir and returns the copy's path and SHA-256.
func snapshot(path, dir string) (string, string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(path))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("copy %s: %w", path, err)
	}
	return dst, hex.EncodeToString(h.Sum(nil)), nil
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}
