package manifests

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
)

// Digest is a SHA-256 value: a row digest, a batch checksum or a collection checksum.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// RowDigest is SHA-256(table name, 0x00, row) where row is the row's cells in checksum encoding
// (mapping.md, Checksums; pipeline.RowBuffer).
func RowDigest(table string, row []byte) Digest {
	h := sha256.New()
	h.Write([]byte(table))
	h.Write([]byte{0})
	h.Write(row)
	var d Digest
	h.Sum(d[:0])
	return d
}

// TableSum is a multiset hash of a table's rows: the row count and the sum of the row digests
// modulo 2^256, read as big-endian integers. It does not depend on order, batches, ranges or
// workers, so sums of parts add up to the sum of the whole.
type TableSum struct {
	Count int64
	Sum   Digest
}

// Add adds one row digest.
func (s *TableSum) Add(d Digest) {
	s.Count++
	addMod256(&s.Sum, &d)
}

// Merge adds another sum.
func (s *TableSum) Merge(o TableSum) {
	s.Count += o.Count
	addMod256(&s.Sum, &o.Sum)
}

// Sub removes another sum: used to narrow down a difference (verify).
func (s *TableSum) Sub(o TableSum) {
	s.Count -= o.Count
	var neg Digest
	// two's complement of o.Sum modulo 2^256
	carry := uint16(1)
	for i := 31; i >= 0; i-- {
		v := uint16(^o.Sum[i]) + carry
		neg[i] = byte(v)
		carry = v >> 8
	}
	addMod256(&s.Sum, &neg)
}

func addMod256(a, b *Digest) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		x := binary.BigEndian.Uint64(a[i*8:])
		y := binary.BigEndian.Uint64(b[i*8:])
		s := x + y
		c1 := uint64(0)
		if s < x {
			c1 = 1
		}
		s2 := s + carry
		if s2 < s {
			c1 = 1
		}
		binary.BigEndian.PutUint64(a[i*8:], s2)
		carry = c1
	}
}

// TableSums maps a table's full name ("schema.name") to its sum.
type TableSums map[string]TableSum

// Merge adds every table of o.
func (t TableSums) Merge(o TableSums) {
	for name, s := range o {
		cur := t[name]
		cur.Merge(s)
		t[name] = cur
	}
}

// CollectionChecksum is SHA-256 over the tables' (name, count, sum) in name order: name bytes,
// 0x00, count as 8-byte big-endian, the 32-byte sum.
func CollectionChecksum(t TableSums) Digest {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var buf [8]byte
	for _, n := range names {
		s := t[n]
		h.Write([]byte(n))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(buf[:], uint64(s.Count))
		h.Write(buf[:])
		h.Write(s.Sum[:])
	}
	var d Digest
	h.Sum(d[:0])
	return d
}
