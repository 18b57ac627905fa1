package concelier

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/transforms"
	"github.com/stellaops/convert/verify"
)

// seedDoc is one source document and what the spec says becomes of it: "" loads, otherwise the
// reject as "<path>: <reason>", or skip for Tier C.
type seedDoc struct {
	coll string
	d    bson.D
	want string
}

const skipTierC = "skip: tier C"

var (
	t0       = time.Date(2025, 11, 28, 10, 11, 12, 345e6, time.UTC)
	fetched  = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	received = fetched.Add(1500 * time.Millisecond)
	blobID   = oid(0x9ff)
)

func hexOf(n int) string { return oid(n).Hex() }

func advisoryFull() bson.D {
	return bson.D{
		{Key: "_id", Value: oid(0x201)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "sourceName", Value: "nvd"},
		{Key: "title", Value: "Overflow in lodash"}, {Key: "summary", Value: "Heap overflow"}, {Key: "description", Value: "Long text"},
		{Key: "severity", Value: "critical"}, {Key: "exploitKnown", Value: false},
		{Key: "publishedAt", Value: bson.NewDateTimeFromTime(t0)}, {Key: "modifiedAt", Value: bson.NewDateTimeFromTime(t0.Add(time.Hour))},
		{Key: "language", Value: "en"}, {Key: "provenance", Value: bson.D{{Key: "source", Value: "nvd"}, {Key: "recordedAt", Value: bson.NewDateTimeFromTime(t0)}}},
		{Key: "cvssMetrics", Value: bson.A{metric(9.8), metric(mustDec("7.50")), metric("5.0"), metric(nil)}},
		{Key: "references", Value: bson.A{
			bson.D{{Key: "url", Value: "https://nvd.example/CVE-2026-0001"}, {Key: "kind", Value: "advisory"}, {Key: "sourceTag", Value: "NVD"}, {Key: "summary", Value: nil}},
			bson.D{{Key: "url", Value: "https://git.example/fix"}, {Key: "kind", Value: "patch"}, {Key: "sourceTag", Value: "MISC"}, {Key: "summary", Value: "upstream fix"}},
		}},
		{Key: "credits", Value: bson.A{bson.D{{Key: "name", Value: "Ada Lovelace"}, {Key: "contact", Value: nil}, {Key: "role", Value: "finder"}}}},
		{Key: "cwes", Value: bson.A{"CWE-79", "CWE-20", "CWE-79"}},
	}
}

func mustDec(s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

func snap(id any, tenant any, vendor, upstream, hash any, content bson.D, supersedes any, at time.Time) bson.D {
	d := bson.D{{Key: "_id", Value: id}}
	if tenant != nil {
		d = append(d, bson.E{Key: "tenant", Value: tenant})
	}
	return append(d,
		bson.E{Key: "source", Value: bson.D{{Key: "vendor", Value: vendor}, {Key: "connector", Value: "conn"}}},
		bson.E{Key: "upstream", Value: bson.D{{Key: "upstream_id", Value: upstream}, {Key: "fetched_at", Value: bson.NewDateTimeFromTime(at)},
			{Key: "received_at", Value: bson.NewDateTimeFromTime(at.Add(1500 * time.Millisecond))}, {Key: "content_hash", Value: hash}}},
		bson.E{Key: "content", Value: content},
		bson.E{Key: "identifiers", Value: bson.D{{Key: "primary", Value: upstream}}},
		bson.E{Key: "linkset", Value: bson.D{{Key: "aliases", Value: bson.A{"CVE-2026-0001"}}}},
		bson.E{Key: "supersedes", Value: supersedes},
	)
}

var (
	inlineContent = bson.D{{Key: "format", Value: "csaf"}, {Key: "spec_version", Value: "2.0"}, {Key: "raw", Value: bson.D{{Key: "id", Value: "RHSA-1"}}}}
	gridContent   = bson.D{{Key: "format", Value: "osv"}, {Key: "spec_version", Value: "1.6.0"}, {Key: "gridFsObjectId", Value: blobID}}
)

func seed() []seedDoc {
	held := func(by int) string { return "unique key (key) already held by _id " + hexOf(by) }
	return []seedDoc{
		// source
		{"source", bson.D{{Key: "_id", Value: oid(0x101)}, {Key: "name", Value: "nvd"}, {Key: "kind", Value: "registry"}, {Key: "url", Value: "https://nvd.example"},
			{Key: "enabled", Value: true}, {Key: "priority", Value: int32(10)}, {Key: "config", Value: bson.D{{Key: "pageSize", Value: int32(100)}}},
			{Key: "createdAt", Value: bson.NewDateTimeFromTime(t0)}, {Key: "updatedAt", Value: bson.NewDateTimeFromTime(t0.Add(time.Minute))}}, ""},
		{"source", bson.D{{Key: "_id", Value: oid(0x102)}, {Key: "name", Value: "nvd"}, {Key: "kind", Value: "dup"}}, "name: " + held(0x101)},
		{"source", bson.D{{Key: "_id", Value: oid(0x103)}, {Key: "name", Value: "ghsa"}, {Key: "priority", Value: int64(1) << 40}}, "priority: column priority: value out of range for integer"},
		{"source", bson.D{{Key: "_id", Value: oid(0x104)}, {Key: "name", Value: "osv"}}, ""},
		{"source", bson.D{{Key: "_id", Value: oid(0x105)}, {Key: "kind", Value: "nameless"}}, "name: missing value for NOT NULL column key"},
		{"source", bson.D{{Key: "_id", Value: "src-redhat"}, {Key: "name", Value: "redhat"}, {Key: "enabled", Value: false}}, ""},
		{"source", bson.D{{Key: "_id", Value: hexOf(0x107)}, {Key: "name", Value: "suse"}}, ""},
		{"source", bson.D{{Key: "_id", Value: oid(0x107)}, {Key: "name", Value: "ubuntu"}}, "_id: identity collision " + hexOf(0x107)},

		// source_state
		{"source_state", bson.D{{Key: "_id", Value: "nvd"}, {Key: "cursor", Value: bson.D{{Key: "page", Value: int32(4)}}},
			{Key: "lastSuccessAt", Value: bson.NewDateTimeFromTime(t0)}, {Key: "lastError", Value: "503"}, {Key: "failCount", Value: int32(2)},
			{Key: "backoffUntil", Value: bson.NewDateTimeFromTime(t0.Add(time.Hour))}, {Key: "updatedAt", Value: bson.NewDateTimeFromTime(t0.Add(2 * time.Hour))}}, ""},
		{"source_state", bson.D{{Key: "_id", Value: "msrc"}}, "_id: missing parent source/msrc"},
		{"source_state", bson.D{{Key: "_id", Value: "ghsa"}}, "_id: missing parent source/ghsa"},
		{"source_state", bson.D{{Key: "_id", Value: "osv"}}, ""},
		{"source_state", bson.D{{Key: "_id", Value: int32(7)}}, "_id: column source_id: expected string, found int"},
		{"source_state", bson.D{{Key: "_id", Value: "redhat"}, {Key: "failCount", Value: int64(0)}}, ""},

		// advisory
		{"advisory", advisoryFull(), ""},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x202)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "sourceName", Value: "redhat"}},
			"advisoryKey: unique key (advisory_key) already held by _id " + hexOf(0x201)},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x203)}, {Key: "advisoryKey", Value: "GHSA-aaaa"}, {Key: "title", Value: "Minimal"}}, ""},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x204)}, {Key: "advisoryKey", Value: "CVE-2026-0004"}, {Key: "sourceName", Value: "msrc"}}, "sourceName: missing parent source/msrc"},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x205)}, {Key: "advisoryKey", Value: "CVE-2026-0005"}, {Key: "sourceName", Value: "ghsa"}}, "sourceName: missing parent source/ghsa"},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x206)}, {Key: "advisoryKey", Value: "CVE-2026-0006"}, {Key: "cvssMetrics", Value: bson.A{metric(11.0)}}},
			`cvssMetrics.0.baseScore: column base_score: value "11" not allowed`},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x207)}, {Key: "advisoryKey", Value: "CVE-2026-0007"}, {Key: "cvssMetrics", Value: bson.A{metric("NaN")}}},
			"cvssMetrics.0.baseScore: column base_score: string is not a decimal number"},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x208)}, {Key: "advisoryKey", Value: "CVE-2026-0008"},
			{Key: "references", Value: bson.A{bson.D{{Key: "url", Value: "https://x"}}, bson.D{{Key: "kind", Value: "report"}}}}},
			"references.1.url: missing value for NOT NULL column url"},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x209)}, {Key: "advisoryKey", Value: "CVE-2026-0009"}, {Key: "title", Value: "NUL\x00here"}},
			"title: column title: string contains NUL"},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x20a)}, {Key: "advisoryKey", Value: "CVE-2026-0010"},
			{Key: "provenance", Value: bson.D{{Key: "source", Value: "nvd"}, {Key: "source", Value: "redhat"}}}},
			`provenance.source: column provenance: duplicate key "source"`},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x20b)}, {Key: "advisoryKey", Value: "CVE-2026-0011"}, {Key: "cvssMetrics", Value: bson.A{metric(12.0)}}},
			`cvssMetrics.0.baseScore: column base_score: value "12" not allowed`},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x20c)}, {Key: "advisoryKey", Value: "CVE-2026-0011"}, {Key: "sourceName", Value: "redhat"},
			{Key: "cwes", Value: bson.A{"CWE-1", "CWE-1", "CWE-1"}}}, ""},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x20d)}, {Key: "advisoryKey", Value: "CVE-2026-0013"}, {Key: "sourceName", Value: "suse"}}, ""},
		{"advisory", bson.D{{Key: "_id", Value: oid(0x20e)}, {Key: "advisoryKey", Value: "CVE-2026-0014"}, {Key: "sourceName", Value: "ubuntu"}}, "sourceName: missing parent source/ubuntu"},

		// alias
		{"alias", bson.D{{Key: "_id", Value: oid(0x301)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "CVE-2026-0001"}}, ""},
		{"alias", bson.D{{Key: "_id", Value: oid(0x302)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "scheme", Value: "CVE"}, {Key: "value", Value: "CVE-2026-0001"}},
			"value: unique key (advisory_id, scheme, value) already held by _id " + hexOf(0x301)},
		{"alias", bson.D{{Key: "_id", Value: oid(0x303)}, {Key: "advisoryKey", Value: "CVE-2017-99999"}, {Key: "scheme", Value: "CVE"}}, "advisoryKey: missing parent advisory/CVE-2017-99999"},
		{"alias", bson.D{{Key: "_id", Value: oid(0x304)}, {Key: "scheme", Value: "CVE"}}, "advisoryKey: missing value for NOT NULL column advisory_id"},
		{"alias", bson.D{{Key: "_id", Value: oid(0x305)}, {Key: "advisoryKey", Value: "GHSA-aaaa"}, {Key: "value", Value: "X"}}, ""},
		{"alias", bson.D{{Key: "_id", Value: oid(0x306)}, {Key: "advisoryKey", Value: "GHSA-aaaa"}, {Key: "value", Value: "X"}}, ""},
		{"alias", bson.D{{Key: "_id", Value: oid(0x307)}, {Key: "advisoryKey", Value: "CVE-2026-0011"}, {Key: "scheme", Value: "GHSA"}, {Key: "value", Value: "GHSA-bbbb"}}, ""},
		{"alias", bson.D{{Key: "_id", Value: oid(0x308)}, {Key: "advisoryKey", Value: "CVE-2026-0006"}, {Key: "scheme", Value: "CVE"}}, "advisoryKey: missing parent advisory/CVE-2026-0006"},
		{"alias", bson.D{{Key: "_id", Value: oid(0x309)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "scheme", Value: "RHSA"}, {Key: "value", Value: "RHSA-1"}, {Key: "note", Value: "ignored\x00"}}, ""},

		// affected
		{"affected", bson.D{{Key: "_id", Value: oid(0x401)}, {Key: "advisoryKey", Value: "CVE-2026-0001"}, {Key: "ecosystem", Value: "npm"}, {Key: "packageName", Value: "lodash"},
			{Key: "purl", Value: "pkg:npm/lodash"}, {Key: "ranges", Value: bson.A{bson.D{{Key: "type", Value: "SEMVER"}, {Key: "fixed", Value: "4.17.21"}}}},
			{Key: "versions", Value: bson.A{"4.17.20", "4.0.0"}}}, ""},
		{"affected", bson.D{{Key: "_id", Value: oid(0x402)}, {Key: "advisoryKey", Value: "CVE-2099-0000"}}, "advisoryKey: missing parent advisory/CVE-2099-0000"},
		{"affected", bson.D{{Key: "_id", Value: oid(0x403)}, {Key: "advisoryKey", Value: "GHSA-aaaa"}, {Key: "versions", Value: bson.A{"1", int32(2)}}},
			"versions.1: column versions: expected text[] element string, found int"},
		{"affected", bson.D{{Key: "_id", Value: oid(0x404)}, {Key: "advisoryKey", Value: "GHSA-aaaa"}, {Key: "versions", Value: bson.A{}}}, ""},
		{"affected", bson.D{{Key: "_id", Value: "aff-string"}, {Key: "advisoryKey", Value: "CVE-2026-0013"}, {Key: "purl", Value: "pkg:deb/debian/openssl"}}, ""},

		// advisory_raw
		{"advisory_raw", snap(oid(0x501), "default", "redhat", "RHSA-1", "sha256:aa", inlineContent, nil, fetched), ""},
		{"advisory_raw", snap(oid(0x502), "default", "osv", "OSV-1", "sha256:bb", gridContent, oid(0x501), fetched), ""},
		{"advisory_raw", snap(oid(0x503), "default", "osv", "OSV-2", "sha256:cc", append(append(bson.D{}, inlineContent...), bson.E{Key: "gridFsObjectId", Value: blobID}), nil, fetched),
			"content: content holds both inline raw and gridFsObjectId"},
		{"advisory_raw", snap(oid(0x504), "default", "osv", "OSV-3", "sha256:dd", bson.D{{Key: "format", Value: "osv"}}, nil, fetched),
			"content: content holds neither inline raw nor gridFsObjectId"},
		{"advisory_raw", snap(oid(0x505), "default", "redhat", "RHSA-1", "sha256:aa", inlineContent, nil, fetched),
			"upstream.content_hash: unique key (source_vendor, upstream_id, content_hash, tenant_id) already held by _id " + hexOf(0x501)},
		{"advisory_raw", snap(oid(0x506), "urn:tenant:acme", "redhat", "RHSA-1", "sha256:aa", inlineContent, nil, fetched), ""},
		{"advisory_raw", snap(oid(0x507), "default", "redhat", nil, "sha256:aa", inlineContent, nil, fetched), ""},
		{"advisory_raw", snap(oid(0x508), "default", "redhat", nil, "sha256:aa", inlineContent, nil, fetched), ""},
		{"advisory_raw", snap(oid(0x509), "urn:tenant:acme", "nvd", "CVE-1", "sha256:ee", inlineContent, oid(0x5ff), fetched), ""},
		{"advisory_raw", snap(oid(0x50a), nil, "nvd", "CVE-2", "sha256:ff", inlineContent, nil, fetched), "tenant: missing value for NOT NULL column tenant_id"},
		{"advisory_raw", snap(oid(0x50b), "default", "nvd", "CVE-3", "sha256:01", inlineContent, nil, fetched.AddDate(-20, 0, 0)), ""},

		// Tier C
		{"jobs", bson.D{{Key: "_id", Value: oid(0x601)}, {Key: "kind", Value: "fetch"}}, skipTierC},
		{"jobs", bson.D{{Key: "_id", Value: oid(0x602)}, {Key: "kind", Value: "parse"}}, skipTierC},
		{"jobs", bson.D{{Key: "_id", Value: oid(0x603)}, {Key: "kind", Value: "map"}}, skipTierC},
		{"locks", bson.D{{Key: "_id", Value: "job:source:nvd:fetch"}, {Key: "holder", Value: "a"}}, skipTierC},
		{"locks", bson.D{{Key: "_id", Value: "job:export:json"}, {Key: "holder", Value: "b"}}, skipTierC},
	}
}

// writeDump writes the seed as a mongodump directory. Each collection's documents are written
// in reverse _id order for half of them, so nothing depends on the file order.
func writeDump(t *testing.T, docs []seedDoc) string {
	t.Helper()
	dir := t.TempDir()
	w := dump.DirWriter{Root: dir}
	by := map[string][]bson.Raw{}
	var order []string
	for _, s := range docs {
		if _, ok := by[s.coll]; !ok {
			order = append(order, s.coll)
		}
		by[s.coll] = append(by[s.coll], doc(t, s.d))
	}
	for i, c := range order {
		ds := by[c]
		if i%2 == 1 {
			for a, b := 0, len(ds)-1; a < b; a, b = a+1, b-1 {
				ds[a], ds[b] = ds[b], ds[a]
			}
		}
		meta := []byte(fmt.Sprintf(`{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}],"collectionName":%q,"type":"collection"}`, c))
		if _, err := w.WriteCollection(t.Context(), DB, c, meta, func(emit func(bson.Raw) error) error {
			for _, d := range ds {
				if err := emit(d); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newPool(t *testing.T, migrate bool) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC" // timestamptz read back as text in UTC
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := manifests.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	if migrate {
		var migs []load.Migration
		for _, m := range Module().Migrations {
			migs = append(migs, load.Migration{Name: m.Name, SQL: m.SQL})
		}
		if err := load.ApplyMigrations(t.Context(), pool, Schema, migs); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

func runModule(t *testing.T, ctx context.Context, pool *pgxpool.Pool, dir string, workers, batch int) (*pipeline.Report, error) {
	t.Helper()
	src, err := dump.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	jobs, err := Module().Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Run(ctx, pipeline.Options{AsOf: asOf, Selection: "modules:concelier", Modules: []string{"concelier"},
		TransformVersion: Module().Version, Workers: workers, BatchSize: batch, Result: map[string]any{}},
		pipeline.Deps{Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: manifests.NewStore(pool), Collections: jobs})
}

// query returns each row as its columns' text joined by " | ", NULL as NULL.
func query(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func expectRows(t *testing.T, pool *pgxpool.Pool, what, sql string, want ...string) {
	t.Helper()
	got := query(t, pool, sql)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got:\n  %s\n want:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// ts is a timestamptz as PostgreSQL prints it in UTC.
func ts(x time.Time) string { return x.UTC().Format("2006-01-02 15:04:05.999999-07") }

func id(coll string, canonical string) string { return uuidText(rowID(coll, canonical)) }

func TestEndToEnd(t *testing.T) {
	docs := seed()
	dir := writeDump(t, docs)
	pool := newPool(t, true)
	rep, err := runModule(t, t.Context(), pool, dir, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != "completed" {
		t.Fatalf("run status %s: %s", rep.Status, rep.Error)
	}

	// Accounting, per collection, against the seed's own verdicts.
	type counts struct{ read, loaded, rejected, skipped int64 }
	want := map[string]*counts{}
	for _, s := range docs {
		c := want["concelier."+s.coll]
		if c == nil {
			c = &counts{}
			want["concelier."+s.coll] = c
		}
		c.read++
		switch {
		case s.want == "":
			c.loaded++
		case s.want == skipTierC:
			c.skipped++
		default:
			c.rejected++
		}
	}
	var order []string
	for _, c := range rep.Collections {
		order = append(order, c.Collection)
		w := want[c.Collection]
		if w == nil {
			t.Errorf("unexpected collection %s", c.Collection)
			continue
		}
		if c.Read != w.read || c.Loaded != w.loaded || c.Rejected != w.rejected || c.Skipped != w.skipped || c.Read != c.Loaded+c.Rejected+c.Skipped {
			t.Errorf("%s: read %d loaded %d rejected %d skipped %d; want %+v", c.Collection, c.Read, c.Loaded, c.Rejected, c.Skipped, *w)
		}
		if c.Skipped > 0 && c.SkippedByReason[pipeline.SkipTierC] != c.Skipped {
			t.Errorf("%s: skipped by reason %v", c.Collection, c.SkippedByReason)
		}
		if c.Checksum == "" {
			t.Errorf("%s: no checksum", c.Collection)
		}
	}
	if got := strings.Join(order, ","); got != "concelier.source,concelier.source_state,concelier.advisory,concelier.alias,concelier.affected,concelier.advisory_raw,concelier.jobs,concelier.locks" {
		t.Errorf("collection order %s", got)
	}
	adv := reportOf(rep, "concelier.advisory")
	// Repeated CWEs: one in CVE-2026-0001 (CWE-79), two in CVE-2026-0011 (CWE-1 ×3).
	if adv.DuplicatesCollapsed != 3 {
		t.Errorf("duplicates collapsed %d, want 3", adv.DuplicatesCollapsed)
	}
	wantRows := map[string]int64{"vuln.advisories": 4, "vuln.advisory_cvss": 4, "vuln.advisory_references": 2, "vuln.advisory_credits": 1, "vuln.advisory_weaknesses": 3}
	for tb, n := range wantRows {
		if adv.RowsByTable[tb] != n {
			t.Errorf("rows of %s: %d, want %d (%v)", tb, adv.RowsByTable[tb], n, adv.RowsByTable)
		}
	}

	// Rejects: exactly one row per rejected document, with its _id, path and reason.
	var wantRejects []string
	for _, s := range docs {
		if s.want != "" && s.want != skipTierC {
			cid, _ := transforms.CanonicalID(bson.Raw(doc(t, s.d)).Lookup("_id"))
			wantRejects = append(wantRejects, "concelier."+s.coll+" | "+cid+" | "+s.want)
		}
	}
	sort.Strings(wantRejects)
	gotRejects := query(t, pool, `SELECT collection, _id, path || ': ' || reason FROM convert.rejects ORDER BY 1, 2, 3`)
	sort.Strings(gotRejects)
	if strings.Join(gotRejects, "\n") != strings.Join(wantRejects, "\n") {
		t.Errorf("rejects:\n got:\n  %s\n want:\n  %s", strings.Join(gotRejects, "\n  "), strings.Join(wantRejects, "\n  "))
	}

	// Table contents, value by value.
	s1, s4, s6, s7 := id("source", hexOf(0x101)), id("source", hexOf(0x104)), id("source", "src-redhat"), id("source", hexOf(0x107))
	expectRows(t, pool, "sources", `SELECT id::text, mongo_id, key, kind, url, enabled, priority, config::text, created_at::text, updated_at::text FROM vuln.sources ORDER BY key`,
		s1+" | "+hexOf(0x101)+" | nvd | registry | https://nvd.example | true | 10 | {\"pageSize\": 100} | "+ts(t0)+" | "+ts(t0.Add(time.Minute)),
		s4+" | "+hexOf(0x104)+" | osv | NULL | NULL | NULL | NULL | NULL | NULL | NULL",
		s6+" | src-redhat | redhat | NULL | NULL | false | NULL | NULL | NULL | NULL",
		s7+" | "+hexOf(0x107)+" | suse | NULL | NULL | NULL | NULL | NULL | NULL | NULL",
	)
	expectRows(t, pool, "source_states", `SELECT s.key, st.source_id::text, st.cursor::text, st.last_success_at::text, st.last_error, st.fail_count, st.backoff_until::text, st.updated_at::text
FROM vuln.source_states st JOIN vuln.sources s ON s.id = st.source_id ORDER BY s.key`,
		"nvd | "+s1+" | {\"page\": 4} | "+ts(t0)+" | 503 | 2 | "+ts(t0.Add(time.Hour))+" | "+ts(t0.Add(2*time.Hour)),
		"osv | "+s4+" | NULL | NULL | NULL | NULL | NULL | NULL",
		"redhat | "+s6+" | NULL | NULL | NULL | 0 | NULL | NULL",
	)
	a1, a3, a12, a13 := id("advisory", hexOf(0x201)), id("advisory", hexOf(0x203)), id("advisory", hexOf(0x20c)), id("advisory", hexOf(0x20d))
	expectRows(t, pool, "advisories", `SELECT id::text, mongo_id, advisory_key, source_id::text, title, summary, description, severity, exploit_known,
published_at::text, modified_at::text, language, provenance::text, doc->>'_id', doc->>'advisoryKey', jsonb_array_length(doc->'cvssMetrics'), doc->'cvssMetrics'->1->>'baseScore'
FROM vuln.advisories ORDER BY advisory_key`,
		a1+" | "+hexOf(0x201)+" | CVE-2026-0001 | "+s1+" | Overflow in lodash | Heap overflow | Long text | critical | false | "+ts(t0)+" | "+ts(t0.Add(time.Hour))+
			" | en | {\"source\": \"nvd\", \"recordedAt\": \"2025-11-28T10:11:12.345Z\"} | "+hexOf(0x201)+" | CVE-2026-0001 | 4 | 7.50",
		a12+" | "+hexOf(0x20c)+" | CVE-2026-0011 | "+s6+" | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | "+hexOf(0x20c)+" | CVE-2026-0011 | NULL | NULL",
		a13+" | "+hexOf(0x20d)+" | CVE-2026-0013 | "+s7+" | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | "+hexOf(0x20d)+" | CVE-2026-0013 | NULL | NULL",
		a3+" | "+hexOf(0x203)+" | GHSA-aaaa | NULL | Minimal | NULL | NULL | NULL | NULL | NULL | NULL | NULL | NULL | "+hexOf(0x203)+" | GHSA-aaaa | NULL | NULL",
	)
	// search is generated by PostgreSQL from key, title and summary.
	expectRows(t, pool, "search", `SELECT advisory_key FROM vuln.advisories WHERE search @@ to_tsquery('simple', 'overflow') ORDER BY 1`, "CVE-2026-0001")
	expectRows(t, pool, "advisory_cvss", `SELECT advisory_id::text, ordinal, version, vector, base_score::text, severity, source FROM vuln.advisory_cvss ORDER BY advisory_id, ordinal`,
		a1+" | 0 | 3.1 | AV:N | 9.8 | high | nvd",
		a1+" | 1 | 3.1 | AV:N | 7.50 | high | nvd",
		a1+" | 2 | 3.1 | AV:N | 5.0 | high | nvd",
		a1+" | 3 | 3.1 | AV:N | NULL | high | nvd",
	)
	expectRows(t, pool, "advisory_references", `SELECT advisory_id::text, ordinal, url, kind, source_tag, summary FROM vuln.advisory_references ORDER BY advisory_id, ordinal`,
		a1+" | 0 | https://nvd.example/CVE-2026-0001 | advisory | NVD | NULL",
		a1+" | 1 | https://git.example/fix | patch | MISC | upstream fix",
	)
	expectRows(t, pool, "advisory_credits", `SELECT advisory_id::text, ordinal, name, contact, role FROM vuln.advisory_credits`,
		a1+" | 0 | Ada Lovelace | NULL | finder")
	weak := []string{a1 + " | CWE-20", a1 + " | CWE-79", a12 + " | CWE-1"}
	sort.Strings(weak)
	expectRows(t, pool, "advisory_weaknesses", `SELECT advisory_id::text || ' | ' || cwe_id FROM vuln.advisory_weaknesses ORDER BY (advisory_id::text || ' | ' || cwe_id) COLLATE "C"`, weak...)
	expectRows(t, pool, "advisory_aliases", `SELECT id::text, mongo_id, advisory_id::text, scheme, value FROM vuln.advisory_aliases ORDER BY mongo_id`,
		id("alias", hexOf(0x301))+" | "+hexOf(0x301)+" | "+a1+" | CVE | CVE-2026-0001",
		id("alias", hexOf(0x305))+" | "+hexOf(0x305)+" | "+a3+" | NULL | X",
		id("alias", hexOf(0x306))+" | "+hexOf(0x306)+" | "+a3+" | NULL | X",
		id("alias", hexOf(0x307))+" | "+hexOf(0x307)+" | "+a12+" | GHSA | GHSA-bbbb",
		id("alias", hexOf(0x309))+" | "+hexOf(0x309)+" | "+a1+" | RHSA | RHSA-1",
	)
	expectRows(t, pool, "advisory_affected", `SELECT id::text, mongo_id, advisory_id::text, ecosystem, package_name, purl, ranges::text, versions::text FROM vuln.advisory_affected ORDER BY mongo_id`,
		id("affected", hexOf(0x401))+" | "+hexOf(0x401)+" | "+a1+` | npm | lodash | pkg:npm/lodash | [{"type": "SEMVER", "fixed": "4.17.21"}] | {4.17.20,4.0.0}`,
		id("affected", hexOf(0x404))+" | "+hexOf(0x404)+" | "+a3+" | NULL | NULL | NULL | NULL | {}",
		id("affected", "aff-string")+" | aff-string | "+a13+" | NULL | NULL | pkg:deb/debian/openssl | NULL | NULL",
	)
	raw := func(n int, tenant, vendor, upstream, hash, format, spec, content, grid, supersedes string, at time.Time) string {
		return strings.Join([]string{id("advisory_raw", hexOf(n)), hexOf(n), tenant, vendor, upstream, hash, ts(at), ts(at.Add(1500 * time.Millisecond)),
			format, spec, content, grid, `{"primary": "` + upstream + `"}`, `{"aliases": ["CVE-2026-0001"]}`, supersedes}, " | ")
	}
	rawInline := `{"id": "RHSA-1"}`
	wantSnaps := []string{
		raw(0x501, "default", "redhat", "RHSA-1", "sha256:aa", "csaf", "2.0", rawInline, "NULL", "NULL", fetched),
		raw(0x502, "default", "osv", "OSV-1", "sha256:bb", "osv", "1.6.0", "NULL", blobID.Hex(), id("advisory_raw", hexOf(0x501)), fetched),
		raw(0x506, "urn:tenant:acme", "redhat", "RHSA-1", "sha256:aa", "csaf", "2.0", rawInline, "NULL", "NULL", fetched),
		raw(0x507, "default", "redhat", "NULL", "sha256:aa", "csaf", "2.0", rawInline, "NULL", "NULL", fetched),
		raw(0x508, "default", "redhat", "NULL", "sha256:aa", "csaf", "2.0", rawInline, "NULL", "NULL", fetched),
		raw(0x509, "urn:tenant:acme", "nvd", "CVE-1", "sha256:ee", "csaf", "2.0", rawInline, "NULL", id("advisory_raw", hexOf(0x5ff)), fetched),
		raw(0x50b, "default", "nvd", "CVE-3", "sha256:01", "csaf", "2.0", rawInline, "NULL", "NULL", fetched.AddDate(-20, 0, 0)),
	}
	// A NULL upstream_id prints as NULL in identifiers too.
	wantSnaps[3] = strings.Replace(wantSnaps[3], `{"primary": "NULL"}`, `{"primary": null}`, 1)
	wantSnaps[4] = strings.Replace(wantSnaps[4], `{"primary": "NULL"}`, `{"primary": null}`, 1)
	expectRows(t, pool, "advisory_snapshots", `SELECT id::text, mongo_id, tenant_id, source_vendor, upstream_id, content_hash, fetched_at::text, received_at::text,
format, spec_version, content::text, gridfs_id, identifiers::text, linkset::text, supersedes::text FROM vuln.advisory_snapshots ORDER BY mongo_id`, wantSnaps...)
	expectRows(t, pool, "jobs and locks are empty", `SELECT (SELECT count(*) FROM vuln.jobs) + (SELECT count(*) FROM vuln.locks)`, "0")

	// verify re-extracts and re-transforms (its key pass reads the loaded parents) and finds
	// what the run committed.
	vsrc, err := dump.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	vjobs, err := Module().Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vrep, err := verify.Run(t.Context(), verify.Options{RunID: rep.RunID, Deep: true}, verify.Deps{Source: vsrc, Pool: pool, Store: manifests.NewStore(pool), Jobs: vjobs})
	if err != nil || !vrep.Clean {
		t.Fatalf("verify: clean %v, err %v: %+v", vrep != nil && vrep.Clean, err, vrep)
	}

	// Determinism: another database, more workers, one batch per collection, same checksums.
	pool2 := newPool(t, true)
	rep2, err := runModule(t, t.Context(), pool2, dir, 4, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Collections {
		c2 := reportOf(rep2, c.Collection)
		if c2.Checksum != c.Checksum || c2.Loaded != c.Loaded || c2.Rejected != c.Rejected {
			t.Errorf("%s: second run checksum %s loaded %d rejected %d; first %s %d %d", c.Collection, c2.Checksum, c2.Loaded, c2.Rejected, c.Checksum, c.Loaded, c.Rejected)
		}
	}
	// The checksums recorded while loading are what the target holds.
	for _, c := range Module().Collections {
		for _, tb := range c.Tables {
			s1, err := load.ReadTableSum(t.Context(), pool, tb)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := load.ReadTableSum(t.Context(), pool2, tb)
			if err != nil {
				t.Fatal(err)
			}
			if s1 != s2 {
				t.Errorf("%s differs between the runs", tb.FullName())
			}
		}
	}
}

func reportOf(rep *pipeline.Report, name string) pipeline.CollectionReport {
	for _, c := range rep.Collections {
		if c.Collection == name {
			return c
		}
	}
	return pipeline.CollectionReport{}
}

// TestSchemaRequired: without the module's migrations the run refuses before writing, naming
// the missing tables.
func TestSchemaRequired(t *testing.T) {
	dir := writeDump(t, seed())
	pool := newPool(t, false)
	_, err := runModule(t, t.Context(), pool, dir, 1, 10)
	var sm *load.SchemaMismatchError
	if !errors.As(err, &sm) {
		t.Fatalf("err %v, want *load.SchemaMismatchError", err)
	}
	for _, tb := range Module().Tables() {
		if !strings.Contains(sm.Error(), "table "+tb.FullName()+" is missing") {
			t.Errorf("refusal does not name %s: %v", tb.FullName(), sm)
		}
	}
}
