package manifests

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of deferred objects.
const (
	DeferredIndexKind      = "index"       // a secondary index (--defer-indexes)
	DeferredForeignKeyKind = "foreign key" // a foreign key constraint (--defer-foreign-keys)
)

// Deferred is an index or a foreign key a run dropped to load faster and that has not been
// restored yet. Definition is the statement that restores it.
type Deferred struct {
	Kind       string    `json:"kind"`
	Schema     string    `json:"schema"`
	Table      string    `json:"table"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	RunID      string    `json:"run_id"`
	DroppedAt  time.Time `json:"dropped_at"`
}

// RecordDeferred records a dropped object in tx, the transaction that drops it.
func RecordDeferred(ctx context.Context, tx pgx.Tx, d Deferred) error {
	_, err := tx.Exec(ctx, `INSERT INTO convert.deferred (kind, schema_name, table_name, name, definition, run_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (schema_name, table_name, kind, name) DO UPDATE SET definition = excluded.definition,
    run_id = excluded.run_id, dropped_at = now()`, d.Kind, d.Schema, d.Table, d.Name, d.Definition, d.RunID)
	if err != nil {
		return fmt.Errorf("record deferred %s %s.%s: %w", d.Kind, d.Schema, d.Name, err)
	}
	return nil
}

// ForgetDeferred deletes the record of a restored object in tx, the transaction that restores
// it.
func ForgetDeferred(ctx context.Context, tx pgx.Tx, d Deferred) error {
	if _, err := tx.Exec(ctx, `DELETE FROM convert.deferred WHERE schema_name = $1 AND table_name = $2 AND kind = $3 AND name = $4`,
		d.Schema, d.Table, d.Kind, d.Name); err != nil {
		return fmt.Errorf("forget deferred %s %s.%s: %w", d.Kind, d.Schema, d.Name, err)
	}
	return nil
}

// Deferred lists the objects dropped and not restored yet, indexes before foreign keys (the
// order they are restored in); with a table (schema and name), only that table's.
func (s *Store) Deferred(ctx context.Context, schema, table string) ([]Deferred, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, schema_name, table_name, name, definition, run_id, dropped_at
FROM convert.deferred
WHERE ($1 = '' OR (schema_name = $1 AND table_name = $2))
ORDER BY schema_name, table_name, kind = 'foreign key', name`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("deferred indexes and foreign keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Deferred, error) {
		var d Deferred
		err := r.Scan(&d.Kind, &d.Schema, &d.Table, &d.Name, &d.Definition, &d.RunID, &d.DroppedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deferred indexes and foreign keys: %w", err)
	}
	return out, nil
}
