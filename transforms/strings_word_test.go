package transforms

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPlainWord: the eight-byte test agrees with jsonPlain byte by byte, for every byte value
// at every position of a plain word and for random words weighted towards the edges.
func TestPlainWord(t *testing.T) {
	slow := func(b []byte) bool {
		for _, c := range b {
			if c >= 0x80 || !jsonPlain[c] {
				return false
			}
		}
		return true
	}
	check := func(b []byte) {
		t.Helper()
		if got, want := plainWord(binary.LittleEndian.Uint64(b)), slow(b); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", b, got, want)
		}
	}
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			b := []byte("aaaaaaaa")
			b[pos] = byte(c)
			check(b)
		}
	}
	edges := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d, 0x7e, 0x7f, 0x80, 0xff, 'a'}
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 8)
	for i := 0; i < 200000; i++ {
		for j := range b {
			if rng.IntN(2) == 0 {
				b[j] = edges[rng.IntN(len(edges))]
			} else {
				b[j] = byte(rng.IntN(256))
			}
		}
		check(b)
	}
}
