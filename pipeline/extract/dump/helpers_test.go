package dump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return b
}

// rawDoc frames body (elements without the terminating NUL) as a document: length, body, NUL.
func rawDoc(body ...byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(body)+5))
	b = append(b, body...)
	return append(b, 0)
}

// invalidContentDocs have an intact frame (length and trailing NUL right) and content that
// breaks the BSON spec: they must be delivered as they are.
func invalidContentDocs() [][]byte {
	return [][]byte{
		rawDoc(0x08, 'b', 0, 0x02),                                  // boolean 2
		rawDoc(0x7a, 'x', 0),                                        // unknown type byte
		rawDoc(0x02, 's', 0, 0xff, 0xff, 0, 0, 'a', 0),              // string length runs past the document
		rawDoc(0x10, 'i', 0, 1, 2),                                  // int32 cut short
		rawDoc(0x02, 'a', 0, 2, 0, 0, 0, 'x', 'y'),                  // string not NUL-terminated
		{0x0a, 0, 0, 0, 0x0a, 'n', 0, 0x0a, 'm', 0},                 // elements run into the trailing NUL
		rawDoc(0x05, 'b', 0, 6, 0, 0, 0, 2, 1, 0, 0, 0, 0xaa, 0xbb), // binary subtype 2 with a wrong inner length
	}
}

// allTypeDocs are valid documents with every BSON type, the values FerretDB refuses, and the
// field names a JSON mapping finds awkward; then the content-invalid ones.
func allTypeDocs(t testing.TB) [][]byte {
	oid := bson.ObjectID{0x65, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb}
	dec, err := bson.ParseDecimal128("-1234.5678E-20")
	if err != nil {
		t.Fatal(err)
	}
	nan := math.Float64frombits(0x7ff8000000000001) // a NaN with a payload must survive as is
	docs := []any{
		bson.D{
			{Key: "_id", Value: oid},
			{Key: "double", Value: 1.5},
			{Key: "string", Value: "héllo\u2028"},
			{Key: "doc", Value: bson.D{{Key: "a", Value: int32(1)}}},
			{Key: "array", Value: bson.A{int32(1), "x", bson.A{bson.A{}}}},
			{Key: "binary", Value: bson.Binary{Subtype: 0x00, Data: []byte{1, 2, 3}}},
			{Key: "binold", Value: bson.Binary{Subtype: 0x02, Data: []byte{4, 5}}},
			{Key: "uuid", Value: bson.Binary{Subtype: 0x04, Data: bytes.Repeat([]byte{0xab}, 16)}},
			{Key: "undefined", Value: bson.Undefined{}},
			{Key: "bool", Value: true},
			{Key: "date", Value: bson.DateTime(-62135596800000)},
			{Key: "null", Value: nil},
			{Key: "regex", Value: bson.Regex{Pattern: "^a.*$", Options: "imx"}},
			{Key: "dbpointer", Value: bson.DBPointer{DB: "db.c", Pointer: oid}},
			{Key: "javascript", Value: bson.JavaScript("function () { return 1 }")},
			{Key: "symbol", Value: bson.Symbol("sym")},
			{Key: "codewscope", Value: bson.CodeWithScope{Code: "x + y", Scope: bson.D{{Key: "x", Value: int32(1)}}}},
			{Key: "int32", Value: int32(-7)},
			{Key: "timestamp", Value: bson.Timestamp{T: 1700000000, I: 3}},
			{Key: "int64", Value: int64(1) << 62},
			{Key: "decimal", Value: dec},
			{Key: "minkey", Value: bson.MinKey{}},
			{Key: "maxkey", Value: bson.MaxKey{}},
		},
		bson.D{
			{Key: "_id", Value: "floats"},
			{Key: "nan", Value: math.NaN()},
			{Key: "nanpayload", Value: nan},
			{Key: "pinf", Value: math.Inf(1)},
			{Key: "ninf", Value: math.Inf(-1)},
			{Key: "negzero", Value: math.Copysign(0, -1)},
			{Key: "subnormal", Value: math.SmallestNonzeroFloat64},
		},
		bson.D{
			{Key: "_id", Value: int32(3)},
			{Key: "dup", Value: int32(1)},
			{Key: "dup", Value: "two"},
			{Key: "$set", Value: bson.D{{Key: "$inc", Value: int32(1)}}},
			{Key: "a.b", Value: "dotted"},
			{Key: "", Value: "empty name"},
			{Key: "nested", Value: bson.A{bson.A{bson.A{int32(1)}}, bson.D{{Key: "$in", Value: bson.A{}}}}},
		},
		bson.D{{Key: "_id", Value: bson.D{{Key: "compound", Value: true}, {Key: "k", Value: int64(-1)}}}},
		bson.D{},
	}
	var out [][]byte
	for _, d := range docs {
		out = append(out, mustMarshal(t, d))
	}
	big := mustMarshal(t, bson.D{{Key: "_id", Value: "big"}, {Key: "blob", Value: bson.Binary{Data: bytes.Repeat([]byte{7}, 300<<10)}}})
	out = append(out, big) // larger than the initial buffer, to make it grow
	return append(out, invalidContentDocs()...)
}

func concat(docs [][]byte) []byte {
	var b []byte
	for _, d := range docs {
		b = append(b, d...)
	}
	return b
}

func compress(t testing.TB, c Compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case None:
		return b
	case Gzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case Zstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func decompress(t testing.TB, c Compression, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case None:
		return b
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type scanned struct {
	docs [][]byte
	pos  []pipeline.Position
}

// scanAll runs one Scan and copies what it delivered (doc is only valid during fn).
func scanAll(t testing.TB, s *Source, ns pipeline.Namespace, from int64) (scanned, error) {
	t.Helper()
	var got scanned
	err := s.Scan(context.Background(), ns, pipeline.Range{}, pipeline.Cursor{Offset: from}, func(doc bson.Raw, pos pipeline.Position) error {
		got.docs = append(got.docs, bytes.Clone(doc))
		got.pos = append(got.pos, pos)
		return nil
	})
	return got, err
}

func openSource(t testing.TB, path string) *Source {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func wantDocs(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d documents, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("document %d differs:\n got  %x\n want %x", i, got[i], want[i])
		}
	}
}

func wantCorrupt(t testing.TB, err error, file string, offset int64) *pipeline.CorruptError {
	t.Helper()
	var ce *pipeline.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want *pipeline.CorruptError", err, err)
	}
	if file != "" && ce.File != file {
		t.Errorf("corrupt file %q, want %q", ce.File, file)
	}
	if offset >= 0 && ce.Offset != offset {
		t.Errorf("corrupt offset %d, want %d (%s)", ce.Offset, offset, ce.What)
	}
	return ce
}

// archiveBuilder writes archives frame by frame, independently of archiveWriter, so that the
// reader is tested against the format rather than against this package's writer.
type archiveBuilder struct {
	buf  bytes.Buffer
	crcs map[pipeline.Namespace]uint64
}

func newArchive(t testing.TB, nss ...pipeline.Namespace) *archiveBuilder {
	a := &archiveBuilder{crcs: map[pipeline.Namespace]uint64{}}
	a.buf.Write(binary.LittleEndian.AppendUint32(nil, archiveMagic))
	a.buf.Write(mustMarshal(t, bson.D{
		{Key: "concurrent_collections", Value: int32(4)},
		{Key: "version", Value: "0.1"},
		{Key: "server_version", Value: "7.0.2"},
		{Key: "tool_version", Value: "100.9.0"},
	}))
	for _, ns := range nss {
		a.buf.Write(mustMarshal(t, bson.D{
			{Key: "db", Value: ns.DB},
			{Key: "collection", Value: ns.Collection},
			{Key: "metadata", Value: `{"indexes":[],"collectionName":"` + ns.Collection + `"}`},
			{Key: "size", Value: int32(0)},
			{Key: "type", Value: ""},
		}))
	}
	a.term()
	return a
}

func (a *archiveBuilder) term() { a.buf.Write(terminatorBytes) }

func (a *archiveBuilder) header(t testing.TB, ns pipeline.Namespace, eof bool, crc int64) int64 {
	at := int64(a.buf.Len())
	a.buf.Write(mustMarshal(t, bson.D{
		{Key: "db", Value: ns.DB}, {Key: "collection", Value: ns.Collection},
		{Key: "EOF", Value: eof}, {Key: "CRC", Value: crc},
	}))
	return at
}

// block writes one namespace block and returns each document's offset.
func (a *archiveBuilder) block(t testing.TB, ns pipeline.Namespace, docs ...[]byte) []int64 {
	a.header(t, ns, false, 0)
	var offs []int64
	for _, d := range docs {
		offs = append(offs, int64(a.buf.Len()))
		a.buf.Write(d)
		a.crcs[ns] = crc64.Update(a.crcs[ns], crc64.MakeTable(crc64.ECMA), d)
	}
	a.term()
	return offs
}

// eof writes the namespace's EOF header with the right CRC and returns its offset.
func (a *archiveBuilder) eof(t testing.TB, ns pipeline.Namespace) int64 {
	at := a.header(t, ns, true, int64(a.crcs[ns]))
	a.term()
	return at
}
