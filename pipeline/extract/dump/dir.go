package dump

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// dirColl is one collection of a dump directory. data is "" for a metadata-only entry (a
// view); a time-series collection's data is its buckets' file, system.buckets.<name>.bson.
type dirColl struct {
	ns       pipeline.Namespace
	data     string
	dataComp Compression
	meta     string
	metaComp Compression
}

// Suffixes as mongodump writes them. Metadata suffixes are tried first so that a collection
// named "x.metadata" (file x.metadata.bson) is not mistaken for x's metadata.
var (
	metaSuffixes = []struct {
		ext  string
		comp Compression
	}{{".metadata.json.gz", Gzip}, {".metadata.json.zst", Zstd}, {".metadata.json", None}}
	dataSuffixes = []struct {
		ext  string
		comp Compression
	}{{".bson.gz", Gzip}, {".bson.zst", Zstd}, {".bson", None}}
)

// mongodump shortens an escaped collection name longer than 238 bytes to its first 208 bytes,
// "%24" and 27 characters of base64 SHA-1 (mongodump/prepare.go outputPath); the full name is
// then only in the metadata's collectionName.
const (
	escapedNameMax   = 238
	escapedNameKeep  = 208
	truncationMarker = "%24"
)

// maxMetadataSize bounds a metadata file read into memory; real ones are kilobytes.
const maxMetadataSize = 64 << 20

func (s *Source) indexDir(ctx context.Context) error {
	dbs, err := os.ReadDir(s.path)
	if err != nil {
		return fmt.Errorf("dump directory %s: %w", s.path, err)
	}
	s.dir = make(map[string]map[string]*dirColl)
	for _, e := range dbs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(s.path, e.Name())
		fi, err := os.Stat(p) // follows a symlinked database directory
		if err != nil {
			return fmt.Errorf("dump directory %s: %w", s.path, err)
		}
		if !fi.IsDir() {
			if stem, _, ok := splitData(e.Name()); ok && stem != "oplog" {
				s.warnings = append(s.warnings, Warning{File: p, What: "data file at the top of the dump is ignored; databases are its subdirectories"})
			}
			continue
		}
		if err := s.indexDB(e.Name(), p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) indexDB(db, dir string) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("dump directory %s: %w", dir, err)
	}
	byStem := make(map[string]*dirColl)
	get := func(stem string) *dirColl {
		c := byStem[stem]
		if c == nil {
			c = &dirColl{}
			byStem[stem] = c
		}
		return c
	}
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		name, p := f.Name(), filepath.Join(dir, f.Name())
		if stem, comp, ok := splitMeta(name); ok {
			c := get(stem)
			if c.meta != "" {
				return fmt.Errorf("dump directory %s: two metadata files for one collection: %s and %s", dir, filepath.Base(c.meta), name)
			}
			c.meta, c.metaComp = p, comp
			continue
		}
		if stem, comp, ok := splitData(name); ok {
			c := get(stem)
			if c.data != "" {
				return fmt.Errorf("dump directory %s: two data files for one collection: %s and %s", dir, filepath.Base(c.data), name)
			}
			c.data, c.dataComp = p, comp
		}
	}
	colls := make(map[string]*dirColl, len(byStem))
	for stem, c := range byStem {
		name := s.collectionName(db, stem, c)
		c.ns = pipeline.Namespace{DB: db, Collection: name}
		if prev, dup := colls[name]; dup {
			return fmt.Errorf("dump directory %s: files %s and %s both hold collection %s", dir, firstNonEmpty(prev.data, prev.meta), firstNonEmpty(c.data, c.meta), c.ns)
		}
		colls[name] = c
	}
	for name, c := range colls {
		if c.data == "" || c.meta != "" {
			continue
		}
		// A time-series collection's documents are in system.buckets.<name>.bson beside
		// <name>.metadata.json: that is not a missing metadata file.
		if base, ok := strings.CutPrefix(name, bucketsPrefix); ok {
			if t := colls[base]; t != nil && t.meta != "" {
				continue
			}
		}
		s.warnings = append(s.warnings, Warning{Namespace: c.ns, File: c.data, What: "no metadata file; collection options and indexes are unknown"})
	}
	// A time-series collection is read from its buckets (cli.md, Inputs), by its own name as
	// by system.buckets.<name>, as from an archive. Only a time-series collection has a
	// buckets collection, so its metadata need not be read to tell.
	for name, c := range colls {
		if b := colls[bucketsPrefix+name]; c.data == "" && b != nil && b.data != "" {
			c.data, c.dataComp = b.data, b.dataComp
		}
	}
	s.dir[db] = colls
	return nil
}

// collectionName recovers the collection name from a file stem: mongodump path-escapes it,
// and shortens long ones (then the metadata's collectionName has it).
func (s *Source) collectionName(db, stem string, c *dirColl) string {
	name, err := url.PathUnescape(stem)
	if err != nil {
		name = stem
	}
	if len(stem) != escapedNameMax || stem[escapedNameKeep:escapedNameKeep+len(truncationMarker)] != truncationMarker {
		return name
	}
	file := firstNonEmpty(c.data, c.meta)
	if c.meta != "" {
		if full, err := metadataCollectionName(c.meta, c.metaComp); err == nil && full != "" {
			return full
		} else if err != nil {
			s.warnings = append(s.warnings, Warning{Namespace: pipeline.Namespace{DB: db, Collection: name}, File: c.meta, What: "shortened file name and unreadable metadata: " + err.Error()})
			return name
		}
	}
	s.warnings = append(s.warnings, Warning{Namespace: pipeline.Namespace{DB: db, Collection: name}, File: file, What: "file name is a shortened collection name and no metadata names the collection"})
	return name
}

func metadataCollectionName(path string, comp Compression) (string, error) {
	b, err := readMetadataFile(path, comp)
	if err != nil {
		return "", err
	}
	var m struct {
		CollectionName string `json:"collectionName"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("metadata file %s: %w", path, err)
	}
	return m.CollectionName, nil
}

func readMetadataFile(path string, comp Compression) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metadata file %s: %w", path, err)
	}
	defer f.Close()
	st, err := newStream(path, f, comp, -1, nil)
	if err != nil {
		return nil, err
	}
	defer st.close()
	b, err := io.ReadAll(io.LimitReader(st.br, maxMetadataSize+1))
	if err != nil {
		return nil, st.fail(err, int64(len(b)), "metadata file unreadable")
	}
	if len(b) > maxMetadataSize {
		return nil, fmt.Errorf("metadata file %s: larger than %d bytes", path, maxMetadataSize)
	}
	return b, nil
}

func splitMeta(name string) (string, Compression, bool) {
	for _, s := range metaSuffixes {
		if stem, ok := strings.CutSuffix(name, s.ext); ok && stem != "" {
			return stem, s.comp, true
		}
	}
	return "", 0, false
}

func splitData(name string) (string, Compression, bool) {
	for _, s := range dataSuffixes {
		if stem, ok := strings.CutSuffix(name, s.ext); ok && stem != "" {
			return stem, s.comp, true
		}
	}
	return "", 0, false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Source) dirLookup(ns pipeline.Namespace) (*dirColl, error) {
	c := s.dir[ns.DB][ns.Collection]
	if c == nil {
		return nil, fmt.Errorf("dump directory %s: %s: %w", s.path, ns, pipeline.ErrNoCollection)
	}
	return c, nil
}

func scanDirFile(ctx context.Context, c *dirColl, from, end int64, fn func(bson.Raw, pipeline.Position) error) error {
	if c.data == "" {
		if from > 0 {
			return &pipeline.CorruptError{File: c.meta, Offset: from, What: "resume offset in a collection without a data file"}
		}
		return nil
	}
	st, f, err := openStream(c.data, c.dataComp)
	if err != nil {
		return err
	}
	defer f.Close()
	defer st.close()
	if end >= 0 {
		// A span ends at the first document that starts at or after its end.
		stop := errors.New("span end")
		err := scanStream(ctx, st, from, func(doc bson.Raw, pos pipeline.Position) error {
			if pos.Start >= end {
				return stop
			}
			return fn(doc, pos)
		})
		if err == stop {
			return nil
		}
		return err
	}
	return scanStream(ctx, st, from, fn)
}

// splitPoints walks a plain data file's frames (reading only their lengths) and returns the
// start of the first document at or after every multiple of span. It stops at a broken frame:
// the last range then holds it, and its scan reports the corruption with its offset.
func splitPoints(ctx context.Context, path string, size, span int64) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dump file %s: %w", path, err)
	}
	defer f.Close()
	var points []int64
	// Length prefixes are read from a window of the file: small documents cost one read per
	// window instead of a system call each; a document longer than the window costs one read.
	window := make([]byte, 64<<10)
	winOff, winLen := int64(0), 0
	next := span
	for off := int64(0); off+4 <= size; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if off >= next {
			points = append(points, off)
			for next <= off {
				next += span
			}
		}
		if off < winOff || off+4 > winOff+int64(winLen) {
			n, err := f.ReadAt(window, off)
			if n < 4 {
				if err == nil || errors.Is(err, io.EOF) {
					return points, nil
				}
				return nil, fmt.Errorf("dump file %s: %w", path, err)
			}
			winOff, winLen = off, n
		}
		n := int64(binary.LittleEndian.Uint32(window[off-winOff:]))
		if n < minDocSize || n > maxDocSize || off+n > size {
			return points, nil
		}
		off += n
	}
	return points, nil
}

// scanStream delivers every document of a stream of concatenated BSON documents from from.
func scanStream(ctx context.Context, st *stream, from int64, fn func(bson.Raw, pipeline.Position) error) error {
	if from > 0 {
		if err := st.skipTo(ctx, from); err != nil {
			return err
		}
	}
	done := ctx.Done()
	for {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		kind, start, doc, err := st.next(false, true)
		if err != nil {
			return err
		}
		if kind == frameEnd {
			return nil
		}
		if err := fn(bson.Raw(doc), pipeline.Position{Start: start, End: start + int64(len(doc))}); err != nil {
			return err
		}
	}
}

// Metadata returns the collection's metadata JSON as mongodump wrote it (options, indexes,
// uuid, collectionName), decompressed; nil when the dump has none for ns.
func (s *Source) Metadata(ctx context.Context, ns pipeline.Namespace) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if s.kind == "archive" {
		c := s.arch.colls[ns]
		if c == nil {
			return nil, fmt.Errorf("archive %s: %s: %w", s.path, ns, pipeline.ErrNoCollection)
		}
		if c.metadata == "" {
			return nil, nil
		}
		return []byte(c.metadata), nil
	}
	c, err := s.dirLookup(ns)
	if err != nil {
		return nil, err
	}
	if c.meta == "" {
		return nil, nil
	}
	return readMetadataFile(c.meta, c.metaComp)
}
