// Package archive copies source collections, every document and all tiers, into a mongodump
// directory (cli.md, Archive): <db>/<coll>.bson.zst with <coll>.metadata.json.zst by default, or
// .bson.gz and .metadata.json.gz (what stock mongorestore reads), and a SHA256SUMS file in
// `sha256sum -c` format over the files as written, written last so its presence means the
// archive is complete. Documents are streamed: nothing is held in memory beyond one document.
//
// To restore a zstd archive with stock tools, decompress first:
//
//	find DIR -name '*.zst' -exec zstd -d --rm {} +
//	mongorestore --dir DIR
package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// Options say where and how to write.
type Options struct {
	Out  string
	Gzip bool
}

// MetadataSource is implemented by sources that know a collection's mongodump metadata.
type MetadataSource interface {
	Metadata(ctx context.Context, ns pipeline.Namespace) ([]byte, error)
}

// Collection is one archived collection.
type Collection struct {
	Namespace string   `json:"namespace"`
	Documents int64    `json:"documents"`
	Bytes     int64    `json:"bytes"`
	Files     []string `json:"files"`
}

// Result lists what was written.
type Result struct {
	Out         string       `json:"out"`
	Collections []Collection `json:"collections"`
	Sums        string       `json:"sha256sums"`
}

// ErrOutNotEmpty refuses to mix an archive into existing files.
var ErrOutNotEmpty = errors.New("output directory exists and is not empty")

// Write archives the namespaces from src into o.Out.
func Write(ctx context.Context, src pipeline.Source, namespaces []pipeline.Namespace, o Options) (*Result, error) {
	if entries, err := os.ReadDir(o.Out); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s: %w", o.Out, ErrOutNotEmpty)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	comp := dump.Zstd
	if o.Gzip {
		comp = dump.Gzip
	}
	w := dump.DirWriter{Root: o.Out, Data: comp, Metadata: comp}
	res := &Result{Out: o.Out}
	var files []string
	for _, ns := range namespaces {
		var md []byte
		if ms, ok := src.(MetadataSource); ok {
			var err error
			if md, err = ms.Metadata(ctx, ns); err != nil {
				return nil, err
			}
		}
		plan, err := src.Plan(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", ns, err)
		}
		c := Collection{Namespace: ns.String()}
		written, err := w.WriteCollection(ctx, ns.DB, ns.Collection, md, func(emit func(bson.Raw) error) error {
			for _, r := range plan.Ranges {
				if err := src.Scan(ctx, ns, r, pipeline.Cursor{}, func(doc bson.Raw, _ pipeline.Position) error {
					c.Documents++
					c.Bytes += int64(len(doc))
					return emit(doc)
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", ns, err)
		}
		c.Files = written
		files = append(files, written...)
		res.Collections = append(res.Collections, c)
	}
	sort.Strings(files)
	sums := make([]string, 0, len(files))
	for _, f := range files {
		h, err := hashFile(filepath.Join(o.Out, f))
		if err != nil {
			return nil, err
		}
		sums = append(sums, h+"  "+filepath.ToSlash(f)+"\n")
	}
	res.Sums = filepath.Join(o.Out, "SHA256SUMS")
	if err := manifests.WriteFileAtomic(res.Sums, func(w io.Writer) error {
		for _, line := range sums {
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return res, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20)); err != nil {
		return "", fmt.Errorf("archive: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
