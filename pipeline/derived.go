package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/stellaops/convert/manifests"
)

// Derived rows (Table.Derived) are shared: several documents, batches and workers produce the
// same row, and the target ends with one row per fold key, merged by the table's conflict
// rules. Those rules are declared once on the Table (ConflictKey, Least); the sink turns them
// into SQL (ConflictAction) and DerivedRows applies them in memory, so verify recomputes the
// rows the target must hold from the documents alone (cli.md, Verify) and a delta rebuild folds
// what it staged the same way.

// ConflictAction is the ON CONFLICT clause the sink inserts a derived table's rows with: on the
// conflict key, the Least columns keep the least non-NULL value (SQL least() ignores NULL);
// without Least columns any conflict leaves the row in place (DO NOTHING).
func (t Table) ConflictAction() string {
	if len(t.Least) == 0 {
		return "DO NOTHING"
	}
	key := make([]string, len(t.FoldKey()))
	for i, k := range t.FoldKey() {
		key[i] = QuoteIdent(k)
	}
	set := make([]string, len(t.Least))
	for i, c := range t.Least {
		q := QuoteIdent(c)
		set[i] = q + " = least(" + t.Ident() + "." + q + ", EXCLUDED." + q + ")"
	}
	return "(" + strings.Join(key, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// FoldKey names the columns whose values make derived rows one row: ConflictKey, else the
// primary key, else every written column.
func (t Table) FoldKey() []string {
	if len(t.ConflictKey) > 0 {
		return t.ConflictKey
	}
	if len(t.PrimaryKey) > 0 {
		return t.PrimaryKey
	}
	cols := t.Written()
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// DerivedRows folds derived rows, in checksum encoding (RowBuffer), into the rows the target
// holds once every one of them is inserted with the table's ConflictAction, in any order and
// any grouping into batches: rows sharing the fold key become one, whose Least columns hold
// the least non-NULL value of all of them. Every other column is taken from the row whose
// cells are bytewise least, so the result never depends on the order rows come in. (The sink
// keeps whichever row committed first there; the module's derived rows that share a key agree
// on those columns, their ids being derived from the key.) Not safe for concurrent use.
type DerivedRows struct {
	tables []Table
	byName map[string]*foldedTable
}

type foldedTable struct {
	t     Table
	cols  []Column
	key   []int        // written-column positions of the fold key
	least map[int]bool // written-column positions of the Least columns
	rows  map[string][][]byte
}

func (d *DerivedRows) table(t Table) (*foldedTable, error) {
	if ft, ok := d.byName[t.FullName()]; ok {
		return ft, nil
	}
	ft := &foldedTable{t: t, cols: t.Written(), least: map[int]bool{}, rows: map[string][][]byte{}}
	pos := func(name string) (int, error) {
		for i, c := range ft.cols {
			if c.Name == name {
				return i, nil
			}
		}
		return 0, fmt.Errorf("derived %s: no written column %s", t.FullName(), name)
	}
	for _, k := range t.FoldKey() {
		i, err := pos(k)
		if err != nil {
			return nil, err
		}
		ft.key = append(ft.key, i)
	}
	for _, c := range t.Least {
		i, err := pos(c)
		if err != nil {
			return nil, err
		}
		if _, ok := leastOrder[ft.cols[i].Type]; !ok {
			return nil, fmt.Errorf("derived %s: least() of column %s (%s) has no ordering the fold reproduces", t.FullName(), c, ft.cols[i].Type.SQL())
		}
		ft.least[i] = true
	}
	if d.byName == nil {
		d.byName = map[string]*foldedTable{}
	}
	d.byName[t.FullName()] = ft
	d.tables = append(d.tables, t)
	return ft, nil
}

// Add folds one row of derived table t (row is copied).
func (d *DerivedRows) Add(t Table, row []byte) error {
	ft, err := d.table(t)
	if err != nil {
		return err
	}
	cells, err := splitCells(row, len(ft.cols))
	if err != nil {
		return fmt.Errorf("derived %s: %w", t.FullName(), err)
	}
	var key []byte
	for _, i := range ft.key {
		key = appendCell(key, cells[i])
	}
	have, ok := ft.rows[string(key)]
	if !ok {
		kept := make([][]byte, len(cells))
		for i, c := range cells {
			kept[i] = bytes.Clone(c)
		}
		ft.rows[string(key)] = kept
		return nil
	}
	// The non-key, non-Least cells of the bytewise least row win as a whole.
	if compareOthers(ft, cells, have) < 0 {
		for i := range have {
			if !ft.least[i] {
				have[i] = bytes.Clone(cells[i])
			}
		}
	}
	for i := range ft.least {
		if cells[i] != nil && len(cells[i]) != leastOrder[ft.cols[i].Type] {
			return fmt.Errorf("derived %s: column %s holds %d bytes, not a %s", t.FullName(), ft.cols[i].Name, len(cells[i]), ft.cols[i].Type.SQL())
		}
		if lessCell(cells[i], have[i]) {
			have[i] = bytes.Clone(cells[i])
		}
	}
	return nil
}

// Tables lists the tables rows were added to, in the order first seen.
func (d *DerivedRows) Tables() []Table { return d.tables }

// Rows calls fn for every folded row of t in checksum encoding, in fold-key order.
func (d *DerivedRows) Rows(t Table, fn func(row []byte) error) error {
	ft := d.byName[t.FullName()]
	if ft == nil {
		return nil
	}
	keys := make([]string, 0, len(ft.rows))
	for k := range ft.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var row []byte
	for _, k := range keys {
		row = row[:0]
		for _, c := range ft.rows[k] {
			row = appendCell(row, c)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// Sum is t's table checksum over its folded rows (mapping.md, Checksums).
func (d *DerivedRows) Sum(t Table) manifests.TableSum {
	var s manifests.TableSum
	name := t.FullName()
	_ = d.Rows(t, func(row []byte) error {
		s.Add(manifests.RowDigest(name, row))
		return nil
	})
	return s
}

// splitCells cuts a row into its n cells: nil for NULL, else the value (possibly empty).
func splitCells(row []byte, n int) ([][]byte, error) {
	cells := make([][]byte, 0, n)
	err := ForEachCell(row, func(_ int, v []byte, null bool) error {
		if null {
			cells = append(cells, nil)
		} else {
			cells = append(cells, append([]byte{}, v...))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cells) != n {
		return nil, fmt.Errorf("row has %d cells, the table %d columns", len(cells), n)
	}
	return cells, nil
}

// appendCell appends a cell in checksum encoding.
func appendCell(dst, v []byte) []byte {
	if v == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...)
}

// compareOthers orders two rows by their cells outside the fold key and the Least columns.
func compareOthers(ft *foldedTable, a, b [][]byte) int {
	for i := range a {
		if ft.least[i] {
			continue
		}
		if c := bytes.Compare(appendCell(nil, a[i]), appendCell(nil, b[i])); c != 0 {
			return c
		}
	}
	return 0
}

// leastOrder lists the column types whose binary send format the fold can order as PostgreSQL
// does: signed big-endian integers (timestamptz is microseconds since 2000).
var leastOrder = map[ColumnType]int{TypeInt2: 2, TypeInt4: 4, TypeInt8: 8, TypeTimestamptz: 8}

// lessCell: is a less than b as least() sees it (NULL is never less; anything is less than NULL).
func lessCell(a, b []byte) bool {
	if a == nil {
		return false
	}
	if b == nil {
		return true
	}
	return signedBE(a) < signedBE(b)
}

func signedBE(v []byte) int64 {
	switch len(v) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v)))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v)))
	case 8:
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
