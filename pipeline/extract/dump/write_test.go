package dump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func docsOf(docs [][]byte) DocsFunc {
	return func(emit func(bson.Raw) error) error {
		for _, d := range docs {
			if err := emit(d); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestWriteArchiveRoundTrip(t *testing.T) {
	want := map[pipeline.Namespace][][]byte{
		nsA:     allTypeDocs(t),
		nsB:     numberedDocs(t, "b", 50),
		nsEmpty: nil,
		nsC:     numberedDocs(t, "c", 1),
	}
	colls := []ArchiveCollection{
		{DB: nsA.DB, Collection: nsA.Collection, Metadata: `{"indexes":[]}`, Docs: docsOf(want[nsA])},
		{DB: nsB.DB, Collection: nsB.Collection, Docs: docsOf(want[nsB])},
		{DB: nsEmpty.DB, Collection: nsEmpty.Collection},
		{DB: nsC.DB, Collection: nsC.Collection, Docs: docsOf(want[nsC])},
	}
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			var buf bytes.Buffer
			if gz {
				zw := gzip.NewWriter(&buf)
				if err := WriteArchive(zw, colls); err != nil {
					t.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
			} else if err := WriteArchive(&buf, colls); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "out.archive")
			writeFile(t, path, buf.Bytes())
			s := openSource(t, path)
			for ns, docs := range want {
				got, err := scanAll(t, s, ns, 0) // checks the CRC the writer computed
				if err != nil {
					t.Fatalf("%s: %v", ns, err)
				}
				wantDocs(t, got.docs, docs)
			}
			if meta, _ := s.Metadata(context.Background(), nsA); string(meta) != `{"indexes":[]}` {
				t.Errorf("metadata %q", meta)
			}
		})
	}
}

// TestArchiveWriterInterleaves checks the multiplexer-style writer (header on a namespace
// change, terminator before the next header) that WriteArchive builds on.
func TestArchiveWriterInterleaves(t *testing.T) {
	a, b := numberedDocs(t, "a", 6), numberedDocs(t, "b", 4)
	var buf bytes.Buffer
	aw := &archiveWriter{w: &buf}
	if err := aw.prelude([]ArchiveCollection{{DB: nsA.DB, Collection: nsA.Collection}, {DB: nsB.DB, Collection: nsB.Collection}}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if err := aw.doc(nsA, a[i]); err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if err := aw.doc(nsB, b[i]); err != nil {
				t.Fatal(err)
			}
		}
		if i == 3 {
			if err := aw.eof(nsB); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := aw.eof(nsA); err != nil {
		t.Fatal(err)
	}
	s := openSource(t, writeArchiveFile(t, None, buf.Bytes()))
	for ns, docs := range map[pipeline.Namespace][][]byte{nsA: a, nsB: b} {
		got, err := scanAll(t, s, ns, 0)
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		wantDocs(t, got.docs, docs)
	}
}

func TestWriteArchiveRefusesBrokenFrames(t *testing.T) {
	good := mustMarshal(t, bson.D{{Key: "_id", Value: 1}})
	short := good[:len(good)-1]
	noNUL := bytes.Clone(good)
	noNUL[len(noNUL)-1] = 1
	for _, doc := range [][]byte{nil, {1, 2}, short, noNUL} {
		err := WriteArchive(&bytes.Buffer{}, []ArchiveCollection{{DB: "d", Collection: "c", Docs: docsOf([][]byte{doc})}})
		if err == nil {
			t.Errorf("document %x written", doc)
		}
	}
	// Content is not the writer's business: an intact frame with invalid content is written.
	if err := WriteArchive(&bytes.Buffer{}, []ArchiveCollection{{DB: "d", Collection: "c", Docs: docsOf(invalidContentDocs())}}); err != nil {
		t.Error(err)
	}
	if err := WriteArchive(&bytes.Buffer{}, []ArchiveCollection{{DB: "d", Collection: "c"}, {DB: "d", Collection: "c"}}); err == nil {
		t.Error("namespace listed twice was written")
	}
}

func TestDirWriterRoundTrip(t *testing.T) {
	docs := allTypeDocs(t)
	meta := []byte(`{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}],"collectionName":"c"}`)
	for _, data := range comps {
		for _, mc := range comps {
			t.Run(data.String()+"/"+mc.String(), func(t *testing.T) {
				root := t.TempDir()
				w := DirWriter{Root: root, Data: data, Metadata: mc}
				files, err := w.WriteCollection(context.Background(), "app", "c", meta, docsOf(docs))
				if err != nil {
					t.Fatal(err)
				}
				wantFiles := []string{filepath.Join("app", "c.bson"+ext(data)), filepath.Join("app", "c.metadata.json"+ext(mc))}
				if !slices.Equal(files, wantFiles) {
					t.Errorf("files %v, want %v", files, wantFiles)
				}
				entries, _ := os.ReadDir(filepath.Join(root, "app"))
				if len(entries) != 2 {
					t.Errorf("directory holds %d entries (temporary files left?)", len(entries))
				}
				s := openSource(t, root)
				ns := pipeline.Namespace{DB: "app", Collection: "c"}
				got, err := scanAll(t, s, ns, 0)
				if err != nil {
					t.Fatal(err)
				}
				wantDocs(t, got.docs, docs)
				if m, err := s.Metadata(context.Background(), ns); err != nil || !bytes.Equal(m, meta) {
					t.Errorf("metadata %q, %v", m, err)
				}
			})
		}
	}
}

func TestDirWriterNames(t *testing.T) {
	root := t.TempDir()
	doc := mustMarshal(t, bson.D{{Key: "_id", Value: 1}})
	w := DirWriter{Root: root, Data: Zstd}
	long := strings.Repeat("n", 300)
	longMeta := []byte(`{"indexes":[],"collectionName":"` + long + `"}`)
	for _, tc := range []struct {
		coll string
		meta []byte
	}{{"a/b c", []byte(`{}`)}, {"$admin.system.users", []byte(`{}`)}, {long, longMeta}, {"nometa", nil}} {
		if _, err := w.WriteCollection(context.Background(), "db", tc.coll, tc.meta, docsOf([][]byte{doc})); err != nil {
			t.Fatalf("%s: %v", tc.coll, err)
		}
	}
	s := openSource(t, root)
	colls, _ := s.Collections(context.Background(), "db")
	want := []string{"$admin.system.users", "a/b c", long, "nometa"}
	slices.Sort(want)
	if !slices.Equal(colls, want) {
		t.Errorf("collections %q, want %q", colls, want)
	}
	if len(s.Warnings()) != 1 {
		t.Errorf("warnings %v", s.Warnings())
	}

	for _, db := range []string{"", ".", "..", "a/b", `a\b`} {
		if _, err := w.WriteCollection(context.Background(), db, "c", nil, nil); err == nil {
			t.Errorf("database name %q accepted", db)
		}
	}
	if _, err := w.WriteCollection(context.Background(), "db", "", nil, nil); err == nil {
		t.Error("empty collection name accepted")
	}
}

func TestDirWriterFailureLeavesNoFile(t *testing.T) {
	root := t.TempDir()
	boom := errors.New("source failed")
	_, err := DirWriter{Root: root, Data: Gzip}.WriteCollection(context.Background(), "db", "c", nil, func(emit func(bson.Raw) error) error {
		if err := emit(mustMarshal(t, bson.D{{Key: "_id", Value: 1}})); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "db"))
	if len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}
