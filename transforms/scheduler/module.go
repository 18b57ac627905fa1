package scheduler

import (
	_ "embed"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// Module facts (modules.md, Scheduler).
const (
	Name    = "scheduler"
	Schema  = "scheduler"
	DB      = "stellaops_scheduler"
	Version = "scheduler/1"
)

// Default source collection names: ids are always derived from these, whatever a deployment
// calls its collections.
const (
	Schedules       = "schedules"
	Runs            = "runs"
	GraphJobs       = "graph_jobs"
	PolicyJobs      = "policy_jobs"
	ImpactSnapshots = "impact_snapshots"
	Locks           = "locks"
)

// Tier rules that modules.md states in words.
const (
	runsDays   = 180
	jobsDays   = 30
	impactDays = 90
)

// terminal job statuses (modules.md, Rules that cut across modules): anything else is active.
var terminal = []string{"completed", "failed", "cancelled"}

//go:embed migrations/0001_tables.sql
var migration0001 string

// Module is the scheduler module: its schema's migrations and its collections in load order
// (schedules before runs, whose schedule_id references them).
func Module() transforms.Module {
	activeOrRecent := tiers.Tier{Name: tiers.B, Keep: tiers.Or{
		tiers.NotIn{Field: "status", Values: terminal},
		tiers.Window{Field: "createdAt", Days: jobsDays},
	}}
	return transforms.Module{
		Name: Name, Schema: Schema, DB: DB, Version: Version,
		Migrations: []transforms.Migration{{Name: "scheduler tables", SQL: migration0001}},
		Collections: []transforms.Collection{
			{Name: Schedules, Tier: tiers.Full(), ChangeField: "updatedAt",
				Tables: []pipeline.Table{schedulesTable}, New: newSchedules},
			{Name: Runs, Tier: tiers.Recent("createdAt", runsDays), Parents: []string{Schedules},
				Tables: []pipeline.Table{runsTable}, New: newRuns},
			{Name: GraphJobs, Tier: activeOrRecent, ChangeField: "updatedAt",
				Tables: []pipeline.Table{graphJobsTable}, New: newGraphJobs},
			{Name: PolicyJobs, Tier: activeOrRecent, ChangeField: "updatedAt",
				Tables: []pipeline.Table{policyJobsTable}, New: newPolicyJobs},
			{Name: ImpactSnapshots, Tier: tiers.Recent("generatedAt", impactDays), ChangeField: "generatedAt",
				Tables: []pipeline.Table{impactSnapshotsTable}, New: newImpactSnapshots},
			{Name: Locks, Tier: tiers.Fresh(),
				Tables: []pipeline.Table{locksTable}, New: newLocks},
		},
	}
}
