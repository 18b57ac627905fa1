package manifests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Run statuses.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusStopped   = "stopped"
	// StatusSuperseded: a later run wrote the run's tables; it is never continued.
	StatusSuperseded = "superseded"
)

// Run is one invocation's record in convert.runs.
type Run struct {
	ID                string
	Kind              string // run, job, delta
	Modules           []string
	Collections       []string
	Selection         string // canonical key of what was selected: resume finds runs by it
	StartedAt         time.Time
	FinishedAt        *time.Time
	AsOf              time.Time
	SourceKind        string
	SourceFingerprint string
	Options           json.RawMessage // the result-affecting options, compared on resume
	ToolVersion       string
	TransformVersion  string
	Status            string
	Error             string
	// Tables are the tables the run writes (schema.name); empty for runs recorded before
	// they were.
	Tables []string
	// SupersededBy is the later run that wrote the run's tables (status superseded).
	SupersededBy string
}

// Store reads and writes schema convert. Safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore wraps a pool; call Migrate first.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

const runColumns = `id, kind, modules, collections, selection, started_at, finished_at, as_of, source_kind,
source_fingerprint, options, tool_version, transform_version, status, coalesce(error, ''), coalesce(tables, '{}'),
coalesce(superseded_by, '')`

func scanRun(row pgx.Row) (*Run, error) {
	var r Run
	err := row.Scan(&r.ID, &r.Kind, &r.Modules, &r.Collections, &r.Selection, &r.StartedAt, &r.FinishedAt,
		&r.AsOf, &r.SourceKind, &r.SourceFingerprint, &r.Options, &r.ToolVersion, &r.TransformVersion,
		&r.Status, &r.Error, &r.Tables, &r.SupersededBy)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateRun inserts a run in tx (the transaction that also prepares the target, so a failed
// start leaves nothing behind).
func CreateRun(ctx context.Context, tx pgx.Tx, r *Run) error {
	_, err := tx.Exec(ctx, `INSERT INTO convert.runs (id, kind, modules, collections, selection, started_at, as_of,
source_kind, source_fingerprint, options, tool_version, transform_version, status, tables)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.Kind, r.Modules, r.Collections, r.Selection, r.StartedAt, r.AsOf, r.SourceKind,
		r.SourceFingerprint, r.Options, r.ToolVersion, r.TransformVersion, r.Status, r.Tables)
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	return nil
}

// SupersedeRuns marks every unfinished earlier run that writes any of r's tables superseded by
// r, in tx (the transaction that starts r, so a run that never started supersedes nothing). A
// run recorded without its tables is matched by its selection. It returns the runs it marked.
// Completed runs keep their status: their record stays what verify and --since-run read.
func SupersedeRuns(ctx context.Context, tx pgx.Tx, r *Run) ([]string, error) {
	rows, err := tx.Query(ctx, `UPDATE convert.runs SET status = 'superseded', superseded_by = $1,
finished_at = coalesce(finished_at, now())
WHERE id <> $1 AND status IN ('running', 'failed', 'stopped')
  AND (tables && $2::text[] OR (tables IS NULL AND selection = $3))
RETURNING id`, r.ID, r.Tables, r.Selection)
	if err != nil {
		return nil, fmt.Errorf("run %s: mark the runs it supersedes: %w", r.ID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("run %s: mark the runs it supersedes: %w", r.ID, err)
	}
	return ids, nil
}

// GetRun reads one run; ErrNoRun when unknown.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM convert.runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, ErrNoRun)
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

// LatestUnfinished finds the newest run for selection that is neither completed nor
// superseded, or nil.
func (s *Store) LatestUnfinished(ctx context.Context, selection, kind string) (*Run, error) {
	return s.newestRun(ctx, "find unfinished run", `AND status NOT IN ('completed', 'superseded') ORDER BY`, selection, kind)
}

// RunToResume is the run --resume continues for selection: the newest unfinished one that no
// later run superseded, or else the newest run if it is completed (resumed after a kill that
// came once it had recorded its completion: nothing is left to do); nil when there is none.
// A completed run older than a superseded one is not the answer: the target holds what came
// after it.
func (s *Store) RunToResume(ctx context.Context, selection, kind string) (*Run, error) {
	r, err := s.LatestUnfinished(ctx, selection, kind)
	if r != nil || err != nil {
		return r, err
	}
	r, err = s.newestRun(ctx, "find the run to resume", `ORDER BY`, selection, kind)
	if r == nil || err != nil || r.Status != StatusCompleted {
		return nil, err
	}
	return r, nil
}

// newestRun is the first run of selection and kind that cond (the rest of the WHERE clause
// and the start of ORDER BY) puts first, the newest among equals, or nil.
func (s *Store) newestRun(ctx context.Context, what, cond, selection, kind string) (*Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM convert.runs
WHERE selection = $1 AND kind = $2 `+cond+` started_at DESC, id DESC LIMIT 1`, selection, kind))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

// Superseded lists the runs that run id superseded.
func (s *Store) Superseded(ctx context.Context, id string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM convert.runs WHERE superseded_by = $1 ORDER BY started_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("run %s: superseded runs: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("run %s: superseded runs: %w", id, err)
	}
	return ids, nil
}

// Committed sums the documents read and rejected in a collection's committed batches, by every
// worker of every process.
func (s *Store) Committed(ctx context.Context, runID, name string) (read, rejected int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT coalesce(sum(read), 0), coalesce(sum(rejected), 0) FROM convert.batches
WHERE run_id = $1 AND collection = $2`, runID, name).Scan(&read, &rejected)
	if err != nil {
		return 0, 0, fmt.Errorf("collection %s: committed counts: %w", name, err)
	}
	return read, rejected, nil
}

// Runs lists runs, newest first.
func (s *Store) Runs(ctx context.Context, limit int) ([]*Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM convert.runs ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetRunStatus records a run's status; a final status sets finished_at. A superseded run keeps
// that status: a process still working on it when a later run started does not undo it.
func (s *Store) SetRunStatus(ctx context.Context, id, status, errText string) error {
	_, err := s.pool.Exec(ctx, `UPDATE convert.runs SET status = $2, error = nullif($3, ''),
finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE now() END WHERE id = $1 AND status <> 'superseded'`, id, status, errText)
	if err != nil {
		return fmt.Errorf("run %s: set status %s: %w", id, status, err)
	}
	return nil
}

// Collection is one collection's state within a run.
type Collection struct {
	RunID        string
	Name         string // the collection's name within its module, or DB.COLL in generic mode
	Module       string
	SourceNS     string
	Tier         string
	Filter       json.RawMessage
	Read         int64
	Selected     int64
	Loaded       int64
	Rejected     int64
	Skipped      map[string]int64
	Rows         map[string]int64
	StringsFixed int64
	Collapsed    int64
	TableSums    TableSums
	Checksum     *Digest
	Status       string
	StartedAt    *time.Time
	FinishedAt   *time.Time
	ElapsedS     float64
}

// EnsureCollection inserts the collection row if missing (a resume keeps the existing one).
func (s *Store) EnsureCollection(ctx context.Context, c *Collection) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO convert.collections (run_id, collection, module, source_ns, tier, filter, status)
VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT (run_id, collection) DO NOTHING`,
		c.RunID, c.Name, c.Module, c.SourceNS, c.Tier, c.Filter)
	if err != nil {
		return fmt.Errorf("collection %s: record: %w", c.Name, err)
	}
	return nil
}

// CollectionStatus reads a collection's status ("" when unknown).
func (s *Store) CollectionStatus(ctx context.Context, runID, name string) (string, error) {
	var st string
	err := s.pool.QueryRow(ctx, `SELECT status FROM convert.collections WHERE run_id = $1 AND collection = $2`, runID, name).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("collection %s: %w", name, err)
	}
	return st, nil
}

// StartCollection marks a collection running.
func (s *Store) StartCollection(ctx context.Context, runID, name string) error {
	_, err := s.pool.Exec(ctx, `UPDATE convert.collections SET status = 'running', started_at = coalesce(started_at, now())
WHERE run_id = $1 AND collection = $2`, runID, name)
	if err != nil {
		return fmt.Errorf("collection %s: %w", name, err)
	}
	return nil
}

// FailCollection marks a running collection failed: the run stopped on an error in it (its
// committed batches stay; a resume starts it again).
func (s *Store) FailCollection(ctx context.Context, runID, name string) error {
	_, err := s.pool.Exec(ctx, `UPDATE convert.collections SET status = 'failed'
WHERE run_id = $1 AND collection = $2 AND status = 'running'`, runID, name)
	if err != nil {
		return fmt.Errorf("collection %s: record failure: %w", name, err)
	}
	return nil
}

// Totals sums a collection's committed batches.
func (s *Store) Totals(ctx context.Context, runID, name string) (*Collection, error) {
	c := &Collection{RunID: runID, Name: name, Skipped: map[string]int64{}, Rows: map[string]int64{}, TableSums: TableSums{}}
	rows, err := s.pool.Query(ctx, `SELECT read, loaded, rejected, skipped, rows, strings_fixed, collapsed, table_sums
FROM convert.batches WHERE run_id = $1 AND collection = $2`, runID, name)
	if err != nil {
		return nil, fmt.Errorf("collection %s: totals: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var read, loaded, rejected, fixed, collapsed int64
		var skipped, rowCounts map[string]int64
		var sums []byte
		if err := rows.Scan(&read, &loaded, &rejected, &skipped, &rowCounts, &fixed, &collapsed, &sums); err != nil {
			return nil, fmt.Errorf("collection %s: totals: %w", name, err)
		}
		c.Read += read
		c.Loaded += loaded
		c.Rejected += rejected
		c.StringsFixed += fixed
		c.Collapsed += collapsed
		for k, v := range skipped {
			c.Skipped[k] += v
		}
		for k, v := range rowCounts {
			c.Rows[k] += v
		}
		ts, err := DecodeTableSums(sums)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", name, err)
		}
		c.TableSums.Merge(ts)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("collection %s: totals: %w", name, err)
	}
	var skippedTotal int64
	for _, v := range c.Skipped {
		skippedTotal += v
	}
	c.Selected = c.Read - c.Skipped["outside tier window"] - c.Skipped["tier C"]
	_ = skippedTotal
	return c, nil
}

// CompleteCollection stores a collection's final totals and checksum. tables lists every table
// the collection writes, so a table with no rows still enters the checksum with count 0.
func (s *Store) CompleteCollection(ctx context.Context, c *Collection, tables []string, elapsed time.Duration) (*Collection, error) {
	tot, err := s.Totals(ctx, c.RunID, c.Name)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if _, ok := tot.TableSums[t]; !ok {
			tot.TableSums[t] = TableSum{}
		}
		if _, ok := tot.Rows[t]; !ok {
			tot.Rows[t] = 0
		}
	}
	sum := CollectionChecksum(tot.TableSums)
	tot.Checksum = &sum
	sums, err := EncodeTableSums(tot.TableSums)
	if err != nil {
		return nil, err
	}
	_, err = s.pool.Exec(ctx, `UPDATE convert.collections SET read = $3, selected = $4, loaded = $5, rejected = $6,
skipped = $7, rows = $8, strings_fixed = $9, collapsed = $10, table_sums = $11, checksum = $12,
status = 'completed', finished_at = now(), elapsed_s = coalesce(elapsed_s, 0) + $13
WHERE run_id = $1 AND collection = $2`,
		c.RunID, c.Name, tot.Read, tot.Selected, tot.Loaded, tot.Rejected, tot.Skipped, tot.Rows, tot.StringsFixed,
		tot.Collapsed, sums, sum[:], elapsed.Seconds())
	if err != nil {
		return nil, fmt.Errorf("collection %s: complete: %w", c.Name, err)
	}
	return s.GetCollection(ctx, c.RunID, c.Name)
}

// AddElapsed accumulates a collection's working time across resumes.
func (s *Store) AddElapsed(ctx context.Context, runID, name string, d time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE convert.collections SET elapsed_s = coalesce(elapsed_s, 0) + $3 WHERE run_id = $1 AND collection = $2`,
		runID, name, d.Seconds())
	return err
}

const collectionColumns = `run_id, collection, module, source_ns, tier, filter, read, selected, loaded, rejected, skipped,
rows, strings_fixed, collapsed, table_sums, checksum, status, started_at, finished_at, coalesce(elapsed_s, 0)`

func scanCollection(row pgx.Row) (*Collection, error) {
	var c Collection
	var sums, checksum []byte
	if err := row.Scan(&c.RunID, &c.Name, &c.Module, &c.SourceNS, &c.Tier, &c.Filter, &c.Read, &c.Selected, &c.Loaded,
		&c.Rejected, &c.Skipped, &c.Rows, &c.StringsFixed, &c.Collapsed, &sums, &checksum, &c.Status, &c.StartedAt,
		&c.FinishedAt, &c.ElapsedS); err != nil {
		return nil, err
	}
	if sums != nil {
		ts, err := DecodeTableSums(sums)
		if err != nil {
			return nil, err
		}
		c.TableSums = ts
	}
	if len(checksum) == 32 {
		var d Digest
		copy(d[:], checksum)
		c.Checksum = &d
	}
	return &c, nil
}

// GetCollection reads one collection row.
func (s *Store) GetCollection(ctx context.Context, runID, name string) (*Collection, error) {
	c, err := scanCollection(s.pool.QueryRow(ctx, `SELECT `+collectionColumns+` FROM convert.collections WHERE run_id = $1 AND collection = $2`, runID, name))
	if err != nil {
		return nil, fmt.Errorf("collection %s: %w", name, err)
	}
	return c, nil
}

// Collections lists a run's collections in the order they were recorded.
func (s *Store) Collections(ctx context.Context, runID string) ([]*Collection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+collectionColumns+` FROM convert.collections WHERE run_id = $1 ORDER BY started_at NULLS LAST, collection`, runID)
	if err != nil {
		return nil, fmt.Errorf("run %s: collections: %w", runID, err)
	}
	defer rows.Close()
	var out []*Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, fmt.Errorf("run %s: collections: %w", runID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// tableSumJSON is the stored form of a TableSum.
type tableSumJSON struct {
	Count int64  `json:"count"`
	Sum   string `json:"sum"`
}

// EncodeTableSums renders sums as jsonb {table: {count, sum (hex)}}.
func EncodeTableSums(t TableSums) ([]byte, error) {
	m := make(map[string]tableSumJSON, len(t))
	for k, v := range t {
		m[k] = tableSumJSON{Count: v.Count, Sum: v.Sum.String()}
	}
	return json.Marshal(m)
}

// DecodeTableSums parses EncodeTableSums' output.
func DecodeTableSums(b []byte) (TableSums, error) {
	var m map[string]tableSumJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("table sums: %w", err)
	}
	out := make(TableSums, len(m))
	for k, v := range m {
		d, err := ParseDigest(v.Sum)
		if err != nil {
			return nil, fmt.Errorf("table sums %s: %w", k, err)
		}
		out[k] = TableSum{Count: v.Count, Sum: d}
	}
	return out, nil
}

// ParseDigest reads a lowercase hex digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 64 {
		return d, fmt.Errorf("digest %q: want 64 hex digits", s)
	}
	for i := 0; i < 32; i++ {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return d, fmt.Errorf("digest %q: not hex", s)
		}
		d[i] = hi<<4 | lo
	}
	return d, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// CompleteDerived records a module's derived tables (read from the target once the module is
// complete) as a collection entry of their own: no documents, only rows and a checksum.
func (s *Store) CompleteDerived(ctx context.Context, runID, name, module string, sums TableSums) error {
	rows := map[string]int64{}
	for t, ts := range sums {
		rows[t] = ts.Count
	}
	enc, err := EncodeTableSums(sums)
	if err != nil {
		return err
	}
	sum := CollectionChecksum(sums)
	_, err = s.pool.Exec(ctx, `INSERT INTO convert.collections (run_id, collection, module, source_ns, tier, filter, rows, table_sums,
checksum, status, started_at, finished_at)
VALUES ($1, $2, $3, '(derived)', 'derived', '{}', $4, $5, $6, 'completed', now(), now())
ON CONFLICT (run_id, collection) DO UPDATE SET rows = EXCLUDED.rows, table_sums = EXCLUDED.table_sums,
checksum = EXCLUDED.checksum, status = 'completed', finished_at = now()`, runID, name, module, rows, enc, sum[:])
	if err != nil {
		return fmt.Errorf("%s: record derived tables: %w", name, err)
	}
	return nil
}
