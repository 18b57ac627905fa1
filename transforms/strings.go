package transforms

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// jsonPlain marks the ASCII bytes PostgreSQL's escape_json copies as they are: everything from
// 0x20 up except '"' and '\\' (0x7f included). Bytes from 0x80 are UTF-8 and copied as well.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// plainWord tells whether all eight bytes of x are plain (jsonPlain): ASCII, from 0x20, neither
// '"' nor '\\'. Each test below is the classic "some byte is below n" on eight bytes at once,
// exact as to whether any byte matches once bytes from 0x80 are excluded.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return (x|(x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs == 0
}

// Why a string-like value cannot be stored as it is. a string-like value cannot be stored as it is.
const (
	faultNUL  = "contains NUL"
	faultUTF8 = "is not valid UTF-8"
)

// appendJSONString writes s as a JSON string exactly as PostgreSQL's escape_json prints it
// (\" \\ \b \f \n \r \t, other bytes below 0x20 as \u00xx in lowercase hex, all else raw), in
// the same pass checking for NUL and invalid UTF-8. A fault is returned unless fix is set,
// which drops NULs, writes U+FFFD for each invalid byte and reports the value mended.
func appendJSONString(dst, s []byte, fix bool) (_ []byte, mended bool, fault string) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while they are all plain ASCII: text is mostly that, and a
		// byte-by-byte loop made this the largest cost of converting large documents.
		for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			if c == 0 {
				if !fix {
					return dst, false, faultNUL
				}
				mended = true
			} else {
				dst = appendEscapedByte(dst, c)
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			if !fix {
				return dst, false, faultUTF8
			}
			mended = true
			dst = append(dst, s[start:i]...)
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), mended, ""
}

// appendCleanText writes s as a text value: as is when it holds no NUL and is valid UTF-8 (the
// common case, checked with two fast scans), else mended when fix is set, else a fault.
func appendCleanText(dst, s []byte, fix bool) (_ []byte, mended bool, fault string) {
	if bytes.IndexByte(s, 0) < 0 && utf8.Valid(s) {
		return append(dst, s...), false, ""
	}
	if !fix {
		if bytes.IndexByte(s, 0) >= 0 {
			return dst, false, faultNUL
		}
		return dst, false, faultUTF8
	}
	return appendMended(dst, s), true, ""
}

// appendMended writes s without NULs and with U+FFFD for each byte that does not start a valid
// UTF-8 sequence.
func appendMended(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != 0 {
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i++
			continue
		}
		dst = append(dst, s[i:i+size]...)
		i += size
	}
	return dst
}

// CleanString returns s ready for a text value: s itself when it holds no NUL and is valid
// UTF-8; under opt.FixStrings a mended copy (counted in opt.Fixed); otherwise a *ValueError at
// opt.Path. For strings a transform builds or picks itself (derived names, sorted arrays).
func CleanString(s string, opt Options) (string, *ValueError) {
	if isCleanString(s) {
		return s, nil
	}
	if !opt.FixStrings {
		return "", valueErr(&opt, stringFaultReason("string", s))
	}
	opt.addFixed(1)
	return string(appendMended(nil, []byte(s))), nil
}

func isCleanString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return utf8.ValidString(s)
}

func stringFaultReason(what, s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return what + " " + faultNUL
		}
	}
	return what + " " + faultUTF8
}

// appendEscapedByte escapes an ASCII byte below 0x20, a quote or a backslash as PostgreSQL's
// escape_json does: the short escapes where JSON has them, \u00XX (lowercase hex) otherwise.
func appendEscapedByte(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
