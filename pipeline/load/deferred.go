package load

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// Deferred indexes and foreign keys (--defer-indexes, --defer-foreign-keys): a fresh target
// loads faster without them. Building an index once over the loaded rows costs less than
// maintaining it row by row; validating a foreign key once is one join, where row by row it is
// a trigger and a lookup per row (a third of the COPY time of scheduler runs). Nothing is lost
// while they are away: the transforms check every reference themselves (a missing parent
// rejects the document), and the restored constraint validates every row again.
//
// Only indexes that constrain nothing are deferred: primary keys, unique and exclusion indexes
// and indexes backing a constraint stay, since the load relies on them (ON CONFLICT, the
// database refusing a row). Each dropped object is recorded with the statement that restores it
// in the transaction that drops it, and restored — the record deleted in the same transaction —
// when a collection loading its table completes, in this run or any later one, before the
// collection is recorded complete: a crash in between loses nothing, and a foreign key that no
// longer validates stops the collection from completing.

// secondaryIndexes lists the indexes of tb that --defer-indexes may drop, with the statement
// that recreates each. A partitioned table's index is defined ON ONLY the parent (what pg_dump
// attaches partition indexes to); rebuilt so, it would stay invalid and cover no partition, so
// its statement drops the ONLY.
func secondaryIndexes(ctx context.Context, tx pgx.Tx, tb pipeline.Table) ([]manifests.Deferred, error) {
	return deferrable(ctx, tx, tb, manifests.DeferredIndexKind, `SELECT i.relname,
    CASE WHEN starts_with(d.def, d.head || ' ON ONLY ') THEN d.head || ' ON ' || substr(d.def, length(d.head || ' ON ONLY ') + 1) ELSE d.def END
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid,
    LATERAL (SELECT pg_get_indexdef(x.indexrelid) AS def, 'CREATE INDEX ' || quote_ident(i.relname) AS head) d
WHERE x.indrelid = $1::regclass AND NOT x.indisprimary AND NOT x.indisunique AND NOT x.indisexclusion
  AND NOT i.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname`)
}

// foreignKeys lists the foreign keys of tb (its own: a partition's copies of its parent's come
// and go with them), with the statement that adds each again.
func foreignKeys(ctx context.Context, tx pgx.Tx, tb pipeline.Table) ([]manifests.Deferred, error) {
	return deferrable(ctx, tx, tb, manifests.DeferredForeignKeyKind, `SELECT conname,
    'ALTER TABLE ' || $1::text || ' ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid = $1::text::regclass AND contype = 'f' AND conparentid = 0
ORDER BY conname`)
}

// deferrable runs a catalog query of tb's (name, restoring statement) rows, tb's identifier as
// $1, into records of kind.
func deferrable(ctx context.Context, tx pgx.Tx, tb pipeline.Table, kind, sql string) ([]manifests.Deferred, error) {
	rows, err := tx.Query(ctx, sql, tb.Ident())
	if err == nil {
		var out []manifests.Deferred
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (manifests.Deferred, error) {
			d := manifests.Deferred{Kind: kind, Schema: tb.Schema, Table: tb.Name}
			err := r.Scan(&d.Name, &d.Definition)
			return d, err
		})
		if err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("defer: list the %s definitions of %s: %w", kind, tb.FullName(), err)
}

// deferObjects drops the secondary indexes of d.Indexes and the foreign keys of d.ForeignKeys
// in tx, recording each for runID.
func deferObjects(ctx context.Context, tx pgx.Tx, runID string, d pipeline.Deferral) error {
	var drop []manifests.Deferred
	for _, tb := range d.Indexes {
		idx, err := secondaryIndexes(ctx, tx, tb)
		if err != nil {
			return err
		}
		drop = append(drop, idx...)
	}
	for _, tb := range d.ForeignKeys {
		fks, err := foreignKeys(ctx, tx, tb)
		if err != nil {
			return err
		}
		drop = append(drop, fks...)
	}
	for _, o := range drop {
		o.RunID = runID
		if err := manifests.RecordDeferred(ctx, tx, o); err != nil {
			return err
		}
		stmt := "DROP INDEX " + pgx.Identifier{o.Schema, o.Name}.Sanitize()
		if o.Kind == manifests.DeferredForeignKeyKind {
			stmt = "ALTER TABLE " + pgx.Identifier{o.Schema, o.Table}.Sanitize() + " DROP CONSTRAINT " + pgx.Identifier{o.Name}.Sanitize()
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("defer %s %s.%s: %w", o.Kind, o.Schema, o.Name, err)
		}
	}
	return nil
}

// RestoreDeferred implements pipeline.Target: the deferred indexes, then the deferred foreign
// keys of the tables are created again, one transaction each (one someone already recreated is
// only forgotten).
func (t *Target) RestoreDeferred(ctx context.Context, tables []pipeline.Table) error {
	store := manifests.NewStore(t.pool)
	for _, tb := range tables {
		objs, err := store.Deferred(ctx, tb.Schema, tb.Name)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := t.restore(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Target) restore(ctx context.Context, d manifests.Deferred) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("restore %s %s.%s: %w", d.Kind, d.Schema, d.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	exists := `SELECT to_regclass($1) IS NOT NULL`
	args := []any{pgx.Identifier{d.Schema, d.Name}.Sanitize()}
	if d.Kind == manifests.DeferredForeignKeyKind {
		exists = `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2)`
		args = []any{pgx.Identifier{d.Schema, d.Table}.Sanitize(), d.Name}
	}
	var present bool
	if err := tx.QueryRow(ctx, exists, args...).Scan(&present); err != nil {
		return fmt.Errorf("restore %s %s.%s: %w", d.Kind, d.Schema, d.Name, err)
	}
	if !present {
		if _, err := tx.Exec(ctx, d.Definition); err != nil {
			if d.Kind == manifests.DeferredForeignKeyKind {
				return fmt.Errorf("restore foreign key %s of %s.%s (%s): %w; it stays deferred (convert status lists it): "+
					"correct the rows it names, then resume the run", d.Name, d.Schema, d.Table, d.Definition, err)
			}
			return fmt.Errorf("restore index %s.%s (%s): %w", d.Schema, d.Name, d.Definition, err)
		}
	}
	if err := manifests.ForgetDeferred(ctx, tx, d); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("restore %s %s.%s: commit: %w", d.Kind, d.Schema, d.Name, err)
	}
	return nil
}
