package excititor

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// statusValues are the values statements.status's CHECK allows.
var statusValues = []string{"affected", "not_affected", "fixed", "under_investigation"}

// statements maps vex.statements to vex.statements, one row per document.
type statements struct {
	base
	st transforms.Stage
}

var (
	_ pipeline.Transform = (*statements)(nil)
	_ pipeline.Preparer  = (*statements)(nil)
)

func newStatements(env transforms.Env) *statements {
	t := &statements{}
	t.init(env, CollStatements, []pipeline.Table{statementsTable}, t.core)
	t.st = t.stage(t.mapDoc)
	return t
}

// Apply implements pipeline.Transform.
func (t *statements) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.st.Apply(doc, out)
}

// Prepare implements pipeline.Preparer: identity collisions only.
func (t *statements) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	return t.prepare(ctx, kp, nil)
}

func (t *statements) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	if rej := t.core(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	return t.identity(id, canonical)
}

func (t *statements) core(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(rowID(CollStatements, canonical))
	r.Text(canonical, "_id")
	r.Value(top(doc, "tenant"), "tenant")
	r.Value(top(doc, "vulnerabilityId"), "vulnerabilityId")
	r.Value(top(doc, "productKey"), "productKey")
	status := top(doc, "status")
	r.Value(status, "status")
	checkIn(r, status, "status", "status", opt, statusValues)
	r.Value(top(doc, "justification"), "justification")
	r.Value(top(doc, "impactStatement"), "impactStatement")
	r.Value(top(doc, "actionStatement"), "actionStatement")
	r.Value(top(doc, "providerId"), "providerId")
	r.Value(top(doc, "documentDigest"), "documentDigest")
	r.Value(top(doc, "issuedAt"), "issuedAt")
	r.Value(top(doc, "lastUpdatedAt"), "lastUpdatedAt")
	r.Value(top(doc, "createdAt"), "createdAt")
	return r.End()
}
