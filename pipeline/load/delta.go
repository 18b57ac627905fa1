package load

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// Delta catch-up (cli.md, run --delta): every batch upserts its rows and records their primary
// keys in convert.delta_keys, in its own transaction; when a collection completes, the rows
// of its tables whose keys the run did not produce are deleted — with the rows of other tables
// that reference them, children first, as ON DELETE CASCADE would — so the target equals a
// full conversion at the delta's as-of. Derived rows are staged in convert.delta_derived (by
// every run: the recorded derived checksums come from them) and, in a delta, their tables
// rebuilt exactly when the module completes.

// upsert loads rows through a temporary table, then inserts them, updating rows whose key
// exists and whose values differ.
func upsert(ctx context.Context, tx pgx.Tx, runID string, t pipeline.Table, cols []pipeline.Column, buf []byte, n int) error {
	if len(t.PrimaryKey) == 0 {
		return fmt.Errorf("delta into %s: the table has no primary key", t.FullName())
	}
	tmp := tempName("convert_delta_", t)
	names := quoted(cols)
	list := strings.Join(names, ", ")
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+tmp+` AS SELECT `+list+` FROM `+t.Ident()+` WITH NO DATA`); err != nil {
		return fmt.Errorf("delta %s: %w", t.FullName(), err)
	}
	if _, err := tx.Exec(ctx, `TRUNCATE `+tmp); err != nil {
		return fmt.Errorf("delta %s: %w", t.FullName(), err)
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY "+tmp+" ("+list+") FROM STDIN (FORMAT binary)")
	if err != nil {
		return fmt.Errorf("delta %s: copy: %w", t.FullName(), err)
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("delta %s: copy wrote %d of %d rows", t.FullName(), tag.RowsAffected(), n)
	}
	pk := map[string]bool{}
	for _, k := range t.PrimaryKey {
		pk[k] = true
	}
	var set, mine, theirs []string
	for _, c := range cols {
		if pk[c.Name] {
			continue
		}
		q := pipeline.QuoteIdent(c.Name)
		set = append(set, q+" = EXCLUDED."+q)
		mine = append(mine, "t."+q)
		theirs = append(theirs, "EXCLUDED."+q)
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ") + " WHERE ROW(" + strings.Join(mine, ", ") + ") IS DISTINCT FROM ROW(" + strings.Join(theirs, ", ") + ")"
	}
	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keys[i] = pipeline.QuoteIdent(k)
	}
	if err := clearUniqueKeys(ctx, tx, runID, t, cols, tmp); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+t.Ident()+` AS t (`+list+`) SELECT `+list+` FROM `+tmp+
		` ON CONFLICT (`+strings.Join(keys, ", ")+`) `+action); err != nil {
		return fmt.Errorf("delta %s: upsert: %w", t.FullName(), err)
	}
	return nil
}

// tempName names a session's temporary table after the target table it stages rows for: a
// pooled connection keeps its temporary tables across batches of different collections.
func tempName(prefix string, t pipeline.Table) string {
	return pipeline.QuoteIdent(prefix + t.Schema + "__" + t.Name)
}

// clearUniqueKeys deletes (cascading) the target rows that hold a unique key one of the staged
// rows now claims under another primary key, when this delta run has not produced them: the
// key's winner changed (the old one left the source or lost its place), and the old row would
// otherwise refuse the new one until the collection's deletions. A row the run did produce is
// never touched (a partial unique key, e.g. schedules WHERE deleted_at IS NULL, lets both stand).
func clearUniqueKeys(ctx context.Context, tx pgx.Tx, runID string, t pipeline.Table, cols []pipeline.Column, tmp string) error {
	if len(t.Unique) == 0 {
		return nil
	}
	var pkExpr, pkX, pkS []string
	for _, k := range t.PrimaryKey {
		for _, c := range cols {
			if c.Name == k {
				e, err := keyExpr("x", c)
				if err != nil {
					return err
				}
				pkExpr = append(pkExpr, e)
			}
		}
		pkX = append(pkX, "x."+pipeline.QuoteIdent(k))
		pkS = append(pkS, "s."+pipeline.QuoteIdent(k))
	}
	for _, u := range t.Unique {
		var ux, us []string
		for _, c := range u {
			ux = append(ux, "x."+pipeline.QuoteIdent(c))
			us = append(us, "s."+pipeline.QuoteIdent(c))
		}
		sel := `SELECT x.ctid AS rid, x.tableoid AS roid FROM ` + t.Ident() + ` x JOIN ` + tmp + ` s ON ROW(` + strings.Join(ux, ", ") + `) = ROW(` +
			strings.Join(us, ", ") + `) WHERE ROW(` + strings.Join(pkX, ", ") + `) <> ROW(` + strings.Join(pkS, ", ") + `)
  AND NOT EXISTS (SELECT 1 FROM convert.delta_keys k WHERE k.run_id = $1 AND k.tbl = $2 AND k.key = ` + strings.Join(pkExpr, " || ") + `)`
		if err := cascadeDelete(ctx, tx, t, sel, []any{runID, t.FullName()}, 0); err != nil {
			return err
		}
	}
	return nil
}

func quoted(cols []pipeline.Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pipeline.QuoteIdent(c.Name)
	}
	return names
}

// primaryKeyBytes extracts a row's primary-key cells (checksum encoding) from its row bytes.
func primaryKeyBytes(t pipeline.Table, cols []pipeline.Column, row []byte) ([]byte, error) {
	idx := map[int]bool{}
	for _, k := range t.PrimaryKey {
		for i, c := range cols {
			if c.Name == k {
				idx[i] = true
			}
		}
	}
	var key []byte
	err := pipeline.ForEachCell(row, func(i int, v []byte, null bool) error {
		if !idx[i] {
			return nil
		}
		if null {
			return fmt.Errorf("table %s: NULL in primary key column %s", t.FullName(), cols[i].Name)
		}
		key = append(key, 1, byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v)))
		key = append(key, v...)
		return nil
	})
	return key, err
}

// recordKeys records the primary keys of the rows of table ti that the documents in want wrote.
func recordKeys(ctx context.Context, tx pgx.Tx, b *pipeline.Batch, ti int, want map[int]bool) error {
	t := b.Tables[ti]
	cols := t.Written()
	var rows [][]any
	for _, r := range b.Rows.Rows {
		if r.Table != ti || !want[r.Doc] {
			continue
		}
		key, err := primaryKeyBytes(t, cols, b.Rows.RowBytes(r))
		if err != nil {
			return err
		}
		rows = append(rows, []any{b.RunID, t.FullName(), key})
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"convert", "delta_keys"}, []string{"run_id", "tbl", "key"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("delta %s: record keys: %w", t.FullName(), err)
	}
	return nil
}

// stageDerived keeps the derived rows of table ti that the documents in want wrote, folded
// within the batch (the fold of folds is the fold of all rows), in convert.delta_derived with
// the batch: the run's derived checksums (and a delta's rebuild) come from what it produced,
// never from what the target holds. Every run stages, not only deltas.
func stageDerived(ctx context.Context, tx pgx.Tx, b *pipeline.Batch, ti int, want map[int]bool) error {
	t := b.Tables[ti]
	var fold pipeline.DerivedRows
	for _, r := range b.Rows.Rows {
		if r.Table == ti && want[r.Doc] {
			if err := fold.Add(t, b.Rows.RowBytes(r)); err != nil {
				return fmt.Errorf("collection %s: %w", b.Collection, err)
			}
		}
	}
	var rows [][]any
	_ = fold.Rows(t, func(row []byte) error {
		rows = append(rows, []any{b.RunID, t.FullName(), bytes.Clone(row)})
		return nil
	})
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"convert", "delta_derived"}, []string{"run_id", "tbl", "row"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("collection %s: stage derived rows of %s: %w", b.Collection, t.FullName(), err)
	}
	return nil
}

// queryer is what foldStaged reads through: a pool or a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// foldStaged folds the rows of derived table t that run staged.
func foldStaged(ctx context.Context, q queryer, runID string, t pipeline.Table) (*pipeline.DerivedRows, error) {
	rows, err := q.Query(ctx, `SELECT row FROM convert.delta_derived WHERE run_id = $1 AND tbl = $2`, runID, t.FullName())
	if err != nil {
		return nil, fmt.Errorf("derived %s: read staged rows: %w", t.FullName(), err)
	}
	defer rows.Close()
	var fold pipeline.DerivedRows
	for rows.Next() {
		var row []byte
		if err := rows.Scan(&row); err != nil {
			return nil, fmt.Errorf("derived %s: read staged rows: %w", t.FullName(), err)
		}
		if err := fold.Add(t, row); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("derived %s: read staged rows: %w", t.FullName(), err)
	}
	return &fold, nil
}

// DerivedSum is the checksum of derived table t as the run's staged rows make it: what the
// target must hold once every batch of the run is committed.
func DerivedSum(ctx context.Context, pool *pgxpool.Pool, runID string, t pipeline.Table) (manifests.TableSum, error) {
	fold, err := foldStaged(ctx, pool, runID, t)
	if err != nil {
		return manifests.TableSum{}, err
	}
	return fold.Sum(t), nil
}

// keyExpr renders a column's checksum-encoding cell in SQL (0x01, length, binary send), the
// form delta_keys holds.
func keyExpr(alias string, c pipeline.Column) (string, error) {
	send := map[pipeline.ColumnType]string{
		pipeline.TypeUUID: "uuid_send", pipeline.TypeText: "textsend", pipeline.TypeInt2: "int2send",
		pipeline.TypeInt4: "int4send", pipeline.TypeInt8: "int8send", pipeline.TypeTimestamptz: "timestamptz_send",
		pipeline.TypeBool: "boolsend", pipeline.TypeBytea: "byteasend",
	}[c.Type]
	if send == "" {
		return "", fmt.Errorf("delta: primary key column %s of type %s is not supported", c.Name, c.Type.SQL())
	}
	v := send + "(" + alias + "." + pipeline.QuoteIdent(c.Name) + ")"
	return `'\x01'::bytea || int4send(octet_length(` + v + `)) || ` + v, nil
}

// DeleteUnproduced deletes, table by table in the order given (children first), the rows
// whose primary keys the delta run did not record, cascading to the rows of other tables that
// reference them.
func DeleteUnproduced(ctx context.Context, pool *pgxpool.Pool, runID string, tables []pipeline.Table) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delta deletions: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, t := range tables {
		cols := t.Written()
		var exprs []string
		for _, k := range t.PrimaryKey {
			for _, c := range cols {
				if c.Name == k {
					e, err := keyExpr("x", c)
					if err != nil {
						return err
					}
					exprs = append(exprs, e)
				}
			}
		}
		if len(exprs) == 0 {
			return fmt.Errorf("delta into %s: the table has no primary key", t.FullName())
		}
		where := `NOT EXISTS (SELECT 1 FROM convert.delta_keys k WHERE k.run_id = $1 AND k.tbl = $2 AND k.key = ` + strings.Join(exprs, " || ") + `)`
		if err := cascadeDelete(ctx, tx, pipeline.Table{Schema: t.Schema, Name: t.Name}, "SELECT x.ctid AS rid, x.tableoid AS roid FROM "+t.Ident()+" x WHERE "+where, []any{runID, t.FullName()}, 0); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// cascadeDelete deletes the rows of t that doomed selects (ctid, tableoid), first deleting
// the rows of every table whose foreign keys reference them, recursively.
func cascadeDelete(ctx context.Context, tx pgx.Tx, t pipeline.Table, doomed string, args []any, depth int) error {
	if depth > 16 {
		return fmt.Errorf("delta: foreign keys nest deeper than 16 levels below %s", t.FullName())
	}
	tmp := fmt.Sprintf("convert_doomed_%d", depth)
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+tmp); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+tmp+` AS `+doomed, args...); err != nil {
		return fmt.Errorf("delta %s: find rows to delete: %w", t.FullName(), err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+tmp).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	refs, err := tx.Query(ctx, `SELECT rn.nspname, rc.relname,
  (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(att, ord) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.att),
  (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(att, ord) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.att)
FROM pg_constraint k
JOIN pg_class rc ON rc.oid = k.conrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE k.contype = 'f' AND pn.nspname = $1 AND pc.relname = $2 AND NOT rc.relispartition AND k.conparentid = 0`, t.Schema, t.Name)
	if err != nil {
		return err
	}
	type ref struct {
		child         pipeline.Table
		cols, refCols []string
	}
	var list []ref
	for refs.Next() {
		var r ref
		if err := refs.Scan(&r.child.Schema, &r.child.Name, &r.cols, &r.refCols); err != nil {
			refs.Close()
			return err
		}
		list = append(list, r)
	}
	refs.Close()
	if err := refs.Err(); err != nil {
		return err
	}
	for _, r := range list {
		cc := make([]string, len(r.cols))
		pc := make([]string, len(r.refCols))
		for i := range r.cols {
			cc[i] = "c." + pipeline.QuoteIdent(r.cols[i])
			pc[i] = "p." + pipeline.QuoteIdent(r.refCols[i])
		}
		sel := `SELECT c.ctid AS rid, c.tableoid AS roid FROM ` + r.child.Ident() + ` c WHERE (` + strings.Join(cc, ", ") + `) IN (SELECT ` +
			strings.Join(pc, ", ") + ` FROM ` + t.Ident() + ` p JOIN ` + tmp + ` d ON d.rid = p.ctid AND d.roid = p.tableoid)`
		if err := cascadeDelete(ctx, tx, r.child, sel, nil, depth+1); err != nil {
			return err
		}
		// The recursion reused deeper temp tables only: this level's list is intact.
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+t.Ident()+` x USING `+tmp+` d WHERE x.ctid = d.rid AND x.tableoid = d.roid`); err != nil {
		return fmt.Errorf("delta %s: delete: %w", t.FullName(), err)
	}
	return nil
}

// RebuildDerived makes a derived table equal to the rows the delta run staged, folded by the
// table's conflict rules (pipeline.DerivedRows, as the loads merge them): rows are updated,
// inserted, and deleted (with what references them) so the table equals a full conversion's.
func RebuildDerived(ctx context.Context, pool *pgxpool.Pool, runID string, t pipeline.Table) error {
	cols := t.Written()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	tmp := "convert_derived_want"
	list := strings.Join(quoted(cols), ", ")
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+tmp+`; CREATE TEMP TABLE `+tmp+` AS SELECT `+list+` FROM `+t.Ident()+` WITH NO DATA`); err != nil {
		return fmt.Errorf("derived %s: %w", t.FullName(), err)
	}
	// The folded rows, one per key, back as binary COPY.
	fold, err := foldStaged(ctx, tx, runID, t)
	if err != nil {
		return err
	}
	buf := append([]byte(nil), copyHeader...)
	n := 0
	if err := fold.Rows(t, func(row []byte) error {
		buf, err = appendCopyRow(buf, cols, row)
		n++
		return err
	}); err != nil {
		return fmt.Errorf("derived %s: %w", t.FullName(), err)
	}
	buf = append(buf, 0xFF, 0xFF)
	if n > 0 {
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY "+tmp+" ("+list+") FROM STDIN (FORMAT binary)"); err != nil {
			return fmt.Errorf("derived %s: %w", t.FullName(), err)
		}
	}
	key := t.FoldKey()
	kq := make([]string, len(key))
	for i, k := range key {
		kq[i] = pipeline.QuoteIdent(k)
	}
	keys := strings.Join(kq, ", ")
	folded := `SELECT ` + list + ` FROM ` + tmp
	// Delete rows whose key is no longer produced (cascading), then upsert the folded set.
	var notIn []string
	for _, k := range kq {
		notIn = append(notIn, "x."+k)
	}
	if err := cascadeDelete(ctx, tx, pipeline.Table{Schema: t.Schema, Name: t.Name},
		`SELECT x.ctid AS rid, x.tableoid AS roid FROM `+t.Ident()+` x WHERE (`+strings.Join(notIn, ", ")+`) NOT IN (SELECT `+keys+` FROM `+tmp+`)`, nil, 0); err != nil {
		return err
	}
	var set, mine, theirs []string
	inKey := map[string]bool{}
	for _, k := range key {
		inKey[k] = true
	}
	for _, c := range cols {
		if inKey[c.Name] {
			continue
		}
		q := pipeline.QuoteIdent(c.Name)
		set = append(set, q+" = EXCLUDED."+q)
		mine = append(mine, "t."+q)
		theirs = append(theirs, "EXCLUDED."+q)
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ") + " WHERE ROW(" + strings.Join(mine, ", ") + ") IS DISTINCT FROM ROW(" + strings.Join(theirs, ", ") + ")"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+t.Ident()+` AS t (`+list+`) `+folded+` ON CONFLICT (`+keys+`) `+action); err != nil {
		return fmt.Errorf("derived %s: rebuild: %w", t.FullName(), err)
	}
	return tx.Commit(ctx)
}
