package transforms

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// NameSpaceURL is RFC 4122's namespace for URLs, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
var NameSpaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// UUIDv5 is the name-based SHA-1 UUID of name in namespace ns (RFC 9562, section 5.5).
func UUIDv5(ns [16]byte, name string) [16]byte {
	var buf [128]byte // names are short; a longer one just grows past this
	b := append(buf[:0], ns[:]...)
	b = append(b, name...)
	return uuidFromSHA1(sha1.Sum(b))
}

func uuidFromSHA1(sum [sha1.Size]byte) (u [16]byte) {
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

// ModuleNamespace is the namespace of a module's row ids: UUIDv5(NameSpaceURL,
// "urn:stellaops:convert:<module>"), "generic" for the generic mode (mapping.md, Identity).
func ModuleNamespace(module string) [16]byte {
	return UUIDv5(NameSpaceURL, "urn:stellaops:convert:"+module)
}

// ErrNoID is returned for a document without _id (a zero RawValue).
var ErrNoID = errors.New("document has no _id")

// CanonicalID is the canonical text of an _id (mapping.md, Identity): 24 lowercase hex for an
// ObjectId, the string itself for a string, otherwise the driver's canonical Extended JSON of
// the value, which has no spaces ({"$numberInt":"7"}). The string case is returned as stored:
// a caller that stores it (mongo_id) still applies the text value checks.
func CanonicalID(v bson.RawValue) (string, error) {
	switch v.Type {
	case 0:
		return "", ErrNoID
	case bson.TypeObjectID:
		if len(v.Value) != 12 {
			return "", fmt.Errorf("_id: %s", malformed)
		}
		return hex.EncodeToString(v.Value), nil
	case bson.TypeString:
		s, _, ok := bsonString(v.Value)
		if !ok {
			return "", fmt.Errorf("_id: %s", malformed)
		}
		return string(s), nil
	}
	out, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, true, false)
	if err != nil {
		return "", fmt.Errorf("_id: %w", err)
	}
	const prefix, suffix = `{"v":`, `}`
	if !bytes.HasPrefix(out, []byte(prefix)) || !bytes.HasSuffix(out, []byte(suffix)) {
		return "", fmt.Errorf("_id: unexpected Extended JSON %q", out)
	}
	return string(out[len(prefix) : len(out)-len(suffix)]), nil
}

// RowID is the primary key of the row a document of collection maps to: the UUIDv5 in ns of
// "<collection>:<canonical _id>", with the canonical _id (the mongo_id column). A reference to
// another collection's document maps through the same function with that collection's name.
func RowID(ns [16]byte, collection string, id bson.RawValue) ([16]byte, string, error) {
	canon, err := CanonicalID(id)
	if err != nil {
		return [16]byte{}, "", err
	}
	var buf [128]byte
	b := append(buf[:0], ns[:]...)
	b = append(b, collection...)
	b = append(b, ':')
	b = append(b, canon...)
	return uuidFromSHA1(sha1.Sum(b)), canon, nil
}

// DerivedID is the id of a derived row, the UUIDv5 in ns of `<table>:["<part>",...]`, the parts
// as a JSON array written as encoding/json writes a []string without HTML escaping and without
// spaces, e.g. roles:["default","admin"].
func DerivedID(ns [16]byte, table string, parts ...string) [16]byte {
	var buf [128]byte
	b := append(buf[:0], ns[:]...)
	b = append(b, table...)
	b = append(b, ':', '[')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendGoJSONString(b, p)
	}
	b = append(b, ']')
	return uuidFromSHA1(sha1.Sum(b))
}

// appendGoJSONString quotes s exactly as encoding/json does with SetEscapeHTML(false), so
// derived names match what any Go tool computing them with encoding/json would get.
func appendGoJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FormatUUID is u as lowercase hyphenated text.
func FormatUUID(u [16]byte) string { return string(appendUUIDText(nil, u[:])) }

// ParseUUID reads a 36-character hyphenated UUID in any case.
func ParseUUID(s string) ([16]byte, bool) { return parseUUID(s) }

func parseUUID[T string | []byte](s T) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
