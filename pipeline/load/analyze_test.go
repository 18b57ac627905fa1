package load

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline"
)

// TestAnalyzePartitioned: Analyze of a partitioned table leaves statistics for the parent (over
// the whole hierarchy) and for every leaf partition, a sub-partitioned one included, whatever
// the pool size (one connection forces the partitions and the parent to take turns).
func TestAnalyzePartitioned(t *testing.T) {
	url := pgtest.Database(t)
	for _, conns := range []int32{1, 2, 8} {
		t.Run(fmt.Sprintf("pool of %d", conns), func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = conns
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			ctx := t.Context()
			create := func(schema string) {
				if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.parts (id integer, at date NOT NULL, note text) PARTITION BY RANGE (at);
CREATE TABLE %[1]s.p1 PARTITION OF %[1]s.parts FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE %[1]s.p2 PARTITION OF %[1]s.parts FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
CREATE TABLE %[1]s.p3 PARTITION OF %[1]s.parts FOR VALUES FROM ('2026-03-01') TO ('2026-05-01') PARTITION BY RANGE (at);
CREATE TABLE %[1]s.p3a PARTITION OF %[1]s.p3 FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
CREATE TABLE %[1]s.p3b PARTITION OF %[1]s.p3 FOR VALUES FROM ('2026-04-01') TO ('2026-05-01');
CREATE TABLE %[1]s.plain (id integer, note text);
INSERT INTO %[1]s.parts SELECT g, date '2026-01-01' + (g %% 120), 'n' || (g %% 7) FROM generate_series(1, 3000) g;
INSERT INTO %[1]s.plain SELECT g, 'x' FROM generate_series(1, 100) g;`, schema)); err != nil {
					t.Fatal(err)
				}
			}
			analyzed := func(schema string) string {
				rows, err := pool.Query(ctx, `SELECT tablename || CASE WHEN inherited THEN ' (inherited)' ELSE '' END FROM pg_stats
WHERE schemaname = $1 AND attname = 'note' ORDER BY 1`, schema)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					got = append(got, s)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(got)
			}
			// The reference: PostgreSQL's own ANALYZE of the same tables, one after the other.
			ref, ours := fmt.Sprintf("r%d", conns), fmt.Sprintf("a%d", conns)
			create(ref)
			create(ours)
			if _, err := pool.Exec(ctx, fmt.Sprintf("ANALYZE %[1]s.parts; ANALYZE %[1]s.plain", ref)); err != nil {
				t.Fatal(err)
			}
			tables := []pipeline.Table{{Schema: ours, Name: "parts"}, {Schema: ours, Name: "plain"}}
			if err := NewTarget(pool).Analyze(ctx, tables); err != nil {
				t.Fatal(err)
			}
			if got, want := analyzed(ours), analyzed(ref); got != want || want == "[]" {
				t.Errorf("statistics for %v, PostgreSQL's ANALYZE: %v", got, want)
			}
		})
	}
}
