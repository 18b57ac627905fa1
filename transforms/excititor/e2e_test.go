package excititor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
)

// seedDoc is one source document with what the conversion must make of it, both derived from
// the same values.
type seedDoc struct {
	doc bson.D
	// want is "load", "skip <reason>" or "reject <path>: <reason>".
	want string
	// rows are the document's expected rows per table, as text (see tableQueries), when it loads.
	rows map[string][][]string
}

type seed map[string][]seedDoc // default collection name → documents

const pgNull = "<NULL>"

// pgTS is a timestamptz as PostgreSQL prints it with TimeZone UTC.
func pgTS(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00" }

func pgUUID(coll, canon string) string { return uuidText(wantID(coll, canon)) }

// tableQueries read each table as text, in a bytewise order the test reproduces.
var tableQueries = map[string]string{
	"vex.raw_documents": `SELECT id::text, mongo_id, tenant_id, digest, provider_id, format, source_uri, retrieved_at::text,
		encode(content, 'hex'), gridfs_id, metadata::text FROM vex.raw_documents`,
	"vex.statements": `SELECT id::text, mongo_id, tenant_id, vulnerability_id, product_key, status, justification, impact_statement,
		action_statement, provider_id, document_digest, issued_at::text, last_updated_at::text, created_at::text FROM vex.statements`,
	"vex.observations": `SELECT id::text, mongo_id, tenant_id, observation_id, vulnerability_id, product_key, provider_id, status,
		justification::text, confidence::text, signals::text, document_digest, array_to_json(purls)::text,
		array_to_json(cpes)::text, array_to_json(anchors)::text, created_at::text FROM vex.observations`,
	"vex.linksets": `SELECT id::text, mongo_id, tenant_id, linkset_id, vulnerability_id, product_key, conflicts::text,
		created_at::text, updated_at::text FROM vex.linksets`,
	"vex.linkset_observations": `SELECT linkset_id::text, ordinal::text, observation_id::text, tenant_id FROM vex.linkset_observations`,
	"vex.consensus": `SELECT id::text, mongo_id, tenant_id, vulnerability_id, product_key, status, sources::text,
		policy_revision_id, calculated_at::text FROM vex.consensus`,
	"vex.cache": `SELECT id::text, mongo_id, tenant_id, doc::text FROM vex.cache`,
}

func buildSeed(t *testing.T) seed {
	s := seed{}
	// vex.raw: window edges, inline and GridFS content, the hash check, the CHECK.
	raw := func(id string, format any, at time.Time, content []byte, grid *bson.ObjectID, want string) seedDoc {
		d := bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "t1"}, {Key: "digest", Value: id}, {Key: "providerId", Value: "redhat"},
			{Key: "format", Value: format}, {Key: "sourceUri", Value: "https://vex.example/" + id}, {Key: "retrievedAt", Value: date(at)}}
		contentText, gridText := pgNull, pgNull
		if content != nil {
			d = append(d, bson.E{Key: "content", Value: content})
			contentText = hex.EncodeToString(content)
		}
		if grid != nil {
			d = append(d, bson.E{Key: "gridFsObjectId", Value: *grid})
			gridText = grid.Hex()
		}
		d = append(d, bson.E{Key: "metadata", Value: bson.D{{Key: "etag", Value: "W/1"}, {Key: "size", Value: int64(len(content))}}})
		sd := seedDoc{doc: d, want: want}
		if want == "load" {
			f := pgNull
			if fs, ok := format.(string); ok {
				f = fs
			}
			sd.rows = map[string][][]string{"vex.raw_documents": {{pgUUID(CollRaw, id), id, "t1", id, "redhat", f, "https://vex.example/" + id,
				pgTS(at), contentText, gridText, fmt.Sprintf(`{"etag": "W/1", "size": %d}`, len(content))}}}
		}
		return sd
	}
	digestOf := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	c1, c3, c7 := []byte("csaf document 1"), []byte("csaf document 3"), []byte("cyclonedx document 7")
	g2, g4 := oid(0xa2), oid(0xa4)
	s[CollRaw] = []seedDoc{
		raw("sha256:"+digestOf(c1), "csaf", rawCutoff.Add(time.Second), c1, nil, "load"),
		raw("sha256:feed02", "openvex", asOf.Add(-24*time.Hour), nil, &g2, "load"),
		raw("sha256:"+digestOf([]byte("other")), "csaf", asOf, c3, nil, "reject content: SHA-256 of content does not match the digest in _id"),
		raw("sha256:feed04", "csaf", asOf, c3, &g4, "reject content: both inline content and gridFsObjectId"),
		raw("sha256:feed05", "csaf", rawCutoff.Add(-time.Second), c1, nil, "skip outside tier window"),
		raw("sha256:feed06", "pdf", asOf, nil, &g4, `reject format: column format: value "pdf" not allowed`),
		raw("sha256:"+strings.ToUpper(digestOf(c7)), "cyclonedx", rawCutoff, c7, nil, "load"),
		raw("md5:08", nil, asOf.Add(-time.Millisecond), []byte{0, 1, 2}, nil, "load"),
	}
	noDate := without(s[CollRaw][0].doc, "retrievedAt")
	noDate = with(noDate, bson.E{Key: "_id", Value: "sha256:feed09"})
	s[CollRaw] = append(s[CollRaw], seedDoc{doc: noDate, want: "skip outside tier window"})

	// vex.statements: every column, the CHECK, an identity collision, NOT NULL.
	issued, updated := asOf.Add(-50*time.Hour), asOf.Add(-2*time.Hour+250*time.Millisecond)
	stmt := func(id any, canon, tenant, status, want string) seedDoc {
		d := bson.D{{Key: "_id", Value: id}}
		if tenant != "" {
			d = append(d, bson.E{Key: "tenant", Value: tenant})
		}
		d = append(d, bson.D{{Key: "vulnerabilityId", Value: "CVE-2025-" + canon[len(canon)-2:]}, {Key: "productKey", Value: "pkg:rpm/x"},
			{Key: "status", Value: status}, {Key: "justification", Value: "inline_mitigations_already_exist"},
			{Key: "impactStatement", Value: "impact é"}, {Key: "actionStatement", Value: "upgrade"}, {Key: "providerId", Value: "suse"},
			{Key: "documentDigest", Value: "sha256:feed02"}, {Key: "issuedAt", Value: date(issued)}, {Key: "lastUpdatedAt", Value: date(updated)}}...)
		sd := seedDoc{doc: d, want: want}
		if want == "load" {
			sd.rows = map[string][][]string{"vex.statements": {{pgUUID(CollStatements, canon), canon, tenant, "CVE-2025-" + canon[len(canon)-2:],
				"pkg:rpm/x", status, "inline_mitigations_already_exist", "impact é", "upgrade", "suse", "sha256:feed02", pgTS(issued), pgTS(updated), pgNull}}}
		}
		return sd
	}
	s[CollStatements] = []seedDoc{
		stmt(oid(0x31), oid(0x31).Hex(), "t1", "fixed", "load"),
		stmt(oid(0x32), oid(0x32).Hex(), "t1", "unknown", `reject status: column status: value "unknown" not allowed`),
		stmt(oid(0x33).Hex(), oid(0x33).Hex(), "t2", "affected", "load"),
		stmt(oid(0x33), oid(0x33).Hex(), "t1", "affected", "reject _id: identity collision "+oid(0x33).Hex()),
		stmt(oid(0x35), oid(0x35).Hex(), "", "affected", "reject tenant: missing value for NOT NULL column tenant_id"),
	}

	// vex.observations: the unique key, NULL keys, sorted arrays, a jsonb value check.
	created := asOf.Add(-5 * 24 * time.Hour)
	observation := func(n byte, tenant string, obsID any, want string, extra ...bson.E) seedDoc {
		d := bson.D{{Key: "_id", Value: oid(n)}, {Key: "tenant", Value: tenant}, {Key: "observationId", Value: obsID},
			{Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: "pkg:npm/x"}, {Key: "providerId", Value: "ghsa"},
			{Key: "status", Value: "affected"}, {Key: "confidence", Value: bson.D{{Key: "score", Value: 0.5}}},
			{Key: "signals", Value: bson.A{"kev"}}, {Key: "purls", Value: bson.A{"pkg:npm/z", "pkg:npm/a", "pkg:npm/z"}},
			{Key: "cpes", Value: bson.A{}}, {Key: "createdAt", Value: date(created)}}
		d = with(d, extra...)
		sd := seedDoc{doc: d, want: want}
		if want == "load" {
			o := pgNull
			if s, ok := obsID.(string); ok {
				o = s
			}
			sd.rows = map[string][][]string{"vex.observations": {{pgUUID(CollObservations, oid(n).Hex()), oid(n).Hex(), tenant, o,
				"CVE-1", "pkg:npm/x", "ghsa", "affected", pgNull, `{"score": 0.5}`, `["kev"]`, pgNull,
				`["pkg:npm/a","pkg:npm/z","pkg:npm/z"]`, `[]`, pgNull, pgTS(created)}}}
		}
		return sd
	}
	held := "reject observationId: unique key (tenant_id, observation_id) already held by _id " + oid(0x11).Hex()
	s[CollObservations] = []seedDoc{
		observation(0x12, "t1", "obs-1", held),
		observation(0x11, "t1", "obs-1", "load"),
		observation(0x13, "t2", "obs-1", "load"),
		observation(0x14, "t1", nil, "load"),
		observation(0x15, "t1", nil, "load"),
		observation(0x16, "t1", "obs-6", "reject signals.0: column signals: string contains NUL", bson.E{Key: "signals", Value: bson.A{"k\x00"}}),
	}

	// vex.linksets: link rows, a missing (rejected) observation, another tenant's, an absent one.
	lsCreated := asOf.Add(-24 * time.Hour)
	linkset := func(n byte, tenant string, obs []byte, want string) seedDoc {
		ids := bson.A{}
		for _, o := range obs {
			ids = append(ids, oid(o))
		}
		d := bson.D{{Key: "_id", Value: oid(n)}, {Key: "tenant", Value: tenant}, {Key: "linksetId", Value: fmt.Sprintf("ls-%x", n)},
			{Key: "vulnerabilityId", Value: "CVE-1"}, {Key: "productKey", Value: "pkg:npm/x"},
			{Key: "conflicts", Value: bson.A{}}, {Key: "createdAt", Value: date(lsCreated)}, {Key: "observationIds", Value: ids}}
		sd := seedDoc{doc: d, want: want}
		if want == "load" {
			lid := pgUUID(CollLinksets, oid(n).Hex())
			sd.rows = map[string][][]string{"vex.linksets": {{lid, oid(n).Hex(), tenant, fmt.Sprintf("ls-%x", n), "CVE-1", "pkg:npm/x", "[]", pgTS(lsCreated), pgNull}}}
			for i, o := range obs {
				sd.rows["vex.linkset_observations"] = append(sd.rows["vex.linkset_observations"],
					[]string{lid, fmt.Sprint(i), pgUUID(CollObservations, oid(o).Hex()), tenant})
			}
		}
		return sd
	}
	s[CollLinksets] = []seedDoc{
		linkset(0x21, "t1", []byte{0x11, 0x14, 0x11}, "load"),
		linkset(0x22, "t1", []byte{0x11, 0x12}, "reject observationIds.1: missing parent vex.observations/"+oid(0x12).Hex()),
		linkset(0x23, "t1", []byte{0x13}, "reject observationIds.0: cross-tenant reference vex.observations/"+oid(0x13).Hex()),
		linkset(0x24, "t2", []byte{0x13}, "load"),
		linkset(0x25, "t1", nil, "load"),
		linkset(0x26, "t1", []byte{0x99}, "reject observationIds.0: missing parent vex.observations/"+oid(0x99).Hex()),
	}

	// vex.consensus: latest wins, ties to the greatest _id, NOT NULL never competes.
	cons := func(n byte, vuln string, at *time.Time, want string) seedDoc {
		d := bson.D{{Key: "_id", Value: oid(n)}, {Key: "tenant", Value: "t1"}, {Key: "vulnerabilityId", Value: vuln},
			{Key: "productKey", Value: "pkg:npm/x"}, {Key: "status", Value: "fixed"}, {Key: "sources", Value: bson.A{"redhat"}},
			{Key: "policyRevisionId", Value: "rev-1"}}
		if at != nil {
			d = append(d, bson.E{Key: "calculatedAt", Value: date(*at)})
		}
		sd := seedDoc{doc: d, want: want}
		if want == "load" {
			sd.rows = map[string][][]string{"vex.consensus": {{pgUUID(CollConsensus, oid(n).Hex()), oid(n).Hex(), "t1", vuln, "pkg:npm/x",
				"fixed", `["redhat"]`, "rev-1", pgTS(*at)}}}
		}
		return sd
	}
	h := func(n int) *time.Time { x := asOf.Add(time.Duration(-n) * time.Hour); return &x }
	s[CollConsensus] = []seedDoc{
		cons(0x41, "CVE-1", h(3), "skip superseded"),
		cons(0x42, "CVE-1", h(1), "load"),
		cons(0x43, "CVE-1", h(2), "skip superseded"),
		cons(0x44, "CVE-2", h(4), "skip superseded"),
		cons(0x45, "CVE-2", h(4), "load"),
		cons(0x46, "CVE-3", nil, "reject calculatedAt: missing value for NOT NULL column calculated_at"),
	}

	// vex.cache: Tier C.
	s[CollCache] = []seedDoc{
		{doc: bson.D{{Key: "_id", Value: "cache-1"}, {Key: "tenant", Value: "t1"}, {Key: "v", Value: 1}}, want: "skip tier C"},
		{doc: bson.D{{Key: "_id", Value: "cache-2"}, {Key: "v", Value: "\x00"}}, want: "skip tier C"},
	}
	return s
}

// writeDump writes the seed as a mongodump directory of database excititor.
func writeDump(t *testing.T, s seed) string {
	dir := t.TempDir()
	w := dump.DirWriter{Root: dir}
	for coll, docs := range s {
		meta := []byte(fmt.Sprintf(`{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}],"collectionName":%q}`, coll))
		_, err := w.WriteCollection(t.Context(), DB, coll, meta, func(emit func(bson.Raw) error) error {
			for _, d := range docs {
				if err := emit(mk(t, d.doc)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := manifests.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func migrations() []load.Migration {
	var out []load.Migration
	for _, m := range Module().Migrations {
		out = append(out, load.Migration{Name: m.Name, SQL: m.SQL})
	}
	return out
}

func runModule(t *testing.T, pool *pgxpool.Pool, dir string, workers, batch int) (*pipeline.Report, error) {
	t.Helper()
	src, err := dump.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	jobs, err := Module().Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Run(t.Context(), pipeline.Options{AsOf: asOf, Selection: "modules:" + ModuleName, Modules: []string{ModuleName},
		TransformVersion: Module().Version, Workers: workers, BatchSize: batch, Result: map[string]any{}},
		pipeline.Deps{Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: manifests.NewStore(pool), Collections: jobs})
}

func queryText(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) [][]string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				r[i] = pgNull
			} else {
				r[i] = fmt.Sprint(v)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sortRows(rows [][]string) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
}

// TestEndToEnd converts a mongodump directory of every Excititor collection into a fresh
// database and checks the tables value by value, every reference kind and reject reason, the
// accounting, the checksums against the target, and determinism across workers and batches.
func TestEndToEnd(t *testing.T) {
	s := buildSeed(t)
	dir := writeDump(t, s)
	pool := newPool(t)
	if err := load.ApplyMigrations(t.Context(), pool, Schema, migrations()); err != nil {
		t.Fatal(err)
	}
	// Applying again is a no-op (recorded with its checksum).
	if err := load.ApplyMigrations(t.Context(), pool, Schema, migrations()); err != nil {
		t.Fatal(err)
	}
	rep, err := runModule(t, pool, dir, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != "completed" {
		t.Fatalf("run status %s: %s", rep.Status, rep.Error)
	}

	// Tables, value by value.
	want := map[string][][]string{}
	for table := range tableQueries {
		want[table] = nil
	}
	for _, docs := range s {
		for _, d := range docs {
			for table, rows := range d.rows {
				want[table] = append(want[table], rows...)
			}
		}
	}
	for table, q := range tableQueries {
		got := queryText(t, pool, q)
		sortRows(got)
		sortRows(want[table])
		if fmt.Sprint(got) != fmt.Sprint(want[table]) {
			t.Errorf("%s:\n got %q\nwant %q", table, got, want[table])
		}
	}

	// Rejects: one row per rejected document, with its _id, path and reason.
	var wantRejects [][]string
	for coll, docs := range s {
		for _, d := range docs {
			if r, ok := strings.CutPrefix(d.want, "reject "); ok {
				path, reason, _ := strings.Cut(r, ": ")
				id, _ := transforms.CanonicalID(bsonValue(t, d.doc, "_id"))
				wantRejects = append(wantRejects, []string{ModuleName + "." + coll, id, path, reason})
			}
		}
	}
	gotRejects := queryText(t, pool, `SELECT collection, _id, path, reason FROM convert.rejects WHERE run_id = $1`, rep.RunID)
	sortRows(gotRejects)
	sortRows(wantRejects)
	if fmt.Sprint(gotRejects) != fmt.Sprint(wantRejects) {
		t.Errorf("rejects:\n got %q\nwant %q", gotRejects, wantRejects)
	}

	// Accounting per collection.
	byName := map[string]pipeline.CollectionReport{}
	for _, c := range rep.Collections {
		byName[c.Collection] = c
	}
	tablesOf := map[string][]string{}
	for _, c := range Module().Collections {
		for _, tb := range c.Tables {
			tablesOf[c.Name] = append(tablesOf[c.Name], tb.FullName())
		}
	}
	for coll, docs := range s {
		c, ok := byName[ModuleName+"."+coll]
		if !ok {
			t.Errorf("no report for %s", coll)
			continue
		}
		var loaded, rejected int64
		skipped := map[string]int64{}
		rows := map[string]int64{}
		for _, tb := range tablesOf[coll] {
			rows[tb] = 0
		}
		for _, d := range docs {
			switch {
			case d.want == "load":
				loaded++
			case strings.HasPrefix(d.want, "skip "):
				skipped[strings.TrimPrefix(d.want, "skip ")]++
			default:
				rejected++
			}
			for tb, r := range d.rows {
				rows[tb] += int64(len(r))
			}
		}
		if c.Read != int64(len(docs)) || c.Loaded != loaded || c.Rejected != rejected || fmt.Sprint(c.SkippedByReason) != fmt.Sprint(skipped) ||
			fmt.Sprint(c.RowsByTable) != fmt.Sprint(rows) || c.Read != c.Loaded+c.Rejected+c.Skipped {
			t.Errorf("%s: read %d loaded %d rejected %d skipped %v rows %v; want read %d loaded %d rejected %d skipped %v rows %v",
				coll, c.Read, c.Loaded, c.Rejected, c.SkippedByReason, c.RowsByTable, len(docs), loaded, rejected, skipped, rows)
		}
		// The checksum recorded while loading equals the one recomputed from the target.
		sums := manifests.TableSums{}
		for _, tb := range Module().Collections[indexOf(coll)].Tables {
			sum, err := load.ReadTableSum(t.Context(), pool, tb)
			if err != nil {
				t.Fatal(err)
			}
			sums[tb.FullName()] = sum
		}
		if got := manifests.CollectionChecksum(sums).String(); got != c.Checksum {
			t.Errorf("%s: checksum %s recorded, %s read back from the target", coll, c.Checksum, got)
		}
	}

	// Determinism: another database, other workers and batch size, same checksums.
	pool2 := newPool(t)
	if err := load.ApplyMigrations(t.Context(), pool2, Schema, migrations()); err != nil {
		t.Fatal(err)
	}
	rep2, err := runModule(t, pool2, dir, 4, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep2.Collections {
		if w := byName[c.Collection]; w.Checksum != c.Checksum || w.Loaded != c.Loaded || w.Rejected != c.Rejected || w.Skipped != c.Skipped {
			t.Errorf("%s: second run %s %d/%d/%d, first %s %d/%d/%d", c.Collection, c.Checksum, c.Loaded, c.Rejected, c.Skipped,
				w.Checksum, w.Loaded, w.Rejected, w.Skipped)
		}
	}
}

func indexOf(coll string) int {
	for i, c := range Module().Collections {
		if c.Name == coll {
			return i
		}
	}
	return -1
}

func bsonValue(t *testing.T, d bson.D, key string) bson.RawValue {
	return mk(t, d).Lookup(key)
}

// TestSchema: the migration creates what the tables declare (the run validates it), row-level
// security is enabled without FORCE with the tenant policy on every table with tenant_id, the
// CHECKs hold, and a run against a schema that is missing or differs refuses before loading.
func TestSchema(t *testing.T) {
	pool := newPool(t)
	if err := load.ApplyMigrations(t.Context(), pool, Schema, migrations()); err != nil {
		t.Fatal(err)
	}
	if err := load.NewTarget(pool).Prepare(t.Context(), Module().Tables()); err != nil {
		t.Fatalf("the migration does not match the tables: %v", err)
	}
	rls := queryText(t, pool, `SELECT c.relname, c.relrowsecurity::text, c.relforcerowsecurity::text, p.polname, pg_get_expr(p.polqual, p.polrelid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE n.nspname = 'vex' AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
ORDER BY c.relname`)
	wantTables := []string{"cache", "consensus", "linkset_observations", "linksets", "observations", "raw_documents", "statements"}
	if len(rls) != len(wantTables) {
		t.Fatalf("tables with tenant_id and their policies: %q", rls)
	}
	for i, r := range rls {
		if r[0] != wantTables[i] || r[1] != "true" || r[2] != "false" || r[3] != "tenant_isolation" ||
			r[4] != "(tenant_id = current_setting('app.tenant_id'::text))" {
			t.Errorf("row-level security of %s: %q", wantTables[i], r)
		}
	}
	for _, bad := range []string{
		`INSERT INTO vex.statements (id, mongo_id, tenant_id, status) VALUES (gen_random_uuid(), 'x', 't', 'bogus')`,
		`INSERT INTO vex.raw_documents (id, mongo_id, tenant_id, digest, format, retrieved_at) VALUES (gen_random_uuid(), 'x', 't', 'd', 'pdf', now())`,
	} {
		if _, err := pool.Exec(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "SQLSTATE 23514") {
			t.Errorf("%s: %v, want a CHECK violation", bad, err)
		}
	}

	// No migrations: refused with a precise list.
	dir := writeDump(t, buildSeed(t))
	_, err := runModule(t, newPool(t), dir, 1, 10)
	var sm *load.SchemaMismatchError
	if !errors.As(err, &sm) || !strings.Contains(err.Error(), "table vex.raw_documents is missing") {
		t.Fatalf("run without the schema: %v, want a SchemaMismatchError", err)
	}
	// A column of the wrong type: refused, naming it.
	p3 := newPool(t)
	if err := load.ApplyMigrations(t.Context(), p3, Schema, migrations()); err != nil {
		t.Fatal(err)
	}
	if _, err := p3.Exec(t.Context(), `ALTER TABLE vex.observations ALTER COLUMN purls TYPE text`); err != nil {
		t.Fatal(err)
	}
	_, err = runModule(t, p3, dir, 1, 10)
	if !errors.As(err, &sm) || len(sm.Problems) != 1 || sm.Problems[0] != "vex.observations: column purls is text, want text[]" {
		t.Fatalf("run against a changed schema: %v", err)
	}
}
