// Package load writes batches into PostgreSQL with binary COPY (pipeline.Sink), each batch in
// one transaction with its manifest row and rejects, and prepares target tables.
//
// The COPY stream is derived from the rows' checksum encoding (pipeline.RowBuffer), so the bytes
// hashed are the bytes sent: no reflection and no second encoding on the hot path.
//
// One bad row never fails a batch. The first COPY runs without savepoints; when PostgreSQL
// refuses a row (data exception, constraint violation), the transaction is rolled back and the
// batch is retried in a new one, bisecting the documents under savepoints until each refused
// document is isolated and rejected with PostgreSQL's SQLSTATE and message.
package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
)

// Sink is the PostgreSQL sink.
type Sink struct {
	pool *pgxpool.Pool
	// bufs keeps COPY buffers between commits: a batch's stream is megabytes, and building it
	// afresh per commit was most of the tool's allocation (and of its peak RSS).
	bufs *pipeline.FreeList[[]byte]
}

var _ pipeline.Sink = (*Sink)(nil)

// NewSink writes through pool.
func NewSink(pool *pgxpool.Pool) *Sink {
	return &Sink{pool: pool, bufs: pipeline.NewFreeList[[]byte](maxKeptBuffers)}
}

// maxKeptBuffers bounds the COPY buffers kept between commits; only as many exist as commits
// ran at once (one per worker).
const maxKeptBuffers = 64

// ErrClaimLost means the batch's range was reclaimed by another worker: nothing was written.
var ErrClaimLost = manifests.ErrClaimLost

// batchState is the per-commit working set.
type batchState struct {
	b        *pipeline.Batch
	digests  []manifests.Digest
	refused  map[int]string // doc index → reason
	copyBuf  []byte
	colsByTb [][]pipeline.Column
}

// Commit implements pipeline.Sink.
func (s *Sink) Commit(ctx context.Context, b *pipeline.Batch) (pipeline.Committed, error) {
	st := &batchState{b: b, refused: map[int]string{}}
	if buf, ok := s.bufs.Get(); ok {
		st.copyBuf = buf[:0]
	}
	defer func() { s.bufs.Put(st.copyBuf) }()
	st.colsByTb = make([][]pipeline.Column, len(b.Tables))
	for i, t := range b.Tables {
		st.colsByTb[i] = t.Written()
	}
	st.digests = make([]manifests.Digest, len(b.Rows.Rows))
	names := make([]string, len(b.Tables))
	for i, t := range b.Tables {
		names[i] = t.FullName()
	}
	for i, r := range b.Rows.Rows {
		st.digests[i] = manifests.RowDigest(names[r.Table], b.Rows.RowBytes(r))
	}
	var live []int
	for i, d := range b.Docs {
		if d.Reject == nil && d.Skip == "" {
			live = append(live, i)
		}
	}

	// Fast path: everything in one go.
	committed, err := s.attempt(ctx, st, live, false)
	if err == nil {
		return committed, nil
	}
	if !isRowError(err) {
		return pipeline.Committed{}, err
	}
	// Slow path: isolate the refused documents.
	return s.attempt(ctx, st, live, true)
}

func (s *Sink) attempt(ctx context.Context, st *batchState, live []int, isolate bool) (pipeline.Committed, error) {
	b := st.b
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return pipeline.Committed{}, fmt.Errorf("collection %s: begin: %w", b.Collection, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	if b.Claim != nil {
		if err := checkClaim(ctx, tx, b); err != nil {
			return pipeline.Committed{}, err
		}
	}
	clear(st.refused)
	if isolate {
		if err := s.isolate(ctx, tx, st, live, 0); err != nil {
			return pipeline.Committed{}, err
		}
	} else if err := s.copyDocs(ctx, tx, st, live); err != nil {
		return pipeline.Committed{}, err
	}

	// Manifest row: counts, sums and checksum over the rows actually loaded.
	mb := &manifests.Batch{
		RunID: b.RunID, Collection: b.Collection, RangeNo: b.RangeNo, Seq: b.Seq,
		FirstID: b.FirstID, LastID: b.LastID, ResumeID: b.ResumeID,
		Read: len(b.Docs), Rows: map[string]int64{}, Skipped: map[string]int64{},
		StringsFixed: b.StringsFixed, Collapsed: b.Collapsed, TableSums: manifests.TableSums{},
		SourceDigest: b.SourceDigest[:], SourceFile: b.SourceFile, SourceIdentity: b.SourceIdentity,
	}
	if b.File {
		so, eo := b.StartOffset, b.EndOffset
		mb.StartOffset, mb.EndOffset = &so, &eo
	}
	for _, t := range b.Tables {
		if !t.Derived {
			mb.Rows[t.FullName()] = 0
		}
	}
	h := sha256.New()
	for i, r := range b.Rows.Rows {
		d := b.Docs[r.Doc]
		if d.Reject != nil || d.Skip != "" || b.Tables[r.Table].Derived {
			continue
		}
		if _, bad := st.refused[r.Doc]; bad {
			continue
		}
		name := b.Tables[r.Table].FullName()
		mb.Rows[name]++
		ts := mb.TableSums[name]
		ts.Add(st.digests[i])
		mb.TableSums[name] = ts
		h.Write(st.digests[i][:])
	}
	h.Sum(mb.Checksum[:0])
	var rejects []manifests.RejectRow
	loadRejects := 0
	for i, d := range b.Docs {
		switch {
		case d.Skip != "":
			mb.Skipped[d.Skip]++
		case d.Reject != nil:
			rejects = append(rejects, manifests.RejectRow{ID: d.Reject.ID, Path: d.Reject.Path, Reason: d.Reject.Reason, Raw: b.Raw[d.Start:d.End]})
		default:
			if reason, bad := st.refused[i]; bad {
				loadRejects++
				rejects = append(rejects, manifests.RejectRow{ID: d.ID, Reason: reason, Raw: b.Raw[d.Start:d.End]})
				continue
			}
			mb.Loaded++
		}
	}
	mb.Rejected = len(rejects)
	if err := manifests.InsertBatch(ctx, tx, mb, rejects); err != nil {
		return pipeline.Committed{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return pipeline.Committed{}, fmt.Errorf("collection %s: batch %d/%d: commit: %w", b.Collection, b.RangeNo, b.Seq, err)
	}
	return pipeline.Committed{Read: mb.Read, Loaded: mb.Loaded, Rejected: mb.Rejected, Skipped: mb.Skipped, Rows: mb.Rows, LoadRejects: loadRejects}, nil
}

func checkClaim(ctx context.Context, tx pgx.Tx, b *pipeline.Batch) error {
	var worker string
	var epoch int
	err := tx.QueryRow(ctx, `SELECT coalesce(claimed_by, ''), claim_epoch FROM convert.ranges
WHERE run_id = $1 AND collection = $2 AND range_no = $3 FOR UPDATE`, b.RunID, b.Collection, b.RangeNo).Scan(&worker, &epoch)
	if err != nil {
		return fmt.Errorf("collection %s: range %d: check claim: %w", b.Collection, b.RangeNo, err)
	}
	if worker != b.Claim.Worker || epoch != b.Claim.Epoch {
		return fmt.Errorf("collection %s: range %d: %w", b.Collection, b.RangeNo, ErrClaimLost)
	}
	return nil
}

// isolate loads docs, bisecting under savepoints until each document PostgreSQL refuses is
// alone and recorded in st.refused.
func (s *Sink) isolate(ctx context.Context, tx pgx.Tx, st *batchState, docs []int, depth int) error {
	if len(docs) == 0 {
		return nil
	}
	sp := fmt.Sprintf("iso_%d", depth)
	if _, err := tx.Exec(ctx, "SAVEPOINT "+sp); err != nil {
		return fmt.Errorf("collection %s: savepoint: %w", st.b.Collection, err)
	}
	err := s.copyDocs(ctx, tx, st, docs)
	if err == nil {
		_, err = tx.Exec(ctx, "RELEASE SAVEPOINT "+sp)
		return err
	}
	if !isRowError(err) {
		return err
	}
	if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp); rbErr != nil {
		return fmt.Errorf("collection %s: rollback to savepoint: %w", st.b.Collection, rbErr)
	}
	if _, rbErr := tx.Exec(ctx, "RELEASE SAVEPOINT "+sp); rbErr != nil {
		return fmt.Errorf("collection %s: release savepoint: %w", st.b.Collection, rbErr)
	}
	if len(docs) == 1 {
		st.refused[docs[0]] = refusalReason(err)
		return nil
	}
	mid := len(docs) / 2
	if err := s.isolate(ctx, tx, st, docs[:mid], depth+1); err != nil {
		return err
	}
	return s.isolate(ctx, tx, st, docs[mid:], depth+1)
}

// copyDocs COPYs the rows of docs, table by table in the transform's order (parents first).
func (s *Sink) copyDocs(ctx context.Context, tx pgx.Tx, st *batchState, docs []int) error {
	if len(docs) == 0 {
		return nil
	}
	b := st.b
	want := make(map[int]bool, len(docs))
	for _, d := range docs {
		want[d] = true
	}
	for ti, t := range b.Tables {
		cols := st.colsByTb[ti]
		buf := append(st.copyBuf[:0], copyHeader...)
		n := 0
		for _, r := range b.Rows.Rows {
			if r.Table != ti || !want[r.Doc] {
				continue
			}
			var err error
			buf, err = appendCopyRow(buf, cols, b.Rows.RowBytes(r))
			if err != nil {
				id := "<unreadable>"
				if b.Docs[r.Doc].ID != nil {
					id = *b.Docs[r.Doc].ID
				}
				return fmt.Errorf("collection %s, _id %s, table %s: %w", b.Collection, id, t.FullName(), err)
			}
			n++
		}
		buf = append(buf, 0xFF, 0xFF)
		st.copyBuf = buf
		if n == 0 {
			continue
		}
		if t.Derived {
			if err := copyDerived(ctx, tx, t, cols, buf, n); err != nil {
				return fmt.Errorf("collection %s: %w", b.Collection, err)
			}
			if err := stageDerived(ctx, tx, b, ti, want); err != nil {
				return err
			}
			continue
		}
		if b.Delta {
			if err := upsert(ctx, tx, b.RunID, t, cols, buf, n); err != nil {
				return fmt.Errorf("collection %s: %w", b.Collection, err)
			}
			if err := recordKeys(ctx, tx, b, ti, want); err != nil {
				return err
			}
			continue
		}
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), copySQL(t, cols))
		if err != nil {
			return fmt.Errorf("collection %s: copy into %s: %w", b.Collection, t.FullName(), err)
		}
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("collection %s: copy into %s wrote %d of %d rows", b.Collection, t.FullName(), tag.RowsAffected(), n)
		}
	}
	return nil
}

// copyDerived loads derived rows through a temporary table, then inserts them with the table's
// conflict action: several documents, batches and workers produce the same derived row.
func copyDerived(ctx context.Context, tx pgx.Tx, t pipeline.Table, cols []pipeline.Column, buf []byte, n int) error {
	tmp := tempName("convert_derived_", t)
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pipeline.QuoteIdent(c.Name)
	}
	list := strings.Join(names, ", ")
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+tmp+` AS SELECT `+list+` FROM `+t.Ident()+` WITH NO DATA`); err != nil {
		return fmt.Errorf("derived %s: %w", t.FullName(), err)
	}
	if _, err := tx.Exec(ctx, `TRUNCATE `+tmp); err != nil {
		return fmt.Errorf("derived %s: %w", t.FullName(), err)
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY "+tmp+" ("+list+") FROM STDIN (FORMAT binary)")
	if err != nil {
		return fmt.Errorf("derived %s: copy: %w", t.FullName(), err)
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("derived %s: copy wrote %d of %d rows", t.FullName(), tag.RowsAffected(), n)
	}
	action := t.ConflictAction()
	// Rows sharing the conflict key within the batch are folded first, keeping the least by
	// the other columns: ON CONFLICT cannot touch one row twice in a single statement.
	key := list
	if len(t.ConflictKey) > 0 {
		ks := make([]string, len(t.ConflictKey))
		for i, k := range t.ConflictKey {
			ks[i] = pipeline.QuoteIdent(k)
		}
		key = strings.Join(ks, ", ")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+t.Ident()+` (`+list+`) SELECT DISTINCT ON (`+key+`) `+list+` FROM `+tmp+
		` ORDER BY `+key+`, `+list+` ON CONFLICT `+action); err != nil {
		return fmt.Errorf("derived %s: insert: %w", t.FullName(), err)
	}
	return nil
}

func copySQL(t pipeline.Table, cols []pipeline.Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pipeline.QuoteIdent(c.Name)
	}
	return "COPY " + t.Ident() + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
}

// isRowError tells a refusal caused by a row's content (which isolation can pin on a document)
// from anything else.
func isRowError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// refusalReason names what failed without PostgreSQL's DETAIL, which can hold column values.
func refusalReason(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	var where []string
	if pe.TableName != "" {
		where = append(where, "table "+pe.TableName)
	}
	if pe.ColumnName != "" {
		where = append(where, "column "+pe.ColumnName)
	}
	if pe.ConstraintName != "" {
		where = append(where, "constraint "+pe.ConstraintName)
	}
	prefix := "database refused the row"
	if len(where) > 0 {
		prefix += " (" + strings.Join(where, ", ") + ")"
	}
	return fmt.Sprintf("%s: SQLSTATE %s: %s", prefix, pe.Code, pe.Message)
}
