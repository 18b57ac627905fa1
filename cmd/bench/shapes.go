package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/transforms/generic"
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

// shape is one benchmarked collection. Turning the normalized row into a module shape (once
// transforms/scheduler exists) means changing that row only: Select becomes
// {"--module", "scheduler", "--collection", "runs", "--create-schema"}, Job returns the
// module's job for runs (transforms.Module.Jobs with only {"runs": true}), Version the
// module's Version, Prepare applies the module's migrations as --create-schema does
// (load.ApplyMigrations), and the Note about generic mode goes.
type shape struct {
	Name string // key in the output and the JSON
	Kind string // kindJSONB or kindNormalized
	Note string // printed with the shape's figures
	DB   string // source database and collection
	Coll string
	Seed uint64
	Gen  docGen
	// Select are the bin/convert run arguments that choose this collection and its transform.
	Select []string
	// Job builds the collection job those arguments make the tool build, its filter bound to
	// asOf: the precomputed rows of the limit, the stages and the profiled run use it.
	Job func(asOf time.Time) pipeline.CollectionJob
	// Version is the transform version the tool records for the job.
	Version string
	// Prepare creates the target tables exactly as the tool does; nil means the tool's own
	// target preparation (load.Target.Prepare: generic tables are created, others validated).
	Prepare func(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table) error
}

var shapes = []shape{
	{
		Name: "jsonb-kept", Kind: kindJSONB,
		Note: "advisory-like documents of 2-20 KiB kept whole as jsonb (generic mode)",
		DB:   "concelier", Coll: "advisory", Seed: 1, Gen: genAdvisory,
		Select: []string{"--collection", "concelier.advisory"},
		Job:    genericJob("concelier.advisory"), Version: generic.Version,
	},
	{
		Name: "normalized", Kind: kindNormalized,
		Note: "normalized shape pending module transforms: measured in generic mode (scheduler-runs-like documents of ~500 B)",
		DB:   "stellaops_scheduler", Coll: "runs", Seed: 2, Gen: genSchedulerRun,
		Select: []string{"--collection", "stellaops_scheduler.runs"},
		Job:    genericJob("stellaops_scheduler.runs"), Version: generic.Version,
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

func (s shape) prepareTables(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table) error {
	if s.Prepare != nil {
		return s.Prepare(ctx, pool, tables)
	}
	return load.NewTarget(pool).Prepare(ctx, tables)
}
