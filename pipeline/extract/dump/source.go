package dump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stellaops/convert/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var _ pipeline.Source = (*Source)(nil)

// Source reads a mongodump directory or archive. Its index (file names, or the archive's
// prelude) is read once by Open and never changes, so any number of Scans may run at once;
// each opens its own file handle and buffer.
type Source struct {
	kind     string // "dump" or "archive"
	path     string // as given, for messages
	abs      string
	dir      map[string]map[string]*dirColl // db → collection; kind "dump"
	arch     *archiveIndex                  // kind "archive"
	warnings []Warning
	closed   atomic.Bool
	// splitBytes is the span of a plain data file one range covers, 0 for automatic (see Plan).
	splitBytes int64
}

// Spans of a plain .bson file: large collections are read by several workers at once, and the
// spans depend on the file alone. Unless told otherwise, a file is cut into about autoSpans
// spans of MinSplitBytes to MaxSplitBytes: enough ranges for the workers to stay busy until
// the end (a 100 MB file in two spans of 64 and 36 MB left one COPY stream alone for a third
// of its load), few enough that each range's own cost stays negligible.
const (
	MinSplitBytes = 4 << 20
	MaxSplitBytes = 64 << 20
	autoSpans     = 16
)

// splitBytesFor is the span for a file of size bytes when none was chosen.
func splitBytesFor(size int64) int64 {
	return min(max(size/autoSpans, MinSplitBytes), MaxSplitBytes)
}

// Warning is something odd about the input that does not stop a conversion, such as a
// collection without a metadata file. The caller decides how to show it.
type Warning struct {
	Namespace pipeline.Namespace
	File      string
	What      string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s (%s): %s", w.Namespace, w.File, w.What)
}

// IsDump reports whether src names a filesystem path (a dump directory or archive) rather
// than a MongoDB URI. It does not check that the path is a valid dump; Open does.
func IsDump(src string) bool {
	lower := strings.ToLower(src)
	if strings.HasPrefix(lower, "mongodb://") || strings.HasPrefix(lower, "mongodb+srv://") {
		return false
	}
	if _, err := os.Stat(src); err == nil {
		return true
	}
	// Not there: a path still, unless it looks like some other URL, so that the caller's
	// "no such file" names what the user typed.
	return !strings.Contains(src, "://")
}

// Open indexes the dump at path: a directory (<db>/<coll>.bson[.gz|.zst] with
// <coll>.metadata.json[.gz|.zst]) or a file written by mongodump --archive, plain, gzip or
// zstd compressed (recognised by magic bytes). An archive's prelude is read and checked here;
// a bad one is a *pipeline.CorruptError. Documents are read only by Scan.
func Open(ctx context.Context, path string) (*Source, error) {
	return OpenWith(ctx, path, Options{})
}

// Options tune a dump source.
type Options struct {
	// SplitBytes is the span of a plain data file one range covers; 0 chooses it from the
	// file's size (splitBytesFor).
	SplitBytes int64
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*Source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dump %s: %w", path, err)
	}
	s := &Source{path: path, abs: abs}
	if o.SplitBytes > 0 {
		s.splitBytes = o.SplitBytes
	}
	if fi.IsDir() {
		s.kind = "dump"
		if err := s.indexDir(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	s.kind = "archive"
	if err := s.indexArchive(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Kind is "dump" for a directory, "archive" for an archive file.
func (s *Source) Kind() string { return s.kind }

// Fingerprint is the kind and the absolute path: a resume must read the same dump.
func (s *Source) Fingerprint() string { return s.kind + ":" + s.abs }

// Warnings lists what Open found odd but not fatal (missing metadata files, names that could
// not be recovered). The slice is shared; do not modify it.
func (s *Source) Warnings() []Warning { return s.warnings }

// Collections lists the collections of db in name order: every data or metadata file of
// the database directory (views have metadata only), or every namespace in the archive's
// prelude. An unknown db has none.
func (s *Source) Collections(ctx context.Context, db string) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var names []string
	if s.kind == "dump" {
		for name := range s.dir[db] {
			names = append(names, name)
		}
	} else {
		for ns := range s.arch.colls {
			if ns.DB == db {
				names = append(names, ns.Collection)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// Plan returns the one range of a dump file or archive namespace, or wraps
// pipeline.ErrNoCollection. Count is -1: only a full read can tell (0 for a directory entry
// with metadata and no data file, such as a view). Bytes is the data file's size on disk,
// compressed size for .gz/.zst; for an archive it is the whole archive file's size on disk
// (compressed if it is), since archive positions are offsets in the whole archive stream.
func (s *Source) Plan(ctx context.Context, ns pipeline.Namespace) (pipeline.CollectionPlan, error) {
	if err := s.check(ctx); err != nil {
		return pipeline.CollectionPlan{}, err
	}
	plan := pipeline.CollectionPlan{Count: -1, Ranges: []pipeline.Range{{No: 0}}}
	if s.kind == "dump" {
		c, err := s.dirLookup(ns)
		if err != nil {
			return pipeline.CollectionPlan{}, err
		}
		if c.data == "" {
			plan.Count = 0
			return plan, nil
		}
		fi, err := os.Stat(c.data)
		if err != nil {
			return pipeline.CollectionPlan{}, fmt.Errorf("dump file %s: %w", c.data, err)
		}
		plan.Bytes = fi.Size()
		span := s.splitBytes
		if span == 0 {
			span = splitBytesFor(fi.Size())
		}
		if c.dataComp == None && fi.Size() > span {
			bounds, err := splitPoints(ctx, c.data, fi.Size(), span)
			if err != nil {
				return pipeline.CollectionPlan{}, err
			}
			plan.Ranges = plan.Ranges[:0]
			var start int64
			for _, b := range bounds {
				plan.Ranges = append(plan.Ranges, pipeline.FileRange(len(plan.Ranges), start, b))
				start = b
			}
			plan.Ranges = append(plan.Ranges, pipeline.FileRange(len(plan.Ranges), start, -1))
		}
		return plan, nil
	}
	if _, ok := s.arch.colls[ns]; !ok {
		return pipeline.CollectionPlan{}, fmt.Errorf("archive %s: %s: %w", s.path, ns, pipeline.ErrNoCollection)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return pipeline.CollectionPlan{}, fmt.Errorf("archive %s: %w", s.path, err)
	}
	plan.Bytes = fi.Size()
	return plan, nil
}

// Scan streams the documents of ns in file order. Positions are byte offsets in the
// uncompressed data file of the collection (directory), or in the uncompressed archive stream,
// magic number included (archive). from.Offset must be 0 or a Position.End of an earlier
// scan of the same input; compressed input is decompressed and discarded up to it.
//
// A broken frame ends the scan with a *pipeline.CorruptError naming the file and the byte
// where the broken frame starts, after every document before it went to fn. For an archive
// the namespace's CRC-64 is checked at its EOF header, so a mismatch is reported after all of
// its documents went to fn. fn's error is returned as is.
func (s *Source) Scan(ctx context.Context, ns pipeline.Namespace, r pipeline.Range, from pipeline.Cursor, fn func(doc bson.Raw, pos pipeline.Position) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	start, end := pipeline.FileSpan(r)
	if r.TypeClass != "" || (r.No != 0 || start != 0 || end != -1) && s.kind != "dump" ||
		r.Lower != nil && len(r.Lower) != 8 || r.Upper != nil && len(r.Upper) != 8 {
		return fmt.Errorf("dump %s: %s: not a range of this dump: range %d %q", s.path, ns, r.No, r.TypeClass)
	}
	if from.AfterID != nil {
		return fmt.Errorf("dump %s: %s: a dump resumes at a byte offset, not after an _id", s.path, ns)
	}
	if from.Offset < 0 {
		return fmt.Errorf("dump %s: %s: negative resume offset %d", s.path, ns, from.Offset)
	}
	if s.kind == "dump" {
		c, err := s.dirLookup(ns)
		if err != nil {
			return err
		}
		return scanDirFile(ctx, c, max(from.Offset, start), end, fn)
	}
	return s.scanArchive(ctx, ns, from.Offset, fn)
}

var _ pipeline.FileSource = (*Source)(nil)

// File implements pipeline.FileSource: the collection's data file (directory) or the archive,
// with its size and modification time. A collection without a data file has none ("").
func (s *Source) File(ns pipeline.Namespace) (path, identity string, err error) {
	path = s.path
	if s.kind == "dump" {
		c, err := s.dirLookup(ns)
		if err != nil {
			return "", "", err
		}
		if c.data == "" {
			return "", "", nil
		}
		path = c.data
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("dump file %s: %w", path, err)
	}
	return path, fmt.Sprintf("%d bytes, modified %s", fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano)), nil
}

// Close marks the source closed; scans hold their own files and close them themselves.
func (s *Source) Close(ctx context.Context) error {
	s.closed.Store(true)
	return nil
}

var errClosed = errors.New("dump source is closed")

func (s *Source) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("dump %s: %w", s.path, errClosed)
	}
	return ctx.Err()
}
