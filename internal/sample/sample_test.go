package sample

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/extract/dump"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// testAsOf has sub-millisecond digits on purpose: Generate must truncate them so that the
// edges still sit exactly one second from the cutoffs.
var testAsOf = time.Date(2025, 3, 15, 12, 34, 56, 789123456, time.UTC)

var testOpt = Options{Seed: 42, AsOf: testAsOf}

// testOpts are the option sets the data checks run over: the bulk must be clean and the
// planted documents in place for any seed, scale and as-of, the demo's defaults included.
var testOpts = []Options{
	testOpt,
	{Seed: 1},
	{Seed: 7, Scale: 2, AsOf: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
	{Seed: 0xdeadbeef, AsOf: time.Date(2026, 2, 28, 23, 59, 59, 999000000, time.UTC)},
}

// forEachOpt runs check on a sample of each of testOpts.
func forEachOpt(t *testing.T, check func(t *testing.T, s *sampleSet)) {
	for _, opt := range testOpts {
		t.Run(fmt.Sprintf("seed%d_scale%d", opt.Seed, opt.Scale), func(t *testing.T) {
			t.Parallel()
			check(t, newSet(t, opt))
		})
	}
}

// sampleSet indexes one generated sample for the checks below.
type sampleSet struct {
	colls    []Collection
	byNS     map[string]Collection
	planted  map[string]Problem // ns + "/" + id
	asOf     time.Time
	problems []Problem
	err      string // what is wrong with the set itself
}

// sets caches one sampleSet per Options: generating is the slow part of these tests under
// -race, and the checks only read.
var (
	setsMu sync.Mutex
	sets   = map[Options]func() *sampleSet{}
)

func newSet(t testing.TB, opt Options) *sampleSet {
	t.Helper()
	setsMu.Lock()
	once := sets[opt]
	if once == nil {
		once = sync.OnceValue(func() *sampleSet { return buildSet(opt) })
		sets[opt] = once
	}
	setsMu.Unlock()
	s := once()
	if s.err != "" {
		t.Fatal(s.err)
	}
	return s
}

func buildSet(opt Options) *sampleSet {
	colls, problems := generate(opt)
	s := &sampleSet{colls: colls, byNS: map[string]Collection{}, planted: map[string]Problem{}, asOf: opt.normalized().AsOf, problems: problems}
	for _, c := range colls {
		if _, dup := s.byNS[c.Namespace()]; dup {
			s.err = "collection " + c.Namespace() + " returned twice"
		}
		s.byNS[c.Namespace()] = c
	}
	for _, p := range problems {
		key := p.Namespace() + "/" + p.ID
		if _, dup := s.planted[key]; dup {
			s.err = "problem " + key + " listed twice"
		}
		s.planted[key] = p
	}
	return s
}

func (s *sampleSet) coll(t testing.TB, ns string) Collection {
	t.Helper()
	c, ok := s.byNS[ns]
	if !ok {
		t.Fatalf("no collection %s", ns)
	}
	return c
}

func (s *sampleSet) problem(ns string, d bson.Raw) (Problem, bool) {
	p, ok := s.planted[ns+"/"+rawID(d)]
	return p, ok
}

func (s *sampleSet) find(t testing.TB, ns, id string) bson.Raw {
	t.Helper()
	var found bson.Raw
	for _, d := range s.coll(t, ns).Docs {
		if rawID(d) == id {
			if found != nil {
				t.Fatalf("%s: _id %s twice", ns, id)
			}
			found = d
		}
	}
	if found == nil {
		t.Fatalf("%s: no document with _id %s", ns, id)
	}
	return found
}

// lookup follows a dotted path, also through keys that themselves contain dots
// ("metadata.csaf.tracking.id").
func lookup(d bson.Raw, path string) (bson.RawValue, bool) {
	parts := strings.Split(path, ".")
	for n := len(parts); n >= 1; n-- {
		v, err := d.LookupErr(strings.Join(parts[:n], "."))
		if err != nil {
			continue
		}
		if n == len(parts) {
			return v, true
		}
		var sub bson.Raw
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			sub = v.Document()
		case bson.TypeArray:
			sub = bson.Raw(v.Array())
		default:
			continue
		}
		if r, ok := lookup(sub, strings.Join(parts[n:], ".")); ok {
			return r, true
		}
	}
	return bson.RawValue{}, false
}

func str(d bson.Raw, path string) string {
	v, ok := lookup(d, path)
	if !ok {
		return ""
	}
	s, _ := v.StringValueOK()
	return s
}

func tenantOf(d bson.Raw) string {
	if s := str(d, "tenant"); s != "" {
		return s
	}
	return str(d, "tenantId")
}

func date(d bson.Raw, path string) (time.Time, bool) {
	v, ok := lookup(d, path)
	if !ok || v.Type != bson.TypeDateTime {
		return time.Time{}, false
	}
	return v.Time().UTC(), true
}

// refKey is a reference value in canonical form (ObjectId hex or string), "" for null/missing.
func refKey(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeString:
		return v.StringValue()
	}
	return ""
}

// ---------------------------------------------------------------- determinism and coverage

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, b := Generate(testOpt), Generate(testOpt)
	if len(a) != len(b) {
		t.Fatalf("%d vs %d collections", len(a), len(b))
	}
	for i := range a {
		if a[i].Namespace() != b[i].Namespace() || len(a[i].Docs) != len(b[i].Docs) {
			t.Fatalf("collection %d: %s/%d vs %s/%d", i, a[i].Namespace(), len(a[i].Docs), b[i].Namespace(), len(b[i].Docs))
		}
		for j := range a[i].Docs {
			if !bytes.Equal(a[i].Docs[j], b[i].Docs[j]) {
				t.Fatalf("%s document %d differs between two runs", a[i].Namespace(), j)
			}
		}
	}

	other := Generate(Options{Seed: 43, AsOf: testAsOf})
	if bytes.Equal(concatDocs(a), concatDocs(other)) {
		t.Error("seeds 42 and 43 gave the same sample")
	}
	if !bytes.Equal(concatDocs(Generate(Options{})), concatDocs(Generate(Options{Scale: 1, AsOf: DefaultAsOf}))) {
		t.Error("zero Options differ from Scale 1 at DefaultAsOf")
	}
}

func concatDocs(colls []Collection) []byte {
	var b []byte
	for _, c := range colls {
		for _, d := range c.Docs {
			b = append(b, d...)
		}
	}
	return b
}

func TestSizeAndScale(t *testing.T) {
	t.Parallel()
	count := func(colls []Collection) int {
		n := 0
		for _, c := range colls {
			n += len(c.Docs)
		}
		return n
	}
	one, two := count(Generate(testOpt)), count(Generate(Options{Seed: 42, Scale: 2, AsOf: testAsOf}))
	if one < 2000 || one > 8000 {
		t.Errorf("scale 1 has %d documents, want a few thousand", one)
	}
	if two < one*17/10 {
		t.Errorf("scale 2 has %d documents, scale 1 %d: it should nearly double", two, one)
	}
}

// modulesCollections is every collection of ../shared/spec/modules.md under its default
// database name, written out here rather than taken from the package so that a collection
// dropped from layout fails the test.
var modulesCollections = []string{
	"stellaops_authority.authority_users", "stellaops_authority.authority_clients", "stellaops_authority.authority_scopes",
	"stellaops_authority.authority_service_accounts", "stellaops_authority.authority_tokens",
	"stellaops_authority.authority_login_attempts", "stellaops_authority.authority_revocations",
	"stellaops_scheduler.schedules", "stellaops_scheduler.runs", "stellaops_scheduler.graph_jobs",
	"stellaops_scheduler.policy_jobs", "stellaops_scheduler.impact_snapshots", "stellaops_scheduler.locks",
	"concelier.source", "concelier.source_state", "concelier.advisory", "concelier.alias", "concelier.affected",
	"concelier.advisory_raw", "concelier.jobs", "concelier.locks",
	"excititor.vex.raw", "excititor.vex.statements", "excititor.vex.observations", "excititor.vex.linksets",
	"excititor.vex.consensus", "excititor.vex.cache",
}

func TestEveryCollection(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		want := append(slices.Clone(modulesCollections),
			"concelier.fs.files", "concelier.fs.chunks", "excititor.fs.files", "excititor.fs.chunks", Unmapped)
		for _, ns := range want {
			if len(s.coll(t, ns).Docs) == 0 {
				t.Errorf("%s is empty", ns)
			}
		}
		if len(s.colls) != len(want) {
			var got []string
			for _, c := range s.colls {
				got = append(got, c.Namespace())
			}
			t.Errorf("collections %v, want exactly %v", got, want)
		}
		for _, c := range s.colls {
			if strings.HasPrefix(c.Name, "system.") {
				t.Errorf("%s: the sample holds no system collections", c.Namespace())
			}
			ids := map[string]bool{}
			for i, d := range c.Docs {
				if err := d.Validate(); err != nil {
					t.Fatalf("%s document %d: %v", c.Namespace(), i, err)
				}
				id := rawID(d)
				if id == "" || ids[id] {
					t.Errorf("%s document %d: _id %q missing or repeated", c.Namespace(), i, id)
				}
				ids[id] = true
			}
		}
	})
}

// TestShapes spot-checks the source shapes of modules.md: field names and BSON types.
func TestShapes(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		type field struct {
			path  string
			types []bson.Type
		}
		f := func(path string, types ...bson.Type) field { return field{path, types} }
		tStr, oid, tDate, arr, doc, null := bson.TypeString, bson.TypeObjectID, bson.TypeDateTime, bson.TypeArray, bson.TypeEmbeddedDocument, bson.TypeNull
		shapes := map[string][]field{
			"stellaops_authority.authority_users": {f("_id", oid), f("tenant", tStr), f("username", tStr), f("email", tStr), f("displayName", tStr),
				f("passwordHash", tStr, null), f("status", tStr), f("roles", arr), f("mfa.enabled", bson.TypeBoolean), f("attributes", doc),
				f("createdAt", tDate), f("updatedAt", tDate), f("lastLoginAt", tDate, null)},
			"stellaops_authority.authority_tokens": {f("_id", tStr), f("tenant", tStr), f("type", tStr), f("subjectId", oid, null), f("clientId", tStr, null),
				f("scopes", arr), f("status", tStr), f("createdAt", tDate), f("expiresAt", tDate), f("revokedAt", tDate, null), f("payload", doc)},
			"stellaops_authority.authority_clients":     {f("_id", tStr), f("tenant", tStr), f("redirectUris", arr), f("allowedScopes", arr), f("grantTypes", arr), f("enabled", bson.TypeBoolean), f("properties", doc)},
			"stellaops_scheduler.schedules":             {f("_id", tStr), f("tenantId", tStr), f("name", tStr), f("cronExpression", tStr), f("selection", doc), f("onlyIf", doc), f("notify", doc), f("limits", doc), f("deletedAt", tDate, null)},
			"stellaops_scheduler.runs":                  {f("_id", tStr), f("tenantId", tStr), f("scheduleId", tStr, null), f("stats.completed", bson.TypeInt32), f("createdAt", tDate)},
			"stellaops_scheduler.graph_jobs":            {f("_id", tStr), f("tenantId", tStr), f("type", tStr), f("status", tStr), f("payload", doc), f("createdAt", tDate), f("updatedAt", tDate)},
			"stellaops_scheduler.policy_jobs":           {f("policyId", tStr), f("policyVersion", bson.TypeInt32), f("priority", bson.TypeInt32), f("attempts", bson.TypeInt32), f("createdAt", tDate)},
			"stellaops_scheduler.impact_snapshots":      {f("snapshotId", tStr), f("selector", doc), f("images", arr), f("imageCount", bson.TypeInt32), f("generatedAt", tDate)},
			"concelier.advisory":                        {f("_id", oid), f("advisoryKey", tStr), f("sourceName", tStr), f("title", tStr), f("severity", tStr), f("exploitKnown", bson.TypeBoolean), f("publishedAt", tDate), f("modifiedAt", tDate), f("provenance", doc), f("cvssMetrics", arr), f("references", arr), f("credits", arr), f("cwes", arr)},
			"concelier.source_state":                    {f("_id", tStr), f("cursor", doc), f("failCount", bson.TypeInt32), f("updatedAt", tDate)},
			"concelier.advisory_raw":                    {f("_id", oid), f("tenant", tStr), f("source.vendor", tStr), f("upstream.upstream_id", tStr), f("upstream.fetched_at", tDate), f("upstream.received_at", tDate), f("upstream.content_hash", tStr), f("content.format", tStr), f("content.spec_version", tStr), f("identifiers", doc), f("linkset", doc), f("supersedes", oid, null)},
			"excititor.vex.raw":                         {f("_id", tStr), f("digest", tStr), f("tenant", tStr), f("providerId", tStr), f("format", tStr), f("retrievedAt", tDate), f("metadata", doc)},
			"excititor.vex.observations":                {f("observationId", tStr), f("purls", arr), f("cpes", arr), f("anchors", arr), f("confidence", doc), f("createdAt", tDate)},
			"excititor.vex.linksets":                    {f("linksetId", tStr), f("observationIds", arr), f("conflicts", arr)},
			"excititor.vex.consensus":                   {f("vulnerabilityId", tStr), f("productKey", tStr), f("sources", arr), f("calculatedAt", tDate)},
			"stellaops_authority.authority_revocations": {f("category", tStr), f("revokedAt", tDate)},
		}
		for ns, fields := range shapes {
			for _, d := range s.coll(t, ns).Docs {
				if p, ok := s.problem(ns, d); ok && p.Kind != KindEdge && p.Kind != KindQuirk {
					continue
				}
				for _, fl := range fields {
					v, ok := lookup(d, fl.path)
					if !ok {
						if _, planted := s.problem(ns, d); planted && fl.path == "occurredAt" {
							continue
						}
						t.Errorf("%s %s: no %s", ns, rawID(d), fl.path)
						continue
					}
					if !slices.Contains(fl.types, v.Type) {
						t.Errorf("%s %s: %s is %s, want one of %v", ns, rawID(d), fl.path, v.Type, fl.types)
					}
				}
			}
		}
		// baseScore comes as a double, a string and a Decimal128 in the bulk.
		seen := map[bson.Type]bool{}
		for _, d := range s.coll(t, "concelier.advisory").Docs {
			for i := 0; ; i++ {
				v, ok := lookup(d, fmt.Sprintf("cvssMetrics.%d.baseScore", i))
				if !ok {
					break
				}
				seen[v.Type] = true
			}
		}
		for _, ty := range []bson.Type{bson.TypeDouble, bson.TypeString, bson.TypeDecimal128} {
			if !seen[ty] {
				t.Errorf("no cvss baseScore of type %s", ty)
			}
		}
		// Both content forms of vex.raw and advisory_raw occur, and several tenants.
		for ns, paths := range map[string][2]string{"excititor.vex.raw": {"content", "gridFsObjectId"}, "concelier.advisory_raw": {"content.raw", "content.gridFsObjectId"}} {
			var inline, grid int
			for _, d := range s.coll(t, ns).Docs {
				if _, ok := lookup(d, paths[0]); ok {
					inline++
				}
				if _, ok := lookup(d, paths[1]); ok {
					grid++
				}
			}
			if inline < 10 || grid < 5 {
				t.Errorf("%s: %d inline, %d GridFS; want both forms", ns, inline, grid)
			}
		}
		tenants := map[string]bool{}
		for _, d := range s.coll(t, "stellaops_authority.authority_users").Docs {
			tenants[str(d, "tenant")] = true
		}
		if len(tenants) != len(Tenants()) {
			t.Errorf("users span tenants %v, want %v", tenants, Tenants())
		}
	})
}

// ---------------------------------------------------------------- planted problems

func TestPlantedIndependentOfOptions(t *testing.T) {
	t.Parallel()
	want := Planted()
	if len(want) < 25 {
		t.Fatalf("only %d planted documents", len(want))
	}
	for _, opt := range []Options{testOpt, {Seed: 7, Scale: 2, AsOf: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}} {
		_, got := generate(opt)
		if !slices.Equal(got, want) {
			t.Errorf("planted list for %+v differs from Planted()", opt)
		}
	}
	kinds := map[Kind]int{}
	for _, p := range want {
		kinds[p.Kind]++
		if p.What == "" || p.Expect == "" {
			t.Errorf("%+v: What and Expect are required", p)
		}
	}
	for _, k := range []Kind{KindOrphan, KindCrossTenant, KindDuplicate, KindUnmappable, KindEdge, KindQuirk} {
		if kinds[k] == 0 {
			t.Errorf("no planted %s", k)
		}
	}
}

// reference is one reference between collections that a module resolves.
type reference struct {
	child, path       string // path may end in an array; every element is a reference
	parent, parentKey string
	sameTenant        bool
}

var references = []reference{
	{"stellaops_authority.authority_tokens", "subjectId", "stellaops_authority.authority_users", "_id", true},
	{"stellaops_authority.authority_tokens", "clientId", "stellaops_authority.authority_clients", "_id", true},
	{"stellaops_authority.authority_service_accounts", "clientId", "stellaops_authority.authority_clients", "_id", true},
	{"stellaops_scheduler.runs", "scheduleId", "stellaops_scheduler.schedules", "_id", true},
	{"concelier.source_state", "_id", "concelier.source", "name", false},
	{"concelier.advisory", "sourceName", "concelier.source", "name", false},
	{"concelier.alias", "advisoryKey", "concelier.advisory", "advisoryKey", false},
	{"concelier.affected", "advisoryKey", "concelier.advisory", "advisoryKey", false},
	{"concelier.advisory_raw", "content.gridFsObjectId", "concelier.fs.files", "_id", false},
	{"concelier.fs.chunks", "files_id", "concelier.fs.files", "_id", false},
	{"excititor.vex.linksets", "observationIds", "excititor.vex.observations", "_id", true},
	{"excititor.vex.raw", "gridFsObjectId", "excititor.fs.files", "_id", false},
	{"excititor.fs.chunks", "files_id", "excititor.fs.files", "_id", false},
	{"excititor.vex.statements", "documentDigest", "excititor.vex.raw", "_id", true},
	{"excititor.vex.observations", "documentDigest", "excititor.vex.raw", "_id", true},
}

// TestReferences: every reference of the bulk resolves to a loadable parent of its own tenant;
// each planted orphan's does not, each planted cross-tenant one resolves to another tenant.
func TestReferences(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		hits := map[string]bool{}
		for _, ref := range references {
			parents := map[string]string{} // key → tenant
			for _, d := range s.coll(t, ref.parent).Docs {
				if p, ok := s.problem(ref.parent, d); ok && p.Expect == ExpectReject {
					continue // a rejected parent is no parent
				}
				if v, ok := lookup(d, ref.parentKey); ok {
					parents[refKey(v)] = tenantOf(d)
				}
			}
			for _, d := range s.coll(t, ref.child).Docs {
				v, ok := lookup(d, ref.path)
				if !ok || v.Type == bson.TypeNull {
					continue
				}
				var keys []string
				if v.Type == bson.TypeArray {
					vals, _ := v.Array().Values()
					for _, e := range vals {
						keys = append(keys, refKey(e))
					}
				} else {
					keys = []string{refKey(v)}
				}
				p, planted := s.problem(ref.child, d)
				resolved, sameTenant := true, true
				for _, k := range keys {
					pt, found := parents[k]
					resolved = resolved && found
					if found && ref.sameTenant && pt != tenantOf(d) {
						sameTenant = false
					}
				}
				switch {
				case planted && p.Kind == KindOrphan && strings.HasPrefix(p.Field, strings.Split(ref.path, ".")[0]):
					hits[p.Namespace()+"/"+p.ID] = true
					if resolved {
						t.Errorf("planted orphan %s %s: %s resolves", ref.child, p.ID, ref.path)
					}
				case planted && p.Kind == KindCrossTenant && p.Field == ref.path:
					hits[p.Namespace()+"/"+p.ID] = true
					if !resolved || sameTenant {
						t.Errorf("planted cross-tenant %s %s: %s resolved=%v same tenant=%v", ref.child, p.ID, ref.path, resolved, sameTenant)
					}
				case !resolved:
					t.Errorf("%s %s: %s %v does not resolve in %s", ref.child, rawID(d), ref.path, keys, ref.parent)
				case !sameTenant:
					t.Errorf("%s %s: %s %v resolves to another tenant", ref.child, rawID(d), ref.path, keys)
				}
			}
		}
		for _, p := range s.problems {
			if (p.Kind == KindOrphan || p.Kind == KindCrossTenant) && !hits[p.Namespace()+"/"+p.ID] {
				t.Errorf("planted %s %s/%s was not checked by any reference", p.Kind, p.Namespace(), p.ID)
			}
		}
	})
}

// uniqueKeys are the source fields behind the target's unique keys.
var uniqueKeys = []struct {
	ns     string
	fields []string
	only   func(bson.Raw) bool
}{
	{"stellaops_authority.authority_users", []string{"tenant", "username"}, nil},
	{"stellaops_authority.authority_scopes", []string{"name"}, nil},
	{"stellaops_authority.authority_service_accounts", []string{"tenant", "accountId"}, nil},
	{"stellaops_scheduler.schedules", []string{"tenantId", "name"}, func(d bson.Raw) bool { v, _ := lookup(d, "deletedAt"); return v.Type == bson.TypeNull }},
	{"concelier.source", []string{"name"}, nil},
	{"concelier.advisory", []string{"advisoryKey"}, nil},
	{"concelier.alias", []string{"advisoryKey", "scheme", "value"}, nil},
	{"concelier.advisory_raw", []string{"source.vendor", "upstream.upstream_id", "upstream.content_hash", "tenant"}, nil},
	{"excititor.vex.raw", []string{"digest"}, nil},
	{"excititor.vex.observations", []string{"tenant", "observationId"}, nil},
}

// TestDuplicates: the only unique-key collisions are the planted ones, whose listed document
// is the loser (greater _id).
func TestDuplicates(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		hits := map[string]bool{}
		for _, u := range uniqueKeys {
			groups := map[string][]bson.Raw{}
			var order []string
			for _, d := range s.coll(t, u.ns).Docs {
				if u.only != nil && !u.only(d) {
					continue
				}
				var parts []string
				for _, f := range u.fields {
					parts = append(parts, str(d, f))
				}
				k := strings.Join(parts, "\x00")
				if groups[k] == nil {
					order = append(order, k)
				}
				groups[k] = append(groups[k], d)
			}
			for _, k := range order {
				g := groups[k]
				if len(g) == 1 {
					continue
				}
				if len(g) != 2 {
					t.Errorf("%s: %d documents share %q", u.ns, len(g), k)
					continue
				}
				a, b := rawID(g[0]), rawID(g[1])
				lose, win := b, a
				if a > b {
					lose, win = a, b
				}
				p, ok := s.planted[u.ns+"/"+lose]
				if !ok || p.Kind != KindDuplicate || p.Expect != ExpectReject {
					t.Errorf("%s: unplanted duplicate %q (%s, %s)", u.ns, k, a, b)
					continue
				}
				if !strings.Contains(p.What, win) {
					t.Errorf("%s: planted duplicate %s does not name the winner %s", u.ns, lose, win)
				}
				hits[u.ns+"/"+lose] = true
			}
		}
		for _, p := range s.problems {
			if p.Kind == KindDuplicate && !hits[p.Namespace()+"/"+p.ID] {
				t.Errorf("planted duplicate %s/%s collides with nothing", p.Namespace(), p.ID)
			}
		}

		// vex.consensus: several per key, distinct calculatedAt, except the planted tie.
		type key struct{ tenant, vuln, product string }
		at := map[key][]time.Time{}
		for _, d := range s.coll(t, "excititor.vex.consensus").Docs {
			k := key{str(d, "tenant"), str(d, "vulnerabilityId"), str(d, "productKey")}
			ts, _ := date(d, "calculatedAt")
			at[k] = append(at[k], ts)
		}
		multi, ties := 0, 0
		for _, ts := range at {
			if len(ts) > 1 {
				multi++
			}
			slices.SortFunc(ts, time.Time.Compare)
			for i := 1; i < len(ts); i++ {
				if ts[i].Equal(ts[i-1]) {
					ties++
				}
			}
		}
		if multi < 10 || ties != 1 {
			t.Errorf("vex.consensus: %d keys with several documents (want many), %d ties (want the planted one)", multi, ties)
		}
	})
}

// faults are the unmappable values the sample plants; each reports whether d carries it.
// TestUnmappable checks that every planted unmappable document has its fault and no other
// document has any of them.
var faults = map[string]func(d bson.Raw) bool{
	"stellaops_scheduler.graph_jobs/status": func(d bson.Raw) bool {
		return !slices.Contains([]string{"pending", "queued", "running", "completed", "failed", "cancelled"}, str(d, "status")) ||
			!slices.Contains([]string{"build", "overlay"}, str(d, "type"))
	},
	"excititor.vex.statements/status": func(d bson.Raw) bool {
		return !slices.Contains([]string{"affected", "not_affected", "fixed", "under_investigation"}, str(d, "status"))
	},
	"stellaops_authority.authority_revocations/category": func(d bson.Raw) bool {
		return !slices.Contains([]string{"token", "subject", "client", "key"}, str(d, "category"))
	},
	"concelier.advisory/cvssMetrics.0.baseScore": func(d bson.Raw) bool {
		for i := 0; ; i++ {
			v, ok := lookup(d, fmt.Sprintf("cvssMetrics.%d.baseScore", i))
			if !ok {
				return false
			}
			var f float64
			switch v.Type {
			case bson.TypeDouble:
				f = v.Double()
			case bson.TypeString:
				var err error
				if f, err = strconv.ParseFloat(v.StringValue(), 64); err != nil || strings.ContainsAny(v.StringValue(), "nNiI") {
					return true
				}
			case bson.TypeDecimal128:
				var err error
				if f, err = strconv.ParseFloat(v.Decimal128().String(), 64); err != nil {
					return true
				}
			default:
				return true
			}
			if math.IsNaN(f) || f < 0 || f > 10 {
				return true
			}
		}
	},
	"concelier.advisory/references.0.url": func(d bson.Raw) bool {
		for i := 0; ; i++ {
			if _, ok := lookup(d, fmt.Sprintf("references.%d", i)); !ok {
				return false
			}
			if str(d, fmt.Sprintf("references.%d.url", i)) == "" {
				return true
			}
		}
	},
	"excititor.vex.raw/content": func(d bson.Raw) bool {
		v, inline := lookup(d, "content")
		_, grid := lookup(d, "gridFsObjectId")
		if inline == grid || !slices.Contains([]string{"csaf", "cyclonedx", "openvex"}, str(d, "format")) || str(d, "digest") != rawID(d) {
			return true
		}
		if !inline {
			return false
		}
		_, data := v.Binary()
		sum := sha256.Sum256(data)
		return "sha256:"+hex.EncodeToString(sum[:]) != rawID(d)
	},
	"concelier.advisory_raw/content": func(d bson.Raw) bool {
		_, inline := lookup(d, "content.raw")
		_, grid := lookup(d, "content.gridFsObjectId")
		return inline == grid
	},
	"*/nul": func(d bson.Raw) bool { return bytes.Contains(stringsOf(d), []byte{0}) },
	"*/dupkey": func(d bson.Raw) bool {
		return strings.HasPrefix(FerretUnsafe(d), "duplicate key") || hasDuplicateKey(d)
	},
}

// stringsOf concatenates every string value of d.
func stringsOf(d bson.Raw) []byte {
	var out []byte
	elems, _ := d.Elements()
	for _, e := range elems {
		v := e.Value()
		switch v.Type {
		case bson.TypeString:
			out = append(out, v.StringValue()...)
		case bson.TypeEmbeddedDocument:
			out = append(out, stringsOf(v.Document())...)
		case bson.TypeArray:
			out = append(out, stringsOf(bson.Raw(v.Array()))...)
		}
	}
	return out
}

func hasDuplicateKey(d bson.Raw) bool {
	elems, _ := d.Elements()
	seen := map[string]bool{}
	for _, e := range elems {
		if seen[e.Key()] {
			return true
		}
		seen[e.Key()] = true
		switch v := e.Value(); v.Type {
		case bson.TypeEmbeddedDocument:
			if hasDuplicateKey(v.Document()) {
				return true
			}
		}
	}
	return false
}

func TestUnmappable(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		hits := map[string]bool{}
		for name, has := range faults {
			ns, _, _ := strings.Cut(name, "/")
			for _, c := range s.colls {
				if ns != "*" && c.Namespace() != ns {
					continue
				}
				for _, d := range c.Docs {
					if !has(d) {
						continue
					}
					p, ok := s.problem(c.Namespace(), d)
					if !ok || p.Kind != KindUnmappable || p.Expect != ExpectReject {
						t.Errorf("%s %s has fault %s but is not planted as unmappable", c.Namespace(), rawID(d), name)
						continue
					}
					hits[p.Namespace()+"/"+p.ID] = true
				}
			}
		}
		for _, p := range s.problems {
			if p.Kind != KindUnmappable {
				continue
			}
			if !hits[p.Namespace()+"/"+p.ID] {
				t.Errorf("planted unmappable %s/%s (%s) shows none of the faults", p.Namespace(), p.ID, p.What)
			}
			if _, ok := lookup(s.find(t, p.Namespace(), p.ID), p.Field); !ok && !strings.HasSuffix(p.Field, ".url") {
				t.Errorf("planted %s/%s: no field %s", p.Namespace(), p.ID, p.Field)
			}
		}
	})
}

func TestPlantedQuirks(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		for _, p := range s.problems {
			if p.Kind != KindQuirk {
				continue
			}
			d := s.find(t, p.Namespace(), p.ID)
			if _, ok := lookup(d, p.Field); !ok {
				t.Errorf("quirk %s/%s: no field %s", p.Namespace(), p.ID, p.Field)
			}
		}
		// The FerretDB-only oddities are where Planted says.
		for _, want := range []string{"array inside an array", "dotted key", "NaN"} {
			found := false
			for _, p := range s.problems {
				if p.Kind == KindQuirk && strings.Contains(FerretUnsafe(s.find(t, p.Namespace(), p.ID)), want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no planted quirk FerretDB refuses for %q", want)
			}
		}
	})
}

// TestFerretSafeBulk: what a FerretDB-safe load leaves out is the planted documents and the
// advisories with a Decimal128 score, nothing else, so live tests see nearly all of the sample.
func TestFerretSafeBulk(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		for _, c := range s.colls {
			for _, d := range c.Docs {
				why := FerretUnsafe(d)
				if why == "" {
					continue
				}
				if _, planted := s.problem(c.Namespace(), d); planted {
					continue
				}
				if c.Namespace() == "concelier.advisory" && strings.HasPrefix(why, "Decimal128 at cvssMetrics.") {
					continue
				}
				t.Errorf("%s %s: FerretDB refuses it (%s) but it is not planted", c.Namespace(), rawID(d), why)
			}
		}
	})
}

// ---------------------------------------------------------------- tier edges

// keptByTier applies modules.md's Tier B rule of ns to d at asOf; ok is false for a collection
// without one.
func keptByTier(ns string, d bson.Raw, asOf time.Time) (kept, ok bool) {
	if ns == "stellaops_authority.authority_tokens" {
		exp, isDate := date(d, "expiresAt")
		return str(d, "status") == "valid" && isDate && exp.After(asOf), true
	}
	for _, w := range Windows() {
		if w.DB+"."+w.Collection != ns {
			continue
		}
		if w.ActiveKept && !slices.Contains([]string{"completed", "failed", "cancelled"}, str(d, "status")) {
			return true, true
		}
		at, isDate := date(d, w.Field)
		return isDate && !at.Before(w.Cutoff(asOf)), true
	}
	return false, false
}

func TestWindowEdges(t *testing.T) {
	t.Parallel()
	forEachOpt(t, func(t *testing.T, s *sampleSet) {
		if s.asOf.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("as-of %v is not truncated to ms", s.asOf)
		}
		for _, w := range Windows() {
			ns := w.DB + "." + w.Collection
			cut := w.Cutoff(s.asOf)
			var wellIn, wellOut int
			exact := map[time.Duration]bool{}
			for _, d := range s.coll(t, ns).Docs {
				at, ok := date(d, w.Field)
				if !ok {
					continue
				}
				if off := at.Sub(cut); off >= -time.Second && off <= time.Second {
					exact[off] = true
				}
				terminal := slices.Contains([]string{"completed", "failed", "cancelled"}, str(d, "status"))
				switch {
				case at.After(cut.Add(7 * 24 * time.Hour)):
					wellIn++
				case at.Before(cut.Add(-7*24*time.Hour)) && (!w.ActiveKept || terminal):
					wellOut++
				}
			}
			for _, off := range []time.Duration{-time.Second, 0, time.Second} {
				if !exact[off] {
					t.Errorf("%s: no document with %s = cutoff %+v", ns, w.Field, off)
				}
			}
			if wellIn < 5 || wellOut < 5 {
				t.Errorf("%s: %d documents well inside, %d well outside the window; want both", ns, wellIn, wellOut)
			}
		}

		// Tokens: expiring one second before, at and one second after as-of, and bulk on both sides.
		exact := map[time.Duration]bool{}
		var live, dead int
		for _, d := range s.coll(t, "stellaops_authority.authority_tokens").Docs {
			exp, _ := date(d, "expiresAt")
			if off := exp.Sub(s.asOf); str(d, "status") == "valid" && off >= -time.Second && off <= time.Second {
				exact[off] = true
			}
			if kept, _ := keptByTier("stellaops_authority.authority_tokens", d, s.asOf); kept {
				live++
			} else {
				dead++
			}
		}
		if len(exact) != 3 || live < 20 || dead < 20 {
			t.Errorf("tokens: edges %v (want -1s, 0, +1s), %d active, %d not", exact, live, dead)
		}

		// Every planted document's Expect agrees with the tier rule: edges load or skip as
		// listed, and whatever must be rejected is inside its window (else it would be skipped).
		for _, p := range s.problems {
			kept, ok := keptByTier(p.Namespace(), s.find(t, p.Namespace(), p.ID), s.asOf)
			if !ok {
				if p.Kind == KindEdge {
					t.Errorf("edge %s/%s in a collection without a tier rule", p.Namespace(), p.ID)
				}
				continue
			}
			if want := p.Expect != ExpectSkip; kept != want {
				t.Errorf("%s/%s (%s): tier keeps it = %v, but Expect is %s", p.Namespace(), p.ID, p.What, kept, p.Expect)
			}
		}
	})
}

// ---------------------------------------------------------------- dump and live load

func TestWriteDumpReadsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	colls := newSet(t, testOpt).colls
	dir := t.TempDir()
	for _, comp := range []dump.Compression{dump.None, dump.Gzip, dump.Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			// The same directory each time: a rewrite with another compression must leave a
			// readable dump, not two data files per collection.
			if err := WriteDump(ctx, dir, colls, comp); err != nil {
				t.Fatal(err)
			}
			src, err := dump.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close(ctx)
			if w := src.Warnings(); len(w) != 0 {
				t.Errorf("warnings: %v", w)
			}
			dbNames := map[string][]string{}
			for _, c := range colls {
				dbNames[c.DB] = append(dbNames[c.DB], c.Name)
			}
			for db, names := range dbNames {
				got, err := src.Collections(ctx, db)
				slices.Sort(names)
				if err != nil || !slices.Equal(got, names) {
					t.Errorf("%s: collections %v, %v; want %v", db, got, err, names)
				}
			}
			for _, c := range colls {
				ns := pipeline.Namespace{DB: c.DB, Collection: c.Name}
				var got []bson.Raw
				err := src.Scan(ctx, ns, pipeline.Range{}, pipeline.Cursor{}, func(d bson.Raw, _ pipeline.Position) error {
					got = append(got, bytes.Clone(d))
					return nil
				})
				if err != nil {
					t.Fatalf("%s: %v", ns, err)
				}
				if len(got) != len(c.Docs) {
					t.Fatalf("%s: read %d documents, wrote %d", ns, len(got), len(c.Docs))
				}
				for i := range got {
					if !bytes.Equal(got[i], c.Docs[i]) {
						t.Fatalf("%s document %d differs after the round trip", ns, i)
					}
				}
				meta, err := src.Metadata(ctx, ns)
				if err != nil {
					t.Fatalf("%s metadata: %v", ns, err)
				}
				var m struct {
					CollectionName string            `json:"collectionName"`
					Indexes        []json.RawMessage `json:"indexes"`
				}
				if err := json.Unmarshal(meta, &m); err != nil || m.CollectionName != c.Name || len(m.Indexes) == 0 {
					t.Errorf("%s metadata %s: %v", ns, meta, err)
				}
			}
		})
	}
	// Exactly one data and one metadata file per collection remain.
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2*len(colls) {
		t.Errorf("%d files in the dump, want %d", len(files), 2*len(colls))
	}
}

func TestFerretUnsafe(t *testing.T) {
	t.Parallel()
	dec, _ := bson.ParseDecimal128("1.5")
	for _, tc := range []struct {
		doc  bson.D
		want string
	}{
		{bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: bson.A{bson.D{{Key: "c", Value: 1}}}}}, ""},
		{bson.D{{Key: "a", Value: dec}}, "Decimal128 at a"},
		{bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: math.Inf(1)}}}}, "NaN or infinity at a.b"},
		{bson.D{{Key: "a", Value: bson.A{"ok", "n\x00l"}}}, "NUL in string at a.1"},
		{bson.D{{Key: "a", Value: 1}, {Key: "a", Value: 2}}, "duplicate key a"},
		{bson.D{{Key: "m", Value: bson.D{{Key: "x.y", Value: 1}}}}, "dotted key m.x.y"},
		{bson.D{{Key: "$set", Value: 1}}, "$-prefixed key $set"},
		{bson.D{{Key: "a", Value: bson.A{bson.A{1}}}}, "array inside an array at a.0"},
		{bson.D{{Key: "a", Value: bson.MinKey{}}}, "min key at a"},
	} {
		raw, err := bson.Marshal(tc.doc)
		if err != nil {
			t.Fatal(err)
		}
		if got := FerretUnsafe(raw); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.doc, got, tc.want)
		}
	}
}

// TestLoadFerretDB loads the sample into the shared FerretDB (make test), each module
// database under a test database name, twice (Drop makes the second load start over).
func TestLoadFerretDB(t *testing.T) {
	t.Parallel()
	uri := ferrettest.URI(t)
	ctx := t.Context()
	colls := Generate(testOpt)
	rename := map[string]string{}
	for _, c := range colls {
		if rename[c.DB] == "" {
			rename[c.DB] = ferrettest.Database(t)
		}
	}
	for i := range colls {
		colls[i].DB = rename[colls[i].DB]
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()

	for round := range 2 {
		res, err := Load(ctx, client, colls, LoadOptions{FerretSafe: true, Drop: true, BatchSize: 100})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		left := map[string]int{}
		for _, s := range res.Skipped {
			left[s.DB+"."+s.Collection]++
			if s.ID == "" || s.Why == "" {
				t.Errorf("skipped entry without id or reason: %+v", s)
			}
		}
		total := 0
		for _, c := range colls {
			total += len(c.Docs)
			n, err := client.Database(c.DB).Collection(c.Name).CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatalf("count %s: %v", c.Namespace(), err)
			}
			if want := len(c.Docs) - left[c.Namespace()]; int(n) != want {
				t.Errorf("round %d: %s holds %d documents, want %d", round, c.Namespace(), n, want)
			}
		}
		if res.Inserted+len(res.Skipped) != total {
			t.Errorf("round %d: inserted %d + left out %d != %d", round, res.Inserted, len(res.Skipped), total)
		}
		// Decimal128 scores, the NUL, the duplicate key, NaN, the dotted key and the nested
		// array are all left out; the bulk is not.
		if len(res.Skipped) < 6 || len(res.Skipped) > total/10 {
			t.Errorf("round %d: %d documents left out", round, len(res.Skipped))
		}
	}
}
