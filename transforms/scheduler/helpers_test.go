package scheduler

import (
	"bytes"
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

// asOf is the run's as-of in every test.
var asOf = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// ---- ids computed independently of the code under test (mapping.md, Identity) ----

func uuidV5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// nsURL is RFC 4122's URL namespace.
var nsURL = func() [16]byte {
	b, _ := hex.DecodeString("6ba7b8119dad11d180b400c04fd430c8")
	var u [16]byte
	copy(u[:], b)
	return u
}()

var schedulerNS = uuidV5(nsURL, "urn:stellaops:convert:scheduler")

// idOf is the row id of a document of coll with canonical _id canonical.
func idOf(coll, canonical string) [16]byte { return uuidV5(schedulerNS, coll+":"+canonical) }

func uuidText(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- expected cells in checksum encoding (binary send format; jsonb as text) ----

type cell []byte // nil is NULL

func cUUID(u [16]byte) cell { return cell(u[:]) }
func cText(s string) cell   { return cell(s) }
func cJSON(s string) cell   { return cell(s) }
func cBool(b bool) cell {
	if b {
		return cell{1}
	}
	return cell{0}
}
func cInt2(i int16) cell { return binary.BigEndian.AppendUint16(nil, uint16(i)) }
func cInt4(i int32) cell { return binary.BigEndian.AppendUint32(nil, uint32(i)) }
func cTime(t time.Time) cell {
	us := t.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()
	return binary.BigEndian.AppendUint64(nil, uint64(us))
}

// ---- documents ----

func mk(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// set returns d with key set to v (appended when absent); a nil v is BSON null.
func set(d bson.D, key string, v any) bson.D {
	out := append(bson.D(nil), d...)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = v
			return out
		}
	}
	return append(out, bson.E{Key: key, Value: v})
}

// del returns d without key.
func del(d bson.D, key string) bson.D {
	var out bson.D
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

func dt(t time.Time) bson.DateTime { return bson.NewDateTimeFromTime(t) }

// ---- running a collection's transform ----

func collectionSpec(t testing.TB, name string) transforms.Collection {
	t.Helper()
	for _, c := range Module().Collections {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no collection %s", name)
	return transforms.Collection{}
}

func newTransform(t testing.TB, name string, opt transforms.Options) pipeline.Transform {
	t.Helper()
	c := collectionSpec(t, name)
	return c.New(transforms.Env{Module: Name, Collection: name, Filter: c.Tier.Bind(asOf), Options: opt})
}

// keyPass runs Prepare over docs with the given schedules (id text, tenant) as the loaded
// parents and returns the DDL it executed.
func keyPass(t testing.TB, tr pipeline.Transform, docs []bson.Raw, schedules [][2]string) []string {
	t.Helper()
	p, ok := tr.(pipeline.Preparer)
	if !ok {
		t.Fatal("transform is no Preparer")
	}
	var ddl []string
	kp := pipeline.KeyPass{
		Scan: func(fn func(bson.Raw) error) error {
			for _, d := range docs {
				if err := fn(d); err != nil {
					return err
				}
			}
			return nil
		},
		Query: func(sql string, fn func([]*string) error) error {
			if !strings.Contains(sql, "scheduler.schedules") {
				return fmt.Errorf("unexpected query %q", sql)
			}
			for _, s := range schedules {
				id, tenant := s[0], s[1]
				if err := fn([]*string{&id, &tenant}); err != nil {
					return err
				}
			}
			return nil
		},
		Exec: func(sql string) error { ddl = append(ddl, sql); return nil },
	}
	if err := p.Prepare(context.Background(), kp); err != nil {
		t.Fatal(err)
	}
	return ddl
}

// result is one document's outcome: its verdict and, when loaded, its row's cells.
type result struct {
	v     pipeline.Verdict
	cells []cell
	rows  int
}

func apply(t testing.TB, tr pipeline.Transform, doc bson.Raw) result {
	t.Helper()
	var buf pipeline.RowBuffer
	buf.Reset()
	v := tr.Apply(doc, &buf)
	res := result{v: v, rows: len(buf.Rows)}
	if v.Skip != "" || v.Reject != nil {
		return res
	}
	if len(buf.Rows) != 1 {
		t.Fatalf("loaded document wrote %d rows, want 1", len(buf.Rows))
	}
	err := pipeline.ForEachCell(buf.RowBytes(buf.Rows[0]), func(_ int, v []byte, null bool) error {
		if null {
			res.cells = append(res.cells, nil)
		} else {
			res.cells = append(res.cells, append(cell{}, v...))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// outcome is what a case expects: skip reason, or reject path and reason, or the cells.
type outcome struct {
	skip   string
	path   string
	reason string
	cells  []cell
	fixed  int
}

func check(t *testing.T, name string, got result, want outcome) {
	t.Helper()
	switch {
	case want.skip != "":
		if got.v.Skip != want.skip {
			t.Errorf("%s: skip = %q, reject = %v; want skip %q", name, got.v.Skip, got.v.Reject, want.skip)
		}
	case want.reason != "":
		if got.v.Reject == nil {
			t.Errorf("%s: not rejected (skip %q); want %s: %s", name, got.v.Skip, want.path, want.reason)
			return
		}
		if got.v.Reject.Path != want.path || got.v.Reject.Reason != want.reason {
			t.Errorf("%s: reject %q: %q; want %q: %q", name, got.v.Reject.Path, got.v.Reject.Reason, want.path, want.reason)
		}
	default:
		if got.v.Skip != "" || got.v.Reject != nil {
			t.Errorf("%s: skip %q, reject %v; want loaded", name, got.v.Skip, got.v.Reject)
			return
		}
		if len(got.cells) != len(want.cells) {
			t.Errorf("%s: %d cells, want %d", name, len(got.cells), len(want.cells))
			return
		}
		for i := range want.cells {
			if (got.cells[i] == nil) != (want.cells[i] == nil) || !bytes.Equal(got.cells[i], want.cells[i]) {
				t.Errorf("%s: cell %d = %s, want %s", name, i, show(got.cells[i]), show(want.cells[i]))
			}
		}
		if got.v.StringsFixed != want.fixed {
			t.Errorf("%s: strings fixed = %d, want %d", name, got.v.StringsFixed, want.fixed)
		}
	}
}

func show(c cell) string {
	if c == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", []byte(c))
}

func dec(t testing.TB, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
