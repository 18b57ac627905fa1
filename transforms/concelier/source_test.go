package concelier

import (
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/transforms"
)

func TestSourceMapping(t *testing.T) {
	created := time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC)
	updated := time.Date(2026, 5, 30, 8, 0, 0, 0, time.UTC)
	full := doc(t, bson.D{
		{Key: "_id", Value: oid(1)}, {Key: "name", Value: "nvd"}, {Key: "kind", Value: "registry"},
		{Key: "url", Value: "https://nvd.example"}, {Key: "enabled", Value: true}, {Key: "priority", Value: int32(10)},
		{Key: "config", Value: bson.D{{Key: "pageSize", Value: int32(500)}, {Key: "fetchInterval", Value: "PT1H"}}},
		{Key: "createdAt", Value: bson.NewDateTimeFromTime(created)}, {Key: "updatedAt", Value: bson.NewDateTimeFromTime(updated)},
		{Key: "ignored", Value: "nul\x00inside"}, // not stored: no value check
	})
	minimal := doc(t, bson.D{{Key: "_id", Value: "src-osv"}, {Key: "name", Value: "osv"}, {Key: "priority", Value: int64(7)}})
	o := convert(t, "source", transforms.Options{}, nil, full, minimal)
	for i, x := range o {
		if x.v.Reject != nil || x.v.Skip != "" || len(x.rows) != 1 {
			t.Fatalf("doc %d: %+v %s rows %d", i, x.v, rejectOf(x), len(x.rows))
		}
	}
	checkRow(t, "full", o[0].rows[0], "sources", cUUID(rowID("source", oid(1).Hex())), cText(oid(1).Hex()), cText("nvd"),
		cText("registry"), cText("https://nvd.example"), cBool(true), cInt4(10),
		cText(`{"pageSize": 500, "fetchInterval": "PT1H"}`), cTime(created), cTime(updated))
	checkRow(t, "minimal", o[1].rows[0], "sources", cUUID(rowID("source", "src-osv")), cText("src-osv"), cText("osv"),
		null, null, null, cInt4(7), null, null, null)
}

func TestSourceRejects(t *testing.T) {
	cases := []struct {
		name string
		d    bson.D
		want string
	}{
		{"no name", bson.D{{Key: "_id", Value: oid(1)}}, "name: missing value for NOT NULL column key"},
		{"null name", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: nil}}, "name: missing value for NOT NULL column key"},
		{"name not text", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: int32(3)}}, "name: column key: expected text, found int"},
		{"NUL in name", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "n\x00vd"}}, "name: column key: string contains NUL"},
		{"priority out of range", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "x"}, {Key: "priority", Value: int64(math.MaxInt32) + 1}}, "priority: column priority: value out of range for integer"},
		{"priority double", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "x"}, {Key: "priority", Value: 1.5}}, "priority: column priority: expected integer, found double"},
		{"enabled string", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "x"}, {Key: "enabled", Value: "yes"}}, "enabled: column enabled: expected boolean, found string"},
		{"config duplicate key", bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "x"}, {Key: "config", Value: bson.D{{Key: "a", Value: 1}, {Key: "a", Value: 2}}}}, `config.a: column config: duplicate key "a"`},
		{"NUL in _id", bson.D{{Key: "_id", Value: "s\x00"}, {Key: "name", Value: "x"}}, "_id: string contains NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := convert(t, "source", transforms.Options{}, nil, doc(t, c.d))
			if got := rejectOf(o[0]); got != c.want {
				t.Fatalf("reject %q, want %q", got, c.want)
			}
		})
	}
}

// TestSourceUniqueName: a name held twice is decided by the smallest _id among the documents
// still standing (a smaller _id rejected for a value fault does not hold it), whatever the
// scan order; a string _id equal to an ObjectId's hex wins the identity (strings sort first).
func TestSourceUniqueName(t *testing.T) {
	docs := []bson.Raw{
		doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "nvd"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(2)}, {Key: "name", Value: "nvd"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(3)}, {Key: "name", Value: "ghsa"}, {Key: "priority", Value: "high"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(4)}, {Key: "name", Value: "ghsa"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(5)}, {Key: "name", Value: "suse"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(5).Hex()}, {Key: "name", Value: "redhat"}}),
	}
	want := []string{
		"",
		"name: unique key (key) already held by _id " + oid(1).Hex(),
		"priority: column priority: expected integer, found string",
		"",
		"_id: identity collision " + oid(5).Hex(),
		"",
	}
	for seed := uint64(0); seed < 8; seed++ {
		order := shuffled(seed, docs)
		tr := build(t, "source", transforms.Options{})
		prepareOrFail(t, tr, order)
		for i, d := range docs {
			if got := rejectOf(applyOne(tr, d)); got != want[i] {
				t.Errorf("seed %d doc %d: %q, want %q", seed, i, got, want[i])
			}
		}
	}
}

// TestSourceFixStrings: under --fix-strings a name is mended before the unique key compares
// it, and the mend is counted.
func TestSourceFixStrings(t *testing.T) {
	o := convert(t, "source", transforms.Options{FixStrings: true}, nil,
		doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "name", Value: "nv\x00d"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(2)}, {Key: "name", Value: "nvd"}}))
	if o[0].v.Reject != nil || o[0].v.StringsFixed != 1 || string(o[0].rows[0].cells[2]) != "nvd" {
		t.Fatalf("mended doc: %+v %s", o[0].v, rejectOf(o[0]))
	}
	if got := rejectOf(o[1]); got != "name: unique key (key) already held by _id "+oid(1).Hex() {
		t.Fatalf("second: %q", got)
	}
}

func TestSourceStateMapping(t *testing.T) {
	nvd, osv := rowID("source", oid(1).Hex()), rowID("source", oid(2).Hex())
	parents := map[string][16]byte{"nvd": nvd, "osv": osv, "65000000000000000000000a": osv}
	ok := time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)
	full := doc(t, bson.D{
		{Key: "_id", Value: "nvd"},
		{Key: "cursor", Value: bson.D{{Key: "page", Value: int32(3)}, {Key: "etag", Value: `W/"x"`}}},
		{Key: "lastSuccessAt", Value: bson.NewDateTimeFromTime(ok)}, {Key: "lastError", Value: "503"},
		{Key: "failCount", Value: int32(2)}, {Key: "backoffUntil", Value: bson.NewDateTimeFromTime(ok.Add(time.Hour))},
		{Key: "updatedAt", Value: bson.NewDateTimeFromTime(ok.Add(time.Minute))},
	})
	o := convert(t, "source_state", transforms.Options{}, parents,
		full,
		doc(t, bson.D{{Key: "_id", Value: "osv"}, {Key: "lastError", Value: nil}}),
		doc(t, bson.D{{Key: "_id", Value: "msrc"}}),
		doc(t, bson.D{{Key: "_id", Value: int32(7)}}),
		doc(t, bson.D{{Key: "_id", Value: "nvd-bad"}, {Key: "failCount", Value: 2.0}}),
		doc(t, bson.D{{Key: "_id", Value: nil}}),
	)
	checkRow(t, "full", o[0].rows[0], "source_states", cUUID(nvd), cText(`{"etag": "W/\"x\"", "page": 3}`),
		cTime(ok), cText("503"), cInt4(2), cTime(ok.Add(time.Hour)), cTime(ok.Add(time.Minute)))
	checkRow(t, "minimal", o[1].rows[0], "source_states", cUUID(osv), null, null, null, null, null, null)
	for i, want := range map[int]string{
		2: "_id: missing parent source/msrc",
		3: "_id: column source_id: expected string, found int",
		4: "_id: missing parent source/nvd-bad",
		5: "_id: missing value for NOT NULL column source_id",
	} {
		if got := rejectOf(o[i]); got != want {
			t.Errorf("doc %d: %q, want %q", i, got, want)
		}
	}
}

// TestSourceStateOneRowPerSource: two _ids naming the same source (an ObjectId read as its hex
// and that hex as a string; a name mended under --fix-strings) would both fill the primary key
// source_id: the smallest _id wins.
func TestSourceStateOneRowPerSource(t *testing.T) {
	id := oid(10)
	src := rowID("source", "x")
	parents := map[string][16]byte{id.Hex(): src, "nvd": rowID("source", "y")}
	o := convert(t, "source_state", transforms.Options{FixStrings: true}, parents,
		doc(t, bson.D{{Key: "_id", Value: id}}),
		doc(t, bson.D{{Key: "_id", Value: id.Hex()}}),
		doc(t, bson.D{{Key: "_id", Value: "nvd\x00"}}),
		doc(t, bson.D{{Key: "_id", Value: "nvd"}}),
	)
	want := []string{"_id: unique key (source_id) already held by _id " + id.Hex(), "", "_id: unique key (source_id) already held by _id nvd", ""}
	for i := range want {
		if got := rejectOf(o[i]); got != want[i] {
			t.Errorf("doc %d: %q, want %q", i, got, want[i])
		}
	}
	checkRow(t, "hex string", o[1].rows[0], "source_states", cUUID(src), null, null, null, null, null, null)
}
