package pipeline

import "context"

// BatchDoc is one source document of a batch.
type BatchDoc struct {
	// Start and End locate the document's BSON, exactly as read, in Batch.Raw.
	Start, End int
	// ID is the canonical _id (nil when unreadable).
	ID *string
	// Reject is set when the transform (or the strict reader) refused the document.
	Reject *Reject
	// Skip is the skip reason, when the document is left out on purpose.
	Skip string
}

// Batch is a run of consecutive documents of one range, transformed, waiting to be committed
// with its manifest row. A batch closes at the batch size or at 8 MiB of source BSON.
type Batch struct {
	RunID      string
	Collection string
	RangeNo    int
	Seq        int
	Tables     []Table

	Raw  []byte
	Docs []BatchDoc
	Rows RowBuffer

	// Resume point after this batch: the last document's _id (live) or the end offset (files).
	FirstID, LastID *string
	ResumeID        []byte
	StartOffset     int64
	EndOffset       int64
	File            bool

	StringsFixed int
	Collapsed    int

	// SourceDigest is what a resume compares before it reads on (see sourceDigest), set when
	// the batch is handed to the sink. SourceFile and SourceIdentity name the file read and its
	// identity then (file sources that tell them: FileSource).
	SourceDigest   [32]byte
	SourceFile     string
	SourceIdentity string

	// Claim, when set, makes the commit conditional on the range still being claimed by this
	// worker at this epoch (job mode).
	Claim *Claim
	// Delta makes the commit upsert rows and record their keys (run --delta): rows the run
	// does not produce are deleted when the collection completes.
	Delta bool
}

// Claim identifies a worker's hold on a range.
type Claim struct {
	Worker string
	Epoch  int
}

// Reset empties the batch for reuse, keeping its memory.
func (b *Batch) Reset() {
	b.Raw = b.Raw[:0]
	b.Docs = b.Docs[:0]
	b.Rows.Reset()
	b.FirstID, b.LastID, b.ResumeID = nil, nil, nil
	b.StartOffset, b.EndOffset = 0, 0
	b.StringsFixed, b.Collapsed = 0, 0
	b.SourceDigest, b.SourceFile, b.SourceIdentity = [32]byte{}, "", ""
	b.Claim = nil
	b.Delta = false
}

// Committed is what a Sink wrote for a batch.
type Committed struct {
	Read     int
	Loaded   int
	Rejected int
	Skipped  map[string]int64
	Rows     map[string]int64
	// LoadRejects are documents the database refused (constraint, encoding): isolated and
	// rejected with PostgreSQL's message while the rest of the batch loaded.
	LoadRejects int
}

// Sink commits batches. Commit writes the batch's rows, its manifest row and its rejects in one
// transaction: after it returns nil, all of them are durable; after an error, none is. One bad
// row never fails the batch: the sink isolates it and rejects its document.
type Sink interface {
	Commit(ctx context.Context, b *Batch) (Committed, error)
}
