package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

var moduleOfDB = map[string]string{"stellaops_authority": "authority", "stellaops_scheduler": "scheduler", "concelier": "concelier", "excititor": "excititor"}

// TestModulesOnSample runs the four modules through the binary on the generated sample: plan
// lists every collection in load order with its tier, filter, as-of, a real estimate and its
// tables; the run accounts for every document; every planted problem ends as the generator
// says (rejected, skipped or loaded, by _id); verify is clean.
func TestModulesOnSample(t *testing.T) {
	asOf := sample.DefaultAsOf
	colls := sample.Generate(sample.Options{Seed: 7, Scale: 1, AsOf: asOf})
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, colls, dump.Zstd); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, c := range colls {
		counts[c.DB+"."+c.Name] = int64(len(c.Docs))
	}
	asOfS := asOf.Format(time.RFC3339)

	var plan struct {
		Collections []struct {
			Order      int      `json:"load_order"`
			Module     string   `json:"module"`
			Collection string   `json:"collection"`
			Source     string   `json:"source"`
			Tier       string   `json:"tier"`
			Estimate   int64    `json:"source_estimate"`
			Tables     []string `json:"target_tables"`
		} `json:"collections"`
		Unmapped []string `json:"unmapped"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "plan", "--from", dir, "--module", "all", "--as-of", asOfS, "--json").stdout, &plan)
	if len(plan.Collections) != 27 {
		t.Fatalf("plan lists %d collections, want the 27 of modules.md", len(plan.Collections))
	}
	for i, c := range plan.Collections {
		if c.Order != i+1 || c.Estimate != counts[c.Source] || len(c.Tables) == 0 || c.Tier == "" {
			t.Errorf("plan entry %+v (source holds %d)", c, counts[c.Source])
		}
	}
	if len(plan.Unmapped) == 0 || !strings.Contains(strings.Join(plan.Unmapped, ","), "fs.files") {
		t.Errorf("plan does not list the unmapped collections: %v", plan.Unmapped)
	}

	pgURL := pgtest.Database(t)
	rep := parseReport(t, mustConvert(t, nil, "run", "--from", dir, "--to", pgURL, "--module", "all", "--create-schema",
		"--as-of", asOfS, "--workers", "2", "--batch-size", "50", "--json").stdout)
	if rep.Status != "completed" {
		t.Fatalf("run: %+v", rep)
	}
	if len(rep.Unmapped) == 0 || !strings.Contains(strings.Join(rep.Unmapped, ","), "fs.chunks") {
		t.Errorf("the report does not list the unmapped collections: %v", rep.Unmapped)
	}
	for _, c := range rep.Collections {
		if c.Read != c.Loaded+c.Rejected+c.Skipped {
			t.Errorf("%s: read %d != loaded %d + rejected %d + skipped %d", c.Collection, c.Read, c.Loaded, c.Rejected, c.Skipped)
		}
	}
	conn := pgConn(t, pgURL)
	rejected := map[string]string{}
	rows, err := conn.Query(t.Context(), `SELECT collection, coalesce(_id, ''), reason FROM convert.rejects`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var coll, id, reason string
		if err := rows.Scan(&coll, &id, &reason); err != nil {
			t.Fatal(err)
		}
		rejected[coll+"/"+id] = reason
	}
	rows.Close()
	// The main table of each collection: its first table that is not derived (authority.tenants).
	mainTable := map[string]string{}
	for _, c := range plan.Collections {
		for _, tb := range c.Tables {
			if tb != "authority.tenants" {
				mainTable[c.Collection] = tb
				break
			}
		}
	}
	loaded := func(coll, id string) (bool, bool) {
		tb := mainTable[coll]
		if tb == "" || tb == "vuln.source_states" { // keyed by the source, no mongo_id
			return false, false
		}
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+tb+` WHERE mongo_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0, true
	}
	planted := map[string]bool{}
	checkedLoad := 0
	for _, p := range sample.Planted() {
		coll := moduleOfDB[p.DB] + "." + p.Collection
		key := coll + "/" + p.ID
		planted[key] = true
		_, isRejected := rejected[key]
		isLoaded, known := loaded(coll, p.ID)
		if known && p.Expect != sample.ExpectReject {
			checkedLoad++
		}
		switch p.Expect {
		case sample.ExpectReject:
			if !isRejected || isLoaded {
				t.Errorf("planted %s (%s: %s): rejected %v, loaded %v; want rejected", key, p.Kind, p.What, isRejected, isLoaded)
			}
		case sample.ExpectSkip:
			if isRejected || (known && isLoaded) {
				t.Errorf("planted %s (%s): rejected %v, loaded %v; want skipped", key, p.What, isRejected, isLoaded)
			}
		case sample.ExpectLoad:
			if isRejected || (known && !isLoaded) {
				t.Errorf("planted %s (%s): rejected %v (%s), loaded %v; want loaded", key, p.What, isRejected, rejected[key], isLoaded)
			}
		}
	}
	if checkedLoad < 15 {
		t.Errorf("only %d planted load/skip outcomes could be checked against the tables", checkedLoad)
	}
	for key, reason := range rejected {
		if !planted[key] {
			t.Errorf("unplanted reject %s: %s", key, reason)
		}
	}
	verifyClean(t, dir, pgURL, rep.RunID)

	// convert archive --module copies the module's collections and its GridFS buckets; the copy
	// converts to the same checksums.
	archived := filepath.Join(t.TempDir(), "archive")
	ar := mustConvert(t, nil, "archive", "--from", dir, "--module", "concelier", "--out", archived)
	if !strings.Contains(ar.stdout, "concelier.fs.files") || !strings.Contains(ar.stdout, "concelier.fs.chunks") {
		t.Errorf("archive lacks the GridFS bucket:\n%s", ar.stdout)
	}
	fromArchive := parseReport(t, mustConvert(t, nil, "run", "--from", archived, "--to", pgtest.Database(t), "--module", "concelier",
		"--create-schema", "--as-of", asOfS, "--json").stdout)
	for name, sum := range checksums(fromArchive) {
		if checksums(rep)[name] != sum {
			t.Errorf("%s from the archive: %s, from the dump %s", name, sum, checksums(rep)[name])
		}
	}

	// --replace of part of a module refuses while other collections' rows reference its
	// derived tables; a --replace of the whole selection runs again to the same checksums.
	partial := convert(t, nil, "run", "--from", dir, "--to", pgURL, "--module", "authority", "--collection", "authority_tokens", "--replace", "--as-of", asOfS)
	if partial.code != 2 || !strings.Contains(partial.stderr, "authority.users") {
		t.Errorf("partial --replace: exit %d, want 2 naming authority.users\n%s", partial.code, partial.stderr)
	}
	again := parseReport(t, mustConvert(t, nil, "run", "--from", dir, "--to", pgURL, "--module", "all", "--replace", "--as-of", asOfS, "--json").stdout)
	for name, sum := range checksums(rep) {
		if checksums(again)[name] != sum {
			t.Errorf("%s: --replace gives %s, first run %s", name, checksums(again)[name], sum)
		}
	}

	u0, _ := url.Parse(pgURL) // the role is named after the test's own database: roles are cluster-wide
	// plan checks that the loading role may write every tenant's rows: a role that does not own
	// the row-level-security tables is refused (exit 2) with the tables named.
	if ok := mustConvert(t, nil, "plan", "--from", dir, "--to", pgURL, "--module", "all"); !strings.Contains(ok.stdout, "matches the spec") {
		t.Errorf("plan as owner: %s", ok.stdout)
	}
	role := "loader_" + strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(u0.Path, "/"), "?", 2)[0], "t_")
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT USAGE ON SCHEMA authority, scheduler, vuln, vex, convert TO ` + role,
		`GRANT ALL ON ALL TABLES IN SCHEMA authority, scheduler, vuln, vex, convert TO ` + role} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = conn.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
	})
	u, _ := url.Parse(pgURL)
	u.User = url.User(role)
	refused := convert(t, nil, "plan", "--from", dir, "--to", u.String(), "--module", "all")
	if refused.code != 2 || !strings.Contains(refused.stderr, "row-level security") || !strings.Contains(refused.stderr, "authority.users") {
		t.Errorf("plan as a non-owner: exit %d\n%s", refused.code, refused.stderr)
	}
}

// TestOverrides: a deployment whose database and collection names differ from the defaults
// converts, through --source-db/--source-collection or --config, to the same ids and checksums;
// a tier window override changes what is skipped and is recorded, so a resume cannot change it.
func TestOverrides(t *testing.T) {
	asOf := sample.DefaultAsOf
	asOfS := asOf.Format(time.RFC3339)
	colls := sample.Generate(sample.Options{Seed: 3, Scale: 1, AsOf: asOf})
	var excititor, renamed []sample.Collection
	for _, c := range colls {
		if c.DB != "excititor" {
			continue
		}
		excititor = append(excititor, c)
		r := c
		r.DB = "excititor_prod"
		if r.Name == "vex.raw" {
			r.Name = "vex_raw"
		}
		renamed = append(renamed, r)
	}
	dir := t.TempDir()
	for name, set := range map[string][]sample.Collection{"default": excititor, "renamed": renamed} {
		if err := sample.WriteDump(context.Background(), filepath.Join(dir, name), set, dump.None); err != nil {
			t.Fatal(err)
		}
	}
	run := func(from string, extra ...string) report {
		args := append([]string{"run", "--from", from, "--to", pgtest.Database(t), "--module", "excititor", "--create-schema", "--as-of", asOfS, "--json"}, extra...)
		return parseReport(t, mustConvert(t, nil, args...).stdout)
	}
	want := checksums(run(filepath.Join(dir, "default")))
	flags := checksums(run(filepath.Join(dir, "renamed"), "--source-db", "excititor=excititor_prod", "--source-collection", "excititor.vex.raw=vex_raw"))
	cfg := filepath.Join(dir, "overrides.json")
	if err := os.WriteFile(cfg, []byte(`{"modules": {"excititor": {"database": "excititor_prod", "collections": {"vex.raw": "vex_raw"}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	config := checksums(run(filepath.Join(dir, "renamed"), "--config", cfg))
	for name, sum := range want {
		if flags[name] != sum || config[name] != sum {
			t.Errorf("%s: default %s, flags %s, config %s", name, sum, flags[name], config[name])
		}
	}
	// Without the overrides the renamed deployment is refused before anything is written.
	if r := convert(t, nil, "run", "--from", filepath.Join(dir, "renamed"), "--to", pgtest.Database(t), "--module", "excititor", "--create-schema"); r.code != 2 {
		t.Errorf("renamed source without overrides: exit %d, want 2", r.code)
	}
	// A longer window keeps more vex.raw documents.
	wide := run(filepath.Join(dir, "default"), "--tier-days", "excititor.vex.raw=3650")
	base := run(filepath.Join(dir, "default"))
	for i, c := range wide.Collections {
		if c.Collection == "excititor.vex.raw" && c.Loaded <= base.Collections[i].Loaded {
			t.Errorf("--tier-days 3650 loads %d vex.raw documents, the default window %d", c.Loaded, base.Collections[i].Loaded)
		}
	}
}
