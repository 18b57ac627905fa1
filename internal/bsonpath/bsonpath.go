// Package bsonpath finds fields of raw BSON documents by key or dotted path without
// allocating. The transforms read a dozen top-level fields of every document; the driver's
// LookupErr validates each element it passes and is called once per field, which made field
// lookup the largest cost of a normalized transform. Documents reaching these functions have
// been read strictly already (transforms.ValidateStrict), but nothing here trusts that: a
// malformed element ends the search as "not found", never a panic.
package bsonpath

import (
	"bytes"
	"encoding/binary"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// element is one element of a document: its type, key and value bytes, and where the next one
// starts.
type element struct {
	typ  bson.Type
	key  []byte
	val  []byte
	next int
}

// read reads the element at off of doc (whose length prefix and trailing NUL are doc's own);
// ok is false at the end of the document or on a malformed element.
func read(doc []byte, off int) (element, bool) {
	end := len(doc) - 1 // the document's trailing NUL
	if off < 4 || off >= end {
		return element{}, false
	}
	typ := bson.Type(doc[off])
	nul := bytes.IndexByte(doc[off+1:end], 0)
	if nul < 0 {
		return element{}, false
	}
	key := doc[off+1 : off+1+nul]
	start := off + 2 + nul
	n, ok := valueLength(typ, doc[start:end])
	if !ok {
		return element{}, false
	}
	return element{typ: typ, key: key, val: doc[start : start+n], next: start + n}, true
}

// valueLength is the length of a value of type t at the start of b, false when b is too short
// or the type unknown.
func valueLength(t bson.Type, b []byte) (int, bool) {
	fixed := -1
	switch t {
	case bson.TypeDouble, bson.TypeDateTime, bson.TypeTimestamp, bson.TypeInt64:
		fixed = 8
	case bson.TypeObjectID:
		fixed = 12
	case bson.TypeBoolean:
		fixed = 1
	case bson.TypeInt32:
		fixed = 4
	case bson.TypeDecimal128:
		fixed = 16
	case bson.TypeUndefined, bson.TypeNull, bson.TypeMinKey, bson.TypeMaxKey:
		fixed = 0
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		n, ok := int32At(b)
		return 4 + n, ok && n >= 1 && 4+n <= len(b)
	case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeCodeWithScope:
		n, ok := int32At(b)
		return n, ok && n >= 5 && n <= len(b)
	case bson.TypeBinary:
		n, ok := int32At(b)
		return 5 + n, ok && n >= 0 && 5+n <= len(b)
	case bson.TypeDBPointer:
		n, ok := int32At(b)
		return 4 + n + 12, ok && n >= 1 && 4+n+12 <= len(b)
	case bson.TypeRegex:
		p := bytes.IndexByte(b, 0)
		if p < 0 {
			return 0, false
		}
		o := bytes.IndexByte(b[p+1:], 0)
		return p + 1 + o + 1, o >= 0
	}
	return fixed, fixed >= 0 && fixed <= len(b)
}

func int32At(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(b))), true
}

// framed is doc cut to its length prefix (bytes after it are not the document's, as for the
// driver), false when the prefix is impossible or the document does not end in NUL.
func framed(doc []byte) ([]byte, bool) {
	n, ok := int32At(doc)
	if !ok || n < 5 || n > len(doc) || doc[n-1] != 0 {
		return nil, false
	}
	return doc[:n], true
}

// Top returns the first top-level field named key.
func Top(doc []byte, key string) (bson.RawValue, bool) {
	doc, ok := framed(doc)
	if !ok {
		return bson.RawValue{}, false
	}
	for off := 4; ; {
		e, ok := read(doc, off)
		if !ok {
			return bson.RawValue{}, false
		}
		if string(e.key) == key {
			return bson.RawValue{Type: e.typ, Value: e.val}, true
		}
		off = e.next
	}
}

// Path returns the field at a dotted path ("stats.completed"), descending through embedded
// documents and arrays (an array's keys are its indexes), as the driver's LookupErr does with
// the path split at its dots.
func Path(doc []byte, path string) (bson.RawValue, bool) {
	for {
		key, rest, more := strings.Cut(path, ".")
		v, ok := Top(doc, key)
		if !ok || !more {
			return v, ok
		}
		if v.Type != bson.TypeEmbeddedDocument && v.Type != bson.TypeArray {
			return bson.RawValue{}, false
		}
		doc, path = v.Value, rest
	}
}

// Cursor looks up top-level fields of one document. It indexes the document's elements in one
// pass when first asked, so each lookup compares keys in a small table instead of reading the
// document again from its start; a search starts after the entry found last, so a mapping that
// reads fields in about the order the documents hold them finds each at the first comparison.
type Cursor struct {
	doc  []byte
	ok   bool
	read bool // the index is built
	// more: the document has elements beyond the index (more than len(ents)); lookups that
	// miss the index then scan those.
	more     bool
	moreFrom int
	n        int
	last     int
	ents     [cursorEntries]entry
}

const cursorEntries = 32

// entry locates one element: key at doc[key:key+klen], value at doc[val:val+vlen].
type entry struct {
	key, klen, val, vlen uint32
	typ                  bson.Type
}

// NewCursor returns a cursor over doc's top-level fields.
func NewCursor(doc []byte) Cursor {
	doc, ok := framed(doc)
	return Cursor{doc: doc, ok: ok}
}

func (c *Cursor) index() {
	c.read = true
	off := 4
	for c.n < len(c.ents) {
		e, ok := read(c.doc, off)
		if !ok {
			return
		}
		keyOff := off + 1
		c.ents[c.n] = entry{key: uint32(keyOff), klen: uint32(len(e.key)), val: uint32(e.next - len(e.val)), vlen: uint32(len(e.val)), typ: e.typ}
		c.n++
		off = e.next
	}
	if _, ok := read(c.doc, off); ok {
		c.more, c.moreFrom = true, off
	}
}

// Get returns a top-level field named key. A document holding key twice gets one of them:
// strict reading rejects duplicate keys before any mapping reads fields (mapping.md), so a
// cursor is only used where keys are unique.
func (c *Cursor) Get(key string) (bson.RawValue, bool) {
	if !c.ok {
		return bson.RawValue{}, false
	}
	if !c.read {
		c.index()
	}
	for k := 0; k < c.n; k++ {
		i := c.last + k
		if i >= c.n {
			i -= c.n
		}
		e := &c.ents[i]
		if int(e.klen) == len(key) && string(c.doc[e.key:e.key+e.klen]) == key {
			c.last = i + 1
			if c.last == c.n {
				c.last = 0
			}
			return bson.RawValue{Type: e.typ, Value: c.doc[e.val : e.val+e.vlen]}, true
		}
	}
	if !c.more {
		return bson.RawValue{}, false
	}
	for off := c.moreFrom; ; {
		e, ok := read(c.doc, off)
		if !ok {
			return bson.RawValue{}, false
		}
		if string(e.key) == key {
			return bson.RawValue{Type: e.typ, Value: e.val}, true
		}
		off = e.next
	}
}
