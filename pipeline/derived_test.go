package pipeline

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stellaops/convert/manifests"
)

// TestDerivedRowsFold: rows sharing the fold key become one whose Least columns hold the least
// non-NULL value, as numbers (not bytes); other columns come from the bytewise least row; the
// result is the same in every order the rows come in.
func TestDerivedRowsFold(t *testing.T) {
	tenants := Table{Schema: "a", Name: "tenants", PrimaryKey: []string{"tenant_id"}, Derived: true,
		ConflictKey: []string{"tenant_id"}, Least: []string{"created_at"},
		Columns: []Column{{Name: "tenant_id", Type: TypeText}, {Name: "created_at", Type: TypeTimestamptz}, {Name: "note", Type: TypeText}}}
	ts := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	row := func(tenant string, created []byte, note string) []byte {
		var b RowBuffer
		b.Reset()
		b.StartRow(0)
		b.Text(tenant)
		if created == nil {
			b.Null()
		} else {
			b.Cell(created)
		}
		b.Text(note)
		b.EndRow()
		return b.RowBytes(b.Rows[0])
	}
	sumOf := func(rows ...[]byte) manifests.TableSum {
		var s manifests.TableSum
		for _, r := range rows {
			s.Add(manifests.RowDigest(tenants.FullName(), r))
		}
		return s
	}
	for _, tc := range []struct {
		name string
		in   [][]byte
		want manifests.TableSum
	}{
		{"one row", [][]byte{row("t1", ts(5), "n")}, sumOf(row("t1", ts(5), "n"))},
		{"least, signed", [][]byte{row("t1", ts(7), "n"), row("t1", ts(-3), "n"), row("t1", ts(2), "n")}, sumOf(row("t1", ts(-3), "n"))},
		{"NULL never wins", [][]byte{row("t1", nil, "n"), row("t1", ts(9), "n"), row("t1", nil, "n")}, sumOf(row("t1", ts(9), "n"))},
		{"all NULL", [][]byte{row("t1", nil, "n"), row("t1", nil, "n")}, sumOf(row("t1", nil, "n"))},
		{"keys apart", [][]byte{row("t1", ts(1), "n"), row("t2", ts(2), "n")}, sumOf(row("t1", ts(1), "n"), row("t2", ts(2), "n"))},
		{"other columns: least row", [][]byte{row("t1", ts(1), "b"), row("t1", ts(4), "a")}, sumOf(row("t1", ts(1), "a"))},
	} {
		for _, reverse := range []bool{false, true} {
			var d DerivedRows
			for i := range tc.in {
				r := tc.in[i]
				if reverse {
					r = tc.in[len(tc.in)-1-i]
				}
				if err := d.Add(tenants, r); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			if got := d.Sum(tenants); got != tc.want {
				t.Errorf("%s (reverse %v): sum %+v, want %+v", tc.name, reverse, got, tc.want)
			}
		}
	}
}

// TestConflictAction: the SQL the sink inserts derived rows with, from the same declaration
// the fold reads; least() of a type whose order the fold cannot reproduce is refused.
func TestConflictAction(t *testing.T) {
	for _, tc := range []struct {
		name string
		tb   Table
		want string
	}{
		{"do nothing", Table{Schema: "a", Name: "roles", PrimaryKey: []string{"id"}}, "DO NOTHING"},
		{"least", Table{Schema: "a", Name: "tenants", ConflictKey: []string{"tenant_id"}, Least: []string{"created_at"}},
			`("tenant_id") DO UPDATE SET "created_at" = least("a"."tenants"."created_at", EXCLUDED."created_at")`},
	} {
		if got := tc.tb.ConflictAction(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	bad := Table{Schema: "a", Name: "t", ConflictKey: []string{"k"}, Least: []string{"v"},
		Columns: []Column{{Name: "k", Type: TypeText}, {Name: "v", Type: TypeText}}}
	var d DerivedRows
	if err := d.Add(bad, []byte{0, 0}); err == nil || !strings.Contains(err.Error(), "least()") {
		t.Errorf("least() of text: %v, want a refusal", err)
	}
}
