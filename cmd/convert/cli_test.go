package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

func seedSmall(t *testing.T) (uri, db string) {
	t.Helper()
	uri = ferrettest.URI(t)
	db = ferrettest.Database(t)
	client := mongoClient(t, uri)
	var docs []bson.D
	for i := 0; i < 120; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: oid(i, 7)}, {Key: "tenant", Value: tenants[i%4]}, {Key: "n", Value: int32(i)}})
	}
	seedCollection(t, client, db, "things", docs)
	seedCollection(t, client, db, "other", docs[:3])
	return uri, db
}

// TestLibpqEnvironmentAndNoCredentials: the target comes from DATABASE_URL or the PG*
// variables when --to is absent, and a password never appears in output.
func TestLibpqEnvironmentAndNoCredentials(t *testing.T) {
	uri, db := seedSmall(t)
	pgURL := pgtest.Database(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=", "PGHOST=" + u.Hostname(), "PGPORT=" + u.Port(), "PGUSER=postgres", "PGDATABASE=" + strings.TrimPrefix(u.Path, "/"), "PGSSLMODE=disable"}
	rep := parseReport(t, mustConvert(t, env, "run", "--from", uri, "--json", "--collection", db+".things").stdout)
	if rep.Collections[0].Loaded != 120 {
		t.Fatalf("PG* variables: %+v", rep)
	}
	st := mustConvert(t, []string{"DATABASE_URL=" + pgURL}, "status", "--json")
	if !strings.Contains(st.stdout, rep.RunID) {
		t.Fatalf("DATABASE_URL: status does not list run %s", rep.RunID)
	}

	// A wrong password and a password in the Mongo URI stay out of every message.
	bad := convert(t, nil, "run", "--from", "mongodb://admin:mongosecret@127.0.0.1:1/?serverSelectionTimeoutMS=300", "--to", "postgres://postgres:pgsecret@127.0.0.1:1/x?connect_timeout=1", "--collection", db+".things")
	if bad.code == 0 || strings.Contains(bad.stderr+bad.stdout, "pgsecret") || strings.Contains(bad.stderr+bad.stdout, "mongosecret") {
		t.Fatalf("exit %d, output leaks a password or succeeds:\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
	badMongo := convert(t, nil, "run", "--from", "mongodb://admin:mongosecret@127.0.0.1:1/?serverSelectionTimeoutMS=300", "--to", pgURL, "--collection", db+".things")
	if badMongo.code == 0 || strings.Contains(badMongo.stderr+badMongo.stdout, "mongosecret") {
		t.Fatalf("exit %d, output leaks the Mongo password:\n%s%s", badMongo.code, badMongo.stdout, badMongo.stderr)
	}
}

// TestExitCodes: usage errors, an unknown collection, an unknown run and a held lock.
func TestExitCodes(t *testing.T) {
	uri, db := seedSmall(t)
	pgURL := pgtest.Database(t)
	cases := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"no command", nil, 2, ""},
		{"unknown flag", []string{"run", "--bogus"}, 2, "bogus"},
		{"bad as-of", []string{"run", "--from", uri, "--to", pgURL, "--as-of", "yesterday", "--collection", db + ".things"}, 2, "as-of"},
		{"bad collection spec", []string{"run", "--from", uri, "--to", pgURL, "--collection", "nodot"}, 2, "DB.COLL"},
		{"missing collection", []string{"run", "--from", uri, "--to", pgURL, "--collection", db + ".nope"}, 2, db + ".nope"},
		{"unknown run", []string{"run", "--from", uri, "--to", pgURL, "--run-id", "nope", "--collection", db + ".things"}, 2, "nope"},
		{"resume and replace", []string{"run", "--resume", "--replace", "--collection", db + ".things"}, 2, "exclude"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := convert(t, nil, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.say) {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
		})
	}

	// --allow-missing converts the rest and reports the missing one with read 0.
	rep := parseReport(t, mustConvert(t, nil, "run", "--from", uri, "--to", pgURL, "--json", "--allow-missing",
		"--collection", db+".things", "--collection", db+".nope").stdout)
	if len(rep.Collections) != 2 {
		t.Fatalf("allow-missing: %+v", rep)
	}
	for _, c := range rep.Collections {
		if c.Collection == db+".nope" && (c.Read != 0 || c.Status != "completed") {
			t.Errorf("missing collection: %+v", c)
		}
	}

	// Another process holding the selection's lock: exit 5 without waiting.
	conn := pgConn(t, pgURL)
	key := "convert:job:collections:" + db + ".other=" + db + ".other"
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock(hashtext($1))`, key); err != nil {
		t.Fatal(err)
	}
	r := convert(t, nil, "run", "--from", uri, "--to", pgURL, "--collection", db+".other")
	if r.code != 5 {
		t.Fatalf("lock held: exit %d, want 5; %s", r.code, r.stderr)
	}
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_unlock(hashtext($1))`, key); err != nil {
		t.Fatal(err)
	}
	mustConvert(t, nil, "run", "--from", uri, "--to", pgURL, "--collection", db+".other")
}

// TestPlan lists tier, filter with its as-of, estimate, ranges, target table and the source
// collections the selection does not map.
func TestPlan(t *testing.T) {
	uri, db := seedSmall(t)
	r := mustConvert(t, nil, "plan", "--from", uri, "--json", "--as-of", "2026-02-03T04:05:06Z", "--range-docs", "50", "--collection", db+".things=custom.tbl")
	var p struct {
		Collections []struct {
			Collection string          `json:"collection"`
			Tier       string          `json:"tier"`
			Filter     json.RawMessage `json:"filter"`
			Estimate   int64           `json:"source_estimate"`
			Ranges     int             `json:"ranges"`
			Tables     []string        `json:"target_tables"`
			Order      int             `json:"load_order"`
		} `json:"collections"`
		Unmapped []string `json:"unmapped"`
	}
	mustUnmarshal(t, r.stdout, &p)
	if len(p.Collections) != 1 {
		t.Fatalf("plan: %s", r.stdout)
	}
	c := p.Collections[0]
	if c.Tier != "A" || c.Estimate != 120 || c.Ranges != 3 || len(c.Tables) != 1 || c.Tables[0] != "custom.tbl" || c.Order != 1 ||
		!strings.Contains(string(c.Filter), "2026-02-03T04:05:06Z") {
		t.Errorf("plan entry: %+v filter %s", c, c.Filter)
	}
	if len(p.Unmapped) != 1 || p.Unmapped[0] != db+".other" {
		t.Errorf("unmapped: %v", p.Unmapped)
	}
	human := mustConvert(t, nil, "plan", "--from", uri, "--collection", db+".things")
	if !strings.Contains(human.stdout, db+".things") || !strings.Contains(human.stdout, "not mapped") {
		t.Errorf("plan table:\n%s", human.stdout)
	}
}
