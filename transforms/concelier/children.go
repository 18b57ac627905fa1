package concelier

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// advisoryKeys reads the loaded advisories' natural keys: alias and affected reference their
// advisory by advisoryKey.
var advisoryKeys = parentKeys{collection: "advisory", query: `SELECT advisory_key, id::text FROM vuln.advisories`}

// writeAdvisoryRef writes advisory_id from advisoryKey: NOT NULL, so a null or missing key
// rejects, and so does a key naming no loaded advisory.
func writeAdvisoryRef(r *transforms.Row, st *state, doc bson.Raw, opt transforms.Options) [16]byte {
	aid, ok, rej := st.resolve(field(doc, "advisoryKey"), "advisoryKey", "advisory", "advisory_id", opt)
	writeRef(r, aid, ok, rej, "advisoryKey")
	return aid
}

// alias → vuln.advisory_aliases, UNIQUE (advisory_id, scheme, value): where Mongo holds one
// alias twice for an advisory, the smallest _id wins (a NULL scheme or value never collides).
func newAlias(env transforms.Env) pipeline.Transform {
	b := newBase(env, "alias", []pipeline.Table{aliasesTable()})
	b.keyCols, b.keyPath = "advisory_id, scheme, value", "value"
	p := advisoryKeys
	b.parent = &p
	b.mapf = func(st *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
		r := transforms.NewRow(out, b.tables, 0, opt)
		r.UUID(b.rowID(canonical))
		r.Text(canonical, "_id")
		aid := writeAdvisoryRef(r, st, doc, opt)
		scheme, value := field(doc, "scheme"), field(doc, "value")
		r.Value(scheme, "scheme")
		r.Value(value, "value")
		if rej := r.End(); rej != nil {
			return rej, "", false
		}
		key, ok := keyOf(opt, scheme, value)
		return nil, string(aid[:]) + key, ok
	}
	return b
}

// affected → vuln.advisory_affected.
func newAffected(env transforms.Env) pipeline.Transform {
	b := newBase(env, "affected", []pipeline.Table{affectedTable()})
	p := advisoryKeys
	b.parent = &p
	b.mapf = func(st *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
		r := transforms.NewRow(out, b.tables, 0, opt)
		r.UUID(b.rowID(canonical))
		r.Text(canonical, "_id")
		writeAdvisoryRef(r, st, doc, opt)
		r.Value(field(doc, "ecosystem"), "ecosystem")
		r.Value(field(doc, "packageName"), "packageName")
		r.Value(field(doc, "purl"), "purl")
		r.Value(field(doc, "ranges"), "ranges")
		r.Value(field(doc, "versions"), "versions")
		return r.End(), "", false
	}
	return b
}
