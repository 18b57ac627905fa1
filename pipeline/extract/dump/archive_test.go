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

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	nsA     = pipeline.Namespace{DB: "app", Collection: "a"}
	nsB     = pipeline.Namespace{DB: "app", Collection: "b"}
	nsEmpty = pipeline.Namespace{DB: "app", Collection: "empty"}
	nsC     = pipeline.Namespace{DB: "other", Collection: "c"}
)

func numberedDocs(t testing.TB, tag string, n int) [][]byte {
	var docs [][]byte
	for i := range n {
		docs = append(docs, mustMarshal(t, bson.D{{Key: "_id", Value: int32(i)}, {Key: "tag", Value: tag}, {Key: "pad", Value: strings.Repeat("p", i*7)}}))
	}
	return docs
}

// interleaved is an archive laid out as a concurrent mongodump writes one: blocks of several
// namespaces alternating, an empty namespace, EOF headers in between.
type interleaved struct {
	raw  []byte // uncompressed
	docs map[pipeline.Namespace][][]byte
	offs map[pipeline.Namespace][]int64
	eofs map[pipeline.Namespace]int64
}

func buildInterleaved(t testing.TB) interleaved {
	return buildInterleavedWith(t, allTypeDocs(t))
}

func buildInterleavedWith(t testing.TB, all [][]byte) interleaved {
	docs := map[pipeline.Namespace][][]byte{
		nsA: all,
		nsB: numberedDocs(t, "b", 5),
		nsC: numberedDocs(t, "c", 3),
	}
	a := newArchive(t, nsA, nsB, nsEmpty, nsC)
	offs := map[pipeline.Namespace][]int64{}
	eofs := map[pipeline.Namespace]int64{}
	put := func(ns pipeline.Namespace, from, to int) {
		offs[ns] = append(offs[ns], a.block(t, ns, docs[ns][from:to]...)...)
	}
	put(nsA, 0, 2)
	put(nsB, 0, 1)
	a.header(t, nsEmpty, false, 0) // mongodump opens an empty namespace with a document-less block
	a.term()
	put(nsA, 2, 5)
	put(nsC, 0, 3)
	eofs[nsC] = a.eof(t, nsC)
	put(nsB, 1, 5)
	eofs[nsEmpty] = a.eof(t, nsEmpty)
	put(nsA, 5, len(all))
	eofs[nsB] = a.eof(t, nsB)
	eofs[nsA] = a.eof(t, nsA)
	return interleaved{raw: a.buf.Bytes(), docs: docs, offs: offs, eofs: eofs}
}

func writeArchiveFile(t testing.TB, c Compression, raw []byte) string {
	p := filepath.Join(t.TempDir(), "dump.archive") // no telling extension: detection is by magic
	writeFile(t, p, compress(t, c, raw))
	return p
}

func TestArchiveInterleaved(t *testing.T) {
	arch := buildInterleaved(t)
	for _, c := range comps {
		t.Run(c.String(), func(t *testing.T) {
			path := writeArchiveFile(t, c, arch.raw)
			s := openSource(t, path)
			if s.Kind() != "archive" {
				t.Errorf("kind %q", s.Kind())
			}
			abs, _ := filepath.Abs(path)
			if s.Fingerprint() != "archive:"+abs {
				t.Errorf("fingerprint %q", s.Fingerprint())
			}
			if colls, err := s.Collections(context.Background(), "app"); err != nil || !slices.Equal(colls, []string{"a", "b", "empty"}) {
				t.Errorf("collections %v %v", colls, err)
			}
			if colls, _ := s.Collections(context.Background(), "other"); !slices.Equal(colls, []string{"c"}) {
				t.Errorf("collections of other %v", colls)
			}
			fi, _ := os.Stat(path)
			plan, err := s.Plan(context.Background(), nsA)
			if err != nil || plan.Count != -1 || plan.Bytes != fi.Size() || len(plan.Ranges) != 1 {
				t.Errorf("plan %+v %v", plan, err)
			}
			if _, err := s.Plan(context.Background(), pipeline.Namespace{DB: "app", Collection: "zzz"}); !errors.Is(err, pipeline.ErrNoCollection) {
				t.Errorf("plan missing: %v", err)
			}
			if meta, err := s.Metadata(context.Background(), nsB); err != nil || !strings.Contains(string(meta), `"collectionName":"b"`) {
				t.Errorf("metadata %q %v", meta, err)
			}
			for _, ns := range []pipeline.Namespace{nsA, nsB, nsC, nsEmpty} {
				got, err := scanAll(t, s, ns, 0)
				if err != nil {
					t.Fatalf("%s: %v", ns, err)
				}
				wantDocs(t, got.docs, arch.docs[ns])
				for i, p := range got.pos {
					if p.Start != arch.offs[ns][i] || !bytes.Equal(arch.raw[p.Start:p.End], got.docs[i]) {
						t.Fatalf("%s document %d at %+v, want start %d", ns, i, p, arch.offs[ns][i])
					}
				}
			}
		})
	}
}

func TestArchiveResume(t *testing.T) {
	arch := buildInterleaved(t)
	for _, c := range []Compression{None, Gzip} {
		t.Run(c.String(), func(t *testing.T) {
			s := openSource(t, writeArchiveFile(t, c, arch.raw))
			for _, ns := range []pipeline.Namespace{nsA, nsB} {
				full, err := scanAll(t, s, ns, 0)
				if err != nil {
					t.Fatal(err)
				}
				for k := 0; k <= len(full.docs); k++ {
					var from int64
					if k > 0 {
						from = full.pos[k-1].End
					}
					got, err := scanAll(t, s, ns, from)
					if err != nil {
						t.Fatalf("%s resume at %d: %v", ns, from, err)
					}
					wantDocs(t, got.docs, arch.docs[ns][k:])
				}
				// Inside a document is no place to resume: a plain error, not corruption.
				_, err = scanAll(t, s, ns, full.pos[1].Start+1)
				var ce *pipeline.CorruptError
				if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "falls inside") {
					t.Errorf("resume inside a document: %v", err)
				}
			}
		})
	}
}

func TestArchiveCorrupt(t *testing.T) {
	a1 := mustMarshal(t, bson.D{{Key: "_id", Value: "a1"}})
	a2 := mustMarshal(t, bson.D{{Key: "_id", Value: "a2"}})
	a3 := mustMarshal(t, bson.D{{Key: "_id", Value: "a3"}, {Key: "x", Value: 1.5}})
	b1 := mustMarshal(t, bson.D{{Key: "_id", Value: "b1"}})
	noNUL := bytes.Clone(a3)
	noNUL[len(noNUL)-1] = 7

	type built struct {
		raw    []byte
		ns     pipeline.Namespace // scanned
		want   [][]byte           // delivered before the error
		offset int64              // of the CorruptError
		what   string
	}
	cases := []struct {
		name  string
		build func(t *testing.T) built
	}{
		{"bad CRC", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1, a2)
			at := a.header(t, nsA, true, int64(a.crcs[nsA]^1))
			a.term()
			return built{a.buf.Bytes(), nsA, [][]byte{a1, a2}, at, "CRC-64 mismatch"}
		}},
		{"CRC of an empty namespace", func(t *testing.T) built {
			a := newArchive(t, nsA)
			at := a.header(t, nsA, true, 42)
			a.term()
			return built{a.buf.Bytes(), nsA, nil, at, "CRC-64 mismatch"}
		}},
		{"truncated mid-document", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			offs := a.block(t, nsA, a1, a2, a3)
			raw := a.buf.Bytes()[:offs[2]+6]
			return built{raw, nsA, [][]byte{a1, a2}, offs[2], "runs past the end|file ends inside a document"}
		}},
		{"truncated at a block boundary", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsA, a1)
			a.block(t, nsB, b1)
			a.block(t, nsA, a2)
			return built{a.buf.Bytes(), nsA, [][]byte{a1, a2}, int64(a.buf.Len()), "before the EOF header of app.a"}
		}},
		{"truncated before the namespace's first block", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsA, a1)
			return built{a.buf.Bytes(), nsB, nil, int64(a.buf.Len()), "archive is truncated"}
		}},
		{"truncated inside a terminator", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1)
			raw := a.buf.Bytes()[:a.buf.Len()-2]
			return built{raw, nsA, [][]byte{a1}, int64(len(raw)) - 2, "inside a document length"}
		}},
		{"truncated block without terminator", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1)
			raw := a.buf.Bytes()[:a.buf.Len()-4]
			return built{raw, nsA, [][]byte{a1}, int64(len(raw)), "before its terminator"}
		}},
		{"prelude namespace never written", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsA, a1)
			a.eof(t, nsA)
			return built{a.buf.Bytes(), nsB, nil, int64(a.buf.Len()), "without any block of app.b"}
		}},
		{"length below minimum in another namespace's block", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsA, a1)
			a.header(t, nsB, false, 0)
			at := int64(a.buf.Len())
			a.buf.Write([]byte{3, 0, 0, 0, 0, 0})
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, at, "below the minimum"}
		}},
		{"length over maximum", func(t *testing.T) built {
			a := newArchive(t, nsA)
			offs := a.block(t, nsA, a1)
			at := offs[0] + int64(len(a1))
			raw := bytes.Clone(a.buf.Bytes())
			copy(raw[at:], []byte{0xff, 0xff, 0xff, 0x7f}) // overwrites the terminator
			return built{raw, nsA, [][]byte{a1}, at, "over the maximum"}
		}},
		{"missing trailing NUL", func(t *testing.T) built {
			a := newArchive(t, nsA)
			offs := a.block(t, nsA, a1, noNUL)
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, offs[1], "NUL"}
		}},
		{"missing trailing NUL in a skipped block", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsA, a1)
			offs := a.block(t, nsB, noNUL)
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, offs[0], "NUL"}
		}},
		{"document after EOF header", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1)
			a.header(t, nsA, true, int64(a.crcs[nsA]))
			at := int64(a.buf.Len())
			a.buf.Write(a2)
			a.term()
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, at, "after the EOF header"}
		}},
		{"namespace reopened after EOF", func(t *testing.T) built {
			a := newArchive(t, nsA, nsB)
			a.block(t, nsB, b1)
			a.eof(t, nsB)
			at := int64(a.buf.Len())
			a.block(t, nsB, b1)
			return built{a.buf.Bytes(), nsA, nil, at, "after its EOF header"}
		}},
		{"consecutive terminators", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1)
			at := int64(a.buf.Len())
			a.term()
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, at, "terminator where a namespace header"}
		}},
		{"header without collection", func(t *testing.T) built {
			a := newArchive(t, nsA)
			a.block(t, nsA, a1)
			at := int64(a.buf.Len())
			a.buf.Write(mustMarshal(t, bson.D{{Key: "db", Value: "app"}, {Key: "EOF", Value: false}}))
			a.term()
			return built{a.buf.Bytes(), nsA, [][]byte{a1}, at, "bad namespace header"}
		}},
		{"header with EOF not a boolean", func(t *testing.T) built {
			a := newArchive(t, nsA)
			at := int64(a.buf.Len())
			a.buf.Write(mustMarshal(t, bson.D{{Key: "db", Value: "app"}, {Key: "collection", Value: "a"}, {Key: "EOF", Value: "yes"}}))
			a.term()
			return built{a.buf.Bytes(), nsA, nil, at, "not a boolean"}
		}},
	}
	for _, tc := range cases {
		for _, c := range []Compression{None, Gzip} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				b := tc.build(t)
				path := writeArchiveFile(t, c, b.raw)
				s := openSource(t, path)
				got, err := scanAll(t, s, b.ns, 0)
				ce := wantCorrupt(t, err, path, b.offset)
				if !slices.ContainsFunc(strings.Split(b.what, "|"), func(w string) bool { return strings.Contains(ce.What, w) }) {
					t.Errorf("what %q, want %q", ce.What, b.what)
				}
				wantDocs(t, got.docs, b.want)
			})
		}
	}
}

func TestArchiveOpenCorrupt(t *testing.T) {
	good := buildInterleaved(t).raw
	preludeEnd := bytes.Index(good, terminatorBytes) + 4
	cases := []struct {
		name   string
		raw    []byte
		offset int64
		what   string
	}{
		{"empty file", nil, 0, "too short"},
		{"short magic", good[:2], 0, "too short"},
		{"bad magic", append([]byte{0x6d, 0xe2, 0x99, 0x82}, good[4:]...), 0, "bad magic number"},
		{"a plain bson file", mustMarshal(t, bson.D{{Key: "_id", Value: 1}}), 0, "bad magic number"},
		{"no header", good[:4], 4, "before the archive header"},
		{"truncated prelude", good[:preludeEnd-4], int64(preludeEnd - 4), "inside the archive prelude"},
		{"truncated header", good[:10], 4, ""}, // "runs past the end" or "ends inside", by compression
	}
	for _, tc := range cases {
		for _, c := range []Compression{None, Gzip} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				path := writeArchiveFile(t, c, tc.raw)
				_, err := Open(context.Background(), path)
				ce := wantCorrupt(t, err, path, tc.offset)
				if tc.what != "" && !strings.Contains(ce.What, tc.what) {
					t.Errorf("what %q, want %q", ce.What, tc.what)
				}
			})
		}
	}
	// A gzip stream cut short is corrupt too, wherever it stops.
	z := compress(t, Gzip, good)
	path := writeArchiveFile(t, None, z[:len(z)*2/3])
	s, err := Open(context.Background(), path)
	if err == nil {
		_, err = scanAll(t, s, nsA, 0)
	}
	wantCorrupt(t, err, path, -1)
}

// TestArchiveCRCReread checks practice 11: a mismatch that a second read does not confirm
// is an error, but not a corrupt file.
func TestArchiveCRCReread(t *testing.T) {
	a1 := mustMarshal(t, bson.D{{Key: "_id", Value: "a1"}})
	bad := newArchive(t, nsA)
	bad.block(t, nsA, a1)
	bad.header(t, nsA, true, int64(bad.crcs[nsA]^1))
	bad.term()
	good := newArchive(t, nsA)
	good.block(t, nsA, a1)
	good.eof(t, nsA)

	dir := t.TempDir()
	path := filepath.Join(dir, "dump.archive")
	writeFile(t, path, bad.buf.Bytes())
	s := openSource(t, path)
	err := s.Scan(context.Background(), nsA, pipeline.Range{}, pipeline.Cursor{}, func(bson.Raw, pipeline.Position) error {
		// The first pass holds the bad file open; the re-read opens the repaired one.
		tmp := filepath.Join(dir, "repaired")
		writeFile(t, tmp, good.buf.Bytes())
		return os.Rename(tmp, path)
	})
	var ce *pipeline.CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "re-read") {
		t.Fatalf("err %v", err)
	}
}

// TestArchiveTimeSeries: mongodump lists a time-series collection in the prelude with type
// "timeseries" and writes its buckets in blocks of system.buckets.<name>. Both names read the
// buckets, as in a dump directory.
func TestArchiveTimeSeries(t *testing.T) {
	docs := [][]byte{mustMarshal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "meta", Value: "a"}}), mustMarshal(t, bson.D{{Key: "_id", Value: int32(2)}})}
	var buf bytes.Buffer
	err := WriteArchive(&buf, []ArchiveCollection{
		{DB: "app", Collection: "weather", Metadata: `{"type":"timeseries"}`, TimeSeries: true, Docs: func(emit func(bson.Raw) error) error {
			for _, d := range docs {
				if err := emit(d); err != nil {
					return err
				}
			}
			return nil
		}},
		{DB: "app", Collection: "plain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := openSource(t, writeArchiveFile(t, None, buf.Bytes()))
	if colls, err := s.Collections(context.Background(), "app"); err != nil || !slices.Equal(colls, []string{"plain", "system.buckets.weather", "weather"}) {
		t.Errorf("collections %v %v", colls, err)
	}
	for _, name := range []string{"weather", "system.buckets.weather"} {
		ns := pipeline.Namespace{DB: "app", Collection: name}
		if _, err := s.Plan(context.Background(), ns); err != nil {
			t.Errorf("plan %s: %v", ns, err)
		}
		got, err := scanAll(t, s, ns, 0)
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		wantDocs(t, got.docs, docs)
	}
	if meta, err := s.Metadata(context.Background(), pipeline.Namespace{DB: "app", Collection: "weather"}); err != nil || string(meta) != `{"type":"timeseries"}` {
		t.Errorf("metadata %q %v", meta, err)
	}
}
