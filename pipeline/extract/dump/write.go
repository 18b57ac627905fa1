package dump

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// DocsFunc produces a collection's documents by calling emit for each in order, and stops
// with emit's error. Scan of a pipeline.Source fits: the documents need only live during emit.
type DocsFunc func(emit func(doc bson.Raw) error) error

// ArchiveCollection is one namespace for WriteArchive.
type ArchiveCollection struct {
	DB         string
	Collection string
	// Metadata is the collection's metadata as canonical Extended JSON, as in a
	// <coll>.metadata.json file; "" writes none.
	Metadata string
	// Docs produces the documents; nil is an empty collection.
	Docs DocsFunc
	// TimeSeries writes the collection as mongodump does a time-series one: listed in the
	// prelude with type "timeseries", its documents (the buckets) in blocks of
	// system.buckets.<Collection>.
	TimeSeries bool
}

// dataNamespace is the namespace whose blocks hold c's documents.
func (c ArchiveCollection) dataNamespace() pipeline.Namespace {
	if c.TimeSeries {
		return pipeline.Namespace{DB: c.DB, Collection: bucketsPrefix + c.Collection}
	}
	return pipeline.Namespace{DB: c.DB, Collection: c.Collection}
}

// Header values WriteArchive records. mongorestore parses server_version, so it must be a
// version string; the archive does not come from a server, so it names none in particular.
const (
	archiveFormatVersion = "0.1"
	archiveServerVersion = "0.0.0"
	archiveToolVersion   = "stellaops-convert"
)

// WriteArchive writes colls to w as a mongodump archive (mongo-tools common/archive/spec.md):
// the prelude, then each collection as one block followed by its EOF header with the CRC-64
// of its documents. Collections are not interleaved. It writes no compression; wrap w in a
// gzip writer for what mongodump --archive --gzip writes. Every document's frame is checked
// first, so a broken document fails the write instead of producing a corrupt archive.
func WriteArchive(w io.Writer, colls []ArchiveCollection) error {
	bw := bufio.NewWriterSize(w, readBufSize)
	aw := &archiveWriter{w: bw}
	if err := aw.prelude(colls); err != nil {
		return err
	}
	for _, c := range colls {
		ns := c.dataNamespace()
		if err := aw.open(ns); err != nil {
			return err
		}
		if c.Docs != nil {
			if err := c.Docs(func(doc bson.Raw) error { return aw.doc(ns, doc) }); err != nil {
				return fmt.Errorf("archive: %s: %w", ns, err)
			}
		}
		if err := aw.eof(ns); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// archiveWriter writes blocks the way mongodump's multiplexer does: a header whenever the
// namespace changes, a terminator before the next header, and per namespace a running CRC.
type archiveWriter struct {
	w    io.Writer
	cur  *pipeline.Namespace // namespace of the open block, nil between blocks
	crcs map[pipeline.Namespace]hash.Hash64
}

var terminatorBytes = []byte{0xff, 0xff, 0xff, 0xff}

func (aw *archiveWriter) prelude(colls []ArchiveCollection) error {
	aw.crcs = make(map[pipeline.Namespace]hash.Hash64, len(colls))
	if err := binary.Write(aw.w, binary.LittleEndian, archiveMagic); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	hdr, err := bson.Marshal(bson.D{
		{Key: "concurrent_collections", Value: int32(1)},
		{Key: "version", Value: archiveFormatVersion},
		{Key: "server_version", Value: archiveServerVersion},
		{Key: "tool_version", Value: archiveToolVersion},
	})
	if err != nil {
		return fmt.Errorf("archive header: %w", err)
	}
	if err := aw.write(hdr); err != nil {
		return err
	}
	for _, c := range colls {
		ns := c.dataNamespace()
		if c.Collection == "" {
			return fmt.Errorf("archive: collection name missing (db %q)", c.DB)
		}
		if aw.crcs[ns] != nil {
			return fmt.Errorf("archive: %s listed twice", ns)
		}
		aw.crcs[ns] = crc64.New(crc64.MakeTable(crc64.ECMA))
		typ := ""
		if c.TimeSeries {
			typ = "timeseries"
		}
		meta, err := bson.Marshal(bson.D{
			{Key: "db", Value: c.DB},
			{Key: "collection", Value: c.Collection},
			{Key: "metadata", Value: c.Metadata},
			{Key: "size", Value: int32(0)}, // unknown before the documents are written; mongodump writes 0 too
			{Key: "type", Value: typ},
		})
		if err != nil {
			return fmt.Errorf("archive: %s metadata: %w", ns, err)
		}
		if err := aw.write(meta); err != nil {
			return err
		}
	}
	return aw.write(terminatorBytes)
}

func (aw *archiveWriter) header(ns pipeline.Namespace, eof bool, crc int64) error {
	h, err := bson.Marshal(bson.D{
		{Key: "db", Value: ns.DB},
		{Key: "collection", Value: ns.Collection},
		{Key: "EOF", Value: eof},
		{Key: "CRC", Value: crc},
	})
	if err != nil {
		return fmt.Errorf("archive: %s header: %w", ns, err)
	}
	return aw.write(h)
}

// open starts a block of ns unless one is open, so that an empty collection still gets the
// header mongorestore waits for.
func (aw *archiveWriter) open(ns pipeline.Namespace) error {
	if aw.crcs[ns] == nil {
		return fmt.Errorf("archive: %s is not in the prelude", ns)
	}
	if aw.cur != nil && *aw.cur == ns {
		return nil
	}
	if aw.cur != nil {
		if err := aw.write(terminatorBytes); err != nil {
			return err
		}
	}
	if err := aw.header(ns, false, 0); err != nil {
		return err
	}
	aw.cur = &ns
	return nil
}

func (aw *archiveWriter) doc(ns pipeline.Namespace, doc []byte) error {
	if err := checkFrame(doc); err != nil {
		return fmt.Errorf("archive: %s: %w", ns, err)
	}
	if err := aw.open(ns); err != nil {
		return err
	}
	aw.crcs[ns].Write(doc)
	return aw.write(doc)
}

func (aw *archiveWriter) eof(ns pipeline.Namespace) error {
	h := aw.crcs[ns]
	if h == nil {
		return fmt.Errorf("archive: %s is not in the prelude", ns)
	}
	if aw.cur != nil {
		if err := aw.write(terminatorBytes); err != nil {
			return err
		}
		aw.cur = nil
	}
	if err := aw.header(ns, true, int64(h.Sum64())); err != nil {
		return err
	}
	return aw.write(terminatorBytes)
}

func (aw *archiveWriter) write(b []byte) error {
	if _, err := aw.w.Write(b); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// checkFrame refuses bytes that a reader would call a broken frame.
func checkFrame(doc []byte) error {
	if len(doc) < minDocSize || len(doc) > maxDocSize {
		return fmt.Errorf("document of %d bytes is outside %d..%d", len(doc), minDocSize, maxDocSize)
	}
	if n := binary.LittleEndian.Uint32(doc); int(n) != len(doc) {
		return fmt.Errorf("document length field %d does not match its %d bytes", int32(n), len(doc))
	}
	if doc[len(doc)-1] != 0 {
		return errors.New("document does not end with a NUL byte")
	}
	return nil
}

// DirWriter writes collections as a mongodump directory, <Root>/<db>/<coll>.bson[.gz|.zst]
// and <coll>.metadata.json[.gz|.zst], named as mongodump names them. Each file is written to
// a temporary file in the same directory, synced and renamed, so a crash leaves no partial
// file under the final name. A DirWriter holds no state; concurrent WriteCollection calls for
// different collections are safe.
type DirWriter struct {
	Root     string
	Data     Compression // of the .bson files
	Metadata Compression // of the .metadata.json files
}

// WriteCollection writes the collection's data file, then its metadata file (none if metadata
// is nil), and returns their paths relative to Root in that order.
func (w DirWriter) WriteCollection(ctx context.Context, db, coll string, metadata []byte, docs DocsFunc) ([]string, error) {
	if err := checkDBName(db); err != nil {
		return nil, err
	}
	if coll == "" || strings.ContainsRune(coll, 0) {
		return nil, fmt.Errorf("dump directory: invalid collection name %q", coll)
	}
	stem := EscapeCollectionName(coll)
	dir := filepath.Join(w.Root, db)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dump directory %s: %w", dir, err)
	}
	ns := pipeline.Namespace{DB: db, Collection: coll}
	dataName := stem + ".bson" + ext(w.Data)
	done := ctx.Done()
	err := writeFileAtomic(dir, dataName, w.Data, func(out io.Writer) error {
		if docs == nil {
			return nil
		}
		return docs(func(doc bson.Raw) error {
			select {
			case <-done:
				return ctx.Err()
			default:
			}
			if err := checkFrame(doc); err != nil {
				return fmt.Errorf("%s: %w", ns, err)
			}
			_, err := out.Write(doc)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	written := []string{filepath.Join(db, dataName)}
	if metadata == nil {
		return written, nil
	}
	metaName := stem + ".metadata.json" + ext(w.Metadata)
	if err := writeFileAtomic(dir, metaName, w.Metadata, func(out io.Writer) error {
		_, err := out.Write(metadata)
		return err
	}); err != nil {
		return nil, err
	}
	return append(written, filepath.Join(db, metaName)), nil
}

// EscapeCollectionName is the file stem mongodump uses for a collection: the name
// path-escaped, and a name escaping to more than 238 bytes cut to 208 bytes, "%24" and the
// base64 SHA-1 of the name, so that the longest file name stays under 255 bytes.
func EscapeCollectionName(coll string) string {
	e := url.PathEscape(coll)
	if len(e) <= escapedNameMax {
		return e
	}
	sum := sha1.Sum([]byte(coll))
	return e[:escapedNameKeep] + truncationMarker + base64.RawURLEncoding.EncodeToString(sum[:])
}

func checkDBName(db string) error {
	if db == "" || db == "." || db == ".." || strings.ContainsAny(db, "/\\\x00") {
		return fmt.Errorf("dump directory: invalid database name %q", db)
	}
	return nil
}

func ext(c Compression) string {
	switch c {
	case Gzip:
		return ".gz"
	case Zstd:
		return ".zst"
	}
	return ""
}

// writeFileAtomic writes dir/name through comp: temporary file, fsync, rename, fsync of the
// directory (restic backend/local).
func writeFileAtomic(dir, name string, comp Compression, body func(io.Writer) error) (err error) {
	final := filepath.Join(dir, name)
	// Not named after the file: a collection name can use the whole 255-byte name budget.
	tmp, err := os.CreateTemp(dir, ".convert-tmp-*")
	if err != nil {
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, readBufSize)
	var out io.Writer = bw
	var closeComp func() error
	switch comp {
	case Gzip:
		zw := gzip.NewWriter(bw)
		out, closeComp = zw, zw.Close
	case Zstd:
		zw, err := zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("dump file %s: %w", final, err)
		}
		out, closeComp = zw, zw.Close
	}
	if err := body(out); err != nil {
		if closeComp != nil {
			closeComp()
		}
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	if closeComp != nil {
		if err := closeComp(); err != nil {
			return fmt.Errorf("dump file %s: %w", final, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("dump file %s: %w", final, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("dump directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dump directory %s: sync: %w", dir, err)
	}
	return nil
}
