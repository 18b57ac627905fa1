package pipeline

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stellaops/convert/manifests"
)

// Report is the machine-readable account of a run (cli.md, Output), built from the manifest
// store so that it says exactly what was committed.
type Report struct {
	FormatVersion int    `json:"format_version"`
	RunID         string `json:"run_id"`
	Status        string `json:"status"`
	// SupersededBy names the later run that wrote this run's tables (status superseded).
	SupersededBy string             `json:"superseded_by,omitempty"`
	Error        string             `json:"error,omitempty"`
	AsOf         time.Time          `json:"as_of"`
	Source       string             `json:"source"`
	StartedAt    time.Time          `json:"started_at"`
	FinishedAt   *time.Time         `json:"finished_at,omitempty"`
	Collections  []CollectionReport `json:"collections"`
	Totals       Totals             `json:"totals"`
	// Unmapped lists the source collections of the selection's databases that nothing
	// converted (GridFS buckets, system collections, views, strays), set by the command.
	Unmapped []string `json:"unmapped"`
	// Deferred are the secondary indexes and foreign keys of this target that a run dropped
	// (--defer-indexes, --defer-foreign-keys) and no completed collection has restored yet,
	// whichever run dropped them.
	Deferred []manifests.Deferred `json:"deferred,omitempty"`
}

// CollectionReport is one collection's line of the report.
type CollectionReport struct {
	Module              string           `json:"module"`
	Collection          string           `json:"collection"`
	Source              string           `json:"source"`
	Tier                string           `json:"tier"`
	Filter              json.RawMessage  `json:"filter"`
	AsOf                time.Time        `json:"as_of"`
	Status              string           `json:"status"`
	Read                int64            `json:"read"`
	Selected            int64            `json:"selected"`
	Loaded              int64            `json:"loaded"`
	Rejected            int64            `json:"rejected"`
	Skipped             int64            `json:"skipped"`
	SkippedByReason     map[string]int64 `json:"skipped_by_reason"`
	RowsByTable         map[string]int64 `json:"rows_by_table"`
	StringsFixed        int64            `json:"strings_fixed"`
	DuplicatesCollapsed int64            `json:"duplicates_collapsed"`
	Checksum            string           `json:"checksum"`
	ElapsedS            float64          `json:"elapsed_s"`
	DocsPerS            float64          `json:"docs_per_s"`
	RangesDone          int              `json:"ranges_done"`
	RangesTotal         int              `json:"ranges_total"`
}

// Totals sums the collections.
type Totals struct {
	Read     int64   `json:"read"`
	Selected int64   `json:"selected"`
	Loaded   int64   `json:"loaded"`
	Rejected int64   `json:"rejected"`
	Skipped  int64   `json:"skipped"`
	Rows     int64   `json:"rows"`
	ElapsedS float64 `json:"elapsed_s"`
}

// BuildReport reads a run's report from the manifest store. Collections still running report
// their committed batches so far.
func BuildReport(ctx context.Context, store *manifests.Store, runID string) (*Report, error) {
	run, err := store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	colls, err := store.Collections(ctx, runID)
	if err != nil {
		return nil, err
	}
	rep := &Report{FormatVersion: FormatVersion, RunID: run.ID, Status: run.Status, SupersededBy: run.SupersededBy, Error: run.Error, AsOf: run.AsOf,
		Source: run.SourceFingerprint, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Collections: []CollectionReport{},
		Unmapped: []string{}}
	for _, c := range colls {
		if c.Status != "completed" {
			tot, err := store.Totals(ctx, runID, c.Name)
			if err != nil {
				return nil, err
			}
			c.Read, c.Selected, c.Loaded, c.Rejected, c.Skipped, c.Rows = tot.Read, tot.Selected, tot.Loaded, tot.Rejected, tot.Skipped, tot.Rows
			c.StringsFixed, c.Collapsed = tot.StringsFixed, tot.Collapsed
		}
		cr := CollectionReport{Module: c.Module, Collection: c.Name, Source: c.SourceNS, Tier: c.Tier, Filter: c.Filter, AsOf: run.AsOf,
			Status: c.Status, Read: c.Read, Selected: c.Selected, Loaded: c.Loaded, Rejected: c.Rejected,
			SkippedByReason: c.Skipped, RowsByTable: c.Rows, StringsFixed: c.StringsFixed, DuplicatesCollapsed: c.Collapsed,
			ElapsedS: c.ElapsedS}
		if cr.SkippedByReason == nil {
			cr.SkippedByReason = map[string]int64{}
		}
		if cr.RowsByTable == nil {
			cr.RowsByTable = map[string]int64{}
		}
		for _, n := range cr.SkippedByReason {
			cr.Skipped += n
		}
		if cr.RangesDone, cr.RangesTotal, err = store.RangeCounts(ctx, runID, c.Name); err != nil {
			return nil, err
		}
		if c.Checksum != nil {
			cr.Checksum = c.Checksum.String()
		}
		if c.ElapsedS > 0 {
			cr.DocsPerS = float64(c.Read) / c.ElapsedS
		}
		rep.Collections = append(rep.Collections, cr)
		rep.Totals.Read += cr.Read
		rep.Totals.Selected += cr.Selected
		rep.Totals.Loaded += cr.Loaded
		rep.Totals.Rejected += cr.Rejected
		rep.Totals.Skipped += cr.Skipped
		rep.Totals.ElapsedS += cr.ElapsedS
		for _, n := range cr.RowsByTable {
			rep.Totals.Rows += n
		}
	}
	if rep.Deferred, err = store.Deferred(ctx, "", ""); err != nil {
		return nil, err
	}
	return rep, nil
}
