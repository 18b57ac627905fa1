package transforms

import (
	"encoding/binary"
	"fmt"
)

// MaxDepth bounds how deeply documents and arrays may nest (the top-level document is depth 1).
// The BSON spec sets no bound, but MongoDB never stores more than its maxBSONDepth ceiling of
// 1000, and without a bound a crafted 16 MiB document could nest two million levels and exhaust
// the stack of every recursive reader after this one. PostgreSQL's jsonb accepts this depth.
const MaxDepth = 1000

// InvalidBSONError is a document whose frame is intact but whose content breaks the BSON spec.
// Error() is the reject reason of mapping.md ("Reading BSON and corrupt input").
type InvalidBSONError struct {
	// Offset is the byte of the document where the fault was found.
	Offset int
	What   string
}

func (e *InvalidBSONError) Error() string {
	return fmt.Sprintf("invalid BSON: %s, at byte %d of the document", e.What, e.Offset)
}

// ValidateStrict checks one whole document against the BSON spec: every length, type byte,
// cstring terminator, boolean (0 or 1), string length (positive, counting its NUL, which must be
// there), binary subtype 2 inner length, code-with-scope length, nested documents and arrays,
// and that the document ends exactly at its length with its trailing NUL. It does not check
// UTF-8 or NULs inside strings: those are value checks (see AppendJSONB, AppendColumn), which
// apply only to stored values and which --fix-strings can mend. Array keys are not checked
// either: arrays are read by position.
//
// It returns nil or an *InvalidBSONError, and never panics, whatever doc holds.
func ValidateStrict(doc []byte) error {
	if len(doc) < 5 {
		return &InvalidBSONError{0, fmt.Sprintf("document of %d bytes is shorter than 5", len(doc))}
	}
	if n := int32(binary.LittleEndian.Uint32(doc)); int64(n) != int64(len(doc)) {
		return &InvalidBSONError{0, fmt.Sprintf("document length %d does not match its %d bytes", n, len(doc))}
	}
	v := validator{b: doc}
	_, err := v.document(0, len(doc), 1, "document")
	if err != nil {
		return err
	}
	return nil
}

type validator struct{ b []byte }

func (v *validator) fail(off int, format string, args ...any) *InvalidBSONError {
	return &InvalidBSONError{Offset: off, What: fmt.Sprintf(format, args...)}
}

// int32At reads a little-endian int32 at off if the 4 bytes lie before lim.
func (v *validator) int32At(off, lim int) (int, bool) {
	if off < 0 || lim-off < 4 {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(v.b[off:]))), true
}

// document validates the document (or array, or scope) starting at off, which must end at or
// before lim, and returns its end.
func (v *validator) document(off, lim, depth int, what string) (int, *InvalidBSONError) {
	if depth > MaxDepth {
		return 0, v.fail(off, "nesting deeper than %d levels", MaxDepth)
	}
	n, ok := v.int32At(off, lim)
	if !ok {
		return 0, v.fail(off, "%s length truncated", what)
	}
	if n < 5 {
		return 0, v.fail(off, "%s length %d is below 5", what, n)
	}
	if n > lim-off {
		return 0, v.fail(off, "%s length %d runs past its container", what, n)
	}
	end := off + n
	last := end - 1
	if v.b[last] != 0 {
		return 0, v.fail(last, "%s does not end with NUL", what)
	}
	pos := off + 4
	for pos < last {
		next, err := v.element(pos, last, depth)
		if err != nil {
			return 0, err
		}
		pos = next
	}
	return end, nil
}

// element validates one element (type byte, name, value) starting at off; lim is the offset of
// the enclosing document's terminator, which no element may reach into.
func (v *validator) element(off, lim, depth int) (int, *InvalidBSONError) {
	t := v.b[off]
	if t == 0 {
		return 0, v.fail(off, "document terminator before the end of its document")
	}
	pos, err := v.cstring(off+1, lim, "element name")
	if err != nil {
		return 0, err
	}
	return v.value(t, off, pos, lim, depth)
}

// cstring validates a NUL-terminated string at off and returns the offset after its NUL.
func (v *validator) cstring(off, lim int, what string) (int, *InvalidBSONError) {
	for i := off; i < lim; i++ {
		if v.b[i] == 0 {
			return i + 1, nil
		}
	}
	return 0, v.fail(off, "%s not terminated", what)
}

// str validates a BSON string (int32 length counting the NUL, bytes, NUL) at off.
func (v *validator) str(off, lim int, what string) (int, *InvalidBSONError) {
	n, ok := v.int32At(off, lim)
	if !ok {
		return 0, v.fail(off, "%s length truncated", what)
	}
	if n < 1 {
		return 0, v.fail(off, "%s length %d is not positive", what, n)
	}
	if n > lim-off-4 {
		return 0, v.fail(off, "%s length %d runs past its document", what, n)
	}
	end := off + 4 + n
	if v.b[end-1] != 0 {
		return 0, v.fail(end-1, "%s not NUL-terminated", what)
	}
	return end, nil
}

func (v *validator) fixed(elem, off, lim, n int, what string) (int, *InvalidBSONError) {
	if lim-off < n {
		return 0, v.fail(elem, "%s value truncated", what)
	}
	return off + n, nil
}

// value validates the value of type t at off; elem is the element's first byte, for messages.
func (v *validator) value(t byte, elem, off, lim, depth int) (int, *InvalidBSONError) {
	switch t {
	case 0x01: // double
		return v.fixed(elem, off, lim, 8, "double")
	case 0x02:
		return v.str(off, lim, "string")
	case 0x03:
		return v.document(off, lim, depth+1, "embedded document")
	case 0x04:
		return v.document(off, lim, depth+1, "array")
	case 0x05:
		return v.binary(off, lim)
	case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, maxKey, minKey
		return off, nil
	case 0x07:
		return v.fixed(elem, off, lim, 12, "ObjectId")
	case 0x08:
		if off >= lim {
			return 0, v.fail(elem, "boolean value truncated")
		}
		if b := v.b[off]; b > 1 {
			return 0, v.fail(off, "boolean byte 0x%02x is neither 0 nor 1", b)
		}
		return off + 1, nil
	case 0x09:
		return v.fixed(elem, off, lim, 8, "date")
	case 0x0B:
		pos, err := v.cstring(off, lim, "regex pattern")
		if err != nil {
			return 0, err
		}
		return v.cstring(pos, lim, "regex options")
	case 0x0C:
		pos, err := v.str(off, lim, "DBPointer namespace")
		if err != nil {
			return 0, err
		}
		return v.fixed(elem, pos, lim, 12, "DBPointer")
	case 0x0D:
		return v.str(off, lim, "JavaScript code")
	case 0x0E:
		return v.str(off, lim, "symbol")
	case 0x0F:
		return v.codeWithScope(off, lim, depth)
	case 0x10:
		return v.fixed(elem, off, lim, 4, "int32")
	case 0x11:
		return v.fixed(elem, off, lim, 8, "timestamp")
	case 0x12:
		return v.fixed(elem, off, lim, 8, "int64")
	case 0x13:
		return v.fixed(elem, off, lim, 16, "decimal128")
	}
	return 0, v.fail(elem, "unknown element type 0x%02x", t)
}

func (v *validator) binary(off, lim int) (int, *InvalidBSONError) {
	n, ok := v.int32At(off, lim)
	if !ok {
		return 0, v.fail(off, "binary length truncated")
	}
	if n < 0 {
		return 0, v.fail(off, "binary length %d is negative", n)
	}
	if n > lim-off-5 {
		return 0, v.fail(off, "binary length %d runs past its document", n)
	}
	if v.b[off+4] == 0x02 {
		// The old binary subtype wraps its bytes in a second length that must agree.
		inner, ok := v.int32At(off+5, off+5+n)
		if !ok {
			return 0, v.fail(off+5, "binary subtype 2 inner length truncated")
		}
		if inner != n-4 {
			return 0, v.fail(off+5, "binary subtype 2 inner length %d does not match outer length %d", inner, n)
		}
	}
	return off + 5 + n, nil
}

func (v *validator) codeWithScope(off, lim, depth int) (int, *InvalidBSONError) {
	n, ok := v.int32At(off, lim)
	if !ok {
		return 0, v.fail(off, "code with scope length truncated")
	}
	// 4 (this length) + 5 (shortest string) + 5 (empty scope).
	if n < 14 {
		return 0, v.fail(off, "code with scope length %d is below 14", n)
	}
	if n > lim-off {
		return 0, v.fail(off, "code with scope length %d runs past its document", n)
	}
	end := off + n
	pos, err := v.str(off+4, end, "code with scope code")
	if err != nil {
		return 0, err
	}
	scopeEnd, err := v.document(pos, end, depth+1, "code with scope scope")
	if err != nil {
		return 0, err
	}
	if scopeEnd != end {
		return 0, v.fail(off, "code with scope length %d does not match its contents (%d bytes)", n, scopeEnd-off)
	}
	return end, nil
}
