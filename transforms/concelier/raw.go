package concelier

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// advisory_raw → vuln.advisory_snapshots, following the source shape modules.md writes out
// (upstream.upstream_id, content.spec_version, ...). Content is either inline (content.raw,
// kept as jsonb) or in GridFS (content.gridFsObjectId, kept as its 24 hex; the blob is never
// copied); both or neither rejects. supersedes is no reference: it maps through this
// collection's id function whatever it names.
func newAdvisoryRaw(env transforms.Env) pipeline.Transform {
	b := newBase(env, "advisory_raw", []pipeline.Table{snapshotsTable()})
	b.keyCols, b.keyPath = "source_vendor, upstream_id, content_hash, tenant_id", "upstream.content_hash"
	b.mapf = func(_ *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
		tenant := field(doc, "tenant")
		vendor := nested(doc, "source", "vendor")
		upstream := nested(doc, "upstream", "upstream_id")
		hash := nested(doc, "upstream", "content_hash")
		raw := nested(doc, "content", "raw")
		grid := nested(doc, "content", "gridFsObjectId")
		inline, inGrid := present(raw), present(grid)

		r := transforms.NewRow(out, b.tables, 0, opt)
		r.UUID(b.rowID(canonical))
		r.Text(canonical, "_id")
		r.Value(tenant, "tenant")
		r.Value(vendor, "source.vendor")
		r.Value(upstream, "upstream.upstream_id")
		r.Value(hash, "upstream.content_hash")
		r.Value(nested(doc, "upstream", "fetched_at"), "upstream.fetched_at")
		r.Value(nested(doc, "upstream", "received_at"), "upstream.received_at")
		r.Value(nested(doc, "content", "format"), "content.format")
		r.Value(nested(doc, "content", "spec_version"), "content.spec_version")
		switch {
		case inline && inGrid:
			r.Fail("content", "content holds both inline raw and gridFsObjectId")
		case !inline && !inGrid:
			r.Fail("content", "content holds neither inline raw nor gridFsObjectId")
		case inline:
			r.Value(raw, "content.raw")
			r.Null("content.gridFsObjectId")
		case grid.Type != bson.TypeObjectID:
			// A GridFS id is kept as the 24 hex of its ObjectId (modules.md); no other form
			// is read as one.
			r.Fail("content.gridFsObjectId", "column gridfs_id: expected objectId, found "+transforms.TypeName(grid.Type))
		default:
			r.Null("content.raw")
			r.Value(grid, "content.gridFsObjectId")
		}
		r.Value(field(doc, "identifiers"), "identifiers")
		r.Value(field(doc, "linkset"), "linkset")
		sup := field(doc, "supersedes")
		if present(sup) {
			u, _, err := transforms.RowID(b.ns, b.coll, sup)
			if err != nil {
				r.Fail("supersedes", err.Error())
			} else {
				r.UUID(u)
			}
		} else {
			r.Null("supersedes")
		}
		if rej := r.End(); rej != nil {
			return rej, "", false
		}
		key, ok := keyOf(opt, vendor, upstream, hash, tenant)
		return nil, key, ok
	}
	return b
}

// present tells a value that is there from a null or missing one.
func present(v bson.RawValue) bool { return v.Type != 0 && v.Type != bson.TypeNull }
