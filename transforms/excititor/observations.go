package excititor

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// observations maps vex.observations to vex.observations. UNIQUE(tenant_id, observation_id) is
// decided over the standing documents (smallest _id wins; a NULL observation_id never
// collides); purls, cpes and anchors are stored sorted (bytewise, duplicates kept).
type observations struct {
	base
	st   transforms.Stage
	keys *uniqueKeys
}

var (
	_ pipeline.Transform = (*observations)(nil)
	_ pipeline.Preparer  = (*observations)(nil)
)

// Column positions of the unique key in an observations row.
const (
	obsColTenant        = 2
	obsColObservationID = 3
)

func newObservations(env transforms.Env) *observations {
	t := &observations{keys: &uniqueKeys{cols: []int{obsColTenant, obsColObservationID}}}
	t.init(env, CollObservations, []pipeline.Table{observationsTable}, t.core)
	t.st = t.stage(t.mapDoc)
	return t
}

// Apply implements pipeline.Transform.
func (t *observations) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.st.Apply(doc, out)
}

// Prepare implements pipeline.Preparer.
func (t *observations) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	return t.prepare(ctx, kp, t.keys)
}

func (t *observations) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	n := len(out.Rows)
	if rej := t.core(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	if rej := t.identity(id, canonical); rej != nil {
		return rej
	}
	if w, lost := t.keys.holder(out, n, id); lost {
		return &pipeline.Reject{Path: "observationId", Reason: uniqueReason("tenant_id, observation_id", w)}
	}
	return nil
}

var sorted = transforms.Options{SortArray: true}

func (t *observations) core(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(rowID(CollObservations, canonical))
	r.Text(canonical, "_id")
	r.Value(top(doc, "tenant"), "tenant")
	r.Value(top(doc, "observationId"), "observationId")
	r.Value(top(doc, "vulnerabilityId"), "vulnerabilityId")
	r.Value(top(doc, "productKey"), "productKey")
	r.Value(top(doc, "providerId"), "providerId")
	r.Value(top(doc, "status"), "status")
	r.Value(top(doc, "justification"), "justification")
	r.Value(top(doc, "confidence"), "confidence")
	r.Value(top(doc, "signals"), "signals")
	r.Value(top(doc, "documentDigest"), "documentDigest")
	r.ValueWith(top(doc, "purls"), "purls", sorted)
	r.ValueWith(top(doc, "cpes"), "cpes", sorted)
	r.ValueWith(top(doc, "anchors"), "anchors", sorted)
	r.Value(top(doc, "createdAt"), "createdAt")
	return r.End()
}
