package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/stellaops/convert/pipeline"
)

// fakeServer holds documents in MongoDB's _id order and answers finds the way MongoDB matches
// them: comparisons within the filter's $type class only, NaN matching equality and no
// comparison. A reply whose documents add up to more than maxReply bytes fails as the driver
// fails it; fail may refuse any other reply.
type fakeServer struct {
	docs     []bson.Raw
	avg      int64
	maxReply int
	// fail is asked before each reply: first is the _id of the reply's first document, batch
	// the documents asked.
	fail    func(first bson.RawValue, batch int32) error
	pingErr error

	mu       sync.Mutex
	requests []fakeRequest
	largest  int // bytes of the largest reply given
}

type fakeRequest struct {
	find  bool // a find; otherwise a getMore
	after string
	batch int32
}

func (f *fakeServer) exists(context.Context, pipeline.Namespace) (bool, error) { return true, nil }
func (f *fakeServer) count(context.Context, pipeline.Namespace) (int64, error) {
	return int64(len(f.docs)), nil
}
func (f *fakeServer) avgObjSize(context.Context, pipeline.Namespace) (int64, error) {
	return f.avg, nil
}
func (f *fakeServer) ping(context.Context) error { return f.pingErr }

func (f *fakeServer) find(_ context.Context, _ pipeline.Namespace, filter bson.D, idsOnly bool, batch int32) (cursor, error) {
	var match []bson.Raw
	for _, d := range f.docs {
		if matches(d.Lookup("_id"), filter) {
			if idsOnly {
				d, _ = bson.Marshal(bson.D{{Key: "_id", Value: d.Lookup("_id")}})
			}
			match = append(match, d)
		}
	}
	c := &fakeCursor{f: f, docs: match, batch: batch, pos: -1}
	if err := c.reply(true); err != nil {
		return nil, err
	}
	return c, nil
}

type fakeCursor struct {
	f         *fakeServer
	docs      []bson.Raw
	batch     int32
	pos, end  int // pos: current document; end: the end of the current reply
	err       error
	delivered []byte
}

// reply makes the next reply of up to batch documents, failing as the server or driver would.
func (c *fakeCursor) reply(first bool) error {
	start := c.pos + 1
	end := min(len(c.docs), start+int(c.batch))
	c.f.mu.Lock()
	c.f.requests = append(c.f.requests, fakeRequest{find: first, after: afterText(c.delivered), batch: c.batch})
	c.f.mu.Unlock()
	if c.f.fail != nil && start < end {
		if err := c.f.fail(c.docs[start].Lookup("_id"), c.batch); err != nil {
			return err
		}
	}
	size := 0
	for _, d := range c.docs[start:end] {
		size += len(d)
	}
	if c.f.maxReply > 0 && size > c.f.maxReply {
		return tooLarge()
	}
	c.f.mu.Lock()
	c.f.largest = max(c.f.largest, size)
	c.f.mu.Unlock()
	c.end = end
	return nil
}

func (c *fakeCursor) Next(context.Context) bool {
	if c.err != nil {
		return false
	}
	if c.pos+1 >= c.end {
		if c.end >= len(c.docs) {
			return false
		}
		if c.err = c.reply(false); c.err != nil {
			return false
		}
	}
	c.pos++
	c.delivered = EncodeID(c.docs[c.pos].Lookup("_id"))
	return true
}

func (c *fakeCursor) Doc() bson.Raw                   { return c.docs[c.pos] }
func (c *fakeCursor) RemainingBatchLength() int       { return c.end - c.pos - 1 }
func (c *fakeCursor) SetBatchSize(n int32)            { c.batch = n }
func (c *fakeCursor) Err() error                      { return c.err }
func (c *fakeCursor) Close(ctx context.Context) error { return nil }

// tooLarge is the error the driver returns for a reply above its message size limit: a
// connection error labelled as a network error, its connection number changing every time.
var connNo int

func tooLarge() error {
	connNo++
	return mongo.CommandError{Labels: []string{"NetworkError"}, Message: errReplyTooLarge, Wrapped: topology.ConnectionError{
		ConnectionID: fmt.Sprintf("127.0.0.1:27017[-%d]", connNo), Wrapped: errors.New(errReplyTooLarge)}}
}

// networkError is a connection reset as the driver reports it.
func networkError(what string) error {
	connNo++
	return mongo.CommandError{Labels: []string{"NetworkError"}, Message: what, Wrapped: topology.ConnectionError{
		ConnectionID: fmt.Sprintf("127.0.0.1:27017[-%d]", connNo), Wrapped: errors.New(what)}}
}

// matches evaluates the filters rangeFilter builds with MongoDB's semantics.
func matches(id bson.RawValue, filter bson.D) bool {
	for _, e := range filter {
		if e.Key != "_id" {
			panic("filter on " + e.Key)
		}
		cond, ok := e.Value.(bson.D)
		if !ok {
			return compareIDs(id, rawOf(e.Value)) == 0 // equality: NaN equals NaN
		}
		for _, c := range cond {
			if c.Key == "$type" {
				if ClassOf(id.Type) != c.Value {
					return false
				}
				continue
			}
			v := rawOf(c.Value)
			if ClassOf(v.Type) != ClassOf(id.Type) || isNaN(id) || isNaN(v) {
				return false // comparisons stay within a class, and NaN matches none
			}
			cmp := compareIDs(id, v)
			switch c.Key {
			case "$gt":
				ok = cmp > 0
			case "$gte":
				ok = cmp >= 0
			case "$lte":
				ok = cmp <= 0
			default:
				panic("operator " + c.Key)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func rawOf(v any) bson.RawValue {
	if rv, ok := v.(bson.RawValue); ok {
		return rv
	}
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return bson.RawValue{Type: t, Value: b}
}

// compareIDs orders _ids as MongoDB sorts them: by class, NaN before every number, then by value.
func compareIDs(a, b bson.RawValue) int {
	ca, cb := slices.Index(typeClasses, ClassOf(a.Type)), slices.Index(typeClasses, ClassOf(b.Type))
	if ca != cb {
		return ca - cb
	}
	switch ClassOf(a.Type) {
	case "number":
		na, nb := isNaN(a), isNaN(b)
		switch {
		case na && nb:
			return 0
		case na:
			return -1
		case nb:
			return 1
		}
		fa, _ := a.AsFloat64OK()
		fb, _ := b.AsFloat64OK()
		if fa < fb {
			return -1
		} else if fa > fb {
			return 1
		}
		return 0
	case "string":
		return strings.Compare(a.StringValue(), b.StringValue())
	}
	panic("class " + ClassOf(a.Type))
}

func newFake(t *testing.T, ids []any, size func(i int) int) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	for i, id := range ids {
		d, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "i", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", size(i))}})
		if err != nil {
			t.Fatal(err)
		}
		f.docs = append(f.docs, d)
	}
	slices.SortStableFunc(f.docs, func(a, b bson.Raw) int { return compareIDs(a.Lookup("_id"), b.Lookup("_id")) })
	return f
}

func intIDs(n int) []any {
	ids := make([]any, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return ids
}

var testNS = pipeline.Namespace{DB: "db", Collection: "vex"}

// scanAll scans one range and returns the documents' "i" in the order delivered.
func scanAll(t *testing.T, s *Source, r pipeline.Range, from pipeline.Cursor) ([]int32, error) {
	t.Helper()
	var got []int32
	err := s.Scan(context.Background(), testNS, r, from, func(doc bson.Raw, pos pipeline.Position) error {
		got = append(got, doc.Lookup("i").Int32())
		if !bytes.Equal(pos.ID, EncodeID(doc.Lookup("_id"))) {
			t.Errorf("position %x, want the document's _id", pos.ID)
		}
		return nil
	})
	return got, err
}

func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// TestScanSizesReplies: replies are sized from the average document; a reply refused as too
// large is asked again after the last document delivered with half the batch, down to one
// document, and every document arrives once, in order.
func TestScanSizesReplies(t *testing.T) {
	whole := pipeline.Range{TypeClass: "number"}
	tests := []struct {
		name     string
		avg      int64
		size     func(int) int
		maxReply int
		// wantFirst: the batch of the first request; halving: replies were refused.
		wantFirst int32
		halving   bool
	}{
		{name: "small documents keep 1000 a reply", avg: 100, size: func(int) int { return 50 }, wantFirst: maxReplyDocs},
		{name: "average sizes the batch", avg: 1 << 20, size: func(int) int { return 1 << 20 }, maxReply: 48_000_000, wantFirst: replyBytes / (1 << 20)},
		{name: "no average: a probe, then the documents seen", avg: 0, size: func(int) int { return 1 << 20 }, maxReply: 48_000_000, wantFirst: probeDocs},
		// The server understates the average (FerretDB's is the storage's): 1000 documents of
		// 2,000 bytes against a limit of 2,500 halve to one document a reply.
		{name: "halving down to one document", avg: 10, size: func(int) int { return 2000 }, maxReply: 2500, wantFirst: maxReplyDocs, halving: true},
		// Large documents come after small ones: a getMore fails, and the find after the last
		// document delivered asks for half.
		{name: "halving on a getMore", avg: 100, size: func(i int) int {
			if i >= 30 {
				return 3000
			}
			return 10
		}, maxReply: 30_000, wantFirst: maxReplyDocs, halving: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, intIDs(60), tc.size)
			f.avg, f.maxReply = tc.avg, tc.maxReply
			s := &Source{srv: f, rangeDocs: DefaultRangeDocs}
			got, err := scanAll(t, s, whole, pipeline.Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, seq(60)) {
				t.Fatalf("delivered %v", got)
			}
			if f.requests[0].batch != tc.wantFirst {
				t.Errorf("first request asked %d documents, want %d", f.requests[0].batch, tc.wantFirst)
			}
			var finds, least int32 = 0, f.requests[0].batch
			var last int32
			for i, r := range f.requests {
				least = min(least, r.batch)
				if i > 0 && r.find {
					finds++
					// A new find follows a refused reply: it asks for half of that one.
					if r.batch != last/2 {
						t.Errorf("find %d asked %d after a refused reply of %d", i, r.batch, last)
					}
				}
				last = r.batch
			}
			if tc.halving != (finds > 0) {
				t.Errorf("%d finds after the first; requests %+v", finds, f.requests)
			}
			if tc.halving && tc.name == "halving down to one document" && least != 1 {
				t.Errorf("smallest batch %d, want 1", least)
			}
			if !tc.halving && f.largest >= 16<<20 {
				t.Errorf("a reply of %d bytes, not under MongoDB's 16 MiB", f.largest)
			}
		})
	}
}

// TestScanStopsOnRepeatedError: an error that comes back identically on the same request while
// the server answers is not transient: the scan stops with an error naming the collection, the
// range, where it read and the server's words. A document too large even alone stops it too.
// A passing error is asked again and the scan goes on; while the server does not answer, the
// error stays transient for the caller's retry.
func TestScanStopsOnRepeatedError(t *testing.T) {
	r := pipeline.Range{No: 3, TypeClass: "number", Lower: EncodeID(rawOf(int32(-1))), Upper: EncodeID(rawOf(int32(59)))}
	failAt := func(id int32, err func() error, times int) func(bson.RawValue, int32) error {
		n := 0
		return func(first bson.RawValue, _ int32) error {
			if first.Equal(rawOf(id)) && n < times {
				n++
				return err()
			}
			return nil
		}
	}
	reset := func() error { return networkError("connection reset by peer") }
	tests := []struct {
		name      string
		fail      func(bson.RawValue, int32) error
		pingErr   error
		maxReply  int
		size      int
		wantDocs  int
		wantErr   []string // words the error holds; nil: no error
		transient bool
	}{
		{name: "permanent", fail: failAt(10, reset, 100), wantDocs: 10,
			wantErr: []string{"db.vex range 3", "(number _ids in ({\"$numberInt\":\"-1\"}, {\"$numberInt\":\"59\"}])", `after _id {"$numberInt":"9"}`, "connection reset by peer", "not transient"}},
		{name: "passing", fail: failAt(10, reset, 1), wantDocs: 60},
		{name: "server away", fail: failAt(10, reset, 100), pingErr: errors.New("server selection timeout"), wantDocs: 10,
			wantErr: []string{"db.vex range 3", "connection reset by peer"}, transient: true},
		{name: "one document too large", maxReply: 1000, size: 2000, wantDocs: 0,
			wantErr: []string{"db.vex range 3", "length of read message too large", "one document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, intIDs(60), func(int) int { return max(tc.size, 10) })
			f.avg, f.fail, f.pingErr, f.maxReply = 100, tc.fail, tc.pingErr, tc.maxReply
			f.docs = f.docs[:60]
			s := &Source{srv: f, rangeDocs: DefaultRangeDocs}
			// Ten documents a reply, so that the failure falls on a getMore.
			f.avg = replyBytes / 10
			got, err := scanAll(t, s, r, pipeline.Cursor{})
			if len(got) != tc.wantDocs {
				t.Errorf("delivered %d documents, want %d", len(got), tc.wantDocs)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if IsTransient(err) != tc.transient {
				t.Errorf("IsTransient(%q) = %v, want %v", err, !tc.transient, tc.transient)
			}
			var re *ReadError
			if !tc.transient && (!errors.As(err, &re) || errors.Unwrap(err) != nil) {
				t.Errorf("error %T %q: want a *ReadError that hides the driver's error", err, err)
			}
		})
	}
}

// TestNaNIDs: a NaN _id in a number class of several ranges is planned as a range of its own
// read by equality ({_id: NaN}), every other number range leaves NaN out, and scanning the
// ranges gives every document once. (FerretDB refuses NaN _ids, so the fake server applies
// MongoDB's rule: NaN matches equality and no comparison.)
func TestNaNIDs(t *testing.T) {
	ids := []any{math.NaN(), math.Inf(-1), math.Inf(1), 2.5, "a", "b"}
	for i := 0; i < 20; i++ {
		ids = append(ids, int32(i*3))
	}
	for _, rangeDocs := range []int{1, 4, 100} {
		t.Run(fmt.Sprint(rangeDocs), func(t *testing.T) {
			f := newFake(t, ids, func(int) int { return 10 })
			f.avg = 100
			s := &Source{srv: f, rangeDocs: rangeDocs}
			plan, err := s.Plan(context.Background(), testNS)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Count != int64(len(ids)) {
				t.Fatalf("count %d", plan.Count)
			}
			var nanRanges int
			seen := map[int32]int{}
			for _, r := range plan.Ranges {
				filter, err := rangeFilter(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				if isEquality(r) {
					nanRanges++
					want := bson.D{{Key: "_id", Value: rawOf(math.NaN())}}
					if v, ok := filter[0].Value.(bson.RawValue); !ok || len(filter) != 1 || !isNaN(v) {
						t.Errorf("NaN range filter %v, want %v", filter, want)
					}
				}
				got, err := scanAll(t, s, r, pipeline.Cursor{})
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range got {
					seen[i]++
				}
				if isEquality(r) && (len(got) != 1 || got[0] != 0) {
					t.Errorf("NaN range read %v, want document 0", got)
				}
			}
			if nanRanges != 1 {
				t.Errorf("%d NaN ranges in %+v", nanRanges, plan.Ranges)
			}
			for i := range ids {
				if seen[int32(i)] != 1 {
					t.Errorf("document %d (_id %v) read %d times", i, ids[i], seen[int32(i)])
				}
			}
		})
	}
	// A number range planned before NaN ranges existed, resumed after its NaN _id, goes on
	// with every number rather than matching nothing ($gt NaN).
	f := newFake(t, ids, func(int) int { return 10 })
	s := &Source{srv: f, rangeDocs: 100}
	got, err := scanAll(t, s, pipeline.Range{TypeClass: "number"}, pipeline.Cursor{AfterID: EncodeID(rawOf(math.NaN()))})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 23 {
		t.Errorf("resumed after NaN: %d documents, want the 23 other numbers", len(got))
	}
}
