// Package live reads collections from a MongoDB server (or a wire-compatible one such as
// FerretDB) through the official driver. It implements pipeline.Source.
//
// A collection is split into ranges of _id within one BSON type class, because MongoDB compares
// _id only within a class: a scan with {_id: {$gt: x}} across classes would silently skip
// documents. Each range is read with {_id: {$type: class, $gt: lower, $lte: upper}} sorted by
// _id, one cursor per range and no long server-side snapshot (cursors time out after ten idle
// minutes and snapshots after five), so a resume continues with _id > last committed. NaN
// matches no comparison, so NaN _ids are a range of their own read by equality, and number
// ranges start at -Infinity (scan.go). Replies are sized in bytes (scan.go): the batch comes from
// the average document size, and a reply the driver refuses as too large is asked again with
// half the batch.
//
// Range boundaries come from one _id-only ordered scan per class, taking every RangeDocs-th _id.
// That works on every server (FerretDB lacks $bucketAuto, $sample and splitVector) and makes the
// boundaries a function of the data alone, never of the worker count.
package live

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/stellaops/convert/pipeline"
)

// DefaultRangeDocs is the number of documents per planned range.
const DefaultRangeDocs = 50_000

// typeClasses are the $type aliases a _id can have, in MongoDB's sort order of classes. Numbers
// (int, long, double, decimal) compare with each other, so they are one class.
var typeClasses = []string{"minKey", "null", "number", "string", "symbol", "object", "binData", "objectId", "bool", "date", "timestamp", "javascript", "maxKey"}

// Source is a live MongoDB source.
type Source struct {
	client      *mongo.Client
	srv         server
	fingerprint string
	rangeDocs   int
}

var _ pipeline.Source = (*Source)(nil)

// Options tune a live source.
type Options struct {
	// RangeDocs is the number of documents per range; 0 means DefaultRangeDocs.
	RangeDocs int
}

// IsURI tells a MongoDB connection string from a path.
func IsURI(s string) bool {
	return strings.HasPrefix(s, "mongodb://") || strings.HasPrefix(s, "mongodb+srv://")
}

// Open connects to uri and pings the server. Reads use read concern majority and read preference
// primary unless the URI says otherwise.
func Open(ctx context.Context, uri string, o Options) (*Source, error) {
	co := options.Client().ApplyURI(uri)
	if co.ReadConcern == nil {
		co.SetReadConcern(readconcern.Majority())
	}
	if co.ReadPreference == nil {
		co.SetReadPreference(readpref.Primary())
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongodb %s: %w", Redact(uri), err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("mongodb %s: %w", Redact(uri), err)
	}
	rd := o.RangeDocs
	if rd <= 0 {
		rd = DefaultRangeDocs
	}
	return &Source{client: client, srv: driverServer{client}, fingerprint: "mongodb:" + Redact(uri), rangeDocs: rd}, nil
}

// Redact drops credentials and the query from a MongoDB URI: what remains names the servers.
func Redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "<unparseable uri>"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// Kind implements pipeline.Source.
func (s *Source) Kind() string { return "mongodb" }

// Fingerprint implements pipeline.Source: the servers, without credentials.
func (s *Source) Fingerprint() string { return s.fingerprint }

// Close implements pipeline.Source.
func (s *Source) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Collections implements pipeline.Source.
func (s *Source) Collections(ctx context.Context, db string) ([]string, error) {
	names, err := s.client.Database(db).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("database %s: list collections: %w", db, err)
	}
	sort.Strings(names)
	return names, nil
}

// Plan implements pipeline.Source.
func (s *Source) Plan(ctx context.Context, ns pipeline.Namespace) (pipeline.CollectionPlan, error) {
	ok, err := s.srv.exists(ctx, ns)
	if err != nil {
		return pipeline.CollectionPlan{}, fmt.Errorf("%s: list collections: %w", ns, err)
	}
	if !ok {
		return pipeline.CollectionPlan{}, fmt.Errorf("%s: %w", ns, pipeline.ErrNoCollection)
	}
	total, err := s.srv.count(ctx, ns)
	if err != nil {
		return pipeline.CollectionPlan{}, fmt.Errorf("%s: count: %w", ns, err)
	}
	ids, err := s.scanIDs(ctx, ns)
	if err != nil {
		return pipeline.CollectionPlan{}, fmt.Errorf("%s: plan ranges: %w", ns, err)
	}
	plan := pipeline.CollectionPlan{Count: total}
	var sum int64
	for _, class := range typeClasses {
		if ids.counts[class] == 0 {
			continue
		}
		sum += ids.counts[class]
		if nan := ids.nan[class]; nan != nil {
			// NaN matches no $gt/$lte: its own range, read by equality.
			plan.Ranges = append(plan.Ranges, pipeline.Range{No: len(plan.Ranges), TypeClass: class, Lower: nan, Upper: nan})
			if ids.counts[class] == ids.nans[class] {
				continue
			}
		}
		var lower []byte
		for _, upper := range ids.bounds[class] {
			plan.Ranges = append(plan.Ranges, pipeline.Range{No: len(plan.Ranges), TypeClass: class, Lower: lower, Upper: upper})
			lower = upper
		}
		plan.Ranges = append(plan.Ranges, pipeline.Range{No: len(plan.Ranges), TypeClass: class, Lower: lower})
	}
	if sum != total {
		return pipeline.CollectionPlan{}, &CountMismatchError{NS: ns.String(), Total: total, ByClass: sum}
	}
	return plan, nil
}

// CountMismatchError: the _ids seen per type class do not add up to the collection's count, so
// some documents would be missed by every range (or the collection changed during planning).
type CountMismatchError struct {
	NS      string
	Total   int64
	ByClass int64
}

func (e *CountMismatchError) Error() string {
	return fmt.Sprintf("%s: %d documents, but the _id scan found %d: refusing to plan ranges that could miss documents", e.NS, e.Total, e.ByClass)
}

// idScan is what the _id scan learns per type class: how many _ids, the ranges' upper bounds,
// and the NaN _ids (numbers only) with one of them encoded.
type idScan struct {
	counts map[string]int64
	bounds map[string][][]byte
	nans   map[string]int64
	nan    map[string][]byte
}

// scanIDs reads every _id once, in order, counting them per type class and taking every
// rangeDocs-th _id of a class as the inclusive upper bound of a range. Within a class the scan
// order is the order the ranges' $gt/$lte follow, whatever order the server gives classes.
// NaN _ids are counted but never bound a range: no comparison matches them.
func (s *Source) scanIDs(ctx context.Context, ns pipeline.Namespace) (idScan, error) {
	out := idScan{counts: map[string]int64{}, bounds: map[string][][]byte{}, nans: map[string]int64{}, nan: map[string][]byte{}}
	cur, err := s.srv.find(ctx, ns, bson.D{}, true, 10_000)
	if err != nil {
		return out, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		id, err := cur.Doc().LookupErr("_id")
		if err != nil {
			return out, fmt.Errorf("document without _id: %w", err)
		}
		class := ClassOf(id.Type)
		if class == "" {
			return out, fmt.Errorf("_id of BSON type %s cannot be ranged", id.Type)
		}
		out.counts[class]++
		if isNaN(id) {
			out.nans[class]++
			if out.nan[class] == nil {
				out.nan[class] = EncodeID(id)
			}
			continue
		}
		if (out.counts[class]-out.nans[class])%int64(s.rangeDocs) == 0 {
			out.bounds[class] = append(out.bounds[class], EncodeID(id))
		}
	}
	return out, cur.Err()
}

// ClassOf is the $type alias of the class a BSON type sorts in, "" for types a _id cannot have.
func ClassOf(t bson.Type) string {
	switch t {
	case bson.TypeMinKey:
		return "minKey"
	case bson.TypeNull:
		return "null"
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return "number"
	case bson.TypeString:
		return "string"
	case bson.TypeSymbol:
		return "symbol"
	case bson.TypeEmbeddedDocument:
		return "object"
	case bson.TypeBinary:
		return "binData"
	case bson.TypeObjectID:
		return "objectId"
	case bson.TypeBoolean:
		return "bool"
	case bson.TypeDateTime:
		return "date"
	case bson.TypeTimestamp:
		return "timestamp"
	case bson.TypeJavaScript:
		return "javascript"
	case bson.TypeMaxKey:
		return "maxKey"
	}
	return ""
}

// EncodeID is a _id in the form ranges and cursors keep: its type byte, then its value bytes.
func EncodeID(v bson.RawValue) []byte {
	b := make([]byte, 0, 1+len(v.Value))
	b = append(b, byte(v.Type))
	return append(b, v.Value...)
}

// DecodeID reverses EncodeID.
func DecodeID(b []byte) (bson.RawValue, error) {
	if len(b) < 1 {
		return bson.RawValue{}, errors.New("empty encoded _id")
	}
	v := bson.RawValue{Type: bson.Type(b[0]), Value: b[1:]}
	if err := v.Validate(); err != nil {
		return bson.RawValue{}, fmt.Errorf("encoded _id: %w", err)
	}
	return v, nil
}

// Client exposes the driver client for tools that seed or inspect a server (tests, demo).
func (s *Source) Client() *mongo.Client { return s.client }

// Metadata builds the collection's metadata as mongodump writes it in <coll>.metadata.json
// (canonical Extended JSON): its options, its indexes, its UUID when the server gives one.
func (s *Source) Metadata(ctx context.Context, ns pipeline.Namespace) ([]byte, error) {
	db := s.client.Database(ns.DB)
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: ns.Collection}})
	if err != nil {
		return nil, fmt.Errorf("%s: list collections: %w", ns, err)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: %w", ns, pipeline.ErrNoCollection)
	}
	spec := specs[0]
	md := bson.D{}
	if spec.Options != nil {
		md = append(md, bson.E{Key: "options", Value: spec.Options})
	} else {
		md = append(md, bson.E{Key: "options", Value: bson.D{}})
	}
	var indexes bson.A
	cur, err := db.Collection(ns.Collection).Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list indexes: %w", ns, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		indexes = append(indexes, bson.Raw(append([]byte(nil), cur.Current...)))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("%s: list indexes: %w", ns, err)
	}
	md = append(md, bson.E{Key: "indexes", Value: indexes})
	uuid := ""
	if spec.UUID != nil {
		uuid = fmt.Sprintf("%x", spec.UUID.Data)
	}
	md = append(md, bson.E{Key: "uuid", Value: uuid}, bson.E{Key: "collectionName", Value: ns.Collection}, bson.E{Key: "type", Value: spec.Type})
	out, err := bson.MarshalExtJSON(md, true, false)
	if err != nil {
		return nil, fmt.Errorf("%s: metadata: %w", ns, err)
	}
	return out, nil
}
