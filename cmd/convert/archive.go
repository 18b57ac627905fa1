package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stellaops/convert/archive"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/transforms"
)

func cmdArchive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from, out, module string
	var colls multiFlag
	var gz, jsonOut bool
	fs.StringVar(&from, "from", "", "source: mongodb:// URI, mongodump directory or archive (default $MONGO_URI)")
	fs.StringVar(&out, "out", "", "output directory (must be absent or empty)")
	fs.StringVar(&module, "module", "", "module to archive")
	fs.Var(&colls, "collection", "DB.COLL to archive (repeatable)")
	fs.BoolVar(&gz, "gzip", false, "write .bson.gz and .metadata.json.gz (what stock mongorestore reads) instead of zstd")
	fs.BoolVar(&jsonOut, "json", false, "JSON output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if out == "" {
		return usagef("archive: --out is required")
	}
	sel, err := selectCollections(module, colls, time.Time{}, transforms.Options{}, nil)
	if err != nil {
		return err
	}
	src, err := openSource(ctx, from, live.DefaultRangeDocs)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	if err := checkPresent(ctx, src, sel); err != nil {
		return err
	}
	var nss []pipeline.Namespace
	for _, j := range sel.jobs {
		nss = append(nss, j.NS)
	}
	if module != "" {
		// GridFS references (advisory_raw, vex.raw) do not name their bucket, so every bucket of
		// the module's databases is archived: a superset of what the documents reference.
		for _, db := range sel.dbs {
			names, err := src.Collections(ctx, db)
			if err != nil {
				return err
			}
			for _, n := range names {
				if bucket, ok := strings.CutSuffix(n, ".files"); ok && slices.Contains(names, bucket+".chunks") {
					nss = append(nss, pipeline.Namespace{DB: db, Collection: bucket + ".files"}, pipeline.Namespace{DB: db, Collection: bucket + ".chunks"})
				}
			}
		}
	}
	res, err := archive.Write(ctx, src, nss, archive.Options{Out: out, Gzip: gz})
	if errors.Is(err, archive.ErrOutNotEmpty) {
		return &usageError{msg: err.Error()}
	}
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(stdout, res)
	}
	t := newTable(stdout, "COLLECTION", "DOCUMENTS", "BYTES", "FILES")
	for _, c := range res.Collections {
		t.row(c.Namespace, c.Documents, c.Bytes, fmt.Sprint(c.Files))
	}
	t.flush()
	fmt.Fprintf(stdout, "checksums: %s\n", res.Sums)
	return nil
}
