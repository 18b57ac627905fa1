package transforms

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

const everyTypeJSONB = `{"js": {"$code": "function(){}"}, ` +
	`"cws": {"$code": "x", "$scope": {"y": 1}}, "doc": {"a": 1}, "oid": "65f0c0ffee0123456789abcd", ` +
	`"bool": true, "date": "2025-11-28T10:11:12.345Z", "null": null, "uuid": "abababab-abab-abab-abab-abababababab", ` +
	`"array": ["x", 2, null], "int32": -7, "int64": 4611686018427387904, ` +
	`"regex": {"$regularExpression": {"options": "ix", "pattern": "^a.*b$"}}, ` +
	`"binary": {"$binary": {"base64": "AQID", "subType": "80"}}, "double": 1.5, "maxkey": {"$maxKey": 1}, ` +
	`"minkey": {"$minKey": 1}, "string": "héllo", "symbol": {"$symbol": "sym"}, "decimal": 1.50, ` +
	`"dbpointer": {"$dbPointer": {"$id": {"$oid": "65f0c0ffee0123456789abcd"}, "$ref": "db.coll"}}, ` +
	`"timestamp": {"$timestamp": {"i": 2, "t": 1}}, "undefined": {"$undefined": true}}`

func TestAppendJSONBEveryType(t *testing.T) {
	got, err := AppendJSONB([]byte("prefix:"), everyType(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "prefix:" + everyTypeJSONB; string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// jsonbValueCases are single values and the jsonb text PostgreSQL prints for them. The
// round-trip test sends each through a real server too.
func jsonbValueCases(t testing.TB) []struct {
	name string
	v    bson.RawValue
	want string
} {
	d := func(s string) bson.RawValue { return rawValue(t, mustDecimal(t, s)) }
	f := func(x float64) bson.RawValue { return rawValue(t, x) }
	date := func(ms int64) bson.RawValue { return rawValue(t, bson.DateTime(ms)) }
	bin := func(sub byte, data []byte) bson.RawValue { return rawValue(t, bson.Binary{Subtype: sub, Data: data}) }
	return []struct {
		name string
		v    bson.RawValue
		want string
	}{
		{"double 1.5", f(1.5), "1.5"},
		{"double 0.1", f(0.1), "0.1"},
		{"double 1e300", f(1e300), "1" + strings.Repeat("0", 300)},
		{"double 1e21", f(1e21), "1000000000000000000000"},
		{"double max", f(math.MaxFloat64), "179769313486231570" + strings.Repeat("0", 291)},
		{"double 5e-324", f(5e-324), "0." + strings.Repeat("0", 323) + "5"},
		{"double 2^63", f(9223372036854775808), "9223372036854776000"},
		{"double -0", f(math.Copysign(0, -1)), "0"},
		{"double 0", f(0), "0"},
		{"double -2.5e-7", f(-2.5e-7), "-0.00000025"},
		{"double NaN", f(math.NaN()), `{"$numberDouble": "NaN"}`},
		{"double +Inf", f(math.Inf(1)), `{"$numberDouble": "Infinity"}`},
		{"double -Inf", f(math.Inf(-1)), `{"$numberDouble": "-Infinity"}`},
		{"int32 min", rawValue(t, int32(math.MinInt32)), "-2147483648"},
		{"int64 max", rawValue(t, int64(math.MaxInt64)), "9223372036854775807"},
		{"int64 min", rawValue(t, int64(math.MinInt64)), "-9223372036854775808"},
		{"decimal 1.50", d("1.50"), "1.50"},
		{"decimal 1E+3", d("1E+3"), "1000"},
		{"decimal 1.0E+3", d("1.0E+3"), "1000"},
		{"decimal 1E-3", d("1E-3"), "0.001"},
		{"decimal -0", d("-0"), "0"},
		{"decimal -0.0", d("-0.0"), "0.0"},
		{"decimal 0E+5", d("0E+5"), "0"},
		{"decimal 0E-5", d("0E-5"), "0.00000"},
		{"decimal -12.345", d("-12.345"), "-12.345"},
		{"decimal 34 digits", d("1234567890123456789012345678901234"), "1234567890123456789012345678901234"},
		{"decimal 34 digits fraction", d("-1.234567890123456789012345678901234"), "-1.234567890123456789012345678901234"},
		{"decimal max", d("9.999999999999999999999999999999999E+6144"), "9999999999999999999999999999999999" + strings.Repeat("0", 6111)},
		{"decimal tiny", d("1E-6176"), "0." + strings.Repeat("0", 6175) + "1"},
		{"decimal NaN", d("NaN"), `{"$numberDecimal": "NaN"}`},
		{"decimal Inf", d("Infinity"), `{"$numberDecimal": "Infinity"}`},
		{"decimal -Inf", d("-Infinity"), `{"$numberDecimal": "-Infinity"}`},
		{"date epoch", date(0), `"1970-01-01T00:00:00.000Z"`},
		{"date -1ms", date(-1), `"1969-12-31T23:59:59.999Z"`},
		{"date year 0", date(minJSONDateMillis), `"0000-01-01T00:00:00.000Z"`},
		{"date year 9999", date(maxJSONDateMillis), `"9999-12-31T23:59:59.999Z"`},
		{"date year 10000", date(maxJSONDateMillis + 1), `{"$date": {"$numberLong": "253402300800000"}}`},
		{"date before year 0", date(minJSONDateMillis - 1), `{"$date": {"$numberLong": "-62167219200001"}}`},
		{"date min", date(math.MinInt64), `{"$date": {"$numberLong": "-9223372036854775808"}}`},
		{"uuid", bin(4, []byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}), `"123e4567-e89b-12d3-a456-426614174000"`},
		{"uuid 15 bytes", bin(4, make([]byte, 15)), `{"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAA", "subType": "04"}}`},
		{"legacy uuid", bin(3, make([]byte, 16)), `{"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "03"}}`},
		{"binary empty", bin(0, nil), `{"$binary": {"base64": "", "subType": "00"}}`},
		{"binary user", bin(0xff, []byte("hi")), `{"$binary": {"base64": "aGk=", "subType": "ff"}}`},
		{"binary old", bson.RawValue{Type: bson.TypeBinary, Value: rawOldBin([]byte("abc"))}, `{"$binary": {"base64": "YWJj", "subType": "02"}}`},
		{"string escapes", rawValue(t, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f é€😀"), `"q\"b\\s/\b\f\n\r\t\u0001\u001f` + "\x7f é€😀\""},
		{"string empty", rawValue(t, ""), `""`},
		{"string looks like a tag", rawValue(t, bson.D{{Key: "$numberDouble", Value: "NaN"}}), `{"$numberDouble": "NaN"}`},
		{"bool false", rawValue(t, false), "false"},
		{"null", rawValue(t, nil), "null"},
		{"empty doc", rawValue(t, bson.D{}), "{}"},
		{"empty array", rawValue(t, bson.A{}), "[]"},
		{"nested arrays", rawValue(t, bson.A{bson.A{}, bson.A{int32(1), bson.A{bson.D{}}}}), "[[], [1, [{}]]]"},
		{"regex options sorted", rawValue(t, bson.Regex{Pattern: `a"\`, Options: "xsmil"}), `{"$regularExpression": {"options": "ilmsx", "pattern": "a\"\\"}}`},
		{"regex empty", rawValue(t, bson.Regex{}), `{"$regularExpression": {"options": "", "pattern": ""}}`},
		{"timestamp max", rawValue(t, bson.Timestamp{T: math.MaxUint32, I: math.MaxUint32}), `{"$timestamp": {"i": 4294967295, "t": 4294967295}}`},
		{"code with scope tags inside", rawValue(t, bson.CodeWithScope{Code: "f", Scope: bson.D{{Key: "n", Value: math.NaN()}, {Key: "a", Value: int64(1)}}}), `{"$code": "f", "$scope": {"a": 1, "n": {"$numberDouble": "NaN"}}}`},
		{"javascript", rawValue(t, bson.JavaScript("a\nb")), `{"$code": "a\nb"}`},
		{"symbol", rawValue(t, bson.Symbol("é")), `{"$symbol": "é"}`},
		{"dbpointer escapes", bson.RawValue{Type: bson.TypeDBPointer, Value: append(rawStr(`d"b`), bytes.Repeat([]byte{0xfe}, 12)...)}, `{"$dbPointer": {"$id": {"$oid": "fefefefefefefefefefefefe"}, "$ref": "d\"b"}}`},
		{"undefined", bson.RawValue{Type: bson.TypeUndefined}, `{"$undefined": true}`},
		{"minkey", bson.RawValue{Type: bson.TypeMinKey}, `{"$minKey": 1}`},
		{"maxkey", bson.RawValue{Type: bson.TypeMaxKey}, `{"$maxKey": 1}`},
	}
}

func TestAppendJSONBValue(t *testing.T) {
	for _, c := range jsonbValueCases(t) {
		got, err := AppendJSONBValue(nil, c.v, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// keyOrderDoc has keys that jsonb orders by byte length first, then bytewise: so "b" < "aa",
// "Z" < "a", "é" (2 bytes) after "zz", and "" first.
func keyOrderDoc(t testing.TB) (bson.Raw, string) {
	long := strings.Repeat("k", 300)
	doc := mustMarshal(t, bson.D{
		{Key: "zz", Value: int32(1)}, {Key: "é", Value: int32(2)}, {Key: "aa", Value: int32(3)},
		{Key: "b", Value: int32(4)}, {Key: "Z", Value: int32(5)}, {Key: "a", Value: int32(6)},
		{Key: long, Value: int32(7)}, {Key: "", Value: int32(8)}, {Key: "a\x01", Value: int32(9)},
		{Key: "a\"", Value: int32(10)}, {Key: "\x7f", Value: int32(11)}, {Key: "€", Value: int32(12)},
		{Key: "10", Value: int32(13)}, {Key: "9", Value: int32(14)},
	})
	want := `{"": 8, "9": 14, "Z": 5, "a": 6, "b": 4, "` + "\x7f" + `": 11, "10": 13, "a\u0001": 9, "a\"": 10, "aa": 3, "zz": 1, "é": 2, "€": 12, "` + long + `": 7}`
	return doc, want
}

func TestAppendJSONBKeyOrder(t *testing.T) {
	doc, want := keyOrderDoc(t)
	got, err := AppendJSONB(nil, doc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Past the 32 entries kept on the stack and sorted by insertion.
	var d bson.D
	for i := 40; i > 0; i-- {
		d = append(d, bson.E{Key: strings.Repeat("x", i%7) + string(rune('A'+i)), Value: int32(i)})
	}
	got, err = AppendJSONB(nil, mustMarshal(t, d), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if len(a) > len(b) || len(a) == len(b) && a >= b {
			t.Fatalf("keys out of order at %d: %q", i, keys)
		}
	}
	if len(keys) != 40 {
		t.Fatalf("%d keys", len(keys))
	}
}

func TestAppendJSONBRejects(t *testing.T) {
	cases := []struct {
		name, path, reason string
		doc                []byte
		opt                Options
	}{
		{"duplicate key", "a", `duplicate key "a"`,
			rawDoc(rawEl(0x10, "a", rawI32(1)), rawEl(0x0A, "b", nil), rawEl(0x02, "a", rawStr("x"))), Options{}},
		{"duplicate nested", "attributes.x.3.k", `duplicate key "k"`,
			mustMarshal(t, bson.D{{Key: "x", Value: bson.A{1, 2, 3, bson.D{{Key: "k", Value: 1}, {Key: "k", Value: 2}}}}}), Options{Path: "attributes"}},
		{"array keys ignored, position counts", "a.1", "string contains NUL",
			rawDoc(rawEl(0x04, "a", rawDoc(rawEl(0x0A, "9", nil), rawEl(0x02, "9", rawStr("\x00"))))), Options{}},
		{"NUL in string", "a.b", "string contains NUL",
			rawDoc(rawEl(0x03, "a", rawDoc(rawEl(0x02, "b", rawStr("x\x00y"))))), Options{}},
		{"bad UTF-8 string", "s", "string is not valid UTF-8", rawDoc(rawEl(0x02, "s", rawStr("\xc3\x28"))), Options{}},
		{"surrogate", "s", "string is not valid UTF-8", rawDoc(rawEl(0x02, "s", rawStr("\xed\xa0\x80"))), Options{}},
		{"bad UTF-8 key", "a.\uFFFD", "key is not valid UTF-8", rawDoc(rawEl(0x03, "a", rawDoc(rawEl(0x0A, "\xff", nil)))), Options{}},
		{"javascript NUL", "j", "JavaScript code contains NUL", rawDoc(rawEl(0x0D, "j", rawStr("\x00"))), Options{}},
		{"symbol UTF-8", "y", "symbol is not valid UTF-8", rawDoc(rawEl(0x0E, "y", rawStr("\x80"))), Options{}},
		{"regex pattern", "r", "regex pattern is not valid UTF-8", rawDoc(rawEl(0x0B, "r", []byte("\xff\x00i\x00"))), Options{}},
		{"regex options", "r", "regex options is not valid UTF-8", rawDoc(rawEl(0x0B, "r", []byte("a\x00\xff\x00"))), Options{}},
		{"dbpointer namespace", "p", "DBPointer namespace contains NUL", rawDoc(rawEl(0x0C, "p", append(rawStr("a\x00"), make([]byte, 12)...))), Options{}},
		{"scope", "c.$scope.v", "string contains NUL", rawDoc(rawEl(0x0F, "c", rawCWS("f", rawDoc(rawEl(0x02, "v", rawStr("\x00")))))), Options{}},
		{"code", "c", "JavaScript code is not valid UTF-8", rawDoc(rawEl(0x0F, "c", rawCWS("\xff", rawDoc()))), Options{}},
		{"dup after mending", "\uFFFD", "duplicate key \"\uFFFD\"", rawDoc(rawEl(0x0A, "\xff", nil), rawEl(0x0A, "\xfe", nil)), Options{FixStrings: true}},
		{"malformed", "", malformed, []byte{5, 0, 0, 0, 1}, Options{}},
	}
	for _, c := range cases {
		prefix := []byte("keep")
		got, err := AppendJSONB(prefix, c.doc, c.opt)
		if err == nil {
			t.Errorf("%s: no error, wrote %s", c.name, got)
			continue
		}
		if err.Path != c.path || err.Reason != c.reason {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", c.name, err.Path, err.Reason, c.path, c.reason)
		}
		if string(got) != "keep" {
			t.Errorf("%s: dst not restored: %q", c.name, got)
		}
	}
}

func TestAppendJSONBFixStrings(t *testing.T) {
	doc := rawDoc(
		rawEl(0x02, "s", rawStr("a\x00b\xffc\x00")), // one value, three faults: counted once
		rawEl(0x02, "ok", rawStr("fine")),
		rawEl(0x0A, "k\xe2\x82", nil), // truncated sequence: one U+FFFD per byte
		rawEl(0x0B, "r", []byte("p\xff\x00x\xffa\x00")),
		rawEl(0x0D, "j", rawStr("\x00")),
		rawEl(0x0E, "y", rawStr("\xc0")),
		rawEl(0x0C, "p", append(rawStr("n\x00s"), make([]byte, 12)...)),
	)
	var fixed int
	got, err := AppendJSONB(nil, doc, Options{FixStrings: true, Fixed: &fixed})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"j": {"$code": ""}, "p": {"$dbPointer": {"$id": {"$oid": "000000000000000000000000"}, "$ref": "ns"}}, ` +
		`"r": {"$regularExpression": {"options": "ax` + "\uFFFD" + `", "pattern": "p` + "\uFFFD" + `"}}, ` +
		`"s": "ab` + "\uFFFD" + `c", "y": {"$symbol": "` + "\uFFFD" + `"}, "ok": "fine", "k` + "\uFFFD\uFFFD" + `": null}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// s, key, regex pattern, regex options, javascript, symbol, namespace.
	if fixed != 7 {
		t.Fatalf("fixed = %d, want 7", fixed)
	}
	// Fixed may be nil: mends are then not counted.
	if _, err := AppendJSONB(nil, doc, Options{FixStrings: true}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendJSONBValueErrors(t *testing.T) {
	if _, err := AppendJSONBValue(nil, bson.RawValue{}, Options{Path: "p"}); err == nil || err.Path != "p" {
		t.Fatalf("missing value: %v", err)
	}
	if _, err := AppendJSONBValue(nil, bson.RawValue{Type: bson.TypeString, Value: rawStr("\x00")}, Options{Path: "p"}); err == nil || err.Path != "p" || err.Reason != "string contains NUL" {
		t.Fatalf("NUL: %v", err)
	}
	if _, err := AppendJSONBValue(nil, bson.RawValue{Type: bson.TypeInt32, Value: []byte{1}}, Options{}); err == nil {
		t.Fatal("short int32 accepted")
	}
}

func TestAppendJSONBDepth(t *testing.T) {
	deep := rawDoc()
	for i := 1; i < MaxDepth; i++ {
		deep = rawDoc(rawEl(0x04, "0", deep))
	}
	got, err := AppendJSONB(nil, deep, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Fatal("invalid JSON")
	}
	if _, err := AppendJSONB(nil, rawDoc(rawEl(0x03, "a", deep)), Options{}); err == nil {
		t.Fatal("depth above MaxDepth accepted")
	}
}

func TestAppendJSONBAllocs(t *testing.T) {
	doc := everyType(t)
	buf := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(100, func() {
		if _, err := AppendJSONB(buf[:0], doc, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per document", n)
	}
}

func BenchmarkAppendJSONB(b *testing.B) {
	doc := everyType(b)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendJSONB(buf[:0], doc, Options{})
	}
}

func TestDuplicateKey(t *testing.T) {
	cases := []struct {
		doc  []byte
		path string
	}{
		{everyType(t), ""},
		{rawDoc(rawEl(0x0A, "a", nil), rawEl(0x0A, "b", nil), rawEl(0x0A, "a", nil)), "a"},
		{mustMarshal(t, bson.D{{Key: "x", Value: bson.A{1, bson.D{{Key: "k", Value: 1}, {Key: "k", Value: 2}}}}}), "x.1.k"},
		{rawDoc(rawEl(0x0F, "c", rawCWS("f", rawDoc(rawEl(0x0A, "v", nil), rawEl(0x0A, "v", nil))))), "c.$scope.v"},
		// Arrays' own keys do not count.
		{rawDoc(rawEl(0x04, "a", rawDoc(rawEl(0x0A, "0", nil), rawEl(0x0A, "0", nil)))), ""},
		// The document's own keys are checked before its values, in jsonb key order.
		{mustMarshal(t, bson.D{{Key: "zz", Value: bson.D{{Key: "q", Value: 1}, {Key: "q", Value: 1}}}, {Key: "b", Value: bson.D{{Key: "r", Value: 1}, {Key: "r", Value: 1}}}}), "b.r"},
	}
	for _, c := range cases {
		path, ok := DuplicateKey(c.doc)
		if ok != (c.path != "") || path != c.path {
			t.Errorf("%x: got %q %v, want %q", c.doc, path, ok, c.path)
		}
		if c.path == "" {
			continue
		}
		if _, err := AppendJSONB(nil, c.doc, Options{}); err == nil || err.Path != c.path {
			t.Errorf("AppendJSONB disagrees: %v, want path %q", err, c.path)
		}
	}
}
