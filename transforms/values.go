package transforms

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

// AppendColumn writes v as a value of a column of type t (mapping.md, BSON → PostgreSQL column
// and its list of exact conversions): binary send format, or text for numeric and jsonb. A
// missing value (Type 0) or a BSON null returns null true and writes nothing; whether NULL is
// allowed is the caller's call. Anything the column cannot hold exactly is a *ValueError at
// opt.Path (deeper for arrays and documents); on error dst comes back as it was.
//
// BSON types a typed column never takes (regex, JavaScript, symbol, DBPointer, MinKey, MaxKey,
// undefined, and any other mismatch) reject with "expected <column type>, found <BSON type>".
// A uuid column does not take an ObjectId: ids go through RowID.
func AppendColumn(dst []byte, t pipeline.ColumnType, v bson.RawValue, opt Options) ([]byte, bool, *ValueError) {
	bt := byte(v.Type)
	if bt == 0 || v.Type == bson.TypeNull {
		return dst, true, nil
	}
	if n, ok := valueSize(bt, v.Value); !ok || n != len(v.Value) {
		return dst, false, valueErr(&opt, malformed)
	}
	start := len(dst)
	out, err := appendColumn(dst, t, bt, v.Value, &opt)
	if err != nil {
		return out[:start], false, err
	}
	return out, false, nil
}

func appendColumn(dst []byte, t pipeline.ColumnType, bt byte, val []byte, opt *Options) ([]byte, *ValueError) {
	switch t {
	case pipeline.TypeJSONB:
		return AppendJSONBValue(dst, bson.RawValue{Type: bson.Type(bt), Value: val}, *opt)

	case pipeline.TypeText:
		switch bt {
		case 0x02:
			s, _, _ := bsonString(val)
			out, mended, fault := appendCleanText(dst, s, opt.FixStrings)
			if fault != "" {
				return dst, valueErr(opt, "string "+fault)
			}
			if mended {
				opt.addFixed(1)
			}
			return out, nil
		case 0x07:
			return hex.AppendEncode(dst, val), nil
		}

	case pipeline.TypeUUID:
		switch bt {
		case 0x05:
			if sub, data, ok := binaryData(val); ok && sub == 0x04 && len(data) == 16 {
				return append(dst, data...), nil
			}
			return dst, valueErr(opt, "expected uuid, found binary that is not subtype 4 of 16 bytes")
		case 0x02:
			s, _, _ := bsonString(val)
			u, ok := parseUUID(s)
			if !ok {
				return dst, valueErr(opt, "string is not a hyphenated UUID")
			}
			return append(dst, u[:]...), nil
		}

	case pipeline.TypeInt2, pipeline.TypeInt4, pipeline.TypeInt8:
		var i int64
		switch bt {
		case 0x10:
			i = int64(int32(binary.LittleEndian.Uint32(val)))
		case 0x12:
			i = int64(binary.LittleEndian.Uint64(val))
		case 0x11:
			if t != pipeline.TypeInt8 {
				return dst, mismatch(opt, t, bt)
			}
			// t<<32 | i, as the uint64 BSON stores; seconds from 2^31 on (2038) read negative.
			return binary.BigEndian.AppendUint64(dst, binary.LittleEndian.Uint64(val)), nil
		default:
			return dst, mismatch(opt, t, bt)
		}
		switch t {
		case pipeline.TypeInt2:
			if i < math.MinInt16 || i > math.MaxInt16 {
				return dst, valueErr(opt, "value out of range for smallint")
			}
			return AppendInt2(dst, int16(i)), nil
		case pipeline.TypeInt4:
			if i < math.MinInt32 || i > math.MaxInt32 {
				return dst, valueErr(opt, "value out of range for integer")
			}
			return AppendInt4(dst, int32(i)), nil
		}
		return AppendInt8(dst, i), nil

	case pipeline.TypeFloat8:
		if bt == 0x01 {
			return AppendFloat8(dst, math.Float64frombits(binary.LittleEndian.Uint64(val))), nil
		}

	case pipeline.TypeNumeric:
		switch bt {
		case 0x13:
			d := bson.NewDecimal128(binary.LittleEndian.Uint64(val[8:]), binary.LittleEndian.Uint64(val))
			return AppendNumericDecimal128(dst, d), nil
		case 0x10:
			return AppendNumericInt64(dst, int64(int32(binary.LittleEndian.Uint32(val)))), nil
		case 0x12:
			return AppendNumericInt64(dst, int64(binary.LittleEndian.Uint64(val))), nil
		case 0x01:
			out, err := AppendNumericFloat64(dst, math.Float64frombits(binary.LittleEndian.Uint64(val)))
			if err != nil {
				err.Path = opt.Path
			}
			return out, err
		case 0x02:
			if opt.NumberAsString {
				s, _, _ := bsonString(val)
				out, err := AppendNumericString(dst, string(s))
				if err != nil {
					err.Path = opt.Path
				}
				return out, err
			}
		}

	case pipeline.TypeBool:
		if bt == 0x08 {
			return AppendBool(dst, val[0] != 0), nil
		}

	case pipeline.TypeTimestamptz:
		switch bt {
		case 0x09:
			out, err := AppendTimestamptzMillis(dst, int64(binary.LittleEndian.Uint64(val)))
			if err != nil {
				err.Path = opt.Path
			}
			return out, err
		case 0x02:
			if opt.DateAsString {
				s, _, _ := bsonString(val)
				return appendTimestamptzString(dst, string(s), opt)
			}
		}

	case pipeline.TypeBytea:
		if bt == 0x05 {
			_, data, ok := binaryData(val)
			if !ok {
				return dst, valueErr(opt, malformed)
			}
			return append(dst, data...), nil
		}

	case pipeline.TypeTextArray:
		if bt == 0x04 {
			return appendTextArrayBSON(dst, val, opt)
		}

	case pipeline.TypeTSVector:
		return dst, valueErr(opt, "tsvector columns are generated, never written")

	default:
		return dst, valueErr(opt, "unknown column type "+strconv.Itoa(int(t)))
	}
	return dst, mismatch(opt, t, bt)
}

func mismatch(opt *Options, t pipeline.ColumnType, bt byte) *ValueError {
	return valueErr(opt, "expected "+t.SQL()+", found "+bsonTypeName(bt))
}

// TypeName is a BSON type's alias as MongoDB's $type operator spells it, the name operators
// know from the shell; reject reasons use it.
func TypeName(t bson.Type) string { return bsonTypeName(byte(t)) }

func bsonTypeName(t byte) string {
	switch t {
	case 0x01:
		return "double"
	case 0x02:
		return "string"
	case 0x03:
		return "object"
	case 0x04:
		return "array"
	case 0x05:
		return "binData"
	case 0x06:
		return "undefined"
	case 0x07:
		return "objectId"
	case 0x08:
		return "bool"
	case 0x09:
		return "date"
	case 0x0A:
		return "null"
	case 0x0B:
		return "regex"
	case 0x0C:
		return "dbPointer"
	case 0x0D:
		return "javascript"
	case 0x0E:
		return "symbol"
	case 0x0F:
		return "javascriptWithScope"
	case 0x10:
		return "int"
	case 0x11:
		return "timestamp"
	case 0x12:
		return "long"
	case 0x13:
		return "decimal"
	case 0x7F:
		return "maxKey"
	case 0xFF:
		return "minKey"
	}
	return "type 0x" + hex.EncodeToString([]byte{t})
}

// AppendUUID writes a uuid in binary send format: its 16 bytes.
func AppendUUID(dst []byte, u [16]byte) []byte { return append(dst, u[:]...) }

// AppendInt2 writes a smallint in binary send format.
func AppendInt2(dst []byte, i int16) []byte { return binary.BigEndian.AppendUint16(dst, uint16(i)) }

// AppendInt4 writes an integer in binary send format.
func AppendInt4(dst []byte, i int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(i)) }

// AppendInt8 writes a bigint in binary send format.
func AppendInt8(dst []byte, i int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(i)) }

// canonicalNaN is the NaN PostgreSQL itself produces ('NaN'::float8). A NaN's payload bits
// would survive a binary COPY as sent, so one pattern keeps checksums independent of them.
const canonicalNaN = 0x7ff8000000000000

// AppendFloat8 writes a double precision in binary send format. NaN and ±Inf are kept, as
// float8 holds them; every NaN is written as PostgreSQL's own NaN. -0 keeps its sign, as
// float8 does.
func AppendFloat8(dst []byte, f float64) []byte {
	bits := math.Float64bits(f)
	if math.IsNaN(f) {
		bits = canonicalNaN
	}
	return binary.BigEndian.AppendUint64(dst, bits)
}

// AppendBool writes a boolean in binary send format.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// PostgreSQL's timestamp range, as milliseconds since 1970 (timestamp.h: MIN_TIMESTAMP is
// 4714-11-24 00:00 BC, END_TIMESTAMP is 294277-01-01 00:00, exclusive), and its epoch.
const (
	pgEpochMillis   = 946684800000 // 2000-01-01T00:00:00Z
	minTimestampMs  = -211813488000000 + pgEpochMillis
	endTimestampMs  = 9223371331200000 + pgEpochMillis
	pgEpochUnixSecs = pgEpochMillis / 1000
)

// AppendTimestamptzMillis writes a BSON date (ms since 1970, UTC) as a timestamptz in binary
// send format: int64 microseconds since 2000-01-01 UTC. Dates outside PostgreSQL's range
// (4714-11-24 BC to 294276-12-31 AD) are refused.
func AppendTimestamptzMillis(dst []byte, ms int64) ([]byte, *ValueError) {
	if ms < minTimestampMs || ms >= endTimestampMs {
		return dst, &ValueError{Reason: "date out of range for timestamptz"}
	}
	// Subtract first: ms*1000 would overflow near the top of the range.
	return AppendInt8(dst, (ms-pgEpochMillis)*1000), nil
}

// appendTimestamptzString reads an RFC 3339 date-time (with a zone, any fraction up to
// microseconds) for a field the spec marks "date as string".
func appendTimestamptzString(dst []byte, s string, opt *Options) ([]byte, *ValueError) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return dst, valueErr(opt, "string is not an RFC 3339 date-time")
	}
	if t.Nanosecond()%1000 != 0 {
		return dst, valueErr(opt, "date-time string is more precise than microseconds")
	}
	// time.Parse keeps years within 0000–9999, inside PostgreSQL's range.
	us := (t.Unix()-pgEpochUnixSecs)*1e6 + int64(t.Nanosecond()/1000)
	return AppendInt8(dst, us), nil
}

// TextElem is one element of a text[]: Null marks a NULL element.
type TextElem struct {
	S    string
	Null bool
}

// PostgreSQL's array_send header: ndim, has-null flag, element type, then per dimension its
// size and lower bound (1).
const textOID = 25

func appendArrayHeader(dst []byte, n int, hasNull bool) []byte {
	if n == 0 {
		// An empty array has no dimensions at all.
		dst = AppendInt4(dst, 0)
		dst = AppendInt4(dst, 0)
		return AppendInt4(dst, textOID)
	}
	flag := int32(0)
	if hasNull {
		flag = 1
	}
	dst = AppendInt4(dst, 1)
	dst = AppendInt4(dst, flag)
	dst = AppendInt4(dst, textOID)
	dst = AppendInt4(dst, int32(n))
	return AppendInt4(dst, 1)
}

// AppendTextArray writes a one-dimensional text[] in binary send format (array_send); no
// elements give the empty array '{}'. Elements are written as given: a caller with untrusted
// strings passes them through CleanString first.
func AppendTextArray(dst []byte, elems []TextElem) []byte {
	hasNull := false
	for _, e := range elems {
		hasNull = hasNull || e.Null
	}
	dst = appendArrayHeader(dst, len(elems), hasNull)
	for _, e := range elems {
		if e.Null {
			dst = AppendInt4(dst, -1)
			continue
		}
		dst = AppendInt4(dst, int32(len(e.S)))
		dst = append(dst, e.S...)
	}
	return dst
}

// appendTextArrayBSON writes a BSON array of strings (and nulls) as text[].
func appendTextArrayBSON(dst, arr []byte, opt *Options) ([]byte, *ValueError) {
	if len(arr) < 5 {
		return dst, valueErr(opt, malformed)
	}
	// First pass: every element must be a string or null; count them.
	n, hasNull, end := 0, false, len(arr)-1
	for pos := 4; pos < end; n++ {
		t, _, _, next, ok := readElement(arr, pos, end)
		if !ok {
			return dst, valueErr(opt, malformed)
		}
		switch t {
		case 0x0A:
			hasNull = true
		case 0x02:
		default:
			return dst, &ValueError{
				Path:   joinPath(opt.Path, strconv.Itoa(n)),
				Reason: "expected text[] element string, found " + bsonTypeName(t),
			}
		}
		pos = next
	}
	if opt.SortArray {
		return appendSortedTextArray(dst, arr, n, hasNull, opt)
	}
	dst = appendArrayHeader(dst, n, hasNull)
	mendedN := 0
	for pos, i := 4, 0; pos < end; i++ {
		t, _, val, next, _ := readElement(arr, pos, end)
		pos = next
		if t == 0x0A {
			dst = AppendInt4(dst, -1)
			continue
		}
		s, _, _ := bsonString(val)
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var mended bool
		var fault string
		if dst, mended, fault = appendCleanText(dst, s, opt.FixStrings); fault != "" {
			return dst, &ValueError{Path: joinPath(opt.Path, strconv.Itoa(i)), Reason: "string " + fault}
		}
		if mended {
			mendedN++
		}
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	}
	opt.addFixed(mendedN)
	return dst, nil
}

// appendSortedTextArray writes the n elements of a checked BSON string array bytewise
// ascending, duplicates kept, NULLs last (where ORDER BY puts them).
func appendSortedTextArray(dst, arr []byte, n int, hasNull bool, opt *Options) ([]byte, *ValueError) {
	var small [16][]byte
	strs := small[:0]
	nulls, mendedN := 0, 0
	end := len(arr) - 1
	for pos, i := 4, 0; pos < end; i++ {
		t, _, val, next, _ := readElement(arr, pos, end)
		pos = next
		if t == 0x0A {
			nulls++
			continue
		}
		s, _, _ := bsonString(val)
		if bytes.IndexByte(s, 0) >= 0 || !utf8.Valid(s) {
			// Mend into its own buffer; the sort needs every element at once.
			mended, _, fault := appendCleanText(nil, s, opt.FixStrings)
			if fault != "" {
				return dst, &ValueError{Path: joinPath(opt.Path, strconv.Itoa(i)), Reason: "string " + fault}
			}
			mendedN++
			s = mended
		}
		strs = append(strs, s)
	}
	slices.SortFunc(strs, bytes.Compare)
	dst = appendArrayHeader(dst, n, hasNull)
	for _, s := range strs {
		dst = AppendInt4(dst, int32(len(s)))
		dst = append(dst, s...)
	}
	for ; nulls > 0; nulls-- {
		dst = AppendInt4(dst, -1)
	}
	opt.addFixed(mendedN)
	return dst, nil
}
