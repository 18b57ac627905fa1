package scheduler

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

var (
	jobCreated = asOf.Add(-days(2))
	jobUpdated = jobCreated.Add(90 * time.Second)
)

func graphJobDoc(id, typ, status string) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: "t1"},
		{Key: "type", Value: typ},
		{Key: "status", Value: status},
		{Key: "payload", Value: bson.D{{Key: "sbomId", Value: "sbom-1"}, {Key: "overlayKey", Value: "P-3"}}},
		{Key: "correlationId", Value: "corr-9"},
		{Key: "createdAt", Value: dt(jobCreated)},
		{Key: "updatedAt", Value: dt(jobUpdated)},
	}
}

func graphJobCells(id string, typ, status int16) []cell {
	return []cell{cUUID(idOf("graph_jobs", id)), cText(id), cText("t1"), cInt2(typ), cInt2(status),
		cJSON(`{"sbomId": "sbom-1", "overlayKey": "P-3"}`), cText("corr-9"), cTime(jobCreated), cTime(jobUpdated)}
}

func TestGraphJobsMapping(t *testing.T) {
	type tc struct {
		name string
		doc  bson.D
		want outcome
	}
	var cases []tc
	for typ, tcode := range map[string]int16{"build": 0, "overlay": 1} {
		for status, scode := range map[string]int16{"pending": 0, "queued": 1, "running": 2, "completed": 3, "failed": 4, "cancelled": 5} {
			cases = append(cases, tc{name: typ + "/" + status, doc: graphJobDoc("gbj_1", typ, status), want: outcome{cells: graphJobCells("gbj_1", tcode, scode)}})
		}
	}
	base := graphJobDoc("gbj_1", "build", "running")
	cases = append(cases,
		tc{name: "unknown type", doc: set(base, "type", "rebuild"), want: outcome{path: "type", reason: `column type: unknown value "rebuild"`}},
		tc{name: "type in another case", doc: set(base, "type", "Build"), want: outcome{path: "type", reason: `column type: unknown value "Build"`}},
		tc{name: "unknown status", doc: set(base, "status", "paused"), want: outcome{path: "status", reason: `column status: unknown value "paused"`}},
		tc{name: "unknown status with a NUL is quoted", doc: set(base, "status", "run\x00ning"), want: outcome{path: "status", reason: `column status: unknown value "run\x00ning"`}},
		tc{name: "status as a number", doc: set(base, "status", int32(2)), want: outcome{path: "status", reason: "column status: expected an enum name (string), found int"}},
		tc{name: "missing type", doc: del(base, "type"), want: outcome{path: "type", reason: "missing value for NOT NULL column type"}},
		tc{name: "missing status is active, then rejected", doc: del(base, "status"), want: outcome{path: "status", reason: "missing value for NOT NULL column status"}},
		tc{name: "missing payload", doc: del(base, "payload"), want: outcome{path: "payload", reason: "missing value for NOT NULL column payload"}},
		tc{name: "missing updatedAt", doc: del(base, "updatedAt"), want: outcome{path: "updatedAt", reason: "missing value for NOT NULL column updated_at"}},
		tc{name: "missing createdAt of an active job", doc: del(base, "createdAt"), want: outcome{path: "createdAt", reason: "missing value for NOT NULL column created_at"}},
		tc{name: "null correlationId", doc: set(base, "correlationId", nil), want: outcome{cells: func() []cell {
			c := graphJobCells("gbj_1", 0, 2)
			c[6] = nil
			return c
		}()}},
	)
	for _, c := range cases {
		tr := newTransform(t, GraphJobs, transforms.Options{})
		check(t, c.name, apply(t, tr, mk(t, c.doc)), c.want)
	}
}

// The active-or-recent rule of graph_jobs and policy_jobs: a terminal job is kept only within
// 30 days of its createdAt; any other status is kept whatever its age.
func TestJobsTier(t *testing.T) {
	cutoff := asOf.Add(-days(30))
	cases := []struct {
		name   string
		status any
		at     any
		kept   bool
	}{
		{"completed, one second inside", "completed", dt(cutoff.Add(time.Second)), true},
		{"completed, at the cutoff", "completed", dt(cutoff), true},
		{"completed, one second outside", "completed", dt(cutoff.Add(-time.Second)), false},
		{"failed, one second outside", "failed", dt(cutoff.Add(-time.Second)), false},
		{"cancelled, one second outside", "cancelled", dt(cutoff.Add(-time.Second)), false},
		{"cancelled, one second inside", "cancelled", dt(cutoff.Add(time.Second)), true},
		{"running, 200 days old", "running", dt(asOf.Add(-days(200))), true},
		{"pending, one second outside", "pending", dt(cutoff.Add(-time.Second)), true},
		{"queued, no createdAt", "queued", nil, true},
		{"completed, no createdAt", "completed", nil, false},
		{"completed, createdAt as a string", "completed", cutoff.Add(time.Hour).Format(time.RFC3339), false},
		{"Completed (not a terminal name), old", "Completed", dt(asOf.Add(-days(90))), true},
		{"status missing, old", nil, dt(asOf.Add(-days(90))), true},
	}
	for _, coll := range []string{GraphJobs, PolicyJobs} {
		for _, c := range cases {
			var doc bson.D
			if coll == GraphJobs {
				doc = graphJobDoc("j1", "build", "x")
			} else {
				doc = policyJobDoc("j1", "x")
			}
			doc = set(set(doc, "createdAt", c.at), "status", c.status)
			if c.status == nil {
				doc = del(doc, "status")
			}
			got := apply(t, newTransform(t, coll, transforms.Options{}), mk(t, doc))
			if kept := got.v.Skip == ""; kept != c.kept {
				t.Errorf("%s: %s: skip %q, want kept = %v", coll, c.name, got.v.Skip, c.kept)
			}
			if !c.kept && got.v.Skip != "outside tier window" {
				t.Errorf("%s: %s: skip reason %q", coll, c.name, got.v.Skip)
			}
		}
	}
}

func policyJobDoc(id, status string) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: "t2"},
		{Key: "policyId", Value: "P-7"},
		{Key: "policyVersion", Value: int32(4)},
		{Key: "mode", Value: "incremental"},
		{Key: "status", Value: status},
		{Key: "priority", Value: int64(50)},
		{Key: "inputs", Value: bson.D{{Key: "sbomSet", Value: bson.A{"sbom-1"}}, {Key: "vexCursor", Value: nil}}},
		{Key: "attempts", Value: int32(2)},
		{Key: "lastError", Value: "evaluation timed out"},
		{Key: "createdAt", Value: dt(jobCreated)},
		{Key: "updatedAt", Value: dt(jobUpdated)},
	}
}

func TestPolicyJobsMapping(t *testing.T) {
	base := policyJobDoc("prj_1", "dispatching")
	full := []cell{cUUID(idOf("policy_jobs", "prj_1")), cText("prj_1"), cText("t2"), cText("P-7"), cInt4(4), cText("incremental"),
		cText("dispatching"), cInt4(50), cJSON(`{"sbomSet": ["sbom-1"], "vexCursor": null}`), cInt4(2), cText("evaluation timed out"),
		cTime(jobCreated), cTime(jobUpdated)}
	cases := []struct {
		name string
		doc  bson.D
		want outcome
	}{
		{name: "every column (status is text: any name)", doc: base, want: outcome{cells: full}},
		{name: "only the NOT NULL columns", doc: bson.D{{Key: "_id", Value: "prj_1"}, {Key: "tenantId", Value: "t2"}, {Key: "policyId", Value: "P-7"}, {Key: "createdAt", Value: dt(jobCreated)}},
			want: outcome{cells: []cell{full[0], full[1], full[2], full[3], nil, nil, nil, nil, nil, nil, nil, full[11], nil}}},
		{name: "missing policyId", doc: del(base, "policyId"), want: outcome{path: "policyId", reason: "missing value for NOT NULL column policy_id"}},
		{name: "policyVersion out of range", doc: set(base, "policyVersion", int64(1)<<40), want: outcome{path: "policyVersion", reason: "column policy_version: value out of range for integer"}},
		{name: "priority as a double", doc: set(base, "priority", 50.0), want: outcome{path: "priority", reason: "column priority: expected integer, found double"}},
		{name: "missing createdAt of an active job", doc: del(base, "createdAt"), want: outcome{path: "createdAt", reason: "missing value for NOT NULL column created_at"}},
		{name: "missing updatedAt is NULL", doc: del(base, "updatedAt"), want: outcome{cells: append(append([]cell(nil), full[:12]...), nil)}},
	}
	for _, c := range cases {
		check(t, c.name, apply(t, newTransform(t, PolicyJobs, transforms.Options{}), mk(t, c.doc)), c.want)
	}
}

func impactDoc(id bson.ObjectID, at time.Time) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: "t1"},
		{Key: "snapshotId", Value: "impact-1"},
		{Key: "selector", Value: bson.D{{Key: "scope", Value: "by-namespace"}, {Key: "tenantId", Value: "t1"}}},
		{Key: "images", Value: bson.A{bson.D{{Key: "imageDigest", Value: "sha256:ab"}, {Key: "tags", Value: bson.A{"latest"}}}}},
		{Key: "imageCount", Value: int32(1)},
		{Key: "generatedAt", Value: dt(at)},
	}
}

func TestImpactSnapshotsMapping(t *testing.T) {
	id := bson.NewObjectIDFromTimestamp(jobCreated)
	at := asOf.Add(-days(1))
	base := impactDoc(id, at)
	full := []cell{cUUID(idOf("impact_snapshots", id.Hex())), cText(id.Hex()), cText("t1"), cText("impact-1"),
		cJSON(`{"scope": "by-namespace", "tenantId": "t1"}`), cJSON(`[{"tags": ["latest"], "imageDigest": "sha256:ab"}]`),
		cInt4(1), cTime(at)}
	cutoff := asOf.Add(-days(90))
	cases := []struct {
		name string
		doc  bson.D
		want outcome
	}{
		{name: "every column", doc: base, want: outcome{cells: full}},
		{name: "imageCount as int64 in range", doc: set(base, "imageCount", int64(1)), want: outcome{cells: full}},
		{name: "imageCount as a double", doc: set(base, "imageCount", 1.0), want: outcome{path: "imageCount", reason: "column image_count: expected integer, found double"}},
		{name: "missing tenant", doc: del(base, "tenantId"), want: outcome{path: "tenantId", reason: "missing value for NOT NULL column tenant_id"}},
		{name: "one second inside", doc: set(base, "generatedAt", dt(cutoff.Add(time.Second))),
			want: outcome{cells: append(append([]cell(nil), full[:7]...), cTime(cutoff.Add(time.Second)))}},
		{name: "at the cutoff", doc: set(base, "generatedAt", dt(cutoff)), want: outcome{cells: append(append([]cell(nil), full[:7]...), cTime(cutoff))}},
		{name: "one second outside", doc: set(base, "generatedAt", dt(cutoff.Add(-time.Second))), want: outcome{skip: "outside tier window"}},
		{name: "no generatedAt", doc: del(base, "generatedAt"), want: outcome{skip: "outside tier window"}},
	}
	for _, c := range cases {
		check(t, c.name, apply(t, newTransform(t, ImpactSnapshots, transforms.Options{}), mk(t, c.doc)), c.want)
	}
}

func TestLocksTierC(t *testing.T) {
	for _, d := range []bson.D{
		{{Key: "_id", Value: "scheduler:planner"}, {Key: "holder", Value: "w1"}, {Key: "expiresAt", Value: dt(asOf)}},
		{{Key: "_id", Value: "x\x00"}}, // even a document that would be rejected is skipped
	} {
		check(t, "lock", apply(t, newTransform(t, Locks, transforms.Options{}), mk(t, d)), outcome{skip: "tier C"})
	}
}

// Identity collisions are decided in every collection, not only schedules.
func TestJobsIdentityCollision(t *testing.T) {
	oid := bson.NewObjectIDFromTimestamp(jobCreated)
	docs := []bson.Raw{
		mk(t, set(graphJobDoc("x", "build", "running"), "_id", oid)),
		mk(t, graphJobDoc(oid.Hex(), "build", "running")),
		// Outside the window: not standing, so the ObjectId below keeps its id.
		mk(t, set(set(graphJobDoc("y", "build", "completed"), "_id", "65f0c0ffee65f0c0ffee0002"), "createdAt", dt(asOf.Add(-days(100))))),
		mk(t, set(graphJobDoc("y", "build", "running"), "_id", mustOID(t, "65f0c0ffee65f0c0ffee0002"))),
	}
	crossDoc(t, GraphJobs, transforms.Options{}, docs, []string{"identity collision " + oid.Hex(), "", "skip: outside tier window", ""}, nil)
}

func mustOID(t testing.TB, h string) bson.ObjectID {
	t.Helper()
	o, err := bson.ObjectIDFromHex(h)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Where only identity collisions are at stake and the source reports one _id type class, the
// key pass reads nothing; schedules (unique key) and runs (partitions, parents) always scan.
func TestKeyPassScansOnlyWhenNeeded(t *testing.T) {
	for coll, wantScan := range map[string]bool{GraphJobs: false, PolicyJobs: false, ImpactSnapshots: false, Schedules: true, Runs: true} {
		scanned := false
		kp := pipeline.KeyPass{
			IDClasses: []string{"string"},
			Scan:      func(func(bson.Raw) error) error { scanned = true; return nil },
			Query:     func(string, func([]*string) error) error { return nil },
			Exec:      func(string) error { return nil },
		}
		if err := newTransform(t, coll, transforms.Options{}).(pipeline.Preparer).Prepare(context.Background(), kp); err != nil {
			t.Fatal(err)
		}
		if scanned != wantScan {
			t.Errorf("%s: scanned = %v, want %v", coll, scanned, wantScan)
		}
	}
}
