package excititor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// linksets maps vex.linksets to vex.linksets and, from observationIds, one
// vex.linkset_observations row per element (ordinal = array position). Each element maps
// through the vex.observations id function and must name a loaded observation of the same
// tenant: one that does not rejects the whole linkset.
type linksets struct {
	base
	st transforms.Stage
	// obs maps each loaded observation's id to its tenant; read in Prepare (guarded by base.mu).
	obs map[[16]byte]string
}

var (
	_ pipeline.Transform = (*linksets)(nil)
	_ pipeline.Preparer  = (*linksets)(nil)
)

// linksetColTenant is tenant_id's position in a linksets row.
const linksetColTenant = 2

// observationsQuery reads the loaded observations (vex.observations is complete before
// vex.linksets starts: it is a parent).
const observationsQuery = `SELECT id::text, tenant_id FROM vex.observations`

func newLinksets(env transforms.Env) *linksets {
	t := &linksets{}
	t.init(env, CollLinksets, []pipeline.Table{linksetsTable, linksetObservationsTable}, t.core)
	t.st = t.stage(t.mapDoc)
	return t
}

// Apply implements pipeline.Transform.
func (t *linksets) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.st.Apply(doc, out)
}

// Prepare implements pipeline.Preparer: it reads the loaded observations, then decides
// identity collisions over the linksets whose references resolve.
func (t *linksets) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	if kp.Query == nil {
		return errors.New(CollLinksets + ": the key pass cannot query the target for loaded observations")
	}
	obs := map[[16]byte]string{}
	err := kp.Query(observationsQuery, func(vals []*string) error {
		if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
			return errors.New("unexpected row shape")
		}
		u, ok := transforms.ParseUUID(*vals[0])
		if !ok {
			return fmt.Errorf("id %q is not a uuid", *vals[0])
		}
		obs[u] = *vals[1]
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: read loaded observations: %w", CollLinksets, err)
	}
	t.mu.Lock()
	t.obs = obs
	t.mu.Unlock()
	return t.prepare(ctx, kp, nil)
}

func (t *linksets) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	if rej := t.core(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	return t.identity(id, canonical)
}

func (t *linksets) core(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	n := len(out.Rows)
	lid := rowID(CollLinksets, canonical)
	r := transforms.NewRow(out, t.tables, 0, opt)
	r.UUID(lid)
	r.Text(canonical, "_id")
	r.Value(top(doc, "tenant"), "tenant")
	r.Value(top(doc, "linksetId"), "linksetId")
	r.Value(top(doc, "vulnerabilityId"), "vulnerabilityId")
	r.Value(top(doc, "productKey"), "productKey")
	r.Value(top(doc, "conflicts"), "conflicts")
	r.Value(top(doc, "createdAt"), "createdAt")
	r.Value(top(doc, "updatedAt"), "updatedAt")
	if rej := r.End(); rej != nil {
		return rej
	}
	ids := top(doc, "observationIds")
	if !present(ids) {
		return nil // no observations: no link rows
	}
	if ids.Type != bson.TypeArray {
		return &pipeline.Reject{Path: "observationIds", Reason: "expected array, found " + transforms.TypeName(ids.Type)}
	}
	vals, err := ids.Array().Values()
	if err != nil {
		return &pipeline.Reject{Path: "observationIds", Reason: err.Error()}
	}
	cell, _ := cellAt(out, n, linksetColTenant)
	tenant := string(cell) // a copy: out.Data grows below
	t.mu.RLock()
	obs := t.obs
	t.mu.RUnlock()
	for i, v := range vals {
		path := "observationIds." + strconv.Itoa(i)
		oid, ocanon, err := transforms.RowID(ns, CollObservations, v)
		if err != nil {
			return &pipeline.Reject{Path: path, Reason: err.Error()}
		}
		otenant, ok := obs[oid]
		if !ok {
			return &pipeline.Reject{Path: path, Reason: "missing parent " + CollObservations + "/" + ocanon}
		}
		if otenant != tenant {
			return &pipeline.Reject{Path: path, Reason: "cross-tenant reference " + CollObservations + "/" + ocanon}
		}
		c := transforms.NewRow(out, t.tables, 1, opt)
		c.UUID(lid)
		c.Int4(int32(i))
		c.UUID(oid)
		c.Bytes([]byte(tenant))
		if rej := c.End(); rej != nil {
			return rej
		}
	}
	return nil
}
