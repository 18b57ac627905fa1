package transforms

import (
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
)

// Module describes one StellaOps module (modules.md): its target schema, its forward-only
// migrations, and its collections in load order. Each transforms/<module> package exports one.
type Module struct {
	Name   string // authority, scheduler, concelier, excititor
	Schema string // authority, scheduler, vuln, vex
	DB     string // default source database
	// Version is the transform version recorded in runs: bump it when a mapping changes, so a
	// resume across the change refuses.
	Version     string
	Migrations  []Migration
	Collections []Collection
}

// Migration is one forward-only schema step, recorded with its SHA-256 in
// <schema>.schema_migrations. Never edit one that has shipped: append a new one.
type Migration struct {
	Name string
	SQL  string
}

// Collection describes one source collection of a module.
type Collection struct {
	// Name is the default source collection name (authority_users, vex.raw); ids always use it,
	// whatever the deployment calls the collection.
	Name string
	// Tier is the default tier rule; operators may override a window's days.
	Tier tiers.Tier
	// Parents are collections of the same module that must be complete before this one
	// starts (its references resolve against their loaded rows).
	Parents []string
	// ChangeField is the field delta runs compare with the since-run's as-of ("" = rescan).
	ChangeField string
	// Tables lists the tables this collection writes, derived ones included, in write order.
	Tables []pipeline.Table
	// New builds the collection's transform for a run.
	New func(env Env) pipeline.Transform
}

// Env is what a collection's transform is built with.
type Env struct {
	Module     string
	Collection string
	Filter     tiers.Filter
	Options    Options
}
