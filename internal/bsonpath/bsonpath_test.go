package bsonpath

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sample holds one field of every BSON type, nested documents and arrays.
func sample(t testing.TB) []byte {
	return mustMarshal(t, bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "d", Value: 1.5}, {Key: "s", Value: "text"}, {Key: "bin", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{Key: "u", Value: bson.Undefined{}}, {Key: "b", Value: true}, {Key: "dt", Value: bson.DateTime(1700000000000)},
		{Key: "n", Value: nil}, {Key: "re", Value: bson.Regex{Pattern: "a.*b", Options: "i"}},
		{Key: "dbp", Value: bson.DBPointer{DB: "db.c", Pointer: bson.NewObjectID()}}, {Key: "js", Value: bson.JavaScript("f()")},
		{Key: "sym", Value: bson.Symbol("x")}, {Key: "cws", Value: bson.CodeWithScope{Code: "g()", Scope: bson.D{{Key: "a", Value: 1}}}},
		{Key: "i", Value: int32(7)}, {Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "l", Value: int64(9)},
		{Key: "dec", Value: bson.NewDecimal128(1, 2)}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
		{Key: "stats", Value: bson.D{{Key: "completed", Value: int32(3)}, {Key: "deep", Value: bson.D{{Key: "x", Value: "y"}}}}},
		{Key: "arr", Value: bson.A{"zero", bson.D{{Key: "k", Value: int32(1)}}}},
		{Key: "", Value: "empty key"},
	})
}

// TestAgreesWithDriver compares every lookup with the driver's LookupErr, the reference.
func TestAgreesWithDriver(t *testing.T) {
	doc := sample(t)
	paths := []string{"_id", "d", "s", "bin", "u", "b", "dt", "n", "re", "dbp", "js", "sym", "cws", "i", "ts", "l", "dec",
		"min", "max", "stats", "arr", "", "missing", "stats.completed", "stats.deep.x", "stats.nope", "arr.0", "arr.1.k",
		"arr.2", "s.x", "stats.deep.x.y"}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			want, werr := bson.Raw(doc).LookupErr(strings.Split(p, ".")...)
			got, ok := Path(doc, p)
			if ok != (werr == nil) || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
				t.Fatalf("Path(%q) = %v %x, %v; driver: %v %x, %v", p, got.Type, got.Value, ok, want.Type, want.Value, werr)
			}
		})
	}
}

// TestCursorOrder reads the fields in several orders through one cursor: every answer equals
// Top's.
func TestCursorOrder(t *testing.T) {
	doc := sample(t)
	orders := [][]string{
		{"_id", "d", "s", "i", "stats", "arr"},
		{"arr", "stats", "i", "s", "d", "_id"},
		{"s", "missing", "s", "n", "_id", "max", "d", "", "missing"},
	}
	for _, keys := range orders {
		c := NewCursor(doc)
		for _, k := range keys {
			want, wok := Top(doc, k)
			got, ok := c.Get(k)
			if ok != wok || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
				t.Fatalf("order %v, key %q: cursor %v %x %v, Top %v %x %v", keys, k, got.Type, got.Value, ok, want.Type, want.Value, wok)
			}
		}
	}
}

// TestCursorWide reads a document with more fields than the cursor indexes, in an order that
// jumps back and forth.
func TestCursorWide(t *testing.T) {
	var d bson.D
	for i := 0; i < 3*cursorEntries; i++ {
		d = append(d, bson.E{Key: fmt.Sprintf("k%d", i), Value: int32(i)})
	}
	doc := mustMarshal(t, d)
	c := NewCursor(doc)
	for _, i := range []int{0, 90, 5, 40, 31, 32, 33, 95, 96, 1, 64} {
		k := fmt.Sprintf("k%d", i)
		want, wok := Top(doc, k)
		got, ok := c.Get(k)
		if ok != wok || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("key %q: cursor %v %x %v, Top %v %x %v", k, got.Type, got.Value, ok, want.Type, want.Value, wok)
		}
	}
}

// TestMalformed: broken framing or elements are "not found", never a panic.
func TestMalformed(t *testing.T) {
	doc := sample(t)
	cases := map[string][]byte{
		"empty":         nil,
		"short":         {5, 0, 0},
		"length lies":   append([]byte{0xff, 0, 0, 0}, doc[4:]...),
		"truncated":     doc[:len(doc)/2],
		"no key NUL":    {9, 0, 0, 0, 2, 'a', 'b', 'c', 0},
		"string length": {14, 0, 0, 0, 2, 'a', 0, 0x7f, 0, 0, 0, 'x', 0, 0},
		"unknown type":  {12, 0, 0, 0, 0x42, 'a', 0, 1, 2, 3, 4, 0},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, ok := Path(b, "a"); ok {
				t.Errorf("found a in malformed %x", b)
			}
			c := NewCursor(b)
			if _, ok := c.Get("s"); ok && !bytes.Equal(b, doc) {
				t.Logf("cursor found s in %x", b)
			}
		})
	}
}

// FuzzPath: on any input Path and the cursor never panic; what Path finds, the driver finds
// too (it is more lenient: it reads past a document's declared length and lets an embedded
// document's terminator double as its last value's); and on a document the driver writes
// itself, Path agrees with LookupErr exactly, found or not.
func FuzzPath(f *testing.F) {
	f.Add(sample(f), "stats.completed")
	f.Add(sample(f), "arr.1.k")
	f.Add(mustMarshal(f, bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: int32(1)}}}}), "a.b")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		got, ok := Path(doc, path)
		c := NewCursor(doc)
		c.Get("a")
		c.Get(path)
		keys := strings.Split(path, ".")
		if ok {
			want, werr := bson.Raw(doc).LookupErr(keys...)
			if werr != nil || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
				t.Fatalf("Path(%q) = %v %x; driver %v %x, %v", path, got.Type, got.Value, want.Type, want.Value, werr)
			}
		}
		var d bson.D
		if bson.Unmarshal(doc, &d) != nil {
			return
		}
		clean, err := bson.Marshal(d)
		if err != nil {
			return
		}
		seen, dup := map[string]bool{}, false
		for _, e := range d {
			dup = dup || seen[e.Key]
			seen[e.Key] = true
		}
		if dup {
			return // a cursor answers one of the duplicates (strict reading refuses them first)
		}
		cc := NewCursor(clean)
		cv, cok := cc.Get(path)
		tv, tok := Top(clean, path)
		if cok != tok || cv.Type != tv.Type || !bytes.Equal(cv.Value, tv.Value) {
			t.Fatalf("re-marshalled: cursor Get(%q) = %v %v, Top %v %v", path, cv.Type, cok, tv.Type, tok)
		}
		got, ok = Path(clean, path)
		want, werr := bson.Raw(clean).LookupErr(keys...)
		if ok != (werr == nil) || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("re-marshalled: Path(%q) = %v %x %v; driver %v %x, %v", path, got.Type, got.Value, ok, want.Type, want.Value, werr)
		}
	})
}
