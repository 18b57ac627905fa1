package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/transforms/authority"
	"github.com/stellaops/convert/transforms/concelier"
	"github.com/stellaops/convert/transforms/excititor"
	"github.com/stellaops/convert/transforms/scheduler"
)

// registry lists the module transforms in dependency order (cli.md: --module all): an explicit
// list, no registration by import.
func registry() []transforms.Module {
	return []transforms.Module{authority.Module(), scheduler.Module(), concelier.Module(), excititor.Module()}
}

// Overrides are the operator's deployment facts (cli.md: --config, --source-db,
// --source-collection) and tier windows. They change what is read, so they are recorded in the
// run and a resume must repeat them.
type Overrides struct {
	Modules map[string]ModuleOverride `json:"modules"`
}

// ModuleOverride is one module's overrides.
type ModuleOverride = transforms.Override

func loadOverrides(path string, sourceDB, sourceColl, tierDays []string) (*Overrides, error) {
	o := &Overrides{Modules: map[string]ModuleOverride{}}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--config: %v", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(o); err != nil {
			return nil, usagef("--config %s: %v", path, err)
		}
		if o.Modules == nil {
			o.Modules = map[string]ModuleOverride{}
		}
	}
	get := func(m string) ModuleOverride {
		mo := o.Modules[m]
		if mo.Collections == nil {
			mo.Collections = map[string]string{}
		}
		if mo.TierDays == nil {
			mo.TierDays = map[string]int{}
		}
		return mo
	}
	for _, s := range sourceDB {
		m, db, ok := strings.Cut(s, "=")
		if !ok || m == "" || db == "" {
			return nil, usagef("--source-db %q: want MODULE=DB", s)
		}
		mo := get(m)
		mo.Database = db
		o.Modules[m] = mo
	}
	for _, s := range sourceColl {
		lhs, actual, ok := strings.Cut(s, "=")
		m, def, ok2 := strings.Cut(lhs, ".")
		if !ok || !ok2 || actual == "" || def == "" {
			return nil, usagef("--source-collection %q: want MODULE.DEFAULT=ACTUAL", s)
		}
		mo := get(m)
		mo.Collections[def] = actual
		o.Modules[m] = mo
	}
	for _, s := range tierDays {
		lhs, d, ok := strings.Cut(s, "=")
		m, def, ok2 := strings.Cut(lhs, ".")
		n, err := strconv.Atoi(d)
		if !ok || !ok2 || err != nil || n < 0 {
			return nil, usagef("--tier-days %q: want MODULE.COLLECTION=DAYS", s)
		}
		mo := get(m)
		mo.TierDays[def] = n
		o.Modules[m] = mo
	}
	return o, nil
}

// selectModules builds the jobs of --module (with --collection NAME restricting it).
func selectModules(modules string, only []string, asOf time.Time, opt transforms.Options, ov *Overrides) (*selection, error) {
	reg := registry()
	byName := map[string]transforms.Module{}
	var names []string
	for _, m := range reg {
		byName[m.Name] = m
		names = append(names, m.Name)
	}
	var chosen []transforms.Module
	if modules == "all" {
		chosen = reg
	} else {
		want := map[string]bool{}
		for _, m := range strings.Split(modules, ",") {
			m = strings.TrimSpace(m)
			if _, ok := byName[m]; !ok {
				return nil, usagef("--module %s: unknown module; known: %s, all", m, strings.Join(names, ", "))
			}
			want[m] = true
		}
		for _, m := range reg { // dependency order, whatever the order given
			if want[m.Name] {
				chosen = append(chosen, m)
			}
		}
	}
	if ov == nil {
		ov = &Overrides{}
	}
	for m := range ov.Modules {
		if _, ok := byName[m]; !ok {
			return nil, usagef("overrides name unknown module %q", m)
		}
	}
	onlySet := map[string]bool{}
	for _, c := range only {
		onlySet[c] = true
	}
	sel := &selection{result: map[string]any{"fix_strings": opt.FixStrings}}
	var versions []string
	matched := map[string]bool{}
	for _, m := range chosen {
		sel.modules = append(sel.modules, m.Name)
		versions = append(versions, m.Version)
		mo := ov.Modules[m.Name]
		db := m.DB
		if mo.Database != "" {
			db = mo.Database
		}
		sel.dbs = append(sel.dbs, db)
		jobs, err := m.Jobs(asOf, opt, mo, onlySet)
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		for _, c := range m.Collections {
			if len(onlySet) == 0 || onlySet[c.Name] {
				matched[c.Name] = true
			}
		}
		for _, j := range jobs {
			sel.jobs = append(sel.jobs, j)
			sel.colls = append(sel.colls, j.Name)
		}
	}
	for c := range onlySet {
		if !matched[c] {
			return nil, usagef("--collection %s: no selected module has this collection", c)
		}
	}
	sel.key = "modules:" + strings.Join(sel.modules, ",")
	if len(only) > 0 {
		sorted := append([]string(nil), only...)
		sort.Strings(sorted)
		sel.key += ";collections:" + strings.Join(sorted, ",")
	}
	sel.version = strings.Join(versions, ",")
	sel.result["overrides"] = ov.Modules
	sel.result["modules"] = sel.modules
	if len(only) > 0 {
		sel.result["only"] = only
	}
	return sel, nil
}

// moduleMigrations returns the chosen modules' schemas and migrations (for --create-schema).
func moduleMigrations(names []string) map[string][]load.Migration {
	out := map[string][]load.Migration{}
	for _, m := range registry() {
		for _, n := range names {
			if n == m.Name {
				var migs []load.Migration
				for _, mg := range m.Migrations {
					migs = append(migs, load.Migration{Name: mg.Name, SQL: mg.SQL})
				}
				out[m.Schema] = migs
			}
		}
	}
	return out
}

func moduleSchema(name string) string {
	for _, m := range registry() {
		if m.Name == name {
			return m.Schema
		}
	}
	return ""
}

var _ = fmt.Sprint
