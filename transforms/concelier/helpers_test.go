package concelier

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

var asOf = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// ---- expected values, computed here from the spec rather than by the code under test

// v5 is the RFC 9562 UUIDv5 of name in ns, written out independently of package transforms.
func v5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

var nsURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// rowID is mapping.md's id: UUIDv5(UUIDv5(URL, "urn:stellaops:convert:concelier"), "<coll>:<canonical _id>").
func rowID(coll, canonical string) [16]byte {
	return v5(v5(nsURL, "urn:stellaops:convert:concelier"), coll+":"+canonical)
}

func uuidText(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Cell encodings (pipeline.RowBuffer: binary send format; jsonb and numeric as text).
func cUUID(u [16]byte) []byte { return u[:] }
func cText(s string) []byte   { return []byte(s) }
func cInt4(i int32) []byte    { return binary.BigEndian.AppendUint32(nil, uint32(i)) }
func cBool(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}
func cTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro()-946684800000000))
}
func cTexts(ss ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	if len(ss) == 0 {
		b = binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		return binary.BigEndian.AppendUint32(b, 25)
	}
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 25)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ss)))
	b = binary.BigEndian.AppendUint32(b, 1)
	for _, s := range ss {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// null marks an expected NULL cell.
var null []byte

func oid(n int) bson.ObjectID {
	var o bson.ObjectID
	o[0] = 0x65
	binary.BigEndian.PutUint32(o[8:], uint32(n))
	return o
}

func doc(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- driving a collection's transform as a run does: Prepare over every document, then Apply

func build(t testing.TB, coll string, opt transforms.Options) pipeline.Transform {
	t.Helper()
	for _, c := range Module().Collections {
		if c.Name == coll {
			return c.New(transforms.Env{Module: Name, Collection: coll, Filter: c.Tier.Bind(asOf), Options: opt})
		}
	}
	t.Fatalf("no collection %s", coll)
	return nil
}

func keyPass(docs []bson.Raw, parents map[string][16]byte) pipeline.KeyPass {
	return pipeline.KeyPass{
		Scan: func(fn func(bson.Raw) error) error {
			for _, d := range docs {
				if err := fn(d); err != nil {
					return err
				}
			}
			return nil
		},
		Query: func(_ string, fn func([]*string) error) error {
			for k, id := range parents {
				key, s := k, uuidText(id)
				if err := fn([]*string{&key, &s}); err != nil {
					return err
				}
			}
			return nil
		},
		Exec: func(string) error { return nil },
	}
}

type row struct {
	table string
	cells [][]byte
}

type outcome struct {
	v    pipeline.Verdict
	rows []row
}

// convert prepares the collection over docs, then applies each document, as a run would.
func convert(t testing.TB, coll string, opt transforms.Options, parents map[string][16]byte, docs ...bson.Raw) []outcome {
	t.Helper()
	tr := build(t, coll, opt)
	if p, ok := tr.(pipeline.Preparer); ok {
		if err := p.Prepare(t.Context(), keyPass(docs, parents)); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]outcome, len(docs))
	for i, d := range docs {
		var buf pipeline.RowBuffer
		buf.Reset()
		out[i].v = tr.Apply(d, &buf)
		if out[i].v.Reject != nil || out[i].v.Skip != "" {
			continue
		}
		for _, r := range buf.Rows {
			var cells [][]byte
			err := pipeline.ForEachCell(buf.RowBytes(r), func(_ int, v []byte, isNull bool) error {
				if isNull {
					cells = append(cells, nil)
				} else {
					cells = append(cells, append([]byte{}, v...))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			out[i].rows = append(out[i].rows, row{table: tr.Tables()[r.Table].Name, cells: cells})
		}
	}
	return out
}

func rejectOf(o outcome) string {
	if o.v.Reject == nil {
		return ""
	}
	return o.v.Reject.Path + ": " + o.v.Reject.Reason
}

func checkRow(t testing.TB, what string, got row, table string, want ...[]byte) {
	t.Helper()
	if got.table != table {
		t.Errorf("%s: row of %s, want %s", what, got.table, table)
		return
	}
	if len(got.cells) != len(want) {
		t.Errorf("%s: %d cells, want %d", what, len(got.cells), len(want))
		return
	}
	for i := range want {
		if (want[i] == nil) != (got.cells[i] == nil) || string(want[i]) != string(got.cells[i]) {
			t.Errorf("%s: %s cell %d = %s, want %s", what, table, i, show(got.cells[i]), show(want[i]))
		}
	}
}

func show(b []byte) string {
	if b == nil {
		return "NULL"
	}
	if isPrint(b) {
		return fmt.Sprintf("%q", b)
	}
	return hex.EncodeToString(b)
}

func isPrint(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return len(b) > 0
}

// shuffled returns docs in a random order: decisions must not depend on it.
func shuffled(seed uint64, docs []bson.Raw) []bson.Raw {
	out := append([]bson.Raw(nil), docs...)
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func tables(o outcome) string {
	var names []string
	for _, r := range o.rows {
		names = append(names, r.table)
	}
	return strings.Join(names, ",")
}

func prepareOrFail(t testing.TB, tr pipeline.Transform, docs []bson.Raw) {
	t.Helper()
	if err := tr.(pipeline.Preparer).Prepare(t.Context(), keyPass(docs, nil)); err != nil {
		t.Fatal(err)
	}
}

func applyOne(tr pipeline.Transform, d bson.Raw) outcome {
	var buf pipeline.RowBuffer
	buf.Reset()
	return outcome{v: tr.Apply(d, &buf)}
}
