package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustUUID(t testing.TB, s string) [16]byte {
	t.Helper()
	u, ok := ParseUUID(s)
	if !ok {
		t.Fatalf("bad UUID %q", s)
	}
	return u
}

// The expected UUIDs come from implementations other than this one: RFC 4122's namespaces and
// the published uuid5(NAMESPACE_DNS, "python.org"), and Python's uuid.uuid5 for the rest
// (computed once when the test was written, e.g.
// python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, "urn:stellaops:convert:authority"))').
func TestUUIDv5KnownAnswers(t *testing.T) {
	nsDNS := mustUUID(t, "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if got := FormatUUID(UUIDv5(nsDNS, "python.org")); got != "886313e1-3b8a-5372-9b90-0c9aee199e5d" {
		t.Errorf("uuid5(DNS, python.org) = %s", got)
	}
	if FormatUUID(NameSpaceURL) != "6ba7b811-9dad-11d1-80b4-00c04fd430c8" {
		t.Errorf("NameSpaceURL = %s", FormatUUID(NameSpaceURL))
	}
	authority := ModuleNamespace("authority")
	if got := FormatUUID(authority); got != "96e66baa-2768-50a7-a49c-9aab7ff19b1b" {
		t.Errorf("ModuleNamespace(authority) = %s", got)
	}
	if got := FormatUUID(ModuleNamespace("generic")); got != "46e95185-57e1-52e5-966f-aa93ed3035c4" {
		t.Errorf("ModuleNamespace(generic) = %s", got)
	}

	oid, _ := bson.ObjectIDFromHex("65f0c0ffee0123456789abcd")
	rowCases := []struct {
		coll  string
		id    bson.RawValue
		canon string
		want  string
	}{
		{"authority_users", rawValue(t, oid), "65f0c0ffee0123456789abcd", "ee992cfd-ca72-5d0f-bcd2-0fdd73d4c86a"},
		{"authority_clients", rawValue(t, "cli-1"), "cli-1", "ea65ce1f-ad3e-56a7-90ca-31b7ddac0510"},
		{"authority_scopes", rawValue(t, int32(42)), `{"$numberInt":"42"}`, "9de6e086-f9c2-511e-84d6-f1d15b9c1e3e"},
	}
	for _, c := range rowCases {
		u, canon, err := RowID(authority, c.coll, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if canon != c.canon || FormatUUID(u) != c.want {
			t.Errorf("RowID(%s, %s) = %s %q, want %s %q", c.coll, c.id, FormatUUID(u), canon, c.want, c.canon)
		}
		if UUIDv5(authority, c.coll+":"+c.canon) != u {
			t.Errorf("RowID and UUIDv5 disagree for %s", c.coll)
		}
	}

	if got := FormatUUID(DerivedID(authority, "roles", "default", "admin")); got != "78376f6f-bd5a-557d-a9e5-e134f64ad295" {
		t.Errorf(`DerivedID(roles, default, admin) = %s`, got)
	}
	// Name roles:["a\"b\\c\n","é"].
	if got := FormatUUID(DerivedID(authority, "roles", "a\"b\\c\n", "é")); got != "6ba6c865-57d4-5659-b2bf-d189cba6f3f4" {
		t.Errorf("DerivedID with escapes = %s", got)
	}
}

// A long name goes past UUIDv5's stack buffer: still the same function.
func TestUUIDv5LongName(t *testing.T) {
	long := string(bytes.Repeat([]byte("n"), 1000))
	ns := ModuleNamespace("vuln")
	u1 := UUIDv5(ns, "coll:"+long)
	u2, _, err := RowID(ns, "coll", rawValue(t, long))
	if err != nil {
		t.Fatal(err)
	}
	if u1 != u2 {
		t.Fatal("long names disagree")
	}
}

// DerivedID's names are what encoding/json writes for the parts without HTML escaping.
func TestDerivedNameMatchesEncodingJSON(t *testing.T) {
	parts := []string{"", "plain", `q"b\s`, "<&>", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é€😀",
		"\u2028\u2029", "bad\xff\xc3(", "\xed\xa0\x80"}
	for _, p := range parts {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode([]string{p, "x"}); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		got := append([]byte{'['}, appendGoJSONString(nil, p)...)
		got = append(got, `,"x"]`...)
		if !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", p, got, want)
		}
		if DerivedID(NameSpaceURL, "t", p, "x") != UUIDv5(NameSpaceURL, "t:"+string(want)) {
			t.Errorf("%q: DerivedID differs from its name", p)
		}
	}
}

func TestCanonicalID(t *testing.T) {
	oid, _ := bson.ObjectIDFromHex("65F0C0FFEE0123456789ABCD")
	cases := []struct {
		v    bson.RawValue
		want string
	}{
		{rawValue(t, oid), "65f0c0ffee0123456789abcd"},
		{rawValue(t, "client id with spaces"), "client id with spaces"},
		{rawValue(t, ""), ""},
		{rawValue(t, int32(7)), `{"$numberInt":"7"}`},
		{rawValue(t, int64(-7)), `{"$numberLong":"-7"}`},
		{rawValue(t, 1.0), `{"$numberDouble":"1.0"}`},
		{rawValue(t, mustDecimal(t, "1.50")), `{"$numberDecimal":"1.50"}`},
		{rawValue(t, bson.DateTime(0)), `{"$date":{"$numberLong":"0"}}`},
		{rawValue(t, nil), `null`},
		{rawValue(t, true), `true`},
		{rawValue(t, bson.Binary{Subtype: 4, Data: make([]byte, 16)}), `{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}`},
		{rawValue(t, bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: "x y"}}), `{"b":{"$numberInt":"1"},"a":"x y"}`},
		{rawValue(t, bson.MinKey{}), `{"$minKey":1}`},
		{rawValue(t, "<&>"), "<&>"},
		{rawValue(t, bson.D{{Key: "s", Value: "<&>"}}), `{"s":"<&>"}`},
	}
	for _, c := range cases {
		got, err := CanonicalID(c.v)
		if err != nil {
			t.Errorf("%v: %v", c.v, err)
			continue
		}
		if got != c.want {
			t.Errorf("CanonicalID(%v) = %s, want %s", c.v, got, c.want)
		}
	}
	if _, err := CanonicalID(bson.RawValue{}); !errors.Is(err, ErrNoID) {
		t.Errorf("missing _id: %v", err)
	}
	if _, err := CanonicalID(bson.RawValue{Type: bson.TypeObjectID, Value: []byte{1}}); err == nil {
		t.Error("short ObjectId accepted")
	}
	if _, err := CanonicalID(bson.RawValue{Type: bson.TypeInt32, Value: []byte{1}}); err == nil {
		t.Error("short int32 accepted")
	}
}

func TestParseUUID(t *testing.T) {
	u, ok := ParseUUID("123E4567-e89b-12D3-A456-426614174000")
	if !ok || FormatUUID(u) != "123e4567-e89b-12d3-a456-426614174000" {
		t.Fatalf("got %v %s", ok, FormatUUID(u))
	}
	for _, bad := range []string{"", "123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g",
		"123e4567-e89b-12d3-a456_426614174000", "{123e4567-e89b-12d3-a456-426614174000}", "123e4567-e89b-12d3-a456-4266141740000"} {
		if _, ok := ParseUUID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func BenchmarkRowIDObjectID(b *testing.B) {
	oid, _ := bson.ObjectIDFromHex("65f0c0ffee0123456789abcd")
	id := rawValue(b, oid)
	ns := ModuleNamespace("authority")
	b.ReportAllocs()
	for b.Loop() {
		RowID(ns, "authority_users", id)
	}
}
