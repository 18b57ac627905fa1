package excititor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// formats are the values raw_documents.format's CHECK allows.
var formats = []string{"csaf", "cyclonedx", "openvex"}

// raw maps vex.raw to vex.raw_documents. The _id is the document's digest and authoritative: it
// fills digest (a digest field, when present, is ignored). Content is inline binary (bytea)
// or lives in GridFS (gridFsObjectId, an ObjectId, as 24 hex); both or neither rejects, and
// inline content whose _id reads sha256:<hex> must hash to it.
type raw struct {
	base
	st transforms.Stage
	// digests decides digest's UNIQUE under --fix-strings only: otherwise distinct _ids that
	// keep their identity store distinct digests, but mending can make two string _ids equal.
	digests *uniqueKeys
}

var (
	_ pipeline.Transform = (*raw)(nil)
	_ pipeline.Preparer  = (*raw)(nil)
)

func newRaw(env transforms.Env) *raw {
	t := &raw{}
	t.init(env, CollRaw, []pipeline.Table{rawDocumentsTable}, t.core)
	t.st = t.stage(t.mapDoc)
	if env.Options.FixStrings {
		t.digests = &uniqueKeys{cols: []int{3}}
	}
	return t
}

// Apply implements pipeline.Transform.
func (t *raw) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.st.Apply(doc, out)
}

// Prepare implements pipeline.Preparer.
func (t *raw) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	if t.digests != nil {
		return t.prepare(ctx, kp, t.digests)
	}
	return t.prepare(ctx, kp, nil)
}

func (t *raw) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	n := len(out.Rows)
	if rej := t.core(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	if rej := t.identity(id, canonical); rej != nil {
		return rej
	}
	if t.digests != nil {
		if w, lost := t.digests.holder(out, n, id); lost {
			return &pipeline.Reject{Path: "_id", Reason: uniqueReason("digest", w)}
		}
	}
	return nil
}

func (t *raw) core(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(rowID(CollRaw, canonical))
	r.Text(canonical, "_id")
	r.Value(top(doc, "tenant"), "tenant")
	r.Value(id, "_id") // digest
	r.Value(top(doc, "providerId"), "providerId")
	format := top(doc, "format")
	r.Value(format, "format")
	checkIn(r, format, "format", "format", opt, formats)
	r.Value(top(doc, "sourceUri"), "sourceUri")
	r.Value(top(doc, "retrievedAt"), "retrievedAt")
	content, gridfs := top(doc, "content"), top(doc, "gridFsObjectId")
	switch {
	case present(content) && present(gridfs):
		r.Fail("content", "both inline content and gridFsObjectId")
	case !present(content) && !present(gridfs):
		r.Fail("content", "neither inline content nor gridFsObjectId")
	}
	r.Value(content, "content")
	if present(content) && digestMismatch(id, content) {
		r.Fail("content", "SHA-256 of content does not match the digest in _id")
	}
	if present(gridfs) && gridfs.Type != bson.TypeObjectID {
		// Only an ObjectId names a GridFS file; anything else would store an arbitrary text.
		r.Fail("gridFsObjectId", "column gridfs_id: expected objectId, found "+transforms.TypeName(gridfs.Type))
	}
	r.Value(gridfs, "gridFsObjectId")
	r.Value(top(doc, "metadata"), "metadata")
	return r.End()
}

// digestMismatch tells whether inline content fails its _id digest: only a digest that names
// SHA-256 ("sha256:", any case) is checked, the hex compared case-insensitively; a sha256:
// digest that is not 64 hex digits matches no content.
func digestMismatch(id, content bson.RawValue) bool {
	const prefix = "sha256:"
	d, ok := id.StringValueOK()
	if !ok || len(d) < len(prefix) || !strings.EqualFold(d[:len(prefix)], prefix) {
		return false
	}
	_, data, ok := content.BinaryOK()
	if !ok {
		return false // not binary: the content column has refused it already
	}
	sum := sha256.Sum256(data)
	return !strings.EqualFold(d[len(prefix):], hex.EncodeToString(sum[:]))
}
