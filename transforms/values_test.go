package transforms

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// textArray builds array_send bytes by hand, independently of AppendTextArray.
func textArray(elems ...*string) []byte {
	if len(elems) == 0 {
		return hx("00000000 00000000 00000019")
	}
	flag := "00000000"
	for _, e := range elems {
		if e == nil {
			flag = "00000001"
		}
	}
	b := hx("00000001" + flag + "00000019")
	b = append(b, rawI32BE(int32(len(elems)))...)
	b = append(b, rawI32BE(1)...)
	for _, e := range elems {
		if e == nil {
			b = append(b, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		b = append(b, rawI32BE(int32(len(*e)))...)
		b = append(b, *e...)
	}
	return b
}

func rawI32BE(i int32) []byte {
	return []byte{byte(uint32(i) >> 24), byte(uint32(i) >> 16), byte(uint32(i) >> 8), byte(i)}
}

func sp(s string) *string { return &s }

type columnCase struct {
	name string
	t    pipeline.ColumnType
	v    bson.RawValue
	opt  Options
	want []byte // nil with null false: expect an error
	null bool
	path string // for errors
	err  string // reason, for errors
}

func columnCases(t testing.TB) []columnCase {
	oid, _ := bson.ObjectIDFromHex("65f0c0ffee0123456789abcd")
	uuidBytes := hx("123e4567e89b12d3a456426614174000")
	d := func(s string) bson.RawValue { return rawValue(t, mustDecimal(t, s)) }
	s := func(x string) bson.RawValue { return rawValue(t, x) }
	at := Options{Path: "f"}
	rej := func(name string, ct pipeline.ColumnType, v bson.RawValue, opt Options, reason string) columnCase {
		return columnCase{name: name, t: ct, v: v, opt: opt, path: opt.Path, err: reason}
	}
	return []columnCase{
		// NULL: missing and null, whatever the column.
		{name: "missing text", t: pipeline.TypeText, v: bson.RawValue{}, null: true},
		{name: "null uuid", t: pipeline.TypeUUID, v: rawValue(t, nil), null: true},
		{name: "null jsonb", t: pipeline.TypeJSONB, v: rawValue(t, nil), null: true},
		{name: "null text[]", t: pipeline.TypeTextArray, v: rawValue(t, nil), null: true},

		{name: "text", t: pipeline.TypeText, v: s("héllo"), want: []byte("héllo")},
		{name: "text empty", t: pipeline.TypeText, v: s(""), want: []byte{}},
		{name: "text from ObjectId", t: pipeline.TypeText, v: rawValue(t, oid), want: []byte("65f0c0ffee0123456789abcd")},
		rej("text NUL", pipeline.TypeText, s("a\x00"), at, "string contains NUL"),
		rej("text bad UTF-8", pipeline.TypeText, s("a\xff"), at, "string is not valid UTF-8"),
		{name: "text mended", t: pipeline.TypeText, v: s("a\x00b\xffc"), opt: Options{FixStrings: true}, want: []byte("ab\uFFFDc")},
		rej("text from int", pipeline.TypeText, rawValue(t, int32(1)), at, "expected text, found int"),
		rej("text from date", pipeline.TypeText, rawValue(t, bson.DateTime(0)), at, "expected text, found date"),
		rej("text from regex", pipeline.TypeText, rawValue(t, bson.Regex{Pattern: "a"}), at, "expected text, found regex"),
		rej("text from javascript", pipeline.TypeText, rawValue(t, bson.JavaScript("x")), at, "expected text, found javascript"),
		rej("text from symbol", pipeline.TypeText, rawValue(t, bson.Symbol("x")), at, "expected text, found symbol"),
		rej("text from dbpointer", pipeline.TypeText, rawValue(t, bson.DBPointer{DB: "a", Pointer: oid}), at, "expected text, found dbPointer"),
		rej("text from minKey", pipeline.TypeText, bson.RawValue{Type: bson.TypeMinKey}, at, "expected text, found minKey"),
		rej("text from maxKey", pipeline.TypeText, bson.RawValue{Type: bson.TypeMaxKey}, at, "expected text, found maxKey"),
		rej("text from undefined", pipeline.TypeText, bson.RawValue{Type: bson.TypeUndefined}, at, "expected text, found undefined"),
		rej("text from document", pipeline.TypeText, rawValue(t, bson.D{}), at, "expected text, found object"),

		{name: "uuid from binary 4", t: pipeline.TypeUUID, v: rawValue(t, bson.Binary{Subtype: 4, Data: uuidBytes}), want: uuidBytes},
		{name: "uuid from string", t: pipeline.TypeUUID, v: s("123E4567-E89B-12d3-a456-426614174000"), want: uuidBytes},
		rej("uuid from bad string", pipeline.TypeUUID, s("123e4567e89b12d3a456426614174000"), at, "string is not a hyphenated UUID"),
		rej("uuid from ObjectId", pipeline.TypeUUID, rawValue(t, oid), at, "expected uuid, found objectId"),
		rej("uuid from legacy binary 3", pipeline.TypeUUID, rawValue(t, bson.Binary{Subtype: 3, Data: uuidBytes}), at, "expected uuid, found binary that is not subtype 4 of 16 bytes"),
		rej("uuid from short binary 4", pipeline.TypeUUID, rawValue(t, bson.Binary{Subtype: 4, Data: uuidBytes[:15]}), at, "expected uuid, found binary that is not subtype 4 of 16 bytes"),

		{name: "smallint", t: pipeline.TypeInt2, v: rawValue(t, int32(-2)), want: hx("fffe")},
		{name: "smallint from long", t: pipeline.TypeInt2, v: rawValue(t, int64(32767)), want: hx("7fff")},
		rej("smallint overflow", pipeline.TypeInt2, rawValue(t, int32(32768)), at, "value out of range for smallint"),
		rej("smallint underflow", pipeline.TypeInt2, rawValue(t, int64(-32769)), at, "value out of range for smallint"),
		{name: "integer", t: pipeline.TypeInt4, v: rawValue(t, int32(math.MinInt32)), want: hx("80000000")},
		{name: "integer from long", t: pipeline.TypeInt4, v: rawValue(t, int64(math.MaxInt32)), want: hx("7fffffff")},
		rej("integer from long overflow", pipeline.TypeInt4, rawValue(t, int64(math.MaxInt32)+1), at, "value out of range for integer"),
		rej("integer from double", pipeline.TypeInt4, rawValue(t, 1.0), at, "expected integer, found double"),
		rej("integer from decimal", pipeline.TypeInt4, d("1"), at, "expected integer, found decimal"),
		rej("integer from timestamp", pipeline.TypeInt4, rawValue(t, bson.Timestamp{T: 1}), at, "expected integer, found timestamp"),
		{name: "bigint from int", t: pipeline.TypeInt8, v: rawValue(t, int32(-1)), want: hx("ffffffffffffffff")},
		{name: "bigint", t: pipeline.TypeInt8, v: rawValue(t, int64(math.MaxInt64)), want: hx("7fffffffffffffff")},
		{name: "bigint from timestamp", t: pipeline.TypeInt8, v: rawValue(t, bson.Timestamp{T: 1, I: 2}), want: hx("0000000100000002")},
		{name: "bigint from timestamp 2106", t: pipeline.TypeInt8, v: rawValue(t, bson.Timestamp{T: math.MaxUint32, I: 7}), want: hx("ffffffff00000007")},
		rej("bigint from string", pipeline.TypeInt8, s("1"), at, "expected bigint, found string"),

		{name: "float8", t: pipeline.TypeFloat8, v: rawValue(t, 1.5), want: hx("3ff8000000000000")},
		{name: "float8 -0", t: pipeline.TypeFloat8, v: rawValue(t, math.Copysign(0, -1)), want: hx("8000000000000000")},
		{name: "float8 +Inf", t: pipeline.TypeFloat8, v: rawValue(t, math.Inf(1)), want: hx("7ff0000000000000")},
		{name: "float8 NaN payload", t: pipeline.TypeFloat8, v: bson.RawValue{Type: bson.TypeDouble, Value: rawF64(math.Float64frombits(0xfff8000000000123))}, want: hx("7ff8000000000000")},
		rej("float8 from int", pipeline.TypeFloat8, rawValue(t, int32(1)), at, "expected double precision, found int"),

		{name: "numeric decimal", t: pipeline.TypeNumeric, v: d("1.50"), want: []byte("1.50")},
		{name: "numeric decimal 1E+3", t: pipeline.TypeNumeric, v: d("1E+3"), want: []byte("1000")},
		{name: "numeric decimal -0.0", t: pipeline.TypeNumeric, v: d("-0.0"), want: []byte("0.0")},
		{name: "numeric decimal NaN", t: pipeline.TypeNumeric, v: d("NaN"), want: []byte("NaN")},
		{name: "numeric decimal Inf", t: pipeline.TypeNumeric, v: d("Infinity"), want: []byte("Infinity")},
		{name: "numeric decimal -Inf", t: pipeline.TypeNumeric, v: d("-Infinity"), want: []byte("-Infinity")},
		{name: "numeric int", t: pipeline.TypeNumeric, v: rawValue(t, int32(-7)), want: []byte("-7")},
		{name: "numeric long", t: pipeline.TypeNumeric, v: rawValue(t, int64(math.MinInt64)), want: []byte("-9223372036854775808")},
		{name: "numeric double", t: pipeline.TypeNumeric, v: rawValue(t, 0.1), want: []byte("0.1")},
		{name: "numeric double 9.8", t: pipeline.TypeNumeric, v: rawValue(t, 9.8), want: []byte("9.8")},
		{name: "numeric double -0", t: pipeline.TypeNumeric, v: rawValue(t, math.Copysign(0, -1)), want: []byte("0")},
		rej("numeric double NaN", pipeline.TypeNumeric, rawValue(t, math.NaN()), at, "NaN or infinite double into numeric"),
		rej("numeric double -Inf", pipeline.TypeNumeric, rawValue(t, math.Inf(-1)), at, "NaN or infinite double into numeric"),
		rej("numeric string not allowed", pipeline.TypeNumeric, s("1.5"), at, "expected numeric, found string"),
		{name: "numeric string", t: pipeline.TypeNumeric, v: s("+7.50"), opt: Options{NumberAsString: true}, want: []byte("7.50")},
		rej("numeric string not a number", pipeline.TypeNumeric, s("7.5 high"), Options{NumberAsString: true, Path: "f"}, "string is not a decimal number"),
		rej("numeric string NaN", pipeline.TypeNumeric, s("NaN"), Options{NumberAsString: true, Path: "f"}, "string is not a decimal number"),
		rej("numeric from bool", pipeline.TypeNumeric, rawValue(t, true), at, "expected numeric, found bool"),

		{name: "bool true", t: pipeline.TypeBool, v: rawValue(t, true), want: []byte{1}},
		{name: "bool false", t: pipeline.TypeBool, v: rawValue(t, false), want: []byte{0}},
		rej("bool from int", pipeline.TypeBool, rawValue(t, int32(1)), at, "expected boolean, found int"),

		{name: "timestamptz epoch", t: pipeline.TypeTimestamptz, v: rawValue(t, bson.DateTime(0)), want: hx("fffca2fec4c82000")},
		{name: "timestamptz 2000", t: pipeline.TypeTimestamptz, v: rawValue(t, bson.DateTime(946684800001)), want: hx("00000000000003e8")},
		{name: "timestamptz min", t: pipeline.TypeTimestamptz, v: rawValue(t, bson.DateTime(minTimestampMs)), want: hx("fd0f7cc1411fa000")},
		{name: "timestamptz max", t: pipeline.TypeTimestamptz, v: rawValue(t, bson.DateTime(endTimestampMs-1)), want: hx("7fffff5bb3b29c18")},
		rej("timestamptz too late", pipeline.TypeTimestamptz, rawValue(t, bson.DateTime(endTimestampMs)), at, "date out of range for timestamptz"),
		rej("timestamptz too early", pipeline.TypeTimestamptz, rawValue(t, bson.DateTime(minTimestampMs-1)), at, "date out of range for timestamptz"),
		rej("timestamptz int64 min", pipeline.TypeTimestamptz, rawValue(t, bson.DateTime(math.MinInt64)), at, "date out of range for timestamptz"),
		rej("timestamptz int64 max", pipeline.TypeTimestamptz, rawValue(t, bson.DateTime(math.MaxInt64)), at, "date out of range for timestamptz"),
		rej("timestamptz string not allowed", pipeline.TypeTimestamptz, s("2000-01-01T00:00:00Z"), at, "expected timestamp with time zone, found string"),
		{name: "timestamptz string", t: pipeline.TypeTimestamptz, v: s("2000-01-01T00:00:00.000001Z"), opt: Options{DateAsString: true}, want: hx("0000000000000001")},
		{name: "timestamptz string offset", t: pipeline.TypeTimestamptz, v: s("2000-01-01T02:00:00+02:00"), opt: Options{DateAsString: true}, want: hx("0000000000000000")},
		rej("timestamptz string no zone", pipeline.TypeTimestamptz, s("2000-01-01T00:00:00"), Options{DateAsString: true, Path: "f"}, "string is not an RFC 3339 date-time"),
		rej("timestamptz string ns", pipeline.TypeTimestamptz, s("2000-01-01T00:00:00.0000001Z"), Options{DateAsString: true, Path: "f"}, "date-time string is more precise than microseconds"),
		rej("timestamptz from long", pipeline.TypeTimestamptz, rawValue(t, int64(0)), at, "expected timestamp with time zone, found long"),
		rej("timestamptz from timestamp", pipeline.TypeTimestamptz, rawValue(t, bson.Timestamp{}), at, "expected timestamp with time zone, found timestamp"),

		{name: "bytea", t: pipeline.TypeBytea, v: rawValue(t, bson.Binary{Data: []byte{0, 1, 0xff}}), want: []byte{0, 1, 0xff}},
		{name: "bytea old binary", t: pipeline.TypeBytea, v: bson.RawValue{Type: bson.TypeBinary, Value: rawOldBin([]byte("ab"))}, want: []byte("ab")},
		{name: "bytea empty", t: pipeline.TypeBytea, v: rawValue(t, bson.Binary{}), want: []byte{}},
		rej("bytea from string", pipeline.TypeBytea, s("ab"), at, "expected bytea, found string"),

		{name: "text[]", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"b", nil, "a"}), want: textArray(sp("b"), nil, sp("a"))},
		{name: "text[] no nulls", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"x", ""}), want: textArray(sp("x"), sp(""))},
		{name: "text[] empty", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{}), want: textArray()},
		{name: "text[] only null", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{nil}), want: textArray(nil)},
		{name: "text[] sorted", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"b", nil, "a", "B", "é", "a", "ab"}), opt: Options{SortArray: true},
			want: textArray(sp("B"), sp("a"), sp("a"), sp("ab"), sp("b"), sp("é"), nil)},
		{name: "text[] mended", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"ok", "a\x00"}), opt: Options{FixStrings: true}, want: textArray(sp("ok"), sp("a"))},
		{name: "text[] sorted mended", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"b", "\x00a"}), opt: Options{FixStrings: true, SortArray: true}, want: textArray(sp("a"), sp("b"))},
		{name: "text[] of ints", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{int32(1)}), opt: at, path: "f.0", err: "expected text[] element string, found int"},
		{name: "text[] mixed", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"a", nil, int32(1)}), opt: at, path: "f.2", err: "expected text[] element string, found int"},
		{name: "text[] of documents", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{bson.D{}}), opt: at, path: "f.0", err: "expected text[] element string, found object"},
		{name: "text[] NUL", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"a", "b\x00"}), opt: at, path: "f.1", err: "string contains NUL"},
		{name: "text[] sorted NUL", t: pipeline.TypeTextArray, v: rawValue(t, bson.A{"a", "b\xff"}), opt: Options{Path: "f", SortArray: true}, path: "f.1", err: "string is not valid UTF-8"},
		rej("text[] from string", pipeline.TypeTextArray, s("a"), at, "expected text[], found string"),

		{name: "jsonb doc", t: pipeline.TypeJSONB, v: rawValue(t, bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: math.Inf(1)}}), want: []byte(`{"a": {"$numberDouble": "Infinity"}, "b": 1}`)},
		{name: "jsonb array", t: pipeline.TypeJSONB, v: rawValue(t, bson.A{"x", bson.D{}}), want: []byte(`["x", {}]`)},
		{name: "jsonb scalar", t: pipeline.TypeJSONB, v: s("x"), want: []byte(`"x"`)},
		{name: "jsonb regex", t: pipeline.TypeJSONB, v: rawValue(t, bson.Regex{Pattern: "a", Options: "i"}), want: []byte(`{"$regularExpression": {"options": "i", "pattern": "a"}}`)},
		{name: "jsonb duplicate", t: pipeline.TypeJSONB, v: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: rawDoc(rawEl(0x0A, "k", nil), rawEl(0x0A, "k", nil))}, opt: at, path: "f.k", err: `duplicate key "k"`},

		rej("tsvector", pipeline.TypeTSVector, s("x"), at, "tsvector columns are generated, never written"),
	}
}

func TestAppendColumn(t *testing.T) {
	for _, c := range columnCases(t) {
		got, null, err := AppendColumn([]byte("pre"), c.t, c.v, c.opt)
		switch {
		case c.err != "":
			if err == nil {
				t.Errorf("%s: no error, got %x", c.name, got)
			} else if err.Path != c.path || err.Reason != c.err {
				t.Errorf("%s: got (%q, %q), want (%q, %q)", c.name, err.Path, err.Reason, c.path, c.err)
			}
			if string(got) != "pre" {
				t.Errorf("%s: dst not restored", c.name)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case null != c.null:
			t.Errorf("%s: null = %v", c.name, null)
		case !bytes.Equal(got[3:], c.want) || string(got[:3]) != "pre":
			t.Errorf("%s:\n got %x (%q)\nwant %x (%q)", c.name, got[3:], got[3:], c.want, c.want)
		}
	}
}

func TestAppendColumnCountsFixes(t *testing.T) {
	var fixed int
	opt := Options{FixStrings: true, Fixed: &fixed}
	AppendColumn(nil, pipeline.TypeText, rawValue(t, "a\x00\x00"), opt)
	AppendColumn(nil, pipeline.TypeText, rawValue(t, "clean"), opt)
	AppendColumn(nil, pipeline.TypeTextArray, rawValue(t, bson.A{"\xff", "ok", "\x00"}), opt)
	AppendColumn(nil, pipeline.TypeJSONB, rawValue(t, bson.D{{Key: "a", Value: "\x00"}, {Key: "b", Value: "\xff"}}), opt)
	if fixed != 5 {
		t.Fatalf("fixed = %d, want 5", fixed)
	}
}

func TestAppendTextArray(t *testing.T) {
	got := AppendTextArray(nil, []TextElem{{S: "a"}, {Null: true}, {S: "é"}})
	if want := textArray(sp("a"), nil, sp("é")); !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
	if got := AppendTextArray(nil, nil); !bytes.Equal(got, textArray()) {
		t.Fatalf("empty: %x", got)
	}
}

func TestCleanString(t *testing.T) {
	if s, err := CleanString("ok", Options{}); err != nil || s != "ok" {
		t.Fatal(s, err)
	}
	if _, err := CleanString("a\x00", Options{Path: "p"}); err == nil || err.Path != "p" || err.Reason != "string contains NUL" {
		t.Fatal(err)
	}
	var n int
	if s, err := CleanString("a\xffb\x00", Options{FixStrings: true, Fixed: &n}); err != nil || s != "a\uFFFDb" || n != 1 {
		t.Fatal(s, err, n)
	}
}

// numericStringCases: input, and PostgreSQL's numeric_out of numeric_in(input) ("" = rejected).
var numericStringCases = []struct{ in, want string }{
	{"0", "0"}, {"-0", "0"}, {"+0", "0"}, {"-0.00", "0.00"}, {"+1.50", "1.50"}, {"1e3", "1000"},
	{"1E+3", "1000"}, {".5", "0.5"}, {"5.", "5"}, {"007.10", "7.10"}, {"1.5e-3", "0.0015"},
	{"1.5E+1", "15"}, {"12.345e1", "123.45"}, {"-.5e1", "-5"}, {"100e-2", "1.00"}, {"0.000", "0.000"},
	{"0e100000", "0"}, {"0e1073741822", "0"}, {"-0e-5", "0.00000"}, {"000", "0"}, {"0.0e2", "0"},
	{"9.8", "9.8"}, {"10", "10"}, {"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
	{"0.00012e2", "0.012"}, {"1e0", "1"}, {"1e-0", "1"}, {"1.000e-1", "0.1000"}, {"00001e-3", "0.001"},
	{"1e-16383", "0." + strings.Repeat("0", 16382) + "1"},
	{"1e131071", "1" + strings.Repeat("0", 131071)},
	{"0.1e131072", "1" + strings.Repeat("0", 131071)},
	{"", ""}, {"+", ""}, {"-", ""}, {".", ""}, {"e5", ""}, {".e5", ""}, {"1e", ""}, {"1e+", ""},
	{" 1", ""}, {"1 ", ""}, {"NaN", ""}, {"Infinity", ""}, {"-inf", ""}, {"1_000", ""}, {"0x10", ""},
	{"1.2.3", ""}, {"١", ""}, {"1e-16384", ""}, {"1e131072", ""}, {"0e1073741823", ""}, {"0e-20000", ""},
	{"1e99999999999999999999", ""}, {"--1", ""}, {"1e--1", ""},
}

func TestAppendNumericString(t *testing.T) {
	for _, c := range numericStringCases {
		got, err := AppendNumericString(nil, c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%q accepted as %q", c.in, got)
		case c.want != "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && string(got) != c.want:
			t.Errorf("%q: got %.60q, want %.60q", c.in, got, c.want)
		}
	}
}

func TestAppendNumericDecimal128Canonical(t *testing.T) {
	// Coefficients above 10^34-1 are non-canonical and read as zero (IEEE 754-2008 3.5.2), in
	// either encoding form; the exponent still sets the scale.
	cases := []struct {
		h, l uint64
		want string
	}{
		{0x3040000000000000 | 0x1ed09bead87c0, 0x378d8e63ffffffff, "9999999999999999999999999999999999"},
		{0x3040000000000000 | 0x1ed09bead87c0, 0x378d8e6400000000, "0"},
		{0x3040000000000000 | 0x1ffffffffffff, 0xffffffffffffffff, "0"},
		{0x6c10000000000000, 0, "0"},   // 0b11 form, exponent 0
		{0xec0f800000000000, 1, "0.0"}, // 0b11 form, exponent -1, negative
		{0x7c00000000000000, 0, "NaN"},
		{0xfe00000000000000, 0, "NaN"}, // signalling, negative
		{0x7800000000000000, 0, "Infinity"},
		{0xf800000000000000, 0, "-Infinity"},
	}
	for _, c := range cases {
		if got := string(AppendNumericDecimal128(nil, bson.NewDecimal128(c.h, c.l))); got != c.want {
			t.Errorf("%016x%016x: got %s, want %s", c.h, c.l, got, c.want)
		}
	}
}

func TestAppendColumnAllocs(t *testing.T) {
	vals := []struct {
		t pipeline.ColumnType
		v bson.RawValue
	}{
		{pipeline.TypeText, rawValue(t, "some text")},
		{pipeline.TypeInt8, rawValue(t, int64(5))},
		{pipeline.TypeTimestamptz, rawValue(t, bson.DateTime(1764324672345))},
		{pipeline.TypeNumeric, rawValue(t, mustDecimal(t, "7.25"))},
		{pipeline.TypeNumeric, rawValue(t, 7.25)},
		{pipeline.TypeTextArray, rawValue(t, bson.A{"b", "a"})},
		{pipeline.TypeJSONB, rawValue(t, bson.D{{Key: "a", Value: "b"}})},
		{pipeline.TypeUUID, rawValue(t, "123e4567-e89b-12d3-a456-426614174000")},
	}
	buf := make([]byte, 0, 1024)
	var fixed int
	opt := Options{SortArray: true, Fixed: &fixed}
	n := testing.AllocsPerRun(100, func() {
		buf = buf[:0]
		for _, c := range vals {
			var err *ValueError
			if buf, _, err = AppendColumn(buf, c.t, c.v, opt); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
