package scheduler

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// Each collection's mapping writes its one row column by column in table order; a column's
// source field is the camelCase of its name at the top level (modules.md, Source documents).

// newSchedules: Tier A, soft-deleted schedules included. (tenant_id, name) is unique among
// live schedules only (deleted_at IS NULL): the smallest _id among the standing live ones wins.
func newSchedules(env transforms.Env) pipeline.Transform {
	var c *collection
	rows := func(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		f := newFields(doc)
		r := transforms.NewRow(out, c.tables, 0, opt)
		r.UUID(c.rowID(canonical))
		r.Text(canonical, "_id")
		field(r, f, "tenantId")
		field(r, f, "name")
		field(r, f, "enabled")
		field(r, f, "cronExpression")
		field(r, f, "timezone")
		field(r, f, "mode")
		field(r, f, "selection")
		field(r, f, "onlyIf")
		field(r, f, "notify")
		field(r, f, "limits")
		field(r, f, "createdAt")
		field(r, f, "createdBy")
		field(r, f, "updatedAt")
		field(r, f, "updatedBy")
		field(r, f, "deletedAt")
		field(r, f, "deletedBy")
		return r.End()
	}
	c = newCollection(env, Schedules, schedulesTable, rows, &uniqueKey{columns: "(tenant_id, name)", path: "name", of: liveScheduleKey})
	return c
}

// liveScheduleKey is a live schedule's (tenant_id, name) as stored; a soft-deleted schedule
// (deletedAt set) holds no key, so it never collides.
func liveScheduleKey(doc bson.Raw, fix bool) (string, bool) {
	if !isNull(get(doc, "deletedAt")) {
		return "", false
	}
	tenant, ok := storedText(get(doc, "tenantId"), fix)
	if !ok {
		return "", false
	}
	name, ok := storedText(get(doc, "name"), fix)
	if !ok {
		return "", false
	}
	// Stored text holds no NUL, so the separator cannot be forged by either part.
	return tenant + "\x00" + name, true
}

// Enum codes (modules.md): graph_jobs.type and graph_jobs.status.
var (
	graphTypes    = map[string]int16{"build": 0, "overlay": 1}
	graphStatuses = map[string]int16{"pending": 0, "queued": 1, "running": 2, "completed": 3, "failed": 4, "cancelled": 5}
)

// newGraphJobs: Tier B, active (status not terminal) or created within 30 days.
func newGraphJobs(env transforms.Env) pipeline.Transform {
	var c *collection
	rows := func(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		f := newFields(doc)
		r := transforms.NewRow(out, c.tables, 0, opt)
		r.UUID(c.rowID(canonical))
		r.Text(canonical, "_id")
		field(r, f, "tenantId")
		enum(r, f, "type", "type", graphTypes)
		enum(r, f, "status", "status", graphStatuses)
		field(r, f, "payload")
		field(r, f, "correlationId")
		field(r, f, "createdAt")
		field(r, f, "updatedAt")
		return r.End()
	}
	c = newCollection(env, GraphJobs, graphJobsTable, rows, nil)
	return c
}

// newPolicyJobs: Tier B, the same rule as graph_jobs; status stays text.
func newPolicyJobs(env transforms.Env) pipeline.Transform {
	var c *collection
	rows := func(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		f := newFields(doc)
		r := transforms.NewRow(out, c.tables, 0, opt)
		r.UUID(c.rowID(canonical))
		r.Text(canonical, "_id")
		field(r, f, "tenantId")
		field(r, f, "policyId")
		field(r, f, "policyVersion")
		field(r, f, "mode")
		field(r, f, "status")
		field(r, f, "priority")
		field(r, f, "inputs")
		field(r, f, "attempts")
		field(r, f, "lastError")
		field(r, f, "createdAt")
		field(r, f, "updatedAt")
		return r.End()
	}
	c = newCollection(env, PolicyJobs, policyJobsTable, rows, nil)
	return c
}

// newImpactSnapshots: Tier B, generated within 90 days.
func newImpactSnapshots(env transforms.Env) pipeline.Transform {
	var c *collection
	rows := func(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		f := newFields(doc)
		r := transforms.NewRow(out, c.tables, 0, opt)
		r.UUID(c.rowID(canonical))
		r.Text(canonical, "_id")
		field(r, f, "tenantId")
		field(r, f, "snapshotId")
		field(r, f, "selector")
		field(r, f, "images")
		field(r, f, "imageCount")
		field(r, f, "generatedAt")
		return r.End()
	}
	c = newCollection(env, ImpactSnapshots, impactSnapshotsTable, rows, nil)
	return c
}

// newLocks: Tier C, so the stage skips every document and the table stays empty. The mapping
// is the generic shape's all the same (cli.md, Inputs: tenant_id from a string tenant, else a
// string tenantId), so the transform stays correct should the tier ever change.
func newLocks(env transforms.Env) pipeline.Transform {
	var c *collection
	rows := func(doc bson.Raw, _ bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		f := newFields(doc)
		r := transforms.NewRow(out, c.tables, 0, opt)
		r.UUID(c.rowID(canonical))
		r.Text(canonical, "_id")
		tenant, path := bson.RawValue{}, "tenant"
		for _, key := range []string{"tenant", "tenantId"} {
			if v := f.get(key); v.Type == bson.TypeString {
				tenant, path = v, key
				break
			}
		}
		r.Value(tenant, path)
		r.Value(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}, "")
		return r.End()
	}
	c = newCollection(env, Locks, locksTable, rows, nil)
	return c
}
