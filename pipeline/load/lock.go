package load

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// LockHeldError: another process holds the module's lock (exit code 5).
type LockHeldError struct{ Key string }

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("another convert process holds the lock %q; wait for it or stop it", e.Key)
}

// Lock is a session-level advisory lock held on a dedicated connection.
type Lock struct {
	conn *pgxpool.Conn
	key  string
}

// TryLock takes pg_try_advisory_lock(hashtext(key)) on a connection of its own, or returns a
// *LockHeldError at once.
func TryLock(ctx context.Context, pool *pgxpool.Pool, key string) (*Lock, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, &LockHeldError{Key: key}
	}
	return &Lock{conn: conn, key: key}, nil
}

// Release gives the lock up and returns the connection.
func (l *Lock) Release(ctx context.Context) {
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.key)
	l.conn.Release()
}
