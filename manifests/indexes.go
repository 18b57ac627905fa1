package manifests

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeferredIndex is a secondary index a run dropped to load faster (--defer-indexes) and that
// has not been rebuilt yet.
type DeferredIndex struct {
	Schema     string    `json:"schema"`
	Table      string    `json:"table"`
	Index      string    `json:"index"`
	Definition string    `json:"definition"`
	RunID      string    `json:"run_id"`
	DroppedAt  time.Time `json:"dropped_at"`
}

// RecordDeferredIndex records a dropped index in tx, the transaction that drops it.
func RecordDeferredIndex(ctx context.Context, tx pgx.Tx, d DeferredIndex) error {
	_, err := tx.Exec(ctx, `INSERT INTO convert.deferred_indexes (schema_name, index_name, table_name, definition, run_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (schema_name, index_name) DO UPDATE SET table_name = excluded.table_name, definition = excluded.definition,
    run_id = excluded.run_id, dropped_at = now()`, d.Schema, d.Index, d.Table, d.Definition, d.RunID)
	if err != nil {
		return fmt.Errorf("record deferred index %s.%s: %w", d.Schema, d.Index, err)
	}
	return nil
}

// ForgetDeferredIndex deletes the record of a rebuilt index in tx, the transaction that
// rebuilds it.
func ForgetDeferredIndex(ctx context.Context, tx pgx.Tx, schema, index string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM convert.deferred_indexes WHERE schema_name = $1 AND index_name = $2`, schema, index); err != nil {
		return fmt.Errorf("forget deferred index %s.%s: %w", schema, index, err)
	}
	return nil
}

// DeferredIndexes lists the indexes dropped and not rebuilt yet; with a table (schema and
// name), only that table's.
func (s *Store) DeferredIndexes(ctx context.Context, schema, table string) ([]DeferredIndex, error) {
	rows, err := s.pool.Query(ctx, `SELECT schema_name, table_name, index_name, definition, run_id, dropped_at
FROM convert.deferred_indexes
WHERE ($1 = '' OR (schema_name = $1 AND table_name = $2))
ORDER BY schema_name, table_name, index_name`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("deferred indexes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeferredIndex, error) {
		var d DeferredIndex
		err := r.Scan(&d.Schema, &d.Table, &d.Index, &d.Definition, &d.RunID, &d.DroppedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deferred indexes: %w", err)
	}
	return out, nil
}
