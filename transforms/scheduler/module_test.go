package scheduler

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

func TestModuleShape(t *testing.T) {
	m := Module()
	if m.Name != "scheduler" || m.Schema != "scheduler" || m.DB != "stellaops_scheduler" || m.Version != "scheduler/1" {
		t.Errorf("module facts %s %s %s %s", m.Name, m.Schema, m.DB, m.Version)
	}
	type shape struct {
		name, tier, filter, change, parents, tables string
	}
	want := []shape{
		{"schedules", "A", "all", "updatedAt", "", "scheduler.schedules"},
		{"runs", "B", `{"createdAt":{"$gte":{"$date":"2025-12-17T12:00:00.000Z"}}}`, "", "schedules", "scheduler.runs"},
		{"graph_jobs", "B", `{"$or":[{"status":{"$nin":["completed","failed","cancelled"]}},{"createdAt":{"$gte":{"$date":"2026-05-16T12:00:00.000Z"}}}]}`, "updatedAt", "", "scheduler.graph_jobs"},
		{"policy_jobs", "B", `{"$or":[{"status":{"$nin":["completed","failed","cancelled"]}},{"createdAt":{"$gte":{"$date":"2026-05-16T12:00:00.000Z"}}}]}`, "updatedAt", "", "scheduler.policy_jobs"},
		{"impact_snapshots", "B", `{"generatedAt":{"$gte":{"$date":"2026-03-17T12:00:00.000Z"}}}`, "generatedAt", "", "scheduler.impact_snapshots"},
		{"locks", "C", "none (tier C)", "", "", "scheduler.locks"},
	}
	if len(m.Collections) != len(want) {
		t.Fatalf("%d collections", len(m.Collections))
	}
	for i, c := range m.Collections {
		var tables []string
		for _, tb := range c.Tables {
			tables = append(tables, tb.FullName())
		}
		got := shape{c.Name, c.Tier.Name, c.Tier.Bind(asOf).String(), c.ChangeField, strings.Join(c.Parents, ","), strings.Join(tables, ",")}
		if got != want[i] {
			t.Errorf("collection %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
	// Generated columns are never written: runs writes every column but stats_completed.
	var written []string
	for _, c := range runsTable.Written() {
		written = append(written, c.Name)
	}
	if strings.Join(written, ",") != "id,mongo_id,tenant_id,schedule_id,trigger,state,stats,reason,deltas,error,created_at,started_at,finished_at" {
		t.Errorf("runs writes %v", written)
	}
	if len(m.Migrations) != 1 || !strings.Contains(m.Migrations[0].SQL, "PARTITION BY RANGE (created_at)") {
		t.Errorf("migrations %v", m.Migrations)
	}
	// An operator may override a window's days; the jobs rule's window moves with it.
	jobs, err := m.Jobs(asOf, transforms.Options{}, transforms.Override{TierDays: map[string]int{"graph_jobs": 7}}, map[string]bool{"graph_jobs": true})
	if err != nil || len(jobs) != 1 || !strings.Contains(string(jobs[0].Filter), "2026-06-08T12:00:00.000Z") {
		t.Errorf("override: %v %v", jobs, err)
	}
}

// Apply is safe for concurrent use once Prepare is done (go test -race).
func TestApplyConcurrently(t *testing.T) {
	tr := newTransform(t, Runs, transforms.Options{})
	var docs []bson.Raw
	for i := range 50 {
		docs = append(docs, mk(t, runDoc(fmt.Sprintf("run_%02d", i), "t1", "sch_1")))
	}
	keyPass(t, tr, docs, loadedParents)
	sch := newTransform(t, Schedules, transforms.Options{})
	var sdocs []bson.Raw
	for i := range 50 {
		sdocs = append(sdocs, mk(t, scheduleDoc(fmt.Sprintf("sch_%02d", i), "t1", fmt.Sprint("n", i%5))))
	}
	keyPass(t, sch, sdocs, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var buf pipeline.RowBuffer
			for i := range docs {
				buf.Reset()
				if v := tr.Apply(docs[(i+w)%len(docs)], &buf); v.Reject != nil || v.Skip != "" {
					t.Errorf("run rejected: %v %s", v.Reject, v.Skip)
				}
				buf.Reset()
				v := sch.Apply(sdocs[(i+w)%len(sdocs)], &buf)
				if wantLoad := (i+w)%len(sdocs) < 5; (v.Reject == nil) != wantLoad {
					t.Errorf("schedule %d: reject %v", (i+w)%len(sdocs), v.Reject)
				}
			}
		})
	}
	wg.Wait()
}
