package scheduler

import "github.com/stellaops/convert/pipeline"

// The target tables, column for column in the order of migrations/0001_tables.sql: the
// target validates the database against them and rows are written in this order.

func col(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t}
}

func notNull(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t, NotNull: true}
}

// identity is the columns every scheduler table starts with.
func identity() []pipeline.Column {
	return []pipeline.Column{
		notNull("id", pipeline.TypeUUID),
		notNull("mongo_id", pipeline.TypeText),
		notNull("tenant_id", pipeline.TypeText),
	}
}

// schedulesTable is scheduler.schedules; (tenant_id, name) is unique among live schedules (a
// partial unique index WHERE deleted_at IS NULL).
var schedulesTable = pipeline.Table{
	Schema: Schema, Name: "schedules", PrimaryKey: []string{"id"},
	Unique: [][]string{{"tenant_id", "name"}},
	Columns: append(identity(),
		notNull("name", pipeline.TypeText),
		col("enabled", pipeline.TypeBool),
		col("cron_expression", pipeline.TypeText),
		col("timezone", pipeline.TypeText),
		col("mode", pipeline.TypeText),
		col("selection", pipeline.TypeJSONB),
		col("only_if", pipeline.TypeJSONB),
		col("notify", pipeline.TypeJSONB),
		col("limits", pipeline.TypeJSONB),
		col("created_at", pipeline.TypeTimestamptz),
		col("created_by", pipeline.TypeText),
		col("updated_at", pipeline.TypeTimestamptz),
		col("updated_by", pipeline.TypeText),
		col("deleted_at", pipeline.TypeTimestamptz),
		col("deleted_by", pipeline.TypeText),
	),
}

// statsCompleted is the generated column's expression; the column is never written and is
// left out of checksums.
const statsCompleted = "(stats->>'completed')::int"

// runsTable is scheduler.runs, partitioned by month on created_at (the parent table is what
// the target validates and what rows are copied into).
var runsTable = pipeline.Table{
	Schema: Schema, Name: "runs", PrimaryKey: []string{"id", "created_at"},
	Columns: append(identity(),
		col("schedule_id", pipeline.TypeUUID),
		col("trigger", pipeline.TypeText),
		col("state", pipeline.TypeText),
		notNull("stats", pipeline.TypeJSONB),
		col("reason", pipeline.TypeJSONB),
		col("deltas", pipeline.TypeJSONB),
		col("error", pipeline.TypeText),
		notNull("created_at", pipeline.TypeTimestamptz),
		col("started_at", pipeline.TypeTimestamptz),
		col("finished_at", pipeline.TypeTimestamptz),
		pipeline.Column{Name: "stats_completed", Type: pipeline.TypeInt4, Generated: statsCompleted},
	),
}

// graphJobsTable is scheduler.graph_jobs; type and status are enum codes (graphTypes,
// graphStatuses).
var graphJobsTable = pipeline.Table{
	Schema: Schema, Name: "graph_jobs", PrimaryKey: []string{"id"},
	Columns: append(identity(),
		notNull("type", pipeline.TypeInt2),
		notNull("status", pipeline.TypeInt2),
		notNull("payload", pipeline.TypeJSONB),
		col("correlation_id", pipeline.TypeText),
		notNull("created_at", pipeline.TypeTimestamptz),
		notNull("updated_at", pipeline.TypeTimestamptz),
	),
}

// policyJobsTable is scheduler.policy_jobs.
var policyJobsTable = pipeline.Table{
	Schema: Schema, Name: "policy_jobs", PrimaryKey: []string{"id"},
	Columns: append(identity(),
		notNull("policy_id", pipeline.TypeText),
		col("policy_version", pipeline.TypeInt4),
		col("mode", pipeline.TypeText),
		col("status", pipeline.TypeText),
		col("priority", pipeline.TypeInt4),
		col("inputs", pipeline.TypeJSONB),
		col("attempts", pipeline.TypeInt4),
		col("last_error", pipeline.TypeText),
		notNull("created_at", pipeline.TypeTimestamptz),
		col("updated_at", pipeline.TypeTimestamptz),
	),
}

// impactSnapshotsTable is scheduler.impact_snapshots.
var impactSnapshotsTable = pipeline.Table{
	Schema: Schema, Name: "impact_snapshots", PrimaryKey: []string{"id"},
	Columns: append(identity(),
		col("snapshot_id", pipeline.TypeText),
		col("selector", pipeline.TypeJSONB),
		col("images", pipeline.TypeJSONB),
		col("image_count", pipeline.TypeInt4),
		notNull("generated_at", pipeline.TypeTimestamptz),
	),
}

// locksTable is scheduler.locks, Tier C: created empty in the generic shape (cli.md, Inputs).
var locksTable = pipeline.Table{
	Schema: Schema, Name: "locks", PrimaryKey: []string{"id"},
	Columns: []pipeline.Column{
		notNull("id", pipeline.TypeUUID),
		notNull("mongo_id", pipeline.TypeText),
		col("tenant_id", pipeline.TypeText),
		notNull("doc", pipeline.TypeJSONB),
	},
}
