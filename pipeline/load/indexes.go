package load

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// Deferred secondary indexes (--defer-indexes): a fresh target loads faster without them, and
// building an index once over the loaded rows costs less than maintaining it row by row. Only
// indexes that constrain nothing are deferred: primary keys, unique and exclusion indexes and
// indexes backing a constraint stay, since the load relies on them (ON CONFLICT, the database
// refusing a row). Each dropped index is recorded with its definition in the transaction that
// drops it, and rebuilt — the record deleted in the same transaction — when a collection
// loading its table completes, in this run or any later one: a crash in between loses no index.

// secondaryIndexes lists the indexes of tb that --defer-indexes may drop, with the statement
// that recreates each.
func secondaryIndexes(ctx context.Context, tx pgx.Tx, tb pipeline.Table) ([]manifests.DeferredIndex, error) {
	rows, err := tx.Query(ctx, `SELECT i.relname, quote_ident(i.relname), pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::regclass AND NOT x.indisprimary AND NOT x.indisunique AND NOT x.indisexclusion
  AND NOT i.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname`, tb.Ident())
	if err != nil {
		return nil, fmt.Errorf("--defer-indexes: list the indexes of %s: %w", tb.FullName(), err)
	}
	var out []manifests.DeferredIndex
	for rows.Next() {
		var name, quoted, def string
		if err := rows.Scan(&name, &quoted, &def); err != nil {
			rows.Close()
			return nil, err
		}
		// A partitioned table's index is defined ON ONLY the parent (what pg_dump attaches
		// partition indexes to); rebuilt so, it would stay invalid and cover no partition.
		only := "CREATE INDEX " + quoted + " ON ONLY "
		if strings.HasPrefix(def, only) {
			def = "CREATE INDEX " + quoted + " ON " + strings.TrimPrefix(def, only)
		}
		out = append(out, manifests.DeferredIndex{Schema: tb.Schema, Table: tb.Name, Index: name, Definition: def})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("--defer-indexes: list the indexes of %s: %w", tb.FullName(), err)
	}
	return out, nil
}

// deferIndexes drops the secondary indexes of tables in tx, recording each for runID.
func deferIndexes(ctx context.Context, tx pgx.Tx, runID string, tables []pipeline.Table) error {
	for _, tb := range tables {
		idx, err := secondaryIndexes(ctx, tx, tb)
		if err != nil {
			return err
		}
		for _, d := range idx {
			d.RunID = runID
			if err := manifests.RecordDeferredIndex(ctx, tx, d); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DROP INDEX "+pgx.Identifier{d.Schema, d.Index}.Sanitize()); err != nil {
				return fmt.Errorf("--defer-indexes: drop %s.%s: %w", d.Schema, d.Index, err)
			}
		}
	}
	return nil
}

// RebuildIndexes implements pipeline.Target: the deferred indexes of the tables are created
// again, one transaction each (an index someone already recreated is only forgotten).
func (t *Target) RebuildIndexes(ctx context.Context, tables []pipeline.Table) error {
	store := manifests.NewStore(t.pool)
	for _, tb := range tables {
		idx, err := store.DeferredIndexes(ctx, tb.Schema, tb.Name)
		if err != nil {
			return err
		}
		for _, d := range idx {
			if err := t.rebuild(ctx, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Target) rebuild(ctx context.Context, d manifests.DeferredIndex) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild index %s.%s: %w", d.Schema, d.Index, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{d.Schema, d.Index}.Sanitize()).Scan(&exists); err != nil {
		return fmt.Errorf("rebuild index %s.%s: %w", d.Schema, d.Index, err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, d.Definition); err != nil {
			return fmt.Errorf("rebuild index %s.%s (%s): %w", d.Schema, d.Index, d.Definition, err)
		}
	}
	if err := manifests.ForgetDeferredIndex(ctx, tx, d.Schema, d.Index); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild index %s.%s: commit: %w", d.Schema, d.Index, err)
	}
	return nil
}
