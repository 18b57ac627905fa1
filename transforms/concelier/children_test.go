package concelier

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

func TestAlias(t *testing.T) {
	a1, a2 := rowID("advisory", oid(1).Hex()), rowID("advisory", oid(2).Hex())
	parents := map[string][16]byte{"CVE-1": a1, "CVE-2": a2, oid(3).Hex(): a2}
	docs := []bson.Raw{
		// A fault in a field the table ignores does not reject (no doc is kept).
		doc(t, bson.D{{Key: "_id", Value: oid(10)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "CVE-1"}, {Key: "junk", Value: "x\x00"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(11)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "CVE-1"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(12)}, {Key: "advisoryKey", Value: "CVE-2"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "CVE-1"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(13)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "value", Value: "X"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(14)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "value", Value: "X"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(15)}, {Key: "advisoryKey", Value: "CVE-2017-99999"}, {Key: "scheme", Value: "CVE"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(16)}, {Key: "scheme", Value: "CVE"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(17)}, {Key: "advisoryKey", Value: nil}}),
		doc(t, bson.D{{Key: "_id", Value: oid(18)}, {Key: "advisoryKey", Value: bson.A{"CVE-1"}}}),
		doc(t, bson.D{{Key: "_id", Value: oid(19)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "scheme", Value: int32(1)}}),
		// A smaller _id rejected for a value fault does not hold the key.
		doc(t, bson.D{{Key: "_id", Value: oid(5)}, {Key: "advisoryKey", Value: "CVE-2"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "v\x00"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(20)}, {Key: "advisoryKey", Value: "CVE-2"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "v"}}),
		// An ObjectId advisoryKey is read as its hex, as a text column would store it.
		doc(t, bson.D{{Key: "_id", Value: oid(21)}, {Key: "advisoryKey", Value: oid(3)}, {Key: "scheme", Value: "GHSA"}}),
	}
	want := []string{
		"",
		"value: unique key (advisory_id, scheme, value) already held by _id " + oid(10).Hex(),
		"",
		"", // a NULL scheme never collides
		"",
		"advisoryKey: missing parent advisory/CVE-2017-99999",
		"advisoryKey: missing value for NOT NULL column advisory_id",
		"advisoryKey: missing value for NOT NULL column advisory_id",
		"advisoryKey: column advisory_id: expected string, found array",
		"scheme: column scheme: expected text, found int",
		"value: column value: string contains NUL",
		"",
		"",
	}
	for seed := uint64(0); seed < 6; seed++ {
		tr := build(t, "alias", transforms.Options{})
		if err := tr.(pipeline.Preparer).Prepare(t.Context(), keyPass(shuffled(seed, docs), parents)); err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			if got := rejectOf(applyOne(tr, d)); got != want[i] {
				t.Errorf("seed %d doc %d: %q, want %q", seed, i, got, want[i])
			}
		}
	}
	o := convert(t, "alias", transforms.Options{}, parents, docs...)
	checkRow(t, "alias", o[2].rows[0], "advisory_aliases", cUUID(rowID("alias", oid(12).Hex())), cText(oid(12).Hex()), cUUID(a2), cText("CVE"), cText("CVE-1"))
	checkRow(t, "null scheme", o[3].rows[0], "advisory_aliases", cUUID(rowID("alias", oid(13).Hex())), cText(oid(13).Hex()), cUUID(a1), null, cText("X"))
	checkRow(t, "objectId key", o[12].rows[0], "advisory_aliases", cUUID(rowID("alias", oid(21).Hex())), cText(oid(21).Hex()), cUUID(a2), cText("GHSA"), null)
}

func TestAffected(t *testing.T) {
	a1 := rowID("advisory", "adv-1")
	parents := map[string][16]byte{"CVE-1": a1}
	full := doc(t, bson.D{
		{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "ecosystem", Value: "npm"},
		{Key: "packageName", Value: "lodash"}, {Key: "purl", Value: "pkg:npm/lodash"},
		{Key: "ranges", Value: bson.A{bson.D{{Key: "type", Value: "SEMVER"}, {Key: "events", Value: bson.A{bson.D{{Key: "introduced", Value: "0"}}, bson.D{{Key: "fixed", Value: "4.17.21"}}}}}}},
		{Key: "versions", Value: bson.A{"4.17.20", "4.0.0", nil}},
	})
	o := convert(t, "affected", transforms.Options{}, parents,
		full,
		doc(t, bson.D{{Key: "_id", Value: "aff-2"}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "versions", Value: bson.A{}}}),
		doc(t, bson.D{{Key: "_id", Value: oid(3)}, {Key: "advisoryKey", Value: "CVE-9"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(4)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "versions", Value: bson.A{"1.0", int32(2)}}}),
		doc(t, bson.D{{Key: "_id", Value: oid(5)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "versions", Value: "1.0"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(6)}}),
		doc(t, bson.D{{Key: "_id", Value: oid(7)}, {Key: "advisoryKey", Value: "CVE-1"}, {Key: "ranges", Value: bson.D{{Key: "x", Value: "\xff"}}}}),
	)
	// text[] as array_send writes it: a NULL element has length -1.
	versions := cTexts("4.17.20", "4.0.0")
	versions[7] = 1 // has-null flag
	versions[15] = 3
	versions = append(versions, 0xff, 0xff, 0xff, 0xff)
	checkRow(t, "full", o[0].rows[0], "advisory_affected", cUUID(rowID("affected", oid(1).Hex())), cText(oid(1).Hex()), cUUID(a1),
		cText("npm"), cText("lodash"), cText("pkg:npm/lodash"),
		cText(`[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]`), versions)
	checkRow(t, "minimal", o[1].rows[0], "advisory_affected", cUUID(rowID("affected", "aff-2")), cText("aff-2"), cUUID(a1),
		null, null, null, null, cTexts())
	for i, want := range map[int]string{
		2: "advisoryKey: missing parent advisory/CVE-9",
		3: "versions.1: column versions: expected text[] element string, found int",
		4: "versions: column versions: expected text[], found string",
		5: "advisoryKey: missing value for NOT NULL column advisory_id",
		6: "ranges.x: column ranges: string is not valid UTF-8",
	} {
		if got := rejectOf(o[i]); got != want {
			t.Errorf("doc %d: %q, want %q", i, got, want)
		}
	}
}

// TestIdentityCollision: a string _id equal to an ObjectId's hex derives the same row id; the
// smaller _id (the string: strings sort before ObjectIds) keeps it, unless it is itself rejected.
func TestIdentityCollision(t *testing.T) {
	parents := map[string][16]byte{"CVE-1": rowID("advisory", "a")}
	o := convert(t, "affected", transforms.Options{}, parents,
		doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(1).Hex()}, {Key: "advisoryKey", Value: "CVE-1"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(2)}, {Key: "advisoryKey", Value: "CVE-1"}}),
		doc(t, bson.D{{Key: "_id", Value: oid(2).Hex()}, {Key: "advisoryKey", Value: "CVE-404"}}),
	)
	want := []string{"_id: identity collision " + oid(1).Hex(), "", "", "advisoryKey: missing parent advisory/CVE-404"}
	for i := range want {
		if got := rejectOf(o[i]); got != want[i] {
			t.Errorf("doc %d: %q, want %q", i, got, want[i])
		}
	}
}

func TestAdvisoryRaw(t *testing.T) {
	fetched := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	received := fetched.Add(1500 * time.Millisecond)
	blob := oid(900)
	raw := func(id any, tenant any, vendor, upstream, hash any, content bson.D, supersedes any) bson.Raw {
		d := bson.D{{Key: "_id", Value: id}}
		if tenant != nil {
			d = append(d, bson.E{Key: "tenant", Value: tenant})
		}
		return doc(t, append(d,
			bson.E{Key: "source", Value: bson.D{{Key: "vendor", Value: vendor}, {Key: "connector", Value: "c"}}},
			bson.E{Key: "upstream", Value: bson.D{{Key: "upstream_id", Value: upstream}, {Key: "fetched_at", Value: bson.NewDateTimeFromTime(fetched)},
				{Key: "received_at", Value: bson.NewDateTimeFromTime(received)}, {Key: "content_hash", Value: hash}}},
			bson.E{Key: "content", Value: content},
			bson.E{Key: "identifiers", Value: bson.D{{Key: "primary", Value: upstream}}},
			bson.E{Key: "linkset", Value: bson.D{{Key: "aliases", Value: bson.A{"CVE-1"}}}},
			bson.E{Key: "supersedes", Value: supersedes},
		))
	}
	inline := bson.D{{Key: "format", Value: "csaf"}, {Key: "spec_version", Value: "2.0"}, {Key: "raw", Value: bson.D{{Key: "id", Value: "RHSA-1"}}}}
	grid := bson.D{{Key: "format", Value: "osv"}, {Key: "spec_version", Value: "1.6.0"}, {Key: "gridFsObjectId", Value: blob}}
	both := bson.D{{Key: "format", Value: "osv"}, {Key: "raw", Value: bson.D{}}, {Key: "gridFsObjectId", Value: blob}}
	neither := bson.D{{Key: "format", Value: "osv"}, {Key: "raw", Value: nil}}
	gridString := bson.D{{Key: "gridFsObjectId", Value: blob.Hex()}}
	o := convert(t, "advisory_raw", transforms.Options{}, nil,
		raw(oid(1), "default", "redhat", "RHSA-1", "sha256:aa", inline, nil),
		raw(oid(2), "default", "osv", "OSV-1", "sha256:bb", grid, oid(1)),
		raw(oid(3), "default", "osv", "OSV-2", "sha256:cc", both, nil),
		raw(oid(4), "default", "osv", "OSV-3", "sha256:dd", neither, nil),
		raw(oid(5), "default", "osv", "OSV-4", "sha256:ee", gridString, nil),
		raw(oid(6), "default", "redhat", "RHSA-1", "sha256:aa", inline, oid(777)),    // same key as oid(1)
		raw(oid(7), "urn:tenant:acme", "redhat", "RHSA-1", "sha256:aa", inline, nil), // another tenant
		raw(oid(8), "default", "redhat", nil, "sha256:aa", inline, nil),              // NULL part
		raw(oid(9), "default", "redhat", nil, "sha256:aa", inline, nil),              // NULL part again
		raw(oid(10), nil, "redhat", "RHSA-9", "sha256:ff", inline, nil),
		raw(oid(11), "default", "nvd", "CVE-1", "sha256:11", inline, "raw-by-name"),
	)
	want := []string{
		"", "",
		"content: content holds both inline raw and gridFsObjectId",
		"content: content holds neither inline raw nor gridFsObjectId",
		"content.gridFsObjectId: column gridfs_id: expected objectId, found string",
		"upstream.content_hash: unique key (source_vendor, upstream_id, content_hash, tenant_id) already held by _id " + oid(1).Hex(),
		"", "", "",
		"tenant: missing value for NOT NULL column tenant_id",
		"",
	}
	for i := range want {
		if got := rejectOf(o[i]); got != want[i] {
			t.Errorf("doc %d: %q, want %q", i, got, want[i])
		}
	}
	id1 := rowID("advisory_raw", oid(1).Hex())
	checkRow(t, "inline", o[0].rows[0], "advisory_snapshots", cUUID(id1), cText(oid(1).Hex()), cText("default"), cText("redhat"),
		cText("RHSA-1"), cText("sha256:aa"), cTime(fetched), cTime(received), cText("csaf"), cText("2.0"), cText(`{"id": "RHSA-1"}`), null,
		cText(`{"primary": "RHSA-1"}`), cText(`{"aliases": ["CVE-1"]}`), null)
	checkRow(t, "gridfs", o[1].rows[0], "advisory_snapshots", cUUID(rowID("advisory_raw", oid(2).Hex())), cText(oid(2).Hex()), cText("default"),
		cText("osv"), cText("OSV-1"), cText("sha256:bb"), cTime(fetched), cTime(received), cText("osv"), cText("1.6.0"), null, cText(blob.Hex()),
		cText(`{"primary": "OSV-1"}`), cText(`{"aliases": ["CVE-1"]}`), cUUID(id1))
	// supersedes always loads, whatever it names: a missing snapshot, a string _id.
	if got := o[10].rows[0].cells[14]; string(got) != string(cUUID(rowID("advisory_raw", "raw-by-name"))) {
		t.Errorf("supersedes by string: %x", got)
	}
}

// TestTiers: Tier A and advisory_raw's Tier B keep every document whatever its dates (there is
// no window in this module); Tier C skips every document; a structurally broken document is
// rejected before the tier filter, in Tier C too.
func TestTiers(t *testing.T) {
	for _, when := range []time.Time{asOf.Add(-time.Second), asOf.Add(time.Second), asOf.AddDate(-30, 0, 0)} {
		d := doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "tenant", Value: "t"},
			{Key: "upstream", Value: bson.D{{Key: "fetched_at", Value: bson.NewDateTimeFromTime(when)}, {Key: "received_at", Value: bson.NewDateTimeFromTime(when)}}},
			{Key: "content", Value: bson.D{{Key: "raw", Value: "x"}}}})
		if o := convert(t, "advisory_raw", transforms.Options{}, nil, d); o[0].v.Skip != "" || o[0].v.Reject != nil {
			t.Errorf("advisory_raw received %s: %+v %s", when, o[0].v, rejectOf(o[0]))
		}
		a := doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "K"}, {Key: "modifiedAt", Value: bson.NewDateTimeFromTime(when)}})
		if o := convert(t, "advisory", transforms.Options{}, nil, a); o[0].v.Skip != "" || o[0].v.Reject != nil {
			t.Errorf("advisory modified %s: %+v %s", when, o[0].v, rejectOf(o[0]))
		}
	}
	// No dates at all: still kept.
	d := doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "tenant", Value: "t"}, {Key: "content", Value: bson.D{{Key: "raw", Value: "x"}}}})
	if o := convert(t, "advisory_raw", transforms.Options{}, nil, d); o[0].v.Skip != "" || o[0].v.Reject != nil {
		t.Errorf("advisory_raw without dates: %+v", o[0].v)
	}
	for _, coll := range []string{"jobs", "locks"} {
		o := convert(t, coll, transforms.Options{}, nil, doc(t, bson.D{{Key: "_id", Value: "job-1"}, {Key: "state", Value: "running"}}))
		if o[0].v.Skip != pipeline.SkipTierC || o[0].v.Reject != nil || *o[0].v.ID != "job-1" {
			t.Errorf("%s: %+v", coll, o[0].v)
		}
		// A bool byte of 2 breaks the BSON spec: rejected before the tier filter.
		bad := doc(t, bson.D{{Key: "_id", Value: "job-2"}, {Key: "done", Value: true}})
		bad[len(bad)-2] = 2
		o = convert(t, coll, transforms.Options{}, nil, bad)
		if o[0].v.Reject == nil || o[0].v.Skip != "" || !contains(o[0].v.Reject.Reason, "invalid BSON") {
			t.Errorf("%s broken: %+v", coll, o[0].v)
		}
	}
}

// TestKeyPassRequired: Apply before Prepare refuses every document rather than guessing
// winners and parents; a key pass that must read parents without Query is an error.
func TestKeyPassRequired(t *testing.T) {
	for _, coll := range []string{"source", "source_state", "advisory", "alias", "affected", "advisory_raw"} {
		tr := build(t, coll, transforms.Options{})
		o := applyOne(tr, doc(t, bson.D{{Key: "_id", Value: "x"}}))
		if o.v.Reject == nil || !contains(o.v.Reject.Reason, "internal") {
			t.Errorf("%s: Apply before Prepare: %+v", coll, o.v)
		}
		kp := keyPass(nil, nil)
		kp.Query = nil
		err := tr.(pipeline.Preparer).Prepare(t.Context(), kp)
		needsParents := coll == "source_state" || coll == "advisory" || coll == "alias" || coll == "affected"
		if needsParents != (err != nil) {
			t.Errorf("%s: Prepare without Query: %v", coll, err)
		}
	}
}

// TestAffectedSingleIDClass: with one _id type class (a live source's plan) no identity can
// collide, and affected, which has no unique key, needs no scan at all.
func TestAffectedSingleIDClass(t *testing.T) {
	tr := build(t, "affected", transforms.Options{})
	kp := keyPass(nil, map[string][16]byte{"CVE-1": rowID("advisory", "a")})
	kp.Scan = nil
	kp.IDClasses = []string{"objectId"}
	if err := tr.(pipeline.Preparer).Prepare(t.Context(), kp); err != nil {
		t.Fatal(err)
	}
	if o := applyOne(tr, doc(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "advisoryKey", Value: "CVE-1"}})); o.v.Reject != nil {
		t.Fatalf("%s", rejectOf(o))
	}
	// Several classes: the scan is required.
	kp.IDClasses = []string{"objectId", "string"}
	if err := build(t, "affected", transforms.Options{}).(pipeline.Preparer).Prepare(t.Context(), kp); err == nil {
		t.Fatal("Prepare without Scan over several _id classes succeeded")
	}
}
