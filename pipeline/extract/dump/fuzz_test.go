package dump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The fuzz targets read from memory through the same stream, prelude and block code that
// Scan uses on files: the fuzzer re-runs every new input many times to minimise it, and a
// temporary file per run makes that crawl.

// memStream is a stream over data as if it were a file: plain input has a known length and
// seeks, compressed input is told by magic bytes.
func memStream(data []byte) (*stream, error) {
	r := bytes.NewReader(data)
	return newStream("fuzz", r, compressionOf(data), int64(len(data)), r)
}

// deliveryChecker returns an fn that asserts what every scan must guarantee whatever the
// input: each document delivered is a whole frame (its length field equals its size, it ends
// with NUL), its position spans exactly it, and positions only move forward from from.
func deliveryChecker(t *testing.T, from int64) func(bson.Raw, pipeline.Position) error {
	last := int64(-1)
	return func(doc bson.Raw, pos pipeline.Position) error {
		if len(doc) < minDocSize || len(doc) > maxDocSize {
			t.Fatalf("delivered a document of %d bytes", len(doc))
		}
		if n := binary.LittleEndian.Uint32(doc); int(n) != len(doc) {
			t.Fatalf("document length field %d, frame %d bytes", n, len(doc))
		}
		if doc[len(doc)-1] != 0 {
			t.Fatal("delivered a document without its trailing NUL")
		}
		if pos.End-pos.Start != int64(len(doc)) || pos.Start < from || pos.Start <= last {
			t.Fatalf("position %+v for a %d-byte document (from %d, previous start %d)", pos, len(doc), from, last)
		}
		last = pos.Start
		return nil
	}
}

// wantCorruptOrNil fails unless err is nil or a *pipeline.CorruptError: in memory there is no
// I/O error to excuse anything else.
func wantCorruptOrNil(t *testing.T, err error, what string) {
	var ce *pipeline.CorruptError
	if err != nil && !errors.As(err, &ce) {
		t.Fatalf("%s: %v (%T)", what, err, err)
	}
}

// small drops the documents over 1 KiB: a large seed slows minimisation down.
func small(docs [][]byte) [][]byte {
	var out [][]byte
	for _, d := range docs {
		if len(d) <= 1<<10 {
			out = append(out, d)
		}
	}
	return out
}

func FuzzScanBSON(f *testing.F) {
	docs := small(allTypeDocs(f))
	f.Add(concat(docs), uint16(0))
	f.Add(concat(docs[:3]), uint16(len(docs[0])))
	f.Add(compress(f, Gzip, concat(docs[:4])), uint16(0))
	f.Add(concat(invalidContentDocs()), uint16(3))
	f.Add([]byte{5, 0, 0, 0, 0, 4, 0, 0, 0}, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0}, uint16(0))
	f.Add([]byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, from uint16) {
		st, err := memStream(data)
		if err != nil {
			wantCorruptOrNil(t, err, "open")
			return
		}
		defer st.close()
		err = scanStream(context.Background(), st, int64(from), deliveryChecker(t, int64(from)))
		wantCorruptOrNil(t, err, "scan")
	})
}

func FuzzScanArchive(f *testing.F) {
	arch := buildInterleavedWith(f, append(small(allTypeDocs(f)), invalidContentDocs()[:3]...))
	f.Add(arch.raw)
	f.Add(compress(f, Gzip, arch.raw))
	open := newArchive(f, nsA, nsB)
	open.block(f, nsA, invalidContentDocs()...)
	open.block(f, nsB, numberedDocs(f, "b", 2)...)
	open.eof(f, nsA)
	f.Add(open.buf.Bytes())
	f.Add(open.buf.Bytes()[:open.buf.Len()-7])
	f.Add([]byte{0x6d, 0xe2, 0x99, 0x81})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := memStream(data)
		if err != nil {
			wantCorruptOrNil(t, err, "open")
			return
		}
		idx, err := readPrelude(st)
		st.close()
		if err != nil {
			wantCorruptOrNil(t, err, "prelude")
			return
		}
		for ns, meta := range idx.colls {
			st, err := memStream(data)
			if err != nil {
				t.Fatalf("second open: %v", err)
			}
			if _, err := readPrelude(st); err != nil {
				t.Fatalf("prelude read differently: %v", err)
			}
			_, err = readBlocks(context.Background(), st, ns, meta, 0, deliveryChecker(t, 0))
			st.close()
			wantCorruptOrNil(t, err, "scan "+ns.String())
		}
	})
}
