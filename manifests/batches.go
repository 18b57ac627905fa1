package manifests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Range statuses.
const (
	RangePending = "pending"
	RangeRunning = "running"
	RangeDone    = "done"
)

// Range is one planned range with its resume point: the last committed batch.
type Range struct {
	No        int
	TypeClass string
	Lower     []byte
	Upper     []byte
	Status    string
	ClaimedBy string
	Epoch     int

	// Progress: the last committed batch (Seq -1 when none).
	LastSeq   int
	ResumeID  []byte
	EndOffset int64
}

// SaveRanges records a collection's planned ranges once; a resume keeps the ranges it planned
// first, so work already committed keeps its boundaries.
func (s *Store) SaveRanges(ctx context.Context, runID, collection string, ranges []Range) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("collection %s: save ranges: %w", collection, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	for _, r := range ranges {
		if _, err := tx.Exec(ctx, `INSERT INTO convert.ranges (run_id, collection, range_no, type_class, lower, upper, status)
VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT DO NOTHING`, runID, collection, r.No, r.TypeClass, r.Lower, r.Upper); err != nil {
			return fmt.Errorf("collection %s: save range %d: %w", collection, r.No, err)
		}
	}
	return tx.Commit(ctx)
}

// Ranges reads a collection's ranges with their progress, in range order.
func (s *Store) Ranges(ctx context.Context, runID, collection string) ([]Range, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.range_no, r.type_class, r.lower, r.upper, r.status, coalesce(r.claimed_by, ''), r.claim_epoch,
coalesce(b.seq, -1), b.resume_id, coalesce(b.end_offset, 0)
FROM convert.ranges r
LEFT JOIN LATERAL (SELECT seq, resume_id, end_offset FROM convert.batches
    WHERE run_id = r.run_id AND collection = r.collection AND range_no = r.range_no ORDER BY seq DESC LIMIT 1) b ON true
WHERE r.run_id = $1 AND r.collection = $2 ORDER BY r.range_no`, runID, collection)
	if err != nil {
		return nil, fmt.Errorf("collection %s: ranges: %w", collection, err)
	}
	defer rows.Close()
	var out []Range
	for rows.Next() {
		var r Range
		if err := rows.Scan(&r.No, &r.TypeClass, &r.Lower, &r.Upper, &r.Status, &r.ClaimedBy, &r.Epoch, &r.LastSeq, &r.ResumeID, &r.EndOffset); err != nil {
			return nil, fmt.Errorf("collection %s: ranges: %w", collection, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkRangeDone records that every document of a range is committed.
func (s *Store) MarkRangeDone(ctx context.Context, runID, collection string, no int) error {
	_, err := s.pool.Exec(ctx, `UPDATE convert.ranges SET status = 'done' WHERE run_id = $1 AND collection = $2 AND range_no = $3`,
		runID, collection, no)
	if err != nil {
		return fmt.Errorf("collection %s: range %d done: %w", collection, no, err)
	}
	return nil
}

// Batch is one committed batch's manifest row.
type Batch struct {
	RunID        string
	Collection   string
	RangeNo      int
	Seq          int
	FirstID      *string
	LastID       *string
	ResumeID     []byte // BSON-encoded _id of the last document (live sources)
	StartOffset  *int64 // file sources: the span of the batch
	EndOffset    *int64
	Read         int
	Loaded       int
	Rejected     int
	Rows         map[string]int64
	Skipped      map[string]int64
	StringsFixed int
	Collapsed    int
	TableSums    TableSums
	Checksum     Digest
	// SourceDigest is the SHA-256 of the source BSON behind the batch (pipeline.Batch,
	// SourceDigest); SourceFile and SourceIdentity name the file read and its identity then
	// (file sources only).
	SourceDigest   []byte
	SourceFile     string
	SourceIdentity string
}

// RejectRow is one refused document.
type RejectRow struct {
	ID     *string
	Path   string
	Reason string
	Raw    []byte
}

// ErrBatchExists means the batch is already committed: a second writer lost a race.
var ErrBatchExists = errors.New("batch already committed")

// SafeText makes a value storable in a text column: a source _id or field name may hold NUL or
// invalid UTF-8, which PostgreSQL refuses, and a manifest row must never fail its batch. NUL
// becomes the two characters \0 and invalid bytes U+FFFD; the raw BSON keeps the original.
func SafeText(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\0`)
}

func safePtr(s *string) *string {
	if s == nil {
		return nil
	}
	v := SafeText(*s)
	return &v
}

// InsertBatch writes a batch's manifest row and its rejects in tx, the transaction that holds
// the batch's rows.
func InsertBatch(ctx context.Context, tx pgx.Tx, b *Batch, rejects []RejectRow) error {
	sums, err := EncodeTableSums(b.TableSums)
	if err != nil {
		return err
	}
	if b.Rows == nil {
		b.Rows = map[string]int64{}
	}
	if b.Skipped == nil {
		b.Skipped = map[string]int64{}
	}
	tag, err := tx.Exec(ctx, `INSERT INTO convert.batches (run_id, collection, range_no, seq, first_id, last_id, resume_id,
start_offset, end_offset, read, loaded, rows, rejected, skipped, strings_fixed, collapsed, table_sums, checksum,
source_digest, source_file, source_identity)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, nullif($20, ''), nullif($21, ''))
ON CONFLICT DO NOTHING`,
		b.RunID, b.Collection, b.RangeNo, b.Seq, safePtr(b.FirstID), safePtr(b.LastID), b.ResumeID, b.StartOffset, b.EndOffset,
		b.Read, b.Loaded, b.Rows, b.Rejected, b.Skipped, b.StringsFixed, b.Collapsed, sums, b.Checksum[:],
		b.SourceDigest, SafeText(b.SourceFile), b.SourceIdentity)
	if err != nil {
		return fmt.Errorf("collection %s: batch %d/%d manifest: %w", b.Collection, b.RangeNo, b.Seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("collection %s: batch %d/%d: %w", b.Collection, b.RangeNo, b.Seq, ErrBatchExists)
	}
	if len(rejects) == 0 {
		return nil
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"convert", "rejects"},
		[]string{"run_id", "collection", "range_no", "seq", "_id", "path", "reason", "raw"},
		pgx.CopyFromSlice(len(rejects), func(i int) ([]any, error) {
			r := rejects[i]
			return []any{b.RunID, b.Collection, b.RangeNo, b.Seq, safePtr(r.ID), SafeText(r.Path), SafeText(r.Reason), r.Raw}, nil
		}))
	if err != nil {
		return fmt.Errorf("collection %s: batch %d/%d rejects: %w", b.Collection, b.RangeNo, b.Seq, err)
	}
	if n != int64(len(rejects)) {
		return fmt.Errorf("collection %s: batch %d/%d rejects: wrote %d of %d", b.Collection, b.RangeNo, b.Seq, n, len(rejects))
	}
	return nil
}

// SourceBatch is what a resume re-reads and compares for one committed batch.
type SourceBatch struct {
	Seq            int
	FirstID        *string
	LastID         *string
	ResumeID       []byte
	StartOffset    *int64
	EndOffset      *int64
	Read           int
	SourceDigest   []byte // nil: committed before batches recorded it
	SourceFile     string
	SourceIdentity string
}

// SourceBatches lists a range's committed batches in order, with their source digests.
func (s *Store) SourceBatches(ctx context.Context, runID, collection string, rangeNo int) ([]SourceBatch, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, first_id, last_id, resume_id, start_offset, end_offset, read, source_digest,
coalesce(source_file, ''), coalesce(source_identity, '')
FROM convert.batches WHERE run_id = $1 AND collection = $2 AND range_no = $3 ORDER BY seq`, runID, collection, rangeNo)
	if err != nil {
		return nil, fmt.Errorf("collection %s: range %d: committed batches: %w", collection, rangeNo, err)
	}
	defer rows.Close()
	var out []SourceBatch
	for rows.Next() {
		var b SourceBatch
		if err := rows.Scan(&b.Seq, &b.FirstID, &b.LastID, &b.ResumeID, &b.StartOffset, &b.EndOffset, &b.Read, &b.SourceDigest,
			&b.SourceFile, &b.SourceIdentity); err != nil {
			return nil, fmt.Errorf("collection %s: range %d: committed batches: %w", collection, rangeNo, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("collection %s: range %d: committed batches: %w", collection, rangeNo, err)
	}
	return out, nil
}

// RejectIDs lists the _ids rejected in a run's collection (NULL ids as "").
func (s *Store) RejectIDs(ctx context.Context, runID, collection string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(_id, '') FROM convert.rejects WHERE run_id = $1 AND collection = $2 ORDER BY 1`, runID, collection)
	if err != nil {
		return nil, fmt.Errorf("collection %s: rejects: %w", collection, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// RejectReasons maps each rejected _id of a run's collection to its reason (NULL ids as "").
func (s *Store) RejectReasons(ctx context.Context, runID, collection string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(_id, ''), reason FROM convert.rejects WHERE run_id = $1 AND collection = $2`, runID, collection)
	if err != nil {
		return nil, fmt.Errorf("collection %s: rejects: %w", collection, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, reason string
		if err := rows.Scan(&id, &reason); err != nil {
			return nil, fmt.Errorf("collection %s: rejects: %w", collection, err)
		}
		out[id] = reason
	}
	return out, rows.Err()
}
