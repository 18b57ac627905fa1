// Package scheduler converts StellaOps' Scheduler module, MongoDB database stellaops_scheduler,
// into the PostgreSQL schema scheduler. The contract is shared/spec/modules.md
// (Scheduler, Source documents, Rules that cut across modules) and mapping.md; this package
// implements it and points there rather than restating it.
//
// Module returns the module: its forward-only migration (migrations/0001_tables.sql) and its
// collections in load order:
//
//	schedules         Tier A (soft-deleted too)           → scheduler.schedules
//	runs              Tier B, createdAt within 180 days   → scheduler.runs (monthly partitions)
//	graph_jobs        Tier B, active or within 30 days    → scheduler.graph_jobs
//	policy_jobs       Tier B, active or within 30 days    → scheduler.policy_jobs
//	impact_snapshots  Tier B, generatedAt within 90 days  → scheduler.impact_snapshots
//	locks             Tier C                              → scheduler.locks (created empty)
//
// Every transform is built on transforms.Stage and is pure: no database or MongoDB client.
// What depends on other documents is settled in Prepare, over the documents still standing
// after the tier filter, the value checks and the references, so the outcome is the same for
// any worker count, batch size or source kind:
//
//   - identity collisions (two _ids of different types with one canonical form): the
//     smallest _id wins, the other is rejected with "identity collision <_id>";
//   - schedules' partial unique key (tenant_id, name) WHERE deleted_at IS NULL: among the
//     live schedules the smallest _id wins; a soft-deleted schedule holds no key;
//   - runs.schedule_id: the loaded schedules are read from scheduler.schedules (complete
//     before runs starts); a scheduleId naming none rejects with "missing parent
//     schedules/<id>", one of another tenant with "cross-tenant reference schedules/<id>";
//   - runs' partitions: scheduler.runs is PARTITION BY RANGE (created_at) with no default
//     partition; Prepare creates runs_yYYYYmMM, bounded by UTC month starts written with an
//     explicit +00, for every month a standing run falls in, with CREATE TABLE IF NOT EXISTS
//     so that a resume or a verify runs it again harmlessly. This is the only DDL the tool
//     runs without --create-schema.
//
// runs.stats_completed is GENERATED ALWAYS AS ((stats->>'completed')::int) STORED: never
// written, left out of checksums. A stats.completed the cast would refuse (a fraction, a
// decimal written with a fraction, a value out of integer's range, a string, a boolean, ...) is
// rejected by the transform with a reason naming stats.completed, rather than left to a
// database refusal; see checkStatsCompleted.
//
// graph_jobs.type and status are smallint codes of lowercase names (build 0, overlay 1;
// pending 0 … cancelled 5); an unknown name rejects with `column <c>: unknown value "<name>"`.
// Row-level security (tenant_isolation, without FORCE) is enabled on every table, on the
// partitioned parent for runs.
package scheduler
