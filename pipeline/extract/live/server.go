package live

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stellaops/convert/pipeline"
)

// server is the driver boundary of planning and scanning: the few requests Plan and Scan make.
// driverServer sends them through the mongo driver; tests put a fake here to give replies and
// errors that no test server produces (NaN _ids, replies too large, a failure that repeats).
type server interface {
	// exists tells whether the collection is there.
	exists(ctx context.Context, ns pipeline.Namespace) (bool, error)
	// count is the collection's document count.
	count(ctx context.Context, ns pipeline.Namespace) (int64, error)
	// avgObjSize is collStats' average document size in bytes, 0 when the server has none.
	avgObjSize(ctx context.Context, ns pipeline.Namespace) (int64, error)
	// find opens a cursor over filter in _id order whose replies hold at most batch documents;
	// idsOnly projects _id alone.
	find(ctx context.Context, ns pipeline.Namespace, filter bson.D, idsOnly bool, batch int32) (cursor, error)
	// ping tells whether the server answers at all.
	ping(ctx context.Context) error
}

// cursor is what Scan needs of a driver cursor. Doc is valid until the next call of Next.
type cursor interface {
	Next(ctx context.Context) bool
	Doc() bson.Raw
	// RemainingBatchLength is the number of documents of the current reply not yet returned:
	// at 0, the next Next asks the server for another reply.
	RemainingBatchLength() int
	// SetBatchSize sets the number of documents the following replies hold at most.
	SetBatchSize(n int32)
	Err() error
	Close(ctx context.Context) error
}

type driverServer struct{ client *mongo.Client }

func (d driverServer) coll(ns pipeline.Namespace) *mongo.Collection {
	return d.client.Database(ns.DB).Collection(ns.Collection)
}

func (d driverServer) exists(ctx context.Context, ns pipeline.Namespace) (bool, error) {
	names, err := d.client.Database(ns.DB).ListCollectionNames(ctx, bson.D{{Key: "name", Value: ns.Collection}})
	return len(names) > 0, err
}

func (d driverServer) count(ctx context.Context, ns pipeline.Namespace) (int64, error) {
	return d.coll(ns).CountDocuments(ctx, bson.D{})
}

func (d driverServer) avgObjSize(ctx context.Context, ns pipeline.Namespace) (int64, error) {
	res, err := d.client.Database(ns.DB).RunCommand(ctx, bson.D{{Key: "collStats", Value: ns.Collection}}).Raw()
	if err != nil {
		return 0, err
	}
	v, err := res.LookupErr("avgObjSize")
	if err != nil {
		return 0, nil // an empty collection has none
	}
	n, ok := v.AsInt64OK()
	if !ok {
		if f, isDouble := v.DoubleOK(); isDouble {
			return int64(f), nil
		}
		return 0, fmt.Errorf("collStats avgObjSize of BSON type %s", v.Type)
	}
	return n, nil
}

func (d driverServer) find(ctx context.Context, ns pipeline.Namespace, filter bson.D, idsOnly bool, batch int32) (cursor, error) {
	o := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(batch)
	if idsOnly {
		o.SetProjection(bson.D{{Key: "_id", Value: 1}})
	}
	cur, err := d.coll(ns).Find(ctx, filter, o)
	if err != nil {
		return nil, err
	}
	return driverCursor{cur}, nil
}

func (d driverServer) ping(ctx context.Context) error { return d.client.Ping(ctx, nil) }

type driverCursor struct{ *mongo.Cursor }

func (c driverCursor) Doc() bson.Raw { return c.Current }
