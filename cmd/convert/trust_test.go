package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// countRuns is the number of runs recorded in the target (0 before the manifest schema exists).
func countRuns(t *testing.T, pgURL string) int {
	t.Helper()
	conn := pgConn(t, pgURL)
	var exists bool
	if err := conn.QueryRow(t.Context(), `SELECT to_regclass('convert.runs') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return 0
	}
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM convert.runs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tablesIn lists the tables of a schema.
func tablesIn(t *testing.T, pgURL, schema string) []string {
	t.Helper()
	conn := pgConn(t, pgURL)
	rows, err := conn.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestLongTableNames: PostgreSQL cuts names at 63 bytes, so two generic collections whose
// names share their first 63 bytes would load into one table. Such a name, default or given,
// exits 2 before anything is written and asks for an explicit =SCHEMA.TABLE; so do two
// collections given one table. With explicit names both load apart.
func TestLongTableNames(t *testing.T) {
	prefix := strings.Repeat("c", 63)
	one, two := prefix+"_one", prefix+"_two"
	mk := func(n int, salt byte) []bson.Raw {
		var out []bson.Raw
		for i := 0; i < n; i++ {
			out = append(out, marshal(t, bson.D{{Key: "_id", Value: oid(i, salt)}, {Key: "n", Value: int32(i)}}))
		}
		return out
	}
	root := t.TempDir()
	writeDumpDir(t, root, "longdb", map[string][]bson.Raw{one: mk(30, 1), two: mk(20, 2)}, dump.None)

	refused := []struct {
		name  string
		colls []string
		say   string
	}{
		{"defaults cut to one table", []string{"longdb." + one, "longdb." + two}, one},
		{"explicit 64-byte table", []string{"longdb." + one + "=longdb." + strings.Repeat("t", 64)}, strings.Repeat("t", 64)},
		{"explicit 64-byte schema", []string{"longdb." + one + "=" + strings.Repeat("s", 64) + ".t"}, strings.Repeat("s", 64)},
		{"two collections, one table", []string{"longdb." + one + "=longdb.same", "longdb." + two + "=longdb.same"}, "longdb.same"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			pgURL := pgtest.Database(t)
			args := []string{"run", "--from", root, "--to", pgURL}
			for _, cl := range c.colls {
				args = append(args, "--collection", cl)
			}
			r := convert(t, nil, args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.say) {
				t.Fatalf("exit %d, want 2 naming %s; stderr:\n%s", r.code, c.say, r.stderr)
			}
			if c.name != "two collections, one table" && !strings.Contains(r.stderr, "=SCHEMA.TABLE") {
				t.Errorf("the refusal does not ask for an explicit =SCHEMA.TABLE:\n%s", r.stderr)
			}
			if tabs := tablesIn(t, pgURL, "longdb"); len(tabs) > 0 {
				t.Errorf("refused run created tables %v", tabs)
			}
			if n := countRuns(t, pgURL); n != 0 {
				t.Errorf("refused run recorded %d runs", n)
			}
		})
	}

	pgURL := pgtest.Database(t)
	rep := parseReport(t, mustConvert(t, nil, "run", "--from", root, "--to", pgURL, "--json",
		"--collection", "longdb."+one+"=longdb.a_one", "--collection", "longdb."+two+"=longdb.a_two").stdout)
	loaded := map[string]int64{}
	for _, c := range rep.Collections {
		loaded[c.Collection] = c.Loaded
	}
	if loaded["longdb."+one] != 30 || loaded["longdb."+two] != 20 {
		t.Errorf("explicit names: loaded %v", loaded)
	}
	conn := pgConn(t, pgURL)
	for table, want := range map[string]int{"longdb.a_one": 30, "longdb.a_two": 20} {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s holds %d rows (%v), want %d", table, n, err, want)
		}
	}
}

// TestCorruptInputOutranksRejectLimit: a dump whose collection crosses --max-rejects in the
// batch before a broken frame has both problems; cli.md ranks failure (1) before the reject
// limit (4), so the run exits 1, and its final error names the corrupt file and byte offset
// and the crossed limit alike.
func TestCorruptInputOutranksRejectLimit(t *testing.T) {
	var docs []bson.Raw
	for i := 0; i < 20; i++ {
		docs = append(docs, marshal(t, bson.D{{Key: "_id", Value: oid(i, 3)}, {Key: "n", Value: int32(i)}}))
	}
	for i := 0; i < 5; i++ {
		docs = append(docs, marshal(t, bson.D{{Key: "op", Value: "i"}, {Key: "n", Value: int32(i)}}))
	}
	root := t.TempDir()
	writeDumpDir(t, root, "mixed", map[string][]bson.Raw{"things": docs}, dump.None)
	file := filepath.Join(root, "mixed", "things.bson")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	at := fi.Size()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A frame announcing 100 bytes where the file ends after 8.
	if _, err := f.Write([]byte{100, 0, 0, 0, 2, 'x', 0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	pgURL := pgtest.Database(t)
	r := convert(t, nil, "run", "--from", root, "--to", pgURL, "--max-rejects", "2", "--collection", "mixed.things")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (corrupt input outranks the reject limit); stderr:\n%s", r.code, r.stderr)
	}
	var final []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(line, "convert: ") {
			final = append(final, line)
		}
	}
	joined := strings.Join(final, "\n")
	if !strings.Contains(joined, file) || !strings.Contains(joined, fmt.Sprintf("at byte %d", at)) {
		t.Errorf("the final error does not name %s at byte %d:\n%s", file, at, joined)
	}
	if !strings.Contains(joined, "--max-rejects") {
		t.Errorf("the final error does not report the crossed reject limit:\n%s", joined)
	}
	// The documents before the broken frame are committed and accounted.
	conn := pgConn(t, pgURL)
	var read, loaded, rejected int64
	if err := conn.QueryRow(t.Context(), `SELECT coalesce(sum(read), 0), coalesce(sum(loaded), 0), coalesce(sum(rejected), 0) FROM convert.batches`).Scan(&read, &loaded, &rejected); err != nil {
		t.Fatal(err)
	}
	if read != 25 || loaded != 20 || rejected != 5 {
		t.Errorf("committed batches: read %d loaded %d rejected %d, want 25, 20, 5", read, loaded, rejected)
	}
}
