package transforms

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// AppendJSONB writes doc as jsonb text in PostgreSQL's canonical form, byte for byte what
// PostgreSQL 15 prints for that text cast to jsonb and back (mapping.md, BSON → JSONB): object
// keys ordered by byte length then bytes, ", " and ": " separators, strings escaped as
// escape_json does, numbers in plain decimal notation as numeric prints them, exotic types as
// their Extended JSON v2 canonical tags. So a row's checksum is the same computed here or from
// the target.
//
// It rejects (a *ValueError) duplicate keys in one document and NUL or invalid UTF-8 in any
// string-like value or key, unless opt.FixStrings mends them (each mend counted in opt.Fixed).
// doc must be strictly valid (ValidateStrict); anything else is rejected, never a panic.
// It allocates only for documents of more than 32 keys and to mend strings.
func AppendJSONB(dst []byte, doc bson.Raw, opt Options) ([]byte, *ValueError) {
	start := len(dst)
	w := jsonbWriter{dst: dst, fix: opt.FixStrings}
	if err := w.document(doc); err != nil {
		err.Path = joinPath(opt.Path, err.Path)
		return w.dst[:start], err
	}
	opt.addFixed(w.fixed)
	return w.dst, nil
}

// AppendJSONBValue writes any single BSON value (a sub-document, an array or a scalar) as
// AppendJSONB writes it inside a document: the text of a jsonb column holding that value.
// A BSON null is the JSON null; a missing value (Type 0) is an error, since only the caller
// knows whether it means SQL NULL (AppendColumn does).
func AppendJSONBValue(dst []byte, v bson.RawValue, opt Options) ([]byte, *ValueError) {
	start := len(dst)
	w := jsonbWriter{dst: dst, fix: opt.FixStrings}
	if n, ok := valueSize(byte(v.Type), v.Value); !ok || n != len(v.Value) {
		return dst, valueErr(&opt, malformed)
	}
	if err := w.value(byte(v.Type), v.Value); err != nil {
		err.Path = joinPath(opt.Path, err.Path)
		return w.dst[:start], err
	}
	opt.addFixed(w.fixed)
	return w.dst, nil
}

// malformed is the reason for BSON that ValidateStrict would have refused: callers validate
// first, so this only guards against misuse.
const malformed = "malformed BSON value"

// jsonbWriter holds no pointer into the caller's Options: the recursion leaks its contents as
// far as escape analysis can tell, and the caller's counter must stay on the caller's stack.
type jsonbWriter struct {
	dst   []byte
	fix   bool
	fixed int // values mended, added to Options.Fixed on success
	depth int
}

// entry is one element of a document being written, as offsets: with no pointers in it, the
// sort moves plain bytes, with no GC write barriers, and the array fits on the stack.
type entry struct {
	prefix     uint64 // the key's first 8 bytes, big-endian, zero-padded: most comparisons end here
	koff, klen int32  // the key in the document, or in docKeys.mended when mended is set
	voff, vlen int32  // the value in the document
	t          byte
	mended     bool
}

func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var p uint64
	for i := 0; i < 8; i++ {
		p <<= 8
		if i < len(key) {
			p |= uint64(key[i])
		}
	}
	return p
}

// docKeys resolves entries' keys.
type docKeys struct {
	doc    []byte
	mended []byte // keys rewritten under FixStrings, rarely any
}

func (k *docKeys) key(e *entry) []byte {
	if e.mended {
		return k.mended[e.koff : e.koff+e.klen]
	}
	return k.doc[e.koff : e.koff+e.klen]
}

// compare is jsonb's key order (lengthCompareJsonbString): shorter first, then bytewise.
func (k *docKeys) compare(a, b *entry) int {
	switch {
	case a.klen != b.klen:
		return int(a.klen - b.klen)
	case a.prefix < b.prefix:
		return -1
	case a.prefix > b.prefix:
		return 1
	case a.klen <= 8:
		return 0
	}
	return bytes.Compare(k.key(a)[8:], k.key(b)[8:])
}

func (k *docKeys) sort(ents []entry) {
	if len(ents) <= 32 {
		// Insertion sort: documents are mostly small and often nearly ordered already, and a
		// comparison mostly costs two integer compares.
		for i := 1; i < len(ents); i++ {
			for j := i; j > 0 && k.compare(&ents[j-1], &ents[j]) > 0; j-- {
				ents[j-1], ents[j] = ents[j], ents[j-1]
			}
		}
		return
	}
	slices.SortFunc(ents, func(a, b entry) int { return k.compare(&a, &b) })
}

func (w *jsonbWriter) enter() *ValueError {
	w.depth++
	if w.depth > MaxDepth {
		return &ValueError{Reason: "nesting deeper than " + strconv.Itoa(MaxDepth) + " levels"}
	}
	return nil
}

func (w *jsonbWriter) document(doc []byte) *ValueError {
	if err := w.enter(); err != nil {
		return err
	}
	if len(doc) < 5 || int(int32(binary.LittleEndian.Uint32(doc))) != len(doc) || doc[len(doc)-1] != 0 {
		return &ValueError{Reason: malformed}
	}
	var small [32]entry
	ents := small[:0]
	keys := docKeys{doc: doc}
	for pos, end := 4, len(doc)-1; pos < end; {
		t, key, val, next, ok := readElement(doc, pos, end)
		if !ok {
			return &ValueError{Reason: malformed}
		}
		e := entry{
			koff: int32(pos + 1), klen: int32(len(key)),
			voff: int32(next - len(val)), vlen: int32(len(val)),
			t: t,
		}
		if !utf8.Valid(key) {
			if !w.fix {
				return &ValueError{Path: pathKey(key), Reason: "key " + faultUTF8}
			}
			e.koff, e.mended = int32(len(keys.mended)), true
			keys.mended = appendMended(keys.mended, key)
			e.klen = int32(len(keys.mended)) - e.koff
			key = keys.key(&e)
			w.fixed++
		}
		e.prefix = keyPrefix(key)
		ents = append(ents, e)
		pos = next
	}
	keys.sort(ents)
	for i := 1; i < len(ents); i++ {
		if keys.compare(&ents[i-1], &ents[i]) == 0 {
			k := keys.key(&ents[i])
			return &ValueError{Path: pathKey(k), Reason: "duplicate key " + strconv.Quote(string(k))}
		}
	}
	w.dst = append(w.dst, '{')
	for i := range ents {
		e := &ents[i]
		if i > 0 {
			w.dst = append(w.dst, ',', ' ')
		}
		key := keys.key(e)
		// Keys were checked or mended above, so this cannot fault.
		w.dst, _, _ = appendJSONString(w.dst, key, false)
		w.dst = append(w.dst, ':', ' ')
		if err := w.value(e.t, doc[e.voff:e.voff+e.vlen]); err != nil {
			err.Path = joinPath(pathKey(key), err.Path)
			return err
		}
	}
	w.dst = append(w.dst, '}')
	w.depth--
	return nil
}

func (w *jsonbWriter) array(arr []byte) *ValueError {
	if err := w.enter(); err != nil {
		return err
	}
	if len(arr) < 5 || int(int32(binary.LittleEndian.Uint32(arr))) != len(arr) || arr[len(arr)-1] != 0 {
		return &ValueError{Reason: malformed}
	}
	w.dst = append(w.dst, '[')
	n := 0
	for pos, end := 4, len(arr)-1; pos < end; n++ {
		t, _, val, next, ok := readElement(arr, pos, end)
		if !ok {
			return &ValueError{Reason: malformed}
		}
		if n > 0 {
			w.dst = append(w.dst, ',', ' ')
		}
		if err := w.value(t, val); err != nil {
			err.Path = joinPath(strconv.Itoa(n), err.Path)
			return err
		}
		pos = next
	}
	w.dst = append(w.dst, ']')
	w.depth--
	return nil
}

// str writes a string-like value, turning a fault into a reject naming what it was.
func (w *jsonbWriter) str(s []byte, what string) *ValueError {
	var mended bool
	var fault string
	w.dst, mended, fault = appendJSONString(w.dst, s, w.fix)
	if fault != "" {
		return &ValueError{Reason: what + " " + fault}
	}
	if mended {
		w.fixed++
	}
	return nil
}

// bsonString returns the bytes of a BSON string value (int32 length, bytes, NUL) at the start
// of b, and the rest of b.
func bsonString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 || n > len(b)-4 {
		return nil, nil, false
	}
	return b[4 : 4+n-1], b[4+n:], true
}

func (w *jsonbWriter) value(t byte, val []byte) *ValueError {
	switch t {
	case 0x01:
		f := math.Float64frombits(binary.LittleEndian.Uint64(val))
		switch {
		case math.IsNaN(f):
			w.dst = append(w.dst, `{"$numberDouble": "NaN"}`...)
		case math.IsInf(f, 1):
			w.dst = append(w.dst, `{"$numberDouble": "Infinity"}`...)
		case math.IsInf(f, -1):
			w.dst = append(w.dst, `{"$numberDouble": "-Infinity"}`...)
		default:
			w.dst = appendFiniteFloat(w.dst, f)
		}
	case 0x02:
		s, _, ok := bsonString(val)
		if !ok {
			return &ValueError{Reason: malformed}
		}
		return w.str(s, "string")
	case 0x03:
		return w.document(val)
	case 0x04:
		return w.array(val)
	case 0x05:
		sub, data, ok := binaryData(val)
		if !ok {
			return &ValueError{Reason: malformed}
		}
		if sub == 0x04 && len(data) == 16 {
			w.dst = append(w.dst, '"')
			w.dst = appendUUIDText(w.dst, data)
			w.dst = append(w.dst, '"')
			return nil
		}
		w.dst = append(w.dst, `{"$binary": {"base64": "`...)
		w.dst = base64.StdEncoding.AppendEncode(w.dst, data)
		w.dst = append(w.dst, `", "subType": "`...)
		w.dst = append(w.dst, hexDigits[sub>>4], hexDigits[sub&0xf])
		w.dst = append(w.dst, `"}}`...)
	case 0x06:
		w.dst = append(w.dst, `{"$undefined": true}`...)
	case 0x07:
		w.dst = append(w.dst, '"')
		w.dst = hex.AppendEncode(w.dst, val)
		w.dst = append(w.dst, '"')
	case 0x08:
		if val[0] != 0 {
			w.dst = append(w.dst, "true"...)
		} else {
			w.dst = append(w.dst, "false"...)
		}
	case 0x09:
		w.dst = appendJSONDate(w.dst, int64(binary.LittleEndian.Uint64(val)))
	case 0x0A:
		w.dst = append(w.dst, "null"...)
	case 0x0B:
		return w.regex(val)
	case 0x0C:
		ns, rest, ok := bsonString(val)
		if !ok || len(rest) != 12 {
			return &ValueError{Reason: malformed}
		}
		w.dst = append(w.dst, `{"$dbPointer": {"$id": {"$oid": "`...)
		w.dst = hex.AppendEncode(w.dst, rest)
		w.dst = append(w.dst, `"}, "$ref": `...)
		if err := w.str(ns, "DBPointer namespace"); err != nil {
			return err
		}
		w.dst = append(w.dst, "}}"...)
	case 0x0D, 0x0E:
		s, _, ok := bsonString(val)
		if !ok {
			return &ValueError{Reason: malformed}
		}
		tag, what := `{"$code": `, "JavaScript code"
		if t == 0x0E {
			tag, what = `{"$symbol": `, "symbol"
		}
		w.dst = append(w.dst, tag...)
		if err := w.str(s, what); err != nil {
			return err
		}
		w.dst = append(w.dst, '}')
	case 0x0F:
		if len(val) < 4 {
			return &ValueError{Reason: malformed}
		}
		code, scope, ok := bsonString(val[4:])
		if !ok {
			return &ValueError{Reason: malformed}
		}
		w.dst = append(w.dst, `{"$code": `...)
		if err := w.str(code, "JavaScript code"); err != nil {
			return err
		}
		w.dst = append(w.dst, `, "$scope": `...)
		if err := w.document(scope); err != nil {
			err.Path = joinPath("$scope", err.Path)
			return err
		}
		w.dst = append(w.dst, '}')
	case 0x10:
		w.dst = strconv.AppendInt(w.dst, int64(int32(binary.LittleEndian.Uint32(val))), 10)
	case 0x11:
		// Stored as one little-endian uint64: increment in the low half, seconds in the high.
		i := binary.LittleEndian.Uint32(val)
		ts := binary.LittleEndian.Uint32(val[4:])
		w.dst = append(w.dst, `{"$timestamp": {"i": `...)
		w.dst = strconv.AppendUint(w.dst, uint64(i), 10)
		w.dst = append(w.dst, `, "t": `...)
		w.dst = strconv.AppendUint(w.dst, uint64(ts), 10)
		w.dst = append(w.dst, "}}"...)
	case 0x12:
		w.dst = strconv.AppendInt(w.dst, int64(binary.LittleEndian.Uint64(val)), 10)
	case 0x13:
		d := bson.NewDecimal128(binary.LittleEndian.Uint64(val[8:]), binary.LittleEndian.Uint64(val))
		var special byte
		var neg bool
		w.dst, special, neg = appendDecimal128Finite(w.dst, d)
		switch {
		case special == 'N':
			w.dst = append(w.dst, `{"$numberDecimal": "NaN"}`...)
		case special == 'I' && neg:
			w.dst = append(w.dst, `{"$numberDecimal": "-Infinity"}`...)
		case special == 'I':
			w.dst = append(w.dst, `{"$numberDecimal": "Infinity"}`...)
		}
	case 0x7F:
		w.dst = append(w.dst, `{"$maxKey": 1}`...)
	case 0xFF:
		w.dst = append(w.dst, `{"$minKey": 1}`...)
	default:
		return &ValueError{Reason: malformed}
	}
	return nil
}

// regex writes {"$regularExpression": {"options": ..., "pattern": ...}}: "options" and
// "pattern" have the same length and "o" < "p", so jsonb puts options first. Options are
// written sorted, as canonical Extended JSON has them.
func (w *jsonbWriter) regex(val []byte) *ValueError {
	i := bytes.IndexByte(val, 0)
	if i < 0 || len(val) < i+2 || val[len(val)-1] != 0 {
		return &ValueError{Reason: malformed}
	}
	pattern, options := val[:i], val[i+1:len(val)-1]
	var buf [16]byte
	sorted, mended, ok := sortedOptions(buf[:0], options, w.fix)
	if !ok {
		return &ValueError{Reason: "regex options " + faultUTF8}
	}
	w.dst = append(w.dst, `{"$regularExpression": {"options": `...)
	w.dst, _, _ = appendJSONString(w.dst, sorted, false)
	if mended {
		w.fixed++
	}
	w.dst = append(w.dst, `, "pattern": `...)
	if err := w.str(pattern, "regex pattern"); err != nil {
		return err
	}
	w.dst = append(w.dst, "}}"...)
	return nil
}

// sortedOptions returns the regex options with their characters in ascending code point
// order, mended first when fix is set (a cstring holds no NUL, so only UTF-8 can fail).
func sortedOptions(buf, opts []byte, fix bool) (_ []byte, fixed, ok bool) {
	if !utf8.Valid(opts) {
		if !fix {
			return nil, false, false
		}
		opts = appendMended(nil, opts)
		fixed = true
	}
	ascii := true
	for _, c := range opts {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		buf = append(buf, opts...)
		slices.Sort(buf)
		return buf, fixed, true
	}
	runes := []rune(string(opts))
	slices.Sort(runes)
	return []byte(string(runes)), fixed, true
}

// Dates from year 0000 to 9999 print as RFC 3339 text; others cannot and are tagged.
const (
	minJSONDateMillis = -62167219200000 // 0000-01-01T00:00:00Z
	maxJSONDateMillis = 253402300799999 // 9999-12-31T23:59:59.999Z
)

func appendJSONDate(dst []byte, ms int64) []byte {
	if ms < minJSONDateMillis || ms > maxJSONDateMillis {
		dst = append(dst, `{"$date": {"$numberLong": "`...)
		dst = strconv.AppendInt(dst, ms, 10)
		return append(dst, `"}}`...)
	}
	t := time.UnixMilli(ms).UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	milli := int(((ms % 1000) + 1000) % 1000)
	dst = append(dst, '"')
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, milli, 3)
	return append(dst, 'Z', '"')
}

// appendDigits writes a non-negative v zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

// binaryData returns a binary value's subtype and payload; subtype 2 loses its inner length,
// as Extended JSON writes it.
func binaryData(val []byte) (sub byte, data []byte, ok bool) {
	if len(val) < 5 {
		return 0, nil, false
	}
	n := int(int32(binary.LittleEndian.Uint32(val)))
	if n < 0 || n != len(val)-5 {
		return 0, nil, false
	}
	sub, data = val[4], val[5:]
	if sub == 0x02 {
		if len(data) < 4 || int(int32(binary.LittleEndian.Uint32(data))) != len(data)-4 {
			return 0, nil, false
		}
		data = data[4:]
	}
	return sub, data, true
}

// readElement reads the element at pos of a document whose terminator is at end.
func readElement(doc []byte, pos, end int) (t byte, key, val []byte, next int, ok bool) {
	t = doc[pos]
	k := bytes.IndexByte(doc[pos+1:end], 0)
	if k < 0 {
		return 0, nil, nil, 0, false
	}
	key = doc[pos+1 : pos+1+k]
	vstart := pos + 1 + k + 1
	n, ok := valueSize(t, doc[vstart:end])
	if !ok {
		return 0, nil, nil, 0, false
	}
	return t, key, doc[vstart : vstart+n], vstart + n, true
}

// valueSize is the length of the value of type t at the start of b, if it fits in b.
func valueSize(t byte, b []byte) (int, bool) {
	var n int
	switch t {
	case 0x06, 0x0A, 0x7F, 0xFF:
		n = 0
	case 0x08:
		n = 1
	case 0x10:
		n = 4
	case 0x01, 0x09, 0x11, 0x12:
		n = 8
	case 0x07:
		n = 12
	case 0x13:
		n = 16
	case 0x02, 0x0D, 0x0E, 0x03, 0x04, 0x0F, 0x05, 0x0C:
		if len(b) < 4 {
			return 0, false
		}
		l := int(int32(binary.LittleEndian.Uint32(b)))
		switch t {
		case 0x02, 0x0D, 0x0E:
			n = 4 + l
			if l < 1 {
				return 0, false
			}
		case 0x05:
			n = 5 + l
			if l < 0 {
				return 0, false
			}
		case 0x0C:
			n = 4 + l + 12
			if l < 1 {
				return 0, false
			}
		default:
			n = l
			if l < 5 {
				return 0, false
			}
		}
	case 0x0B:
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return 0, false
		}
		j := bytes.IndexByte(b[i+1:], 0)
		if j < 0 {
			return 0, false
		}
		n = i + 1 + j + 1
	default:
		return 0, false
	}
	if n > len(b) {
		return 0, false
	}
	return n, true
}

// appendUUIDText writes 16 bytes as a lowercase hyphenated UUID.
func appendUUIDText(dst, u []byte) []byte {
	dst = hex.AppendEncode(dst, u[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, u[10:16])
}

// DuplicateKey reports the first key that appears twice in one document of doc, at any depth
// (embedded documents, arrays' documents, code-with-scope scopes), as a path ("a.b.3.k"), in
// the order AppendJSONB would find it. Keys are compared as stored, before any mending. For
// transforms that read fields into normalized columns: Lookup takes the first of two equal
// keys and would drop the other silently. doc must be strictly valid.
func DuplicateKey(doc bson.Raw) (path string, ok bool) {
	return duplicateKey(doc, 1)
}

func duplicateKey(doc []byte, depth int) (string, bool) {
	if depth > MaxDepth || len(doc) < 5 {
		return "", false
	}
	var small [32]entry
	ents := small[:0]
	keys := docKeys{doc: doc}
	for pos, end := 4, len(doc)-1; pos < end; {
		t, key, val, next, ok := readElement(doc, pos, end)
		if !ok {
			return "", false
		}
		ents = append(ents, entry{
			prefix: keyPrefix(key),
			koff:   int32(pos + 1), klen: int32(len(key)),
			voff: int32(next - len(val)), vlen: int32(len(val)),
			t: t,
		})
		pos = next
	}
	keys.sort(ents)
	for i := 1; i < len(ents); i++ {
		if keys.compare(&ents[i-1], &ents[i]) == 0 {
			return pathKey(keys.key(&ents[i])), true
		}
	}
	for i := range ents {
		e := &ents[i]
		if p, ok := duplicateIn(e.t, doc[e.voff:e.voff+e.vlen], depth); ok {
			return joinPath(pathKey(keys.key(e)), p), true
		}
	}
	return "", false
}

// duplicateIn looks for duplicate keys inside one value.
func duplicateIn(t byte, val []byte, depth int) (string, bool) {
	switch t {
	case 0x03:
		return duplicateKey(val, depth+1)
	case 0x04:
		if len(val) < 5 {
			return "", false
		}
		n := 0
		for pos, end := 4, len(val)-1; pos < end; n++ {
			et, _, ev, next, ok := readElement(val, pos, end)
			if !ok {
				return "", false
			}
			if p, ok := duplicateIn(et, ev, depth+1); ok {
				return joinPath(strconv.Itoa(n), p), true
			}
			pos = next
		}
	case 0x0F:
		if len(val) < 4 {
			return "", false
		}
		if _, scope, ok := bsonString(val[4:]); ok {
			if p, ok := duplicateKey(scope, depth+1); ok {
				return joinPath("$scope", p), true
			}
		}
	}
	return "", false
}
