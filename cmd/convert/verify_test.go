package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

type verifyReport struct {
	Clean       bool `json:"clean"`
	Differences []struct {
		Collection string   `json:"collection"`
		Table      string   `json:"table"`
		Kind       string   `json:"kind"`
		ID         string   `json:"id"`
		Columns    []string `json:"columns"`
	} `json:"differences"`
}

// TestVerifyFindsExactlyWhatChanged: verify of an untouched target exits 0; after one changed
// value, one deleted row, one inserted row and one changed tenant it reports exactly those, by
// _id and column, and exits 3 — with and without --deep.
func TestVerifyFindsExactlyWhatChanged(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(1500, 400, 0)
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
	}
	pgURL := pgtest.Database(t)
	rep := parseReport(t, mustConvert(t, nil, append([]string{"run", "--from", uri, "--to", pgURL, "--json", "--range-docs", "400"}, collectionArgs(db, "runs", "schedules")...)...).stdout)

	clean := mustConvert(t, nil, "verify", "--from", uri, "--to", pgURL, "--run-id", rep.RunID, "--json")
	var v verifyReport
	mustUnmarshal(t, clean.stdout, &v)
	if !v.Clean || len(v.Differences) != 0 {
		t.Fatalf("untouched target: %s", clean.stdout)
	}

	conn := pgConn(t, pgURL)
	runs := db + ".runs"
	changed, deleted := oid(10, 1).Hex(), oid(20, 1).Hex()
	retenant := "schedule-00007"
	for _, q := range []string{
		`UPDATE ` + runs + ` SET doc = jsonb_set(doc, '{count}', '12345') WHERE mongo_id = '` + changed + `'`,
		`DELETE FROM ` + runs + ` WHERE mongo_id = '` + deleted + `'`,
		`INSERT INTO ` + runs + ` (id, mongo_id, tenant_id, doc) VALUES (gen_random_uuid(), 'intruder', 'default', '{"_id": "intruder"}')`,
		`UPDATE ` + db + `.schedules SET tenant_id = 'urn:tenant:other' WHERE mongo_id = '` + retenant + `'`,
	} {
		tag, err := conn.Exec(t.Context(), q)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v (%d rows)", q, err, tag.RowsAffected())
		}
	}
	for _, deep := range []bool{false, true} {
		args := []string{"verify", "--from", uri, "--to", pgURL, "--run-id", rep.RunID, "--json"}
		if deep {
			args = append(args, "--deep")
		}
		r := convert(t, nil, args...)
		if r.code != 3 {
			t.Fatalf("deep %v: exit %d, want 3\n%s\n%s", deep, r.code, r.stdout, r.stderr)
		}
		mustUnmarshal(t, r.stdout, &v)
		var got []string
		for _, d := range v.Differences {
			got = append(got, d.Kind+" "+d.ID+" "+strings.Join(d.Columns, ","))
		}
		sort.Strings(got)
		want := []string{"changed row " + changed + " doc", "changed row " + retenant + " tenant_id", "extra row intruder ", "missing row " + deleted + " "}
		sort.Strings(want)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			b, _ := json.MarshalIndent(v, "", " ")
			t.Errorf("deep %v: differences\n%s\nwant %q", deep, b, want)
		}
	}
	human := convert(t, nil, "verify", "--from", uri, "--to", pgURL, "--run-id", rep.RunID)
	if human.code != 3 || !strings.Contains(human.stdout, "missing row") || !strings.Contains(human.stdout, deleted) {
		t.Errorf("table output:\n%s", human.stdout)
	}
}
