package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ColumnType is one of the PostgreSQL types the target schemas use.
type ColumnType uint8

const (
	TypeUUID ColumnType = iota + 1
	TypeText
	TypeJSONB
	TypeInt2
	TypeInt4
	TypeInt8
	TypeFloat8
	TypeNumeric
	TypeBool
	TypeTimestamptz
	TypeBytea
	TypeTextArray
	TypeTSVector
)

var columnTypes = [...]struct {
	sql string
	oid uint32
}{
	TypeUUID:        {"uuid", 2950},
	TypeText:        {"text", 25},
	TypeJSONB:       {"jsonb", 3802},
	TypeInt2:        {"smallint", 21},
	TypeInt4:        {"integer", 23},
	TypeInt8:        {"bigint", 20},
	TypeFloat8:      {"double precision", 701},
	TypeNumeric:     {"numeric", 1700},
	TypeBool:        {"boolean", 16},
	TypeTimestamptz: {"timestamp with time zone", 1184},
	TypeBytea:       {"bytea", 17},
	TypeTextArray:   {"text[]", 1009},
	TypeTSVector:    {"tsvector", 3614},
}

// SQL is the type as PostgreSQL's format_type prints it.
func (t ColumnType) SQL() string { return columnTypes[t].sql }

// OID is the type's PostgreSQL object id.
func (t ColumnType) OID() uint32 { return columnTypes[t].oid }

// Column is one target column.
type Column struct {
	Name    string
	Type    ColumnType
	NotNull bool
	// Generated holds the expression of a GENERATED ALWAYS ... STORED column: such a column is
	// never written and is left out of checksums.
	Generated string
}

// Table is one target table. Its name in checksums is "schema.name".
type Table struct {
	Schema     string
	Name       string
	Columns    []Column
	PrimaryKey []string
	// Unique lists the table's unique keys (validated on an existing schema).
	Unique [][]string
	// CreateIfMissing lets the target create the table (generic mode); module tables come from
	// the module's migrations and are only validated.
	CreateIfMissing bool
	// Derived tables (authority tenants, roles, user_roles) hold rows several documents share:
	// the sink inserts them with ON CONFLICT ConflictAction() in the batch's transaction, they
	// are not counted in batch rows or sums, and they complete with their module. DerivedRows
	// folds them by the same rules in memory (derived.go).
	Derived bool
	// ConflictKey names the columns the conflict action's key covers (FoldKey: else the
	// primary key); rows of one batch sharing it are folded to the least by the remaining
	// columns first.
	ConflictKey []string
	// Least lists the columns that, on a conflict, keep the least non-NULL value
	// (DO UPDATE SET c = least(current, EXCLUDED.c)); without them a conflict does nothing.
	Least []string
}

// FullName is "schema.name", the table's name in checksums and reports.
func (t Table) FullName() string { return t.Schema + "." + t.Name }

// Ident is the quoted identifier for SQL.
func (t Table) Ident() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// Written lists the columns a row carries, in table order: every column but generated ones.
// Callers must not modify the result (it is the table's own slice when nothing is generated).
func (t Table) Written() []Column {
	first := -1
	for i, c := range t.Columns {
		if c.Generated != "" {
			first = i
			break
		}
	}
	if first < 0 {
		return t.Columns
	}
	// Generated columns usually come last: then the written ones are a prefix, and every row
	// of every document asks for them, so they are not copied.
	suffix := true
	for _, c := range t.Columns[first:] {
		suffix = suffix && c.Generated != ""
	}
	if suffix {
		return t.Columns[:first:first]
	}
	out := make([]Column, 0, len(t.Columns))
	for _, c := range t.Columns {
		if c.Generated == "" {
			out = append(out, c)
		}
	}
	return out
}

// QuoteIdent quotes a PostgreSQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// RowBuffer accumulates the rows of one batch in checksum encoding (mapping.md, Checksums): per
// written column, 0x00 for NULL, or 0x01, a 4-byte big-endian length and the value in
// PostgreSQL's binary send format (jsonb and numeric: their text as PostgreSQL prints it). So a
// row's digest is SHA-256(table name, 0x00, the row's bytes), and the COPY stream is derived
// from the same bytes. Not safe for concurrent use; Reset reuses its memory.
type RowBuffer struct {
	Data []byte
	Rows []RowRef
	open int // index into Rows of the row being written, -1 if none
	doc  int
}

// RowRef locates one row in RowBuffer.Data.
type RowRef struct {
	Table int // index into the Transform's Tables()
	Doc   int // index of the source document within the batch
	Start int
	End   int
	Cells int
}

// Reset empties the buffer, keeping its memory.
func (b *RowBuffer) Reset() {
	b.Data = b.Data[:0]
	b.Rows = b.Rows[:0]
	b.open = -1
	b.doc = 0
}

// SetDoc sets the batch index of the document whose rows follow.
func (b *RowBuffer) SetDoc(i int) { b.doc = i }

// Mark returns the buffer's current extent, for Truncate.
func (b *RowBuffer) Mark() (rows, data int) { return len(b.Rows), len(b.Data) }

// Truncate drops everything written after Mark: a rejected or skipped document leaves nothing.
func (b *RowBuffer) Truncate(rows, data int) {
	b.Rows = b.Rows[:rows]
	b.Data = b.Data[:data]
	b.open = -1
}

// StartRow opens a row of table t.
func (b *RowBuffer) StartRow(t int) {
	b.Rows = append(b.Rows, RowRef{Table: t, Doc: b.doc, Start: len(b.Data)})
	b.open = len(b.Rows) - 1
}

// EndRow closes the open row.
func (b *RowBuffer) EndRow() {
	r := &b.Rows[b.open]
	r.End = len(b.Data)
	b.open = -1
}

// Null appends a NULL cell.
func (b *RowBuffer) Null() {
	b.Data = append(b.Data, 0)
	b.Rows[b.open].Cells++
}

// Cell appends a value cell.
func (b *RowBuffer) Cell(v []byte) {
	b.Data = append(b.Data, 1)
	b.Data = binary.BigEndian.AppendUint32(b.Data, uint32(len(v)))
	b.Data = append(b.Data, v...)
	b.Rows[b.open].Cells++
}

// Text appends a text cell.
func (b *RowBuffer) Text(s string) {
	b.Data = append(b.Data, 1)
	b.Data = binary.BigEndian.AppendUint32(b.Data, uint32(len(s)))
	b.Data = append(b.Data, s...)
	b.Rows[b.open].Cells++
}

// BeginCell starts a value cell whose bytes the caller appends to Data directly (no copy);
// EndCell with the returned mark patches its length.
func (b *RowBuffer) BeginCell() int {
	b.Data = append(b.Data, 1, 0, 0, 0, 0)
	b.Rows[b.open].Cells++
	return len(b.Data)
}

// EndCell closes a cell begun with BeginCell.
func (b *RowBuffer) EndCell(mark int) {
	binary.BigEndian.PutUint32(b.Data[mark-4:mark], uint32(len(b.Data)-mark))
}

// RowBytes is the row's cells in checksum encoding.
func (b *RowBuffer) RowBytes(r RowRef) []byte { return b.Data[r.Start:r.End] }

// ForEachCell walks a row's cells in checksum encoding; v is nil for NULL.
func ForEachCell(row []byte, fn func(i int, v []byte, null bool) error) error {
	for i := 0; len(row) > 0; i++ {
		if row[0] == 0 {
			if err := fn(i, nil, true); err != nil {
				return err
			}
			row = row[1:]
			continue
		}
		if len(row) < 5 {
			return fmt.Errorf("row encoding: cell %d truncated", i)
		}
		n := int(binary.BigEndian.Uint32(row[1:5]))
		if len(row) < 5+n {
			return fmt.Errorf("row encoding: cell %d truncated", i)
		}
		if err := fn(i, row[5:5+n], false); err != nil {
			return err
		}
		row = row[5+n:]
	}
	return nil
}

// Reject is a document that cannot be loaded: it goes to convert.rejects with its raw BSON.
type Reject struct {
	// ID is the canonical _id (mapping.md, Identity); nil when it cannot be read.
	ID     *string
	Path   string
	Reason string
}

func (r *Reject) Error() string {
	id := "<unreadable>"
	if r.ID != nil {
		id = *r.ID
	}
	if r.Path == "" {
		return fmt.Sprintf("_id %s: %s", id, r.Reason)
	}
	return fmt.Sprintf("_id %s: %s: %s", id, r.Path, r.Reason)
}

// Skip reasons (cli.md, Output).
const (
	SkipOutsideWindow = "outside tier window"
	SkipTierC         = "tier C"
	SkipSuperseded    = "superseded"
)

// Verdict is what a Transform decided for one document.
type Verdict struct {
	// ID is the document's canonical _id (mapping.md, Identity); nil when it cannot be read.
	ID *string
	// Skip, when not empty, leaves the document out on purpose, with this reason.
	Skip string
	// Reject, when not nil, refuses the document.
	Reject *Reject
	// StringsFixed counts values mended under --fix-strings; Collapsed counts repeats folded
	// into one row (repeated CWEs, repeated roles): neither is a reject nor a skip.
	StringsFixed int
	Collapsed    int
}

// Transform maps documents of one collection to rows: it reads the document strictly, applies
// the tier filter, then the collection's mapping, in that order (mapping.md, Rejects). It is
// pure: same input, same output, no I/O; cross-document facts are settled by Prepare before the
// first Apply. Apply must be safe for concurrent use by several workers.
type Transform interface {
	// Tables lists the tables this collection writes, parents first.
	Tables() []Table
	// Apply maps one document exactly as read, appending its rows to out. When the verdict
	// skips or rejects, the caller discards whatever Apply appended.
	Apply(doc bson.Raw, out *RowBuffer) Verdict
}

// Preparer is implemented by transforms whose outcome depends on other documents of the same
// collection (unique-key winners, identity collisions, superseded documents). Prepare is called
// once before the collection's first batch; it must reach the same decisions whatever the order
// of the scan, the worker count or the source kind.
type Preparer interface {
	Prepare(ctx context.Context, kp KeyPass) error
}

// KeyPass is what a Preparer may read.
type KeyPass struct {
	// Scan reads every document of the collection (strictly invalid ones included).
	Scan func(fn func(doc bson.Raw) error) error
	// IDClasses lists the _id type classes present when the source knows them (live sources
	// plan ranges per class); nil when only a scan can tell.
	IDClasses []string
	// Query reads loaded rows of parent tables (complete before this collection starts), for
	// references, tenants and natural keys. Values come as text; nil is NULL.
	Query func(sql string, fn func(vals []*string) error) error
	// Exec runs DDL the collection needs before loading (scheduler.runs partitions). Every
	// process on the collection runs it (job joiners and verify too, without the module's
	// lock): the DDL must be idempotent (IF NOT EXISTS), and the target serializes it.
	Exec func(sql string) error
}
