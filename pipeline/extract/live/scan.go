package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/stellaops/convert/pipeline"
)

// Reply sizing (mapping.md, Ranges and order). MongoDB caps a reply at 16 MiB whatever the
// batch size; FerretDB and other compatible servers answer the whole batch, and the driver
// refuses a reply above 48 MB outright. So the batch is sized in bytes from the average
// document: replyBytes is half of MongoDB's cap, which leaves room for documents above the
// average before a reply reaches 16 MiB, and bounds what one cursor holds in memory.
const (
	replyBytes = 8 << 20
	// maxReplyDocs bounds a reply of small documents (the batch size the tool always used).
	maxReplyDocs = 1000
	// probeDocs is the first reply's size when the server gives no average document size:
	// one document, which stays under 16 MiB whatever its size and then sizes the next reply.
	probeDocs = 1
	// pingTimeout bounds the check that the server answers before a failed request is asked
	// again.
	pingTimeout = 10 * time.Second
)

// batchSizer chooses the number of documents per reply from the average document size:
// collStats' before the first reply, then the larger of it and the average read so far.
type batchSizer struct {
	statsAvg          int64
	seenDocs, seenLen int64
	// limit caps the size after a reply was refused as too large (0: none).
	limit int32
}

func (b *batchSizer) observe(n int) { b.seenDocs++; b.seenLen += int64(n) }

func (b *batchSizer) size() int32 {
	avg := b.statsAvg
	if b.seenDocs > 0 {
		avg = max(avg, b.seenLen/b.seenDocs)
	}
	n := int32(probeDocs)
	if avg > 0 {
		n = int32(min(int64(maxReplyDocs), max(1, replyBytes/avg)))
	}
	if b.limit > 0 {
		n = min(n, b.limit)
	}
	return n
}

// ReadError: reading a range failed for good. The same request failed twice in the same way
// while the server answered, or the driver refused a reply of a single document as too large.
// It keeps the server's words as text and unwraps to nothing, so that no caller's transient
// test takes the driver's error inside for a passing network fault and asks again.
type ReadError struct {
	NS    string
	Range string // the range's number and bounds, e.g. "3 (number _ids in (5, 100])"
	After string // the last _id delivered before the request, "" at the range's start
	Batch int32  // documents per reply asked
	// Repeated: the error repeated identically; otherwise one document's reply was too large.
	Repeated bool
	Server   string
}

func (e *ReadError) Error() string {
	at := "from its start"
	if e.After != "" {
		at = "after _id " + e.After
	}
	why := "the same error twice on the same request while the server answers: not transient"
	if !e.Repeated {
		why = "a reply of one document is larger than the driver accepts"
	}
	return fmt.Sprintf("%s range %s: reading %s (%d documents a reply): %s: %s", e.NS, e.Range, at, e.Batch, e.Server, why)
}

// errReplyTooLarge is the text of the driver's unexported error for a reply above its message
// size limit (x/mongo/driver/topology: errResponseTooLarge). The driver labels it a network
// error, yet asking again for the same batch gets the same reply; only its text tells it from a
// broken connection.
const errReplyTooLarge = "length of read message too large"

// IsReplyTooLarge tells the driver's refusal of a reply above its message size limit.
func IsReplyTooLarge(err error) bool {
	var ce topology.ConnectionError
	return errors.As(err, &ce) && ce.Wrapped != nil && ce.Wrapped.Error() == errReplyTooLarge
}

// signature is what makes two failures of a request the same: the innermost error's text,
// which leaves out what changes from attempt to attempt (connection numbers, wrapping).
func signature(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// isNaN tells a numeric NaN _id: it never matches $gt or $lte, so it is read by equality.
func isNaN(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		return ok && math.IsNaN(f)
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		return ok && d.IsNaN()
	}
	return false
}

// isEquality tells a range of one _id value (both bounds equal): NaN _ids are planned so.
func isEquality(r pipeline.Range) bool {
	return r.Lower != nil && bytes.Equal(r.Lower, r.Upper)
}

// rangeFilter is the query reading range r after the _id after (nil: from the range's start).
// A number range without a lower bound starts at -Infinity, which leaves out NaN (it sorts
// before every number but matches no comparison): NaN _ids are a range of their own, read by
// equality. A resume after a NaN _id in a number range planned before NaN ranges existed
// continues with every number.
func rangeFilter(r pipeline.Range, after []byte) (bson.D, error) {
	if isEquality(r) {
		v, err := DecodeID(r.Lower)
		if err != nil {
			return nil, err
		}
		return bson.D{{Key: "_id", Value: v}}, nil
	}
	cond := bson.D{{Key: "$type", Value: r.TypeClass}}
	lower := r.Lower
	if after != nil {
		lower = after
	}
	if lower != nil {
		v, err := DecodeID(lower)
		if err != nil {
			return nil, err
		}
		if isNaN(v) {
			lower = nil
		} else {
			cond = append(cond, bson.E{Key: "$gt", Value: v})
		}
	}
	if lower == nil && r.TypeClass == "number" {
		cond = append(cond, bson.E{Key: "$gte", Value: math.Inf(-1)})
	}
	if r.Upper != nil {
		v, err := DecodeID(r.Upper)
		if err != nil {
			return nil, err
		}
		cond = append(cond, bson.E{Key: "$lte", Value: v})
	}
	return bson.D{{Key: "_id", Value: cond}}, nil
}

// describe names a range and its bounds for messages.
func describe(r pipeline.Range) string {
	if isEquality(r) {
		return fmt.Sprintf("%d (_id %s)", r.No, idText(r.Lower))
	}
	lo, hi := "", ""
	if r.Lower != nil {
		lo = idText(r.Lower)
	}
	if r.Upper != nil {
		hi = idText(r.Upper)
	}
	return fmt.Sprintf("%d (%s _ids in (%s, %s])", r.No, r.TypeClass, lo, hi)
}

func idText(b []byte) string {
	v, err := DecodeID(b)
	if err != nil {
		return fmt.Sprintf("<%x>", b)
	}
	return v.String()
}

// Scan implements pipeline.Source. It reads the range with as few cursors as it can: one,
// unless a reply is refused as too large (then it asks again after the last document delivered
// with half the batch, down to one document) or a request fails while the server still answers
// (then it asks once more; the same failure again ends the scan with a *ReadError).
func (s *Source) Scan(ctx context.Context, ns pipeline.Namespace, r pipeline.Range, from pipeline.Cursor, fn func(bson.Raw, pipeline.Position) error) error {
	avg, err := s.srv.avgObjSize(ctx, ns)
	if err != nil {
		avg = 0 // the first reply's documents tell the size instead
	}
	rd := rangeRead{s: s, ns: ns, fn: fn, after: from.AfterID, sizer: batchSizer{statsAvg: avg}}
	// failed is the last request that failed and was asked again: the same request (same
	// start, same batch) failing with the same error is not transient.
	var failed *request
	for {
		// An equality range holds one _id value: once delivered, it is done.
		if isEquality(r) && rd.after != nil {
			return nil
		}
		filter, err := rangeFilter(r, rd.after)
		if err != nil {
			return fmt.Errorf("%s range %d: %w", ns, r.No, err)
		}
		req, err := rd.read(ctx, filter)
		if errors.Is(err, errFn) {
			return rd.fnErr
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s range %d: read: %w", ns, r.No, err)
		}
		if IsReplyTooLarge(err) {
			if req.batch <= 1 {
				return &ReadError{NS: ns.String(), Range: describe(r), After: afterText(req.after), Batch: req.batch, Server: err.Error()}
			}
			rd.sizer.limit = req.batch / 2
			failed = nil
			continue
		}
		req.sig = signature(err)
		if failed != nil && bytes.Equal(failed.after, req.after) && failed.batch == req.batch && failed.sig == req.sig {
			return &ReadError{NS: ns.String(), Range: describe(r), After: afterText(req.after), Batch: req.batch, Repeated: true, Server: err.Error()}
		}
		if !IsTransient(err) || !s.answers(ctx) {
			// Permanent errors stop the run; while the server does not answer, the caller
			// retries with backoff from the last committed batch.
			return fmt.Errorf("%s range %d: read: %w", ns, r.No, err)
		}
		failed = &req
	}
}

// request is one request to the server: a find or a getMore, identified by the _id it reads
// after and the batch it asks for; sig is its failure's signature.
type request struct {
	after []byte
	batch int32
	sig   string
}

// errFn marks fn's error coming out of rangeRead.read.
var errFn = errors.New("scan callback failed")

// rangeRead is the state of one Scan across the cursors it opens.
type rangeRead struct {
	s     *Source
	ns    pipeline.Namespace
	fn    func(bson.Raw, pipeline.Position) error
	fnErr error
	after []byte // the last _id delivered
	sizer batchSizer
}

// read opens one cursor over filter and hands its documents to fn, moving after past each, and
// sizes each following reply from the documents seen. It returns the last request made (for a
// failure, the one that failed) and the cursor's error, or errFn when fn failed.
func (rd *rangeRead) read(ctx context.Context, filter bson.D) (request, error) {
	req := request{after: rd.after, batch: rd.sizer.size()}
	cur, err := rd.s.srv.find(ctx, rd.ns, filter, false, req.batch)
	if err != nil {
		return req, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		doc := cur.Doc()
		rd.sizer.observe(len(doc))
		var pos pipeline.Position
		if id, err := doc.LookupErr("_id"); err == nil {
			pos.ID = EncodeID(id)
		}
		if err := rd.fn(doc, pos); err != nil {
			rd.fnErr = err
			return req, errFn
		}
		if pos.ID != nil {
			rd.after = pos.ID
		}
		if cur.RemainingBatchLength() == 0 {
			// The next Next asks for another reply: a new request.
			req = request{after: rd.after, batch: rd.sizer.size()}
			cur.SetBatchSize(req.batch)
		}
	}
	return req, cur.Err()
}

func afterText(b []byte) string {
	if b == nil {
		return ""
	}
	return idText(b)
}

// answers tells whether the server answers a ping within pingTimeout.
func (s *Source) answers(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return s.srv.ping(pctx) == nil
}
