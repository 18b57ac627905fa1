package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Querier is what both a pgx connection and a pool offer.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Indexes lists the indexes of a schema, its partitions' included, as name → definition, with
// " INVALID" appended to the definition of an index that is not valid.
func Indexes(t testing.TB, db Querier, schema string) map[string]string {
	t.Helper()
	return definitions(t, db, `SELECT i.relname, pg_get_indexdef(x.indexrelid) || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = $1`, schema)
}

// ForeignKeys lists the foreign keys of a schema's tables, partitions included, as
// "table.constraint" → definition, with " NOT VALID" where PostgreSQL has not validated one.
func ForeignKeys(t testing.TB, db Querier, schema string) map[string]string {
	t.Helper()
	return definitions(t, db, `SELECT c.relname || '.' || k.conname,
    pg_get_constraintdef(k.oid) || CASE WHEN k.convalidated THEN '' ELSE ' NOT VALID' END
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype = 'f' AND n.nspname = $1`, schema)
}

// definitions runs a query of (name, definition) rows into a map.
func definitions(t testing.TB, db Querier, sql string, args ...any) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			t.Fatal(err)
		}
		out[name] = def
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
