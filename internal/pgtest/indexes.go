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
	rows, err := db.Query(context.Background(), `SELECT i.relname, pg_get_indexdef(x.indexrelid) || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = $1`, schema)
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
