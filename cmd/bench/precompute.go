package main

// Inputs written before any timing starts: the mongodump directory of a shape's documents, and
// the exact final rows those documents become, as one binary COPY file per target table.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// genDocs calls emit for documents [0, n) of a shape; the document is only valid during emit.
func genDocs(sh shape, n int, emit func(bson.Raw) error) error {
	pcg := rand.NewPCG(0, 0)
	rng := rand.New(pcg)
	var buf []byte
	for i := 0; i < n; i++ {
		pcg.Seed(sh.Seed, uint64(i))
		buf = sh.Gen(buf[:0], i, rng)
		if err := emit(buf); err != nil {
			return err
		}
	}
	return nil
}

// writeDump writes documents [0, n) as a plain mongodump directory with dump.DirWriter and
// returns the data file's path and size.
func writeDump(ctx context.Context, sh shape, n int, root string) (string, int64, error) {
	meta := fmt.Appendf(nil, `{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"collectionName":%q,"type":"collection"}`, sh.Coll)
	w := dump.DirWriter{Root: root, Data: dump.None, Metadata: dump.None}
	files, err := w.WriteCollection(ctx, sh.DB, sh.Coll, meta, func(emit func(bson.Raw) error) error {
		return genDocs(sh, n, func(d bson.Raw) error { return emit(d) })
	})
	if err != nil {
		return "", 0, err
	}
	path := filepath.Join(root, files[0])
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), nil
}

// scanDump reads the shape's collection from the dump directory; fn's doc is only valid during
// the call. It stops early without error when fn returns errStop.
func scanDump(ctx context.Context, root string, sh shape, fn func(doc bson.Raw, pos pipeline.Position) error) error {
	src, plan, err := openPlanned(ctx, root, sh)
	if err != nil {
		return err
	}
	defer src.Close(ctx)
	for _, r := range plan.Ranges {
		err := src.Scan(ctx, sh.ns(), r, pipeline.Cursor{}, fn)
		if err == errStop {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var errStop = fmt.Errorf("stop")

// span is a batch's part of one table's COPY file.
type span struct {
	Start, End int64 // byte offsets of its tuples in the file
	Rows       int
	RowDocs    []int32 // per row, the document's index within the batch
}

// batchIndex is one batch as the tool cuts it: BatchSize documents or BatchBytes of source BSON.
type batchIndex struct {
	Docs        int
	Raw         int64
	StartOffset int64 // in the dump data file
	EndOffset   int64
	Spans       []span // per table
}

// precomputed are a shape's final rows, in COPY files, indexed by batch.
type precomputed struct {
	Tables    []pipeline.Table
	Files     []string // per table: header, tuples, trailer
	FileBytes []int64
	Batches   []batchIndex
	Docs      int
	Rows      []int64 // per table
	// Checksum is the collection checksum the tool must report for these rows; PrefixChecksum
	// covers the first PrefixDocs documents (the FerretDB subset).
	Checksum       string
	PrefixDocs     int
	PrefixChecksum string
}

func (p *precomputed) copyBytes() int64 {
	var n int64
	for _, b := range p.FileBytes {
		n += b
	}
	return n
}

func (p *precomputed) remove() {
	for _, f := range p.Files {
		os.Remove(f)
	}
}

// precompute runs the transform exactly as the pipeline does — key pass first, then Apply per
// document into a RowBuffer per batch — and writes every row as a binary COPY tuple. Every
// document must load: a reject or skip here is a bug in the generator and fails the benchmark.
// Without files, only the sizes, the index and the checksums are kept.
func precompute(ctx context.Context, sh shape, root, outDir string, asOf time.Time, prefixDocs int, target pipeline.Target, files bool) (*precomputed, error) {
	tr := sh.Job(asOf).Transform
	if err := keyPass(ctx, root, sh, tr, target); err != nil {
		return nil, err
	}
	tables := tr.Tables()
	p := &precomputed{Tables: tables, PrefixDocs: prefixDocs, Rows: make([]int64, len(tables)), FileBytes: make([]int64, len(tables))}
	cols := make([][]pipeline.Column, len(tables))
	names := make([]string, len(tables))
	fs := make([]*os.File, len(tables))
	ws := make([]*bufio.Writer, len(tables))
	offs := make([]int64, len(tables))
	defer func() {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, t := range tables {
		cols[i] = t.Written()
		names[i] = t.FullName()
		if files {
			path := filepath.Join(outDir, fmt.Sprintf("%s.%d.copy", sh.Name, i))
			f, err := os.Create(path)
			if err != nil {
				return nil, err
			}
			fs[i], p.Files = f, append(p.Files, path)
			ws[i] = bufio.NewWriterSize(f, 1<<20)
		} else {
			ws[i] = bufio.NewWriterSize(io.Discard, 1<<20)
		}
		ws[i].Write(copyHeader)
		offs[i] = int64(len(copyHeader))
	}
	sums, prefix := manifests.TableSums{}, manifests.TableSums{}
	for _, n := range names {
		sums[n], prefix[n] = manifests.TableSum{}, manifests.TableSum{}
	}

	var rb pipeline.RowBuffer
	rb.Reset()
	var tuple []byte
	cur := batchIndex{}
	docNo := 0 // documents before the current batch
	flush := func() error {
		cur.Spans = make([]span, len(tables))
		for i := range cur.Spans {
			cur.Spans[i].Start, cur.Spans[i].End = offs[i], offs[i]
		}
		for _, r := range rb.Rows {
			row := rb.RowBytes(r)
			d := manifests.RowDigest(names[r.Table], row)
			s := sums[names[r.Table]]
			s.Add(d)
			sums[names[r.Table]] = s
			if docNo+r.Doc < prefixDocs {
				s := prefix[names[r.Table]]
				s.Add(d)
				prefix[names[r.Table]] = s
			}
			var err error
			if tuple, err = appendCopyRow(tuple[:0], cols[r.Table], row); err != nil {
				return err
			}
			if _, err := ws[r.Table].Write(tuple); err != nil {
				return err
			}
			offs[r.Table] += int64(len(tuple))
			sp := &cur.Spans[r.Table]
			sp.End = offs[r.Table]
			sp.Rows++
			sp.RowDocs = append(sp.RowDocs, int32(r.Doc))
			p.Rows[r.Table]++
		}
		p.Batches = append(p.Batches, cur)
		docNo += cur.Docs
		cur = batchIndex{StartOffset: cur.EndOffset, EndOffset: cur.EndOffset}
		rb.Reset()
		return nil
	}
	err := scanDump(ctx, root, sh, func(doc bson.Raw, pos pipeline.Position) error {
		rows, data := rb.Mark()
		rb.SetDoc(cur.Docs)
		v := tr.Apply(doc, &rb)
		if v.Reject != nil {
			return fmt.Errorf("generated document %d rejected: %v", docNo+cur.Docs, v.Reject)
		}
		if v.Skip != "" {
			rb.Truncate(rows, data)
			return fmt.Errorf("generated document %d skipped: %s", docNo+cur.Docs, v.Skip)
		}
		cur.Docs++
		cur.Raw += int64(len(doc))
		cur.EndOffset = pos.End
		if cur.Docs >= pipeline.DefaultBatchSize || cur.Raw >= pipeline.DefaultBatchBytes {
			return flush()
		}
		return nil
	})
	if err == nil && cur.Docs > 0 {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("precompute %s: %w", sh.Name, err)
	}
	for i, w := range ws {
		w.Write(copyTrailer)
		if err := w.Flush(); err != nil {
			return nil, err
		}
		p.FileBytes[i] = offs[i] + int64(len(copyTrailer))
	}
	p.Docs = docNo
	p.Checksum = manifests.CollectionChecksum(sums).String()
	p.PrefixChecksum = manifests.CollectionChecksum(prefix).String()
	return p, nil
}

// openPlanned opens the dump directory and plans the shape's collection as the tool does.
func openPlanned(ctx context.Context, root string, sh shape) (*dump.Source, pipeline.CollectionPlan, error) {
	src, err := dump.Open(ctx, root)
	if err != nil {
		return nil, pipeline.CollectionPlan{}, err
	}
	plan, err := src.Plan(ctx, sh.ns())
	if err != nil {
		src.Close(ctx)
		return nil, pipeline.CollectionPlan{}, err
	}
	return src, plan, nil
}

// keyPass runs the transform's key pass over the dump as the pipeline does before the first
// batch (pipeline.KeyPassOf over the planned ranges), with target as the tool's.
func keyPass(ctx context.Context, root string, sh shape, tr pipeline.Transform, target pipeline.Target) error {
	pr, ok := tr.(pipeline.Preparer)
	if !ok {
		return nil
	}
	src, plan, err := openPlanned(ctx, root, sh)
	if err != nil {
		return err
	}
	defer src.Close(ctx)
	job := pipeline.CollectionJob{Name: sh.ns().String(), NS: sh.ns(), Transform: tr}
	return pipeline.KeyPassOf(ctx, src, job, pr, plan.Ranges, slog.New(slog.DiscardHandler), target)
}

// batchReader reads the precomputed batches back from the COPY files.
type batchReader struct {
	p     *precomputed
	files []*os.File
	buf   []byte
}

func openBatches(p *precomputed) (*batchReader, error) {
	br := &batchReader{p: p}
	for _, path := range p.Files {
		f, err := os.Open(path)
		if err != nil {
			br.close()
			return nil, err
		}
		br.files = append(br.files, f)
	}
	return br, nil
}

func (br *batchReader) close() {
	for _, f := range br.files {
		f.Close()
	}
}

// tuples calls fn for every COPY tuple of batch k's span of table t, with the fields split.
func (br *batchReader) tuples(k, t int, fn func(i int, fields [][]byte) error) error {
	sp := br.p.Batches[k].Spans[t]
	n := int(sp.End - sp.Start)
	if cap(br.buf) < n {
		br.buf = make([]byte, n)
	}
	buf := br.buf[:n]
	if _, err := br.files[t].ReadAt(buf, sp.Start); err != nil && err != io.EOF {
		return err
	}
	var fields [][]byte
	for i := 0; i < sp.Rows; i++ {
		var used int
		var err error
		if fields, used, err = copyFields(buf, fields); err != nil {
			return fmt.Errorf("%s batch %d row %d: %w", br.p.Files[t], k, i, err)
		}
		if err := fn(i, fields); err != nil {
			return err
		}
		buf = buf[used:]
	}
	return nil
}

// fill turns batch k back into the pipeline.Batch the tool's producer would hand its sink:
// the rows in checksum encoding, every document loaded.
func (br *batchReader) fill(k int, b *pipeline.Batch) error {
	bi := br.p.Batches[k]
	b.Reset()
	b.Tables = br.p.Tables
	b.File = true
	b.StartOffset, b.EndOffset = bi.StartOffset, bi.EndOffset
	for i := 0; i < bi.Docs; i++ {
		b.Docs = append(b.Docs, pipeline.BatchDoc{})
	}
	for t, tb := range br.p.Tables {
		cols := tb.Written()
		sp := bi.Spans[t]
		err := br.tuples(k, t, func(i int, fields [][]byte) error {
			b.Rows.SetDoc(int(sp.RowDocs[i]))
			b.Rows.StartRow(t)
			if err := appendChecksumRow(&b.Rows, cols, fields); err != nil {
				return err
			}
			b.Rows.EndRow()
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
