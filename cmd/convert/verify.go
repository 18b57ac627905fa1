package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/live"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/verify"
)

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from, to, runID, report string
	var deep, jsonOut bool
	fs.StringVar(&from, "from", "", "source the run read (mongodb:// URI, mongodump directory or archive)")
	fs.StringVar(&to, "to", "", "target PostgreSQL DSN (default $DATABASE_URL, then PG* variables)")
	fs.StringVar(&runID, "run-id", "", "the completed run to verify")
	fs.BoolVar(&deep, "deep", false, "compare every row, not only where checksums differ")
	fs.StringVar(&report, "report", "", "write the verify report as JSON to this file")
	fs.BoolVar(&jsonOut, "json", false, "JSON report on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if runID == "" {
		return usagef("verify: --run-id is required")
	}
	logger := newLogger(stderr, jsonOut)
	pool, store, err := openTarget(ctx, to, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	run, err := store.GetRun(ctx, runID)
	if errors.Is(err, manifests.ErrNoRun) {
		return usagef("verify: no run %s in the target", runID)
	}
	if err != nil {
		return err
	}
	sel, err := selectionOfRun(run)
	if err != nil {
		return err
	}
	src, err := openSource(ctx, from, live.DefaultRangeDocs)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	if src.Fingerprint() != run.SourceFingerprint {
		logger.Warn("the source differs from the run's; differences may follow", "run_source", run.SourceFingerprint, "source", src.Fingerprint())
	}
	rep, err := verify.Run(ctx, verify.Options{RunID: runID, Deep: deep}, verify.Deps{Source: src, Pool: pool, Store: store, Jobs: sel.jobs, Logger: logger})
	if err != nil {
		return err
	}
	if report != "" {
		if err := manifests.WriteFileAtomic(report, func(w io.Writer) error { return writeJSON(w, rep) }); err != nil {
			return err
		}
	}
	if jsonOut {
		_ = writeJSON(stdout, rep)
	} else {
		printVerify(stdout, rep)
	}
	if !rep.Clean {
		return &differencesError{n: len(rep.Differences)}
	}
	return nil
}

// selectionOfRun rebuilds a run's collections from its record, bound to its as-of.
func selectionOfRun(run *manifests.Run) (*selection, error) {
	var opts struct {
		FixStrings  bool                      `json:"fix_strings"`
		Collections []string                  `json:"collections"`
		Modules     []string                  `json:"modules"`
		Only        []string                  `json:"only"`
		Overrides   map[string]ModuleOverride `json:"overrides"`
	}
	if err := json.Unmarshal(run.Options, &opts); err != nil {
		return nil, fmt.Errorf("run %s: options: %w", run.ID, err)
	}
	opt := transforms.Options{FixStrings: opts.FixStrings}
	if len(opts.Modules) > 0 {
		return selectModules(strings.Join(opts.Modules, ","), opts.Only, run.AsOf, opt, &Overrides{Modules: opts.Overrides})
	}
	return selectCollections("", opts.Collections, run.AsOf, opt, nil)
}

func printVerify(w io.Writer, rep *verify.Report) {
	verdict := "CLEAN"
	if !rep.Clean {
		verdict = fmt.Sprintf("%d DIFFERENCES", len(rep.Differences))
	}
	fmt.Fprintf(w, "verify run %s: %s\n", rep.RunID, verdict)
	t := newTable(w, "COLLECTION", "SRC READ", "SRC LOADED", "SRC REJECTED", "MANIFEST LOADED", "TARGET ROWS", "SOURCE CHECKSUM", "TARGET CHECKSUM", "MATCH")
	for _, c := range rep.Collections {
		var rows int64
		for _, tb := range c.Tables {
			rows += tb.TargetRows
		}
		t.row(c.Collection, c.Source.Read, c.Source.Loaded, c.Source.Rejected, c.Manifest.Loaded, rows, c.SourceChecksum[:16], c.TargetChecksum[:16], c.Match)
	}
	t.flush()
	for _, d := range rep.Differences {
		line := fmt.Sprintf("  %s %s", d.Collection, d.Kind)
		if d.Table != "" {
			line += " in " + d.Table
		}
		if d.ID != "" {
			line += " _id " + d.ID
		}
		if len(d.Columns) > 0 {
			line += " columns " + strings.Join(d.Columns, ",")
		}
		if d.Detail != "" {
			line += ": " + d.Detail
		}
		fmt.Fprintln(w, line)
	}
}

var _ = pipeline.FormatVersion
