package transforms

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ClassRank is MongoDB's order of BSON type classes, the first key of its _id order.
func ClassRank(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return 1
	case bson.TypeNull, bson.TypeUndefined:
		return 2
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 3
	case bson.TypeString, bson.TypeSymbol:
		return 4
	case bson.TypeEmbeddedDocument:
		return 5
	case bson.TypeArray:
		return 6
	case bson.TypeBinary:
		return 7
	case bson.TypeObjectID:
		return 8
	case bson.TypeBoolean:
		return 9
	case bson.TypeDateTime:
		return 10
	case bson.TypeTimestamp:
		return 11
	case bson.TypeRegex:
		return 12
	case bson.TypeMaxKey:
		return 100
	}
	return 50
}

// CompareIDs orders two _id values as MongoDB does (type class, then value; strings bytewise,
// the default binary collation). It decides "the smallest _id wins" (mapping.md) the same way
// for every worker count, batch size and source kind.
func CompareIDs(a, b bson.RawValue) int {
	ra, rb := ClassRank(a.Type), ClassRank(b.Type)
	if ra != rb {
		return cmpInt(int64(ra), int64(rb))
	}
	switch ra {
	case 3:
		fa, fb := number(a), number(b)
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		// Equal as doubles (or both NaN): fall back to the exact encoding so the order is total.
	case 4:
		return bytes.Compare([]byte(stringOf(a)), []byte(stringOf(b)))
	case 7:
		sa, da, _ := a.BinaryOK()
		sb, db, _ := b.BinaryOK()
		if len(da) != len(db) {
			return cmpInt(int64(len(da)), int64(len(db)))
		}
		if sa != sb {
			return cmpInt(int64(sa), int64(sb))
		}
		return bytes.Compare(da, db)
	case 9:
		ba, bb := a.Boolean(), b.Boolean()
		if ba != bb {
			if !ba {
				return -1
			}
			return 1
		}
		return 0
	case 10:
		return cmpInt(a.DateTime(), b.DateTime())
	case 11:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		if ta != tb {
			return cmpInt(int64(ta), int64(tb))
		}
		return cmpInt(int64(ia), int64(ib))
	}
	if c := cmpInt(int64(a.Type), int64(b.Type)); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func stringOf(v bson.RawValue) string {
	if v.Type == bson.TypeSymbol {
		return v.Symbol()
	}
	return v.StringValue()
}

func number(v bson.RawValue) float64 {
	switch v.Type {
	case bson.TypeInt32:
		return float64(int32(binary.LittleEndian.Uint32(v.Value)))
	case bson.TypeInt64:
		return float64(int64(binary.LittleEndian.Uint64(v.Value)))
	case bson.TypeDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(v.Value))
	case bson.TypeDecimal128:
		d := v.Decimal128()
		f, err := strconv.ParseFloat(d.String(), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	return math.NaN()
}

// Winners decides a unique key among documents the way mapping.md says: the smallest _id wins.
// Offer every standing document's key during the key pass; then Winner answers. Safe for
// concurrent use.
type Winners struct {
	mu sync.RWMutex
	m  map[string]bson.RawValue
}

// Offer records that the document with _id id holds key.
func (w *Winners) Offer(key string, id bson.RawValue) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]bson.RawValue{}
	}
	cur, ok := w.m[key]
	if !ok || CompareIDs(id, cur) < 0 {
		w.m[key] = bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)}
	}
}

// Winner returns the _id that holds key, if any document offered it.
func (w *Winners) Winner(key string) (bson.RawValue, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	v, ok := w.m[key]
	return v, ok
}

// Wins tells whether the document with _id id holds key (true when nobody offered the key).
func (w *Winners) Wins(key string, id bson.RawValue) bool {
	win, ok := w.Winner(key)
	return !ok || (win.Type == id.Type && bytes.Equal(win.Value, id.Value))
}
