package load

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// lockGrace is how long TryLock keeps trying before it reports the lock held. A process killed
// with SIGKILL leaves its server backend (and the lock) behind until the server notices the
// closed connection, usually within milliseconds; a resume started right after must not be
// refused for that.
const lockGrace = 3 * time.Second

// TryLock takes pg_try_advisory_lock(hashtext(key)) on a connection of its own, or returns a
// *LockHeldError when another session still holds it after a short grace period.
func TryLock(ctx context.Context, pool *pgxpool.Pool, key string) (*Lock, error) {
	deadline := time.Now().Add(lockGrace)
	for {
		l, err := tryLockOnce(ctx, pool, key)
		var held *LockHeldError
		if !errors.As(err, &held) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tryLockOnce(ctx context.Context, pool *pgxpool.Pool, key string) (*Lock, error) {
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
	if l.conn == nil {
		return
	}
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.key)
	l.conn.Release()
}

// WaitLock takes pg_advisory_lock(hashtext(key)) on a connection of its own, waiting for the
// holder to let go (job --wait); ctx cancels the wait.
func WaitLock(ctx context.Context, pool *pgxpool.Pool, key string) (*Lock, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	return &Lock{conn: conn, key: key}, nil
}

// Watch checks the lock's connection every interval. When the connection is lost, the server
// released the lock: Watch takes it again on a new connection, and calls lost with a
// *LockHeldError if another process holds it by then (or with the error when it cannot reconnect
// within giveUp). It returns when ctx ends.
func (l *Lock) Watch(ctx context.Context, pool *pgxpool.Pool, interval, giveUp time.Duration, lost func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.conn.Ping(ctx); err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		l.conn.Release()
		l.conn = nil
		deadline := time.Now().Add(giveUp)
		for {
			nl, err := TryLock(ctx, pool, l.key)
			if err == nil {
				l.conn = nl.conn
				break
			}
			var held *LockHeldError
			if errors.As(err, &held) || time.Now().After(deadline) || ctx.Err() != nil {
				lost(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}
}
