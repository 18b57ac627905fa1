package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
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

// writeArchiveOf writes colls as a gzip mongodump archive at path.
func writeArchiveOf(t *testing.T, path string, colls []dump.ArchiveCollection) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	if err := dump.WriteArchive(gz, colls); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkNoIDRejects: the run rejected exactly want documents, each as "document has no _id"
// with a NULL _id and its raw BSON, and the rest loaded.
func checkNoIDRejects(t *testing.T, pgURL string, rep report, read, want int) {
	t.Helper()
	c := rep.Collections[0]
	if c.Read != int64(read) || c.Rejected != int64(want) || c.Loaded != int64(read-want) || c.Skipped != 0 {
		t.Errorf("read %d loaded %d rejected %d skipped %d; want read %d, rejected %d", c.Read, c.Loaded, c.Rejected, c.Skipped, read, want)
	}
	conn := pgConn(t, pgURL)
	rows, err := conn.Query(t.Context(), `SELECT _id, reason, length(raw) FROM convert.rejects WHERE run_id = $1`, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id *string
		var reason string
		var rawLen int
		if err := rows.Scan(&id, &reason, &rawLen); err != nil {
			t.Fatal(err)
		}
		if id != nil || reason != "document has no _id" || rawLen < 5 {
			t.Errorf("reject _id %v reason %q raw %d bytes; want NULL, \"document has no _id\", the document", deref(id), reason, rawLen)
		}
		n++
	}
	if n != want {
		t.Errorf("%d reject rows, want %d", n, want)
	}
}

// TestDocumentsWithoutID: documents without a top-level _id (oplog entries, old
// system.indexes) are rejected as "document has no _id" with their bytes, from a dump
// directory and an archive alike, and the accounting adds up; FerretDB, where it keeps such a
// document, too.
func TestDocumentsWithoutID(t *testing.T) {
	var docs []bson.Raw
	missing := 0
	for i := 0; i < 40; i++ {
		if i%9 == 4 {
			docs = append(docs, marshal(t, bson.D{{Key: "ts", Value: bson.Timestamp{T: uint32(1_700_000_000 + i), I: 1}}, {Key: "op", Value: "i"},
				{Key: "ns", Value: "app.things"}, {Key: "o", Value: bson.D{{Key: "n", Value: int32(i)}}}}))
			missing++
			continue
		}
		docs = append(docs, marshal(t, bson.D{{Key: "_id", Value: oid(i, 9)}, {Key: "n", Value: int32(i)}}))
	}
	dir := t.TempDir()
	writeDumpDir(t, filepath.Join(dir, "plain"), "ops", map[string][]bson.Raw{"entries": docs}, dump.None)
	archive := filepath.Join(dir, "ops.archive.gz")
	writeArchiveOf(t, archive, []dump.ArchiveCollection{{DB: "ops", Collection: "entries", Metadata: `{"indexes":[]}`, Docs: docsFunc(docs)}})

	var sums []string
	for _, from := range []string{filepath.Join(dir, "plain"), archive} {
		pgURL := pgtest.Database(t)
		rep := parseReport(t, mustConvert(t, nil, "run", "--from", from, "--to", pgURL, "--json", "--batch-size", "7", "--collection", "ops.entries").stdout)
		checkNoIDRejects(t, pgURL, rep, len(docs), missing)
		sums = append(sums, rep.Collections[0].Checksum)
		verifyClean(t, from, pgURL, rep.RunID)
	}
	if sums[0] != sums[1] {
		t.Errorf("checksum from the directory %s, from the archive %s", sums[0], sums[1])
	}

	t.Run("live", func(t *testing.T) {
		uri := ferrettest.URI(t)
		db := ferrettest.Database(t)
		client := mongoClient(t, uri)
		var raw []any
		for _, d := range docs {
			raw = append(raw, d)
		}
		// The insert command, not InsertMany: the driver would add an _id itself.
		if err := client.Database(db).RunCommand(t.Context(), bson.D{{Key: "insert", Value: "entries"}, {Key: "documents", Value: raw}}).Err(); err != nil {
			t.Skipf("FerretDB refuses documents without _id (%v): a live source cannot hold one here", err)
		}
		n, err := client.Database(db).Collection("entries").CountDocuments(t.Context(), bson.D{{Key: "_id", Value: bson.D{{Key: "$exists", Value: false}}}})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Skip("FerretDB gives a document without _id one on insert (as MongoDB does): a live source cannot hold one here")
		}
		pgURL := pgtest.Database(t)
		rep := parseReport(t, mustConvert(t, nil, "run", "--from", uri, "--to", pgURL, "--json", "--collection", db+".entries").stdout)
		checkNoIDRejects(t, pgURL, rep, len(docs), missing)
	})
}

// TestTimeSeriesArchive: a time-series collection is read from its buckets, in a dump
// directory (weather.metadata.json beside system.buckets.weather.bson) and in an archive
// (listed as weather, type timeseries, its blocks under system.buckets.weather) alike: by
// either name, the same counts and checksums.
func TestTimeSeriesArchive(t *testing.T) {
	var buckets []bson.Raw
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 12; i++ {
		at := bson.NewDateTimeFromTime(base.Add(time.Duration(i) * time.Hour))
		buckets = append(buckets, marshal(t, bson.D{{Key: "_id", Value: oid(i, 4)},
			{Key: "control", Value: bson.D{{Key: "version", Value: int32(1)}, {Key: "min", Value: bson.D{{Key: "t", Value: at}}}, {Key: "max", Value: bson.D{{Key: "t", Value: at}}}}},
			{Key: "meta", Value: fmt.Sprintf("sensor-%d", i%3)},
			{Key: "data", Value: bson.D{{Key: "t", Value: bson.D{{Key: "0", Value: at}}}, {Key: "v", Value: bson.D{{Key: "0", Value: float64(i) / 2}}}}}}))
	}
	meta := `{"options":{"timeseries":{"timeField":"t","metaField":"meta","granularity":"hours"}},"indexes":[],"collectionName":"weather","type":"timeseries"}`
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	w := dump.DirWriter{Root: plain}
	if _, err := w.WriteCollection(t.Context(), "metrics", "system.buckets.weather", nil, docsFunc(buckets)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "metrics", "weather.metadata.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "metrics.archive.gz")
	writeArchiveOf(t, archive, []dump.ArchiveCollection{{DB: "metrics", Collection: "weather", Metadata: meta, Docs: docsFunc(buckets), TimeSeries: true}})

	var first map[string]string
	for _, from := range []string{plain, archive} {
		pgURL := pgtest.Database(t)
		r := convert(t, nil, "run", "--from", from, "--to", pgURL, "--json", "--collection", "metrics.weather", "--collection", "metrics.system.buckets.weather")
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", from, r.code, r.stderr)
		}
		rep := parseReport(t, r.stdout)
		for _, c := range rep.Collections {
			if c.Read != int64(len(buckets)) || c.Loaded != int64(len(buckets)) {
				t.Errorf("%s: %s read %d loaded %d, want the %d buckets", from, c.Collection, c.Read, c.Loaded, len(buckets))
			}
		}
		checkTargetChecksums(t, pgURL, rep)
		if first == nil {
			first = checksums(rep)
			continue
		}
		for name, sum := range checksums(rep) {
			if first[name] != sum {
				t.Errorf("%s: checksum from the archive %s, from the directory %s", name, sum, first[name])
			}
		}
	}
}

// waitForLockWait waits until a session of the database other than conn waits for a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no session came to wait for a lock")
}

// TestReplaceChecksUnderLock: --replace looks at the tables outside the selection that
// reference it and truncates in one transaction, with the tables locked before it looks. A row
// another session is inserting into such a table meanwhile is seen once it commits, and
// refuses the run (exit 2) instead of being truncated along unseen.
func TestReplaceChecksUnderLock(t *testing.T) {
	var docs []bson.Raw
	for i := 0; i < 20; i++ {
		docs = append(docs, marshal(t, bson.D{{Key: "_id", Value: oid(i, 6)}, {Key: "n", Value: int32(i)}}))
	}
	root := t.TempDir()
	writeDumpDir(t, root, "rep", map[string][]bson.Raw{"things": docs}, dump.None)
	pgURL := pgtest.Database(t)
	args := []string{"run", "--from", root, "--to", pgURL, "--collection", "rep.things"}
	mustConvert(t, nil, args...)

	conn := pgConn(t, pgURL)
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA ext; CREATE TABLE ext.refs (thing uuid REFERENCES rep.things (id))`); err != nil {
		t.Fatal(err)
	}
	writer := pgConn(t, pgURL)
	tx, err := writer.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `INSERT INTO ext.refs SELECT id FROM rep.things LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	_, wait := startConvert(t, append(args, "--replace")...)
	waitForLockWait(t, conn)
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, stderr := wait()
	if code != 2 || !strings.Contains(stderr, "ext.refs") {
		t.Errorf("--replace with a row committed into ext.refs meanwhile: exit %d, want 2 naming ext.refs; stderr:\n%s", code, stderr)
	}
	var refs, things int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM ext.refs), (SELECT count(*) FROM rep.things)`).Scan(&refs, &things); err != nil {
		t.Fatal(err)
	}
	if refs != 1 || things != 20 {
		t.Errorf("after the refused --replace: ext.refs holds %d rows (want 1), rep.things %d (want 20)", refs, things)
	}
}

// TestDeltaRefusesCascadeOutsideSelection: a delta deletes the rows of documents gone from the
// source with the rows that reference them; where a table outside the selection holds rows
// that reference the selection's tables, it refuses (exit 2, naming the table) before writing,
// as --replace does, instead of deleting from that table unasked. Emptied, the delta runs.
func TestDeltaRefusesCascadeOutsideSelection(t *testing.T) {
	var docs []bson.Raw
	for i := 0; i < 20; i++ {
		docs = append(docs, marshal(t, bson.D{{Key: "_id", Value: oid(i, 2)}, {Key: "n", Value: int32(i)}}))
	}
	before, after := t.TempDir(), t.TempDir()
	writeDumpDir(t, before, "dl", map[string][]bson.Raw{"things": docs}, dump.None)
	writeDumpDir(t, after, "dl", map[string][]bson.Raw{"things": docs[1:]}, dump.None) // the first is deleted
	pgURL := pgtest.Database(t)
	first := parseReport(t, mustConvert(t, nil, "run", "--from", before, "--to", pgURL, "--json", "--as-of", "2026-06-01T00:00:00Z", "--collection", "dl.things").stdout)

	conn := pgConn(t, pgURL)
	gone := genericID("dl", "things", oid(0, 2).Hex())
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA ext; CREATE TABLE ext.refs (thing uuid REFERENCES dl.things (id))`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `INSERT INTO ext.refs VALUES ($1)`, gone); err != nil {
		t.Fatal(err)
	}
	delta := []string{"run", "--from", after, "--to", pgURL, "--json", "--delta", "--since-run", first.RunID, "--as-of", "2026-07-01T00:00:00Z", "--collection", "dl.things"}
	r := convert(t, nil, delta...)
	if r.code != 2 || !strings.Contains(r.stderr, "ext.refs") {
		t.Errorf("delta with ext.refs referencing a deleted document: exit %d, want 2 naming ext.refs; stderr:\n%s", r.code, r.stderr)
	}
	var refs, things int
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM ext.refs), (SELECT count(*) FROM dl.things)`).Scan(&refs, &things); err != nil {
		t.Fatal(err)
	}
	if refs != 1 || things != 20 {
		t.Errorf("after the refused delta: ext.refs holds %d rows (want 1), dl.things %d (want 20)", refs, things)
	}
	if n := countRuns(t, pgURL); n != 1 {
		t.Errorf("the refused delta recorded a run: %d runs", n)
	}

	if _, err := conn.Exec(t.Context(), `DELETE FROM ext.refs`); err != nil {
		t.Fatal(err)
	}
	rep := parseReport(t, mustConvert(t, nil, delta...).stdout)
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM dl.things`).Scan(&things); err != nil || things != 19 {
		t.Errorf("delta with ext.refs empty: dl.things holds %d rows (%v), want 19", things, err)
	}
	verifyClean(t, after, pgURL, rep.RunID)
}
