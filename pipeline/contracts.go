// Package pipeline owns the contracts between the stages of a conversion — Source, Transform,
// Sink — and the run loop that drives them. It imports none of their implementations: the
// command builds them and hands them in (see Deps).
//
// The formats the stages exchange (row encoding, checksums, ranges) are specified in
// ../shared/spec/mapping.md; this package points there rather than restating them.
package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Namespace names a source collection.
type Namespace struct {
	DB         string
	Collection string
}

func (n Namespace) String() string { return n.DB + "." + n.Collection }

// ErrNoCollection is returned by Source.Plan for a collection the source does not hold.
var ErrNoCollection = errors.New("collection not found in source")

// Range is a slice of a collection that one worker reads in order. Ranges are planned as values
// before any worker starts and depend only on the data, never on the worker count.
//
// A live range holds the documents whose _id has BSON type class TypeClass and lies in
// (Lower, Upper]; nil bounds are open. Bounds are BSON values encoded as one type byte followed
// by the value's bytes. A file range (TypeClass "") is a whole dump file or archive namespace.
type Range struct {
	No        int
	TypeClass string
	Lower     []byte
	Upper     []byte
}

// Cursor says where a scan starts: after the document with _id AfterID (live) or at byte
// Offset of the uncompressed stream (files). The zero Cursor starts at the range's beginning.
type Cursor struct {
	AfterID []byte // type byte + value bytes; nil = range start
	Offset  int64
}

// Position is where one document was read: its _id for live sources (nil when unreadable),
// its byte offsets for files. End is the Cursor.Offset that resumes after it.
type Position struct {
	ID    []byte
	Start int64
	End   int64
}

// CollectionPlan is what Source.Plan learns about a collection before it is read.
type CollectionPlan struct {
	// Count is the number of documents, or -1 where only a full read can tell (dump files).
	Count int64
	// Bytes is the source size where known (file size, collStats), else 0.
	Bytes  int64
	Ranges []Range
}

// Source reads documents. Implementations must be safe for concurrent Scans of different ranges.
type Source interface {
	// Kind is "mongodb", "dump" or "archive".
	Kind() string
	// Fingerprint identifies the source without credentials (host list and database names, or
	// the dump's absolute path); a resume and a join must see the same one.
	Fingerprint() string
	// Collections lists the collections (views and system collections included) of db.
	Collections(ctx context.Context, db string) ([]string, error)
	// Plan splits a collection into ranges, or returns ErrNoCollection.
	Plan(ctx context.Context, ns Namespace) (CollectionPlan, error)
	// Scan calls fn for each document of r in order, starting at from. doc is only valid during
	// the call. A document whose frame is intact but whose content breaks the BSON spec is still
	// delivered (the caller validates strictly and rejects it); a broken frame ends the scan with
	// a *CorruptError after every document before it was delivered. Scan returns fn's error as is.
	Scan(ctx context.Context, ns Namespace, r Range, from Cursor, fn func(doc bson.Raw, pos Position) error) error
	Close(ctx context.Context) error
}

// FileSource is implemented by sources that read files (dump directories, archives). File
// names the file behind a collection and its identity now (size, modification time): batches
// record both, so that a resume refused over a changed file can say what changed.
type FileSource interface {
	File(ns Namespace) (path, identity string, err error)
}

// CorruptError reports a broken frame in a file source: the run stops with exit code 1.
type CorruptError struct {
	File   string
	Offset int64
	What   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt input %s at byte %d: %s", e.File, e.Offset, e.What)
}

// FileRange is a span of a dump file, [start, end) in bytes of the uncompressed stream; end -1
// means to the end of the file. Plain files are split into such spans at document boundaries
// so that several workers can read one large collection; the spans depend on the file alone.
func FileRange(no int, start, end int64) Range {
	r := Range{No: no, Lower: binary.BigEndian.AppendUint64(nil, uint64(start))}
	if end >= 0 {
		r.Upper = binary.BigEndian.AppendUint64(nil, uint64(end))
	}
	return r
}

// FileSpan returns a file range's bounds (0 and -1 for a whole-file range).
func FileSpan(r Range) (start, end int64) {
	end = -1
	if len(r.Lower) == 8 {
		start = int64(binary.BigEndian.Uint64(r.Lower))
	}
	if len(r.Upper) == 8 {
		end = int64(binary.BigEndian.Uint64(r.Upper))
	}
	return start, end
}
