package manifests

import (
	"crypto/sha256"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestTableSumIsAMultisetHash: the sum is the row count and the sum of digests mod 2^256
// (checked against math/big), independent of order and of how rows are split into parts.
func TestTableSumIsAMultisetHash(t *testing.T) {
	var digests []Digest
	for i := 0; i < 500; i++ {
		digests = append(digests, RowDigest("s.t", []byte(fmt.Sprint(i))))
	}
	// Digests with every bit set force carries through all words.
	var ones Digest
	for i := range ones {
		ones[i] = 0xff
	}
	digests = append(digests, ones, ones, ones)

	want := new(big.Int)
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	for _, d := range digests {
		want.Add(want, new(big.Int).SetBytes(d[:]))
	}
	want.Mod(want, mod)

	var whole TableSum
	for _, d := range digests {
		whole.Add(d)
	}
	if got := new(big.Int).SetBytes(whole.Sum[:]); got.Cmp(want) != 0 || whole.Count != int64(len(digests)) {
		t.Fatalf("sum %x count %d, want %x count %d", got, whole.Count, want, len(digests))
	}

	r := rand.New(rand.NewPCG(3, 4))
	shuffled := append([]Digest(nil), digests...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var a, b TableSum
	for i, d := range shuffled {
		if i%3 == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	a.Merge(b)
	if a != whole {
		t.Fatalf("merged parts %v differ from the whole %v", a, whole)
	}
	a.Sub(b)
	b2 := whole
	b2.Sub(b)
	if a != b2 {
		t.Fatalf("sub: %v vs %v", a, b2)
	}
}

func TestRowDigestFraming(t *testing.T) {
	// The table name is separated from the row: "s.t" + "x" differs from "s.tx" + "".
	if RowDigest("s.t", []byte("x")) == RowDigest("s.tx", nil) {
		t.Fatal("table name and row are not framed")
	}
	h := sha256.Sum256([]byte("s.t\x00row"))
	if RowDigest("s.t", []byte("row")) != Digest(h) {
		t.Fatal("row digest is not SHA-256(table, 0x00, row)")
	}
}

func TestCollectionChecksumOrderAndEncoding(t *testing.T) {
	a := TableSums{"s.a": {Count: 1, Sum: RowDigest("s.a", nil)}, "s.b": {Count: 0}}
	b := TableSums{"s.b": {Count: 0}, "s.a": {Count: 1, Sum: RowDigest("s.a", nil)}}
	if CollectionChecksum(a) != CollectionChecksum(b) {
		t.Fatal("collection checksum depends on map order")
	}
	enc, err := EncodeTableSums(a)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeTableSums(enc)
	if err != nil || CollectionChecksum(dec) != CollectionChecksum(a) {
		t.Fatalf("round trip: %v %v", dec, err)
	}
	if _, err := ParseDigest("zz"); err == nil {
		t.Fatal("ParseDigest accepted garbage")
	}
}
