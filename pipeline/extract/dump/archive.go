package dump

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"slices"

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// bucketsPrefix names the collection holding a time-series collection's documents.
const bucketsPrefix = "system.buckets."

// archiveMagic starts every mongodump archive, little-endian (mongo-tools common/archive).
const archiveMagic uint32 = 0x8199e26d

// archiveIndex is what the prelude says: which namespaces the archive holds.
type archiveIndex struct {
	comp    Compression
	version string
	colls   map[pipeline.Namespace]*archiveColl
}

type archiveColl struct {
	metadata string // canonical Extended JSON, as in a .metadata.json file
	size     int64
	typ      string // "timeseries" for a time-series collection, else usually ""
	// data is the namespace whose blocks hold the documents: the collection's own, or for a
	// time-series collection its buckets', system.buckets.<name> (mongodump writes them
	// there, and lists only <name> in the prelude).
	data pipeline.Namespace
}

func (s *Source) indexArchive(ctx context.Context) error {
	comp, err := sniffCompression(s.path)
	if err != nil {
		return err
	}
	st, f, err := openStream(s.path, comp)
	if err != nil {
		return err
	}
	defer f.Close()
	defer st.close()
	idx, err := readPrelude(st)
	if err != nil {
		return err
	}
	idx.comp = comp
	s.arch = idx
	return ctx.Err()
}

// sniffCompression tells gzip and zstd from a plain archive by magic bytes, not by name.
func sniffCompression(path string) (Compression, error) {
	f, err := os.Open(path)
	if err != nil {
		return None, fmt.Errorf("archive %s: %w", path, err)
	}
	defer f.Close()
	var b [4]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return None, fmt.Errorf("archive %s: %w", path, err)
	}
	return compressionOf(b[:n]), nil
}

// compressionOf tells by the first bytes of a file.
func compressionOf(b []byte) Compression {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return Gzip
	case len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0xfd2fb528:
		return Zstd
	}
	return None
}

// readPrelude reads the magic number, the header document and the collection metadata
// documents up to the prelude's terminator, leaving st at the first namespace block.
func readPrelude(st *stream) (*archiveIndex, error) {
	var mb [4]byte
	k, err := io.ReadFull(st.br, mb[:])
	if err != nil {
		return nil, st.fail(err, 0, fmt.Sprintf("file too short for an archive magic number (%d bytes); not a mongodump archive", k))
	}
	st.off = 4
	if m := binary.LittleEndian.Uint32(mb[:]); m != archiveMagic {
		return nil, st.corrupt(0, "bad magic number %#08x, want %#08x: not a mongodump archive", m, archiveMagic)
	}
	kind, start, doc, err := st.next(false, true)
	if err != nil {
		return nil, err
	}
	if kind == frameEnd {
		return nil, st.corrupt(start, "file ends before the archive header")
	}
	idx := &archiveIndex{colls: make(map[pipeline.Namespace]*archiveColl)}
	if idx.version, err = parseArchiveHeader(doc); err != nil {
		return nil, st.corrupt(start, "bad archive header: %v", err)
	}
	for {
		kind, start, doc, err := st.next(true, true)
		if err != nil {
			return nil, err
		}
		switch kind {
		case frameEnd:
			return nil, st.corrupt(start, "file ends inside the archive prelude")
		case frameTerminator:
			addBuckets(idx)
			return idx, nil
		}
		ns, c, err := parseCollectionMetadata(doc)
		if err != nil {
			return nil, st.corrupt(start, "bad collection metadata in the prelude: %v", err)
		}
		if idx.colls[ns] != nil {
			return nil, st.corrupt(start, "prelude lists %s twice", ns)
		}
		idx.colls[ns] = c
	}
}

// addBuckets sets where each collection's documents are and lists each time-series
// collection's buckets as a collection of their own, as a dump directory has them (cli.md,
// Inputs: a time-series collection reads alike from both).
func addBuckets(idx *archiveIndex) {
	var buckets []pipeline.Namespace
	for ns, c := range idx.colls {
		c.data = ns
		if c.typ == "timeseries" {
			c.data = pipeline.Namespace{DB: ns.DB, Collection: bucketsPrefix + ns.Collection}
			buckets = append(buckets, c.data)
		}
	}
	for _, b := range buckets {
		if idx.colls[b] == nil {
			idx.colls[b] = &archiveColl{typ: "timeseries", data: b}
		}
	}
}

func parseArchiveHeader(doc bson.Raw) (string, error) {
	if err := doc.Validate(); err != nil {
		return "", err
	}
	v, _, err := optString(doc, "version")
	return v, err
}

func parseCollectionMetadata(doc bson.Raw) (pipeline.Namespace, *archiveColl, error) {
	if err := doc.Validate(); err != nil {
		return pipeline.Namespace{}, nil, err
	}
	var ns pipeline.Namespace
	var c archiveColl
	var err error
	if ns.DB, _, err = optString(doc, "db"); err != nil {
		return ns, nil, err
	}
	var ok bool
	if ns.Collection, ok, err = optString(doc, "collection"); err != nil {
		return ns, nil, err
	} else if !ok || ns.Collection == "" {
		return ns, nil, errors.New("no collection name")
	}
	if c.metadata, _, err = optString(doc, "metadata"); err != nil {
		return ns, nil, err
	}
	if c.typ, _, err = optString(doc, "type"); err != nil {
		return ns, nil, err
	}
	if c.size, _, err = optInt(doc, "size"); err != nil {
		return ns, nil, err
	}
	return ns, &c, nil
}

// nsHeader is a namespace block's header: {db, collection, EOF, CRC}.
type nsHeader struct {
	ns  pipeline.Namespace
	eof bool
	crc int64
}

func parseNSHeader(doc bson.Raw) (nsHeader, error) {
	var h nsHeader
	if err := doc.Validate(); err != nil {
		return h, err
	}
	var err error
	var ok bool
	if h.ns.DB, _, err = optString(doc, "db"); err != nil {
		return h, err
	}
	if h.ns.Collection, ok, err = optString(doc, "collection"); err != nil {
		return h, err
	} else if !ok || h.ns.Collection == "" {
		return h, errors.New("no collection name")
	}
	if v, err := doc.LookupErr("EOF"); err == nil {
		b, ok := v.BooleanOK()
		if !ok {
			return h, fmt.Errorf("EOF is %s, not a boolean", v.Type)
		}
		h.eof = b
	}
	if h.crc, _, err = optInt(doc, "CRC"); err != nil {
		return h, err
	}
	return h, nil
}

func optString(doc bson.Raw, key string) (string, bool, error) {
	v, err := doc.LookupErr(key)
	if err != nil {
		return "", false, nil
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", false, fmt.Errorf("%s is %s, not a string", key, v.Type)
	}
	return s, true, nil
}

func optInt(doc bson.Raw, key string) (int64, bool, error) {
	v, err := doc.LookupErr(key)
	if err != nil {
		return 0, false, nil
	}
	if i, ok := v.Int64OK(); ok {
		return i, true, nil
	}
	if i, ok := v.Int32OK(); ok {
		return int64(i), true, nil
	}
	return 0, false, fmt.Errorf("%s is %s, not an integer", key, v.Type)
}

// nsResult is what one pass over the archive learnt about a namespace's checksum.
type nsResult struct {
	sawEOF bool
	got    uint64 // CRC-64/ECMA of the namespace's document bytes, in archive order
	want   uint64 // as the EOF header says
	eofAt  int64  // offset of the EOF header
}

func (s *Source) scanArchive(ctx context.Context, ns pipeline.Namespace, from int64, fn func(bson.Raw, pipeline.Position) error) error {
	c := s.arch.colls[ns]
	if c == nil {
		return fmt.Errorf("archive %s: %s: %w", s.path, ns, pipeline.ErrNoCollection)
	}
	ns = c.data
	res, err := s.readNamespace(ctx, ns, from, fn)
	if err != nil || !res.sawEOF || res.got == res.want {
		return err
	}
	// STYLE practice 11: re-read once before declaring a mismatch, so that a flaky read is
	// not reported as a corrupt file.
	again, err := s.readNamespace(ctx, ns, 0, nil)
	if err != nil {
		return err
	}
	if again.got == again.want {
		return fmt.Errorf("archive %s: %s: the documents' CRC-64 differed from the EOF header on one read and matched on a re-read; the documents read may be wrong", s.path, ns)
	}
	return &pipeline.CorruptError{File: s.path, Offset: res.eofAt,
		What: fmt.Sprintf("CRC-64 mismatch for %s: EOF header says %#016x, its documents hash to %#016x", ns, res.want, res.got)}
}

// readNamespace makes one pass over the archive, skipping other namespaces' blocks, hashing
// every document of ns and passing those at or after from to fn (nil: hash only). It stops at
// ns's EOF header; the caller judges the checksum.
func (s *Source) readNamespace(ctx context.Context, ns pipeline.Namespace, from int64, fn func(bson.Raw, pipeline.Position) error) (nsResult, error) {
	st, f, err := openStream(s.path, s.arch.comp)
	if err != nil {
		return nsResult{}, err
	}
	defer f.Close()
	defer st.close()
	if _, err := readPrelude(st); err != nil {
		return nsResult{}, err
	}
	return readBlocks(ctx, st, ns, s.arch.colls[ns], from, fn)
}

// readBlocks is readNamespace after the prelude. open records every namespace met: true
// while its blocks may continue, false once its EOF header was read.
func readBlocks(ctx context.Context, st *stream, ns pipeline.Namespace, meta *archiveColl, from int64, fn func(bson.Raw, pipeline.Position) error) (nsResult, error) {
	crc := crc64.New(crc64.MakeTable(crc64.ECMA))
	open := make(map[pipeline.Namespace]bool)
	done := ctx.Done()
	for {
		kind, hstart, hdoc, err := st.next(true, true)
		if err != nil {
			return nsResult{}, err
		}
		switch kind {
		case frameEnd:
			return nsResult{}, archiveEnd(st, ns, meta, open, hstart)
		case frameTerminator:
			return nsResult{}, st.corrupt(hstart, "terminator where a namespace header should be")
		}
		h, err := parseNSHeader(hdoc)
		if err != nil {
			return nsResult{}, st.corrupt(hstart, "bad namespace header: %v", err)
		}
		if isOpen, seen := open[h.ns]; seen && !isOpen {
			return nsResult{}, st.corrupt(hstart, "namespace header for %s after its EOF header", h.ns)
		}
		ours := h.ns == ns
		if h.eof {
			open[h.ns] = false
			kind, at, _, err := st.next(true, false)
			if err != nil {
				return nsResult{}, err
			}
			switch kind {
			case frameEnd:
				return nsResult{}, st.corrupt(at, "file ends after the EOF header of %s, before its terminator", h.ns)
			case frameDoc:
				return nsResult{}, st.corrupt(at, "document after the EOF header of %s", h.ns)
			}
			if ours {
				return nsResult{sawEOF: true, got: crc.Sum64(), want: uint64(h.crc), eofAt: hstart}, nil
			}
			continue
		}
		open[h.ns] = true
		for {
			select {
			case <-done:
				return nsResult{}, ctx.Err()
			default:
			}
			kind, start, doc, err := st.next(true, ours)
			if err != nil {
				return nsResult{}, err
			}
			if kind == frameEnd {
				return nsResult{}, st.corrupt(start, "file ends inside a block of %s, before its terminator", h.ns)
			}
			if kind == frameTerminator {
				break
			}
			if !ours {
				continue
			}
			crc.Write(doc)
			end := start + int64(len(doc))
			if start < from {
				if end > from {
					return nsResult{}, fmt.Errorf("archive %s: %s: resume offset %d falls inside the document at byte %d", st.name, ns, from, start)
				}
				continue
			}
			if fn == nil {
				continue
			}
			if err := fn(bson.Raw(doc), pipeline.Position{Start: start, End: end}); err != nil {
				return nsResult{}, err
			}
		}
	}
}

// archiveEnd judges a clean end of the archive before ns's EOF header. mongorestore calls an
// archive whose namespaces are not all closed, or which lacks a namespace its prelude lists
// (time-series excepted), unfinished (common/archive/demultiplexer.go End).
func archiveEnd(st *stream, ns pipeline.Namespace, meta *archiveColl, open map[pipeline.Namespace]bool, at int64) error {
	if open[ns] {
		return st.corrupt(at, "file ends before the EOF header of %s", ns)
	}
	var unfinished []string
	for other, isOpen := range open {
		if isOpen {
			unfinished = append(unfinished, other.String())
		}
	}
	if len(unfinished) > 0 {
		slices.Sort(unfinished)
		return st.corrupt(at, "file ends before the EOF header of %s; the archive is truncated", unfinished[0])
	}
	if meta != nil && meta.typ != "timeseries" {
		return st.corrupt(at, "file ends without any block of %s, which the prelude lists", ns)
	}
	return nil
}
