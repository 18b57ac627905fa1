package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

	"github.com/stellaops/convert/manifests"
)

// A resume proves that the source behind every committed batch is unchanged before it reads
// on (cli.md, "Runs, resume, replace"): otherwise a replaced dump file is read on at a byte
// offset that means nothing in it, and a live document changed behind the resume point keeps
// its old rows, and the result is a mix of two sources that no clean run would give.
//
// Each batch records sourceDigest of what it read. The proof re-reads the committed part of
// every range of the collections the resume continues (done ranges included; completed
// collections are final and not re-read) and compares batch by batch. It costs one read of the
// committed part, on resume only: a new run has nothing committed, and ranges this process
// already proved or started are not proved again when a transient failure restarts them.

// sourceDigest is the SHA-256 a batch records of the source behind it.
//
// For files it covers every document's bytes as read (raw is exactly their concatenation): a
// file is a fixed snapshot, and any change in the committed part means another file. For live
// sources it covers the documents the transform did not skip: the tier rules leave out old or
// superseded documents on purpose, and a live source may keep changing those without changing
// the result (mapping.md); a document changed, inserted or deleted among the others changes it.
func sourceDigest(raw []byte, docs []BatchDoc, file bool) [32]byte {
	if file {
		return sha256.Sum256(raw)
	}
	h := sha256.New()
	for _, d := range docs {
		if d.Skip == "" {
			h.Write(raw[d.Start:d.End])
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SourceChangedError: a resume found the source behind committed batches changed (exit code
// 2, decided before any data is written). Reading on would mix two versions of the source.
type SourceChangedError struct {
	Collection string
	RangeNo    int
	Seq        int
	// File sources: the file and the batch's byte span [Start, End) of its uncompressed
	// stream, with the file's identity when the batch was committed and now.
	File       string
	Start, End int64
	Was, Now   string
	FirstID    string // live sources: the batch's _id range
	LastID     string
	What       string
	file       bool
}

func (e *SourceChangedError) Error() string {
	var where string
	if e.file {
		where = fmt.Sprintf("bytes %d to %d", e.Start, e.End)
		if e.File != "" {
			where = fmt.Sprintf("file %s, %s", e.File, where)
		}
		if e.Was != "" && e.Now != "" {
			where += fmt.Sprintf(" (when committed: %s; now: %s)", e.Was, e.Now)
		}
	} else {
		where = fmt.Sprintf("documents with _id from %s to %s", e.FirstID, e.LastID)
	}
	return fmt.Sprintf("cannot resume collection %s: the source changed behind its committed rows: %s (range %d, batch %d): %s; "+
		"reading on would mix two versions of the source: convert it again with --replace", e.Collection, where, e.RangeNo, e.Seq, e.What)
}

// proveCollection proves every range of a collection that has committed batches, before any
// range reads on; the ranges are re-read in parallel, as many at once as there are workers.
func (r *runner) proveCollection(ctx context.Context, job CollectionJob, ranges []manifests.Range) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.o.Workers)
	for _, rg := range ranges {
		key := job.Name + "\x00" + strconv.Itoa(rg.No)
		if _, done := r.proven.Load(key); done {
			continue
		}
		g.Go(func() error {
			if rg.LastSeq >= 0 {
				err := r.retry(gctx, job.Name, rg.No, func() error { return r.proveRange(gctx, job, rg) }, nil)
				if err != nil {
					return err
				}
			}
			// From here on the range's committed batches are this process's own work.
			r.proven.Store(key, true)
			return nil
		})
	}
	return g.Wait()
}

// proveRange re-reads the committed part of one range and compares it with its batches.
func (r *runner) proveRange(ctx context.Context, job CollectionJob, rg manifests.Range) error {
	batches, err := r.d.Store.SourceBatches(ctx, r.run.ID, job.Name, rg.No)
	if err != nil {
		return err
	}
	if len(batches) == 0 {
		return nil
	}
	for _, b := range batches {
		if b.SourceDigest == nil {
			r.log.Warn("committed batches of this range predate source digests: the resume cannot prove its source unchanged",
				"collection", job.Name, "range", rg.No)
			return nil
		}
	}
	pr := Range{No: rg.No, TypeClass: rg.TypeClass, Lower: rg.Lower, Upper: rg.Upper}
	if rg.TypeClass == "" {
		err = r.proveFile(ctx, job, pr, batches)
	} else {
		err = r.proveLive(ctx, job, pr, batches)
	}
	if err == nil {
		r.log.Info("resume: the source behind the committed batches is unchanged", "collection", job.Name, "range", rg.No, "batches", len(batches))
	}
	return err
}

// errProven ends a proof's scan at the end of the committed part.
var errProven = errors.New("committed part proven")

// proveFile reads a file range from its start to the end of its last committed batch in one
// scan: each batch's documents must end exactly at its end offset, be as many as it read, and
// hash to its digest. What follows the committed part is not read here (a tail repaired since
// resumes normally).
func (r *runner) proveFile(ctx context.Context, job CollectionJob, pr Range, batches []manifests.SourceBatch) error {
	var now string
	if fs, ok := r.d.Source.(FileSource); ok {
		_, now, _ = fs.File(job.NS) // for the message only; the scan below reports a missing file
	}
	changed := func(b manifests.SourceBatch, what string) error {
		e := &SourceChangedError{Collection: job.Name, RangeNo: pr.No, Seq: b.Seq, File: b.SourceFile, Was: b.SourceIdentity, Now: now,
			What: what, file: true}
		if b.StartOffset != nil && b.EndOffset != nil {
			e.Start, e.End = *b.StartOffset, *b.EndOffset
		}
		return e
	}
	for _, b := range batches {
		if b.StartOffset == nil || b.EndOffset == nil {
			return fmt.Errorf("collection %s: range %d: batch %d has no byte offsets", job.Name, pr.No, b.Seq)
		}
	}
	start, _ := FileSpan(pr)
	bi, n := 0, 0
	h := sha256.New()
	var sum [32]byte
	err := r.d.Source.Scan(ctx, job.NS, pr, Cursor{Offset: start}, func(doc bson.Raw, pos Position) error {
		b := batches[bi]
		if pos.End > *b.EndOffset {
			return changed(b, fmt.Sprintf("a document at bytes %d to %d runs past the batch's end", pos.Start, pos.End))
		}
		h.Write(doc)
		n++
		if pos.End < *b.EndOffset {
			return nil
		}
		if n != b.Read {
			return changed(b, fmt.Sprintf("%d documents where the batch read %d", n, b.Read))
		}
		if !bytes.Equal(h.Sum(sum[:0]), b.SourceDigest) {
			return changed(b, "its documents' bytes differ from those committed")
		}
		bi, n = bi+1, 0
		h.Reset()
		if bi == len(batches) {
			return errProven
		}
		return nil
	})
	var ce *CorruptError
	switch {
	case errors.Is(err, errProven):
		return nil
	case errors.As(err, new(*SourceChangedError)):
		return err
	case errors.As(err, &ce):
		// The committed batches were read whole, so a broken frame inside them is a change.
		return changed(batches[bi], fmt.Sprintf("the file is now corrupt at byte %d: %s", ce.Offset, ce.What))
	case err != nil:
		return fmt.Errorf("collection %s: range %d: re-read the committed part: %w", job.Name, pr.No, err)
	}
	return changed(batches[bi], "the file ends before the batch's end")
}

// proveLive re-reads the committed part of a live range, with the transform deciding again
// which documents the tier rules skip, and compares the digest of the others batch by batch.
// One cursor over the committed part serves when every batch's last _id is still there; where
// it is not, or a digest differs, each batch is read again by its own _id bounds, which decides
// (a deleted boundary document the tier rules skip changes nothing).
func (r *runner) proveLive(ctx context.Context, job CollectionJob, pr Range, batches []manifests.SourceBatch) error {
	for _, b := range batches {
		if b.ResumeID == nil {
			return fmt.Errorf("collection %s: range %d: batch %d has no resume _id", job.Name, pr.No, b.Seq)
		}
	}
	var rows RowBuffer
	h := sha256.New()
	var sum [32]byte
	hash := func(doc bson.Raw) {
		rows.Reset()
		rows.SetDoc(0)
		if v := job.Transform.Apply(doc, &rows); v.Skip == "" {
			h.Write(doc)
		}
	}

	bi := 0
	errDiffers := errors.New("differs")
	whole := Range{No: pr.No, TypeClass: pr.TypeClass, Lower: pr.Lower, Upper: batches[len(batches)-1].ResumeID}
	err := r.d.Source.Scan(ctx, job.NS, whole, Cursor{}, func(doc bson.Raw, pos Position) error {
		if bi == len(batches) { // past the last _id, which bounds the scan: let each batch decide
			bi = 0
			return errDiffers
		}
		hash(doc)
		if !bytes.Equal(pos.ID, batches[bi].ResumeID) {
			return nil
		}
		if !bytes.Equal(h.Sum(sum[:0]), batches[bi].SourceDigest) {
			return errDiffers
		}
		bi++
		h.Reset()
		return nil
	})
	switch {
	case err == nil && bi == len(batches):
		return nil
	case err != nil && !errors.Is(err, errDiffers):
		return fmt.Errorf("collection %s: range %d: re-read the committed part: %w", job.Name, pr.No, err)
	}

	lower := pr.Lower
	if bi > 0 {
		lower = batches[bi-1].ResumeID
	}
	for _, b := range batches[bi:] {
		h.Reset()
		span := Range{No: pr.No, TypeClass: pr.TypeClass, Lower: lower, Upper: b.ResumeID}
		err := r.d.Source.Scan(ctx, job.NS, span, Cursor{}, func(doc bson.Raw, _ Position) error {
			hash(doc)
			return nil
		})
		if err != nil {
			return fmt.Errorf("collection %s: range %d: re-read committed batch %d: %w", job.Name, pr.No, b.Seq, err)
		}
		if !bytes.Equal(h.Sum(sum[:0]), b.SourceDigest) {
			e := &SourceChangedError{Collection: job.Name, RangeNo: pr.No, Seq: b.Seq,
				What: "a document the tier rules do not skip was changed, inserted or deleted since the batch was committed"}
			if b.FirstID != nil {
				e.FirstID = *b.FirstID
			}
			if b.LastID != nil {
				e.LastID = *b.LastID
			}
			return e
		}
		lower = b.ResumeID
	}
	return nil
}
