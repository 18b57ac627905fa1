package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

func marshal(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func docsFunc(docs []bson.Raw) dump.DocsFunc {
	return func(emit func(bson.Raw) error) error {
		for _, d := range docs {
			if err := emit(d); err != nil {
				return err
			}
		}
		return nil
	}
}

func writeDumpDir(t *testing.T, root, db string, colls map[string][]bson.Raw, comp dump.Compression) {
	t.Helper()
	w := dump.DirWriter{Root: root, Data: comp, Metadata: comp}
	for name, docs := range colls {
		if _, err := w.WriteCollection(context.Background(), db, name, []byte(`{"indexes":[],"uuid":"","collectionName":"`+name+`","type":"collection"}`), docsFunc(docs)); err != nil {
			t.Fatal(err)
		}
	}
}

func writeGzipArchive(t *testing.T, path, db string, colls map[string][]bson.Raw) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	var ac []dump.ArchiveCollection
	for name, docs := range colls {
		ac = append(ac, dump.ArchiveCollection{DB: db, Collection: name, Metadata: `{"indexes":[]}`, Docs: docsFunc(docs)})
	}
	if err := dump.WriteArchive(gz, ac); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDumpAccountingAndExoticTypes converts a mongodump holding what FerretDB refuses:
// Decimal128, MinKey/MaxKey, JavaScript, NaN/±Inf, dotted and $-prefixed keys, nested arrays,
// and unmappable documents (NUL, invalid UTF-8, duplicate keys, a content-invalid document, an
// ObjectId whose hex a string _id already holds). Every document is accounted for, each reject
// names its _id and reason, and --fix-strings mends what it may.
func TestDumpAccountingAndExoticTypes(t *testing.T) {
	dec, _ := bson.ParseDecimal128("1.50E+3")
	collide := oid(42, 8)
	good := []bson.D{
		{{Key: "_id", Value: "exotic-1"}, {Key: "tenant", Value: "default"}, {Key: "d", Value: dec}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
			{Key: "js", Value: bson.JavaScript("function(){}")}, {Key: "nan", Value: math.NaN()}, {Key: "inf", Value: math.Inf(-1)},
			{Key: "a.b", Value: int32(1)}, {Key: "$weird", Value: true}, {Key: "nested", Value: bson.A{bson.A{int32(1), int32(2)}, bson.A{}}},
			{Key: "negzero", Value: math.Copysign(0, -1)}},
		{{Key: "_id", Value: collide.Hex()}, {Key: "note", Value: "string id that wins"}},
	}
	var docs []bson.Raw
	for _, d := range good {
		docs = append(docs, marshal(t, d))
	}
	for i := 0; i < 50; i++ {
		docs = append(docs, marshal(t, bson.D{{Key: "_id", Value: oid(i, 8)}, {Key: "tenantId", Value: tenants[i%4]}, {Key: "n", Value: int64(i)}}))
	}
	// oid(42, 8) collides with the string _id above: the string sorts first and wins.
	nul := marshal(t, bson.D{{Key: "_id", Value: "nul"}, {Key: "s", Value: "a\x00b"}})
	utf := marshal(t, bson.D{{Key: "_id", Value: "utf"}, {Key: "s", Value: "bad \xff\xfe"}})
	dup := marshal(t, bson.D{{Key: "_id", Value: "dup"}, {Key: "k", Value: int32(1)}, {Key: "k", Value: int32(2)}})
	invalid := marshal(t, bson.D{{Key: "_id", Value: "badbool"}, {Key: "flag", Value: true}})
	invalid[len(invalid)-2] = 2 // the bool's byte: only 0 and 1 are valid BSON
	badID := marshal(t, bson.D{{Key: "_id", Value: "id\xffx"}, {Key: "n", Value: int32(1)}})
	docs = append(docs, nul, utf, dup, invalid, badID)

	root := t.TempDir()
	writeDumpDir(t, root, "sample", map[string][]bson.Raw{"things": docs}, dump.Zstd)

	// plan --profile sees the same problems before loading, and the field types.
	var prof struct {
		Profiles []struct {
			Scanned  int64            `json:"scanned"`
			Loadable int64            `json:"loadable"`
			Rejects  map[string]int64 `json:"rejects_by_rule"`
			Fields   []struct {
				Path  string           `json:"path"`
				Count int64            `json:"count"`
				Types map[string]int64 `json:"types"`
			} `json:"fields"`
		} `json:"profiles"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "plan", "--from", root, "--profile", "--json", "--collection", "sample.things").stdout, &prof)
	if len(prof.Profiles) != 1 {
		t.Fatalf("profile: %+v", prof)
	}
	p := prof.Profiles[0]
	var profiled int64
	for _, n := range p.Rejects {
		profiled += n
	}
	if p.Scanned != int64(len(docs)) || p.Loadable != int64(len(docs))-6 || profiled != 6 || p.Rejects["_id: identity collision"] != 1 {
		t.Errorf("profile: scanned %d loadable %d rejects %v", p.Scanned, p.Loadable, p.Rejects)
	}
	types := map[string]map[string]int64{}
	for _, f := range p.Fields {
		types[f.Path] = f.Types
	}
	if types["n"][bson.TypeInt64.String()] != 50 || types["d"][bson.TypeDecimal128.String()] != 1 || types["nested[][]"][bson.TypeInt32.String()] != 2 || types["tenantId"][bson.TypeString.String()] != 50 {
		t.Errorf("profile field types: n %v d %v nested[][] %v tenantId %v", types["n"], types["d"], types["nested[][]"], types["tenantId"])
	}
	sampled := mustConvert(t, nil, "plan", "--from", root, "--profile", "--sample", "10", "--collection", "sample.things")
	if !strings.Contains(sampled.stdout, "10 documents scanned") || !strings.Contains(sampled.stdout, "at most 10") {
		t.Errorf("sampled profile:\n%s", sampled.stdout)
	}

	for _, fix := range []bool{false, true} {
		pgURL := pgtest.Database(t)
		args := []string{"run", "--from", root, "--to", pgURL, "--json", "--batch-size", "7", "--collection", "sample.things"}
		want := map[string]string{collide.Hex(): "identity collision", "nul": "NUL", "utf": "UTF-8", "dup": "duplicate key", "badbool": "invalid BSON",
			"id\ufffdx": "UTF-8"}
		if fix {
			args = append(args, "--fix-strings")
			delete(want, "nul")
			delete(want, "utf")
			delete(want, "id\ufffdx")
		}
		manifest := filepath.Join(t.TempDir(), "manifest.json.zst")
		args = append(args, "--manifest", manifest)
		rep := parseReport(t, mustConvert(t, nil, args...).stdout)
		c := rep.Collections[0]
		checkManifestExport(t, manifest, rep.RunID, len(want), len(docs))
		if c.Read != int64(len(docs)) || c.Rejected != int64(len(want)) || c.Loaded != c.Read-c.Rejected || c.Skipped != 0 {
			t.Fatalf("fix %v: read %d loaded %d rejected %d skipped %d; want read %d rejected %d", fix, c.Read, c.Loaded, c.Rejected, c.Skipped, len(docs), len(want))
		}
		conn := pgConn(t, pgURL)
		rows, err := conn.Query(t.Context(), `SELECT coalesce(_id, '<null>'), reason FROM convert.rejects`)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var id, reason string
			if err := rows.Scan(&id, &reason); err != nil {
				t.Fatal(err)
			}
			frag, ok := want[id]
			if !ok || !strings.Contains(strings.ToLower(reason), strings.ToLower(frag)) {
				t.Errorf("fix %v: reject %s: %q", fix, id, reason)
			}
			seen++
		}
		rows.Close()
		if seen != len(want) {
			t.Errorf("fix %v: %d rejects, want %d", fix, seen, len(want))
		}
		var doc string
		if err := conn.QueryRow(t.Context(), `SELECT doc::text FROM sample.things WHERE mongo_id = 'exotic-1'`).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		for _, frag := range []string{`"d": 1500`, `"$minKey": 1`, `"$maxKey": 1`, `"$code": "function(){}"`, `"$numberDouble": "NaN"`,
			`"$numberDouble": "-Infinity"`, `"a.b": 1`, `"$weird": true`, `"nested": [[1, 2], []]`, `"negzero": 0`} {
			if !strings.Contains(doc, frag) {
				t.Errorf("exotic document lacks %s: %s", frag, doc)
			}
		}
		if fix {
			var s string
			if err := conn.QueryRow(t.Context(), `SELECT doc->>'s' FROM sample.things WHERE mongo_id = 'utf'`).Scan(&s); err != nil || s != "bad \ufffd\ufffd" {
				t.Errorf("fixed string %q %v", s, err)
			}
		}
	}
}

// TestSameChecksumFromEverySource converts the same documents from the live server, a mongodump
// directory (plain and gzip), a gzip archive and `convert archive` copies (zstd and gzip): the
// collection checksums are identical.
func TestSameChecksumFromEverySource(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(800, 300, 400)
	raw := map[string][]bson.Raw{}
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
		for _, d := range docs {
			raw[name] = append(raw[name], marshal(t, d))
		}
	}
	dir := t.TempDir()
	writeDumpDir(t, filepath.Join(dir, "plain"), db, raw, dump.None)
	writeDumpDir(t, filepath.Join(dir, "gz"), db, raw, dump.Gzip)
	archive := filepath.Join(dir, "dump.archive.gz")
	writeGzipArchive(t, archive, db, raw)

	colls := collectionArgs(db, "runs", "schedules", "events")
	// convert archive copies of the live collections, zstd and gzip, each with a SHA256SUMS that
	// sha256sum -c accepts.
	for _, kind := range []string{"zst", "gzip"} {
		out := filepath.Join(dir, "archived-"+kind)
		args := append([]string{"archive", "--from", uri, "--out", out}, colls...)
		if kind == "gzip" {
			args = append(args, "--gzip")
		}
		mustConvert(t, nil, args...)
		cmd := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
		cmd.Dir = out
		if b, err := cmd.CombinedOutput(); err != nil || strings.Count(string(b), ": OK") != 6 {
			t.Fatalf("sha256sum -c in %s: %v\n%s", out, err, b)
		}
	}
	if r := convert(t, nil, append([]string{"archive", "--from", uri, "--out", filepath.Join(dir, "archived-zst")}, colls...)...); r.code != 2 {
		t.Errorf("archive into a non-empty directory: exit %d, want 2", r.code)
	}
	var first map[string]string
	for _, from := range []string{uri, filepath.Join(dir, "plain"), filepath.Join(dir, "gz"), archive, filepath.Join(dir, "archived-zst"), filepath.Join(dir, "archived-gzip")} {
		args := append([]string{"run", "--from", from, "--to", pgtest.Database(t), "--json", "--as-of", "2026-06-01T00:00:00Z"}, colls...)
		got := checksums(parseReport(t, mustConvert(t, nil, args...).stdout))
		if first == nil {
			first = got
			continue
		}
		for name, sum := range first {
			if got[name] != sum {
				t.Errorf("%s from %s: checksum %s, live %s", name, from, got[name], sum)
			}
		}
	}
}

// TestSplitDumpResume: a plain dump file split into byte spans is read by several workers;
// killed and resumed, the result equals a one-range conversion, and verify is clean.
func TestSplitDumpResume(t *testing.T) {
	set := seedSet(3000, 0, 0)
	var raw []bson.Raw
	for _, d := range set["runs"] {
		raw = append(raw, marshal(t, d))
	}
	dir := t.TempDir()
	writeDumpDir(t, dir, "split", map[string][]bson.Raw{"runs": raw}, dump.None)
	whole := checksums(parseReport(t, mustConvert(t, nil, "run", "--from", dir, "--to", pgtest.Database(t), "--json",
		"--as-of", "2026-06-01T00:00:00Z", "--collection", "split.runs").stdout))

	pgURL := pgtest.Database(t)
	args := []string{"run", "--from", dir, "--to", pgURL, "--as-of", "2026-06-01T00:00:00Z", "--resume", "--workers", "2",
		"--batch-size", "10", "--span-bytes", "200000", "--collection", "split.runs"}
	kills := 0
	for i := 0; i < 20; i++ {
		cmd, wait := startConvert(t, args...)
		done := make(chan int, 1)
		var stderr string
		go func() { c, e := wait(); stderr = e; done <- c }()
		select {
		case code := <-done:
			if code != 0 && code != 5 {
				t.Fatalf("run exited %d:\n%s", code, stderr)
			}
			if code == 0 {
				i = 20
			}
		case <-time.After(time.Duration(150+40*i) * time.Millisecond):
			_ = cmd.Process.Signal(os.Kill)
			<-done
			kills++
		}
	}
	if kills == 0 {
		t.Fatal("no run was interrupted")
	}
	var listed struct {
		Runs []report `json:"runs"`
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &listed)
	if len(listed.Runs) != 1 || listed.Runs[0].Status != "completed" {
		t.Fatalf("runs after %d kills: %+v", kills, listed.Runs)
	}
	rep := listed.Runs[0]
	conn := pgConn(t, pgURL)
	var ranges int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM convert.ranges WHERE run_id = $1`, rep.RunID).Scan(&ranges); err != nil {
		t.Fatal(err)
	}
	if ranges < 5 {
		t.Errorf("the dump file was planned as %d ranges, want it split", ranges)
	}
	if got := checksums(rep)["split.runs"]; got != whole["split.runs"] || rep.Collections[0].Loaded != 3000 {
		t.Errorf("split and resumed: checksum %s loaded %d; one range: %s", got, rep.Collections[0].Loaded, whole["split.runs"])
	}
	verifyClean(t, dir, pgURL, rep.RunID)

	// Resumed once more (as after a kill between recording completion and exiting): nothing
	// to do, the completed run's report, no new run.
	again := parseReport(t, mustConvert(t, nil, append(args, "--json")...).stdout)
	if again.RunID != rep.RunID || again.Status != "completed" || checksums(again)["split.runs"] != whole["split.runs"] {
		t.Errorf("--resume after completion: run %s %s, want %s completed", again.RunID, again.Status, rep.RunID)
	}
	mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &listed)
	if len(listed.Runs) != 1 {
		t.Errorf("--resume after completion started a run: %d runs", len(listed.Runs))
	}
}

// checkManifestExport reads a --manifest export (zstd JSON): the run, its batches summing to the
// documents read, and each reject with its raw BSON intact.
func checkManifestExport(t *testing.T, path, runID string, rejects, read int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var e struct {
		FormatVersion int `json:"format_version"`
		Runs          []struct {
			ID               string `json:"id"`
			CollectionStates []struct {
				Batches []struct {
					Read int `json:"read"`
				} `json:"batches"`
				Rejects []struct {
					ID  *string `json:"_id"`
					Raw []byte  `json:"raw"`
				} `json:"rejects"`
			} `json:"collection_states"`
		} `json:"runs"`
	}
	if err := json.NewDecoder(zr).Decode(&e); err != nil {
		t.Fatalf("manifest export: %v", err)
	}
	if e.FormatVersion != 1 || len(e.Runs) != 1 || e.Runs[0].ID != runID || len(e.Runs[0].CollectionStates) != 1 {
		t.Fatalf("manifest export: %+v", e)
	}
	cs := e.Runs[0].CollectionStates[0]
	total := 0
	for _, b := range cs.Batches {
		total += b.Read
	}
	if total != read || len(cs.Rejects) != rejects {
		t.Errorf("manifest export: batches read %d (want %d), %d rejects (want %d)", total, read, len(cs.Rejects), rejects)
	}
	for _, r := range cs.Rejects {
		if len(r.Raw) < 5 || int(r.Raw[0])|int(r.Raw[1])<<8|int(r.Raw[2])<<16|int(r.Raw[3])<<24 != len(r.Raw) {
			t.Errorf("manifest export: reject %v raw is not the document's BSON", r.ID)
		}
	}
}
