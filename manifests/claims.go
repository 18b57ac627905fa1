package manifests

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claim timing (cli.md, Job mode): a heartbeat every 10 s; a range whose heartbeat is older than
// 30 s may be reclaimed.
//
// Claims and heartbeats are stamped with clock_timestamp(), the time the statement runs, never
// now(), the start of its transaction: a stamp must not look older than it is when it commits,
// or a live claim could be taken for a stale one.
const (
	HeartbeatEvery = 10 * time.Second
	ClaimStale     = 30 * time.Second
)

// ErrClaimLost: the range was reclaimed by another worker (its heartbeat went stale).
var ErrClaimLost = errors.New("range claim lost")

// ClaimRange claims one range of a collection for worker: a pending range, a running one whose
// heartbeat is older than stale (its worker died), or one this worker held before a failure. Claiming increments claim_epoch, so the
// worker that held it before can never commit another batch of it. ok is false when no range is
// claimable now.
func (s *Store) ClaimRange(ctx context.Context, runID, collection, worker string, stale time.Duration) (r Range, ok bool, err error) {
	var no, epoch int
	err = s.pool.QueryRow(ctx, `UPDATE convert.ranges r SET status = 'running', claimed_by = $3, claim_epoch = r.claim_epoch + 1, heartbeat = clock_timestamp()
FROM (SELECT run_id, collection, range_no FROM convert.ranges
      WHERE run_id = $1 AND collection = $2
        AND (status = 'pending' OR (status = 'running' AND (claimed_by = $3 OR heartbeat IS NULL OR heartbeat < clock_timestamp() - make_interval(secs => $4))))
      ORDER BY range_no LIMIT 1 FOR UPDATE SKIP LOCKED) c
WHERE r.run_id = c.run_id AND r.collection = c.collection AND r.range_no = c.range_no
RETURNING r.range_no, r.claim_epoch`, runID, collection, worker, stale.Seconds()).Scan(&no, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Range{}, false, nil
	}
	if err != nil {
		return Range{}, false, fmt.Errorf("collection %s: claim a range: %w", collection, err)
	}
	ranges, err := s.Ranges(ctx, runID, collection)
	if err != nil {
		return Range{}, false, err
	}
	for _, x := range ranges {
		if x.No == no {
			x.Epoch = epoch
			return x, true, nil
		}
	}
	return Range{}, false, fmt.Errorf("collection %s: claimed range %d vanished", collection, no)
}

// Heartbeat renews a claim; it returns ErrClaimLost when the range was reclaimed.
func (s *Store) Heartbeat(ctx context.Context, runID, collection string, no int, worker string, epoch int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE convert.ranges SET heartbeat = clock_timestamp()
WHERE run_id = $1 AND collection = $2 AND range_no = $3 AND claimed_by = $4 AND claim_epoch = $5 AND status = 'running'`,
		runID, collection, no, worker, epoch)
	if err != nil {
		return fmt.Errorf("collection %s: range %d heartbeat: %w", collection, no, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("collection %s: range %d: %w", collection, no, ErrClaimLost)
	}
	return nil
}

// MarkClaimedRangeDone marks a range done if worker still holds it at epoch.
func (s *Store) MarkClaimedRangeDone(ctx context.Context, runID, collection string, no int, worker string, epoch int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE convert.ranges SET status = 'done', heartbeat = clock_timestamp()
WHERE run_id = $1 AND collection = $2 AND range_no = $3 AND claimed_by = $4 AND claim_epoch = $5`,
		runID, collection, no, worker, epoch)
	if err != nil {
		return fmt.Errorf("collection %s: range %d done: %w", collection, no, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("collection %s: range %d: %w", collection, no, ErrClaimLost)
	}
	return nil
}

// RangeCounts tells how many of a collection's ranges are done, and how many exist.
func (s *Store) RangeCounts(ctx context.Context, runID, collection string) (done, total int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'done'), count(*) FROM convert.ranges WHERE run_id = $1 AND collection = $2`,
		runID, collection).Scan(&done, &total)
	if err != nil {
		return 0, 0, fmt.Errorf("collection %s: ranges: %w", collection, err)
	}
	return done, total, nil
}

// LatestRunning finds the newest running run of a kind for selection, or nil.
func (s *Store) LatestRunning(ctx context.Context, selection, kind string) (*Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM convert.runs
WHERE selection = $1 AND kind = $2 AND status = 'running' ORDER BY started_at DESC, id DESC LIMIT 1`, selection, kind))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find running job: %w", err)
	}
	return r, nil
}
