package scheduler

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

var (
	runCreated  = asOf.Add(-days(20))
	runStarted  = runCreated.Add(3 * time.Second)
	runFinished = runCreated.Add(time.Hour)
)

func runDoc(id, tenant string, schedule any) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: tenant},
		{Key: "scheduleId", Value: schedule},
		{Key: "trigger", Value: "cron"},
		{Key: "state", Value: "completed"},
		{Key: "stats", Value: bson.D{{Key: "queued", Value: int32(7)}, {Key: "completed", Value: int32(5)}}},
		{Key: "reason", Value: bson.D{{Key: "cursor", Value: "abc"}}},
		{Key: "deltas", Value: bson.A{bson.D{{Key: "newFindings", Value: int32(2)}}}},
		{Key: "error", Value: nil},
		{Key: "createdAt", Value: dt(runCreated)},
		{Key: "startedAt", Value: dt(runStarted)},
		{Key: "finishedAt", Value: dt(runFinished)},
	}
}

// loaded schedules as the key pass reads them: id text, tenant.
var loadedParents = [][2]string{
	{uuidText(idOf("schedules", "sch_1")), "t1"},
	{uuidText(idOf("schedules", "sch_other")), "t2"},
	{uuidText(idOf("schedules", "65f0c0ffee65f0c0ffee0001")), "t1"}, // an ObjectId _id's hex
}

func runCells(id, tenant string, schedule cell, stats string) []cell {
	return []cell{
		cUUID(idOf("runs", id)), cText(id), cText(tenant), schedule, cText("cron"), cText("completed"),
		cJSON(stats), cJSON(`{"cursor": "abc"}`), cJSON(`[{"newFindings": 2}]`), nil,
		cTime(runCreated), cTime(runStarted), cTime(runFinished),
	}
}

func TestRunsMapping(t *testing.T) {
	sch := cUUID(idOf("schedules", "sch_1"))
	base := runDoc("run_1", "t1", "sch_1")
	statsWith := func(v any) bson.D {
		return set(base, "stats", bson.D{{Key: "completed", Value: v}})
	}
	oid, _ := bson.ObjectIDFromHex("65f0c0ffee65f0c0ffee0001")
	cases := []struct {
		name string
		doc  bson.D
		want outcome
	}{
		{name: "every column", doc: base, want: outcome{cells: runCells("run_1", "t1", sch, `{"queued": 7, "completed": 5}`)}},
		{name: "null scheduleId", doc: set(base, "scheduleId", nil), want: outcome{cells: runCells("run_1", "t1", nil, `{"queued": 7, "completed": 5}`)}},
		{name: "missing scheduleId", doc: del(base, "scheduleId"), want: outcome{cells: runCells("run_1", "t1", nil, `{"queued": 7, "completed": 5}`)}},
		{name: "ObjectId scheduleId maps through the schedules id function", doc: set(base, "scheduleId", oid),
			want: outcome{cells: runCells("run_1", "t1", cUUID(idOf("schedules", oid.Hex())), `{"queued": 7, "completed": 5}`)}},
		{name: "missing parent", doc: set(base, "scheduleId", "sch_gone"), want: outcome{path: "scheduleId", reason: "missing parent schedules/sch_gone"}},
		{name: "cross-tenant", doc: set(base, "scheduleId", "sch_other"), want: outcome{path: "scheduleId", reason: "cross-tenant reference schedules/sch_other"}},
		{name: "missing tenant comes first", doc: set(del(base, "tenantId"), "scheduleId", "sch_gone"), want: outcome{path: "tenantId", reason: "missing value for NOT NULL column tenant_id"}},
		{name: "missing stats", doc: del(base, "stats"), want: outcome{path: "stats", reason: "missing value for NOT NULL column stats"}},
		{name: "null stats", doc: set(base, "stats", nil), want: outcome{path: "stats", reason: "missing value for NOT NULL column stats"}},
		{name: "missing createdAt is outside the window", doc: del(base, "createdAt"), want: outcome{skip: "outside tier window"}},
		{name: "error text", doc: set(base, "error", "registry returned 429"), want: outcome{cells: func() []cell {
			c := runCells("run_1", "t1", sch, `{"queued": 7, "completed": 5}`)
			c[9] = cText("registry returned 429")
			return c
		}()}},
		// stats.completed feeds the generated stats_completed: what the cast would refuse rejects.
		{name: "completed missing", doc: set(base, "stats", bson.D{{Key: "queued", Value: int32(1)}}), want: outcome{cells: runCells("run_1", "t1", sch, `{"queued": 1}`)}},
		{name: "completed null", doc: statsWith(nil), want: outcome{cells: runCells("run_1", "t1", sch, `{"completed": null}`)}},
		{name: "completed int64", doc: statsWith(int64(-2147483648)), want: outcome{cells: runCells("run_1", "t1", sch, `{"completed": -2147483648}`)}},
		{name: "completed integral double", doc: statsWith(3.0), want: outcome{cells: runCells("run_1", "t1", sch, `{"completed": 3}`)}},
		{name: "completed integral decimal", doc: statsWith(dec(t, "3E+2")), want: outcome{cells: runCells("run_1", "t1", sch, `{"completed": 300}`)}},
		{name: "completed fraction", doc: statsWith(2.5), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer"}},
		{name: "completed decimal with a fraction digit", doc: statsWith(dec(t, "3.0")), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer"}},
		{name: "completed NaN", doc: statsWith(math.NaN()), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer"}},
		{name: "completed out of range", doc: statsWith(int64(2147483648)), want: outcome{path: "stats.completed", reason: "column stats_completed: value out of range for integer"}},
		{name: "completed huge double", doc: statsWith(1e20), want: outcome{path: "stats.completed", reason: "column stats_completed: value out of range for integer"}},
		{name: "completed string", doc: statsWith("12"), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer (found string)"}},
		{name: "completed bool", doc: statsWith(true), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer (found bool)"}},
		{name: "completed object", doc: statsWith(bson.D{}), want: outcome{path: "stats.completed", reason: "column stats_completed: not an integer (found object)"}},
		// stats that is no object gives a NULL stats_completed: ->> on an array or a string is NULL.
		{name: "stats array", doc: set(base, "stats", bson.A{int32(1)}), want: outcome{cells: runCells("run_1", "t1", sch, `[1]`)}},
	}
	for _, c := range cases {
		tr := newTransform(t, Runs, transforms.Options{})
		keyPass(t, tr, nil, loadedParents)
		check(t, c.name, apply(t, tr, mk(t, c.doc)), c.want)
	}
}

// Without a key pass no schedule is known: every reference is a missing parent.
func TestRunsWithoutKeyPass(t *testing.T) {
	tr := newTransform(t, Runs, transforms.Options{})
	check(t, "no parents", apply(t, tr, mk(t, runDoc("run_1", "t1", "sch_1"))), outcome{path: "scheduleId", reason: "missing parent schedules/sch_1"})
}

// Prepare refuses, with a clear error, a key pass that cannot read parents or create partitions.
func TestRunsKeyPassNeedsQueryAndExec(t *testing.T) {
	scan := func(func(bson.Raw) error) error { return nil }
	query := func(string, func([]*string) error) error { return nil }
	exec := func(string) error { return nil }
	cases := []struct {
		kp   pipeline.KeyPass
		want string
	}{
		{pipeline.KeyPass{Scan: scan, Exec: exec}, "scheduler.runs: key pass without Query: cannot read the loaded schedules"},
		{pipeline.KeyPass{Scan: scan, Query: query}, "scheduler.runs: key pass without Exec: cannot create the monthly partitions"},
		{pipeline.KeyPass{Query: query, Exec: exec}, "scheduler.runs: key pass without a Scan"},
	}
	for _, c := range cases {
		tr := newTransform(t, Runs, transforms.Options{}).(pipeline.Preparer)
		if err := tr.Prepare(context.Background(), c.kp); err == nil || err.Error() != c.want {
			t.Errorf("Prepare = %v, want %q", err, c.want)
		}
	}
	// A failing Exec stops the key pass, naming the partition.
	tr := newTransform(t, Runs, transforms.Options{}).(pipeline.Preparer)
	doc := mk(t, runDoc("run_1", "t1", nil))
	err := tr.Prepare(context.Background(), pipeline.KeyPass{
		Scan:  func(fn func(bson.Raw) error) error { return fn(doc) },
		Query: query,
		Exec:  func(string) error { return errors.New("permission denied") },
	})
	if err == nil || !strings.Contains(err.Error(), "create partition runs_y2026m05: permission denied") {
		t.Errorf("Prepare with a failing Exec = %v", err)
	}
}

func TestRunsTierWindow(t *testing.T) {
	cutoff := asOf.Add(-days(180))
	cases := []struct {
		name string
		at   any
		skip bool
	}{
		{"at the cutoff", dt(cutoff), false},
		{"one second inside", dt(cutoff.Add(time.Second)), false},
		{"one second outside", dt(cutoff.Add(-time.Second)), true},
		{"one millisecond outside", dt(cutoff.Add(-time.Millisecond)), true},
		{"after the as-of", dt(asOf.Add(days(3))), false},
		{"createdAt as a string", cutoff.Format(time.RFC3339), true},
		{"createdAt null", nil, true},
	}
	for _, c := range cases {
		tr := newTransform(t, Runs, transforms.Options{})
		keyPass(t, tr, nil, loadedParents)
		got := apply(t, tr, mk(t, set(runDoc("run_1", "t1", nil), "createdAt", c.at)))
		if skipped := got.v.Skip == "outside tier window"; skipped != c.skip || got.v.Reject != nil {
			t.Errorf("%s: skip %q reject %v, want skipped = %v", c.name, got.v.Skip, got.v.Reject, c.skip)
		}
	}
}

// The key pass creates one partition per month that a standing run falls in, in month order,
// and none for runs outside the window or rejected.
func TestRunsPartitions(t *testing.T) {
	at := func(id string, ts time.Time) bson.Raw {
		return mk(t, set(runDoc(id, "t1", nil), "createdAt", dt(ts)))
	}
	docs := []bson.Raw{
		at("r1", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)),                                                           // June, its first instant
		at("r2", time.Date(2026, 5, 31, 23, 59, 59, 999_000_000, time.UTC)),                                             // May, its last millisecond
		at("r3", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)),                                                          // January
		at("r4", time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)),                                                        // December 2025: cutoff is 2025-12-17T12:00Z
		at("r5", time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)),                                                          // June again
		at("r6", time.Date(2025, 11, 30, 0, 0, 0, 0, time.UTC)),                                                         // outside the window
		mk(t, set(runDoc("r7", "t1", "sch_gone"), "createdAt", dt(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)))),        // rejected: no March
		mk(t, del(set(runDoc("r8", "t1", nil), "createdAt", dt(time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC))), "stats")), // rejected: no April
		at("r9", time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)),                                                           // in the future: kept
	}
	want := []string{
		`CREATE TABLE IF NOT EXISTS "scheduler"."runs_y2025m12" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2025-12-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')`,
		`CREATE TABLE IF NOT EXISTS "scheduler"."runs_y2026m01" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`,
		`CREATE TABLE IF NOT EXISTS "scheduler"."runs_y2026m05" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2026-05-01 00:00:00+00') TO ('2026-06-01 00:00:00+00')`,
		`CREATE TABLE IF NOT EXISTS "scheduler"."runs_y2026m06" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2026-06-01 00:00:00+00') TO ('2026-07-01 00:00:00+00')`,
		`CREATE TABLE IF NOT EXISTS "scheduler"."runs_y2027m02" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2027-02-01 00:00:00+00') TO ('2027-03-01 00:00:00+00')`,
	}
	for _, order := range orders(len(docs)) {
		var scanned []bson.Raw
		for _, i := range order {
			scanned = append(scanned, docs[i])
		}
		got := keyPass(t, newTransform(t, Runs, transforms.Options{}), scanned, loadedParents)
		if !slices.Equal(got, want) {
			t.Errorf("order %v: DDL\n%s\nwant\n%s", order, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// Partition names and bounds at the edges of the calendar PostgreSQL can store.
func TestPartitionBounds(t *testing.T) {
	cases := []struct {
		m   month
		ddl string
	}{
		{month{2026, time.December}, `"runs_y2026m12" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')`},
		{month{999, time.March}, `"runs_y0999m03" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('0999-03-01 00:00:00+00') TO ('0999-04-01 00:00:00+00')`},
		{month{12345, time.July}, `"runs_y12345m07" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('12345-07-01 00:00:00+00') TO ('12345-08-01 00:00:00+00')`},
		{month{0, time.December}, `"runs_y0001bcm12" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('0001-12-01 00:00:00+00 BC') TO ('0001-01-01 00:00:00+00')`},
		{month{-4713, time.November}, `"runs_y4714bcm11" PARTITION OF "scheduler"."runs" FOR VALUES FROM (MINVALUE) TO ('4714-12-01 00:00:00+00 BC')`},
		{month{294276, time.December}, `"runs_y294276m12" PARTITION OF "scheduler"."runs" FOR VALUES FROM ('294276-12-01 00:00:00+00') TO (MAXVALUE)`},
	}
	for _, c := range cases {
		want := `CREATE TABLE IF NOT EXISTS "scheduler".` + c.ddl
		if got := partitionDDL(c.m); got != want {
			t.Errorf("%+v:\n got %s\nwant %s", c.m, got, want)
		}
	}
	if m := monthOf(time.Date(2026, 2, 28, 23, 59, 59, 999e6, time.UTC).UnixMilli()); m != (month{2026, time.February}) {
		t.Errorf("monthOf = %+v", m)
	}
}
