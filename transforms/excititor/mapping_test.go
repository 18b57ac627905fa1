package excititor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// with returns d with each of kv set (replacing a field of the same key, else appended).
func with(d bson.D, kv ...bson.E) bson.D {
	out := append(bson.D(nil), d...)
	for _, e := range kv {
		found := false
		for i := range out {
			if out[i].Key == e.Key {
				out[i], found = e, true
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	return out
}

// without returns d without the given keys.
func without(d bson.D, keys ...string) bson.D {
	var out bson.D
	for _, e := range d {
		drop := false
		for _, k := range keys {
			drop = drop || e.Key == k
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

func date(t time.Time) bson.DateTime { return bson.DateTime(t.UnixMilli()) }

// corruptBool makes a document whose boolean byte is 2: strictly invalid, _id still readable.
func corruptBool(t *testing.T, id any) bson.Raw {
	b := mk(t, bson.D{{Key: "_id", Value: id}, {Key: "flag", Value: true}})
	i := len(b) - 2 // the boolean's byte, before the document's trailing NUL
	if b[i] != 1 {
		t.Fatalf("unexpected layout %x", b)
	}
	b[i] = 2
	return b
}

type mapCase struct {
	name string
	doc  bson.Raw
	opt  transforms.Options
	// want is "load", "skip <reason>" or "reject <path>: <reason>"; a reject reason ending in
	// "..." is matched as a prefix.
	want string
	rows []row
	// fixed is the expected StringsFixed of a load.
	fixed int
}

func runCases(t *testing.T, coll string, cases []mapCase, prepare func(opt transforms.Options) pipeline.Transform) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr pipeline.Transform
			if prepare != nil {
				tr = prepare(c.opt)
			} else {
				tr = prepared(t, coll, c.opt, []bson.Raw{c.doc}, nil)
			}
			v, rows := apply(tr, c.doc)
			got := outcome(v)
			if p, ok := strings.CutSuffix(c.want, "..."); ok {
				if !strings.HasPrefix(got, p) {
					t.Fatalf("outcome %q, want prefix %q", got, p)
				}
			} else if got != c.want {
				t.Fatalf("outcome %q, want %q", got, c.want)
			}
			if c.want == "load" {
				checkRows(t, rows, c.rows)
				if v.StringsFixed != c.fixed {
					t.Errorf("strings fixed %d, want %d", v.StringsFixed, c.fixed)
				}
			}
			if v.Reject != nil && (v.ID == nil || v.Reject.ID == nil || *v.ID != *v.Reject.ID) {
				t.Errorf("reject without the document's _id: %+v", v)
			}
		})
	}
}

func TestRawMapping(t *testing.T) {
	content := []byte(`{"document":{"title":"VEX"}}`)
	sum := sha256.Sum256(content)
	digest := "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:])) // case-insensitive compare
	retrieved := rawCutoff.Add(time.Second)                           // one second inside the window
	grid := oid(9)
	base := bson.D{
		{Key: "_id", Value: digest}, {Key: "tenant", Value: "t1"}, {Key: "digest", Value: "sha256:ignored"},
		{Key: "providerId", Value: "redhat"}, {Key: "format", Value: "csaf"}, {Key: "sourceUri", Value: "https://x/1.json"},
		{Key: "retrievedAt", Value: date(retrieved)}, {Key: "content", Value: content},
		{Key: "metadata", Value: bson.D{{Key: "source", Value: "feed"}, {Key: "n", Value: int32(1)}}},
		{Key: "ignored", Value: "a NUL \x00 in a field no table stores"},
	}
	full := func(id string, mods ...func(c []string)) []row {
		c := []string{cu(CollRaw, id), id, "t1", id, "redhat", "csaf", "https://x/1.json", cts(retrieved), string(content), NULL, `{"n": 1, "source": "feed"}`}
		for _, m := range mods {
			m(c)
		}
		return []row{{table: "raw_documents", cells: c}}
	}
	gridDoc := with(without(base, "content"), bson.E{Key: "_id", Value: "sha256:feed"}, bson.E{Key: "gridFsObjectId", Value: grid})
	other := with(base, bson.E{Key: "_id", Value: "md5:0123"})
	cases := []mapCase{
		{name: "inline content, digest in upper-case hex", doc: mk(t, base), want: "load", rows: full(digest)},
		{name: "SHA256: prefix in upper case", doc: mk(t, with(base, bson.E{Key: "_id", Value: "SHA256:" + hex.EncodeToString(sum[:])})), want: "load",
			rows: full("SHA256:" + hex.EncodeToString(sum[:]))},
		{name: "gridfs", doc: mk(t, gridDoc), want: "load", rows: full("sha256:feed", func(c []string) { c[8], c[9] = NULL, grid.Hex() })},
		{name: "null content counts as absent", doc: mk(t, with(gridDoc, bson.E{Key: "content", Value: nil})), want: "load",
			rows: full("sha256:feed", func(c []string) { c[8], c[9] = NULL, grid.Hex() })},
		{name: "another digest scheme is not checked", doc: mk(t, other), want: "load", rows: full("md5:0123")},
		{name: "ObjectId _id is the digest as hex", doc: mk(t, with(base, bson.E{Key: "_id", Value: oid(3)})), want: "load", rows: full(oid(3).Hex())},
		{name: "hash mismatch", doc: mk(t, with(base, bson.E{Key: "content", Value: []byte("tampered")})),
			want: "reject content: SHA-256 of content does not match the digest in _id"},
		{name: "sha256 digest that is not hex", doc: mk(t, with(base, bson.E{Key: "_id", Value: "sha256:zz"})),
			want: "reject content: SHA-256 of content does not match the digest in _id"},
		{name: "both content and gridfs", doc: mk(t, with(base, bson.E{Key: "gridFsObjectId", Value: grid})),
			want: "reject content: both inline content and gridFsObjectId"},
		{name: "neither content nor gridfs", doc: mk(t, without(base, "content")), want: "reject content: neither inline content nor gridFsObjectId"},
		{name: "null content and null gridfs", doc: mk(t, with(base, bson.E{Key: "content", Value: nil}, bson.E{Key: "gridFsObjectId", Value: nil})),
			want: "reject content: neither inline content nor gridFsObjectId"},
		{name: "gridfs id as a string", doc: mk(t, with(gridDoc, bson.E{Key: "gridFsObjectId", Value: grid.Hex()})),
			want: "reject gridFsObjectId: column gridfs_id: expected objectId, found string"},
		{name: "content not binary", doc: mk(t, with(other, bson.E{Key: "content", Value: "text"})),
			want: "reject content: column content: expected bytea, found string"},
		{name: "format outside the CHECK", doc: mk(t, with(base, bson.E{Key: "format", Value: "pdf"})),
			want: `reject format: column format: value "pdf" not allowed`},
		{name: "format is case-sensitive", doc: mk(t, with(base, bson.E{Key: "format", Value: "CSAF"})),
			want: `reject format: column format: value "CSAF" not allowed`},
		{name: "format null satisfies the CHECK", doc: mk(t, with(base, bson.E{Key: "format", Value: nil})), want: "load",
			rows: full(digest, func(c []string) { c[5] = NULL })},
		{name: "format of another type", doc: mk(t, with(base, bson.E{Key: "format", Value: int32(1)})),
			want: "reject format: column format: expected text, found int"},
		{name: "missing tenant", doc: mk(t, without(base, "tenant")), want: "reject tenant: missing value for NOT NULL column tenant_id"},
		{name: "_id of a type text cannot take", doc: mk(t, with(base, bson.E{Key: "_id", Value: int32(7)})),
			want: "reject _id: column digest: expected text, found int"},
		{name: "NUL in metadata", doc: mk(t, with(base, bson.E{Key: "metadata", Value: bson.D{{Key: "note", Value: "a\x00b"}}})),
			want: "reject metadata.note: column metadata: string contains NUL"},
		{name: "NUL in metadata mended", opt: transforms.Options{FixStrings: true},
			doc:  mk(t, with(base, bson.E{Key: "metadata", Value: bson.D{{Key: "note", Value: "a\x00b"}}})),
			want: "load", fixed: 1, rows: full(digest, func(c []string) { c[10] = `{"note": "ab"}` })},
		{name: "window: exactly at the cutoff", doc: mk(t, with(base, bson.E{Key: "retrievedAt", Value: date(rawCutoff)})), want: "load",
			rows: full(digest, func(c []string) { c[7] = cts(rawCutoff) })},
		{name: "window: one second outside", doc: mk(t, with(base, bson.E{Key: "retrievedAt", Value: date(rawCutoff.Add(-time.Second))})),
			want: "skip outside tier window"},
		{name: "window: one millisecond outside", doc: mk(t, with(base, bson.E{Key: "retrievedAt", Value: date(rawCutoff.Add(-time.Millisecond))})),
			want: "skip outside tier window"},
		{name: "window: missing retrievedAt is outside", doc: mk(t, without(base, "retrievedAt")), want: "skip outside tier window"},
		{name: "window: string retrievedAt is outside", doc: mk(t, with(base, bson.E{Key: "retrievedAt", Value: retrieved.Format(time.RFC3339)})),
			want: "skip outside tier window"},
		{name: "window: skipped before value checks", doc: mk(t, with(without(base, "tenant"), bson.E{Key: "retrievedAt", Value: date(rawCutoff.Add(-time.Second))})),
			want: "skip outside tier window"},
		{name: "invalid BSON is rejected before the tier filter", doc: corruptBool(t, "sha256:x"), want: "reject : invalid BSON: ..."},
	}
	runCases(t, CollRaw, cases, nil)
}

// TestRawDigestUniqueUnderFixStrings: mending can make two string _ids store one digest; the
// smallest _id keeps it, whatever the scan order.
func TestRawDigestUniqueUnderFixStrings(t *testing.T) {
	base := bson.D{{Key: "tenant", Value: "t1"}, {Key: "retrievedAt", Value: date(asOf)}, {Key: "content", Value: []byte("x")}}
	a := mk(t, append(bson.D{{Key: "_id", Value: "md5:a\x00b"}}, base...))
	b := mk(t, append(bson.D{{Key: "_id", Value: "md5:ab"}}, base...))
	want := map[string]string{
		"md5:a\x00b": "load",
		"md5:ab":     "reject _id: unique key (digest) already held by _id md5:a\x00b",
	}
	for _, docs := range [][]bson.Raw{{a, b}, {b, a}} {
		tr := prepared(t, CollRaw, transforms.Options{FixStrings: true}, docs, nil)
		if got := outcomes(tr, docs); !equalMaps(got, want) {
			t.Fatalf("outcomes %q, want %q", got, want)
		}
	}
	// Without --fix-strings the first _id is rejected for its NUL, the second loads.
	tr := prepared(t, CollRaw, transforms.Options{}, []bson.Raw{a, b}, nil)
	got := outcomes(tr, []bson.Raw{a, b})
	if got["md5:ab"] != "load" || !strings.HasPrefix(got["md5:a\x00b"], "reject _id: string contains NUL") {
		t.Fatalf("outcomes %q", got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestStatementsMapping(t *testing.T) {
	issued, updated, created := asOf.Add(-72*time.Hour), asOf.Add(-time.Hour), asOf.Add(-96*time.Hour+123*time.Millisecond)
	id := oid(1)
	base := bson.D{
		{Key: "_id", Value: id}, {Key: "tenant", Value: "urn:tenant:acme"}, {Key: "vulnerabilityId", Value: "CVE-2025-0001"},
		{Key: "productKey", Value: "pkg:rpm/redhat/openssl"}, {Key: "status", Value: "not_affected"},
		{Key: "justification", Value: "component_not_present"}, {Key: "impactStatement", Value: "no impact"},
		{Key: "actionStatement", Value: "none"}, {Key: "providerId", Value: "redhat"}, {Key: "documentDigest", Value: "sha256:abc"},
		{Key: "issuedAt", Value: date(issued)}, {Key: "lastUpdatedAt", Value: date(updated)}, {Key: "createdAt", Value: date(created)},
		{Key: "extra", Value: bson.D{{Key: "ignored", Value: "\xff"}}},
	}
	full := func(mods ...func(c []string)) []row {
		c := []string{cu(CollStatements, id.Hex()), id.Hex(), "urn:tenant:acme", "CVE-2025-0001", "pkg:rpm/redhat/openssl", "not_affected",
			"component_not_present", "no impact", "none", "redhat", "sha256:abc", cts(issued), cts(updated), cts(created)}
		for _, m := range mods {
			m(c)
		}
		return []row{{table: "statements", cells: c}}
	}
	cases := []mapCase{
		{name: "every column", doc: mk(t, base), want: "load", rows: full()},
		{name: "only the tenant", doc: mk(t, bson.D{{Key: "_id", Value: "s-1"}, {Key: "tenant", Value: "default"}}), want: "load",
			rows: []row{{table: "statements", cells: []string{cu(CollStatements, "s-1"), "s-1", "default", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}}}},
		{name: "tenant as ObjectId is its hex", doc: mk(t, with(base, bson.E{Key: "tenant", Value: oid(7)})), want: "load",
			rows: full(func(c []string) { c[2] = oid(7).Hex() })},
		{name: "each allowed status", doc: mk(t, with(base, bson.E{Key: "status", Value: "under_investigation"})), want: "load",
			rows: full(func(c []string) { c[5] = "under_investigation" })},
		{name: "status outside the CHECK", doc: mk(t, with(base, bson.E{Key: "status", Value: "unknown"})),
			want: `reject status: column status: value "unknown" not allowed`},
		{name: "status with NUL", doc: mk(t, with(base, bson.E{Key: "status", Value: "fixed\x00"})),
			want: "reject status: column status: string contains NUL"},
		{name: "status mended into the CHECK", opt: transforms.Options{FixStrings: true}, doc: mk(t, with(base, bson.E{Key: "status", Value: "fixed\x00"})),
			want: "load", fixed: 1, rows: full(func(c []string) { c[5] = "fixed" })},
		{name: "status mended outside the CHECK", opt: transforms.Options{FixStrings: true}, doc: mk(t, with(base, bson.E{Key: "status", Value: "bogus\x00"})),
			want: `reject status: column status: value "bogus" not allowed`},
		{name: "invalid UTF-8", doc: mk(t, with(base, bson.E{Key: "impactStatement", Value: "bad \xff"})),
			want: "reject impactStatement: column impact_statement: string is not valid UTF-8"},
		{name: "date of another type", doc: mk(t, with(base, bson.E{Key: "lastUpdatedAt", Value: int64(5)})),
			want: "reject lastUpdatedAt: column last_updated_at: expected timestamp with time zone, found long"},
		{name: "missing tenant", doc: mk(t, without(base, "tenant")), want: "reject tenant: missing value for NOT NULL column tenant_id"},
		{name: "null tenant", doc: mk(t, with(base, bson.E{Key: "tenant", Value: nil})), want: "reject tenant: missing value for NOT NULL column tenant_id"},
		{name: "the first fault in column order wins", doc: mk(t, with(base, bson.E{Key: "status", Value: "nope"}, bson.E{Key: "productKey", Value: int32(1)})),
			want: "reject productKey: column product_key: expected text, found int"},
		{name: "invalid BSON", doc: corruptBool(t, oid(2)), want: "reject : invalid BSON: ..."},
	}
	runCases(t, CollStatements, cases, nil)
}

func TestObservationsMapping(t *testing.T) {
	created := asOf.Add(-10 * 24 * time.Hour)
	id := oid(1)
	base := bson.D{
		{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "observationId", Value: "obs-1"},
		{Key: "vulnerabilityId", Value: "CVE-2025-1"}, {Key: "productKey", Value: "pkg:npm/x"}, {Key: "providerId", Value: "ghsa"},
		{Key: "status", Value: "affected"},
		{Key: "justification", Value: bson.D{{Key: "type", Value: "vulnerable_code_not_present"}, {Key: "text", Value: "n/a"}}},
		{Key: "confidence", Value: bson.D{{Key: "score", Value: 0.75}, {Key: "level", Value: "high"}}},
		{Key: "signals", Value: bson.A{bson.D{{Key: "kind", Value: "epss"}, {Key: "value", Value: int64(9007199254740993)}}}},
		{Key: "documentDigest", Value: "sha256:d"},
		{Key: "purls", Value: bson.A{"pkg:npm/z", "pkg:npm/a", "pkg:npm/z", nil, "Pkg:npm/b"}},
		{Key: "cpes", Value: bson.A{}},
		{Key: "createdAt", Value: date(created)},
	}
	full := func(mods ...func(c []string)) []row {
		c := []string{cu(CollObservations, id.Hex()), id.Hex(), "t1", "obs-1", "CVE-2025-1", "pkg:npm/x", "ghsa", "affected",
			`{"text": "n/a", "type": "vulnerable_code_not_present"}`, `{"level": "high", "score": 0.75}`,
			`[{"kind": "epss", "value": 9007199254740993}]`, "sha256:d",
			carr("Pkg:npm/b", "pkg:npm/a", "pkg:npm/z", "pkg:npm/z", NULL), carr(), NULL, cts(created)}
		for _, m := range mods {
			m(c)
		}
		return []row{{table: "observations", cells: c}}
	}
	cases := []mapCase{
		{name: "every column, arrays sorted bytewise with duplicates kept", doc: mk(t, base), want: "load", rows: full()},
		{name: "anchors sorted", doc: mk(t, with(base, bson.E{Key: "anchors", Value: bson.A{"b", "a", "a"}})), want: "load",
			rows: full(func(c []string) { c[14] = carr("a", "a", "b") })},
		{name: "null observationId", doc: mk(t, with(base, bson.E{Key: "observationId", Value: nil})), want: "load",
			rows: full(func(c []string) { c[3] = NULL })},
		{name: "mixed array", doc: mk(t, with(base, bson.E{Key: "cpes", Value: bson.A{"cpe:/a", int32(1)}})),
			want: "reject cpes.1: column cpes: expected text[] element string, found int"},
		{name: "array field that is not an array", doc: mk(t, with(base, bson.E{Key: "anchors", Value: "a"})),
			want: "reject anchors: column anchors: expected text[], found string"},
		{name: "NUL in a jsonb column", doc: mk(t, with(base, bson.E{Key: "signals", Value: bson.D{{Key: "k", Value: "\x00"}}})),
			want: "reject signals.k: column signals: string contains NUL"},
		{name: "duplicate key in a jsonb column", doc: dupKeyObservation(t, id),
			want: `reject confidence.score: column confidence: duplicate key "score"`},
		{name: "missing tenant", doc: mk(t, without(base, "tenant")), want: "reject tenant: missing value for NOT NULL column tenant_id"},
	}
	runCases(t, CollObservations, cases, nil)
}

// dupKeyObservation is an observation whose confidence holds the key "score" twice.
func dupKeyObservation(t *testing.T, id bson.ObjectID) bson.Raw {
	inner := mk(t, bson.D{{Key: "score", Value: 1.0}, {Key: "score", Value: 2.0}})
	return mk(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "confidence", Value: inner}})
}

// TestObservationsUniqueKey: UNIQUE(tenant_id, observation_id) is decided among the documents
// still standing: the smallest _id wins, a NULL observation_id never collides, a document that
// fails a value check never competes, and the scan order does not matter.
func TestObservationsUniqueKey(t *testing.T) {
	obs := func(n byte, tenant string, observationID any, extra ...bson.E) bson.Raw {
		return mk(t, append(bson.D{{Key: "_id", Value: oid(n)}, {Key: "tenant", Value: tenant}, {Key: "observationId", Value: observationID}}, extra...))
	}
	docs := []bson.Raw{
		obs(3, "t1", "obs-1"),
		obs(5, "t1", "obs-1"), // loses to 3
		obs(4, "t2", "obs-1"), // another tenant: its own key
		obs(6, "t1", nil),     // NULL never collides
		obs(7, "t1", nil),     //
		obs(1, "t1", "obs-2", bson.E{Key: "status", Value: int32(1)}), // smallest, but rejected by a value check
		obs(8, "t1", "obs-2"),                                // so it wins obs-2
		obs(2, "t1", "obs-\x00", bson.E{Key: "x", Value: 1}), // NUL: rejected, or mended under --fix-strings
		obs(9, "t1", "obs-"),                                 // mended key of 2
	}
	held := func(n byte) string {
		return "reject observationId: unique key (tenant_id, observation_id) already held by _id " + oid(n).Hex()
	}
	want := map[string]string{
		oid(3).Hex(): "load", oid(5).Hex(): held(3), oid(4).Hex(): "load", oid(6).Hex(): "load", oid(7).Hex(): "load",
		oid(1).Hex(): "reject status: column status: expected text, found int", oid(8).Hex(): "load",
		oid(2).Hex(): "reject observationId: column observation_id: string contains NUL", oid(9).Hex(): "load",
	}
	for _, order := range [][]bson.Raw{docs, reversed(docs)} {
		tr := prepared(t, CollObservations, transforms.Options{}, order, nil)
		if got := outcomes(tr, docs); !equalMaps(got, want) {
			t.Fatalf("outcomes:\n got %q\nwant %q", got, want)
		}
	}
	// Under --fix-strings, 2's observationId is mended to "obs-", the key 9 holds: 2 is smaller.
	want[oid(2).Hex()], want[oid(9).Hex()] = "load", held(2)
	tr := prepared(t, CollObservations, transforms.Options{FixStrings: true}, docs, nil)
	if got := outcomes(tr, docs); !equalMaps(got, want) {
		t.Fatalf("--fix-strings outcomes:\n got %q\nwant %q", got, want)
	}
}

func TestLinksetsMapping(t *testing.T) {
	o1, o2, o3, o9 := oid(1), oid(2), oid(3), oid(99)
	loaded := [][2]string{
		{uuidText(wantID(CollObservations, o1.Hex())), "t1"},
		{uuidText(wantID(CollObservations, o2.Hex())), "t1"},
		{uuidText(wantID(CollObservations, o3.Hex())), "t2"},
		{uuidText(wantID(CollObservations, "obs-string-id")), "t1"},
	}
	created, updated := asOf.Add(-48*time.Hour), asOf.Add(-time.Hour)
	lid := oid(50)
	base := bson.D{
		{Key: "_id", Value: lid}, {Key: "tenant", Value: "t1"}, {Key: "linksetId", Value: "ls-1"},
		{Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: "pkg:x"},
		{Key: "conflicts", Value: bson.A{bson.D{{Key: "providerId", Value: "a"}, {Key: "status", Value: "fixed"}}}},
		{Key: "createdAt", Value: date(created)}, {Key: "updatedAt", Value: date(updated)},
		{Key: "observationIds", Value: bson.A{o1, o2, o1}},
	}
	main := row{table: "linksets", cells: []string{cu(CollLinksets, lid.Hex()), lid.Hex(), "t1", "ls-1", "CVE-1", "pkg:x",
		`[{"status": "fixed", "providerId": "a"}]`, cts(created), cts(updated)}}
	link := func(ord int32, obsCanon string) row {
		return row{table: "linkset_observations", cells: []string{cu(CollLinksets, lid.Hex()), ci4(ord), cu(CollObservations, obsCanon), "t1"}}
	}
	prep := func(opt transforms.Options) pipeline.Transform {
		return prepared(t, CollLinksets, opt, nil, loaded)
	}
	cases := []mapCase{
		{name: "every column, a link row per element in order, repeats kept", doc: mk(t, base), want: "load",
			rows: []row{main, link(0, o1.Hex()), link(1, o2.Hex()), link(2, o1.Hex())}},
		{name: "empty observationIds", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{}})), want: "load", rows: []row{main}},
		{name: "missing observationIds", doc: mk(t, without(base, "observationIds")), want: "load", rows: []row{main}},
		{name: "null observationIds", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: nil})), want: "load", rows: []row{main}},
		{name: "an element of another _id type maps through the same id function",
			doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{"obs-string-id"}})), want: "load",
			rows: []row{main, link(0, "obs-string-id")}},
		{name: "one missing observation rejects the whole linkset", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{o1, o9, o2}})),
			want: "reject observationIds.1: missing parent vex.observations/" + o9.Hex()},
		{name: "an observation of another tenant", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{o1, o3}})),
			want: "reject observationIds.1: cross-tenant reference vex.observations/" + o3.Hex()},
		{name: "null element", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{nil}})),
			want: "reject observationIds.0: missing parent vex.observations/null"},
		{name: "observationIds not an array", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: o1})),
			want: "reject observationIds: expected array, found objectId"},
		{name: "value checks come before references", doc: mk(t, with(base, bson.E{Key: "observationIds", Value: bson.A{o9}}, bson.E{Key: "linksetId", Value: "\xff"})),
			want: "reject linksetId: column linkset_id: string is not valid UTF-8"},
		{name: "missing tenant", doc: mk(t, without(base, "tenant")), want: "reject tenant: missing value for NOT NULL column tenant_id"},
	}
	runCases(t, CollLinksets, cases, prep)
}

// TestLinksetsNeedQuery: without a way to read the loaded observations the key pass fails
// clearly rather than rejecting every linkset.
func TestLinksetsNeedQuery(t *testing.T) {
	tr := newTransform(t, CollLinksets, transforms.Options{}).(pipeline.Preparer)
	kp := keyPass(nil, nil)
	kp.Query = nil
	err := tr.Prepare(t.Context(), kp)
	if err == nil || !strings.Contains(err.Error(), "cannot query") {
		t.Fatalf("err %v", err)
	}
	kp = keyPass(nil, nil)
	kp.Query = func(string, func([]*string) error) error { return errTest }
	if err := tr.Prepare(t.Context(), kp); err == nil || !strings.Contains(err.Error(), "read loaded observations") {
		t.Fatalf("err %v", err)
	}
}

var errTest = &pipeline.UsageError{Msg: "injected"}

func TestConsensusMapping(t *testing.T) {
	calc := asOf.Add(-time.Hour)
	id := oid(1)
	base := bson.D{
		{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: "pkg:x"},
		{Key: "status", Value: "affected"}, {Key: "sources", Value: bson.A{"redhat", bson.D{{Key: "w", Value: 0.5}}}},
		{Key: "policyRevisionId", Value: "rev-7"}, {Key: "calculatedAt", Value: date(calc)},
	}
	cases := []mapCase{
		{name: "every column", doc: mk(t, base), want: "load", rows: []row{{table: "consensus", cells: []string{
			cu(CollConsensus, id.Hex()), id.Hex(), "t1", "CVE-1", "pkg:x", "affected", `["redhat", {"w": 0.5}]`, "rev-7", cts(calc)}}}},
		{name: "missing calculatedAt", doc: mk(t, without(base, "calculatedAt")), want: "reject calculatedAt: missing value for NOT NULL column calculated_at"},
		{name: "calculatedAt as a string", doc: mk(t, with(base, bson.E{Key: "calculatedAt", Value: calc.Format(time.RFC3339)})),
			want: "reject calculatedAt: column calculated_at: expected timestamp with time zone, found string"},
	}
	runCases(t, CollConsensus, cases, nil)
}

// TestConsensusSuperseded: per (tenant, vulnerability, product) the latest calculatedAt wins,
// ties go to the greatest _id, the others are skipped as superseded; documents that fail a
// value check are rejected and never compete; a NULL key part never collides.
func TestConsensusSuperseded(t *testing.T) {
	t0 := asOf.Add(-3 * time.Hour)
	c := func(n byte, tenant, product any, at *time.Time, extra ...bson.E) bson.Raw {
		d := bson.D{{Key: "_id", Value: oid(n)}, {Key: "tenant", Value: tenant}, {Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: product}}
		if at != nil {
			d = append(d, bson.E{Key: "calculatedAt", Value: date(*at)})
		}
		return mk(t, append(d, extra...))
	}
	at := func(h int) *time.Time { x := t0.Add(time.Duration(h) * time.Hour); return &x }
	docs := []bson.Raw{
		c(1, "t1", "p", at(0)),
		c(2, "t1", "p", at(2)), // latest of (t1, p) ...
		c(3, "t1", "p", at(1)),
		c(4, "t1", "p", at(5), bson.E{Key: "status", Value: "\x00"}), // ... since this later one is rejected
		c(5, "t1", "p", nil),   // NOT NULL: rejected, never competes
		c(6, "t2", "p", at(0)), // another tenant
		c(7, "t1", "q", at(1)),
		c(8, "t1", "q", at(1)), // tie: the greatest _id wins
		c(9, "t1", nil, at(0)), // NULL product: no collision
		c(10, "t1", nil, at(0)),
	}
	want := map[string]string{
		oid(1).Hex(): "skip superseded", oid(2).Hex(): "load", oid(3).Hex(): "skip superseded",
		oid(4).Hex(): "reject status: column status: string contains NUL",
		oid(5).Hex(): "reject calculatedAt: missing value for NOT NULL column calculated_at",
		oid(6).Hex(): "load", oid(7).Hex(): "skip superseded", oid(8).Hex(): "load", oid(9).Hex(): "load", oid(10).Hex(): "load",
	}
	for _, order := range [][]bson.Raw{docs, reversed(docs)} {
		tr := prepared(t, CollConsensus, transforms.Options{}, order, nil)
		if got := outcomes(tr, docs); !equalMaps(got, want) {
			t.Fatalf("outcomes:\n got %q\nwant %q", got, want)
		}
	}
}

// TestIdentityCollision: a string _id equal to an ObjectId's hex derives the same row id; among
// the standing documents the smallest _id (the string: strings sort before ObjectIds) keeps it.
func TestIdentityCollision(t *testing.T) {
	o := oid(4)
	str := mk(t, bson.D{{Key: "_id", Value: o.Hex()}, {Key: "tenant", Value: "t1"}})
	obj := mk(t, bson.D{{Key: "_id", Value: o}, {Key: "tenant", Value: "t1"}})
	badStr := mk(t, bson.D{{Key: "_id", Value: o.Hex()}, {Key: "tenant", Value: "t1"}, {Key: "status", Value: "bogus"}})
	other := mk(t, bson.D{{Key: "_id", Value: oid(5)}, {Key: "tenant", Value: "t1"}})
	for _, docs := range [][]bson.Raw{{str, obj, other}, {obj, other, str}} {
		tr := prepared(t, CollStatements, transforms.Options{}, docs, nil)
		want := map[string]string{o.Hex(): "load", oid(5).Hex(): "load"}
		// outcomes keys by canonical _id: apply the two colliding documents separately.
		if got := outcomes(tr, []bson.Raw{str, other}); !equalMaps(got, want) {
			t.Fatalf("winner: %q", got)
		}
		if v, _ := apply(tr, obj); outcome(v) != "reject _id: identity collision "+o.Hex() {
			t.Fatalf("loser: %q", outcome(v))
		}
	}
	// When the string document fails a value check, it does not stand: the ObjectId keeps the id.
	tr := prepared(t, CollStatements, transforms.Options{}, []bson.Raw{badStr, obj}, nil)
	if v, _ := apply(tr, obj); outcome(v) != "load" {
		t.Fatalf("ObjectId after the string was rejected: %q", outcome(v))
	}
	if v, _ := apply(tr, badStr); outcome(v) != `reject status: column status: value "bogus" not allowed` {
		t.Fatalf("string: %q", outcome(v))
	}
}

// TestIdentityBeforeUniqueKeys: a document that loses its identity holds no unique key, so
// the next _id with that key wins it.
func TestIdentityBeforeUniqueKeys(t *testing.T) {
	o1, o2 := oid(1), oid(2)
	s := mk(t, bson.D{{Key: "_id", Value: o1.Hex()}, {Key: "tenant", Value: "t1"}, {Key: "observationId", Value: "a"}})
	d1 := mk(t, bson.D{{Key: "_id", Value: o1}, {Key: "tenant", Value: "t1"}, {Key: "observationId", Value: "k"}})
	d2 := mk(t, bson.D{{Key: "_id", Value: o2}, {Key: "tenant", Value: "t1"}, {Key: "observationId", Value: "k"}})
	for _, docs := range [][]bson.Raw{{s, d1, d2}, {d2, d1, s}} {
		tr := prepared(t, CollObservations, transforms.Options{}, docs, nil)
		got := []string{}
		for _, d := range []bson.Raw{s, d1, d2} {
			v, _ := apply(tr, d)
			got = append(got, outcome(v))
		}
		want := []string{"load", "reject _id: identity collision " + o1.Hex(), "load"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("outcomes %q, want %q", got, want)
		}
	}
}

func TestCache(t *testing.T) {
	tr := newTransform(t, CollCache, transforms.Options{})
	v, _ := apply(tr, mk(t, bson.D{{Key: "_id", Value: "k"}, {Key: "tenant", Value: "t1"}, {Key: "value", Value: "\x00"}}))
	if outcome(v) != "skip tier C" || v.ID == nil || *v.ID != "k" {
		t.Fatalf("cache document: %+v", v)
	}
	v, _ = apply(tr, corruptBool(t, "k2"))
	if !strings.HasPrefix(outcome(v), "reject : invalid BSON: ") {
		t.Fatalf("broken cache document: %q", outcome(v))
	}
}

// TestModule: names, load order, tiers, parents and change fields as modules.md states them;
// each transform writes exactly its collection's tables.
func TestModule(t *testing.T) {
	m := Module()
	if m.Name != "excititor" || m.Schema != "vex" || m.DB != "excititor" || m.Version != "excititor/1" || len(m.Migrations) != 1 {
		t.Fatalf("module %+v", m)
	}
	type want struct {
		name, tier, change string
		days               int
		parents            []string
		tables             []string
	}
	wants := []want{
		{"vex.raw", "B", "retrievedAt", 90, nil, []string{"vex.raw_documents"}},
		{"vex.statements", "A", "lastUpdatedAt", 0, nil, []string{"vex.statements"}},
		{"vex.observations", "A", "createdAt", 0, nil, []string{"vex.observations"}},
		{"vex.linksets", "A", "updatedAt", 0, []string{"vex.observations"}, []string{"vex.linksets", "vex.linkset_observations"}},
		{"vex.consensus", "A", "calculatedAt", 0, nil, []string{"vex.consensus"}},
		{"vex.cache", "C", "", 0, nil, []string{"vex.cache"}},
	}
	if len(m.Collections) != len(wants) {
		t.Fatalf("%d collections", len(m.Collections))
	}
	for i, w := range wants {
		c := m.Collections[i]
		var tables []string
		for _, tb := range c.Tables {
			tables = append(tables, tb.FullName())
		}
		if c.Name != w.name || c.Tier.Name != w.tier || c.ChangeField != w.change || tiersDays(c) != w.days ||
			strings.Join(c.Parents, ",") != strings.Join(w.parents, ",") || strings.Join(tables, ",") != strings.Join(w.tables, ",") {
			t.Errorf("collection %d: %+v, want %+v", i, c, w)
		}
		tr := c.New(transforms.Env{Module: m.Name, Collection: c.Name, Filter: c.Tier.Bind(asOf)})
		var trTables []string
		for _, tb := range tr.Tables() {
			trTables = append(trTables, tb.FullName())
		}
		if strings.Join(trTables, ",") != strings.Join(w.tables, ",") {
			t.Errorf("%s transform tables %v", c.Name, trTables)
		}
	}
	jobs, err := m.Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil || len(jobs) != 6 || jobs[0].Name != "excititor.vex.raw" || jobs[0].NS.DB != "excititor" || jobs[0].NS.Collection != "vex.raw" {
		t.Fatalf("jobs %+v %v", jobs, err)
	}
}

func tiersDays(c transforms.Collection) int {
	if c.Tier.Keep == nil {
		return 0
	}
	f := c.Tier.Bind(asOf)
	// The window's length, read back through the filter: a document exactly days old is kept,
	// one a millisecond older is not.
	for d := 1; d <= 400; d++ {
		edge := asOf.Add(-time.Duration(d) * 24 * time.Hour)
		in := bson.Raw(mustRaw(bson.D{{Key: "_id", Value: 1}, {Key: c.ChangeField, Value: date(edge)}}))
		out := bson.Raw(mustRaw(bson.D{{Key: "_id", Value: 1}, {Key: c.ChangeField, Value: date(edge.Add(-time.Millisecond))}}))
		if f.Decide(in) == "" && f.Decide(out) != "" {
			return d
		}
	}
	return -1
}

func mustRaw(d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPrepareReadsOnlyWhatItNeeds: with one _id type class no identity can collide, so a
// collection without keys of its own does not scan at all; with several classes but no
// string that could meet another type's canonical form, it reads the _ids once.
func TestPrepareReadsOnlyWhatItNeeds(t *testing.T) {
	docs := []bson.Raw{mk(t, bson.D{{Key: "_id", Value: oid(1)}, {Key: "tenant", Value: "t1"}}), mk(t, bson.D{{Key: "_id", Value: "s-1"}, {Key: "tenant", Value: "t1"}})}
	scans := 0
	kp := keyPass(docs, nil)
	inner := kp.Scan
	kp.Scan = func(fn func(bson.Raw) error) error { scans++; return inner(fn) }
	tr := newTransform(t, CollStatements, transforms.Options{}).(pipeline.Preparer)
	kp.IDClasses = []string{"objectId"}
	if err := tr.Prepare(t.Context(), kp); err != nil || scans != 0 {
		t.Fatalf("one class: %d scans, %v", scans, err)
	}
	kp.IDClasses = nil
	if err := tr.Prepare(t.Context(), kp); err != nil || scans != 1 {
		t.Fatalf("no candidates: %d scans, %v", scans, err)
	}
	// A hex string beside an ObjectId: the _ids, the standing documents, then the ObjectIds met.
	scans = 0
	kp = keyPass(append(docs, mk(t, bson.D{{Key: "_id", Value: oid(1).Hex()}, {Key: "tenant", Value: "t1"}})), nil)
	inner = kp.Scan
	kp.Scan = func(fn func(bson.Raw) error) error { scans++; return inner(fn) }
	if err := tr.Prepare(t.Context(), kp); err != nil || scans != 3 {
		t.Fatalf("candidates: %d scans, %v", scans, err)
	}
	if v, _ := apply(tr.(pipeline.Transform), docs[0]); outcome(v) != "reject _id: identity collision "+oid(1).Hex() {
		t.Fatalf("ObjectId beside its hex string: %q", outcome(v))
	}
}

// TestConcurrentApply: once prepared, Apply is safe for several workers (run with -race) and
// gives each of them the same verdicts.
func TestConcurrentApply(t *testing.T) {
	var docs []bson.Raw
	for i := 0; i < 64; i++ {
		docs = append(docs, mk(t, bson.D{{Key: "_id", Value: oid(byte(i))}, {Key: "tenant", Value: "t1"},
			{Key: "observationId", Value: fmt.Sprint(i % 8)}, {Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: fmt.Sprint(i % 8)},
			{Key: "calculatedAt", Value: date(asOf.Add(time.Duration(i%5) * time.Minute))},
			{Key: "observationIds", Value: bson.A{oid(byte(i))}}}))
	}
	loaded := [][2]string{}
	for i := 0; i < 64; i += 2 {
		loaded = append(loaded, [2]string{uuidText(wantID(CollObservations, oid(byte(i)).Hex())), "t1"})
	}
	for _, coll := range []string{CollObservations, CollConsensus, CollLinksets, CollStatements} {
		tr := prepared(t, coll, transforms.Options{}, docs, loaded)
		want := outcomes(tr, docs)
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got := outcomes(tr, docs); !equalMaps(got, want) {
					errs <- coll
				}
			}()
		}
		wg.Wait()
		close(errs)
		for c := range errs {
			t.Fatalf("%s: a worker saw other verdicts", c)
		}
	}
}
