package authority

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// asOf is the as-of of every test run.
var asOf = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// uuid5 computes mapping.md's ids independently of the package under test: UUIDv5 (RFC 9562)
// in the namespace UUIDv5(NameSpaceURL, "urn:stellaops:convert:authority").
func uuid5(name string) string {
	nsURL, _ := hex.DecodeString("6ba7b8119dad11d180b400c04fd430c8")
	sum := func(ns []byte, name string) []byte {
		h := sha1.Sum(append(append([]byte(nil), ns...), name...))
		u := h[:16]
		u[6] = u[6]&0x0f | 0x50
		u[8] = u[8]&0x3f | 0x80
		return u
	}
	u := sum(sum(nsURL, "urn:stellaops:convert:authority"), name)
	s := hex.EncodeToString(u)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func userUUID(hexID string) string { return uuid5("authority_users:" + hexID) }

// roleUUID is roles:["<tenant>","<name>"] for plain names (no JSON escaping needed).
func roleUUID(tenant, name string) string { return uuid5(`roles:["` + tenant + `","` + name + `"]`) }

func oid(s string) bson.ObjectID {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		panic(err)
	}
	return id
}

func dt(t time.Time) bson.DateTime { return bson.NewDateTimeFromTime(t) }

func marshal(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collection returns the module's collection spec by its default name.
func collection(t testing.TB, name string) transforms.Collection {
	t.Helper()
	for _, c := range Module().Collections {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no collection %s", name)
	return transforms.Collection{}
}

// fakeParents answers the key pass's parent queries: rows of (users.id, tenant_id) and
// (clients.client_id, tenant_id) as the target would print them.
type fakeParents struct {
	users   [][2]string
	clients [][2]string
}

func (f fakeParents) query(sql string, fn func([]*string) error) error {
	var rows [][2]string
	switch {
	case strings.Contains(sql, "authority.users"):
		rows = f.users
	case strings.Contains(sql, "authority.clients"):
		rows = f.clients
	default:
		return fmt.Errorf("unexpected query %q", sql)
	}
	for _, r := range rows {
		a, b := r[0], r[1]
		if err := fn([]*string{&a, &b}); err != nil {
			return err
		}
	}
	return nil
}

// harness is one collection's transform, prepared over docs as a run would.
type harness struct {
	t      *testing.T
	tr     pipeline.Transform
	tables []pipeline.Table
}

func newHarness(t *testing.T, name string, opt transforms.Options, parents fakeParents, docs ...bson.Raw) *harness {
	t.Helper()
	c := collection(t, name)
	tr := c.New(transforms.Env{Module: Name, Collection: name, Filter: c.Tier.Bind(asOf), Options: opt})
	p, ok := tr.(pipeline.Preparer)
	if !ok {
		t.Fatalf("%s: transform is no Preparer", name)
	}
	kp := pipeline.KeyPass{
		Scan: func(fn func(bson.Raw) error) error {
			for _, d := range docs {
				if err := fn(d); err != nil {
					return err
				}
			}
			return nil
		},
		Query: parents.query,
		Exec:  func(string) error { return nil },
	}
	if err := p.Prepare(context.Background(), kp); err != nil {
		t.Fatalf("%s: prepare: %v", name, err)
	}
	return &harness{t: t, tr: tr, tables: tr.Tables()}
}

// outcome is what Apply decided for one document, with its rows decoded per table.
type outcome struct {
	v    pipeline.Verdict
	rows map[string][][]any // table name (without schema) → rows of Go values
}

func (h *harness) apply(doc bson.Raw) outcome {
	h.t.Helper()
	var buf pipeline.RowBuffer
	buf.Reset()
	v := h.tr.Apply(doc, &buf)
	o := outcome{v: v, rows: map[string][][]any{}}
	if v.Skip != "" || v.Reject != nil {
		return o
	}
	for _, r := range buf.Rows {
		tb := h.tables[r.Table]
		o.rows[tb.Name] = append(o.rows[tb.Name], decodeRow(h.t, tb, buf.RowBytes(r)))
	}
	return o
}

// decodeRow turns a row's checksum encoding back into Go values: uuid → hyphenated string,
// text and jsonb → string, boolean → bool, timestamptz → time.Time (UTC), text[] → []any of
// string or nil; NULL → nil.
func decodeRow(t *testing.T, tb pipeline.Table, row []byte) []any {
	t.Helper()
	cols := tb.Written()
	var out []any
	err := pipeline.ForEachCell(row, func(i int, v []byte, null bool) error {
		if i >= len(cols) {
			return fmt.Errorf("cell %d past the %d columns", i, len(cols))
		}
		if null {
			out = append(out, nil)
			return nil
		}
		switch cols[i].Type {
		case pipeline.TypeUUID:
			var u [16]byte
			copy(u[:], v)
			out = append(out, transforms.FormatUUID(u))
		case pipeline.TypeText, pipeline.TypeJSONB:
			out = append(out, string(v))
		case pipeline.TypeBool:
			out = append(out, v[0] == 1)
		case pipeline.TypeTimestamptz:
			us := int64(binary.BigEndian.Uint64(v))
			out = append(out, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(us)*time.Microsecond))
		case pipeline.TypeTextArray:
			out = append(out, decodeTextArray(v))
		default:
			return fmt.Errorf("column %s: no decoder", cols[i].Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(cols) {
		t.Fatalf("%s: row has %d cells, table %d columns", tb.Name, len(out), len(cols))
	}
	return out
}

// decodeTextArray reads PostgreSQL's array_send of a one-dimensional text[].
func decodeTextArray(b []byte) []any {
	ndim := int(binary.BigEndian.Uint32(b))
	b = b[12:]
	out := []any{}
	if ndim == 0 {
		return out
	}
	n := int(binary.BigEndian.Uint32(b))
	b = b[8:]
	for range n {
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l < 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, string(b[:l]))
		b = b[l:]
	}
	return out
}

// rej is a reject's path and reason, for comparison.
type rej struct{ path, reason string }

func (o outcome) reject() *rej {
	if o.v.Reject == nil {
		return nil
	}
	return &rej{o.v.Reject.Path, o.v.Reject.Reason}
}

func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
