package dump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var comps = []Compression{None, Gzip, Zstd}

// writeDirColl writes root/db/<stem>.bson[ext] holding raw, compressed by c, and returns its path.
func writeDirColl(t testing.TB, root, db, stem string, c Compression, raw []byte) string {
	p := filepath.Join(root, db, stem+".bson"+ext(c))
	writeFile(t, p, compress(t, c, raw))
	return p
}

func TestDirReadsEveryTypeByteIdentical(t *testing.T) {
	docs := allTypeDocs(t)
	raw := concat(docs)
	for _, c := range comps {
		t.Run(c.String(), func(t *testing.T) {
			root := t.TempDir()
			data := writeDirColl(t, root, "app", "things", c, raw)
			writeFile(t, filepath.Join(root, "app", "things.metadata.json"+ext(c)), compress(t, c, []byte(`{"indexes":[]}`)))
			s := openSource(t, root)
			ns := pipeline.Namespace{DB: "app", Collection: "things"}

			if s.Kind() != "dump" {
				t.Errorf("kind %q", s.Kind())
			}
			abs, _ := filepath.Abs(root)
			if s.Fingerprint() != "dump:"+abs {
				t.Errorf("fingerprint %q", s.Fingerprint())
			}
			if len(s.Warnings()) != 0 {
				t.Errorf("warnings %v", s.Warnings())
			}
			colls, err := s.Collections(context.Background(), "app")
			if err != nil || !slices.Equal(colls, []string{"things"}) {
				t.Errorf("collections %v, %v", colls, err)
			}
			plan, err := s.Plan(context.Background(), ns)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(data)
			if plan.Count != -1 || plan.Bytes != fi.Size() || len(plan.Ranges) != 1 || plan.Ranges[0].No != 0 || plan.Ranges[0].TypeClass != "" {
				t.Errorf("plan %+v, file size %d", plan, fi.Size())
			}
			meta, err := s.Metadata(context.Background(), ns)
			if err != nil || string(meta) != `{"indexes":[]}` {
				t.Errorf("metadata %q, %v", meta, err)
			}

			got, err := scanAll(t, s, ns, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantDocs(t, got.docs, docs)
			var at int64
			for i, p := range got.pos {
				if p.Start != at || p.End != at+int64(len(docs[i])) || p.ID != nil {
					t.Fatalf("position %d = %+v, want start %d", i, p, at)
				}
				if !bytes.Equal(raw[p.Start:p.End], docs[i]) {
					t.Fatalf("position %d does not frame its document", i)
				}
				at = p.End
			}
		})
	}
}

func TestDirResume(t *testing.T) {
	docs := allTypeDocs(t)
	raw := concat(docs)
	ns := pipeline.Namespace{DB: "app", Collection: "things"}
	for _, c := range comps {
		t.Run(c.String(), func(t *testing.T) {
			root := t.TempDir()
			data := writeDirColl(t, root, "app", "things", c, raw)
			s := openSource(t, root)
			full, err := scanAll(t, s, ns, 0)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k <= len(docs); k++ {
				var from int64
				if k > 0 {
					from = full.pos[k-1].End
				}
				got, err := scanAll(t, s, ns, from)
				if err != nil {
					t.Fatalf("resume at %d: %v", from, err)
				}
				wantDocs(t, got.docs, docs[k:])
				if !slices.EqualFunc(got.pos, full.pos[k:], func(a, b pipeline.Position) bool { return a.Start == b.Start && a.End == b.End }) {
					t.Fatalf("resume at %d: positions %v, want %v", from, got.pos, full.pos[k:])
				}
			}
			// The file shrank since the offset was committed.
			_, err = scanAll(t, s, ns, int64(len(raw))+1)
			wantCorrupt(t, err, data, int64(len(raw))+1)
		})
	}
}

func TestDirCorruptFrames(t *testing.T) {
	prefix := [][]byte{
		mustMarshal(t, bson.D{{Key: "_id", Value: int32(1)}}),
		mustMarshal(t, bson.D{{Key: "_id", Value: int32(2)}, {Key: "s", Value: "two"}}),
	}
	next := mustMarshal(t, bson.D{{Key: "_id", Value: int32(3)}, {Key: "s", Value: "three, a longer one"}})
	noNUL := bytes.Clone(next)
	noNUL[len(noNUL)-1] = 1
	le := func(n uint32, rest ...byte) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), rest...) }

	cases := []struct {
		name     string
		tail     []byte
		what     string // substring of CorruptError.What for plain files
		compWhat string // for compressed files, where a length cannot be checked against the file size
	}{
		{"length below minimum", le(4, 0, 0, 0, 0, 0, 0), "below the minimum", ""},
		{"zero length", le(0, 1, 2, 3, 4, 5), "below the minimum", ""},
		{"archive terminator in a bson file", le(0xffffffff, 0), "below the minimum", ""},
		{"length over maximum", le(maxDocSize+1, 1, 2, 3, 0), "over the maximum", ""},
		{"length past end of file", le(200, 1, 2, 3, 4, 0), "runs past the end of the file", "file ends inside a document"},
		{"truncated mid-document", next[:len(next)/2], "runs past the end of the file", "file ends inside a document"},
		{"truncated length prefix", next[:2], "inside a document length", ""},
		{"missing trailing NUL", noNUL, "does not end with a NUL byte", ""},
		{"missing trailing NUL then more", append(bytes.Clone(noNUL), next...), "does not end with a NUL byte", ""},
	}
	ns := pipeline.Namespace{DB: "db", Collection: "c"}
	for _, tc := range cases {
		for _, c := range comps {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				root := t.TempDir()
				data := writeDirColl(t, root, "db", "c", c, append(concat(prefix), tc.tail...))
				s := openSource(t, root)
				got, err := scanAll(t, s, ns, 0)
				ce := wantCorrupt(t, err, data, int64(len(concat(prefix))))
				what := tc.what
				if c != None && tc.compWhat != "" {
					what = tc.compWhat
				}
				if !strings.Contains(ce.What, what) {
					t.Errorf("what %q, want %q", ce.What, what)
				}
				wantDocs(t, got.docs, prefix)
			})
		}
	}
}

func TestDirAcceptsMaximumLength(t *testing.T) {
	// A document of exactly 16 MiB + 16 KiB is a frame, not corruption.
	blobLen := maxDocSize - 4 - 1 - len("b\x00") - 4 - 1 - 1
	doc := mustMarshal(t, bson.D{{Key: "b", Value: bson.Binary{Data: make([]byte, blobLen)}}})
	if len(doc) != maxDocSize {
		t.Fatalf("fixture is %d bytes, want %d", len(doc), maxDocSize)
	}
	root := t.TempDir()
	writeDirColl(t, root, "db", "c", None, doc)
	got, err := scanAll(t, openSource(t, root), pipeline.Namespace{DB: "db", Collection: "c"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantDocs(t, got.docs, [][]byte{doc})
}

func TestDirTruncatedCompressedFile(t *testing.T) {
	var docs [][]byte
	for i := range 2000 {
		docs = append(docs, mustMarshal(t, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", i%97)}}))
	}
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			z := compress(t, c, concat(docs))
			root := t.TempDir()
			data := filepath.Join(root, "db", "c.bson"+ext(c))
			writeFile(t, data, z[:len(z)*2/3])
			got, err := scanAll(t, openSource(t, root), pipeline.Namespace{DB: "db", Collection: "c"}, 0)
			var delivered int64
			for _, d := range got.docs {
				delivered += int64(len(d))
			}
			wantCorrupt(t, err, data, delivered)
			wantDocs(t, got.docs, docs[:len(got.docs)])
		})
	}
}

func TestDirLayout(t *testing.T) {
	root := t.TempDir()
	doc := mustMarshal(t, bson.D{{Key: "_id", Value: int32(1)}})
	writeDirColl(t, root, "app", "nometa", None, doc)
	writeDirColl(t, root, "app", "a%2Fb", Gzip, doc)
	writeFile(t, filepath.Join(root, "app", "a%2Fb.metadata.json.gz"), compress(t, Gzip, []byte(`{}`)))
	writeFile(t, filepath.Join(root, "app", "aview.metadata.json"), []byte(`{"options":{"viewOn":"x"}}`))
	writeDirColl(t, root, "app", "system.buckets.weather", Zstd, doc)
	writeFile(t, filepath.Join(root, "app", "weather.metadata.json.zst"), compress(t, Zstd, []byte(`{"options":{"timeseries":{}}}`)))
	writeDirColl(t, root, "app", "x.metadata", None, doc) // a collection named x.metadata
	writeFile(t, filepath.Join(root, "app", "x.metadata.metadata.json"), []byte(`{}`))
	writeFile(t, filepath.Join(root, "app", "notes.txt"), []byte("ignored"))
	writeDirColl(t, root, "other", "c", None, doc)
	writeFile(t, filepath.Join(root, "other", "c.metadata.json"), []byte(`{}`))
	writeFile(t, filepath.Join(root, "oplog.bson"), nil)
	writeFile(t, filepath.Join(root, "SHA256SUMS"), nil)

	s := openSource(t, root)
	colls, err := s.Collections(context.Background(), "app")
	want := []string{"a/b", "aview", "nometa", "system.buckets.weather", "weather", "x.metadata"}
	if err != nil || !slices.Equal(colls, want) {
		t.Errorf("collections %v, want %v (%v)", colls, want, err)
	}
	if colls, _ := s.Collections(context.Background(), "nope"); len(colls) != 0 {
		t.Errorf("unknown db has collections %v", colls)
	}
	// Only nometa lacks metadata: the time-series buckets use weather's.
	if w := s.Warnings(); len(w) != 1 || w[0].Namespace != (pipeline.Namespace{DB: "app", Collection: "nometa"}) || !strings.Contains(w[0].What, "no metadata") {
		t.Errorf("warnings %v", w)
	}
	// weather, a time-series collection, reads from its buckets.
	for _, name := range []string{"a/b", "system.buckets.weather", "weather", "x.metadata", "nometa"} {
		got, err := scanAll(t, s, pipeline.Namespace{DB: "app", Collection: name}, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantDocs(t, got.docs, [][]byte{doc})
	}
	// A view has metadata and no documents.
	view := pipeline.Namespace{DB: "app", Collection: "aview"}
	plan, err := s.Plan(context.Background(), view)
	if err != nil || plan.Count != 0 || plan.Bytes != 0 || len(plan.Ranges) != 1 {
		t.Errorf("view plan %+v, %v", plan, err)
	}
	if got, err := scanAll(t, s, view, 0); err != nil || len(got.docs) != 0 {
		t.Errorf("view scan: %d docs, %v", len(got.docs), err)
	}
	if meta, err := s.Metadata(context.Background(), pipeline.Namespace{DB: "app", Collection: "nometa"}); meta != nil || err != nil {
		t.Errorf("metadata of nometa: %q, %v", meta, err)
	}

	missing := pipeline.Namespace{DB: "app", Collection: "missing"}
	if _, err := s.Plan(context.Background(), missing); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Errorf("plan missing: %v", err)
	}
	if _, err := scanAll(t, s, missing, 0); !errors.Is(err, pipeline.ErrNoCollection) {
		t.Errorf("scan missing: %v", err)
	}
}

func TestDirTwoDataFilesForOneCollection(t *testing.T) {
	root := t.TempDir()
	writeDirColl(t, root, "db", "c", None, nil)
	writeDirColl(t, root, "db", "c", Gzip, nil)
	if _, err := Open(context.Background(), root); err == nil || !strings.Contains(err.Error(), "two data files") {
		t.Fatalf("open: %v", err)
	}
}

func TestDirShortenedName(t *testing.T) {
	long := strings.Repeat("é", 150) // escapes to 900 bytes
	stem := EscapeCollectionName(long)
	if len(stem) != escapedNameMax {
		t.Fatalf("stem is %d bytes", len(stem))
	}
	doc := mustMarshal(t, bson.D{{Key: "_id", Value: int32(1)}})
	meta, err := bson.MarshalExtJSON(bson.D{{Key: "indexes", Value: bson.A{}}, {Key: "collectionName", Value: long}}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeDirColl(t, root, "db", stem, None, doc)
	writeFile(t, filepath.Join(root, "db", stem+".metadata.json"), meta)
	writeDirColl(t, root, "db2", stem, None, doc) // no metadata to recover the name from
	s := openSource(t, root)
	if colls, _ := s.Collections(context.Background(), "db"); !slices.Equal(colls, []string{long}) {
		t.Errorf("collections %q", colls)
	}
	if len(s.Warnings()) != 2 { // db2: no metadata, and a name it cannot recover
		t.Errorf("warnings %v", s.Warnings())
	}
}

func TestScanContract(t *testing.T) {
	docs := allTypeDocs(t)
	root := t.TempDir()
	writeDirColl(t, root, "db", "c", Gzip, concat(docs))
	s := openSource(t, root)
	ns := pipeline.Namespace{DB: "db", Collection: "c"}
	ctx := context.Background()

	t.Run("fn error returned unchanged", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Scan(ctx, ns, pipeline.Range{}, pipeline.Cursor{}, func(bson.Raw, pipeline.Position) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Fatalf("err %v after %d docs", err, n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		n := 0
		err := s.Scan(ctx, ns, pipeline.Range{}, pipeline.Cursor{}, func(bson.Raw, pipeline.Position) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Fatalf("err %v after %d docs", err, n)
		}
	})
	t.Run("live range or cursor refused", func(t *testing.T) {
		for _, tc := range []struct {
			r pipeline.Range
			c pipeline.Cursor
		}{
			{pipeline.Range{Lower: []byte{1, 2, 3}}, pipeline.Cursor{}},
			{pipeline.Range{TypeClass: "string"}, pipeline.Cursor{}},
			{pipeline.Range{}, pipeline.Cursor{AfterID: []byte{0x10, 1, 0, 0, 0}}},
			{pipeline.Range{}, pipeline.Cursor{Offset: -1}},
		} {
			if err := s.Scan(ctx, ns, tc.r, tc.c, func(bson.Raw, pipeline.Position) error { return nil }); err == nil {
				t.Errorf("range %+v cursor %+v accepted", tc.r, tc.c)
			}
		}
	})
	t.Run("concurrent scans", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				got, err := scanAll(t, s, ns, 0)
				if err != nil || len(got.docs) != len(docs) {
					t.Errorf("%d docs, %v", len(got.docs), err)
				}
			})
		}
		wg.Wait()
	})
	t.Run("closed", func(t *testing.T) {
		s := openSource(t, root)
		s.Close(ctx)
		if _, err := scanAll(t, s, ns, 0); err == nil {
			t.Fatal("scan after close succeeded")
		}
	})
}

func TestIsDump(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "archive.gz")
	writeFile(t, file, nil)
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"mongodb://user:pw@host/db", false},
		{"MongoDB+SRV://cluster.example.net", false},
		{dir, true},
		{file, true},
		{"./dump-that-is-not-there", true},
		{"postgres://host/db", false},
	} {
		if got := IsDump(tc.src); got != tc.want {
			t.Errorf("IsDump(%q) = %v", tc.src, got)
		}
	}
}
