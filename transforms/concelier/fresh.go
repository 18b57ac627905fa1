package concelier

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// fresh is a Tier C collection (jobs, locks): its table is created empty and every document is
// skipped with reason "tier C" by the Stage's tier filter, before any mapping. The mapping
// below is the generic mode's, so the table's shape and its rows would agree should a tier
// ever keep documents; it needs no key pass.
type fresh struct {
	coll   string
	tables []pipeline.Table
	ns     [16]byte
	stage  transforms.Stage
}

func newFresh(env transforms.Env, coll string) pipeline.Transform {
	t := &fresh{coll: coll, tables: []pipeline.Table{genericTable(coll)}, ns: transforms.ModuleNamespace(Name)}
	t.stage = transforms.Stage{Collection: coll, Filter: env.Filter, Options: env.Options, Map: t.mapDoc}
	return t
}

// Tables implements pipeline.Transform.
func (t *fresh) Tables() []pipeline.Table { return t.tables }

// Apply implements pipeline.Transform.
func (t *fresh) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.stage.Apply(doc, out)
}

func (t *fresh) mapDoc(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(transforms.UUIDv5(t.ns, t.coll+":"+canonical))
	r.Text(canonical, "_id")
	if v, err := doc.LookupErr("tenant"); err == nil && v.Type == bson.TypeString {
		r.Value(v, "tenant")
	} else {
		r.Null("tenant")
	}
	r.Value(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}, "")
	return r.End()
}
