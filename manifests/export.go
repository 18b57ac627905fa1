package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ExportFormatVersion versions the JSON of Export.
const ExportFormatVersion = 1

// Export is a run's whole manifest, for air-gapped audit.
type Export struct {
	FormatVersion int         `json:"format_version"`
	ExportedAt    time.Time   `json:"exported_at"`
	Runs          []ExportRun `json:"runs"`
}

// ExportRun is one run with its collections.
type ExportRun struct {
	ID                string             `json:"id"`
	Kind              string             `json:"kind"`
	Modules           []string           `json:"modules,omitempty"`
	Collections       []string           `json:"collections,omitempty"`
	StartedAt         time.Time          `json:"started_at"`
	FinishedAt        *time.Time         `json:"finished_at,omitempty"`
	AsOf              time.Time          `json:"as_of"`
	SourceKind        string             `json:"source_kind"`
	SourceFingerprint string             `json:"source_fingerprint"`
	Options           json.RawMessage    `json:"options"`
	ToolVersion       string             `json:"tool_version"`
	TransformVersion  string             `json:"transform_version"`
	Status            string             `json:"status"`
	Error             string             `json:"error,omitempty"`
	CollectionStates  []ExportCollection `json:"collection_states"`
}

// ExportCollection is one collection with its ranges, batches and rejects.
type ExportCollection struct {
	Name       string           `json:"collection"`
	Module     string           `json:"module"`
	Source     string           `json:"source"`
	Tier       string           `json:"tier"`
	Filter     json.RawMessage  `json:"filter"`
	Read       int64            `json:"read"`
	Selected   int64            `json:"selected"`
	Loaded     int64            `json:"loaded"`
	Rejected   int64            `json:"rejected"`
	Skipped    map[string]int64 `json:"skipped"`
	Rows       map[string]int64 `json:"rows"`
	Checksum   string           `json:"checksum,omitempty"`
	Status     string           `json:"status"`
	Ranges     []ExportRange    `json:"ranges"`
	Batches    []ExportBatch    `json:"batches"`
	RejectRows []ExportReject   `json:"rejects"`
}

// ExportRange is one range; bounds are BSON-encoded (type byte + value), base64 in JSON.
type ExportRange struct {
	No        int    `json:"range_no"`
	TypeClass string `json:"type_class"`
	Lower     []byte `json:"lower"`
	Upper     []byte `json:"upper"`
	Status    string `json:"status"`
}

// ExportBatch is one committed batch.
type ExportBatch struct {
	RangeNo     int              `json:"range_no"`
	Seq         int              `json:"seq"`
	FirstID     *string          `json:"first_id"`
	LastID      *string          `json:"last_id"`
	StartOffset *int64           `json:"start_offset,omitempty"`
	EndOffset   *int64           `json:"end_offset,omitempty"`
	Read        int              `json:"read"`
	Loaded      int              `json:"loaded"`
	Rejected    int              `json:"rejected"`
	Rows        map[string]int64 `json:"rows"`
	Skipped     map[string]int64 `json:"skipped"`
	Checksum    string           `json:"checksum"`
	CommittedAt time.Time        `json:"committed_at"`
}

// ExportReject is one rejected document; raw is its BSON, base64 in JSON.
type ExportReject struct {
	RangeNo int     `json:"range_no"`
	Seq     int     `json:"seq"`
	ID      *string `json:"_id"`
	Path    string  `json:"path"`
	Reason  string  `json:"reason"`
	Raw     []byte  `json:"raw"`
}

// Export reads a run's manifest.
func (s *Store) Export(ctx context.Context, runID string) (*Export, error) {
	run, err := s.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	er := ExportRun{ID: run.ID, Kind: run.Kind, Modules: run.Modules, Collections: run.Collections, StartedAt: run.StartedAt,
		FinishedAt: run.FinishedAt, AsOf: run.AsOf, SourceKind: run.SourceKind, SourceFingerprint: run.SourceFingerprint,
		Options: run.Options, ToolVersion: run.ToolVersion, TransformVersion: run.TransformVersion, Status: run.Status, Error: run.Error,
		CollectionStates: []ExportCollection{}}
	colls, err := s.Collections(ctx, runID)
	if err != nil {
		return nil, err
	}
	for _, c := range colls {
		ec := ExportCollection{Name: c.Name, Module: c.Module, Source: c.SourceNS, Tier: c.Tier, Filter: c.Filter, Read: c.Read,
			Selected: c.Selected, Loaded: c.Loaded, Rejected: c.Rejected, Skipped: c.Skipped, Rows: c.Rows, Status: c.Status,
			Ranges: []ExportRange{}, Batches: []ExportBatch{}, RejectRows: []ExportReject{}}
		if c.Checksum != nil {
			ec.Checksum = c.Checksum.String()
		}
		ranges, err := s.Ranges(ctx, runID, c.Name)
		if err != nil {
			return nil, err
		}
		for _, r := range ranges {
			ec.Ranges = append(ec.Ranges, ExportRange{No: r.No, TypeClass: r.TypeClass, Lower: r.Lower, Upper: r.Upper, Status: r.Status})
		}
		rows, err := s.pool.Query(ctx, `SELECT range_no, seq, first_id, last_id, start_offset, end_offset, read, loaded, rejected,
rows, skipped, checksum, committed_at FROM convert.batches WHERE run_id = $1 AND collection = $2 ORDER BY range_no, seq`, runID, c.Name)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", c.Name, err)
		}
		for rows.Next() {
			var b ExportBatch
			var sum []byte
			if err := rows.Scan(&b.RangeNo, &b.Seq, &b.FirstID, &b.LastID, &b.StartOffset, &b.EndOffset, &b.Read, &b.Loaded,
				&b.Rejected, &b.Rows, &b.Skipped, &sum, &b.CommittedAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("export %s: %w", c.Name, err)
			}
			var d Digest
			copy(d[:], sum)
			b.Checksum = d.String()
			ec.Batches = append(ec.Batches, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("export %s: %w", c.Name, err)
		}
		rows, err = s.pool.Query(ctx, `SELECT range_no, seq, _id, path, reason, raw FROM convert.rejects
WHERE run_id = $1 AND collection = $2 ORDER BY range_no, seq, _id`, runID, c.Name)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", c.Name, err)
		}
		for rows.Next() {
			var r ExportReject
			if err := rows.Scan(&r.RangeNo, &r.Seq, &r.ID, &r.Path, &r.Reason, &r.Raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("export %s: %w", c.Name, err)
			}
			ec.RejectRows = append(ec.RejectRows, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("export %s: %w", c.Name, err)
		}
		er.CollectionStates = append(er.CollectionStates, ec)
	}
	return &Export{FormatVersion: ExportFormatVersion, ExportedAt: time.Now().UTC(), Runs: []ExportRun{er}}, nil
}

// WriteFileAtomic writes a file crash-safe: a temp file in the same directory, fsync, rename,
// fsync of the directory. A path ending in .zst is zstd-compressed.
func WriteFileAtomic(path string, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	var w io.Writer = f
	var zw *zstd.Encoder
	if strings.HasSuffix(path, ".zst") {
		zw, err = zstd.NewWriter(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		w = zw
	}
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// WriteExport writes a run's manifest as JSON to path (zstd when it ends in .zst).
func (s *Store) WriteExport(ctx context.Context, runID, path string) error {
	e, err := s.Export(ctx, runID)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	})
}
