package concelier

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// source → vuln.sources. key ← name, unique: where Mongo holds one name twice, the smallest
// _id wins.
func newSource(env transforms.Env) pipeline.Transform {
	b := newBase(env, "source", []pipeline.Table{sourcesTable()})
	b.keyCols, b.keyPath = "key", "name"
	b.mapf = func(_ *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
		r := transforms.NewRow(out, b.tables, 0, opt)
		r.UUID(b.rowID(canonical))
		r.Text(canonical, "_id")
		name := field(doc, "name")
		r.Value(name, "name")
		r.Value(field(doc, "kind"), "kind")
		r.Value(field(doc, "url"), "url")
		r.Value(field(doc, "enabled"), "enabled")
		r.Value(field(doc, "priority"), "priority")
		r.Value(field(doc, "config"), "config")
		r.Value(field(doc, "createdAt"), "createdAt")
		r.Value(field(doc, "updatedAt"), "updatedAt")
		if rej := r.End(); rej != nil {
			return rej, "", false
		}
		key, ok := keyOf(opt, name)
		return nil, key, ok
	}
	return b
}

// source_state → vuln.source_states. The _id is the source's name, resolved to sources.id by
// natural key; the table has no id or mongo_id of its own, and its primary key is source_id, so
// two _ids naming the same source (possible only through --fix-strings mending, or a string
// and an ObjectId of the same hex) are decided like any unique key.
func newSourceState(env transforms.Env) pipeline.Transform {
	b := newBase(env, "source_state", []pipeline.Table{sourceStatesTable()})
	b.identity = false
	b.keyCols, b.keyPath = "source_id", "_id"
	b.parent = &parentKeys{collection: "source", query: `SELECT key, id::text FROM vuln.sources`}
	b.mapf = func(st *state, doc bson.Raw, id bson.RawValue, _ string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
		sid, ok, rej := st.resolve(id, "_id", "source", "source_id", opt)
		r := transforms.NewRow(out, b.tables, 0, opt)
		writeRef(r, sid, ok, rej, "_id") // a null _id names no source: NOT NULL rejects
		r.Value(field(doc, "cursor"), "cursor")
		r.Value(field(doc, "lastSuccessAt"), "lastSuccessAt")
		r.Value(field(doc, "lastError"), "lastError")
		r.Value(field(doc, "failCount"), "failCount")
		r.Value(field(doc, "backoffUntil"), "backoffUntil")
		r.Value(field(doc, "updatedAt"), "updatedAt")
		if rej := r.End(); rej != nil {
			return rej, "", false
		}
		return nil, string(sid[:]), true
	}
	return b
}
