package excititor

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// consensus maps vex.consensus to vex.consensus. Where several standing documents share
// (tenant_id, vulnerability_id, product_key), the latest calculatedAt wins (ties: the greatest
// _id) and the others are skipped as superseded, not rejected: they are older results of the
// same calculation. A key with a NULL part never collides.
type consensus struct {
	base
	st transforms.Stage
	// latest maps each key to its winner; built by Prepare (guarded by base.mu).
	latest map[string]consensusBest
}

type consensusBest struct {
	ms int64 // calculatedAt, ms since 1970
	id bson.RawValue
}

var (
	_ pipeline.Transform = (*consensus)(nil)
	_ pipeline.Preparer  = (*consensus)(nil)
)

// Column positions of the unique key in a consensus row.
var consensusKey = []int{2, 3, 4}

// supersededMark is the Path of the internal reject that carries "superseded" out of the
// stage: no document path can start with NUL (BSON keys cannot hold one).
const supersededMark = "\x00superseded"

func newConsensus(env transforms.Env) *consensus {
	t := &consensus{}
	t.init(env, CollConsensus, []pipeline.Table{consensusTable}, t.core)
	t.st = t.stage(t.mapDoc)
	return t
}

// Apply implements pipeline.Transform.
func (t *consensus) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	v := t.st.Apply(doc, out)
	if v.Reject != nil && v.Reject.Path == supersededMark {
		v.Reject, v.Skip = nil, pipeline.SkipSuperseded
	}
	return v
}

// Prepare implements pipeline.Preparer.
func (t *consensus) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	return t.prepare(ctx, kp, t)
}

// reset and offer make consensus its own keys (see base.prepare).
func (t *consensus) reset() {
	t.mu.Lock()
	t.latest = map[string]consensusBest{}
	t.mu.Unlock()
}

func (t *consensus) offer(s standing) {
	k, ok := keyOf(s, consensusKey...)
	if !ok {
		return
	}
	// Standing means calculated_at (NOT NULL, timestamptz) took a date.
	ms, ok := top(s.doc, "calculatedAt").DateTimeOK()
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, held := t.latest[k]
	if held && (ms < cur.ms || ms == cur.ms && transforms.CompareIDs(s.id, cur.id) <= 0) {
		return
	}
	t.latest[k] = consensusBest{ms: ms, id: bson.RawValue{Type: s.id.Type, Value: append([]byte(nil), s.id.Value...)}}
}

func (t *consensus) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	n := len(out.Rows)
	if rej := t.core(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	if rej := t.identity(id, canonical); rej != nil {
		return rej
	}
	if k, ok := rowKey(out, n, consensusKey...); ok {
		t.mu.RLock()
		w, held := t.latest[k]
		t.mu.RUnlock()
		if held && !w.id.Equal(id) {
			return &pipeline.Reject{Path: supersededMark, Reason: pipeline.SkipSuperseded}
		}
	}
	return nil
}

func (t *consensus) core(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(rowID(CollConsensus, canonical))
	r.Text(canonical, "_id")
	r.Value(top(doc, "tenant"), "tenant")
	r.Value(top(doc, "vulnerabilityId"), "vulnerabilityId")
	r.Value(top(doc, "productKey"), "productKey")
	r.Value(top(doc, "status"), "status")
	r.Value(top(doc, "sources"), "sources")
	r.Value(top(doc, "policyRevisionId"), "policyRevisionId")
	r.Value(top(doc, "calculatedAt"), "calculatedAt")
	return r.End()
}
