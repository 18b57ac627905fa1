package transforms

import (
	"fmt"
	"time"

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

// Override is an operator's deployment facts for one module (cli.md: --config, --source-db,
// --source-collection) and its tier windows.
type Override struct {
	Database    string            `json:"database,omitempty"`
	Collections map[string]string `json:"collections,omitempty"` // default name → actual name
	TierDays    map[string]int    `json:"tier_days,omitempty"`   // default name → window days
}

// Jobs builds the module's collection jobs in load order, bound to the run's as-of and options.
// only, when not empty, restricts the module to those collection names.
func (m Module) Jobs(asOf time.Time, opt Options, ov Override, only map[string]bool) ([]pipeline.CollectionJob, error) {
	known := map[string]bool{}
	for _, c := range m.Collections {
		known[c.Name] = true
	}
	for def := range ov.Collections {
		if !known[def] {
			return nil, fmt.Errorf("source collection override %s.%s: module %s has no collection %s", m.Name, def, m.Name, def)
		}
	}
	for def := range ov.TierDays {
		if !known[def] {
			return nil, fmt.Errorf("tier days for %s.%s: module %s has no collection %s", m.Name, def, m.Name, def)
		}
	}
	db := m.DB
	if ov.Database != "" {
		db = ov.Database
	}
	var jobs []pipeline.CollectionJob
	for _, c := range m.Collections {
		if len(only) > 0 && !only[c.Name] {
			continue
		}
		tier := c.Tier
		if d, ok := ov.TierDays[c.Name]; ok {
			if tiers.Days(tier) == 0 {
				return nil, fmt.Errorf("tier days for %s.%s: the collection's tier has no window", m.Name, c.Name)
			}
			tier = tiers.WithDays(tier, d)
		}
		actual := c.Name
		if a, ok := ov.Collections[c.Name]; ok {
			actual = a
		}
		filter := tier.Bind(asOf)
		jobs = append(jobs, pipeline.CollectionJob{
			Name: m.Name + "." + c.Name, Module: m.Name, NS: pipeline.Namespace{DB: db, Collection: actual},
			Tier: tier.Name, Filter: filter.Describe(),
			Transform: c.New(Env{Module: m.Name, Collection: c.Name, Filter: filter, Options: opt}),
		})
	}
	return jobs, nil
}

// Tables lists every table of the module (derived ones once), in load order.
func (m Module) Tables() []pipeline.Table {
	var out []pipeline.Table
	seen := map[string]bool{}
	for _, c := range m.Collections {
		for _, t := range c.Tables {
			if !seen[t.FullName()] {
				seen[t.FullName()] = true
				out = append(out, t)
			}
		}
	}
	return out
}
