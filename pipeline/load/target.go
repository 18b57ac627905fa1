package load

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// Target implements pipeline.Target on PostgreSQL.
type Target struct {
	pool *pgxpool.Pool
}

var _ pipeline.Target = (*Target)(nil)

// NewTarget works through pool.
func NewTarget(pool *pgxpool.Pool) *Target { return &Target{pool: pool} }

// SchemaMismatchError lists what differs between the spec's tables and the database.
type SchemaMismatchError struct{ Problems []string }

func (e *SchemaMismatchError) Error() string {
	return "target schema does not match the spec:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// CheckServer refuses a target whose server_encoding is not UTF8: text would be re-encoded.
func CheckServer(ctx context.Context, pool *pgxpool.Pool) error {
	var enc string
	if err := pool.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if enc != "UTF8" {
		return &pipeline.UsageError{Msg: fmt.Sprintf("target database encoding is %s; convert needs UTF8", enc)}
	}
	return nil
}

// Prepare implements pipeline.Target: creates generic tables that are missing, then checks
// that every table has the spec's columns with their types and nullability.
func (t *Target) Prepare(ctx context.Context, tables []pipeline.Table) error {
	for _, tb := range tables {
		if !tb.CreateIfMissing {
			continue
		}
		if _, err := t.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pipeline.QuoteIdent(tb.Schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", tb.Schema, err)
		}
		if _, err := t.pool.Exec(ctx, CreateTableSQL(tb)); err != nil {
			return fmt.Errorf("create table %s: %w", tb.FullName(), err)
		}
	}
	return t.Check(ctx, tables)
}

// Check validates existing tables against the spec (columns, types, nullability, generated
// columns, keys) and, when they match, that the loading role may write every tenant's rows. It
// creates nothing: plan uses it to warn before a run.
func (t *Target) Check(ctx context.Context, tables []pipeline.Table) error {
	var problems []string
	for _, tb := range tables {
		p, err := t.validate(ctx, tb)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
		if len(p) == 0 {
			k, err := t.validateKeys(ctx, tb)
			if err != nil {
				return err
			}
			problems = append(problems, k...)
		}
	}
	if len(problems) > 0 {
		return &SchemaMismatchError{Problems: problems}
	}
	return CheckRLS(ctx, t.pool, tables)
}

// CreateTableSQL is the DDL of a table the tool creates itself.
func CreateTableSQL(tb pipeline.Table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + tb.Ident() + " (\n")
	for i, c := range tb.Columns {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("    " + pipeline.QuoteIdent(c.Name) + " " + c.Type.SQL())
		if c.Generated != "" {
			b.WriteString(" GENERATED ALWAYS AS (" + c.Generated + ") STORED")
		}
		if c.NotNull {
			b.WriteString(" NOT NULL")
		}
	}
	if len(tb.PrimaryKey) > 0 {
		keys := make([]string, len(tb.PrimaryKey))
		for i, k := range tb.PrimaryKey {
			keys[i] = pipeline.QuoteIdent(k)
		}
		b.WriteString(",\n    PRIMARY KEY (" + strings.Join(keys, ", ") + ")")
	}
	b.WriteString("\n)")
	return b.String()
}

func (t *Target) validate(ctx context.Context, tb pipeline.Table) ([]string, error) {
	rows, err := t.pool.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> ''
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, tb.Schema, tb.Name)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", tb.FullName(), err)
	}
	type col struct {
		typ       string
		notNull   bool
		generated bool
	}
	have := map[string]col{}
	for rows.Next() {
		var name string
		var c col
		if err := rows.Scan(&name, &c.typ, &c.notNull, &c.generated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inspect %s: %w", tb.FullName(), err)
		}
		have[name] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", tb.FullName(), err)
	}
	if len(have) == 0 {
		return []string{fmt.Sprintf("table %s is missing", tb.FullName())}, nil
	}
	var problems []string
	for _, c := range tb.Columns {
		h, ok := have[c.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: column %s is missing", tb.FullName(), c.Name))
		case h.typ != c.Type.SQL():
			problems = append(problems, fmt.Sprintf("%s: column %s is %s, want %s", tb.FullName(), c.Name, h.typ, c.Type.SQL()))
		case c.NotNull && !h.notNull:
			problems = append(problems, fmt.Sprintf("%s: column %s is nullable, want NOT NULL", tb.FullName(), c.Name))
		case (c.Generated != "") != h.generated:
			problems = append(problems, fmt.Sprintf("%s: column %s generated = %v, want %v", tb.FullName(), c.Name, h.generated, c.Generated != ""))
		}
		delete(have, c.Name)
	}
	for name, h := range have {
		if h.notNull && !h.generated {
			problems = append(problems, fmt.Sprintf("%s: extra column %s is NOT NULL; the tool cannot fill it", tb.FullName(), name))
		}
	}
	return problems, nil
}

// NonEmpty implements pipeline.Target.
func (t *Target) NonEmpty(ctx context.Context, tables []pipeline.Table) ([]string, error) {
	var out []string
	for _, tb := range tables {
		var any bool
		if err := t.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+tb.Ident()+")").Scan(&any); err != nil {
			return nil, fmt.Errorf("inspect %s: %w", tb.FullName(), err)
		}
		if any {
			out = append(out, tb.FullName())
		}
	}
	return out, nil
}

// StartRun implements pipeline.Target.
func (t *Target) StartRun(ctx context.Context, run *manifests.Run, truncate []pipeline.Table, deferral pipeline.Deferral) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("start run: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if len(truncate) > 0 {
		names := make([]string, len(truncate))
		for i, tb := range truncate {
			names[i] = tb.Ident()
		}
		// Locked before anything is looked at: a row committed meanwhile into a table that
		// references them is seen (and refuses the run) instead of being truncated along, and
		// no new foreign key can come to reference them (it needs a lock on them too).
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("--replace: lock the selected tables: %w", err)
		}
		extra, full, err := referencingTables(ctx, tx, truncate, true)
		if err != nil {
			return fmt.Errorf("--replace: %w", err)
		}
		if len(full) > 0 {
			return &pipeline.UsageError{Msg: fmt.Sprintf("--replace would empty tables that %v reference (they hold rows and are not part of this selection); replace their collections too", full)}
		}
		names = append(names, extra...)
		if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("--replace: truncate: %w", err)
		}
	}
	if err := manifests.CreateRun(ctx, tx, run); err != nil {
		return err
	}
	// In the transaction that truncates: the unfinished runs whose tables this one writes are
	// never continued once it started (a resume would write their rest onto its rows).
	if _, err := manifests.SupersedeRuns(ctx, tx, run); err != nil {
		return err
	}
	if err := deferObjects(ctx, tx, run.ID, deferral); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ReferencedFromOutside implements pipeline.Target: the tables outside the set that reference
// it (directly or through each other) and hold rows.
func (t *Target) ReferencedFromOutside(ctx context.Context, tables []pipeline.Table) ([]string, error) {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("find referencing tables: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	_, full, err := referencingTables(ctx, tx, tables, false)
	return full, err
}

// referencingTables finds the tables outside the set whose foreign keys reference it (directly
// or through each other), as identifiers, and the names of those that hold rows. TRUNCATE
// without CASCADE refuses while they exist: an empty one is truncated along (nothing is lost),
// a non-empty one refuses the run, naming it (cli.md). With lock, each is locked as TRUNCATE
// will lock it before it is looked at (see StartRun).
func referencingTables(ctx context.Context, tx pgx.Tx, set []pipeline.Table, lock bool) (extra, full []string, err error) {
	in := map[string]bool{}
	for _, tb := range set {
		in[tb.FullName()] = true
	}
	frontier := set
	for len(frontier) > 0 {
		var next []pipeline.Table
		for _, tb := range frontier {
			rows, err := tx.Query(ctx, `SELECT DISTINCT rn.nspname, rc.relname
FROM pg_constraint k
JOIN pg_class rc ON rc.oid = k.conrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE k.contype = 'f' AND pn.nspname = $1 AND pc.relname = $2 AND rc.relispartition = false`, tb.Schema, tb.Name)
			if err != nil {
				return nil, nil, fmt.Errorf("find tables referencing %s: %w", tb.FullName(), err)
			}
			for rows.Next() {
				var schema, name string
				if err := rows.Scan(&schema, &name); err != nil {
					rows.Close()
					return nil, nil, err
				}
				ref := pipeline.Table{Schema: schema, Name: name}
				if in[ref.FullName()] {
					continue
				}
				in[ref.FullName()] = true
				next = append(next, ref)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, nil, err
			}
		}
		for _, ref := range next {
			if lock {
				if _, err := tx.Exec(ctx, "LOCK TABLE "+ref.Ident()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
					return nil, nil, fmt.Errorf("lock %s: %w", ref.FullName(), err)
				}
			}
			var any bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ref.Ident()+")").Scan(&any); err != nil {
				return nil, nil, fmt.Errorf("inspect %s: %w", ref.FullName(), err)
			}
			if any {
				full = append(full, ref.FullName())
			}
			extra = append(extra, ref.Ident())
		}
		frontier = next
	}
	return extra, full, nil
}

// Analyze implements pipeline.Target.
func (t *Target) Analyze(ctx context.Context, tables []pipeline.Table) error {
	for _, tb := range tables {
		if err := t.analyze(ctx, tb); err != nil {
			return fmt.Errorf("analyze %s: %w", tb.FullName(), err)
		}
	}
	return nil
}

// analyzeConns bounds the connections one ANALYZE of a partitioned table uses.
const analyzeConns = 4

// analyze runs ANALYZE on tb. ANALYZE of a partitioned table samples the whole hierarchy for
// the parent's statistics and then analyzes every partition in turn, all in one backend on one
// core, at the end of the load when nothing else runs. So the partitions are analyzed on
// other connections at the same time, each in a transaction that locks its partitions first,
// and the parent with SKIP_LOCKED, which then computes the parent's statistics and leaves the
// partitions to them: the same statistics, in about half the time on two cores.
func (t *Target) analyze(ctx context.Context, tb pipeline.Table) error {
	var parts []string
	rows, err := t.pool.Query(ctx, `SELECT relid::regclass::text FROM pg_partition_tree($1::regclass) WHERE isleaf AND relid <> $1::regclass ORDER BY 1`, tb.Ident())
	if err != nil {
		return err
	}
	if parts, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	if len(parts) == 0 {
		_, err := t.pool.Exec(ctx, "ANALYZE "+tb.Ident())
		return err
	}
	// One connection stays free for the parent; a smaller pool means fewer groups, never a
	// wait on connections these transactions hold.
	st := t.pool.Stat()
	free := int(st.MaxConns()-st.AcquiredConns()) - 1
	groups := make([][]string, max(1, min(len(parts), analyzeConns, free)))
	for i, p := range parts {
		groups[i%len(groups)] = append(groups[i%len(groups)], p)
	}
	txs := make([]pgx.Tx, 0, len(groups))
	defer func() {
		for _, tx := range txs {
			tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
		}
	}()
	for _, g := range groups {
		tx, err := t.pool.Begin(ctx)
		if err != nil {
			return err
		}
		txs = append(txs, tx)
		// regclass text is already quoted as an identifier needs.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(g, ", ")+" IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
			return err
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := t.pool.Exec(ectx, "ANALYZE (SKIP_LOCKED) "+tb.Ident())
		return err
	})
	for i, g := range groups {
		tx := txs[i]
		eg.Go(func() error {
			for _, p := range g {
				if _, err := tx.Exec(ectx, "ANALYZE "+p); err != nil {
					return fmt.Errorf("partition %s: %w", p, err)
				}
			}
			return tx.Commit(ectx)
		})
	}
	return eg.Wait()
}

// Query implements pipeline.Target: rows as text values (nil for NULL).
func (t *Target) Query(ctx context.Context, sql string, fn func(vals []*string) error) error {
	rows, err := t.pool.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("query parents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		vals := make([]*string, len(raw))
		for i, v := range raw {
			if v != nil {
				s := string(v)
				vals[i] = &s
			}
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query parents: %w", err)
	}
	return nil
}

// ddlLockKey serializes the key passes' DDL across processes (see Exec).
const ddlLockKey = "convert:ddl"

// Exec implements pipeline.Target. A key pass's DDL runs in every process working on the
// collection at once (a job and its joiners, a verify beside them), and CREATE ... IF NOT
// EXISTS looks for the name before it takes its locks, so two creators of one scheduler.runs
// partition can both find it missing and the second fail. The statement therefore runs in a
// transaction that first takes a transaction-scoped advisory lock: the second creator looks
// only once the first has committed, and finds the table.
func (t *Target) Exec(ctx context.Context, sql string) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("exec %q: %w", firstLine(sql), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, ddlLockKey); err != nil {
		return fmt.Errorf("exec %q: lock: %w", firstLine(sql), err)
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec %q: %w", firstLine(sql), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("exec %q: %w", firstLine(sql), err)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// DeleteUnproduced implements pipeline.Target (delta runs).
func (t *Target) DeleteUnproduced(ctx context.Context, runID string, tables []pipeline.Table) error {
	return DeleteUnproduced(ctx, t.pool, runID, tables)
}

// RebuildDerived implements pipeline.Target (delta runs).
func (t *Target) RebuildDerived(ctx context.Context, runID string, tb pipeline.Table) error {
	return RebuildDerived(ctx, t.pool, runID, tb)
}

// DerivedSum implements pipeline.Target.
func (t *Target) DerivedSum(ctx context.Context, runID string, tb pipeline.Table) (manifests.TableSum, error) {
	return DerivedSum(ctx, t.pool, runID, tb)
}

// TableSum implements pipeline.Target.
func (t *Target) TableSum(ctx context.Context, tb pipeline.Table) (manifests.TableSum, error) {
	return ReadTableSum(ctx, t.pool, tb)
}

// ReadTableSum recomputes a table's checksum from what PostgreSQL holds: every row read back in
// binary (jsonb and numeric as text), hashed exactly as the sink hashed it when writing.
func ReadTableSum(ctx context.Context, pool *pgxpool.Pool, tb pipeline.Table) (manifests.TableSum, error) {
	var sum manifests.TableSum
	name := tb.FullName()
	err := ScanTable(ctx, pool, tb, func(row []byte) error {
		sum.Add(manifests.RowDigest(name, row))
		return nil
	})
	return sum, err
}

// ScanTable reads every row of a table in checksum encoding (pipeline.RowBuffer): the written
// columns in table order, binary, jsonb and numeric as the text PostgreSQL prints. row is only
// valid during the call.
func ScanTable(ctx context.Context, pool *pgxpool.Pool, tb pipeline.Table, fn func(row []byte) error) error {
	cols := tb.Written()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = pipeline.QuoteIdent(c.Name)
		if c.Type == pipeline.TypeJSONB || c.Type == pipeline.TypeNumeric {
			exprs[i] += "::text"
		}
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("read back %s: %w", tb.FullName(), err)
	}
	defer conn.Release()
	formats := make([]int16, len(cols))
	for i := range formats {
		formats[i] = 1
	}
	rr := conn.Conn().PgConn().ExecParams(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+tb.Ident(), nil, nil, nil, formats)
	var row []byte
	var fnErr error
	for rr.NextRow() {
		row = row[:0]
		for _, v := range rr.Values() {
			if v == nil {
				row = append(row, 0)
				continue
			}
			row = append(row, 1, byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v)))
			row = append(row, v...)
		}
		if fnErr = fn(row); fnErr != nil {
			break
		}
	}
	_, err = rr.Close()
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("read back %s: %w", tb.FullName(), err)
	}
	return nil
}

var _ = errors.New
var _ = pgx.ErrNoRows
