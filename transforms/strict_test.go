package transforms

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// everyType is a document holding one value of every BSON type, built by the driver.
func everyType(t testing.TB) bson.Raw {
	oid, _ := bson.ObjectIDFromHex("65f0c0ffee0123456789abcd")
	return mustMarshal(t, bson.D{
		{Key: "double", Value: 1.5},
		{Key: "string", Value: "héllo"},
		{Key: "doc", Value: bson.D{{Key: "a", Value: int32(1)}}},
		{Key: "array", Value: bson.A{"x", int64(2), nil}},
		{Key: "binary", Value: bson.Binary{Subtype: 0x80, Data: []byte{1, 2, 3}}},
		{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)}},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "oid", Value: oid},
		{Key: "bool", Value: true},
		{Key: "date", Value: bson.DateTime(1764324672345)},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: "^a.*b$", Options: "xi"}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.coll", Pointer: oid}},
		{Key: "js", Value: bson.JavaScript("function(){}")},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "cws", Value: bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "y", Value: int32(1)}}}},
		{Key: "int32", Value: int32(-7)},
		{Key: "timestamp", Value: bson.Timestamp{T: 1, I: 2}},
		{Key: "int64", Value: int64(1) << 62},
		{Key: "decimal", Value: mustDecimal(t, "1.50")},
		{Key: "minkey", Value: bson.MinKey{}},
		{Key: "maxkey", Value: bson.MaxKey{}},
	})
}

func TestValidateStrictAcceptsValid(t *testing.T) {
	deep := rawDoc()
	for i := 1; i < MaxDepth; i++ {
		deep = rawDoc(rawEl(0x03, "a", deep))
	}
	cases := map[string][]byte{
		"empty":                rawDoc(),
		"every type":           everyType(t),
		"binary subtype 2":     rawDoc(rawEl(0x05, "b", rawOldBin([]byte("abc")))),
		"binary subtype 2 nil": rawDoc(rawEl(0x05, "b", rawOldBin(nil))),
		"empty binary":         rawDoc(rawEl(0x05, "b", rawBin(0, nil))),
		"empty string":         rawDoc(rawEl(0x02, "s", rawStr(""))),
		"empty key":            rawDoc(rawEl(0x0A, "", nil)),
		"cws empty":            rawDoc(rawEl(0x0F, "c", rawCWS("", rawDoc()))),
		"bool false":           rawDoc(rawEl(0x08, "b", []byte{0})),
		// Value checks, not structure: these load or reject later, never as invalid BSON.
		"NUL in string":    rawDoc(rawEl(0x02, "s", rawStr("a\x00b"))),
		"bad UTF-8":        rawDoc(rawEl(0x02, "s", rawStr("a\xffb"))),
		"bad UTF-8 key":    rawDoc(rawEl(0x0A, "\xff", nil)),
		"odd array keys":   rawDoc(rawEl(0x04, "a", rawDoc(rawEl(0x10, "7", rawI32(1)), rawEl(0x10, "x", rawI32(2))))),
		"duplicate keys":   rawDoc(rawEl(0x0A, "a", nil), rawEl(0x0A, "a", nil)),
		"uuid of 3 bytes":  rawDoc(rawEl(0x05, "u", rawBin(4, []byte{1, 2, 3}))),
		"max depth":        deep,
		"high type minkey": rawDoc(rawEl(0xFF, "m", nil), rawEl(0x7F, "M", nil)),
	}
	for name, doc := range cases {
		if err := ValidateStrict(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateStrictRejects(t *testing.T) {
	withLen := func(doc []byte, n int32) []byte {
		b := append([]byte(nil), doc...)
		copy(b, rawI32(n))
		return b
	}
	deep := rawDoc()
	for i := 0; i < MaxDepth; i++ {
		deep = rawDoc(rawEl(0x03, "a", deep))
	}
	// A string element "s" starts at byte 4; its length field at 7, its bytes at 11.
	cases := []struct {
		name   string
		doc    []byte
		offset int
		what   string
	}{
		{"nothing", nil, 0, "document of 0 bytes is shorter than 5"},
		{"4 bytes", []byte{4, 0, 0, 0}, 0, "shorter than 5"},
		{"length above size", withLen(rawDoc(), 6), 0, "document length 6 does not match its 5 bytes"},
		{"length below size", withLen(rawDoc(rawEl(0x0A, "a", nil)), 5), 0, "does not match"},
		{"negative length", withLen(rawDoc(), -1), 0, "does not match"},
		{"no trailing NUL", []byte{5, 0, 0, 0, 1}, 4, "document does not end with NUL"},
		{"unknown type", rawDoc(rawEl(0x14, "x", nil)), 4, "unknown element type 0x14"},
		{"type 0x80", rawDoc(rawEl(0x80, "x", nil)), 4, "unknown element type 0x80"},
		{"early terminator", rawDoc([]byte{0}, rawEl(0x0A, "a", nil)), 4, "document terminator before the end"},
		{"key unterminated", append(rawI32(8), 0x0A, 'a', 'b', 0), 5, "element name not terminated"},
		{"bool 2", rawDoc(rawEl(0x08, "b", []byte{2})), 7, "boolean byte 0x02 is neither 0 nor 1"},
		{"bool truncated", append(rawI32(8), 0x08, 'b', 0, 0), 4, "boolean value truncated"},
		{"string length 0", rawDoc(rawEl(0x02, "s", append(rawI32(0), 0))), 7, "string length 0 is not positive"},
		{"string length -5", rawDoc(rawEl(0x02, "s", append(rawI32(-5), 'a', 0))), 7, "string length -5 is not positive"},
		{"string eats terminator", rawDoc(rawEl(0x02, "s", append(rawI32(3), 'a', 0))), 7, "string length 3 runs past its document"},
		{"string not NUL-terminated", rawDoc(rawEl(0x02, "s", append(rawI32(2), 'a', 'b'))), 12, "string not NUL-terminated"},
		{"string length truncated", append(rawI32(10), 0x02, 's', 0, 1, 0, 0), 7, "string length truncated"},
		{"double truncated", rawDoc(rawEl(0x01, "d", []byte{1, 2, 3})), 4, "double value truncated"},
		{"int32 truncated", rawDoc(rawEl(0x10, "i", []byte{1, 2})), 4, "int32 value truncated"},
		{"int64 truncated", rawDoc(rawEl(0x12, "i", []byte{1})), 4, "int64 value truncated"},
		{"date truncated", rawDoc(rawEl(0x09, "d", []byte{1})), 4, "date value truncated"},
		{"timestamp truncated", rawDoc(rawEl(0x11, "t", []byte{1})), 4, "timestamp value truncated"},
		{"decimal truncated", rawDoc(rawEl(0x13, "n", make([]byte, 15))), 4, "decimal128 value truncated"},
		{"oid truncated", rawDoc(rawEl(0x07, "o", make([]byte, 11))), 4, "ObjectId value truncated"},
		{"binary negative", rawDoc(rawEl(0x05, "b", append(rawI32(-1), 0))), 7, "binary length -1 is negative"},
		{"binary too long", rawDoc(rawEl(0x05, "b", append(rawI32(9), 0, 1, 2))), 7, "binary length 9 runs past"},
		{"binary 2 inner too long", rawDoc(rawEl(0x05, "b", rawBin(2, append(rawI32(4), 'a', 'b')))), 12, "binary subtype 2 inner length 4 does not match outer length 6"},
		{"binary 2 inner too short", rawDoc(rawEl(0x05, "b", rawBin(2, append(rawI32(1), 'a', 'b')))), 12, "inner length 1 does not match outer length 6"},
		{"binary 2 inner negative", rawDoc(rawEl(0x05, "b", rawBin(2, append(rawI32(-1), 'a', 'b')))), 12, "inner length -1"},
		{"binary 2 no inner", rawDoc(rawEl(0x05, "b", rawBin(2, []byte{1, 2}))), 12, "binary subtype 2 inner length truncated"},
		{"doc length short", rawDoc(rawEl(0x03, "d", append(rawI32(4), 0))), 7, "embedded document length 4 is below 5"},
		{"doc length long", rawDoc(rawEl(0x03, "d", append(rawI32(6), 0))), 7, "embedded document length 6 runs past its container"},
		{"doc no NUL", rawDoc(rawEl(0x03, "d", append(rawI32(5), 1))), 11, "embedded document does not end with NUL"},
		{"array bad element", rawDoc(rawEl(0x04, "a", rawDoc(rawEl(0x08, "0", []byte{7})))), 14, "boolean byte 0x07"},
		{"array length long", rawDoc(rawEl(0x04, "a", append(rawI32(7), 0))), 7, "array length 7 runs past"},
		{"nested fault offset", rawDoc(rawEl(0x0A, "x", nil), rawEl(0x03, "d", rawDoc(rawEl(0x02, "s", append(rawI32(0), 0))))), 17, "string length 0"},
		{"regex pattern unterminated", append(rawI32(9), 0x0B, 'r', 0, 'a', 0), 7, "regex pattern not terminated"},
		{"regex options unterminated", append(rawI32(11), 0x0B, 'r', 0, 'a', 0, 'i', 0), 9, "regex options not terminated"},
		{"regex unterminated", append(rawI32(8), 0x0B, 'r', 0, 'a'), 7, "does not end with NUL"},
		{"dbpointer short", rawDoc(rawEl(0x0C, "p", append(rawStr("ns"), 1, 2, 3))), 4, "DBPointer value truncated"},
		{"dbpointer bad ns", rawDoc(rawEl(0x0C, "p", append(rawI32(0), make([]byte, 12)...))), 7, "DBPointer namespace length 0"},
		{"js length 0", rawDoc(rawEl(0x0D, "j", append(rawI32(0), 0))), 7, "JavaScript code length 0"},
		{"symbol not terminated", rawDoc(rawEl(0x0E, "y", append(rawI32(2), 'a', 'b'))), 12, "symbol not NUL-terminated"},
		{"cws too short", rawDoc(rawEl(0x0F, "c", append(rawI32(13), append(rawStr(""), rawDoc()...)...))), 7, "code with scope length 13 is below 14"},
		{"cws length long", rawDoc(rawEl(0x0F, "c", append(rawI32(15), append(rawStr(""), rawDoc()...)...))), 7, "code with scope length 15 runs past"},
		{"cws length mismatch", rawDoc(rawEl(0x0F, "c", append(rawI32(15), append(rawStr(""), append(rawDoc(), 0)...)...))), 7, "code with scope length 15 does not match its contents (14 bytes)"},
		{"cws scope invalid", rawDoc(rawEl(0x0F, "c", rawCWS("", rawDoc(rawEl(0x08, "b", []byte{9}))))), 23, "boolean byte 0x09"},
		{"cws code eats scope", rawDoc(rawEl(0x0F, "c", append(rawI32(14), append(rawI32(7), 'a', 0, 0, 0, 0, 0)...))), 11, "code with scope code length 7 runs past"},
		{"too deep", deep, 4 + 3, "nesting deeper than 1000 levels"},
	}
	for _, c := range cases {
		err := ValidateStrict(c.doc)
		var ie *InvalidBSONError
		if !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want an *InvalidBSONError", c.name, err)
			continue
		}
		if !strings.Contains(ie.What, c.what) {
			t.Errorf("%s: What = %q, want it to contain %q", c.name, ie.What, c.what)
		}
		if c.name != "too deep" && ie.Offset != c.offset {
			t.Errorf("%s: Offset = %d, want %d (%s)", c.name, ie.Offset, c.offset, ie.What)
		}
	}
}

func TestInvalidBSONErrorText(t *testing.T) {
	err := ValidateStrict(rawDoc(rawEl(0x08, "b", []byte{2})))
	want := "invalid BSON: boolean byte 0x02 is neither 0 nor 1, at byte 7 of the document"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// Every prefix and every single-byte corruption of a valid document is either accepted or
// refused with an offset inside the document; none panics, and whatever passes is something
// the driver can read too.
func TestValidateStrictMutations(t *testing.T) {
	doc := everyType(t)
	check := func(b []byte) {
		err := ValidateStrict(b)
		if err == nil {
			if verr := bson.Raw(b).Validate(); verr != nil {
				t.Fatalf("strictly valid but the driver refuses it: %v\n%x", verr, b)
			}
			return
		}
		var ie *InvalidBSONError
		if !errors.As(err, &ie) || ie.Offset < 0 || ie.Offset > len(b) {
			t.Fatalf("bad error %v for %x", err, b)
		}
	}
	for i := 0; i <= len(doc); i++ {
		check(doc[:i])
	}
	for i := range doc {
		for _, v := range []byte{0, 1, 2, 0x7f, 0x80, 0xff, doc[i] + 1, doc[i] - 1} {
			b := append([]byte(nil), doc...)
			b[i] = v
			check(b)
		}
	}
}
