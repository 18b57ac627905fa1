package excititor

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// asOf is every test's run as-of; rawCutoff is vex.raw's window edge (inclusive).
var (
	asOf      = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rawCutoff = asOf.Add(-RawWindowDays * 24 * time.Hour)
)

// Identity, computed here from RFC 9562 and mapping.md, not through the package's helpers.
var (
	urlNamespace = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	testNS       = testUUID5(urlNamespace, "urn:stellaops:convert:excititor")
)

func testUUID5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// wantID is the row id of a document of coll with canonical _id canon.
func wantID(coll, canon string) [16]byte { return testUUID5(testNS, coll+":"+canon) }

func uuidText(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Expected cells in the row encoding's value form; NULL is a sentinel no value can equal.
const NULL = "\x00<NULL>"

func cu(coll, canon string) string { u := wantID(coll, canon); return string(u[:]) }
func cts(t time.Time) string {
	us := t.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()
	return string(binary.BigEndian.AppendUint64(nil, uint64(us)))
}
func ci4(i int32) string { return string(binary.BigEndian.AppendUint32(nil, uint32(i))) }

// carr is a one-dimensional text[] in array_send format; elements equal to NULL are NULL.
func carr(elems ...string) string {
	var b []byte
	be := func(i int) { b = binary.BigEndian.AppendUint32(b, uint32(int32(i))) }
	if len(elems) == 0 {
		be(0)
		be(0)
		be(25)
		return string(b)
	}
	hasNull := 0
	for _, e := range elems {
		if e == NULL {
			hasNull = 1
		}
	}
	be(1)
	be(hasNull)
	be(25)
	be(len(elems))
	be(1)
	for _, e := range elems {
		if e == NULL {
			be(-1)
			continue
		}
		be(len(e))
		b = append(b, e...)
	}
	return string(b)
}

type row struct {
	table string
	cells []string
}

func (r row) String() string {
	var parts []string
	for _, c := range r.cells {
		parts = append(parts, fmt.Sprintf("%q", c))
	}
	return r.table + "(" + strings.Join(parts, ", ") + ")"
}

// newTransform builds the collection's transform as a run would, at asOf.
func newTransform(t testing.TB, coll string, opt transforms.Options) pipeline.Transform {
	t.Helper()
	for _, c := range Module().Collections {
		if c.Name == coll {
			return c.New(transforms.Env{Module: ModuleName, Collection: c.Name, Filter: c.Tier.Bind(asOf), Options: opt})
		}
	}
	t.Fatalf("no collection %s", coll)
	return nil
}

// prepared is newTransform with its key pass run over docs; obs are the loaded observations
// (uuid text, tenant) that vex.observations' query returns.
func prepared(t testing.TB, coll string, opt transforms.Options, docs []bson.Raw, obs [][2]string) pipeline.Transform {
	t.Helper()
	tr := newTransform(t, coll, opt)
	p, ok := tr.(pipeline.Preparer)
	if !ok {
		return tr
	}
	if err := p.Prepare(context.Background(), keyPass(docs, obs)); err != nil {
		t.Fatal(err)
	}
	return tr
}

func keyPass(docs []bson.Raw, obs [][2]string) pipeline.KeyPass {
	return pipeline.KeyPass{
		Scan: func(fn func(bson.Raw) error) error {
			for _, d := range docs {
				if err := fn(d); err != nil {
					return err
				}
			}
			return nil
		},
		Query: func(sql string, fn func([]*string) error) error {
			if sql != observationsQuery {
				return fmt.Errorf("unexpected query %q", sql)
			}
			for _, o := range obs {
				id, tenant := o[0], o[1]
				if err := fn([]*string{&id, &tenant}); err != nil {
					return err
				}
			}
			return nil
		},
		Exec: func(string) error { return nil },
	}
}

// apply maps one document and returns its verdict and rows (none unless it loads).
func apply(tr pipeline.Transform, doc bson.Raw) (pipeline.Verdict, []row) {
	var buf pipeline.RowBuffer
	buf.Reset()
	v := tr.Apply(doc, &buf)
	if v.Skip != "" || v.Reject != nil {
		return v, nil
	}
	var rows []row
	for _, r := range buf.Rows {
		var cells []string
		_ = pipeline.ForEachCell(buf.RowBytes(r), func(_ int, val []byte, null bool) error {
			if null {
				cells = append(cells, NULL)
			} else {
				cells = append(cells, string(val))
			}
			return nil
		})
		rows = append(rows, row{table: tr.Tables()[r.Table].Name, cells: cells})
	}
	return v, rows
}

// outcome is a verdict in one comparable line.
func outcome(v pipeline.Verdict) string {
	switch {
	case v.Reject != nil:
		return "reject " + v.Reject.Path + ": " + v.Reject.Reason
	case v.Skip != "":
		return "skip " + v.Skip
	}
	return "load"
}

// outcomes applies every document and maps canonical _id → outcome.
func outcomes(tr pipeline.Transform, docs []bson.Raw) map[string]string {
	out := map[string]string{}
	for _, d := range docs {
		v, _ := apply(tr, d)
		id := "<unreadable>"
		if v.ID != nil {
			id = *v.ID
		}
		out[id] = outcome(v)
	}
	return out
}

func mk(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oid is a deterministic ObjectId whose order follows n.
func oid(n byte) bson.ObjectID {
	return bson.ObjectID{0x65, 0xf0, 0xc0, 0xff, 0xee, 0, 0, 0, 0, 0, 0, n}
}

func checkRows(t *testing.T, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rows:\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i].table != want[i].table || len(got[i].cells) != len(want[i].cells) {
			t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
		}
		for j := range want[i].cells {
			if got[i].cells[j] != want[i].cells[j] {
				t.Errorf("row %d (%s) cell %d:\n got %q\nwant %q", i, want[i].table, j, got[i].cells[j], want[i].cells[j])
			}
		}
	}
}

// reversed returns docs in the opposite order (key-pass decisions must not depend on it).
func reversed(docs []bson.Raw) []bson.Raw {
	out := make([]bson.Raw, len(docs))
	for i, d := range docs {
		out[len(docs)-1-i] = d
	}
	return out
}
