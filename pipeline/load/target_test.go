package load

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/internal/pgtest"
)

// TestExecConcurrentDDL: a key pass's DDL (scheduler.runs partitions, CREATE TABLE IF NOT
// EXISTS ... PARTITION OF) runs in every process that works on the collection at once: a job
// and its joiners, or a verify beside them. Two creators of one partition must both succeed;
// IF NOT EXISTS alone looks before it locks and lets the second fail.
func TestExecConcurrentDDL(t *testing.T) {
	url := pgtest.Database(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA s; CREATE TABLE s.runs (id integer, at date NOT NULL) PARTITION BY RANGE (at)`); err != nil {
		t.Fatal(err)
	}
	// One target on a pool of 8: each Exec on a connection of its own, as several processes.
	tg := NewTarget(pool)
	for month := 1; month <= 12; month++ {
		ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS s.runs_2026_%02d PARTITION OF s.runs FOR VALUES FROM ('2026-%02d-01') TO ('2026-%02d-01')`,
			month, month, month+1)
		if month == 12 {
			ddl = `CREATE TABLE IF NOT EXISTS s.runs_2026_12 PARTITION OF s.runs FOR VALUES FROM ('2026-12-01') TO ('2027-01-01')`
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := tg.Exec(t.Context(), ddl); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("month %d: %v", month, err)
		}
	}
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_inherits WHERE inhparent = 's.runs'::regclass`).Scan(&n); err != nil || n != 12 {
		t.Errorf("%d partitions (%v), want 12", n, err)
	}
}
