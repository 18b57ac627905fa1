package live

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/pipeline"
)

// TestPlanAndScan: a collection with _ids of several type classes is planned as ranges within
// each class, every RangeDocs-th _id closing one; scanning every range gives every document
// exactly once, and a scan resumed after an _id continues right after it.
func TestPlanAndScan(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	ctx := context.Background()
	src, err := Open(ctx, uri, Options{RangeDocs: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var docs []any
	want := map[string]bool{}
	for i := 0; i < 250; i++ {
		var id any
		switch i % 5 {
		case 0:
			id = int32(i)
		case 1:
			id = int64(i) << 33
		case 2:
			id = float64(i) + 0.25
		case 3:
			id = fmt.Sprintf("s-%04d", i)
		default:
			id = bson.NewObjectID()
		}
		d := bson.D{{Key: "_id", Value: id}, {Key: "i", Value: int32(i)}}
		docs = append(docs, d)
		want[fmt.Sprint(i)] = true
	}
	if _, err := src.Client().Database(db).Collection("mixed").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	ns := pipeline.Namespace{DB: db, Collection: "mixed"}
	plan, err := src.Plan(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Count != 250 {
		t.Fatalf("count %d", plan.Count)
	}
	classes := map[string]int{}
	for _, r := range plan.Ranges {
		classes[r.TypeClass]++
	}
	// numbers 150 (int, long, double) → 4 ranges; strings 50 → 2; ObjectIds 50 → 2.
	if classes["number"] != 4 || classes["string"] != 2 || classes["objectId"] != 2 || len(classes) != 3 {
		t.Fatalf("ranges per class: %v", classes)
	}
	seen := map[string]int{}
	for _, r := range plan.Ranges {
		n := 0
		if err := src.Scan(ctx, ns, r, pipeline.Cursor{}, func(doc bson.Raw, pos pipeline.Position) error {
			seen[fmt.Sprint(doc.Lookup("i").Int32())]++
			if ClassOf(bson.Type(pos.ID[0])) != r.TypeClass {
				t.Errorf("range %d (%s) delivered a %s _id", r.No, r.TypeClass, bson.Type(pos.ID[0]))
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n > 40 {
			t.Errorf("range %d holds %d documents, more than RangeDocs", r.No, n)
		}
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("document %s scanned %d times", k, seen[k])
		}
	}
	// Resume after the fifth document of the first range.
	r := plan.Ranges[0]
	var ids [][]byte
	_ = src.Scan(ctx, ns, r, pipeline.Cursor{}, func(_ bson.Raw, pos pipeline.Position) error {
		ids = append(ids, pos.ID)
		return nil
	})
	var rest int
	if err := src.Scan(ctx, ns, r, pipeline.Cursor{AfterID: ids[4]}, func(_ bson.Raw, pos pipeline.Position) error {
		if rest == 0 && string(pos.ID) != string(ids[5]) {
			t.Errorf("resumed scan starts at %x, want %x", pos.ID, ids[5])
		}
		rest++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rest != len(ids)-5 {
		t.Errorf("resumed scan gave %d documents, want %d", rest, len(ids)-5)
	}
}

// understated reports a small average document size, as a server whose collStats measure
// something else may: the first reply is sized too large. It keeps the errors the driver gave.
type understated struct {
	server
	avg  int64
	errs *[]error
}

func (u understated) avgObjSize(context.Context, pipeline.Namespace) (int64, error) {
	return u.avg, nil
}

func (u understated) find(ctx context.Context, ns pipeline.Namespace, filter bson.D, idsOnly bool, batch int32) (cursor, error) {
	c, err := u.server.find(ctx, ns, filter, idsOnly, batch)
	if err != nil {
		*u.errs = append(*u.errs, err)
		return nil, err
	}
	return errCursor{cursor: c, errs: u.errs}, nil
}

type errCursor struct {
	cursor
	errs *[]error
}

func (c errCursor) Err() error {
	err := c.cursor.Err()
	if err != nil {
		*c.errs = append(*c.errs, err)
	}
	return err
}

// TestReplyTooLargeFromTheDriver: FerretDB answers a batch whatever its size, and the driver
// refuses a reply above 48 MB with a connection error it labels as a network error. A scan whose
// first reply is too large asks again with half the batch and reads every document; the
// driver's error is told apart and is not transient.
func TestReplyTooLargeFromTheDriver(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	ctx := context.Background()
	src, err := Open(ctx, uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	const docs, size = 7, 7 << 20 // 49 MiB in one reply
	coll := src.Client().Database(db).Collection("big")
	for i := 0; i < docs; i++ {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", size)}}); err != nil {
			t.Fatal(err)
		}
	}
	ns := pipeline.Namespace{DB: db, Collection: "big"}
	var errs []error
	src.srv = understated{server: src.srv, avg: replyBytes / docs, errs: &errs}
	var n int
	if err := src.Scan(ctx, ns, pipeline.Range{TypeClass: "number"}, pipeline.Cursor{}, func(doc bson.Raw, _ pipeline.Position) error {
		if doc.Lookup("_id").Int32() != int32(n) {
			t.Errorf("document %d has _id %v", n, doc.Lookup("_id"))
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != docs {
		t.Errorf("scanned %d documents, want %d", n, docs)
	}
	if len(errs) != 1 {
		t.Fatalf("driver errors %v, want the one refused reply", errs)
	}
	err = errs[0]
	if !mongo.IsNetworkError(err) || !IsReplyTooLarge(err) || IsTransient(err) {
		t.Errorf("%v: network error %v, too large %v, transient %v; want true, true, false", err, mongo.IsNetworkError(err), IsReplyTooLarge(err), IsTransient(err))
	}
}
