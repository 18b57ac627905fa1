// Package verify proves a completed run (cli.md, Verify): it re-extracts the source with the
// run's as-of and options, re-transforms it, and compares with the target and the manifest —
// counts per collection and table, the sets of rejected _ids, and checksums. Where a table's
// checksum differs it narrows down to the rows and columns: both sides are summed per bucket
// (the first byte of SHA-256 of the row's primary key), and only the rows of differing buckets
// are compared one by one. --deep compares every row.
//
// Derived tables (pipeline.Table.Derived: rows several documents share) are recomputed from the
// re-transformed documents, folded by pipeline.DerivedRows with the conflict rules the sink
// inserts them with, and compared per module (as "<module>.(derived)") like any table: the
// target is never its own reference.
//
// The target side is read back in the checksum encoding the sink hashed while writing, so a
// clean target gives byte-identical digests. Documents that PostgreSQL refused at load time
// (rejects whose reason starts with "database refused") cannot be predicted by re-transforming:
// verify takes the manifest's word for them and leaves their rows out of the expected set.
package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

// FormatVersion versions the JSON report.
const FormatVersion = 1

// Options select what to verify.
type Options struct {
	RunID string
	Deep  bool
}

// Deps are the parts verify works with. Jobs are the run's collections, rebuilt by the caller
// from the run's record (as-of and result options).
type Deps struct {
	Source pipeline.Source
	Pool   *pgxpool.Pool
	Store  *manifests.Store
	Jobs   []pipeline.CollectionJob
	Logger *slog.Logger
}

// Report is verify's account.
type Report struct {
	FormatVersion int                `json:"format_version"`
	RunID         string             `json:"run_id"`
	Deep          bool               `json:"deep"`
	Clean         bool               `json:"clean"`
	Collections   []CollectionResult `json:"collections"`
	Differences   []Difference       `json:"differences"`
}

// Counts are a collection's document counts.
type Counts struct {
	Read     int64            `json:"read"`
	Loaded   int64            `json:"loaded"`
	Rejected int64            `json:"rejected"`
	Skipped  map[string]int64 `json:"skipped_by_reason"`
}

// CollectionResult compares one collection three ways: source (re-extracted), target (read
// back), manifest (recorded by the run).
type CollectionResult struct {
	Collection       string        `json:"collection"`
	Source           Counts        `json:"source"`
	Manifest         Counts        `json:"manifest"`
	SourceChecksum   string        `json:"source_checksum"`
	TargetChecksum   string        `json:"target_checksum"`
	ManifestChecksum string        `json:"manifest_checksum"`
	Tables           []TableResult `json:"tables"`
	Match            bool          `json:"match"`
}

// TableResult is one table's rows and sums on both sides.
type TableResult struct {
	Table      string `json:"table"`
	SourceRows int64  `json:"source_rows"`
	TargetRows int64  `json:"target_rows"`
	Match      bool   `json:"match"`
}

// Difference is one thing that differs.
type Difference struct {
	Collection string   `json:"collection"`
	Table      string   `json:"table,omitempty"`
	Kind       string   `json:"kind"` // missing row, extra row, changed row, counts, rejects, checksum
	ID         string   `json:"id,omitempty"`
	Columns    []string `json:"columns,omitempty"`
	Detail     string   `json:"detail,omitempty"`
}

// Run verifies the run o.RunID. A run that is not completed is refused (*pipeline.UsageError).
func Run(ctx context.Context, o Options, d Deps) (*Report, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	run, err := d.Store.GetRun(ctx, o.RunID)
	if err != nil {
		return nil, &pipeline.UsageError{Msg: err.Error()}
	}
	if run.Status != manifests.StatusCompleted {
		return nil, &pipeline.UsageError{Msg: fmt.Sprintf("run %s is %s: only a completed run can be verified (continue it with --resume)", run.ID, run.Status)}
	}
	rep := &Report{FormatVersion: FormatVersion, RunID: run.ID, Deep: o.Deep, Collections: []CollectionResult{}, Differences: []Difference{}}
	// A module's derived rows are collected from every collection's re-transformed documents
	// and compared once its last collection is done, as the run completes them.
	var fold *pipeline.DerivedRows
	var derived []pipeline.Table
	for i, job := range d.Jobs {
		if fold == nil {
			fold, derived = &pipeline.DerivedRows{}, nil
		}
		derived = appendDerived(derived, job)
		cr, diffs, err := verifyCollection(ctx, o, d, run, job, fold)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", job.Name, err)
		}
		rep.Collections = append(rep.Collections, *cr)
		rep.Differences = append(rep.Differences, diffs...)
		if i < len(d.Jobs)-1 && d.Jobs[i+1].Module == job.Module {
			continue
		}
		if len(derived) > 0 {
			name := pipeline.DerivedName(job.Module)
			cr, diffs, err := verifyDerived(ctx, o, d, run, name, derived, fold)
			if err != nil {
				return nil, fmt.Errorf("verify %s: %w", name, err)
			}
			rep.Collections = append(rep.Collections, *cr)
			rep.Differences = append(rep.Differences, diffs...)
		}
		fold = nil
	}
	rep.Clean = len(rep.Differences) == 0
	return rep, nil
}

const buckets = 256

// tableState accumulates one side of one table.
type tableState struct {
	table   pipeline.Table
	cols    []pipeline.Column
	keyIdx  []int
	idIdx   int // index of mongo_id among written columns, -1 if none
	sum     manifests.TableSum
	buckets [buckets]manifests.TableSum
	// rows of the buckets being narrowed down: key → row
	detail map[string]rowInfo
	want   *[buckets]bool
}

type rowInfo struct {
	digest manifests.Digest
	row    []byte
	id     string
}

func newTableState(tb pipeline.Table) *tableState {
	st := &tableState{table: tb, idIdx: -1, cols: tb.Written()}
	cols := st.cols
	for _, k := range tb.PrimaryKey {
		for i, c := range cols {
			if c.Name == k {
				st.keyIdx = append(st.keyIdx, i)
			}
		}
	}
	for i, c := range cols {
		if c.Name == "mongo_id" {
			st.idIdx = i
		}
	}
	return st
}

// add hashes one row; with want set it keeps the rows of the wanted buckets.
func (st *tableState) add(row []byte, docID string) error {
	d := manifests.RowDigest(st.table.FullName(), row)
	st.sum.Add(d)
	var key []byte
	var mongoID string
	keyText := make([]string, len(st.keyIdx))
	if err := pipeline.ForEachCell(row, func(i int, v []byte, null bool) error {
		for j, k := range st.keyIdx {
			if k == i {
				key = append(key, byte(len(v)>>8), byte(len(v)))
				key = append(key, v...)
				keyText[j] = st.cols[i].Name + "=" + cellText(st.cols[i].Type, v, null)
			}
		}
		if i == st.idIdx && !null {
			mongoID = string(v)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(st.keyIdx) == 0 {
		key = row
	}
	h := sha256.Sum256(key)
	b := h[0]
	st.buckets[b].Add(d)
	if st.want != nil && st.want[b] {
		if mongoID == "" {
			mongoID = docID
		}
		if mongoID == "" && len(st.keyIdx) > 0 {
			// Rows without a document of their own (derived rows, the target side of a
			// table without mongo_id) are named by their primary key.
			mongoID = strings.Join(keyText, ", ")
		}
		if mongoID == "" {
			mongoID = fmt.Sprintf("key %x", key)
		}
		st.detail[string(key)] = rowInfo{digest: d, row: append([]byte(nil), row...), id: mongoID}
	}
	return nil
}

// sourceSide re-extracts and re-transforms a collection over the run's ranges.
type sourceSide struct {
	counts  Counts
	rejects map[string]bool
	tables  []*tableState
}

// extract re-transforms a collection. With fold not nil, the derived rows of the documents
// that load are folded into it.
func extract(ctx context.Context, d Deps, run *manifests.Run, job pipeline.CollectionJob, dbRefused map[string]bool, want []*[buckets]bool, fold *pipeline.DerivedRows) (*sourceSide, error) {
	rows, err := d.Store.Ranges(ctx, run.ID, job.Name)
	if err != nil {
		return nil, err
	}
	ranges := make([]pipeline.Range, len(rows))
	for i, r := range rows {
		ranges[i] = pipeline.Range{No: r.No, TypeClass: r.TypeClass, Lower: r.Lower, Upper: r.Upper}
	}
	if p, ok := job.Transform.(pipeline.Preparer); ok {
		if err := pipeline.KeyPassOf(ctx, d.Source, job, p, ranges, d.Logger, load.NewTarget(d.Pool)); err != nil {
			return nil, err
		}
	}
	tables := ownTables(job)
	s := &sourceSide{counts: Counts{Skipped: map[string]int64{}}, rejects: map[string]bool{}}
	for i, tb := range tables {
		st := newTableState(tb)
		if want != nil && want[i] != nil {
			st.want = want[i]
			st.detail = map[string]rowInfo{}
		}
		s.tables = append(s.tables, st)
	}
	// index maps the transform's table positions to the collection's own (non-derived) tables:
	// derived tables are shared by documents and collections, folded and verified per module.
	index := map[int]int{}
	for i, t := range job.Transform.Tables() {
		for j, o := range tables {
			if o.FullName() == t.FullName() {
				index[i] = j
			}
		}
	}
	var buf pipeline.RowBuffer
	for _, pr := range ranges {
		err := d.Source.Scan(ctx, job.NS, pr, pipeline.Cursor{}, func(doc bson.Raw, _ pipeline.Position) error {
			buf.Reset()
			v := job.Transform.Apply(doc, &buf)
			s.counts.Read++
			id := ""
			if v.ID != nil {
				id = *v.ID
			}
			switch {
			case v.Skip != "":
				s.counts.Skipped[v.Skip]++
				return nil
			case v.Reject != nil:
				s.counts.Rejected++
				s.rejects[manifests.SafeText(id)] = true
				return nil
			case dbRefused[manifests.SafeText(id)]:
				// PostgreSQL refused this document at load time; the manifest says so.
				s.counts.Rejected++
				s.rejects[manifests.SafeText(id)] = true
				return nil
			}
			s.counts.Loaded++
			all := job.Transform.Tables()
			for _, r := range buf.Rows {
				if all[r.Table].Derived {
					if fold != nil {
						if err := fold.Add(all[r.Table], buf.RowBytes(r)); err != nil {
							return fmt.Errorf("_id %s: %w", id, err)
						}
					}
					continue
				}
				if err := s.tables[index[r.Table]].add(buf.RowBytes(r), id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func readTarget(ctx context.Context, d Deps, tables []pipeline.Table, want []*[buckets]bool) ([]*tableState, error) {
	var out []*tableState
	for i, tb := range tables {
		st := newTableState(tb)
		if want != nil && want[i] != nil {
			st.want = want[i]
			st.detail = map[string]rowInfo{}
		}
		if err := load.ScanTable(ctx, d.Pool, tb, func(row []byte) error { return st.add(row, "") }); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func checksumOf(states []*tableState) string {
	ts := manifests.TableSums{}
	for _, st := range states {
		ts[st.table.FullName()] = st.sum
	}
	return manifests.CollectionChecksum(ts).String()
}

func verifyCollection(ctx context.Context, o Options, d Deps, run *manifests.Run, job pipeline.CollectionJob, fold *pipeline.DerivedRows) (*CollectionResult, []Difference, error) {
	mc, err := d.Store.GetCollection(ctx, run.ID, job.Name)
	if err != nil {
		return nil, nil, err
	}
	refusals, err := d.Store.RejectReasons(ctx, run.ID, job.Name)
	if err != nil {
		return nil, nil, err
	}
	dbRefused := map[string]bool{}
	manifestRejects := map[string]bool{}
	for id, reason := range refusals {
		manifestRejects[id] = true
		if strings.HasPrefix(reason, "database refused") {
			dbRefused[id] = true
		}
	}
	src, err := extract(ctx, d, run, job, dbRefused, nil, fold)
	if err != nil {
		return nil, nil, err
	}
	tables := ownTables(job)
	tgt, err := readTarget(ctx, d, tables, nil)
	if err != nil {
		return nil, nil, err
	}
	cr := &CollectionResult{Collection: job.Name, Source: src.counts,
		Manifest:       Counts{Read: mc.Read, Loaded: mc.Loaded, Rejected: mc.Rejected, Skipped: mc.Skipped},
		SourceChecksum: checksumOf(src.tables), TargetChecksum: checksumOf(tgt)}
	if mc.Checksum != nil {
		cr.ManifestChecksum = mc.Checksum.String()
	}
	var diffs []Difference
	add := func(df Difference) {
		df.Collection = job.Name
		diffs = append(diffs, df)
	}
	if src.counts.Read != mc.Read || src.counts.Loaded != mc.Loaded || src.counts.Rejected != mc.Rejected || !sameCounts(src.counts.Skipped, mc.Skipped) {
		add(Difference{Kind: "counts", Detail: fmt.Sprintf("source read %d loaded %d rejected %d skipped %v; manifest read %d loaded %d rejected %d skipped %v",
			src.counts.Read, src.counts.Loaded, src.counts.Rejected, src.counts.Skipped, mc.Read, mc.Loaded, mc.Rejected, mc.Skipped)})
	}
	for id := range src.rejects {
		if !manifestRejects[id] {
			add(Difference{Kind: "rejects", ID: id, Detail: "rejected by the source replay, not by the run"})
		}
	}
	for id := range manifestRejects {
		if !src.rejects[id] {
			add(Difference{Kind: "rejects", ID: id, Detail: "rejected by the run, not by the source replay"})
		}
	}
	if cr.ManifestChecksum != cr.SourceChecksum {
		add(Difference{Kind: "checksum", Detail: fmt.Sprintf("manifest %s, source %s", cr.ManifestChecksum, cr.SourceChecksum)})
	}
	want := make([]*[buckets]bool, len(tables))
	narrow := false
	for i := range tables {
		tr := TableResult{Table: tables[i].FullName(), SourceRows: src.tables[i].sum.Count, TargetRows: tgt[i].sum.Count, Match: src.tables[i].sum == tgt[i].sum}
		cr.Tables = append(cr.Tables, tr)
		if want[i] = differingBuckets(o, src.tables[i], tgt[i]); want[i] != nil {
			narrow = true
		}
	}
	if narrow {
		src2, err := extract(ctx, d, run, job, dbRefused, want, nil)
		if err != nil {
			return nil, nil, err
		}
		tgt2, err := readTarget(ctx, d, tables, want)
		if err != nil {
			return nil, nil, err
		}
		for i := range tables {
			if want[i] == nil {
				continue
			}
			for _, df := range rowDiffs(tables[i], src2.tables[i].detail, tgt2[i].detail) {
				add(df)
			}
		}
	}
	sortDiffs(diffs)
	cr.Match = len(diffs) == 0
	return cr, diffs, nil
}

// differingBuckets marks the buckets whose sums differ between the sides (every bucket with
// --deep); nil when none is to be narrowed down.
func differingBuckets(o Options, src, tgt *tableState) *[buckets]bool {
	var w [buckets]bool
	any := false
	for b := 0; b < buckets; b++ {
		if o.Deep || src.buckets[b] != tgt.buckets[b] {
			w[b], any = true, true
		}
	}
	if !any {
		return nil
	}
	return &w
}

// appendDerived adds the job's derived tables not yet in list (tables shared by several
// collections are listed once).
func appendDerived(list []pipeline.Table, job pipeline.CollectionJob) []pipeline.Table {
next:
	for _, t := range job.Transform.Tables() {
		if !t.Derived {
			continue
		}
		for _, have := range list {
			if have.FullName() == t.FullName() {
				continue next
			}
		}
		list = append(list, t)
	}
	return list
}

// verifyDerived compares a module's derived tables as recomputed from the re-transformed
// documents (fold, merged by the tables' conflict rules as the sink merges them) with the
// target and with the checksum the run recorded, and narrows differences down to rows and
// columns like any table's. The target is never its own reference.
func verifyDerived(ctx context.Context, o Options, d Deps, run *manifests.Run, name string, tables []pipeline.Table, fold *pipeline.DerivedRows) (*CollectionResult, []Difference, error) {
	source := func(want []*[buckets]bool) ([]*tableState, error) {
		var out []*tableState
		for i, tb := range tables {
			st := newTableState(tb)
			if want != nil && want[i] != nil {
				st.want = want[i]
				st.detail = map[string]rowInfo{}
			}
			if err := fold.Rows(tb, func(row []byte) error { return st.add(row, "") }); err != nil {
				return nil, err
			}
			out = append(out, st)
		}
		return out, nil
	}
	src, err := source(nil)
	if err != nil {
		return nil, nil, err
	}
	tgt, err := readTarget(ctx, d, tables, nil)
	if err != nil {
		return nil, nil, err
	}
	cr := &CollectionResult{Collection: name, Source: Counts{Skipped: map[string]int64{}}, Manifest: Counts{Skipped: map[string]int64{}},
		SourceChecksum: checksumOf(src), TargetChecksum: checksumOf(tgt)}
	var diffs []Difference
	add := func(df Difference) {
		df.Collection = name
		diffs = append(diffs, df)
	}
	mc, err := d.Store.GetCollection(ctx, run.ID, name)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		add(Difference{Kind: "checksum", Detail: "the run recorded no checksum of its derived tables"})
	case err != nil:
		return nil, nil, err
	case mc.Checksum != nil:
		cr.ManifestChecksum = mc.Checksum.String()
	}
	if err == nil && cr.ManifestChecksum != cr.SourceChecksum {
		add(Difference{Kind: "checksum", Detail: fmt.Sprintf("manifest %s, source %s", cr.ManifestChecksum, cr.SourceChecksum)})
	}
	want := make([]*[buckets]bool, len(tables))
	narrow := false
	for i := range tables {
		cr.Tables = append(cr.Tables, TableResult{Table: tables[i].FullName(), SourceRows: src[i].sum.Count, TargetRows: tgt[i].sum.Count, Match: src[i].sum == tgt[i].sum})
		if want[i] = differingBuckets(o, src[i], tgt[i]); want[i] != nil {
			narrow = true
		}
	}
	if narrow {
		src2, err := source(want)
		if err != nil {
			return nil, nil, err
		}
		tgt2, err := readTarget(ctx, d, tables, want)
		if err != nil {
			return nil, nil, err
		}
		for i := range tables {
			if want[i] == nil {
				continue
			}
			for _, df := range rowDiffs(tables[i], src2[i].detail, tgt2[i].detail) {
				add(df)
			}
		}
	}
	sortDiffs(diffs)
	cr.Match = len(diffs) == 0
	return cr, diffs, nil
}

// cellText renders a key cell for a difference: the value as PostgreSQL would print it where
// that is plain (uuid, text, integers, timestamptz), else hex.
func cellText(t pipeline.ColumnType, v []byte, null bool) string {
	switch {
	case null:
		return "NULL"
	case t == pipeline.TypeText:
		return string(v)
	case t == pipeline.TypeUUID && len(v) == 16:
		h := hex.EncodeToString(v)
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case t == pipeline.TypeInt2 && len(v) == 2:
		return strconv.Itoa(int(int16(binary.BigEndian.Uint16(v))))
	case t == pipeline.TypeInt4 && len(v) == 4:
		return strconv.Itoa(int(int32(binary.BigEndian.Uint32(v))))
	case t == pipeline.TypeInt8 && len(v) == 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10)
	case t == pipeline.TypeTimestamptz && len(v) == 8:
		// Microseconds since 2000-01-01 UTC (946684800 s after the Unix epoch).
		return time.UnixMicro(int64(binary.BigEndian.Uint64(v)) + 946684800e6).UTC().Format(time.RFC3339Nano)
	}
	return hex.EncodeToString(v)
}

func sameCounts(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// rowDiffs compares the kept rows of both sides by primary key.
func rowDiffs(tb pipeline.Table, src, tgt map[string]rowInfo) []Difference {
	var out []Difference
	cols := tb.Written()
	for k, s := range src {
		t, ok := tgt[k]
		switch {
		case !ok:
			out = append(out, Difference{Table: tb.FullName(), Kind: "missing row", ID: s.id})
		case t.digest != s.digest:
			out = append(out, Difference{Table: tb.FullName(), Kind: "changed row", ID: s.id, Columns: changedColumns(cols, s.row, t.row)})
		}
	}
	for k, t := range tgt {
		if _, ok := src[k]; !ok {
			out = append(out, Difference{Table: tb.FullName(), Kind: "extra row", ID: t.id})
		}
	}
	return out
}

func changedColumns(cols []pipeline.Column, a, b []byte) []string {
	cells := func(row []byte) [][]byte {
		var out [][]byte
		_ = pipeline.ForEachCell(row, func(_ int, v []byte, null bool) error {
			if null {
				out = append(out, nil)
			} else {
				out = append(out, append([]byte{1}, v...))
			}
			return nil
		})
		return out
	}
	ca, cb := cells(a), cells(b)
	var out []string
	for i := range cols {
		if i >= len(ca) || i >= len(cb) || !bytes.Equal(ca[i], cb[i]) {
			out = append(out, cols[i].Name)
		}
	}
	return out
}

func sortDiffs(d []Difference) {
	sort.Slice(d, func(i, j int) bool {
		if d[i].Table != d[j].Table {
			return d[i].Table < d[j].Table
		}
		if d[i].Kind != d[j].Kind {
			return d[i].Kind < d[j].Kind
		}
		return d[i].ID < d[j].ID
	})
}

// ownTables are a collection's tables without the derived ones.
func ownTables(job pipeline.CollectionJob) []pipeline.Table {
	var out []pipeline.Table
	for _, t := range job.Transform.Tables() {
		if !t.Derived {
			out = append(out, t)
		}
	}
	return out
}
