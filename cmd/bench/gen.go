package main

// Synthetic source documents. Document i of a shape depends only on (shape seed, i), so a
// smaller run's documents are a prefix of a larger run's, and every run of the same size reads
// the same bytes. Only what FerretDB accepts is generated (no Decimal128, nested arrays, NaN,
// NUL, $-prefixed or dotted keys), so the same documents serve the dump and the live source.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// genBase is the fixed clock of generated dates: the documents must not change between runs.
var genBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// benchAsOf is the as-of of every conversion the benchmark makes (--as-of): fixed, so that the
// Tier B windows keep the same generated documents whenever the benchmark runs.
var benchAsOf = genBase

// docGen appends document i to dst; rng is seeded for i.
type docGen func(dst []byte, i int, rng *rand.Rand) []byte

var words = strings.Fields(`a an the of in on for to with by from via when which that this
allows attacker remote local authenticated unauthenticated user users crafted request requests
response header headers payload input inputs buffer overflow heap stack memory corruption use
after free null pointer dereference denial service injection command sql cross site scripting
forgery server side template path traversal directory arbitrary code execution privilege
escalation information disclosure sensitive data exposure improper validation neutralization
special elements output encoding certificate verification signature bypass authentication
authorization access control race condition integer underflow out bounds read write resource
exhaustion infinite loop regular expression deserialization untrusted xml external entity
component library package version versions prior before fixed affected vulnerable issue issues
vulnerability vulnerabilities function method module parser handler endpoint api configuration
default setting settings token session cookie redirect open kernel driver firmware container
image registry network protocol tls http https dns ldap smtp websocket grpc json yaml archive
upload download file files filename symlink permission permissions could can may might be is
are was were has have been leads lead resulting result results causing cause causes exploit
exploited exploitation successful successfully specially via through`)

// appendText appends about n bytes of prose.
func appendText(dst []byte, n int, rng *rand.Rand) []byte {
	start := len(dst)
	sentence := 0
	for len(dst)-start < n {
		w := words[rng.IntN(len(words))]
		if sentence == 0 {
			dst = append(dst, w[0]-'a'+'A')
			dst = append(dst, w[1:]...)
		} else {
			dst = append(dst, ' ')
			dst = append(dst, w...)
		}
		sentence++
		if sentence > 8+rng.IntN(14) {
			dst = append(dst, ". "...)
			sentence = 0
		}
	}
	return dst[:start+n]
}

func text(n int, rng *rand.Rand) string { return string(appendText(nil, n, rng)) }

func hexString(n int, rng *rand.Rand) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func millis(t time.Time) int64 { return t.UnixMilli() }

// objectID is a deterministic ObjectId: a timestamp and the document number.
func objectID(i int, ts time.Time) [12]byte {
	var id [12]byte
	binary.BigEndian.PutUint32(id[0:4], uint32(ts.Unix()))
	binary.BigEndian.PutUint64(id[4:12], uint64(i))
	return id
}

// doc wraps bsoncore's append functions; the builders cannot fail on well-nested use, so an
// error there is a bug in this file.
type doc struct{ b []byte }

func (d *doc) start() int32 {
	var idx int32
	idx, d.b = bsoncore.AppendDocumentStart(d.b)
	return idx
}

func (d *doc) subdoc(key string) int32 {
	var idx int32
	idx, d.b = bsoncore.AppendDocumentElementStart(d.b, key)
	return idx
}

func (d *doc) array(key string) int32 {
	var idx int32
	idx, d.b = bsoncore.AppendArrayElementStart(d.b, key)
	return idx
}

func (d *doc) end(idx int32) {
	var err error
	if d.b, err = bsoncore.AppendDocumentEnd(d.b, idx); err != nil {
		panic(fmt.Sprintf("bench: document builder: %v", err))
	}
}

func (d *doc) str(k, v string)         { d.b = bsoncore.AppendStringElement(d.b, k, v) }
func (d *doc) i32(k string, v int32)   { d.b = bsoncore.AppendInt32Element(d.b, k, v) }
func (d *doc) f64(k string, v float64) { d.b = bsoncore.AppendDoubleElement(d.b, k, v) }
func (d *doc) boolean(k string, v bool) {
	d.b = bsoncore.AppendBooleanElement(d.b, k, v)
}
func (d *doc) date(k string, t time.Time) { d.b = bsoncore.AppendDateTimeElement(d.b, k, millis(t)) }
func (d *doc) oid(k string, id [12]byte)  { d.b = bsoncore.AppendObjectIDElement(d.b, k, id) }
func (d *doc) null(k string)              { d.b = bsoncore.AppendNullElement(d.b, k) }

// key is the array index key of element i.
func key(i int) string {
	switch i {
	case 0:
		return "0"
	case 1:
		return "1"
	case 2:
		return "2"
	}
	return fmt.Sprint(i)
}

var (
	sources    = []string{"nvd", "ghsa", "osv", "redhat", "debian", "ubuntu", "msrc", "cisco", "oracle", "vmware"}
	severities = []string{"critical", "high", "medium", "low", "none"}
	ecosystems = []string{"npm", "pypi", "maven", "nuget", "golang", "cargo", "gem", "deb", "rpm"}
	refKinds   = []string{"advisory", "patch", "fix", "report", "article", "web", "package", "evidence"}
	cweIDs     = []string{"CWE-79", "CWE-89", "CWE-787", "CWE-20", "CWE-125", "CWE-416", "CWE-22", "CWE-352", "CWE-434", "CWE-862", "CWE-476", "CWE-502"}
)

// genAdvisory is a Concelier advisory of 2–20 KiB (uniform): identifiers, dates, provenance,
// CVSS metrics, references, credits, CWEs, aliases, affected packages with version ranges, and
// a long description that brings it to its drawn size.
func genAdvisory(dst []byte, i int, rng *rand.Rand) []byte {
	size := 2048 + rng.IntN(18*1024+1)
	published := genBase.Add(-time.Duration(rng.IntN(3*365*24)) * time.Hour)
	modified := published.Add(time.Duration(rng.IntN(90*24)) * time.Hour)
	year := published.Year()
	advKey := fmt.Sprintf("CVE-%d-%07d", year, i)
	src := pick(rng, sources...)

	d := doc{b: dst}
	top := d.start()
	d.oid("_id", objectID(i, published))
	d.str("advisoryKey", advKey)
	d.str("sourceName", src)
	d.str("title", text(40+rng.IntN(80), rng))
	d.str("summary", text(120+rng.IntN(300), rng))
	d.str("severity", pick(rng, severities...))
	d.boolean("exploitKnown", rng.IntN(10) == 0)
	d.date("published", published)
	d.date("modified", modified)
	d.str("language", "en")

	p := d.subdoc("provenance")
	d.str("source", src)
	d.str("kind", "map")
	d.str("value", "https://"+src+".example.org/api/v2/"+advKey)
	d.date("recordedAt", modified)
	fm := d.array("fieldMask")
	for j, f := range []string{"title", "summary", "references", "cvssMetrics"} {
		d.str(key(j), f)
	}
	d.end(fm)
	d.end(p)

	al := d.array("aliases")
	na := 1 + rng.IntN(3)
	for j := 0; j < na; j++ {
		d.str(key(j), "GHSA-"+hexString(4, rng)+"-"+hexString(4, rng)+"-"+hexString(4, rng))
	}
	d.end(al)

	cv := d.array("cvssMetrics")
	for j, n := 0, 1+rng.IntN(3); j < n; j++ {
		m := d.subdoc(key(j))
		d.str("version", pick(rng, "3.1", "3.0", "4.0", "2.0"))
		d.str("vector", fmt.Sprintf("CVSS:3.1/AV:%s/AC:%s/PR:%s/UI:%s/S:%s/C:%s/I:%s/A:%s",
			pick(rng, "N", "A", "L", "P"), pick(rng, "L", "H"), pick(rng, "N", "L", "H"), pick(rng, "N", "R"),
			pick(rng, "U", "C"), pick(rng, "N", "L", "H"), pick(rng, "N", "L", "H"), pick(rng, "N", "L", "H")))
		d.f64("baseScore", float64(rng.IntN(101))/10)
		d.str("severity", pick(rng, severities...))
		d.str("source", pick(rng, sources...))
		d.end(m)
	}
	d.end(cv)

	cw := d.array("cwes")
	for j, n := 0, 1+rng.IntN(3); j < n; j++ {
		d.str(key(j), pick(rng, cweIDs...))
	}
	d.end(cw)

	cr := d.array("credits")
	for j, n := 0, rng.IntN(4); j < n; j++ {
		c := d.subdoc(key(j))
		d.str("name", text(10+rng.IntN(20), rng))
		d.str("contact", "mailto:researcher"+hexString(6, rng)+"@example.com")
		d.str("role", pick(rng, "finder", "reporter", "analyst", "remediation_developer"))
		d.end(c)
	}
	d.end(cr)

	af := d.array("affectedPackages")
	for j, n := 0, 1+rng.IntN(4); j < n; j++ {
		a := d.subdoc(key(j))
		eco := pick(rng, ecosystems...)
		name := strings.ReplaceAll(text(6+rng.IntN(14), rng), " ", "-")
		d.str("type", "semver")
		d.str("identifier", "pkg:"+eco+"/"+strings.ToLower(name))
		d.str("platform", eco)
		vr := d.array("versionRanges")
		for k, m := 0, 1+rng.IntN(2); k < m; k++ {
			r := d.subdoc(key(k))
			intro := fmt.Sprintf("%d.%d.%d", rng.IntN(5), rng.IntN(20), rng.IntN(30))
			fixed := fmt.Sprintf("%d.%d.%d", 5+rng.IntN(5), rng.IntN(20), rng.IntN(30))
			d.str("introducedVersion", intro)
			d.str("fixedVersion", fixed)
			d.str("rangeExpression", ">="+intro+" <"+fixed)
			d.str("rangeKind", "semver")
			d.end(r)
		}
		d.end(vr)
		st := d.array("statuses")
		d.str("0", pick(rng, "affected", "fixed", "known_not_affected"))
		d.end(st)
		d.end(a)
	}
	d.end(af)

	// References: about one per 1.5 KiB of the drawn size.
	rf := d.array("references")
	for j, n := 0, 1+size/1536; j < n; j++ {
		r := d.subdoc(key(j))
		d.str("url", "https://"+pick(rng, sources...)+".example.org/"+pick(rng, refKinds...)+"/"+hexString(16, rng))
		d.str("kind", pick(rng, refKinds...))
		d.str("sourceTag", pick(rng, sources...))
		d.str("summary", text(40+rng.IntN(160), rng))
		d.end(r)
	}
	d.end(rf)

	// The description fills the document up to its drawn size (element overhead: type byte,
	// key and NUL, length, terminating NUL, and the document's own NUL).
	const overhead = 1 + len("description") + 1 + 4 + 1 + 1
	start := len(d.b) - len(dst)
	n := size - start - overhead
	if n < 200 {
		n = 200
	}
	d.str("description", string(appendText(nil, n, rng)))
	d.end(top)
	return d.b
}

var (
	tenants  = []string{"default", "urn:tenant:acme", "urn:tenant:globex", "urn:tenant:initech", "urn:tenant:umbrella"}
	triggers = []string{"cron", "manual", "feedser", "vexer", "conselier"}
	states   = []string{"planning", "queued", "running", "completed", "error", "cancelled"}
)

// genSchedulerRun is a scheduler run of about 500 bytes: the shape of stellaops_scheduler.runs
// (modules.md), created within the 30 days before the fixed clock.
func genSchedulerRun(dst []byte, i int, rng *rand.Rand) []byte {
	created := genBase.Add(-time.Duration(rng.IntN(30*24*3600)) * time.Second)
	d := doc{b: dst}
	top := d.start()
	d.str("_id", fmt.Sprintf("run_%08d_%s", i, hexString(12, rng)))
	// Four runs in five belong to one of the generated schedules, and so to its tenant: the
	// transform checks that the parent is loaded and of the same tenant.
	if rng.IntN(5) == 0 {
		d.str("tenantId", pick(rng, tenants...))
		d.null("scheduleId")
	} else {
		k := rng.IntN(benchSchedules)
		d.str("tenantId", scheduleTenant(k))
		d.str("scheduleId", scheduleID(k))
	}
	d.str("trigger", pick(rng, triggers...))
	state := pick(rng, states...)
	d.str("state", state)
	st := d.subdoc("stats")
	cand := int32(rng.IntN(5000))
	d.i32("candidates", cand)
	d.i32("deduped", cand-int32(rng.IntN(int(cand)+1)/2))
	d.i32("queued", int32(rng.IntN(100)))
	d.i32("completed", int32(rng.IntN(int(cand)+1)))
	d.i32("deltas", int32(rng.IntN(50)))
	d.i32("newCriticals", int32(rng.IntN(5)))
	d.i32("newHigh", int32(rng.IntN(20)))
	d.end(st)
	rs := d.subdoc("reason")
	d.str("manualReason", text(20+rng.IntN(40), rng))
	d.str("feedserExportId", "exp_"+hexString(10, rng))
	d.end(rs)
	d.date("createdAt", created)
	d.date("startedAt", created.Add(time.Duration(rng.IntN(60))*time.Second))
	if state == "completed" || state == "error" || state == "cancelled" {
		d.date("finishedAt", created.Add(time.Duration(60+rng.IntN(3600))*time.Second))
	} else {
		d.null("finishedAt")
	}
	if state == "error" {
		d.str("error", text(30+rng.IntN(60), rng))
	} else {
		d.null("error")
	}
	ds := d.array("deltas")
	for j, n := 0, rng.IntN(2); j < n; j++ {
		x := d.subdoc(key(j))
		d.str("imageDigest", "sha256:"+hexString(64, rng))
		d.i32("newFindings", int32(rng.IntN(30)))
		d.i32("newCriticals", int32(rng.IntN(3)))
		d.end(x)
	}
	d.end(ds)
	d.end(top)
	return d.b
}

// benchSchedules is how many schedules the runs refer to; they are written and loaded before
// the runs (the module's load order), untimed.
const benchSchedules = 100

func scheduleID(k int) string     { return fmt.Sprintf("sch_%04d", k) }
func scheduleTenant(k int) string { return tenants[k%len(tenants)] }

// genSchedule is schedule k: a live Scheduler schedule of the tenant its runs carry.
func genSchedule(dst []byte, k int, rng *rand.Rand) []byte {
	created := genBase.Add(-time.Duration(365*24+rng.IntN(365*24)) * time.Hour)
	d := doc{b: dst}
	top := d.start()
	d.str("_id", scheduleID(k))
	d.str("tenantId", scheduleTenant(k))
	d.str("name", fmt.Sprintf("nightly-%04d", k))
	d.boolean("enabled", rng.IntN(10) != 0)
	d.str("cronExpression", fmt.Sprintf("%d %d * * *", rng.IntN(60), rng.IntN(24)))
	d.str("timezone", "UTC")
	d.str("mode", pick(rng, "analysis-only", "content-refresh"))
	sel := d.subdoc("selection")
	d.str("scope", "all-images")
	d.end(sel)
	d.null("onlyIf")
	d.null("notify")
	lim := d.subdoc("limits")
	d.i32("maxJobs", int32(1+rng.IntN(100)))
	d.end(lim)
	d.date("createdAt", created)
	d.str("createdBy", "bench")
	d.date("updatedAt", created.Add(time.Duration(rng.IntN(1000))*time.Hour))
	d.str("updatedBy", "bench")
	d.null("deletedAt")
	d.null("deletedBy")
	d.end(top)
	return d.b
}
