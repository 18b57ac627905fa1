package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// proofDocs are ten documents of one size, each with a marker string that appears once in its
// BSON (and verbatim in a stored-block gzip stream). One size makes a reordered file line up
// with the old one's byte offsets, as two dumps of the same documents often do.
func proofDocs(t *testing.T) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	for i := 0; i < 10; i++ {
		out = append(out, marshal(t, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%02d", i)}, {Key: "v", Value: fmt.Sprintf("marker-%02d", i)},
			{Key: "pad", Value: strings.Repeat("x", 20)}}))
	}
	return out
}

func concatDocs(docs []bson.Raw) []byte {
	var b []byte
	for _, d := range docs {
		b = append(b, d...)
	}
	return b
}

// brokenFrame is a document length below the minimum: the reader stops there with exit 1.
var brokenFrame = []byte{1, 0, 0, 0, 0xde, 0xad}

// gzipStored compresses b in stored (uncompressed) deflate blocks, so that a byte of b can be
// found, and flipped, in the compressed file: the gzip CRC then fails at the end of the stream.
func gzipStored(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// proofDump writes a dump directory with collection proof.things whose data file holds data
// (gzip-compressed when gz), and returns the directory and the data file's path.
func proofDump(t *testing.T, data []byte, gz bool) (root, path string) {
	t.Helper()
	root = t.TempDir()
	writeDumpDir(t, root, "proof", map[string][]bson.Raw{"things": nil}, dump.None)
	path = filepath.Join(root, "proof", "things.bson")
	if gz {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		path += ".gz"
		data = gzipStored(t, data)
	}
	writeFile(t, path, data)
	return root, path
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// committedRead sums the documents of the committed batches of a target's runs.
func committedRead(t *testing.T, pgURL string) int {
	t.Helper()
	var n int
	if err := pgConn(t, pgURL).QueryRow(t.Context(), `SELECT coalesce(sum(read), 0) FROM convert.batches`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantRefusal checks a resume refused with exit 2, naming what changed and the way out.
func wantRefusal(t *testing.T, r result, names ...string) {
	t.Helper()
	if r.code != 2 {
		t.Fatalf("--resume over a changed source: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("refusal: %s", r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
	for _, n := range append(names, "--replace") {
		if !strings.Contains(r.stderr, n) {
			t.Errorf("refusal does not name %q:\n%s", n, r.stderr)
		}
	}
}

// TestResumeRefusesReplacedDumpFile: a run stopped at a broken frame after five documents; the
// file is then replaced by a complete dump of the same ten documents in another order. The
// resume must not continue at the old byte offset in the new file: it exits 2 naming the
// collection, the file and --replace, and --replace converts the new file cleanly.
func TestResumeRefusesReplacedDumpFile(t *testing.T) {
	docs := proofDocs(t)
	root, path := proofDump(t, append(concatDocs(docs[:5]), brokenFrame...), false)
	pgURL := pgtest.Database(t)
	args := []string{"run", "--from", root, "--to", pgURL, "--collection", "proof.things", "--batch-size", "2", "--json"}

	if r := convert(t, nil, args...); r.code != 1 || !strings.Contains(r.stderr, path) {
		t.Fatalf("run over a broken frame: exit %d, want 1 naming %s\n%s", r.code, path, r.stderr)
	}
	if n := committedRead(t, pgURL); n != 5 {
		t.Fatalf("%d documents committed before the broken frame, want 5", n)
	}

	reordered := make([]bson.Raw, len(docs))
	for i, d := range docs {
		reordered[len(docs)-1-i] = d
	}
	writeFile(t, path, concatDocs(reordered))
	wantRefusal(t, convert(t, nil, append(args, "--resume")...), "proof.things", path)

	rep := parseReport(t, mustConvert(t, nil, append(args, "--replace")...).stdout)
	if c := rep.Collections[0]; c.Read != 10 || c.Loaded != 10 || rep.Status != "completed" {
		t.Fatalf("--replace: %s read %d loaded %d", rep.Status, c.Read, c.Loaded)
	}
	verifyClean(t, root, pgURL, rep.RunID)
}

// TestResumeRefusesAfterGzipChecksumFailure: one byte flipped inside a gzip data file. Every
// document decompresses, the altered one among them, and the CRC fails at the end: the run
// exits 1 with its batches committed and the collection failed. Resumed over the same file,
// the committed bytes are still those read, and the CRC fails again (exit 1). With the file
// restored, the committed part no longer matches the source: the resume exits 2.
func TestResumeRefusesAfterGzipChecksumFailure(t *testing.T) {
	docs := proofDocs(t)
	root, path := proofDump(t, concatDocs(docs), true)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(good, []byte("marker-07"))
	if at < 0 {
		t.Fatal("marker not found in the stored gzip stream")
	}
	flipped := bytes.Clone(good)
	flipped[at+len("marker-")] = '9' // marker-97: still valid UTF-8, so the document loads
	writeFile(t, path, flipped)

	pgURL := pgtest.Database(t)
	args := []string{"run", "--from", root, "--to", pgURL, "--collection", "proof.things", "--batch-size", "3", "--json"}
	if r := convert(t, nil, args...); r.code != 1 || !strings.Contains(r.stderr, path) {
		t.Fatalf("run over a gzip file whose CRC fails: exit %d, want 1 naming %s\n%s", r.code, path, r.stderr)
	}
	conn := pgConn(t, pgURL)
	var v, status string
	if err := conn.QueryRow(t.Context(), `SELECT doc->>'v' FROM proof.things WHERE mongo_id = 'doc-07'`).Scan(&v); err != nil || v != "marker-97" {
		t.Fatalf("the altered document's committed value: %q %v (the test expects the altered bytes committed)", v, err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT status FROM convert.collections`).Scan(&status); err != nil || status != "failed" {
		t.Errorf("collection after its CRC failed: %q %v, want failed", status, err)
	}

	if r := convert(t, nil, append(args, "--resume")...); r.code != 1 {
		t.Errorf("--resume over the same corrupt file: exit %d, want 1\n%s", r.code, r.stderr)
	}

	writeFile(t, path, good)
	wantRefusal(t, convert(t, nil, append(args, "--resume")...), "proof.things", path)

	rep := parseReport(t, mustConvert(t, nil, append(args, "--replace")...).stdout)
	if err := conn.QueryRow(t.Context(), `SELECT doc->>'v' FROM proof.things WHERE mongo_id = 'doc-07'`).Scan(&v); err != nil || v != "marker-07" {
		t.Errorf("after --replace: %q %v", v, err)
	}
	verifyClean(t, root, pgURL, rep.RunID)
}

// TestResumeAfterRepairedTail: a file whose tail (after the last committed document) was
// broken and is then repaired resumes normally, plain and gzip, and ends equal to a clean run.
func TestResumeAfterRepairedTail(t *testing.T) {
	docs := proofDocs(t)
	dir := func(gz bool) func(t *testing.T, broken bool) (string, string) {
		return func(t *testing.T, broken bool) (string, string) {
			if broken {
				return proofDump(t, append(concatDocs(docs[:5]), brokenFrame...), gz)
			}
			return proofDump(t, concatDocs(docs), gz)
		}
	}
	// An archive cut inside its sixth document: positions are offsets of the whole archive.
	archive := func(t *testing.T, broken bool) (string, string) {
		var b bytes.Buffer
		if err := dump.WriteArchive(&b, []dump.ArchiveCollection{{DB: "proof", Collection: "things", Metadata: `{"indexes":[]}`, Docs: docsFunc(docs)}}); err != nil {
			t.Fatal(err)
		}
		data := b.Bytes()
		if broken {
			data = data[:bytes.Index(data, docs[5])+10]
		}
		path := filepath.Join(t.TempDir(), "proof.archive")
		writeFile(t, path, data)
		return path, path
	}
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, broken bool) (from, path string)
	}{{"plain", dir(false)}, {"gzip", dir(true)}, {"archive", archive}} {
		t.Run(tc.name, func(t *testing.T) {
			cleanFrom, _ := tc.write(t, false)
			clean := parseReport(t, mustConvert(t, nil, "run", "--from", cleanFrom, "--to", pgtest.Database(t), "--collection", "proof.things", "--json").stdout)

			from, path := tc.write(t, true)
			pgURL := pgtest.Database(t)
			args := []string{"run", "--from", from, "--to", pgURL, "--collection", "proof.things", "--batch-size", "2", "--json"}
			if r := convert(t, nil, args...); r.code != 1 {
				t.Fatalf("run over a broken frame: exit %d, want 1\n%s", r.code, r.stderr)
			}
			if n := committedRead(t, pgURL); n != 5 {
				t.Fatalf("%d documents committed before the broken frame, want 5", n)
			}
			_, repaired := tc.write(t, false)
			b, err := os.ReadFile(repaired)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, b)
			rep := parseReport(t, mustConvert(t, nil, append(args, "--resume")...).stdout)
			if c := rep.Collections[0]; rep.Status != "completed" || c.Read != 10 || c.Loaded != 10 || c.Checksum != clean.Collections[0].Checksum {
				t.Errorf("resumed after repair: %s read %d loaded %d checksum %s; clean run %s", rep.Status, c.Read, c.Loaded, c.Checksum, clean.Collections[0].Checksum)
			}
			verifyClean(t, from, pgURL, rep.RunID)
		})
	}
}

// TestResumeRefusesChangedLiveDocument: a live run killed (a job stopped) after some batches
// committed; a committed document is then updated in the source. The resume exits 2 naming the
// collection, the _id range and --replace. With the document restored, the resume completes and
// equals an uninterrupted run.
func TestResumeRefusesChangedLiveDocument(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	docs := seedSet(1500, 0, 0)["runs"]
	seedCollection(t, client, db, "runs", docs)
	asOf := "2026-06-01T00:00:00Z"
	ref := parseReport(t, mustConvert(t, nil, "run", "--from", uri, "--to", pgtest.Database(t), "--as-of", asOf, "--json", "--collection", db+".runs").stdout)
	coll := client.Database(db).Collection("runs")
	first := docs[0] // the smallest _id: in the first committed batch
	id := first[0].Value.(bson.ObjectID)

	for _, tc := range []struct {
		name string
		// stop ends the first process once batches are committed; resume continues the run.
		stop   os.Signal
		first  []string
		resume []string
		// complete: restore the document and resume to the end. A stopped job's claim stays
		// until it is stale (30 s), so the job case ends at the refusal.
		complete bool
	}{
		{"run killed", syscall.SIGKILL, []string{"run", "--resume"}, []string{"run", "--resume"}, true},
		{"job stopped", syscall.SIGTERM, []string{"job", "--rate", "300"}, []string{"job"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgURL := pgtest.Database(t)
			common := []string{"--from", uri, "--to", pgURL, "--as-of", asOf, "--collection", db + ".runs", "--batch-size", "5", "--workers", "1"}
			cmd, wait := startConvert(t, append(tc.first, common...)...)
			conn := pgConn(t, pgURL)
			deadline := time.Now().Add(time.Minute)
			for {
				var n int
				// Errors while the manifest store is being created are expected: poll on.
				if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM convert.batches`).Scan(&n); err == nil && n >= 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no batch committed within a minute")
				}
				time.Sleep(5 * time.Millisecond)
			}
			_ = cmd.Process.Signal(tc.stop)
			wait()
			var read int
			if err := conn.QueryRow(t.Context(), `SELECT coalesce(sum(read), 0) FROM convert.batches`).Scan(&read); err != nil || read >= len(docs) {
				t.Fatalf("stopped run committed %d of %d documents (%v): it must stop before the end", read, len(docs), err)
			}

			if _, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "changed behind the resume point"}}}}); err != nil {
				t.Fatal(err)
			}
			resume := append(tc.resume, common...)
			wantRefusal(t, resumeRetryingLock(t, resume), db+".runs", id.Hex())
			if !tc.complete {
				return
			}

			if _, err := coll.ReplaceOne(t.Context(), bson.D{{Key: "_id", Value: id}}, first); err != nil {
				t.Fatal(err)
			}
			if r := resumeRetryingLock(t, resume); r.code != 0 {
				t.Fatalf("resume over the restored source: exit %d\n%s", r.code, r.stderr)
			}
			var listed struct {
				Runs []report `json:"runs"`
			}
			mustUnmarshal(t, mustConvert(t, nil, "status", "--to", pgURL, "--json").stdout, &listed)
			if len(listed.Runs) != 1 {
				t.Fatalf("%d runs, want the one resumed", len(listed.Runs))
			}
			rep := listed.Runs[0]
			if c := rep.Collections[0]; rep.Status != "completed" || c.Read != int64(len(docs)) || c.Checksum != ref.Collections[0].Checksum {
				t.Errorf("resumed: %s read %d checksum %s; uninterrupted %s", rep.Status, c.Read, c.Checksum, ref.Collections[0].Checksum)
			}
			verifyClean(t, uri, pgURL, rep.RunID)
		})
	}
}

// resumeRetryingLock runs convert, again while it exits 5: a killed process's server session
// may hold the module lock for a moment.
func resumeRetryingLock(t *testing.T, args []string) result {
	t.Helper()
	for i := 0; ; i++ {
		r := convert(t, nil, args...)
		if r.code != 5 || i == 10 {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}
