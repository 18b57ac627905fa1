package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/transforms/generic"
	"github.com/stellaops/convert/transforms/scheduler"
)

// Shape kinds: which targets of bench.md apply.
const (
	kindJSONB      = "jsonb-kept"
	kindNormalized = "normalized"
)

// targets are bench.md's: (b)/(a) per kind, (b)/(c) for the normalized shape only (for large
// JSONB documents the naive path is disk-bound too, so that ratio is reported without one).
var targets = map[string]struct{ ba, bc float64 }{
	kindJSONB:      {ba: 0.8},
	kindNormalized: {ba: 0.6, bc: 20},
}

// shape is one benchmarked collection.
type shape struct {
	Name string // key in the output and the JSON
	Kind string // kindJSONB or kindNormalized
	Note string // printed with the shape's figures
	DB   string // source database and collection
	Coll string
	Seed uint64
	Gen  docGen
	// DefaultDocs is the count `make bench` converts when BENCH_DOCS is not set.
	DefaultDocs int
	// Fresh: the tables have secondary indexes or foreign keys, so (a) and (b) are also measured
	// as for a fresh target, those deferred and restored after the load (--defer-indexes
	// --defer-foreign-keys).
	Fresh bool
	// Select are the bin/convert run arguments that choose this collection and its transform.
	Select []string
	// Job builds the collection job those arguments make the tool build, its filter bound to
	// asOf: the precomputed rows of the limit, the stages and the profiled run use it.
	Job func(asOf time.Time) pipeline.CollectionJob
	// Version is the transform version the tool records for the job.
	Version string
	// Parents, when set, is the parent collection the transform checks references against:
	// written into the dump and converted before the rows are precomputed, untimed.
	Parents *parentSet
}

// parentSet is a module's parent collection of a benchmarked child collection.
type parentSet struct {
	Module     transforms.Module
	Collection string
	N          int
	Gen        docGen
}

var shapes = []shape{
	{
		Name: "jsonb-kept", Kind: kindJSONB,
		Note: "advisory-like documents of 2-20 KiB kept whole as jsonb (generic mode)",
		DB:   "concelier", Coll: "advisory", Seed: 1, Gen: genAdvisory, DefaultDocs: 200_000,
		Select: []string{"--collection", "concelier.advisory"},
		Job:    genericJob("concelier.advisory"), Version: generic.Version,
	},
	{
		Name: "normalized", Kind: kindNormalized,
		Note: "Scheduler runs of ~500 B through the scheduler module: one row each in scheduler.runs (partitioned by month), schedule_id checked against the loaded schedules",
		DB:   scheduler.DB, Coll: scheduler.Runs, Seed: 2, Gen: genSchedulerRun, DefaultDocs: 1_000_000,
		Select: []string{"--module", scheduler.Name, "--collection", scheduler.Runs},
		Job:    moduleJob(scheduler.Module(), scheduler.Runs), Version: scheduler.Version,
		Fresh:   true,
		Parents: &parentSet{Module: scheduler.Module(), Collection: scheduler.Schedules, N: benchSchedules, Gen: genSchedule},
	},
}

// genericJob is what `convert run --collection spec` builds (cmd/convert selectCollections):
// Tier A bound to the run's as-of, default options.
func genericJob(spec string) func(time.Time) pipeline.CollectionJob {
	sp, err := generic.ParseSpec(spec)
	if err != nil {
		panic(err) // a literal above
	}
	return func(asOf time.Time) pipeline.CollectionJob {
		filter := tiers.Full().Bind(asOf)
		return pipeline.CollectionJob{
			Name: sp.Name(), Module: "generic", NS: pipeline.Namespace{DB: sp.DB, Collection: sp.Collection},
			Tier: tiers.A, Filter: filter.Describe(), Transform: generic.New(sp, filter, transforms.Options{}),
		}
	}
}

func (s shape) ns() pipeline.Namespace { return pipeline.Namespace{DB: s.DB, Collection: s.Coll} }

// prepareTables makes the target ready before the rows are precomputed (the key pass may read
// it): a module shape gets its module's schema and its parents loaded; a generic one the tool's
// own target preparation (load.Target.Prepare creates generic tables).
func (s shape) prepareTables(ctx context.Context, pool *pgxpool.Pool, root string, tables []pipeline.Table) error {
	if s.Parents != nil {
		return s.Parents.load(ctx, pool, root)
	}
	return load.NewTarget(pool).Prepare(ctx, tables)
}

// dropTables removes what prepareTables and the runs created: a module's whole schema
// (migrations ledger included, so that the next size starts from nothing), or the tables.
func (s shape) dropTables(pool *pgxpool.Pool, tables []pipeline.Table) {
	if s.Parents == nil {
		dropTables(pool, tables)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	schema := s.Parents.Module.Schema
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		logf("drop schema %s: %v", schema, err)
	}
}

// moduleJob is what `convert run --module m --collection name` builds: the module's job for
// that collection, bound to asOf, default options.
func moduleJob(m transforms.Module, name string) func(time.Time) pipeline.CollectionJob {
	return func(asOf time.Time) pipeline.CollectionJob {
		jobs, err := m.Jobs(asOf, transforms.Options{}, transforms.Override{}, map[string]bool{name: true})
		if err != nil || len(jobs) != 1 {
			panic(fmt.Sprintf("bench: module %s, collection %s: %d jobs, %v", m.Name, name, len(jobs), err)) // literals above
		}
		return jobs[0]
	}
}

// load writes the parent documents into the dump and converts them as `convert run --module
// M --collection P --create-schema` does — the module's migrations, then the pipeline in this
// process — as a user does before converting the children.
func (ps *parentSet) load(ctx context.Context, pool *pgxpool.Pool, root string) error {
	m := ps.Module
	sh := shape{Name: ps.Collection, DB: m.DB, Coll: ps.Collection, Seed: 99, Gen: ps.Gen}
	if _, _, err := writeDump(ctx, sh, ps.N, root); err != nil {
		return fmt.Errorf("write %s.%s: %w", m.DB, ps.Collection, err)
	}
	migs := make([]load.Migration, len(m.Migrations))
	for i, mg := range m.Migrations {
		migs[i] = load.Migration{Name: mg.Name, SQL: mg.SQL}
	}
	if err := load.ApplyMigrations(ctx, pool, m.Schema, migs); err != nil {
		return err
	}
	job := moduleJob(m, ps.Collection)(benchAsOf)
	rep, err := convertInProcess(ctx, pool, root, job, m.Version, 1)
	if err != nil {
		return fmt.Errorf("load %s.%s: %w", m.DB, ps.Collection, err)
	}
	if c := rep.Collections; len(c) != 1 || c[0].Loaded != int64(ps.N) {
		return fmt.Errorf("load %s.%s: not every one of %d documents loaded: %+v", m.DB, ps.Collection, ps.N, c)
	}
	return nil
}
