package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// TestVerifyDerivedTables: verify recomputes the authority module's derived tables (tenants,
// roles, user_roles) from the re-transformed documents and compares them with the target like
// any table. An untouched target is clean (exit 0); deleted user_roles rows are reported as
// missing rows of authority.user_roles by key, a renamed role as a changed row of
// authority.roles by key and column, an earlier tenants.created_at as a changed row — each
// exit 3, with and without --deep, and nothing else is reported.
func TestVerifyDerivedTables(t *testing.T) {
	asOf := sample.DefaultAsOf
	var colls []sample.Collection
	for _, c := range sample.Generate(sample.Options{Seed: 11, Scale: 1, AsOf: asOf}) {
		if c.DB == "stellaops_authority" {
			colls = append(colls, c)
		}
	}
	dir := filepath.Join(t.TempDir(), "dump")
	if err := sample.WriteDump(context.Background(), dir, colls, dump.Zstd); err != nil {
		t.Fatal(err)
	}
	pgURL := pgtest.Database(t)
	rep := parseReport(t, mustConvert(t, nil, "run", "--from", dir, "--to", pgURL, "--module", "authority", "--create-schema",
		"--as-of", asOf.Format(time.RFC3339), "--workers", "2", "--batch-size", "20", "--json").stdout)
	if rep.Status != "completed" {
		t.Fatalf("run: %+v", rep)
	}
	// (c) untouched target: clean.
	verifyClean(t, dir, pgURL, rep.RunID)

	conn := pgConn(t, pgURL)
	ctx := t.Context()
	expect := func(name string, want []string) {
		t.Helper()
		for _, deep := range []bool{false, true} {
			args := []string{"verify", "--from", dir, "--to", pgURL, "--run-id", rep.RunID, "--json"}
			if deep {
				args = append(args, "--deep")
			}
			r := convert(t, nil, args...)
			var v verifyReport
			mustUnmarshal(t, r.stdout, &v)
			if r.code != 3 || v.Clean {
				t.Fatalf("%s, deep %v: exit %d, clean %v; want 3\n%s\n%s", name, deep, r.code, v.Clean, r.stdout, r.stderr)
			}
			var got []string
			for _, d := range v.Differences {
				got = append(got, d.Table+" | "+d.Kind+" | "+d.ID+" | "+strings.Join(d.Columns, ","))
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				b, _ := json.MarshalIndent(v.Differences, "", " ")
				t.Errorf("%s, deep %v: differences\n%s\nwant\n%s", name, deep, b, strings.Join(want, "\n"))
			}
		}
		human := convert(t, nil, "verify", "--from", dir, "--to", pgURL, "--run-id", rep.RunID)
		if human.code != 3 || !strings.Contains(human.stdout, "authority.(derived)") {
			t.Errorf("%s: table output (exit %d):\n%s", name, human.code, human.stdout)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// (a) two user_roles rows deleted: missing rows of authority.user_roles, by key.
	type userRole struct{ user, role, tenant string }
	var deleted []userRole
	rows, err := conn.Query(ctx, `SELECT user_id::text, role_id::text, tenant_id FROM authority.user_roles ORDER BY user_id, role_id LIMIT 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ur userRole
		if err := rows.Scan(&ur.user, &ur.role, &ur.tenant); err != nil {
			t.Fatal(err)
		}
		deleted = append(deleted, ur)
	}
	rows.Close()
	if len(deleted) != 2 {
		t.Fatalf("the sample loads %d user_roles rows, want at least 2", len(deleted))
	}
	var want []string
	for _, ur := range deleted {
		exec(`DELETE FROM authority.user_roles WHERE user_id = $1 AND role_id = $2`, ur.user, ur.role)
		want = append(want, "authority.user_roles | missing row | user_id="+ur.user+", role_id="+ur.role+" | ")
	}
	expect("user_roles deleted", want)
	for _, ur := range deleted {
		exec(`INSERT INTO authority.user_roles (user_id, role_id, tenant_id) VALUES ($1, $2, $3)`, ur.user, ur.role, ur.tenant)
	}
	verifyClean(t, dir, pgURL, rep.RunID)

	// (b) a role renamed: a changed row of authority.roles, by key, in column name.
	var roleID, roleName string
	if err := conn.QueryRow(ctx, `SELECT id::text, name FROM authority.roles ORDER BY id LIMIT 1`).Scan(&roleID, &roleName); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE authority.roles SET name = name || '-renamed' WHERE id = $1`, roleID)
	expect("role renamed", []string{"authority.roles | changed row | id=" + roleID + " | name"})
	exec(`UPDATE authority.roles SET name = $2 WHERE id = $1`, roleID, roleName)
	verifyClean(t, dir, pgURL, rep.RunID)

	// A tenant made older than its oldest document, and a tenant no document names.
	var tenant string
	if err := conn.QueryRow(ctx, `SELECT tenant_id FROM authority.tenants WHERE created_at IS NOT NULL ORDER BY tenant_id LIMIT 1`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE authority.tenants SET created_at = created_at - interval '1 day' WHERE tenant_id = $1`, tenant)
	exec(`INSERT INTO authority.tenants (tenant_id) VALUES ('intruder')`)
	expect("tenants changed", []string{
		"authority.tenants | changed row | tenant_id=" + tenant + " | created_at",
		"authority.tenants | extra row | tenant_id=intruder | ",
	})

	// The run records the derived checksums of the rows it produced, not of what the target
	// ends up holding: a trigger renames every role as the run inserts it; the run's record
	// equals the source's, and verify names each role the target holds otherwise.
	exec(`CREATE FUNCTION authority.tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := NEW.name || '-x'; RETURN NEW; END $$;
CREATE TRIGGER tamper BEFORE INSERT ON authority.roles FOR EACH ROW EXECUTE FUNCTION authority.tamper()`)
	again := convert(t, nil, "run", "--from", dir, "--to", pgURL, "--module", "authority", "--replace",
		"--as-of", asOf.Format(time.RFC3339), "--workers", "2", "--batch-size", "20", "--json")
	if again.code != 0 || !strings.Contains(again.stderr, "authority.roles") {
		t.Fatalf("run over the trigger: exit %d, want 0 and a warning naming authority.roles\n%s", again.code, again.stderr)
	}
	rep = parseReport(t, again.stdout)
	want = nil
	rows, err = conn.Query(ctx, `SELECT id::text FROM authority.roles`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, "authority.roles | changed row | id="+id+" | name")
	}
	rows.Close()
	if len(want) == 0 {
		t.Fatal("the sample loads no roles")
	}
	expect("roles renamed by a trigger", want)
	r := convert(t, nil, "verify", "--from", dir, "--to", pgURL, "--run-id", rep.RunID, "--json")
	var v struct {
		Collections []struct {
			Collection string `json:"collection"`
			Source     string `json:"source_checksum"`
			Target     string `json:"target_checksum"`
			Manifest   string `json:"manifest_checksum"`
		} `json:"collections"`
	}
	mustUnmarshal(t, r.stdout, &v)
	found := false
	for _, c := range v.Collections {
		if c.Collection == "authority.(derived)" {
			found = true
			if c.Manifest != c.Source || c.Target == c.Source {
				t.Errorf("derived: manifest %s, source %s, target %s; want the manifest to equal the source", c.Manifest, c.Source, c.Target)
			}
		}
	}
	if !found {
		t.Errorf("verify lists no authority.(derived):\n%s", r.stdout)
	}
}
