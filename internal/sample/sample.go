// Package sample generates realistic StellaOps MongoDB data for the four modules of
// ../shared/spec/modules.md: every collection with its default database and collection name,
// the documents in the source shapes that spec describes, the GridFS buckets that advisory_raw
// and vex.raw point into, and one collection that no module maps. It feeds `make demo`
// (cmd/samplegen), the dump and live-source tests, and the module tests.
//
// # Determinism
//
// The same Options give byte-identical documents in the same order: randomness comes from
// math/rand/v2 PCG streams seeded from Options.Seed and the collection's name (so adding
// documents to one collection does not shift any other), ObjectIds are built from a
// document's own date, a per-collection tag and a counter, and no map is ever iterated to
// produce output.
//
// # What is planted
//
// Besides the bulk data, which is clean (every reference resolves within its tenant, every
// unique key is unique, every value maps), a fixed set of documents is planted: orphans,
// duplicates, unmappable values, documents exactly at the tier window cutoffs, and documents
// that look odd but must load. Planted lists them. Their ids do not depend on Options (they
// derive from fixed labels), so a test can name them; their dates follow Options.AsOf so that
// the window edges sit where Planted says.
//
// # Size
//
// Scale 1 is a few thousand documents in all; most per-tenant counts grow linearly with
// Scale, fixed reference data (scopes, sources, locks) does not. Everything is held in memory.
package sample

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stellaops/convert/pipeline/extract/dump"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultAsOf is the as-of used when Options.AsOf is zero: a fixed date, so that the bundled
// demo and its summary are the same on every machine. Pass the same time to `convert --as-of`.
var DefaultAsOf = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Options selects what Generate produces.
type Options struct {
	// Seed selects the random stream; any value is valid, 0 included.
	Seed uint64
	// Scale multiplies the per-tenant document counts; 1 (also for 0 or less) is demo size,
	// a few thousand documents in all.
	Scale int
	// AsOf is the instant the dates are spread around, the as-of a conversion of the sample
	// should use. Zero means DefaultAsOf. It is truncated to milliseconds, BSON's precision,
	// so that documents can sit exactly one second either side of a window's cutoff.
	AsOf time.Time
}

func (o Options) normalized() Options {
	if o.Scale < 1 {
		o.Scale = 1
	}
	if o.AsOf.IsZero() {
		o.AsOf = DefaultAsOf
	}
	o.AsOf = o.AsOf.UTC().Truncate(time.Millisecond)
	return o
}

// Collection is one source collection and its documents in insertion (dump file) order.
type Collection struct {
	DB, Name string
	Docs     []bson.Raw
}

// Namespace is "db.collection".
func (c Collection) Namespace() string { return c.DB + "." + c.Name }

// Default database names (modules.md).
const (
	AuthorityDB = "stellaops_authority"
	SchedulerDB = "stellaops_scheduler"
	ConcelierDB = "concelier"
	ExcititorDB = "excititor"
)

// layout is every collection Generate returns, in output order: the modules' collections as
// modules.md lists them, each module's GridFS bucket after its collections, and the one
// collection no module maps.
var layout = []struct{ db, name string }{
	{AuthorityDB, "authority_users"},
	{AuthorityDB, "authority_clients"},
	{AuthorityDB, "authority_scopes"},
	{AuthorityDB, "authority_service_accounts"},
	{AuthorityDB, "authority_tokens"},
	{AuthorityDB, "authority_login_attempts"},
	{AuthorityDB, "authority_revocations"},
	{SchedulerDB, "schedules"},
	{SchedulerDB, "runs"},
	{SchedulerDB, "graph_jobs"},
	{SchedulerDB, "policy_jobs"},
	{SchedulerDB, "impact_snapshots"},
	{SchedulerDB, "locks"},
	{ConcelierDB, "source"},
	{ConcelierDB, "source_state"},
	{ConcelierDB, "advisory"},
	{ConcelierDB, "alias"},
	{ConcelierDB, "affected"},
	{ConcelierDB, "advisory_raw"},
	{ConcelierDB, "jobs"},
	{ConcelierDB, "locks"},
	{ConcelierDB, "fs.files"},
	{ConcelierDB, "fs.chunks"},
	{ConcelierDB, "unmapped_notes"},
	{ExcititorDB, "vex.raw"},
	{ExcititorDB, "vex.statements"},
	{ExcititorDB, "vex.observations"},
	{ExcititorDB, "vex.linksets"},
	{ExcititorDB, "vex.consensus"},
	{ExcititorDB, "vex.cache"},
	{ExcititorDB, "fs.files"},
	{ExcititorDB, "fs.chunks"},
}

// Unmapped is the one generated collection that no module maps; plan and the report must
// list it (cli.md), a module run must not touch it.
const Unmapped = ConcelierDB + ".unmapped_notes"

// Tenants are the tenant ids the sample uses, in the order they are generated.
func Tenants() []string { return slices.Clone(tenants) }

var tenants = []string{"default", "urn:tenant:acme", "urn:tenant:globex", "urn:tenant:initech"}

// Window is a Tier B time window of modules.md: documents whose Field is at or after
// as-of − Days×24h are kept. Where ActiveKept is set, a document whose status is not
// terminal (completed, failed, cancelled) is kept whatever its date.
type Window struct {
	DB, Collection, Field string
	Days                  int
	ActiveKept            bool
}

// Cutoff is the window's earliest kept instant for the as-of.
func (w Window) Cutoff(asOf time.Time) time.Time {
	return asOf.Add(-time.Duration(w.Days) * 24 * time.Hour)
}

// Windows lists the Tier B time windows the sample plants edge documents for. The tokens'
// active-only rule (status "valid" and expiresAt > as-of) is no window; its edges are planted
// too (see Planted).
func Windows() []Window { return slices.Clone(windows) }

var windows = []Window{
	{DB: AuthorityDB, Collection: "authority_login_attempts", Field: "occurredAt", Days: 90},
	{DB: SchedulerDB, Collection: "runs", Field: "createdAt", Days: 180},
	{DB: SchedulerDB, Collection: "graph_jobs", Field: "createdAt", Days: 30, ActiveKept: true},
	{DB: SchedulerDB, Collection: "policy_jobs", Field: "createdAt", Days: 30, ActiveKept: true},
	{DB: SchedulerDB, Collection: "impact_snapshots", Field: "generatedAt", Days: 90},
	{DB: ExcititorDB, Collection: "vex.raw", Field: "retrievedAt", Days: 90},
}

// Kind says why a document was planted.
type Kind string

const (
	KindOrphan      Kind = "orphan"       // a reference to a parent that does not exist
	KindCrossTenant Kind = "cross-tenant" // a reference to a parent of another tenant
	KindDuplicate   Kind = "duplicate"    // a unique key the source never enforced, lost by this document
	KindUnmappable  Kind = "unmappable"   // a value the target refuses
	KindEdge        Kind = "edge"         // at a tier boundary: exactly at, or one second either side of, a cutoff
	KindQuirk       Kind = "quirk"        // odd but valid: counted, superseded or tagged, never rejected
)

// Outcome is what a module conversion (modules.md) at the sample's as-of must do with a
// planted document. The generic JSONB mode differs: it rejects only what jsonb cannot hold
// (the NUL and the duplicate key) and skips nothing.
type Outcome string

const (
	ExpectReject Outcome = "reject"
	ExpectSkip   Outcome = "skip"
	ExpectLoad   Outcome = "load"
)

// Problem is one planted document.
type Problem struct {
	DB, Collection string
	// ID is the document's canonical _id: 24 lowercase hex for an ObjectId, else the string.
	ID     string
	Kind   Kind
	Expect Outcome
	// Field is the dotted path of the offending field ("" when the whole document is meant);
	// array positions are numbers, as in "cvssMetrics.0.baseScore".
	Field string
	What  string
}

// Namespace is "db.collection".
func (p Problem) Namespace() string { return p.DB + "." + p.Collection }

// Generate returns every collection of the sample in a fixed order (modules.md's order per
// module, GridFS buckets after their module, the unmapped collection last of concelier).
// Collections that would be empty are still returned.
func Generate(opt Options) []Collection {
	colls, _ := generate(opt)
	return colls
}

// Planted lists the planted documents in generation order. It does not depend on Options: the
// ids are fixed, and the dates Generate gives them follow its AsOf so that every Expect holds.
func Planted() []Problem {
	_, p := generate(Options{})
	return p
}

func generate(opt Options) ([]Collection, []Problem) {
	opt = opt.normalized()
	g := &gen{opt: opt, asOf: opt.AsOf, byNS: make(map[string]*Collection, len(layout))}
	for _, l := range layout {
		c := &Collection{DB: l.db, Name: l.name}
		g.colls = append(g.colls, c)
		g.byNS[c.Namespace()] = c
	}
	g.authority()
	g.scheduler()
	g.concelier()
	g.excititor()
	out := make([]Collection, len(g.colls))
	for i, c := range g.colls {
		out[i] = *c
	}
	return out, g.problems
}

// gen holds the state of one Generate call. The maps are lookups only; output order comes
// from slices.
type gen struct {
	opt      Options
	asOf     time.Time
	colls    []*Collection
	byNS     map[string]*Collection
	problems []Problem

	// authority, per tenant index: what the tokens, attempts and accounts reference.
	users   [][]bson.ObjectID
	names   [][]string // usernames, parallel to users
	clients [][]string
}

func (g *gen) c(db, name string) *Collection {
	c := g.byNS[db+"."+name]
	if c == nil {
		panic("sample: collection " + db + "." + name + " missing from layout")
	}
	return c
}

// put marshals d and appends it to c. A marshal error is a bug in this package (the values
// are all plain BSON types), hence the panic, which never crosses the package: Generate's
// documents are built only here.
func (g *gen) put(c *Collection, d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("sample: %s: marshal: %v", c.Namespace(), err))
	}
	c.Docs = append(c.Docs, b)
	return b
}

func (g *gen) plant(c *Collection, id any, kind Kind, expect Outcome, field, what string) {
	g.problems = append(g.problems, Problem{DB: c.DB, Collection: c.Name, ID: canonicalID(id), Kind: kind, Expect: expect, Field: field, What: what})
}

func canonicalID(id any) string {
	switch v := id.(type) {
	case bson.ObjectID:
		return v.Hex()
	case string:
		return v
	}
	panic(fmt.Sprintf("sample: unexpected _id type %T", id))
}

// n scales a per-tenant (or per-module) count.
func (g *gen) n(base int) int { return base * g.opt.Scale }

// rng returns the random stream of one collection (or any other label): seeded from the seed
// and the label, so streams are independent of each other and of the order they are used in.
func (g *gen) rng(label string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(label))
	return rand.New(rand.NewPCG(g.opt.Seed, h.Sum64()))
}

// ago is as-of minus a uniformly random time between lo and hi days, at millisecond
// precision. The random milliseconds keep bulk documents off the exact cutoffs, which belong
// to the planted edges.
func (g *gen) ago(r *rand.Rand, lo, hi float64) time.Time {
	ms := int64((lo + r.Float64()*(hi-lo)) * 24 * 3600 * 1000)
	return g.asOf.Add(-time.Duration(ms) * time.Millisecond)
}

func dt(t time.Time) bson.DateTime { return bson.NewDateTimeFromTime(t) }

// oids makes ObjectIds the way a server's driver does: the document's creation second, five
// bytes naming the "process" (here the collection and seed), a counter. Unique within a
// collection for up to 2^24 documents.
type oids struct {
	proc [5]byte
	n    uint32
}

func (g *gen) oids(label string) *oids {
	var o oids
	s := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("stellaops-sample/oid/"+label+"/"), g.opt.Seed))
	copy(o.proc[:], s[:])
	return &o
}

func (o *oids) at(t time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(t.Unix()))
	copy(id[4:9], o.proc[:])
	o.n++
	id[9], id[10], id[11] = byte(o.n>>16), byte(o.n>>8), byte(o.n)
	return id
}

// fixedOID is the ObjectId of a planted document: independent of Options so that Planted can
// name it. The timestamp part is a fixed plausible second (2023-11-14); the rest hashes label.
func fixedOID(label string) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], 0x6553f100)
	s := sha256.Sum256([]byte("stellaops-sample/fixed/" + label))
	copy(id[4:], s[:8])
	return id
}

// orderedOIDs returns two planted ids with the smaller first, for duplicate pairs: the
// smallest _id wins a collision (modules.md), and the planted loser must be the second.
func orderedOIDs(labelA, labelB string) (win, lose bson.ObjectID) {
	a, b := fixedOID(labelA), fixedOID(labelB)
	if strings.Compare(a.Hex(), b.Hex()) > 0 {
		a, b = b, a
	}
	return a, b
}

func fixedHex(label string, n int) string {
	s := sha256.Sum256([]byte("stellaops-sample/hex/" + label))
	return hex.EncodeToString(s[:])[:n]
}

func randHex(r *rand.Rand, n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)[:n]
}

func randB64(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

// ulid is a ULID-shaped id (48-bit milliseconds, 80 random bits, Crockford base32) as the
// scheduler's string ids are.
func ulid(r *rand.Rand, t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(t.UnixMilli())<<16)
	for i := 6; i < 16; i++ {
		b[i] = byte(r.Uint32())
	}
	// 128 bits → 26 base32 digits, the first holding the top 3 bits.
	hi, lo := binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16])
	out := make([]byte, 26)
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// choose returns k distinct elements of xs in xs's order.
func choose[T any](r *rand.Rand, xs []T, k int) []T {
	k = min(k, len(xs))
	idx := r.Perm(len(xs))[:k]
	slices.Sort(idx)
	out := make([]T, k)
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

func tenantShort(t string) string {
	if s, ok := strings.CutPrefix(t, "urn:tenant:"); ok {
		return s
	}
	return t
}

func tenantDomain(t string) string {
	if t == "default" {
		return "stellaops.local"
	}
	return tenantShort(t) + ".example"
}

// nullable returns v, or nil (BSON null) with probability p.
func nullable(r *rand.Rand, p float64, v any) any {
	if chance(r, p) {
		return nil
	}
	return v
}

var (
	firstNames = []string{"ada", "alan", "grace", "linus", "margaret", "dennis", "barbara", "ken", "radia", "edsger",
		"frances", "john", "katherine", "tim", "guido", "bjarne", "anita", "donald", "hedy", "leslie",
		"shafi", "vint", "whitfield", "adele", "niklaus", "sophie", "yukihiro", "rob", "joan", "ivan"}
	lastNames = []string{"lovelace", "turing", "hopper", "torvalds", "hamilton", "ritchie", "liskov", "thompson", "perlman", "dijkstra",
		"allen", "mccarthy", "johnson", "berners-lee", "vanrossum", "stroustrup", "borg", "knuth", "lamarr", "lamport",
		"goldwasser", "cerf", "diffie", "goldberg", "wirth", "wilson", "matsumoto", "pike", "clarke", "sutherland"}
	roleNames   = []string{"admin", "operator", "viewer", "auditor", "policy-author", "security-analyst", "release-manager"}
	departments = []string{"platform", "appsec", "sre", "compliance", "release", "research"}
	userAgents  = []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"stella-cli/2.3.1 (linux; amd64)",
		"StellaOps.Console/1.8.0",
		"curl/8.5.0",
	}
	scopeDefs = []struct{ name, desc, res string }{
		{"advisory:read", "Read normalized advisories", "concelier"},
		{"advisory:ingest", "Submit raw advisory documents", "concelier"},
		{"vex:read", "Read VEX statements and consensus", "excititor"},
		{"vex:ingest", "Submit raw VEX documents", "excititor"},
		{"scheduler:read", "Read schedules and runs", "scheduler"},
		{"scheduler:operate", "Create, pause and trigger schedules", "scheduler"},
		{"policy:read", "Read policies", "policy"},
		{"policy:write", "Author policies", "policy"},
		{"policy:run", "Run policy evaluations", "policy,scheduler"},
		{"findings:read", "Read findings", "findings"},
		{"graph:read", "Read the SBOM graph", "graph"},
		{"graph:write", "Build and overlay the SBOM graph", "graph,scheduler"},
		{"authority:users.manage", "Manage users", "authority"},
		{"authority:clients.manage", "Manage OAuth clients", "authority"},
		{"signer:sign", "Request DSSE signatures", "signer"},
		{"attestor:write", "Submit attestations to the transparency log", "attestor"},
	}
	clientBases = []struct{ name, typ string }{
		{"concelier", "confidential"}, {"excititor", "confidential"}, {"scheduler-worker", "confidential"},
		{"cli", "public"}, {"console", "public"},
	}
)

func scopeNames() []string {
	out := make([]string, len(scopeDefs))
	for i, s := range scopeDefs {
		out[i] = s.name
	}
	return out
}

func argon2Hash(r *rand.Rand) string {
	return "$argon2id$v=19$m=19456,t=2,p=1$" + randB64(r, 16) + "$" + randB64(r, 32)
}

func ipAddr(r *rand.Rand) string {
	switch r.IntN(3) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
	case 1:
		return fmt.Sprintf("192.0.2.%d", 1+r.IntN(254))
	}
	return fmt.Sprintf("2001:db8:%x::%x", r.IntN(65536), 1+r.IntN(65535))
}

// ---------------------------------------------------------------- authority

func (g *gen) authority() {
	g.scopes()
	g.clientsColl()
	g.usersColl()
	g.serviceAccounts()
	g.tokens()
	g.loginAttempts()
	g.revocations()
}

func (g *gen) scopes() {
	c := g.c(AuthorityDB, "authority_scopes")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for _, s := range scopeDefs {
		at := g.ago(r, 700, 1000)
		g.put(c, bson.D{
			{Key: "_id", Value: ids.at(at)},
			{Key: "name", Value: s.name},
			{Key: "description", Value: s.desc},
			{Key: "resources", Value: strings.Split(s.res, ",")},
			{Key: "createdAt", Value: dt(at)},
		})
	}
}

func (g *gen) clientsColl() {
	c := g.c(AuthorityDB, "authority_clients")
	r := g.rng(c.Namespace())
	scopes := scopeNames()
	g.clients = make([][]string, len(tenants))
	for ti, t := range tenants {
		short := tenantShort(t)
		for i := range g.n(len(clientBases)) {
			base := clientBases[i%len(clientBases)]
			id := short + "-" + base.name
			if i >= len(clientBases) {
				id = fmt.Sprintf("%s-svc-%02d", short, i-len(clientBases)+1)
				base.typ = "confidential"
			}
			created := g.ago(r, 200, 900)
			var secret any
			grants := []string{"client_credentials"}
			var redirects []string
			if base.typ == "public" {
				grants = []string{"authorization_code", "refresh_token"}
				if base.name == "cli" {
					grants = append(grants, "urn:ietf:params:oauth:grant-type:device_code")
				}
				redirects = []string{"https://console." + tenantDomain(t) + "/auth/callback", "http://127.0.0.1:8765/callback"}
			} else {
				secret = argon2Hash(r)
				redirects = []string{}
			}
			g.put(c, bson.D{
				{Key: "_id", Value: id},
				{Key: "clientId", Value: id},
				{Key: "tenant", Value: t},
				{Key: "displayName", Value: strings.ToUpper(short[:1]) + short[1:] + " " + strings.ReplaceAll(strings.TrimPrefix(id, short+"-"), "-", " ")},
				{Key: "clientType", Value: base.typ},
				{Key: "secretHash", Value: secret},
				{Key: "redirectUris", Value: redirects},
				{Key: "allowedScopes", Value: choose(r, scopes, 2+r.IntN(5))},
				{Key: "grantTypes", Value: grants},
				{Key: "enabled", Value: !chance(r, 0.08)},
				{Key: "createdAt", Value: dt(created)},
				{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(100*24)) * time.Hour))},
				{Key: "properties", Value: bson.D{
					{Key: "tenant", Value: t},
					{Key: "senderConstraint", Value: pick(r, []string{"dpop", "mtls", "none"})},
					{Key: "audiences", Value: []string{"api://" + base.name}},
				}},
			})
			g.clients[ti] = append(g.clients[ti], id)
		}
	}
}

func (g *gen) userDoc(r *rand.Rand, id bson.ObjectID, t, username, display string, roles []string, created time.Time) bson.D {
	var last any
	if !chance(r, 0.15) {
		last = dt(g.ago(r, 0, 60))
	}
	var pw any = argon2Hash(r)
	idp := "local"
	if chance(r, 0.3) {
		pw, idp = nil, pick(r, []string{"ldap", "oidc:okta", "saml:adfs"})
	}
	status := "active"
	switch x := r.Float64(); {
	case x < 0.07:
		status = "disabled"
	case x < 0.10:
		status = "locked"
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "username", Value: username},
		{Key: "email", Value: username + "@" + tenantDomain(t)},
		{Key: "displayName", Value: display},
		{Key: "passwordHash", Value: pw},
		{Key: "status", Value: status},
		{Key: "roles", Value: roles},
		{Key: "mfa", Value: bson.D{{Key: "enabled", Value: chance(r, 0.6)}, {Key: "methods", Value: []string{"totp"}}}},
		{Key: "attributes", Value: bson.D{
			{Key: "department", Value: pick(r, departments)},
			{Key: "locale", Value: pick(r, []string{"en-US", "en-GB", "de-DE", "fr-FR", "ja-JP"})},
			{Key: "idp", Value: idp},
		}},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(200*24)) * time.Hour))},
		{Key: "lastLoginAt", Value: last},
	}
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func (g *gen) usersColl() {
	c := g.c(AuthorityDB, "authority_users")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	g.users = make([][]bson.ObjectID, len(tenants))
	g.names = make([][]string, len(tenants))
	for ti, t := range tenants {
		seen := map[string]bool{"jdoe": true, "rolf.repeat": true} // planted names below
		for range g.n(50) {
			f, l := pick(r, firstNames), pick(r, lastNames)
			name := f + "." + l
			for i := 2; seen[name]; i++ {
				name = fmt.Sprintf("%s.%s%d", f, l, i)
			}
			seen[name] = true
			created := g.ago(r, 30, 1100)
			id := ids.at(created)
			g.put(c, g.userDoc(r, id, t, name, title(f)+" "+title(l), choose(r, roleNames, 1+r.IntN(3)), created))
			g.users[ti] = append(g.users[ti], id)
			g.names[ti] = append(g.names[ti], name)
		}
	}

	// Two users with one tenant+username: the source never had a unique index on it.
	win, lose := orderedOIDs("authority_users/dup-a", "authority_users/dup-b")
	for _, id := range []bson.ObjectID{win, lose} {
		g.put(c, g.userDoc(r, id, "urn:tenant:acme", "jdoe", "John Doe", []string{"viewer"}, g.asOf.AddDate(-1, 0, 0)))
	}
	g.plant(c, lose, KindDuplicate, ExpectReject, "username",
		"same tenant+username (urn:tenant:acme, jdoe) as "+win.Hex()+", which has the smaller _id and wins")

	// A role listed twice: one user_roles row, the repeat counted.
	rep := fixedOID("authority_users/repeated-role")
	g.put(c, g.userDoc(r, rep, "default", "rolf.repeat", "Rolf Repeat", []string{"operator", "auditor", "operator"}, g.asOf.AddDate(0, -8, 0)))
	g.plant(c, rep, KindQuirk, ExpectLoad, "roles", `role "operator" listed twice: one user_roles row, the repeat counted`)
}

func (g *gen) serviceAccounts() {
	c := g.c(AuthorityDB, "authority_service_accounts")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	scopes := scopeNames()
	account := func(id bson.ObjectID, t, acct string, client any, created time.Time) bson.D {
		return bson.D{
			{Key: "_id", Value: id},
			{Key: "tenant", Value: t},
			{Key: "accountId", Value: acct},
			{Key: "displayName", Value: title(strings.ReplaceAll(strings.TrimPrefix(acct, "svc-"), "-", " ")) + " automation"},
			{Key: "clientId", Value: client},
			{Key: "scopes", Value: choose(r, scopes, 1+r.IntN(4))},
			{Key: "enabled", Value: !chance(r, 0.1)},
			{Key: "createdAt", Value: dt(created)},
			{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(90*24)) * time.Hour))},
		}
	}
	bases := []string{"ci-pipeline", "registry-scanner", "policy-bot"}
	for ti, t := range tenants {
		for i := range g.n(len(bases)) {
			acct := "svc-" + bases[i%len(bases)]
			if i >= len(bases) {
				acct = fmt.Sprintf("%s-%02d", acct, i/len(bases)+1)
			}
			created := g.ago(r, 20, 700)
			g.put(c, account(ids.at(created), t, acct, nullable(r, 0.25, pick(r, g.clients[ti])), created))
		}
	}
	// globex's account bound to an acme client.
	x := fixedOID("authority_service_accounts/cross-tenant")
	g.put(c, account(x, "urn:tenant:globex", "svc-borrowed-client", g.clients[1][0], g.asOf.AddDate(0, -3, 0)))
	g.plant(c, x, KindCrossTenant, ExpectReject, "clientId",
		"tenant urn:tenant:globex, clientId "+g.clients[1][0]+" belongs to urn:tenant:acme")
}

func (g *gen) tokenDoc(r *rand.Rand, id, t string, typ string, subject any, client string, status string, created, expires time.Time, revoked any) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "type", Value: typ},
		{Key: "subjectId", Value: subject},
		{Key: "clientId", Value: client},
		{Key: "scopes", Value: choose(r, scopeNames(), 1+r.IntN(4))},
		{Key: "status", Value: status},
		{Key: "createdAt", Value: dt(created)},
		{Key: "expiresAt", Value: dt(expires)},
		{Key: "revokedAt", Value: revoked},
		{Key: "payload", Value: bson.D{
			{Key: "amr", Value: pick(r, [][]string{{"pwd"}, {"pwd", "mfa"}, {"client_secret"}, {"private_key_jwt"}})},
			{Key: "aud", Value: []string{"api://" + pick(r, []string{"concelier", "excititor", "scheduler", "policy"})}},
			{Key: "ip", Value: ipAddr(r)},
			{Key: "cnf", Value: bson.D{{Key: "jkt", Value: randB64(r, 32)}}},
		}},
	}
}

func (g *gen) tokens() {
	c := g.c(AuthorityDB, "authority_tokens")
	r := g.rng(c.Namespace())
	for ti, t := range tenants {
		for range g.n(80) {
			var subject any
			typ := pick(r, []string{"access_token", "access_token", "refresh_token", "authorization_code", "device_code"})
			if chance(r, 0.7) {
				subject = pick(r, g.users[ti])
			} else {
				typ = "access_token" // client_credentials: no subject
			}
			lifetime := map[string]time.Duration{
				"access_token": time.Hour, "refresh_token": 30 * 24 * time.Hour,
				"authorization_code": 5 * time.Minute, "device_code": 15 * time.Minute,
			}[typ]
			// Half the tokens were issued within their lifetime before as-of (still live), the
			// rest long ago (expired by time whatever their status says).
			var created time.Time
			if chance(r, 0.5) {
				created = g.asOf.Add(-time.Duration(r.Int64N(int64(lifetime/time.Millisecond))) * time.Millisecond)
			} else {
				created = g.ago(r, 31, 200)
			}
			status, revoked := "valid", any(nil)
			switch x := r.Float64(); {
			case x < 0.2:
				status = "revoked"
				revoked = dt(created.Add(time.Duration(r.Int64N(int64(lifetime/time.Millisecond))) * time.Millisecond))
			case x < 0.3:
				status = "expired"
			}
			g.put(c, g.tokenDoc(r, randHex(r, 32), t, typ, subject, pick(r, g.clients[ti]), status, created, created.Add(lifetime), revoked))
		}
	}

	// Active-only edges: kept only while expiresAt > as-of.
	for _, e := range []struct {
		label  string
		off    time.Duration
		expect Outcome
		what   string
	}{
		{"expires-before", -time.Second, ExpectSkip, "valid, expiresAt = as-of - 1s: not active"},
		{"expires-at", 0, ExpectSkip, "valid, expiresAt = as-of exactly: not active (expiresAt > as-of is required)"},
		{"expires-after", time.Second, ExpectLoad, "valid, expiresAt = as-of + 1s: active"},
	} {
		id := fixedHex("authority_tokens/"+e.label, 32)
		exp := g.asOf.Add(e.off)
		g.put(c, g.tokenDoc(r, id, "default", "access_token", g.users[0][0], g.clients[0][0], "valid", exp.Add(-time.Hour), exp, nil))
		g.plant(c, id, KindEdge, e.expect, "expiresAt", e.what)
	}

	orphan := fixedHex("authority_tokens/orphan-subject", 32)
	ghost := fixedOID("authority_users/never-existed")
	g.put(c, g.tokenDoc(r, orphan, "default", "refresh_token", ghost, g.clients[0][0], "valid", g.asOf.Add(-24*time.Hour), g.asOf.Add(29*24*time.Hour), nil))
	g.plant(c, orphan, KindOrphan, ExpectReject, "subjectId", "active token whose subjectId "+ghost.Hex()+" names no user")
}

func (g *gen) loginAttempt(r *rand.Rand, id any, t string, subject any, username string, at any) bson.D {
	ok := chance(r, 0.7)
	var reason any
	if !ok {
		reason = pick(r, []string{"invalid_password", "locked_out", "mfa_required", "unknown_user", "disabled"})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "subjectId", Value: subject},
		{Key: "username", Value: username},
		{Key: "successful", Value: ok},
		{Key: "reason", Value: reason},
		{Key: "remoteAddress", Value: ipAddr(r)},
		{Key: "userAgent", Value: pick(r, userAgents)},
		{Key: "occurredAt", Value: at},
	}
}

func (g *gen) loginAttempts() {
	c := g.c(AuthorityDB, "authority_login_attempts")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for ti, t := range tenants {
		for range g.n(100) {
			at := g.ago(r, 0, 200)
			var subject any
			name := "admin"
			if chance(r, 0.85) {
				i := r.IntN(len(g.users[ti]))
				subject, name = g.users[ti][i], g.names[ti][i]
			}
			g.put(c, g.loginAttempt(r, ids.at(at), t, subject, name, dt(at)))
		}
	}
	w := windows[0]
	g.windowEdges(c, w, oidID, func(id any, at time.Time) bson.D {
		return g.loginAttempt(r, id, "default", g.users[0][1], g.names[0][1], dt(at))
	})
	s := fixedOID("authority_login_attempts/string-date")
	g.put(c, g.loginAttempt(r, s, "default", g.users[0][1], g.names[0][1], g.asOf.Add(-time.Hour).Format(time.RFC3339)))
	g.plant(c, s, KindEdge, ExpectSkip, "occurredAt", "occurredAt is an RFC 3339 string, not a date: outside the window")

	gone := fixedOID("authority_login_attempts/gone-user")
	g.put(c, g.loginAttempt(r, gone, "urn:tenant:globex", fixedOID("authority_users/deleted-user"), "former.employee", dt(g.asOf.Add(-10*24*time.Hour))))
	g.plant(c, gone, KindQuirk, ExpectLoad, "subjectId", "subjectId names a user that no longer exists: no reference, loads")
}

// edgeOffsets are the planted documents of a window: one second outside the cutoff (skip),
// exactly at it and one second inside (both kept: windows are inclusive).
var edgeOffsets = []struct {
	label  string
	off    time.Duration
	expect Outcome
	what   string
}{
	{"outside", -time.Second, ExpectSkip, "one second outside"},
	{"at", 0, ExpectLoad, "exactly at"},
	{"inside", time.Second, ExpectLoad, "one second inside"},
}

// windowEdges plants edgeOffsets' documents of window w in c; newID makes the fixed _id from a
// label, doc the document.
func (g *gen) windowEdges(c *Collection, w Window, newID func(label string) any, doc func(id any, at time.Time) bson.D) {
	cut := w.Cutoff(g.asOf)
	for _, e := range edgeOffsets {
		id := newID(c.Namespace() + "/edge-" + e.label)
		g.put(c, doc(id, cut.Add(e.off)))
		what := fmt.Sprintf("%s = as-of - %dd %+ds: %s the %d-day window", w.Field, w.Days, int(e.off/time.Second), e.what, w.Days)
		if w.ActiveKept {
			what += " (terminal status)"
		}
		g.plant(c, id, KindEdge, e.expect, w.Field, what)
	}
}

func oidID(label string) any { return fixedOID(label) }

// ulidID makes fixed ids shaped like the scheduler's prefixed ULIDs.
func ulidID(prefix string) func(string) any {
	return func(label string) any { return prefix + strings.ToUpper(fixedHex(label, 26)) }
}

func (g *gen) revocations() {
	c := g.c(AuthorityDB, "authority_revocations")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for ti, t := range tenants {
		for range g.n(10) {
			at := g.ago(r, 0, 400)
			cat := pick(r, []string{"token", "token", "token", "subject", "client", "key"})
			var revokedID, tokenType, clientID, subjectID any
			switch cat {
			case "token":
				revokedID, tokenType, clientID = randHex(r, 32), pick(r, []string{"access_token", "refresh_token"}), pick(r, g.clients[ti])
			case "subject":
				u := pick(r, g.users[ti])
				revokedID, subjectID = u.Hex(), u.Hex()
			case "client":
				cl := pick(r, g.clients[ti])
				revokedID, clientID = cl, cl
			case "key":
				revokedID = "signing-key-" + randHex(r, 8)
			}
			g.put(c, bson.D{
				{Key: "_id", Value: ids.at(at)},
				{Key: "tenant", Value: t},
				{Key: "category", Value: cat},
				{Key: "revokedId", Value: revokedID},
				{Key: "tokenType", Value: tokenType},
				{Key: "clientId", Value: clientID},
				{Key: "subjectId", Value: subjectID},
				{Key: "revokedAt", Value: dt(at)},
				{Key: "reason", Value: pick(r, []string{"compromised", "rotation", "user_request", "offboarding"})},
				{Key: "expiresAt", Value: nullable(r, 0.3, dt(at.Add(90*24*time.Hour)))},
			})
		}
	}
}

// ---------------------------------------------------------------- scheduler

var (
	scheduleNames = []string{"nightly-prod", "hourly-critical", "weekly-full", "kev-watch", "staging-refresh", "release-gate", "sbom-rescan", "vex-refresh"}
	terminal      = []string{"completed", "failed", "cancelled"}
	namespaces    = []string{"prod", "staging", "payments", "edge", "data", "platform"}
	repositories  = []string{"registry.stella-ops.org/web", "registry.stella-ops.org/api", "ghcr.io/acme/checkout", "quay.io/globex/ingest", "docker.io/library/nginx"}
)

func (g *gen) scheduler() {
	sched := g.schedules()
	g.runs(sched)
	g.graphJobs()
	g.policyJobs()
	g.impactSnapshots()
	c := g.c(SchedulerDB, "locks")
	r := g.rng(c.Namespace())
	for _, name := range []string{"scheduler:planner", "scheduler:runner", "scheduler:impact-index", "scheduler:graph-dispatch"} {
		at := g.asOf.Add(-time.Duration(r.IntN(600)) * time.Second)
		g.put(c, bson.D{
			{Key: "_id", Value: name},
			{Key: "holder", Value: fmt.Sprintf("scheduler-worker-%d@%s", r.IntN(4), randHex(r, 8))},
			{Key: "acquiredAt", Value: dt(at)},
			{Key: "expiresAt", Value: dt(at.Add(15 * time.Minute))},
		})
	}
}

func (g *gen) scheduleDoc(r *rand.Rand, id, t, name string, created time.Time, deleted bool) bson.D {
	scope := pick(r, []string{"all-images", "by-namespace", "by-repository"})
	by := pick(r, g.names[slices.Index(tenants, t)])
	var delAt, delBy any
	if deleted {
		delAt, delBy = dt(created.Add(time.Duration(30+r.IntN(60))*24*time.Hour)), by
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: t},
		{Key: "name", Value: name},
		{Key: "enabled", Value: !deleted && !chance(r, 0.15)},
		{Key: "cronExpression", Value: pick(r, []string{"0 2 * * *", "0 * * * *", "30 3 * * 0", "*/15 * * * *", "0 6 * * 1-5"})},
		{Key: "timezone", Value: pick(r, []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"})},
		{Key: "mode", Value: pick(r, []string{"analysis-only", "content-refresh"})},
		{Key: "selection", Value: bson.D{
			{Key: "scope", Value: scope},
			{Key: "namespaces", Value: choose(r, namespaces, 1+r.IntN(2))},
			{Key: "repositories", Value: choose(r, repositories, r.IntN(3))},
			{Key: "digests", Value: []string{}},
			{Key: "includeTags", Value: []string{"latest", "v*"}},
			{Key: "labels", Value: bson.A{bson.D{{Key: "key", Value: "team"}, {Key: "values", Value: []string{pick(r, departments)}}}}},
		}},
		{Key: "onlyIf", Value: bson.D{{Key: "lastReportOlderThanDays", Value: int32(1 + r.IntN(7))}, {Key: "policyRevision", Value: nil}}},
		{Key: "notify", Value: bson.D{
			{Key: "onNewFindings", Value: chance(r, 0.8)},
			{Key: "minSeverity", Value: pick(r, []string{"critical", "high", "medium"})},
			{Key: "includeKev", Value: chance(r, 0.7)},
		}},
		{Key: "limits", Value: bson.D{
			{Key: "maxJobs", Value: int32(10 * (1 + r.IntN(20)))},
			{Key: "ratePerSecond", Value: int32(1 + r.IntN(50))},
			{Key: "parallelism", Value: int32(1 + r.IntN(8))},
		}},
		{Key: "createdAt", Value: dt(created)},
		{Key: "createdBy", Value: by},
		{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(30*24)) * time.Hour))},
		{Key: "updatedBy", Value: by},
		{Key: "deletedAt", Value: delAt},
		{Key: "deletedBy", Value: delBy},
		{Key: "schemaVersion", Value: "scheduler.schedule@1"},
	}
}

// schedules returns the schedule ids per tenant.
func (g *gen) schedules() [][]string {
	c := g.c(SchedulerDB, "schedules")
	r := g.rng(c.Namespace())
	out := make([][]string, len(tenants))
	for ti, t := range tenants {
		for i := range g.n(len(scheduleNames)) {
			name := scheduleNames[i%len(scheduleNames)]
			if i >= len(scheduleNames) {
				name = fmt.Sprintf("%s-%d", name, i/len(scheduleNames)+1)
			}
			created := g.ago(r, 100, 800)
			id := "sch_" + ulid(r, created)
			g.put(c, g.scheduleDoc(r, id, t, name, created, false))
			out[ti] = append(out[ti], id)
		}
	}
	// A soft-deleted schedule sharing a live schedule's name: the partial unique key ignores it.
	del := "sch_" + strings.ToUpper(fixedHex("schedules/soft-deleted", 26))
	g.put(c, g.scheduleDoc(r, del, "default", scheduleNames[0], g.asOf.AddDate(-2, 0, 0), true))
	g.plant(c, del, KindQuirk, ExpectLoad, "deletedAt", `soft-deleted, same tenant+name as a live schedule ("`+scheduleNames[0]+`"): loads`)
	out[0] = append(out[0], del) // runs of a deleted schedule are ordinary history
	return out
}

func (g *gen) runDoc(r *rand.Rand, id any, t string, schedule any, created time.Time) bson.D {
	trigger := "cron"
	if schedule == nil {
		trigger = pick(r, []string{"manual", "feedser", "vexer"})
	}
	state := "completed"
	switch x := r.Float64(); {
	case created.After(g.asOf.Add(-2*time.Hour)) && x < 0.5:
		state = pick(r, []string{"planning", "queued", "running"})
	case x < 0.08:
		state = "error"
	case x < 0.12:
		state = "cancelled"
	}
	candidates := int32(r.IntN(500))
	completed := candidates
	if state != "completed" {
		completed = candidates / 2
	}
	var started, finished, errMsg any
	started = dt(created.Add(time.Duration(1+r.IntN(60)) * time.Second))
	if state == "completed" || state == "error" || state == "cancelled" {
		finished = dt(created.Add(time.Duration(60+r.IntN(3600)) * time.Second))
	}
	if state == "error" {
		errMsg = pick(r, []string{"scanner backend unavailable: context deadline exceeded", "registry returned 429 Too Many Requests", "policy engine rejected revision"})
	}
	var deltas bson.A
	for range r.IntN(3) {
		deltas = append(deltas, bson.D{
			{Key: "imageDigest", Value: "sha256:" + randHex(r, 64)},
			{Key: "newFindings", Value: int32(r.IntN(20))},
			{Key: "newCriticals", Value: int32(r.IntN(3))},
			{Key: "kevHits", Value: []string{}},
		})
	}
	if deltas == nil {
		deltas = bson.A{}
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: t},
		{Key: "scheduleId", Value: schedule},
		{Key: "trigger", Value: trigger},
		{Key: "state", Value: state},
		{Key: "stats", Value: bson.D{
			{Key: "candidates", Value: candidates},
			{Key: "deduped", Value: candidates - int32(r.IntN(int(candidates)+1)/4)},
			{Key: "queued", Value: candidates},
			{Key: "completed", Value: completed},
			{Key: "deltas", Value: int32(len(deltas))},
			{Key: "newCriticals", Value: int32(r.IntN(4))},
			{Key: "newHigh", Value: int32(r.IntN(10))},
		}},
		{Key: "reason", Value: bson.D{{Key: "manualReason", Value: nullable(r, 0.8, "re-scan after base image update")}, {Key: "cursor", Value: nullable(r, 0.6, randHex(r, 16))}}},
		{Key: "deltas", Value: deltas},
		{Key: "error", Value: errMsg},
		{Key: "createdAt", Value: dt(created)},
		{Key: "startedAt", Value: started},
		{Key: "finishedAt", Value: finished},
	}
}

func (g *gen) runs(sched [][]string) {
	c := g.c(SchedulerDB, "runs")
	r := g.rng(c.Namespace())
	for ti, t := range tenants {
		for range g.n(100) {
			created := g.ago(r, 0, 365)
			g.put(c, g.runDoc(r, "run_"+ulid(r, created), t, nullable(r, 0.2, pick(r, sched[ti])), created))
		}
	}
	g.windowEdges(c, windows[1], ulidID("run_"), func(id any, at time.Time) bson.D {
		return g.runDoc(r, id, "default", sched[0][0], at)
	})
	o := "run_" + strings.ToUpper(fixedHex("runs/orphan", 26))
	missing := "sch_" + strings.ToUpper(fixedHex("schedules/hard-deleted", 26))
	g.put(c, g.runDoc(r, o, "urn:tenant:acme", missing, g.asOf.Add(-20*24*time.Hour)))
	g.plant(c, o, KindOrphan, ExpectReject, "scheduleId", "recent run whose scheduleId "+missing+" names no schedule")
}

// jobStatus picks a status consistent with the job's age: old jobs have mostly finished.
func jobStatus(r *rand.Rand, age time.Duration, active []string) string {
	if age > 2*24*time.Hour && !chance(r, 0.05) {
		return pick(r, []string{"completed", "completed", "completed", "failed", "cancelled"})
	}
	if chance(r, 0.5) {
		return pick(r, active)
	}
	return pick(r, terminal)
}

func (g *gen) graphJobDoc(r *rand.Rand, id any, t, typ, status string, created time.Time) bson.D {
	payload := bson.D{
		{Key: "sbomId", Value: "sbom-" + randHex(r, 12)},
		{Key: "sbomVersionId", Value: "sbv-" + randHex(r, 12)},
		{Key: "sbomDigest", Value: "sha256:" + randHex(r, 64)},
		{Key: "graphSnapshotId", Value: nullable(r, 0.3, "gs-"+randHex(r, 12))},
	}
	if typ == "overlay" {
		payload = append(payload, bson.E{Key: "overlayKind", Value: pick(r, []string{"policy", "advisory", "vex"})}, bson.E{Key: "overlayKey", Value: "P-" + fmt.Sprint(1+r.IntN(20))})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: t},
		{Key: "type", Value: typ},
		{Key: "status", Value: status},
		{Key: "payload", Value: payload},
		{Key: "correlationId", Value: nullable(r, 0.2, "corr-"+randHex(r, 16))},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(3600)) * time.Second))},
	}
}

func (g *gen) graphJobs() {
	c := g.c(SchedulerDB, "graph_jobs")
	r := g.rng(c.Namespace())
	active := []string{"pending", "queued", "running"}
	for _, t := range tenants {
		for range g.n(35) {
			created := g.ago(r, 0, 120)
			typ := pick(r, []string{"build", "overlay"})
			prefix := map[string]string{"build": "gbj_", "overlay": "goj_"}[typ]
			g.put(c, g.graphJobDoc(r, prefix+ulid(r, created), t, typ, jobStatus(r, g.asOf.Sub(created), active), created))
		}
	}
	g.windowEdges(c, windows[2], ulidID("gbj_"), func(id any, at time.Time) bson.D {
		return g.graphJobDoc(r, id, "default", "build", "completed", at)
	})
	old := "gbj_" + strings.ToUpper(fixedHex("graph_jobs/old-active", 26))
	g.put(c, g.graphJobDoc(r, old, "urn:tenant:acme", "build", "running", g.asOf.Add(-200*24*time.Hour)))
	g.plant(c, old, KindEdge, ExpectLoad, "status", "status running (not terminal), createdAt 200 days before as-of: active, kept")
	bad := "goj_" + strings.ToUpper(fixedHex("graph_jobs/unknown-status", 26))
	g.put(c, g.graphJobDoc(r, bad, "urn:tenant:globex", "overlay", "paused", g.asOf.Add(-3*24*time.Hour)))
	g.plant(c, bad, KindUnmappable, ExpectReject, "status", `status "paused" is no graph job status (pending..cancelled)`)
}

func (g *gen) policyJobDoc(r *rand.Rand, id any, t, status string, created time.Time) bson.D {
	var lastErr any
	attempts := int32(1)
	if status == "failed" {
		lastErr, attempts = pick(r, []string{"evaluation timed out after 300s", "policy revision not found", "graph snapshot unavailable"}), int32(1+r.IntN(3))
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: t},
		{Key: "policyId", Value: fmt.Sprintf("P-%d", 1+r.IntN(12))},
		{Key: "policyVersion", Value: int32(1 + r.IntN(9))},
		{Key: "mode", Value: pick(r, []string{"full", "incremental"})},
		{Key: "status", Value: status},
		{Key: "priority", Value: int32(pick(r, []int{10, 50, 100}))},
		{Key: "inputs", Value: bson.D{
			{Key: "sbomSet", Value: []string{"sbom-" + randHex(r, 12)}},
			{Key: "advisoryCursor", Value: dt(created.Add(-time.Hour))},
			{Key: "vexCursor", Value: nil},
			{Key: "captureExplain", Value: chance(r, 0.1)},
		}},
		{Key: "attempts", Value: attempts},
		{Key: "lastError", Value: lastErr},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(1800)) * time.Second))},
	}
}

func (g *gen) policyJobs() {
	c := g.c(SchedulerDB, "policy_jobs")
	r := g.rng(c.Namespace())
	active := []string{"pending", "dispatching", "running"}
	for _, t := range tenants {
		for range g.n(25) {
			created := g.ago(r, 0, 120)
			g.put(c, g.policyJobDoc(r, "prj_"+ulid(r, created), t, jobStatus(r, g.asOf.Sub(created), active), created))
		}
	}
	g.windowEdges(c, windows[3], ulidID("prj_"), func(id any, at time.Time) bson.D {
		return g.policyJobDoc(r, id, "default", "failed", at)
	})
	old := "prj_" + strings.ToUpper(fixedHex("policy_jobs/old-active", 26))
	g.put(c, g.policyJobDoc(r, old, "urn:tenant:globex", "pending", g.asOf.Add(-75*24*time.Hour)))
	g.plant(c, old, KindEdge, ExpectLoad, "status", "status pending (not terminal), createdAt 75 days before as-of: active, kept")
}

func (g *gen) impactDoc(r *rand.Rand, id any, t string, at time.Time) bson.D {
	var images bson.A
	for range 1 + r.IntN(4) {
		repo := pick(r, repositories)
		images = append(images, bson.D{
			{Key: "imageDigest", Value: "sha256:" + randHex(r, 64)},
			{Key: "registry", Value: strings.SplitN(repo, "/", 2)[0]},
			{Key: "repository", Value: strings.SplitN(repo, "/", 2)[1]},
			{Key: "namespaces", Value: choose(r, namespaces, 1)},
			{Key: "tags", Value: []string{pick(r, []string{"latest", "v1.4.2", "2026.10", "stable"})}},
			{Key: "usedByEntrypoint", Value: chance(r, 0.6)},
		})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenantId", Value: t},
		{Key: "snapshotId", Value: "impact-" + randHex(r, 16)},
		{Key: "selector", Value: bson.D{{Key: "scope", Value: "by-namespace"}, {Key: "tenantId", Value: t}, {Key: "namespaces", Value: choose(r, namespaces, 2)}}},
		{Key: "images", Value: images},
		{Key: "imageCount", Value: int32(len(images))},
		{Key: "generatedAt", Value: dt(at)},
	}
}

func (g *gen) impactSnapshots() {
	c := g.c(SchedulerDB, "impact_snapshots")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for _, t := range tenants {
		for range g.n(15) {
			at := g.ago(r, 0, 200)
			g.put(c, g.impactDoc(r, ids.at(at), t, at))
		}
	}
	g.windowEdges(c, windows[4], oidID, func(id any, at time.Time) bson.D { return g.impactDoc(r, id, "default", at) })
}

// ---------------------------------------------------------------- concelier

var (
	sourceDefs = []struct{ name, kind, url string }{
		{"nvd", "registry", "https://services.nvd.nist.gov/rest/json/cves/2.0"},
		{"ghsa", "registry", "https://api.github.com/graphql"},
		{"osv", "registry", "https://osv-vulnerabilities.storage.googleapis.com"},
		{"redhat", "vendor", "https://access.redhat.com/security/data/csaf/v2/advisories/"},
		{"cisa-kev", "kev", "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"},
		{"debian", "distro", "https://security-tracker.debian.org/tracker/data/json"},
		{"ubuntu", "distro", "https://ubuntu.com/security/notices.json"},
		{"suse", "distro", "https://ftp.suse.com/pub/projects/security/csaf/"},
	}
	packages = []struct{ eco, name, purl string }{
		{"npm", "lodash", "pkg:npm/lodash"}, {"npm", "express", "pkg:npm/express"}, {"npm", "minimist", "pkg:npm/minimist"},
		{"pypi", "requests", "pkg:pypi/requests"}, {"pypi", "jinja2", "pkg:pypi/jinja2"}, {"pypi", "urllib3", "pkg:pypi/urllib3"},
		{"maven", "org.apache.logging.log4j:log4j-core", "pkg:maven/org.apache.logging.log4j/log4j-core"},
		{"maven", "com.fasterxml.jackson.core:jackson-databind", "pkg:maven/com.fasterxml.jackson.core/jackson-databind"},
		{"golang", "golang.org/x/net", "pkg:golang/golang.org/x/net"}, {"golang", "github.com/gin-gonic/gin", "pkg:golang/github.com/gin-gonic/gin"},
		{"deb", "openssl", "pkg:deb/debian/openssl"}, {"deb", "libxml2", "pkg:deb/debian/libxml2"}, // [10:12]
		{"rpm", "glibc", "pkg:rpm/redhat/glibc"}, {"rpm", "curl", "pkg:rpm/redhat/curl"}, // [12:14]
		{"cargo", "tokio", "pkg:cargo/tokio"}, {"nuget", "Newtonsoft.Json", "pkg:nuget/Newtonsoft.Json"},
	}
	vulnClasses = []string{"Heap-based buffer overflow", "Improper input validation", "Cross-site scripting", "SQL injection",
		"Path traversal", "Use after free", "Integer overflow", "Server-side request forgery",
		"Deserialization of untrusted data", "Uncontrolled resource consumption", "Improper certificate validation", "Race condition"}
	impacts = []string{"remote code execution", "denial of service", "information disclosure", "privilege escalation", "authentication bypass"}
	cwes    = []string{"CWE-79", "CWE-89", "CWE-20", "CWE-22", "CWE-787", "CWE-416", "CWE-190", "CWE-918", "CWE-502", "CWE-400", "CWE-295", "CWE-362", "CWE-125", "CWE-476", "CWE-77"}
)

const ghsaAlphabet = "23456789cfghjmpqrvwx"

func ghsaID(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("GHSA")
	for range 3 {
		b.WriteByte('-')
		for range 4 {
			b.WriteByte(ghsaAlphabet[r.IntN(len(ghsaAlphabet))])
		}
	}
	return b.String()
}

func semver(r *rand.Rand) string { return fmt.Sprintf("%d.%d.%d", r.IntN(5), r.IntN(30), r.IntN(20)) }

func severityOf(score float64) string {
	switch {
	case score >= 9:
		return "critical"
	case score >= 7:
		return "high"
	case score >= 4:
		return "medium"
	case score > 0:
		return "low"
	}
	return "none"
}

func (g *gen) concelier() {
	g.sources()
	keys := g.advisories()
	g.aliases(keys)
	g.affected(keys)
	g.advisoryRaw()
	g.concelierTierC()
	c := g.c(ConcelierDB, "unmapped_notes")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for i, note := range []string{
		"triage backlog for the 2025 Q3 NVD reprocessing",
		"do not merge GHSA aliases for the log4j family by hand",
		"osv connector paused while upstream fixes pagination",
		"kev feed mirrors checked against CISA on the 1st of each month",
		"debian tracker json is 40 MB: fetch with If-Modified-Since",
	} {
		at := g.ago(r, float64(10*i), float64(10*i+9))
		g.put(c, bson.D{{Key: "_id", Value: ids.at(at)}, {Key: "author", Value: pick(r, firstNames)}, {Key: "note", Value: note}, {Key: "createdAt", Value: dt(at)}})
	}
}

func (g *gen) sources() {
	c := g.c(ConcelierDB, "source")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for i, s := range sourceDefs {
		at := g.ago(r, 600, 900)
		g.put(c, bson.D{
			{Key: "_id", Value: ids.at(at)},
			{Key: "name", Value: s.name},
			{Key: "kind", Value: s.kind},
			{Key: "url", Value: s.url},
			{Key: "enabled", Value: s.name != "osv"},
			{Key: "priority", Value: int32(10 * (i + 1))},
			{Key: "config", Value: bson.D{{Key: "pageSize", Value: int32(pick(r, []int{100, 500, 2000}))}, {Key: "fetchInterval", Value: pick(r, []string{"PT1H", "PT6H", "P1D"})}, {Key: "apiKeyRef", Value: nullable(r, 0.6, "secret://concelier/"+s.name)}}},
			{Key: "createdAt", Value: dt(at)},
			{Key: "updatedAt", Value: dt(g.ago(r, 0, 30))},
		})
	}
	c = g.c(ConcelierDB, "source_state")
	r = g.rng(c.Namespace())
	state := func(name string) bson.D {
		ok := g.ago(r, 0, 2)
		var lastErr, backoff any
		fails := int32(0)
		if chance(r, 0.25) {
			lastErr, fails, backoff = "upstream returned 503 Service Unavailable", int32(1+r.IntN(5)), dt(g.asOf.Add(time.Duration(r.IntN(120))*time.Minute))
		}
		return bson.D{
			{Key: "_id", Value: name},
			{Key: "cursor", Value: bson.D{{Key: "lastModified", Value: dt(ok.Add(-time.Hour))}, {Key: "page", Value: int32(r.IntN(40))}, {Key: "etag", Value: `W/"` + randHex(r, 16) + `"`}}},
			{Key: "lastSuccessAt", Value: dt(ok)},
			{Key: "lastError", Value: lastErr},
			{Key: "failCount", Value: fails},
			{Key: "backoffUntil", Value: backoff},
			{Key: "updatedAt", Value: dt(ok.Add(time.Minute))},
		}
	}
	for _, s := range sourceDefs {
		g.put(c, state(s.name))
	}
	g.put(c, state("msrc"))
	g.plant(c, "msrc", KindOrphan, ExpectReject, "_id", `state of source "msrc", which the source collection does not hold`)
}

// advisoryDoc builds one advisory with its embedded arrays.
func (g *gen) advisoryDoc(r *rand.Rand, id bson.ObjectID, key, source string, published time.Time) bson.D {
	pkg := pick(r, packages)
	class, impact := pick(r, vulnClasses), pick(r, impacts)
	fixed := semver(r)
	var metrics bson.A
	var top float64
	for m := range r.IntN(3) {
		score := float64(r.IntN(101)) / 10
		top = max(top, score)
		var base any = score
		switch x := r.Float64(); {
		case x < 0.25:
			base = fmt.Sprintf("%.1f", score)
		case x < 0.40:
			d, err := bson.ParseDecimal128(fmt.Sprintf("%.1f", score))
			if err != nil {
				panic(fmt.Sprintf("sample: decimal %v: %v", score, err))
			}
			base = d
		}
		version, vector := "3.1", fmt.Sprintf("CVSS:3.1/AV:%s/AC:%s/PR:%s/UI:%s/S:U/C:%s/I:%s/A:%s",
			pick(r, []string{"N", "A", "L"}), pick(r, []string{"L", "H"}), pick(r, []string{"N", "L", "H"}), pick(r, []string{"N", "R"}),
			pick(r, []string{"H", "L", "N"}), pick(r, []string{"H", "L", "N"}), pick(r, []string{"H", "L", "N"}))
		if m == 1 {
			version, vector = "4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
		}
		metrics = append(metrics, bson.D{
			{Key: "version", Value: version},
			{Key: "vector", Value: vector},
			{Key: "baseScore", Value: base},
			{Key: "severity", Value: severityOf(score)},
			{Key: "source", Value: pick(r, []string{"nvd@nist.gov", "security-advisories@github.com", "secalert@redhat.com"})},
		})
	}
	refs := bson.A{bson.D{
		{Key: "url", Value: "https://nvd.nist.gov/vuln/detail/" + key},
		{Key: "kind", Value: "advisory"},
		{Key: "sourceTag", Value: "NVD"},
		{Key: "summary", Value: nil},
	}}
	for range r.IntN(3) {
		refs = append(refs, bson.D{
			{Key: "url", Value: "https://github.com/" + strings.ReplaceAll(pkg.name, ":", "/") + "/commit/" + randHex(r, 40)},
			{Key: "kind", Value: pick(r, []string{"patch", "report", "exploit"})},
			{Key: "sourceTag", Value: pick(r, []string{"GHSA", "MISC", "CONFIRM"})},
			{Key: "summary", Value: nullable(r, 0.5, "upstream fix")},
		})
	}
	var credits bson.A
	for range r.IntN(2) {
		credits = append(credits, bson.D{
			{Key: "name", Value: title(pick(r, firstNames)) + " " + title(pick(r, lastNames))},
			{Key: "contact", Value: nullable(r, 0.5, "mailto:security@"+pick(r, []string{"example.org", "example.net"}))},
			{Key: "role", Value: pick(r, []string{"reporter", "finder", "remediation_developer", "coordinator"})},
		})
	}
	if credits == nil {
		credits = bson.A{}
	}
	if metrics == nil {
		metrics = bson.A{}
	}
	sev := severityOf(top)
	if top == 0 {
		sev = pick(r, []string{"medium", "low", "high"})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "advisoryKey", Value: key},
		{Key: "sourceName", Value: source},
		{Key: "title", Value: fmt.Sprintf("%s in %s allows %s", class, pkg.name, impact)},
		{Key: "summary", Value: fmt.Sprintf("%s in %s before %s allows %s.", class, pkg.name, fixed, impact)},
		{Key: "description", Value: fmt.Sprintf("%s in %s versions before %s allows a remote attacker to achieve %s via crafted input. Upgrade to %s or later.", class, pkg.name, fixed, impact, fixed)},
		{Key: "severity", Value: sev},
		{Key: "exploitKnown", Value: chance(r, 0.08)},
		{Key: "publishedAt", Value: dt(published)},
		{Key: "modifiedAt", Value: dt(published.Add(time.Duration(r.IntN(90*24)) * time.Hour))},
		{Key: "language", Value: "en"},
		{Key: "provenance", Value: bson.D{
			{Key: "source", Value: source},
			{Key: "kind", Value: "document"},
			{Key: "value", Value: "https://feeds.stella-ops.org/" + source + "/" + key + ".json"},
			{Key: "recordedAt", Value: dt(published.Add(time.Hour))},
			{Key: "fieldMask", Value: []string{"title", "summary", "cvssMetrics"}},
		}},
		{Key: "cvssMetrics", Value: metrics},
		{Key: "references", Value: refs},
		{Key: "credits", Value: credits},
		{Key: "cwes", Value: choose(r, cwes, r.IntN(3))},
	}
}

// set replaces the value of key in d (a top-level field).
func set(d bson.D, key string, v any) bson.D {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: key, Value: v})
}

func get(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// advisories returns the advisory keys children may reference (the regular advisories and
// the winner of the duplicate pair).
func (g *gen) advisories() []string {
	c := g.c(ConcelierDB, "advisory")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	var keys []string
	// The planted keys are reserved so that a random draw cannot collide with them.
	seen := map[string]bool{"CVE-2026-31337": true, "CVE-2017-99999": true}
	for k := 40001; k <= 40006; k++ {
		seen[fmt.Sprintf("CVE-2026-%d", k)] = true
	}
	for range g.n(250) {
		var key, source string
		if chance(r, 0.8) {
			year := 2019 + r.IntN(8)
			key = fmt.Sprintf("CVE-%d-%d", year, 1000+r.IntN(59000))
			source = pick(r, []string{"nvd", "nvd", "redhat", "debian", "ubuntu", "suse", "cisa-kev"})
		} else {
			key, source = ghsaID(r), pick(r, []string{"ghsa", "osv"})
		}
		if seen[key] {
			continue // drawn twice: the bulk stays free of duplicates
		}
		seen[key] = true
		pub := g.ago(r, 5, 1500)
		d := g.advisoryDoc(r, ids.at(pub), key, source, pub)
		if chance(r, 0.04) && len(get(d, "cwes").([]string)) > 0 {
			// The same CWE twice happens when a source merges two feeds.
			cw := get(d, "cwes").([]string)
			d = set(d, "cwes", append(cw, cw[0]))
		}
		g.put(c, d)
		keys = append(keys, key)
	}
	at := g.asOf.AddDate(0, -2, 0)

	win, lose := orderedOIDs("advisory/dup-a", "advisory/dup-b")
	dupKey := "CVE-2026-31337"
	g.put(c, g.advisoryDoc(r, win, dupKey, "nvd", at))
	g.put(c, g.advisoryDoc(r, lose, dupKey, "redhat", at.Add(time.Hour)))
	g.plant(c, lose, KindDuplicate, ExpectReject, "advisoryKey", "same advisoryKey "+dupKey+" as "+win.Hex()+", which has the smaller _id and wins")
	keys = append(keys, dupKey)

	cw := fixedOID("advisory/repeated-cwe")
	d := g.advisoryDoc(r, cw, "CVE-2026-40001", "nvd", at)
	g.put(c, set(d, "cwes", []string{"CWE-79", "CWE-20", "CWE-79"}))
	g.plant(c, cw, KindQuirk, ExpectLoad, "cwes", "CWE-79 listed twice: one advisory_weaknesses row, the repeat counted")

	metric := func(score any) bson.A {
		return bson.A{bson.D{{Key: "version", Value: "3.1"}, {Key: "vector", Value: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}, {Key: "baseScore", Value: score}, {Key: "severity", Value: "critical"}, {Key: "source", Value: "nvd@nist.gov"}}}
	}
	hi := fixedOID("advisory/cvss-11")
	g.put(c, set(g.advisoryDoc(r, hi, "CVE-2026-40002", "nvd", at), "cvssMetrics", metric(11.0)))
	g.plant(c, hi, KindUnmappable, ExpectReject, "cvssMetrics.0.baseScore", "baseScore 11 (double) is outside 0..10")

	nan := fixedOID("advisory/cvss-nan")
	g.put(c, set(g.advisoryDoc(r, nan, "CVE-2026-40003", "nvd", at), "cvssMetrics", metric("NaN")))
	g.plant(c, nan, KindUnmappable, ExpectReject, "cvssMetrics.0.baseScore", `baseScore "NaN" (string) is not a number`)

	nourl := fixedOID("advisory/reference-without-url")
	g.put(c, set(g.advisoryDoc(r, nourl, "CVE-2026-40004", "ghsa", at), "references", bson.A{
		bson.D{{Key: "kind", Value: "report"}, {Key: "sourceTag", Value: "MISC"}, {Key: "summary", Value: "mailing list post, link lost"}},
	}))
	g.plant(c, nourl, KindUnmappable, ExpectReject, "references.0.url", "reference without url (advisory_references.url is NOT NULL)")

	nul := fixedOID("advisory/nul-in-title")
	g.put(c, set(g.advisoryDoc(r, nul, "CVE-2026-40005", "nvd", at), "title", "NULL pointer dereference in X.509 parsing\x00 (truncated upstream)"))
	g.plant(c, nul, KindUnmappable, ExpectReject, "title", "title holds a NUL byte (reject, or removed with --fix-strings)")

	dk := fixedOID("advisory/duplicate-key")
	d = g.advisoryDoc(r, dk, "CVE-2026-40006", "nvd", at)
	prov := get(d, "provenance").(bson.D)
	d = set(d, "provenance", append(prov, bson.E{Key: "source", Value: "redhat"}))
	g.put(c, d)
	g.plant(c, dk, KindUnmappable, ExpectReject, "provenance.source", "provenance holds the key \"source\" twice (jsonb would keep one)")
	return keys
}

func (g *gen) aliases(keys []string) {
	c := g.c(ConcelierDB, "alias")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	put := func(id bson.ObjectID, key, scheme, value string) {
		g.put(c, bson.D{{Key: "_id", Value: id}, {Key: "advisoryKey", Value: key}, {Key: "scheme", Value: scheme}, {Key: "value", Value: value}})
	}
	for _, key := range keys {
		created := g.ago(r, 1, 1000)
		if strings.HasPrefix(key, "CVE-") {
			put(ids.at(created), key, "CVE", key)
			if chance(r, 0.3) {
				put(ids.at(created), key, "GHSA", ghsaID(r))
			}
			if chance(r, 0.2) {
				put(ids.at(created), key, "RHSA", fmt.Sprintf("RHSA-%d:%04d", 2020+r.IntN(7), r.IntN(9000)))
			}
			if chance(r, 0.15) {
				put(ids.at(created), key, "DSA", fmt.Sprintf("DSA-%d-1", 5000+r.IntN(1000)))
			}
		} else {
			put(ids.at(created), key, "GHSA", key)
			if chance(r, 0.6) {
				put(ids.at(created), key, "CVE", fmt.Sprintf("CVE-%d-%d", 2019+r.IntN(8), 1000+r.IntN(59000)))
			}
		}
	}
	o := fixedOID("alias/orphan")
	put(o, "CVE-2017-99999", "CVE", "CVE-2017-99999")
	g.plant(c, o, KindOrphan, ExpectReject, "advisoryKey", "advisoryKey CVE-2017-99999 names no advisory")
}

func (g *gen) affected(keys []string) {
	c := g.c(ConcelierDB, "affected")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for _, key := range keys {
		for range 1 + r.IntN(2) {
			if chance(r, 0.3) {
				break
			}
			p := pick(r, packages)
			fixed := semver(r)
			vers := []string{}
			for range r.IntN(4) {
				vers = append(vers, semver(r))
			}
			typ := "ECOSYSTEM"
			if p.eco == "npm" || p.eco == "golang" || p.eco == "cargo" {
				typ = "SEMVER"
			}
			g.put(c, bson.D{
				{Key: "_id", Value: ids.at(g.ago(r, 1, 1000))},
				{Key: "advisoryKey", Value: key},
				{Key: "ecosystem", Value: p.eco},
				{Key: "packageName", Value: p.name},
				{Key: "purl", Value: p.purl},
				{Key: "ranges", Value: bson.A{bson.D{
					{Key: "type", Value: typ},
					{Key: "events", Value: bson.A{bson.D{{Key: "introduced", Value: "0"}}, bson.D{{Key: "fixed", Value: fixed}}}},
				}}},
				{Key: "versions", Value: vers},
			})
		}
	}
}

// gridFS holds one module's fs.files/fs.chunks and adds blobs to them.
type gridFS struct {
	g            *gen
	files, chunk *Collection
	ids          *oids
}

const gridFSChunkSize = 255 * 1024 // the drivers' default

func (g *gen) gridFS(db string) *gridFS {
	return &gridFS{g: g, files: g.c(db, "fs.files"), chunk: g.c(db, "fs.chunks"), ids: g.oids(db + ".fs.chunks")}
}

// put stores blob under id and returns id.
func (fs *gridFS) put(id bson.ObjectID, name, contentType string, blob []byte, at time.Time, meta bson.D) bson.ObjectID {
	n := 0
	for off := 0; off < len(blob) || off == 0; off += gridFSChunkSize {
		end := min(off+gridFSChunkSize, len(blob))
		fs.g.put(fs.chunk, bson.D{
			{Key: "_id", Value: fs.ids.at(at)},
			{Key: "files_id", Value: id},
			{Key: "n", Value: int32(n)},
			{Key: "data", Value: bson.Binary{Subtype: 0, Data: blob[off:end]}},
		})
		n++
		if end == len(blob) {
			break
		}
	}
	fs.g.put(fs.files, bson.D{
		{Key: "_id", Value: id},
		{Key: "length", Value: int64(len(blob))},
		{Key: "chunkSize", Value: int32(gridFSChunkSize)},
		{Key: "uploadDate", Value: dt(at)},
		{Key: "filename", Value: name},
		{Key: "metadata", Value: append(bson.D{{Key: "contentType", Value: contentType}}, meta...)},
	})
	return id
}

var rawVendors = []struct{ vendor, connector, format, spec string }{
	{"redhat", "csaf-redhat", "csaf", "2.0"},
	{"ubuntu", "usn", "usn", "1.0"},
	{"github", "ghsa", "osv", "1.6.0"},
	{"osv", "osv", "osv", "1.6.0"},
	{"nvd", "nvd-cve", "nvd", "2.0"},
}

func (g *gen) rawAdvisoryContent(r *rand.Rand, vendor, upstream, cve string, rev int) bson.D {
	p := pick(r, packages)
	// Distributions publish their own packages; USN keys its document by source package name.
	switch vendor {
	case "redhat":
		p = pick(r, packages[12:14])
	case "ubuntu":
		p = pick(r, packages[10:12])
	}
	switch vendor {
	case "redhat":
		return bson.D{
			{Key: "document", Value: bson.D{
				{Key: "category", Value: "csaf_security_advisory"},
				{Key: "csaf_version", Value: "2.0"},
				{Key: "title", Value: "Red Hat Security Advisory: " + p.name + " security update"},
				{Key: "tracking", Value: bson.D{{Key: "id", Value: upstream}, {Key: "version", Value: fmt.Sprint(rev)}, {Key: "status", Value: "final"}}},
			}},
			{Key: "vulnerabilities", Value: bson.A{bson.D{{Key: "cve", Value: cve}, {Key: "product_status", Value: bson.D{{Key: "fixed", Value: []string{"AppStream-9.4.0.Z.MAIN:" + p.name + "-" + semver(r)}}}}}}},
		}
	case "ubuntu":
		return bson.D{{Key: "id", Value: upstream}, {Key: "title", Value: p.name + " vulnerabilities"}, {Key: "cves", Value: []string{cve}}, {Key: "releases", Value: bson.D{{Key: "noble", Value: bson.D{{Key: "sources", Value: bson.D{{Key: p.name, Value: bson.D{{Key: "version", Value: semver(r) + "-1ubuntu0.1"}}}}}}}}}}
	case "nvd":
		return bson.D{{Key: "cve", Value: bson.D{{Key: "id", Value: cve}, {Key: "vulnStatus", Value: "Analyzed"}, {Key: "descriptions", Value: bson.A{bson.D{{Key: "lang", Value: "en"}, {Key: "value", Value: pick(r, vulnClasses) + " in " + p.name}}}}}}}
	}
	return bson.D{
		{Key: "schema_version", Value: "1.6.0"},
		{Key: "id", Value: upstream},
		{Key: "aliases", Value: []string{cve}},
		{Key: "summary", Value: pick(r, vulnClasses) + " in " + p.name},
		{Key: "affected", Value: bson.A{bson.D{
			{Key: "package", Value: bson.D{{Key: "ecosystem", Value: p.eco}, {Key: "name", Value: p.name}, {Key: "purl", Value: p.purl}}},
			{Key: "ranges", Value: bson.A{bson.D{{Key: "type", Value: "SEMVER"}, {Key: "events", Value: bson.A{bson.D{{Key: "introduced", Value: "0"}}, bson.D{{Key: "fixed", Value: semver(r)}}}}}}},
		}}},
	}
}

func (g *gen) rawAdvisoryDoc(r *rand.Rand, id bson.ObjectID, t string, v int, upstream, cve string, content bson.D, hash string, fetched time.Time, supersedes any) bson.D {
	rv := rawVendors[v]
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "source", Value: bson.D{{Key: "vendor", Value: rv.vendor}, {Key: "connector", Value: rv.connector}, {Key: "connector_version", Value: "2026.10.1"}}},
		{Key: "upstream", Value: bson.D{
			{Key: "upstream_id", Value: upstream},
			{Key: "fetched_at", Value: dt(fetched)},
			{Key: "received_at", Value: dt(fetched.Add(time.Duration(200+r.IntN(5000)) * time.Millisecond))},
			{Key: "content_hash", Value: hash},
			{Key: "document_version", Value: nil},
		}},
		{Key: "content", Value: content},
		{Key: "identifiers", Value: bson.D{{Key: "primary", Value: upstream}, {Key: "aliases", Value: []string{upstream, cve}}}},
		{Key: "linkset", Value: bson.D{
			{Key: "aliases", Value: []string{cve}},
			{Key: "purls", Value: []string{pick(r, packages).purl + "@" + semver(r)}},
			{Key: "cpes", Value: []string{}},
			{Key: "references", Value: bson.A{bson.D{{Key: "type", Value: "advisory"}, {Key: "url", Value: "https://security.example/" + upstream}}}},
		}},
		{Key: "supersedes", Value: supersedes},
	}
}

func (g *gen) advisoryRaw() {
	c := g.c(ConcelierDB, "advisory_raw")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	fs := g.gridFS(ConcelierDB)
	fsIDs := g.oids(ConcelierDB + ".fs.files")
	for _, t := range tenants {
		for n := 0; n < g.n(30); {
			v := r.IntN(len(rawVendors))
			rv := rawVendors[v]
			cve := fmt.Sprintf("CVE-%d-%d", 2020+r.IntN(7), 1000+r.IntN(59000))
			upstream := map[string]string{
				"redhat": fmt.Sprintf("RHSA-%d:%04d", 2020+r.IntN(7), r.IntN(9000)), "ubuntu": fmt.Sprintf("USN-%d-1", 6000+r.IntN(1500)),
				"github": ghsaID(r), "osv": "OSV-" + randHex(r, 8), "nvd": cve,
			}[rv.vendor]
			fetched := g.ago(r, 0, 400)
			// Some upstream documents were revised: each revision is its own raw document
			// pointing at the one it supersedes.
			var prev any
			for rev := 1; rev <= 1+boolInt(chance(r, 0.15)); rev++ {
				raw := append(g.rawAdvisoryContent(r, rv.vendor, upstream, cve, rev), bson.E{Key: "modified", Value: fetched.Format(time.RFC3339Nano)})
				rawBytes, err := bson.Marshal(raw)
				if err != nil {
					panic(fmt.Sprintf("sample: advisory_raw content: %v", err))
				}
				sum := sha256.Sum256(rawBytes)
				hash := "sha256:" + hex.EncodeToString(sum[:])
				content := bson.D{{Key: "format", Value: rv.format}, {Key: "spec_version", Value: rv.spec}}
				if chance(r, 0.15) {
					blobID := fs.put(fsIDs.at(fetched), "advisory_raw/"+upstream+".json", "application/json", mustExtJSON(raw), fetched, bson.D{{Key: "tenant", Value: t}})
					content = append(content, bson.E{Key: "gridFsObjectId", Value: blobID})
				} else {
					content = append(content, bson.E{Key: "raw", Value: raw})
				}
				id := ids.at(fetched)
				g.put(c, g.rawAdvisoryDoc(r, id, t, v, upstream, cve, content, hash, fetched, prev))
				prev = id
				fetched = fetched.Add(time.Duration(1+r.IntN(20)) * 24 * time.Hour)
				n++
			}
		}
	}
	at := g.asOf.AddDate(0, -1, 0)

	both := fixedOID("advisory_raw/inline-and-gridfs")
	raw := g.rawAdvisoryContent(r, "osv", "OSV-2026-both", "CVE-2026-41001", 1)
	blob := fs.put(fixedOID("fs.files/inline-and-gridfs"), "advisory_raw/OSV-2026-both.json", "application/json", mustExtJSON(raw), at, bson.D{{Key: "tenant", Value: "default"}})
	g.put(c, g.rawAdvisoryDoc(r, both, "default", 3, "OSV-2026-both", "CVE-2026-41001",
		bson.D{{Key: "format", Value: "osv"}, {Key: "spec_version", Value: "1.6.0"}, {Key: "raw", Value: raw}, {Key: "gridFsObjectId", Value: blob}},
		"sha256:"+fixedHex("advisory_raw/both-hash", 64), at, nil))
	g.plant(c, both, KindUnmappable, ExpectReject, "content", "content holds both inline raw and gridFsObjectId")

	sup := fixedOID("advisory_raw/supersedes-missing")
	missing := fixedOID("advisory_raw/purged-revision")
	g.put(c, g.rawAdvisoryDoc(r, sup, "urn:tenant:acme", 0, "RHSA-2026:0042", "CVE-2026-41002",
		bson.D{{Key: "format", Value: "csaf"}, {Key: "spec_version", Value: "2.0"}, {Key: "raw", Value: g.rawAdvisoryContent(r, "redhat", "RHSA-2026:0042", "CVE-2026-41002", 2)}},
		"sha256:"+fixedHex("advisory_raw/supersedes-hash", 64), at, missing))
	g.plant(c, sup, KindQuirk, ExpectLoad, "supersedes", "supersedes "+missing.Hex()+", which no longer exists: no reference, loads")

	nest := fixedOID("advisory_raw/nested-array")
	content := g.rawAdvisoryContent(r, "osv", "OSV-2026-nested", "CVE-2026-41003", 1)
	content = append(content, bson.E{Key: "database_specific", Value: bson.D{{Key: "cvss_vectors", Value: bson.A{bson.A{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "7.5"}}}}})
	g.put(c, g.rawAdvisoryDoc(r, nest, "urn:tenant:initech", 3, "OSV-2026-nested", "CVE-2026-41003",
		bson.D{{Key: "format", Value: "osv"}, {Key: "spec_version", Value: "1.6.0"}, {Key: "raw", Value: content}},
		"sha256:"+fixedHex("advisory_raw/nested-hash", 64), at, nil))
	g.plant(c, nest, KindQuirk, ExpectLoad, "content.raw.database_specific.cvss_vectors", "an array nested directly in an array (jsonb holds it; FerretDB refuses it)")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mustExtJSON is the relaxed Extended JSON of a generated document, as a connector would have
// stored the upstream JSON in GridFS.
func mustExtJSON(d bson.D) []byte {
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		panic(fmt.Sprintf("sample: extjson: %v", err))
	}
	return b
}

func (g *gen) concelierTierC() {
	c := g.c(ConcelierDB, "jobs")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for range g.n(15) {
		src := pick(r, sourceDefs).name
		at := g.ago(r, 0, 30)
		g.put(c, bson.D{
			{Key: "_id", Value: ids.at(at)},
			{Key: "kind", Value: "source:" + src + ":" + pick(r, []string{"fetch", "parse", "map"})},
			{Key: "state", Value: pick(r, []string{"succeeded", "succeeded", "failed", "running"})},
			{Key: "trigger", Value: pick(r, []string{"scheduler", "manual", "api"})},
			{Key: "parameters", Value: bson.D{{Key: "since", Value: dt(at.Add(-24 * time.Hour))}}},
			{Key: "createdAt", Value: dt(at)},
			{Key: "startedAt", Value: dt(at.Add(time.Second))},
			{Key: "completedAt", Value: nullable(r, 0.2, dt(at.Add(time.Duration(1+r.IntN(600))*time.Second)))},
			{Key: "error", Value: nil},
		})
	}
	c = g.c(ConcelierDB, "locks")
	r = g.rng(c.Namespace())
	for _, name := range []string{"job:source:nvd:fetch", "job:source:ghsa:fetch", "job:export:json"} {
		at := g.asOf.Add(-time.Duration(r.IntN(300)) * time.Second)
		g.put(c, bson.D{{Key: "_id", Value: name}, {Key: "holder", Value: "concelier-" + randHex(r, 6)}, {Key: "acquiredAt", Value: dt(at)}, {Key: "ttlAt", Value: dt(at.Add(5 * time.Minute))}})
	}
}

// ---------------------------------------------------------------- excititor

var (
	vexProviders = []struct{ id, format, base string }{
		{"excititor:redhat", "csaf", "https://access.redhat.com/security/data/csaf/v2/vex/"},
		{"excititor:suse", "csaf", "https://ftp.suse.com/pub/projects/security/csaf-vex/"},
		{"excititor:ubuntu", "openvex", "https://ubuntu.com/security/vex/"},
		{"excititor:oracle", "csaf", "https://www.oracle.com/docs/tech/security-alerts/csaf/"},
		{"excititor:cisco", "csaf", "https://sec.cloudapps.cisco.com/security/center/csaf/"},
		{"excititor:stellaops", "cyclonedx", "https://vex.stella-ops.org/cyclonedx/"},
	}
	vexStatuses   = []string{"affected", "not_affected", "fixed", "under_investigation"}
	justification = []string{"component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path", "inline_mitigations_already_exist"}
	productKeys   = []string{
		"pkg:rpm/redhat/openssl@3.0.7-27.el9", "pkg:rpm/redhat/glibc@2.34-100.el9", "pkg:rpm/redhat/curl@7.76.1-29.el9",
		"pkg:deb/ubuntu/libxml2@2.9.14+dfsg-1.3ubuntu3", "pkg:deb/ubuntu/openssh@1:9.6p1-3ubuntu13", "pkg:deb/debian/zlib@1:1.2.13.dfsg-1",
		"pkg:npm/lodash@4.17.20", "pkg:npm/express@4.18.2", "pkg:pypi/jinja2@3.1.2", "pkg:pypi/urllib3@1.26.18",
		"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "pkg:golang/golang.org/x/net@v0.17.0",
		"pkg:oci/stellaops-web@sha256:4f1c0ffee0d1?repository_url=registry.stella-ops.org", "pkg:oci/checkout@sha256:9a8b7c6d5e4f?repository_url=ghcr.io/acme",
		"cpe:2.3:a:oracle:mysql:8.0.35:*:*:*:*:*:*:*", "cpe:2.3:o:cisco:ios_xe:17.9.4:*:*:*:*:*:*:*",
	}
)

func (g *gen) excititor() {
	r := g.rng("excititor.vulnerabilities")
	var vulns []string
	seen := map[string]bool{} // the planted ones (CVE-2026-42000..42006) are reserved
	for k := 42000; k <= 42006; k++ {
		seen[fmt.Sprintf("CVE-2026-%d", k)] = true
	}
	for len(vulns) < g.n(60) {
		v := fmt.Sprintf("CVE-%d-%d", 2021+r.IntN(6), 1000+r.IntN(59000))
		if !seen[v] {
			seen[v] = true
			vulns = append(vulns, v)
		}
	}
	digests := g.vexRaw(vulns)
	g.vexStatements(vulns, digests)
	obs := g.vexObservations(vulns, digests)
	g.vexLinksets(obs)
	g.vexConsensus(vulns)
	c := g.c(ExcititorDB, "vex.cache")
	r = g.rng(c.Namespace())
	for _, t := range tenants {
		for range g.n(3) {
			at := g.ago(r, 0, 2)
			g.put(c, bson.D{
				{Key: "_id", Value: "cache:" + randHex(r, 24)},
				{Key: "tenant", Value: t},
				{Key: "querySignature", Value: "vulnerabilityId=" + pick(r, vulns) + "&productKey=" + neturl.QueryEscape(pick(r, productKeys))},
				{Key: "format", Value: pick(r, []string{"json", "csaf", "openvex"})},
				{Key: "artifact", Value: bson.D{{Key: "digest", Value: "sha256:" + randHex(r, 64)}, {Key: "size", Value: int64(1000 + r.IntN(90000))}}},
				{Key: "cachedAt", Value: dt(at)},
				{Key: "expiresAt", Value: dt(at.Add(24 * time.Hour))},
			})
		}
	}
}

// vexContent renders a small VEX document of the provider's format as its JSON bytes:
// encoding/json sorts map keys, so the bytes, and the digest over them, are deterministic.
func vexContent(format, vuln, product, status, docID string) []byte {
	var v any
	switch format {
	case "csaf":
		v = map[string]any{
			"document":        map[string]any{"category": "csaf_vex", "csaf_version": "2.0", "title": vuln + " VEX", "tracking": map[string]any{"id": docID, "status": "final", "version": "1"}},
			"product_tree":    map[string]any{"full_product_names": []any{map[string]any{"name": product, "product_id": "P1", "product_identification_helper": map[string]any{"purl": product}}}},
			"vulnerabilities": []any{map[string]any{"cve": vuln, "product_status": map[string]any{csafStatus(status): []string{"P1"}}}},
		}
	case "openvex":
		v = map[string]any{
			"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://vex.example/" + docID, "author": "Ubuntu Security Team", "version": 1,
			"statements": []any{map[string]any{"vulnerability": map[string]any{"name": vuln}, "products": []any{map[string]any{"@id": product}}, "status": status}},
		}
	default:
		v = map[string]any{
			"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:" + docID, "version": 1,
			"vulnerabilities": []any{map[string]any{"id": vuln, "analysis": map[string]any{"state": status}, "affects": []any{map[string]any{"ref": product}}}},
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sample: vex content: %v", err))
	}
	return b
}

func csafStatus(s string) string {
	return map[string]string{"affected": "known_affected", "not_affected": "known_not_affected", "fixed": "fixed", "under_investigation": "under_investigation"}[s]
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// vexRaw returns the digests of each tenant's raw documents.
func (g *gen) vexRaw(vulns []string) [][]string {
	c := g.c(ExcititorDB, "vex.raw")
	r := g.rng(c.Namespace())
	fs := g.gridFS(ExcititorDB)
	fsIDs := g.oids(ExcititorDB + ".fs.files")
	out := make([][]string, len(tenants))
	doc := func(digest, t string, p int, at time.Time, content any, extra ...bson.E) bson.D {
		pv := vexProviders[p]
		d := bson.D{
			{Key: "_id", Value: digest},
			{Key: "digest", Value: digest},
			{Key: "tenant", Value: t},
			{Key: "providerId", Value: pv.id},
			{Key: "format", Value: pv.format},
			{Key: "sourceUri", Value: pv.base + strings.ToLower(strings.TrimPrefix(digest, "sha256:")[:12]) + ".json"},
			{Key: "retrievedAt", Value: dt(at)},
		}
		if id, ok := content.(bson.ObjectID); ok {
			d = append(d, bson.E{Key: "gridFsObjectId", Value: id})
		} else {
			d = append(d, bson.E{Key: "content", Value: bson.Binary{Subtype: 0, Data: content.([]byte)}})
		}
		meta := bson.D{{Key: "contentType", Value: "application/json"}, {Key: "etag", Value: `"` + digest[7:23] + `"`}}
		return append(d, bson.E{Key: "metadata", Value: append(meta, extra...)})
	}
	for ti, t := range tenants {
		for i := range g.n(50) {
			p := r.IntN(len(vexProviders))
			at := g.ago(r, 0, 200)
			body := vexContent(vexProviders[p].format, pick(r, vulns), pick(r, productKeys), pick(r, vexStatuses), fmt.Sprintf("%s-%d-%s", tenantShort(t), i, randHex(r, 8)))
			digest := digestOf(body)
			var content any = body
			if chance(r, 0.15) {
				content = fs.put(fsIDs.at(at), "vex.raw/"+digest, "application/json", body, at, bson.D{{Key: "tenant", Value: t}, {Key: "digest", Value: digest}})
			}
			g.put(c, doc(digest, t, p, at, content))
			out[ti] = append(out[ti], digest)
		}
	}

	// The window's edges, with ids that are the digests of their content (so not windowEdges).
	cut := windows[5].Cutoff(g.asOf)
	for _, e := range edgeOffsets {
		body := vexContent("openvex", "CVE-2026-42000", productKeys[3], "fixed", "edge-"+e.label)
		digest := digestOf(body)
		g.put(c, doc(digest, "default", 2, cut.Add(e.off), body))
		g.plant(c, digest, KindEdge, e.expect, "retrievedAt", fmt.Sprintf("retrievedAt = as-of - 90d %+ds: %s the 90-day window", int(e.off/time.Second), e.what))
	}

	claimed := vexContent("csaf", "CVE-2026-42001", productKeys[0], "fixed", "digest-mismatch-original")
	digest := digestOf(claimed)
	g.put(c, doc(digest, "urn:tenant:acme", 0, g.asOf.Add(-5*24*time.Hour), vexContent("csaf", "CVE-2026-42001", productKeys[0], "affected", "digest-mismatch-altered")))
	g.plant(c, digest, KindUnmappable, ExpectReject, "content", "inline content does not hash to the _id digest")

	body := vexContent("csaf", "CVE-2026-42002", productKeys[1], "not_affected", "dotted-metadata-key")
	dotted := digestOf(body)
	g.put(c, doc(dotted, "urn:tenant:globex", 1, g.asOf.Add(-6*24*time.Hour), body, bson.E{Key: "csaf.tracking.id", Value: "SUSE-SU-2026:1234-1"}))
	g.plant(c, dotted, KindQuirk, ExpectLoad, "metadata.csaf.tracking.id", "a dotted key in metadata (jsonb holds it; FerretDB refuses it)")
	return out
}

func (g *gen) statementDoc(r *rand.Rand, id bson.ObjectID, t, vuln, product, status, digest string, created time.Time) bson.D {
	var just, impact, action any
	switch status {
	case "not_affected":
		just = pick(r, justification)
		impact = "The vulnerable code path is not reachable in the shipped configuration."
	case "affected":
		action = "Update to the fixed package version when available."
	}
	issued := created.Add(-time.Duration(r.IntN(72)) * time.Hour)
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "vulnerabilityId", Value: vuln},
		{Key: "productKey", Value: product},
		{Key: "status", Value: status},
		{Key: "justification", Value: just},
		{Key: "impactStatement", Value: impact},
		{Key: "actionStatement", Value: action},
		{Key: "providerId", Value: pick(r, vexProviders).id},
		{Key: "documentDigest", Value: digest},
		{Key: "issuedAt", Value: dt(issued)},
		{Key: "lastUpdatedAt", Value: dt(created.Add(time.Duration(r.IntN(30*24)) * time.Hour))},
		{Key: "createdAt", Value: dt(created)},
	}
}

func (g *gen) vexStatements(vulns []string, digests [][]string) {
	c := g.c(ExcititorDB, "vex.statements")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for ti, t := range tenants {
		for range g.n(120) {
			at := g.ago(r, 0, 300)
			g.put(c, g.statementDoc(r, ids.at(at), t, pick(r, vulns), pick(r, productKeys), pick(r, vexStatuses), pick(r, digests[ti]), at))
		}
	}
	bad := fixedOID("vex.statements/unknown-status")
	g.put(c, g.statementDoc(r, bad, "urn:tenant:initech", "CVE-2026-42003", productKeys[6], "unknown", digests[3][0], g.asOf.Add(-7*24*time.Hour)))
	g.plant(c, bad, KindUnmappable, ExpectReject, "status", `status "unknown" is not in the CHECK list (affected, not_affected, fixed, under_investigation)`)
}

type obsRef struct {
	id               bson.ObjectID
	vuln, product    string
	provider, status string
}

func (g *gen) observationDoc(r *rand.Rand, id bson.ObjectID, t, obsID string, o obsRef, digest string, created time.Time, score any) bson.D {
	var just any
	if o.status == "not_affected" {
		just = bson.D{{Key: "type", Value: pick(r, justification)}, {Key: "text", Value: "not reachable in default configuration"}}
	}
	purls, cpes := []string{}, []string{}
	if strings.HasPrefix(o.product, "cpe:") {
		cpes = append(cpes, o.product)
	} else {
		purls = append(purls, o.product)
		if chance(r, 0.3) {
			purls = append(purls, pick(r, productKeys[:12]))
		}
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "observationId", Value: obsID},
		{Key: "vulnerabilityId", Value: o.vuln},
		{Key: "productKey", Value: o.product},
		{Key: "providerId", Value: o.provider},
		{Key: "status", Value: o.status},
		{Key: "justification", Value: just},
		{Key: "confidence", Value: bson.D{{Key: "level", Value: pick(r, []string{"high", "medium", "low"})}, {Key: "score", Value: score}, {Key: "method", Value: "provider-attestation"}}},
		{Key: "signals", Value: bson.D{
			{Key: "severity", Value: bson.D{{Key: "scheme", Value: "cvss-3.1"}, {Key: "score", Value: float64(r.IntN(101)) / 10}}},
			{Key: "kev", Value: chance(r, 0.05)},
			{Key: "epss", Value: math.Round(r.Float64()*10000) / 10000},
		}},
		{Key: "documentDigest", Value: digest},
		{Key: "purls", Value: purls},
		{Key: "cpes", Value: cpes},
		{Key: "anchors", Value: []string{"#/vulnerabilities/0", "#/product_tree/full_product_names/0"}},
		{Key: "createdAt", Value: dt(created)},
	}
}

// vexObservations returns the observations per tenant that linksets may reference.
func (g *gen) vexObservations(vulns []string, digests [][]string) [][]obsRef {
	c := g.c(ExcititorDB, "vex.observations")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	out := make([][]obsRef, len(tenants))
	for ti, t := range tenants {
		for i := range g.n(100) {
			at := g.ago(r, 0, 300)
			o := obsRef{id: ids.at(at), vuln: pick(r, vulns), product: pick(r, productKeys), provider: pick(r, vexProviders).id, status: pick(r, vexStatuses)}
			obsID := fmt.Sprintf("%s:%s:%05d", o.provider, o.vuln, i)
			g.put(c, g.observationDoc(r, o.id, t, obsID, o, pick(r, digests[ti]), at, math.Round(r.Float64()*100)/100))
			out[ti] = append(out[ti], o)
		}
	}
	win, lose := orderedOIDs("vex.observations/dup-a", "vex.observations/dup-b")
	o := obsRef{vuln: "CVE-2026-42004", product: productKeys[7], provider: "excititor:stellaops", status: "affected"}
	for _, id := range []bson.ObjectID{win, lose} {
		o.id = id
		g.put(c, g.observationDoc(r, id, "urn:tenant:globex", "excititor:stellaops:CVE-2026-42004:dup", o, digests[2][0], g.asOf.Add(-4*24*time.Hour), 0.9))
	}
	g.plant(c, lose, KindDuplicate, ExpectReject, "observationId", "same tenant+observationId as "+win.Hex()+", which has the smaller _id and wins")

	nan := fixedOID("vex.observations/nan-confidence")
	o = obsRef{id: nan, vuln: "CVE-2026-42005", product: productKeys[8], provider: "excititor:ubuntu", status: "under_investigation"}
	g.put(c, g.observationDoc(r, nan, "default", "excititor:ubuntu:CVE-2026-42005:nan", o, digests[0][0], g.asOf.Add(-4*24*time.Hour), math.NaN()))
	g.plant(c, nan, KindQuirk, ExpectLoad, "confidence.score", `confidence.score is a NaN double (jsonb gets {"$numberDouble": "NaN"}; FerretDB refuses it)`)
	return out
}

func (g *gen) linksetDoc(r *rand.Rand, id bson.ObjectID, t string, members []obsRef, extra []bson.ObjectID, created time.Time) bson.D {
	obs := bson.A{}
	var conflicts bson.A
	for _, m := range members {
		obs = append(obs, m.id)
		if m.status != members[0].status {
			conflicts = append(conflicts, bson.D{{Key: "providerId", Value: m.provider}, {Key: "status", Value: m.status}, {Key: "reason", Value: "status disagrees with " + members[0].provider}})
		}
	}
	for _, x := range extra {
		obs = append(obs, x)
	}
	if conflicts == nil {
		conflicts = bson.A{}
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "linksetId", Value: "ls:" + members[0].vuln + ":" + randHex(r, 12)},
		{Key: "vulnerabilityId", Value: members[0].vuln},
		{Key: "productKey", Value: members[0].product},
		{Key: "conflicts", Value: conflicts},
		{Key: "observationIds", Value: obs},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(created.Add(time.Duration(r.IntN(240)) * time.Hour))},
	}
}

func (g *gen) vexLinksets(obs [][]obsRef) {
	c := g.c(ExcititorDB, "vex.linksets")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for ti, t := range tenants {
		for range g.n(40) {
			at := g.ago(r, 0, 250)
			g.put(c, g.linksetDoc(r, ids.at(at), t, choose(r, obs[ti], 1+r.IntN(4)), nil, at))
		}
	}
	o := fixedOID("vex.linksets/missing-observation")
	gone := fixedOID("vex.observations/never-existed")
	g.put(c, g.linksetDoc(r, o, "urn:tenant:acme", obs[1][:2], []bson.ObjectID{gone}, g.asOf.Add(-9*24*time.Hour)))
	g.plant(c, o, KindOrphan, ExpectReject, "observationIds.2", "observationIds names "+gone.Hex()+", which does not exist: the whole linkset is rejected")
}

func (g *gen) consensusDoc(r *rand.Rand, id bson.ObjectID, t, vuln, product string, at time.Time) bson.D {
	status := pick(r, vexStatuses)
	var sources bson.A
	for _, p := range choose(r, vexProviders, 1+r.IntN(3)) {
		sources = append(sources, bson.D{{Key: "providerId", Value: p.id}, {Key: "status", Value: status}, {Key: "weight", Value: pick(r, []float64{1, 0.8, 0.5})}})
	}
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "tenant", Value: t},
		{Key: "vulnerabilityId", Value: vuln},
		{Key: "productKey", Value: product},
		{Key: "status", Value: status},
		{Key: "sources", Value: sources},
		{Key: "policyRevisionId", Value: fmt.Sprintf("vex-policy@%d", 1+r.IntN(5))},
		{Key: "calculatedAt", Value: dt(at)},
	}
}

func (g *gen) vexConsensus(vulns []string) {
	c := g.c(ExcititorDB, "vex.consensus")
	r, ids := g.rng(c.Namespace()), g.oids(c.Namespace())
	for _, t := range tenants {
		used := map[string]bool{}
		for range g.n(30) {
			var vuln, product string
			for {
				vuln, product = pick(r, vulns), pick(r, productKeys)
				if !used[vuln+"|"+product] {
					break
				}
			}
			used[vuln+"|"+product] = true
			// Several calculations over time; the latest calculatedAt wins, the rest are
			// superseded. Distinct times, so the bulk never needs the _id tie-break.
			at := g.ago(r, 30, 200)
			for range 1 + r.IntN(4) {
				g.put(c, g.consensusDoc(r, ids.at(at), t, vuln, product, at))
				at = at.Add(time.Duration(1+r.IntN(20*24)) * time.Hour)
			}
		}
	}
	// A tie on calculatedAt: the greatest _id wins.
	lo, hi := orderedOIDs("vex.consensus/tie-a", "vex.consensus/tie-b")
	at := g.asOf.Add(-2 * 24 * time.Hour)
	for _, id := range []bson.ObjectID{hi, lo} {
		g.put(c, g.consensusDoc(r, id, "urn:tenant:acme", "CVE-2026-42006", productKeys[9], at))
	}
	g.plant(c, lo, KindQuirk, ExpectSkip, "calculatedAt", "same tenant+vulnerabilityId+productKey and calculatedAt as "+hi.Hex()+", whose _id is greater: superseded")
}

// ---------------------------------------------------------------- dump

// WriteDump writes colls as a mongodump directory under dir (<dir>/<db>/<coll>.bson plus
// .metadata.json), both compressed with comp. Files of another compression left there for the
// same collections by an earlier run are removed first, so that the dump is unambiguous; other
// files in dir are left alone.
func WriteDump(ctx context.Context, dir string, colls []Collection, comp dump.Compression) error {
	w := dump.DirWriter{Root: dir, Data: comp, Metadata: comp}
	for _, c := range colls {
		if err := removeOtherVariants(filepath.Join(dir, c.DB), dump.EscapeCollectionName(c.Name), comp); err != nil {
			return err
		}
		meta, err := metadataJSON(c)
		if err != nil {
			return err
		}
		docs := c.Docs
		if _, err := w.WriteCollection(ctx, c.DB, c.Name, meta, func(emit func(bson.Raw) error) error {
			for _, d := range docs {
				if err := emit(d); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("sample dump %s: %w", c.Namespace(), err)
		}
	}
	return nil
}

func removeOtherVariants(dir, stem string, keep dump.Compression) error {
	for _, comp := range []dump.Compression{dump.None, dump.Gzip, dump.Zstd} {
		if comp == keep {
			continue
		}
		sfx := map[dump.Compression]string{dump.None: "", dump.Gzip: ".gz", dump.Zstd: ".zst"}[comp]
		for _, name := range []string{stem + ".bson" + sfx, stem + ".metadata.json" + sfx} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("sample dump: remove stale %s: %w", name, err)
			}
		}
	}
	return nil
}

// indexes are the secondary indexes the services create (none unique where the sample plants
// duplicates: those indexes never existed in the deployments the duplicates come from).
var indexes = map[string][]bson.D{
	AuthorityDB + ".authority_users":          {{{Key: "tenant", Value: int32(1)}, {Key: "username", Value: int32(1)}}},
	AuthorityDB + ".authority_tokens":         {{{Key: "tenant", Value: int32(1)}, {Key: "subjectId", Value: int32(1)}}, {{Key: "expiresAt", Value: int32(1)}}},
	AuthorityDB + ".authority_login_attempts": {{{Key: "tenant", Value: int32(1)}, {Key: "occurredAt", Value: int32(-1)}}},
	SchedulerDB + ".runs":                     {{{Key: "tenantId", Value: int32(1)}, {Key: "scheduleId", Value: int32(1)}, {Key: "createdAt", Value: int32(-1)}}},
	SchedulerDB + ".graph_jobs":               {{{Key: "tenantId", Value: int32(1)}, {Key: "status", Value: int32(1)}, {Key: "createdAt", Value: int32(1)}}},
	ConcelierDB + ".advisory":                 {{{Key: "advisoryKey", Value: int32(1)}}, {{Key: "modifiedAt", Value: int32(-1)}}},
	ConcelierDB + ".alias":                    {{{Key: "scheme", Value: int32(1)}, {Key: "value", Value: int32(1)}}},
	ConcelierDB + ".affected":                 {{{Key: "purl", Value: int32(1)}}},
	ConcelierDB + ".fs.files":                 {{{Key: "filename", Value: int32(1)}, {Key: "uploadDate", Value: int32(1)}}},
	ConcelierDB + ".fs.chunks":                {{{Key: "files_id", Value: int32(1)}, {Key: "n", Value: int32(1)}}},
	ExcititorDB + ".vex.statements":           {{{Key: "tenant", Value: int32(1)}, {Key: "vulnerabilityId", Value: int32(1)}, {Key: "productKey", Value: int32(1)}}},
	ExcititorDB + ".vex.observations":         {{{Key: "tenant", Value: int32(1)}, {Key: "observationId", Value: int32(1)}}},
	ExcititorDB + ".vex.consensus":            {{{Key: "tenant", Value: int32(1)}, {Key: "vulnerabilityId", Value: int32(1)}, {Key: "productKey", Value: int32(1)}, {Key: "calculatedAt", Value: int32(-1)}}},
	ExcititorDB + ".fs.files":                 {{{Key: "filename", Value: int32(1)}, {Key: "uploadDate", Value: int32(1)}}},
	ExcititorDB + ".fs.chunks":                {{{Key: "files_id", Value: int32(1)}, {Key: "n", Value: int32(1)}}},
}

// metadataJSON is the collection's .metadata.json as mongodump writes it: canonical Extended
// JSON with options, indexes (_id first), a UUID (derived from the namespace, so it is
// deterministic), the collection name and type.
func metadataJSON(c Collection) ([]byte, error) {
	idx := bson.A{bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}}
	for _, key := range indexes[c.Namespace()] {
		var parts []string
		for _, e := range key {
			parts = append(parts, fmt.Sprintf("%s_%d", e.Key, e.Value))
		}
		spec := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: key}, {Key: "name", Value: strings.Join(parts, "_")}}
		if strings.HasSuffix(c.Name, "fs.chunks") {
			spec = append(spec, bson.E{Key: "unique", Value: true}) // GridFS's own, always unique
		}
		idx = append(idx, spec)
	}
	sum := sha256.Sum256([]byte("stellaops-sample/uuid/" + c.Namespace()))
	b, err := bson.MarshalExtJSON(bson.D{
		{Key: "options", Value: bson.D{}},
		{Key: "indexes", Value: idx},
		{Key: "uuid", Value: hex.EncodeToString(sum[:16])},
		{Key: "collectionName", Value: c.Name},
		{Key: "type", Value: "collection"},
	}, true, false)
	if err != nil {
		return nil, fmt.Errorf("sample dump %s: metadata: %w", c.Namespace(), err)
	}
	return b, nil
}

// ---------------------------------------------------------------- live load

// LoadOptions tunes Load.
type LoadOptions struct {
	// FerretSafe leaves out the documents FerretDB refuses (Decimal128, NaN/±Inf, NUL in
	// strings, duplicate, $-prefixed or dotted keys, arrays directly in arrays, MinKey/MaxKey,
	// JavaScript), reporting each in LoadResult.Skipped, so that the rest loads into the test
	// server. The dump keeps them all.
	FerretSafe bool
	// Drop drops each collection before inserting, so that a second Load of the same sample
	// does not fail on duplicate _ids. It drops only the collections being loaded.
	Drop bool
	// BatchSize is the number of documents per InsertMany; 0 means 500.
	BatchSize int
}

// LoadResult counts what Load did.
type LoadResult struct {
	Inserted int
	Skipped  []Skipped
}

// Skipped is a document a FerretDB-safe load left out.
type Skipped struct {
	DB, Collection, ID, Why string
}

// Load inserts colls into the server behind client, collection by collection in order, in
// ordered batches. It stops at the first error (a duplicate _id from an earlier load without
// Drop, a document the server refuses), which names the collection.
func Load(ctx context.Context, client *mongo.Client, colls []Collection, opt LoadOptions) (LoadResult, error) {
	var res LoadResult
	batch := opt.BatchSize
	if batch <= 0 {
		batch = 500
	}
	for _, c := range colls {
		coll := client.Database(c.DB).Collection(c.Name)
		if opt.Drop {
			if err := coll.Drop(ctx); err != nil {
				return res, fmt.Errorf("sample load %s: drop: %w", c.Namespace(), err)
			}
		}
		var docs []any
		flush := func() error {
			if len(docs) == 0 {
				return nil
			}
			r, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
			if r != nil {
				res.Inserted += len(r.InsertedIDs)
			}
			docs = docs[:0]
			if err != nil {
				return fmt.Errorf("sample load %s: %w", c.Namespace(), err)
			}
			return nil
		}
		for _, d := range c.Docs {
			if opt.FerretSafe {
				if why := FerretUnsafe(d); why != "" {
					res.Skipped = append(res.Skipped, Skipped{DB: c.DB, Collection: c.Name, ID: rawID(d), Why: why})
					continue
				}
			}
			docs = append(docs, d)
			if len(docs) == batch {
				if err := flush(); err != nil {
					return res, err
				}
			}
		}
		if err := flush(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func rawID(d bson.Raw) string {
	v, err := d.LookupErr("_id")
	if err != nil {
		return ""
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	if s, ok := v.StringValueOK(); ok {
		return s
	}
	return v.String()
}

// FerretUnsafe says why FerretDB (v1) would refuse doc, or "" if it takes it.
func FerretUnsafe(doc bson.Raw) string {
	return ferretDoc(doc, "", false)
}

func ferretDoc(doc bson.Raw, path string, isArray bool) string {
	elems, err := doc.Elements()
	if err != nil {
		return "invalid BSON at " + orRoot(path) + ": " + err.Error()
	}
	var keys []string
	for _, e := range elems {
		k := e.Key()
		p := k
		if path != "" {
			p = path + "." + k
		}
		if !isArray {
			switch {
			case strings.HasPrefix(k, "$"):
				return "$-prefixed key " + p
			case strings.Contains(k, "."):
				return "dotted key " + p
			case slices.Contains(keys, k):
				return "duplicate key " + p
			}
			keys = append(keys, k)
		}
		v := e.Value()
		switch v.Type {
		case bson.TypeDecimal128:
			return "Decimal128 at " + p
		case bson.TypeDouble:
			if f := v.Double(); math.IsNaN(f) || math.IsInf(f, 0) {
				return "NaN or infinity at " + p
			}
		case bson.TypeString:
			if strings.ContainsRune(v.StringValue(), 0) {
				return "NUL in string at " + p
			}
		case bson.TypeMinKey, bson.TypeMaxKey, bson.TypeJavaScript, bson.TypeCodeWithScope:
			return v.Type.String() + " at " + p
		case bson.TypeEmbeddedDocument:
			if why := ferretDoc(v.Document(), p, false); why != "" {
				return why
			}
		case bson.TypeArray:
			if isArray {
				return "array inside an array at " + p
			}
			if why := ferretDoc(bson.Raw(v.Array()), p, true); why != "" {
				return why
			}
		}
	}
	return ""
}

func orRoot(p string) string {
	if p == "" {
		return "the top level"
	}
	return p
}
