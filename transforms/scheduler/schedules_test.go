package scheduler

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/transforms"
)

var (
	created = time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	updated = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	deleted = time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
)

func scheduleDoc(id any, tenant, name string) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: tenant},
		{Key: "name", Value: name},
		{Key: "enabled", Value: true},
		{Key: "cronExpression", Value: "0 2 * * *"},
		{Key: "timezone", Value: "UTC"},
		{Key: "mode", Value: "analysis-only"},
		{Key: "selection", Value: bson.D{{Key: "scope", Value: "by-namespace"}, {Key: "namespaces", Value: bson.A{"prod", "edge"}}}},
		{Key: "onlyIf", Value: bson.D{{Key: "lastReportOlderThanDays", Value: int32(3)}, {Key: "policyRevision", Value: nil}}},
		{Key: "notify", Value: bson.D{{Key: "onNewFindings", Value: true}, {Key: "minSeverity", Value: "high"}}},
		{Key: "limits", Value: bson.D{{Key: "maxJobs", Value: int64(120)}, {Key: "ratePerSecond", Value: 2.5}}},
		{Key: "createdAt", Value: dt(created)},
		{Key: "createdBy", Value: "alice"},
		{Key: "updatedAt", Value: dt(updated)},
		{Key: "updatedBy", Value: "bob"},
		{Key: "deletedAt", Value: nil},
		{Key: "deletedBy", Value: nil},
		{Key: "schemaVersion", Value: "scheduler.schedule@1"}, // ignored: schedules keep no doc
	}
}

func scheduleCells(canonical, tenant, name string) []cell {
	return []cell{
		cUUID(idOf("schedules", canonical)), cText(canonical), cText(tenant), cText(name),
		cBool(true), cText("0 2 * * *"), cText("UTC"), cText("analysis-only"),
		cJSON(`{"scope": "by-namespace", "namespaces": ["prod", "edge"]}`),
		cJSON(`{"policyRevision": null, "lastReportOlderThanDays": 3}`),
		cJSON(`{"minSeverity": "high", "onNewFindings": true}`),
		cJSON(`{"maxJobs": 120, "ratePerSecond": 2.5}`),
		cTime(created), cText("alice"), cTime(updated), cText("bob"), nil, nil,
	}
}

func TestSchedulesMapping(t *testing.T) {
	base := scheduleDoc("sch_01", "default", "nightly")
	full := scheduleCells("sch_01", "default", "nightly")
	withCell := func(i int, c cell) []cell {
		out := append([]cell(nil), full...)
		out[i] = c
		return out
	}
	oid := bson.NewObjectIDFromTimestamp(created)
	cases := []struct {
		name string
		doc  bson.D
		opt  transforms.Options
		want outcome
	}{
		{name: "every column", doc: base, want: outcome{cells: full}},
		{name: "soft-deleted loads", doc: set(set(base, "deletedAt", dt(deleted)), "deletedBy", "carol"),
			want: outcome{cells: append(withCell(16, cTime(deleted))[:17], cText("carol"))}},
		{name: "only the NOT NULL columns", doc: bson.D{{Key: "_id", Value: "sch_01"}, {Key: "tenantId", Value: "default"}, {Key: "name", Value: "nightly"}},
			want: outcome{cells: []cell{cUUID(idOf("schedules", "sch_01")), cText("sch_01"), cText("default"), cText("nightly"),
				nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}}},
		{name: "ObjectId _id", doc: set(base, "_id", oid), want: outcome{cells: append([]cell{cUUID(idOf("schedules", oid.Hex())), cText(oid.Hex())}, full[2:]...)}},
		{name: "ObjectId tenant is its hex", doc: set(base, "tenantId", oid), want: outcome{cells: withCell(2, cText(oid.Hex()))}},
		{name: "missing tenant", doc: del(base, "tenantId"), want: outcome{path: "tenantId", reason: "missing value for NOT NULL column tenant_id"}},
		{name: "null name", doc: set(base, "name", nil), want: outcome{path: "name", reason: "missing value for NOT NULL column name"}},
		{name: "name of the wrong type", doc: set(base, "name", int32(4)), want: outcome{path: "name", reason: "column name: expected text, found int"}},
		{name: "NUL in name", doc: set(base, "name", "night\x00ly"), want: outcome{path: "name", reason: "column name: string contains NUL"}},
		{name: "NUL in name fixed", doc: set(base, "name", "night\x00ly"), opt: transforms.Options{FixStrings: true},
			want: outcome{cells: full, fixed: 1}},
		{name: "invalid UTF-8 in _id", doc: set(base, "_id", "sch_\xff"), want: outcome{path: "_id", reason: "string is not valid UTF-8"}},
		{name: "enabled as string", doc: set(base, "enabled", "yes"), want: outcome{path: "enabled", reason: "column enabled: expected boolean, found string"}},
		{name: "duplicate key in selection", doc: set(base, "selection", bson.D{{Key: "scope", Value: "a"}, {Key: "scope", Value: "b"}}),
			want: outcome{path: "selection.scope", reason: `column selection: duplicate key "scope"`}},
		{name: "date out of range", doc: set(base, "createdAt", bson.DateTime(1<<62)), want: outcome{path: "createdAt", reason: "column created_at: date out of range for timestamptz"}},
		{name: "NUL in an ignored field", doc: set(base, "schemaVersion", "x\x00"), want: outcome{cells: full}},
	}
	for _, c := range cases {
		tr := newTransform(t, Schedules, c.opt)
		check(t, c.name, apply(t, tr, mk(t, c.doc)), c.want)
	}
}

// orders are the scan and apply orders every cross-document test is run in: the outcome must
// not depend on them.
func orders(n int) [][]int {
	fwd, rev, mid := make([]int, n), make([]int, n), make([]int, 0, n)
	for i := range n {
		fwd[i], rev[i] = i, n-1-i
	}
	for i := 0; i < n; i += 2 {
		mid = append(mid, i)
	}
	for i := 1; i < n; i += 2 {
		mid = append(mid, i)
	}
	return [][]int{fwd, rev, mid}
}

// crossDoc runs Prepare over docs and Apply to each, in several orders, and checks every
// document's outcome: "" loads, else the reject reason.
func crossDoc(t *testing.T, coll string, opt transforms.Options, docs []bson.Raw, want []string, parents [][2]string) {
	t.Helper()
	for _, scan := range orders(len(docs)) {
		for _, applyOrder := range orders(len(docs)) {
			tr := newTransform(t, coll, opt)
			var scanned []bson.Raw
			for _, i := range scan {
				scanned = append(scanned, docs[i])
			}
			keyPass(t, tr, scanned, parents)
			for _, i := range applyOrder {
				got := apply(t, tr, docs[i])
				reason := ""
				if got.v.Reject != nil {
					reason = got.v.Reject.Reason
				}
				if got.v.Skip != "" {
					reason = "skip: " + got.v.Skip
				}
				if reason != want[i] {
					t.Errorf("scan %v apply %v: document %d: got %q, want %q", scan, applyOrder, i, reason, want[i])
				}
			}
		}
	}
}

func TestSchedulesUniqueKey(t *testing.T) {
	docs := []bson.Raw{
		0: mk(t, scheduleDoc("sch_b", "t1", "nightly")),
		1: mk(t, scheduleDoc("sch_c", "t1", "nightly")),
		2: mk(t, scheduleDoc("sch_a", "t1", "nightly")), // the smallest live _id: wins
		// Soft-deleted: holds no key, loads beside the live one, and does not win although
		// its _id is the smallest.
		3: mk(t, set(scheduleDoc("sch_0", "t1", "nightly"), "deletedAt", dt(deleted))),
		// Rejected by a value check: not standing, so it does not take the key from sch_a.
		4: mk(t, set(scheduleDoc("sch_00", "t1", "nightly"), "enabled", "yes")),
		5: mk(t, scheduleDoc("sch_d", "t2", "nightly")), // another tenant: its own key
		6: mk(t, scheduleDoc("sch_e", "t1", "Nightly")), // bytewise different name
	}
	held := "unique key (tenant_id, name) already held by _id sch_a"
	want := []string{held, held, "", "", "column enabled: expected boolean, found string", "", ""}
	crossDoc(t, Schedules, transforms.Options{}, docs, want, nil)
}

// Under --fix-strings two names that differ only by a NUL store the same name, so they collide.
func TestSchedulesUniqueKeyAfterFixStrings(t *testing.T) {
	docs := []bson.Raw{
		mk(t, scheduleDoc("sch_2", "t1", "night\x00ly")),
		mk(t, scheduleDoc("sch_1", "t1", "nightly")),
	}
	crossDoc(t, Schedules, transforms.Options{FixStrings: true}, docs,
		[]string{"unique key (tenant_id, name) already held by _id sch_1", ""}, nil)
	crossDoc(t, Schedules, transforms.Options{}, docs, []string{"column name: string contains NUL", ""}, nil)
}

func TestSchedulesIdentityCollision(t *testing.T) {
	oid := bson.NewObjectIDFromTimestamp(created)
	docs := []bson.Raw{
		0: mk(t, scheduleDoc(oid, "t1", "a")),
		1: mk(t, scheduleDoc(oid.Hex(), "t1", "b")), // strings sort before ObjectIds: wins
		2: mk(t, scheduleDoc(int32(5), "t1", "c")),  // numbers sort before strings: wins
		3: mk(t, scheduleDoc(`{"$numberInt":"5"}`, "t1", "d")),
		4: mk(t, scheduleDoc(true, "t1", "e")), // booleans sort after strings
		5: mk(t, scheduleDoc("true", "t1", "f")),
		6: mk(t, scheduleDoc("sch_plain", "t1", "g")),
	}
	want := []string{"identity collision " + oid.Hex(), "", "", `identity collision {"$numberInt":"5"}`, "identity collision true", "", ""}
	crossDoc(t, Schedules, transforms.Options{}, docs, want, nil)
}

// An identity loser holds no unique key: the name goes to the next live schedule.
func TestSchedulesIdentityLoserHoldsNoKey(t *testing.T) {
	docs := []bson.Raw{
		0: mk(t, scheduleDoc(int32(1), "t1", "x")),
		1: mk(t, scheduleDoc(`{"$numberInt":"1"}`, "t1", "nightly")), // loses its identity
		// An ObjectId sorts after every string, so only the exclusion of the identity loser
		// lets it hold the name.
		2: mk(t, scheduleDoc(bson.NewObjectIDFromTimestamp(created), "t1", "nightly")),
	}
	want := []string{"", `identity collision {"$numberInt":"1"}`, ""}
	crossDoc(t, Schedules, transforms.Options{}, docs, want, nil)
}
