package transforms

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
)

// Row writes one row of a table, column by column in table order (generated columns are
// skipped by the caller's column list: Written), applying mapping.md's value rules. The first
// fault stops the row: later calls do nothing and Err reports it, so a transform writes a row
// straight through and checks once.
//
//	r := transforms.NewRow(out, tables, 1, opt)
//	r.UUID(id)
//	r.Text(canonical)
//	r.Field(doc, "tenant")
//	r.Field(doc, "username")
//	if rej := r.End(); rej != nil { return rej }
type Row struct {
	buf  *pipeline.RowBuffer
	cols []pipeline.Column
	tbl  *pipeline.Table
	opt  Options
	i    int
	err  *pipeline.Reject
}

// NewRow starts a row of tables[t] in buf.
func NewRow(buf *pipeline.RowBuffer, tables []pipeline.Table, t int, opt Options) *Row {
	buf.StartRow(t)
	return &Row{buf: buf, cols: tables[t].Written(), tbl: &tables[t], opt: opt}
}

func (r *Row) next() (pipeline.Column, bool) {
	if r.err != nil {
		return pipeline.Column{}, false
	}
	if r.i >= len(r.cols) {
		r.err = &pipeline.Reject{Reason: fmt.Sprintf("internal: table %s has %d columns, the transform wrote more", r.tbl.FullName(), len(r.cols))}
		return pipeline.Column{}, false
	}
	c := r.cols[r.i]
	r.i++
	return c, true
}

// Fail stops the row with a reject.
func (r *Row) Fail(path, reason string) {
	if r.err == nil {
		r.err = &pipeline.Reject{Path: path, Reason: reason}
	}
}

// Null writes NULL into the next column (a NOT NULL column rejects).
func (r *Row) Null(path string) {
	c, ok := r.next()
	if !ok {
		return
	}
	if c.NotNull {
		r.err = &pipeline.Reject{Path: path, Reason: "missing value for NOT NULL column " + c.Name}
		return
	}
	r.buf.Null()
}

// Bytes writes a value already in the column's binary form.
func (r *Row) Bytes(v []byte) {
	if _, ok := r.next(); ok {
		r.buf.Cell(v)
	}
}

// UUID writes a uuid.
func (r *Row) UUID(u [16]byte) { r.Bytes(u[:]) }

// OptUUID writes a uuid, or NULL when u is nil.
func (r *Row) OptUUID(u *[16]byte, path string) {
	if u == nil {
		r.Null(path)
		return
	}
	r.UUID(*u)
}

// Text writes a string the transform computed (a canonical id, an enum name): the NUL and
// UTF-8 rules still apply.
func (r *Row) Text(s, path string) {
	c, ok := r.next()
	if !ok {
		return
	}
	opt := r.opt
	opt.Path = path
	clean, verr := CleanString(s, opt)
	if verr != nil {
		r.err = &pipeline.Reject{Path: verr.Path, Reason: verr.Reason}
		return
	}
	_ = c
	r.buf.Text(clean)
}

// Int2 writes a smallint the transform computed (an enum code).
func (r *Row) Int2(v int16) {
	if _, ok := r.next(); ok {
		mark := r.buf.BeginCell()
		r.buf.Data = AppendInt2(r.buf.Data, v)
		r.buf.EndCell(mark)
	}
}

// Int4 writes an integer the transform computed (an ordinal).
func (r *Row) Int4(v int32) {
	if _, ok := r.next(); ok {
		mark := r.buf.BeginCell()
		r.buf.Data = AppendInt4(r.buf.Data, v)
		r.buf.EndCell(mark)
	}
}

// Value writes a BSON value into the next column by the column's type; a missing value (the
// zero RawValue) or null is NULL.
func (r *Row) Value(v bson.RawValue, path string) {
	c, ok := r.next()
	if !ok {
		return
	}
	r.write(c, v, path, r.opt)
}

// ValueWith is Value with column-specific options (DateAsString, NumberAsString, SortArray).
func (r *Row) ValueWith(v bson.RawValue, path string, opt Options) {
	c, ok := r.next()
	if !ok {
		return
	}
	opt.FixStrings, opt.Fixed = r.opt.FixStrings, r.opt.Fixed
	r.write(c, v, path, opt)
}

func (r *Row) write(c pipeline.Column, v bson.RawValue, path string, opt Options) {
	opt.Path = path
	mark := r.buf.BeginCell()
	out, null, verr := AppendColumn(r.buf.Data, c.Type, v, opt)
	if verr != nil {
		r.buf.Data = out[:mark-5]
		r.buf.Rows[len(r.buf.Rows)-1].Cells--
		r.err = &pipeline.Reject{Path: verr.Path, Reason: "column " + c.Name + ": " + verr.Reason}
		return
	}
	if null {
		// Undo the begun cell and write NULL instead.
		r.buf.Data = out[:mark-5]
		r.buf.Rows[len(r.buf.Rows)-1].Cells--
		r.i--
		r.Null(path)
		return
	}
	r.buf.Data = out
	r.buf.EndCell(mark)
}

// Field writes the value at a dotted path of doc into the next column.
func (r *Row) Field(doc bson.Raw, path string) {
	v, _ := Lookup(doc, path)
	r.Value(v, path)
}

// End closes the row and returns its first fault, if any. On a fault the caller returns the
// reject; the pipeline discards everything the document wrote.
func (r *Row) End() *pipeline.Reject {
	if r.err != nil {
		return r.err
	}
	if r.i != len(r.cols) {
		return &pipeline.Reject{Reason: fmt.Sprintf("internal: table %s has %d columns, the transform wrote %d", r.tbl.FullName(), len(r.cols), r.i)}
	}
	r.buf.EndRow()
	return nil
}

// Lookup finds a dotted path in doc; ok is false when any part is missing.
func Lookup(doc bson.Raw, path string) (bson.RawValue, bool) {
	return bsonpath.Path(doc, path)
}

// StringField reads a string at path; ok is false when missing, null or not a string.
func StringField(doc bson.Raw, path string) (string, bool) {
	v, ok := Lookup(doc, path)
	if !ok {
		return "", false
	}
	return v.StringValueOK()
}
