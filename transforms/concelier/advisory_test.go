package concelier

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

func dec(t testing.TB, s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func metric(score any) bson.D {
	return bson.D{{Key: "version", Value: "3.1"}, {Key: "vector", Value: "AV:N"}, {Key: "baseScore", Value: score}, {Key: "severity", Value: "high"}, {Key: "source", Value: "nvd"}}
}

func TestAdvisoryMapping(t *testing.T) {
	nvd := rowID("source", oid(1).Hex())
	parents := map[string][16]byte{"nvd": nvd}
	pub := time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC)
	mod := pub.Add(48 * time.Hour)
	full := doc(t, bson.D{
		{Key: "_id", Value: oid(100)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "sourceName", Value: "nvd"},
		{Key: "title", Value: "Overflow"}, {Key: "summary", Value: "Sum"}, {Key: "description", Value: "Desc"},
		{Key: "severity", Value: "critical"}, {Key: "exploitKnown", Value: true},
		{Key: "publishedAt", Value: bson.NewDateTimeFromTime(pub)}, {Key: "modifiedAt", Value: bson.NewDateTimeFromTime(mod)},
		{Key: "language", Value: "en"}, {Key: "provenance", Value: bson.D{{Key: "source", Value: "nvd"}, {Key: "kind", Value: "document"}}},
		{Key: "cvssMetrics", Value: bson.A{metric(9.8), metric(dec(t, "7.50")), metric("5.0"), metric(nil), metric(int32(10)), metric("1e1"), metric(dec(t, "0E-3"))}},
		{Key: "references", Value: bson.A{
			bson.D{{Key: "url", Value: "https://a"}, {Key: "kind", Value: "advisory"}, {Key: "sourceTag", Value: "NVD"}, {Key: "summary", Value: nil}},
			bson.D{{Key: "url", Value: "https://b"}},
		}},
		{Key: "credits", Value: bson.A{bson.D{{Key: "name", Value: "Ada"}, {Key: "contact", Value: "mailto:a@x"}, {Key: "role", Value: "finder"}}}},
		{Key: "cwes", Value: bson.A{"CWE-79", "CWE-20", "CWE-79", "CWE-20", "CWE-787"}},
		{Key: "extra", Value: bson.D{{Key: "kept", Value: int64(1) << 62}}},
	})
	minimal := doc(t, bson.D{{Key: "_id", Value: "adv-min"}, {Key: "advisoryKey", Value: "GHSA-xxxx"}})
	o := convert(t, "advisory", transforms.Options{}, parents, full, minimal)
	if o[0].v.Reject != nil || o[1].v.Reject != nil {
		t.Fatalf("rejects: %s / %s", rejectOf(o[0]), rejectOf(o[1]))
	}
	aid := rowID("advisory", oid(100).Hex())
	rows := o[0].rows
	if got := tables(o[0]); got != "advisories,advisory_cvss,advisory_cvss,advisory_cvss,advisory_cvss,advisory_cvss,advisory_cvss,advisory_cvss,advisory_references,advisory_references,advisory_credits,advisory_weaknesses,advisory_weaknesses,advisory_weaknesses" {
		t.Fatalf("rows: %s", got)
	}
	a := rows[0].cells
	checkRow(t, "advisory", row{table: rows[0].table, cells: a[:13]}, "advisories", cUUID(aid), cText(oid(100).Hex()), cText("CVE-2026-0001"),
		cUUID(nvd), cText("Overflow"), cText("Sum"), cText("Desc"), cText("critical"), cBool(true), cTime(pub), cTime(mod), cText("en"),
		cText(`{"kind": "document", "source": "nvd"}`))
	// doc keeps the whole document (no search column: it is generated).
	if len(a) != 14 {
		t.Fatalf("advisories has %d written cells, want 14", len(a))
	}
	var kept map[string]any
	if err := json.Unmarshal(a[13], &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 17 || kept["_id"] != oid(100).Hex() || kept["publishedAt"] != "2025-01-02T03:04:05.678Z" {
		t.Fatalf("doc: %s", a[13])
	}
	if want := `"extra": {"kept": 4611686018427387904}`; !contains(string(a[13]), want) {
		t.Fatalf("doc %s lacks %s", a[13], want)
	}
	scores := []([]byte){cText("9.8"), cText("7.50"), cText("5.0"), null, cText("10"), cText("10"), cText("0.000")}
	for i, s := range scores {
		checkRow(t, "cvss", rows[1+i], "advisory_cvss", cUUID(aid), cInt4(int32(i)), cText("3.1"), cText("AV:N"), s, cText("high"), cText("nvd"))
	}
	checkRow(t, "ref 0", rows[8], "advisory_references", cUUID(aid), cInt4(0), cText("https://a"), cText("advisory"), cText("NVD"), null)
	checkRow(t, "ref 1", rows[9], "advisory_references", cUUID(aid), cInt4(1), cText("https://b"), null, null, null)
	checkRow(t, "credit", rows[10], "advisory_credits", cUUID(aid), cInt4(0), cText("Ada"), cText("mailto:a@x"), cText("finder"))
	for i, cwe := range []string{"CWE-79", "CWE-20", "CWE-787"} {
		checkRow(t, "cwe", rows[11+i], "advisory_weaknesses", cUUID(aid), cText(cwe))
	}
	if o[0].v.Collapsed != 2 {
		t.Fatalf("collapsed %d, want 2 (CWE-79 and CWE-20 repeated)", o[0].v.Collapsed)
	}

	mid := rowID("advisory", "adv-min")
	if len(o[1].rows) != 1 {
		t.Fatalf("minimal: %s", tables(o[1]))
	}
	checkRow(t, "minimal", o[1].rows[0], "advisories", cUUID(mid), cText("adv-min"), cText("GHSA-xxxx"), null, null, null, null, null,
		null, null, null, null, null, cText(`{"_id": "adv-min", "advisoryKey": "GHSA-xxxx"}`))
	if o[1].v.Collapsed != 0 {
		t.Fatalf("minimal collapsed %d", o[1].v.Collapsed)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestAdvisoryRejects: every value check and reference of an advisory and its child rows; a
// child row's fault rejects the whole advisory.
func TestAdvisoryRejects(t *testing.T) {
	parents := map[string][16]byte{"nvd": rowID("source", "nvd")}
	base := func(extra ...bson.E) bson.D {
		return append(bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "sourceName", Value: "nvd"}}, extra...)
	}
	cvss := func(scores ...any) bson.E {
		a := bson.A{}
		for _, s := range scores {
			a = append(a, metric(s))
		}
		return bson.E{Key: "cvssMetrics", Value: a}
	}
	cases := []struct {
		name string
		d    bson.D
		want string
	}{
		{"no advisoryKey", bson.D{{Key: "_id", Value: oid(1)}}, "advisoryKey: missing value for NOT NULL column advisory_key"},
		{"unknown source", bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "sourceName", Value: "msrc"}}, "sourceName: missing parent source/msrc"},
		{"sourceName int", bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "sourceName", Value: int32(1)}}, "sourceName: column source_id: expected string, found int"},
		{"score above 10", base(cvss(9.0, 11.0)), `cvssMetrics.1.baseScore: column base_score: value "11" not allowed`},
		{"score 10.01 string", base(cvss("10.01")), `cvssMetrics.0.baseScore: column base_score: value "10.01" not allowed`},
		{"score negative", base(cvss(-0.5)), `cvssMetrics.0.baseScore: column base_score: value "-0.5" not allowed`},
		{"score NaN string", base(cvss("NaN")), "cvssMetrics.0.baseScore: column base_score: string is not a decimal number"},
		{"score not a number", base(cvss("high")), "cvssMetrics.0.baseScore: column base_score: string is not a decimal number"},
		{"score NaN double", base(cvss(math.NaN())), "cvssMetrics.0.baseScore: column base_score: NaN or infinite double into numeric"},
		{"score +Inf double", base(cvss(math.Inf(1))), "cvssMetrics.0.baseScore: column base_score: NaN or infinite double into numeric"},
		{"score NaN decimal", base(cvss(dec(t, "NaN"))), `cvssMetrics.0.baseScore: column base_score: value "NaN" not allowed`},
		{"score -Inf decimal", base(cvss(dec(t, "-Infinity"))), `cvssMetrics.0.baseScore: column base_score: value "-Infinity" not allowed`},
		{"score decimal 10.5", base(cvss(dec(t, "10.5"))), `cvssMetrics.0.baseScore: column base_score: value "10.5" not allowed`},
		{"score bool", base(cvss(true)), "cvssMetrics.0.baseScore: column base_score: expected numeric, found bool"},
		{"cvss not array", base(bson.E{Key: "cvssMetrics", Value: "none"}), "cvssMetrics: expected array, found string"},
		{"cvss element not object", base(bson.E{Key: "cvssMetrics", Value: bson.A{nil}}), "cvssMetrics.0: expected object, found null"},
		{"reference without url", base(bson.E{Key: "references", Value: bson.A{bson.D{{Key: "url", Value: "u"}}, bson.D{{Key: "kind", Value: "report"}}}}), "references.1.url: missing value for NOT NULL column url"},
		{"credit name not text", base(bson.E{Key: "credits", Value: bson.A{bson.D{{Key: "name", Value: int32(1)}}}}), "credits.0.name: column name: expected text, found int"},
		{"null cwe", base(bson.E{Key: "cwes", Value: bson.A{"CWE-1", nil}}), "cwes.1: missing value for NOT NULL column cwe_id"},
		{"cwe not text", base(bson.E{Key: "cwes", Value: bson.A{int32(79)}}), "cwes.0: column cwe_id: expected text, found int"},
		{"cwes not array", base(bson.E{Key: "cwes", Value: "CWE-79"}), "cwes: expected array, found string"},
		{"NUL in title", base(bson.E{Key: "title", Value: "a\x00b"}), "title: column title: string contains NUL"},
		{"duplicate key in provenance", base(bson.E{Key: "provenance", Value: bson.D{{Key: "source", Value: "a"}, {Key: "source", Value: "b"}}}), `provenance.source: column provenance: duplicate key "source"`},
		{"fault only in the kept doc", base(bson.E{Key: "notes", Value: bson.A{"ok", "bad\x00"}}), "notes.1: column doc: string contains NUL"},
		{"date out of range", base(bson.E{Key: "publishedAt", Value: bson.DateTime(math.MaxInt64)}), "publishedAt: column published_at: date out of range for timestamptz"},
		{"exploitKnown string", base(bson.E{Key: "exploitKnown", Value: "yes"}), "exploitKnown: column exploit_known: expected boolean, found string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := convert(t, "advisory", transforms.Options{}, parents, doc(t, c.d))
			if got := rejectOf(o[0]); got != c.want {
				t.Fatalf("reject %q, want %q", got, c.want)
			}
		})
	}
}

// TestAdvisoryUniqueKey: the smallest standing _id holds an advisory_key; a smaller _id that is
// rejected (a bad score, an unknown source) does not.
func TestAdvisoryUniqueKey(t *testing.T) {
	parents := map[string][16]byte{"nvd": rowID("source", "nvd")}
	docs := []bson.Raw{
		doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-A"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(2)}, {Key: "advisoryKey", Value: "CVE-A"}, {Key: "sourceName", Value: "nvd"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(3)}, {Key: "advisoryKey", Value: "CVE-B"}, {Key: "cvssMetrics", Value: bson.A{metric(12.0)}}}),
		doc(t, bson.D{{Key: "_id", Value: oid(4)}, {Key: "advisoryKey", Value: "CVE-B"}, {Key: "sourceName", Value: "gone"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(5)}, {Key: "advisoryKey", Value: "CVE-B"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(6)}, {Key: "advisoryKey", Value: "CVE-B"}}),
	}
	want := []string{
		"",
		"advisoryKey: unique key (advisory_key) already held by _id " + oid(1).Hex(),
		`cvssMetrics.0.baseScore: column base_score: value "12" not allowed`,
		"sourceName: missing parent source/gone",
		"",
		"advisoryKey: unique key (advisory_key) already held by _id " + oid(5).Hex(),
	}
	for seed := uint64(0); seed < 8; seed++ {
		tr := build(t, "advisory", transforms.Options{})
		if err := tr.(pipeline.Preparer).Prepare(t.Context(), keyPass(shuffled(seed, docs), parents)); err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			if got := rejectOf(applyOne(tr, d)); got != want[i] {
				t.Errorf("seed %d doc %d: %q, want %q", seed, i, got, want[i])
			}
		}
	}
}

// TestAdvisoryCWEsMendedCollapse: CWEs equal once mended (--fix-strings) are one row.
func TestAdvisoryCWEsMendedCollapse(t *testing.T) {
	o := convert(t, "advisory", transforms.Options{FixStrings: true}, nil,
		doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "K"}, {Key: "cwes", Value: bson.A{"CWE-79", "CWE-\x0079"}}}))
	if o[0].v.Reject != nil || o[0].v.Collapsed != 1 || tables(o[0]) != "advisories,advisory_weaknesses" {
		t.Fatalf("%+v %s %s", o[0].v, rejectOf(o[0]), tables(o[0]))
	}
}

func BenchmarkAdvisoryApply(b *testing.B) {
	d := doc(b, advisoryFull())
	tr := build(b, "advisory", transforms.Options{})
	if err := tr.(pipeline.Preparer).Prepare(b.Context(), keyPass([]bson.Raw{d}, map[string][16]byte{"nvd": rowID("source", "nvd")})); err != nil {
		b.Fatal(err)
	}
	var buf pipeline.RowBuffer
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		buf.Reset()
		if v := tr.Apply(d, &buf); v.Reject != nil {
			b.Fatal(v.Reject)
		}
	}
}
