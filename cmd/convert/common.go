package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/transforms/generic"
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// openSource recognises SRC: a MongoDB URI, else a mongodump directory or archive.
func openSource(ctx context.Context, from string, rangeDocs int, spanBytes ...int64) (pipeline.Source, error) {
	if from == "" {
		from = os.Getenv("MONGO_URI")
	}
	if from == "" {
		return nil, usagef("--from is required (a mongodb:// URI, a mongodump directory or archive), or set MONGO_URI")
	}
	if live.IsURI(from) {
		return live.Open(ctx, from, live.Options{RangeDocs: rangeDocs})
	}
	if _, err := os.Stat(from); err != nil {
		return nil, usagef("--from %s: not a mongodb:// URI, and %v", from, err)
	}
	var o dump.Options
	if len(spanBytes) > 0 {
		o.SplitBytes = spanBytes[0]
	}
	return dump.OpenWith(ctx, from, o)
}

// openTarget connects to DSN, or DATABASE_URL, or the libpq variables, and prepares the
// manifest store.
func openTarget(ctx context.Context, to string, conns int) (*pgxpool.Pool, *manifests.Store, error) {
	if to == "" {
		to = os.Getenv("DATABASE_URL")
	}
	cfg, err := pgxpool.ParseConfig(to)
	if err != nil {
		// pgx's parse errors can quote the DSN; never echo credentials.
		return nil, nil, usagef("--to: cannot parse the PostgreSQL DSN")
	}
	cfg.MaxConns = int32(max(conns, 4))
	cfg.ConnConfig.RuntimeParams["application_name"] = "convert"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("target: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("target %s: %w", redactPG(cfg), err)
	}
	if err := load.CheckServer(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	if err := manifests.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, manifests.NewStore(pool), nil
}

func redactPG(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// selection is what a command converts, resolved from --module / --collection.
type selection struct {
	key     string // canonical, for --resume
	modules []string
	colls   []string
	jobs    []pipeline.CollectionJob
	version string
	result  map[string]any
	dbs     []string
}

// selectCollections builds the jobs of a command line: --module (with --collection NAME
// restricting it) or the generic mode (--collection DB.COLL[=SCHEMA.TABLE]).
func selectCollections(modules string, colls []string, asOf time.Time, opt transforms.Options, ov *Overrides) (*selection, error) {
	if modules != "" {
		return selectModules(modules, colls, asOf, opt, ov)
	}
	if ov != nil && len(ov.Modules) > 0 {
		return nil, usagef("--config, --source-db, --source-collection and --tier-days apply to --module runs")
	}
	if len(colls) == 0 {
		return nil, usagef("give --module or at least one --collection DB.COLL[=SCHEMA.TABLE]")
	}
	sel := &selection{version: generic.Version, result: map[string]any{"fix_strings": opt.FixStrings}}
	seenTarget := map[string]string{}
	seenDB := map[string]bool{}
	var specs []string
	for _, c := range colls {
		sp, err := generic.ParseSpec(c)
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		target := sp.Schema + "." + sp.Table
		if prev, dup := seenTarget[target]; dup {
			return nil, usagef("--collection %s and %s both load into %s", prev, c, target)
		}
		seenTarget[target] = c
		specs = append(specs, sp.Name()+"="+target)
		filter := tiers.Full().Bind(asOf)
		sel.jobs = append(sel.jobs, pipeline.CollectionJob{
			Name: sp.Name(), Module: "generic", NS: pipeline.Namespace{DB: sp.DB, Collection: sp.Collection},
			Tier: tiers.A, Filter: filter.Describe(), Transform: generic.New(sp, filter, opt),
		})
		sel.colls = append(sel.colls, sp.Name())
		if !seenDB[sp.DB] {
			seenDB[sp.DB] = true
			sel.dbs = append(sel.dbs, sp.DB)
		}
	}
	sorted := append([]string(nil), specs...)
	sort.Strings(sorted)
	sel.key = "collections:" + strings.Join(sorted, ",")
	sel.result["collections"] = sorted
	return sel, nil
}

// lockKeys are the advisory locks of a selection: one per module, or one per generic selection.
func (s *selection) lockKeys() []string {
	if len(s.modules) > 0 {
		keys := make([]string, len(s.modules))
		for i, m := range s.modules {
			keys[i] = "convert:job:" + m
		}
		return keys
	}
	return []string{"convert:job:" + s.key}
}

// checkPresent refuses (exit 2) before any data is written when a selected collection is
// absent from the source, unless it may be missing.
func checkPresent(ctx context.Context, src pipeline.Source, sel *selection) error {
	present := map[string]map[string]bool{}
	for _, db := range sel.dbs {
		names, err := src.Collections(ctx, db)
		if err != nil {
			return err
		}
		present[db] = map[string]bool{}
		for _, n := range names {
			present[db][n] = true
		}
	}
	var missing []string
	for _, j := range sel.jobs {
		if !present[j.NS.DB][j.NS.Collection] && !j.Optional {
			missing = append(missing, j.NS.String())
		}
	}
	if len(missing) > 0 {
		return usagef("source has no collection %s (use --allow-missing to convert the rest)", strings.Join(missing, ", "))
	}
	return nil
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// logSourceWarnings reports what a dump reader noticed but could work around (a missing
// metadata file, a stray top-level file).
func logSourceWarnings(src pipeline.Source, log *slog.Logger) {
	if d, ok := src.(*dump.Source); ok {
		for _, w := range d.Warnings() {
			log.Warn("dump", "namespace", w.Namespace.String(), "file", w.File, "warning", w.What)
		}
	}
}

// unmappedCollections lists the collections of the selection's databases that no job reads.
func unmappedCollections(ctx context.Context, src pipeline.Source, sel *selection) ([]string, error) {
	mapped := map[string]bool{}
	for _, j := range sel.jobs {
		mapped[j.NS.String()] = true
	}
	out := []string{}
	for _, db := range sel.dbs {
		names, err := src.Collections(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !mapped[db+"."+n] {
				out = append(out, db+"."+n)
			}
		}
	}
	return out, nil
}
