package transforms

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// fuzzSeeds are valid and broken documents that reach every branch of the readers.
func fuzzSeeds(t testing.TB) [][]byte {
	kd, _ := keyOrderDoc(t)
	seeds := [][]byte{
		rawDoc(),
		everyType(t),
		kd,
		rawDoc(rawEl(0x05, "b", rawOldBin([]byte("abc")))),
		rawDoc(rawEl(0x0F, "c", rawCWS("f", rawDoc(rawEl(0x02, "v", rawStr("x")))))),
		rawDoc(rawEl(0x02, "s", rawStr("a\x00\xff")), rawEl(0x0A, "\xfe", nil)),
		rawDoc(rawEl(0x0A, "a", nil), rawEl(0x0A, "a", nil)),
		rawDoc(rawEl(0x0B, "r", []byte("p\x00zyx\x00"))),
		rawDoc(rawEl(0x13, "n", rawDec(0x7c00000000000000, 0)), rawEl(0x13, "m", rawDec(0x6c10000000000000, 0))),
		rawDoc(rawEl(0x09, "d", rawI64(-1<<63)), rawEl(0x11, "t", rawTS(1, 2))),
		rawDoc(rawEl(0x01, "f", rawF64(5e-324))),
		rawDoc(rawEl(0x08, "b", []byte{2})),
		rawDoc(rawEl(0x05, "b", rawBin(2, append(rawI32(9), 1)))),
		{5, 0, 0, 0, 1},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 8; i++ {
		seeds = append(seeds, mustMarshal(t, randomDoc(r, 2)))
	}
	return seeds
}

// TestWriteFuzzCorpus rewrites the kept corpus (go test -run WriteFuzzCorpus -update-corpus).
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	for _, fuzz := range []string{"FuzzValidateStrict", "FuzzAppendJSONB"} {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range fuzzSeeds(t) {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func FuzzValidateStrict(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := ValidateStrict(doc)
		if err == nil {
			// Strict means at least as strict as the driver.
			if verr := bson.Raw(doc).Validate(); verr != nil {
				t.Fatalf("strictly valid, but the driver refuses it: %v", verr)
			}
			return
		}
		var ie *InvalidBSONError
		if !errors.As(err, &ie) {
			t.Fatalf("%T %v", err, err)
		}
		if ie.Offset < 0 || ie.Offset > len(doc) {
			t.Fatalf("offset %d outside a %d-byte document", ie.Offset, len(doc))
		}
	})
}

func FuzzAppendJSONB(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if ValidateStrict(doc) != nil {
			// Not a strictly valid document: the writer still must not panic.
			AppendJSONB(nil, doc, Options{})
			return
		}
		for _, fix := range []bool{false, true} {
			var fixed int
			out, err := AppendJSONB(nil, doc, Options{FixStrings: fix, Fixed: &fixed})
			if err != nil {
				if err.Reason == malformed {
					t.Fatalf("strictly valid document read as malformed (fix %v)", fix)
				}
				continue
			}
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("invalid JSON (fix %v): %q", fix, out)
			}
			if p, dup := DuplicateKey(doc); dup && !fix {
				t.Fatalf("written although %q is a duplicate key", p)
			}
		}
		// Every column type takes every top-level value without panicking.
		elems, _ := bson.Raw(doc).Elements()
		for _, e := range elems {
			for ct := pipeline.TypeUUID; ct <= pipeline.TypeTSVector; ct++ {
				AppendColumn(nil, ct, e.Value(), Options{FixStrings: true, DateAsString: true, NumberAsString: true, SortArray: true})
			}
		}
	})
}
