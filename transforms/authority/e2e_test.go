package authority

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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

// seeded is one source document with what the conversion must do with it, as this test
// derives it from the spec: skipped, rejected (path, reason), or loaded as row (the main
// table's row in column order, normalized as readRows prints it) contributing created to its
// tenant's tenants row.
type seeded struct {
	coll         string
	doc          bson.D
	id           string
	skip         bool
	path, reason string
	row          []any
	tenant       string
	created      *time.Time
	roles        []string // users: distinct role names
}

func (s seeded) loaded() bool { return !s.skip && s.reason == "" }

func (s seeded) rejects(path, reason string) seeded { s.path, s.reason = path, reason; return s }

func (s seeded) skipped() seeded { s.skip = true; return s }

func day(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 12, 30, 45, 123_000_000, time.UTC)
}

func ptr[T any](v T) *T { return &v }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func hexN(n int) string { return fmt.Sprintf("65f0c0ffee0123456789%04x", n) }

func seedUser(n int, tenant, username string, roles []string, created *time.Time) seeded {
	id := hexN(n)
	d := bson.D{
		{Key: "_id", Value: oid(id)}, {Key: "tenant", Value: tenant}, {Key: "username", Value: username},
		{Key: "email", Value: username + "@example.test"}, {Key: "displayName", Value: strings.ToUpper(username)},
		{Key: "passwordHash", Value: nil}, {Key: "status", Value: "active"}, {Key: "roles", Value: roles},
		{Key: "mfa", Value: bson.D{{Key: "enabled", Value: n%2 == 0}}},
		{Key: "attributes", Value: bson.D{{Key: "department", Value: "appsec"}}},
		{Key: "updatedAt", Value: dt(day(2025, 5, 5))}, {Key: "lastLoginAt", Value: nil},
	}
	var c any
	if created != nil {
		d = append(d, bson.E{Key: "createdAt", Value: dt(*created)})
		c = ts(*created)
	}
	var distinct []string
	for _, r := range roles {
		if !contains(distinct, r) {
			distinct = append(distinct, r)
		}
	}
	return seeded{coll: CollUsers, doc: d, id: id, tenant: tenant, created: created, roles: distinct,
		row: []any{userUUID(id), id, tenant, username, username + "@example.test", strings.ToUpper(username), nil, "active",
			n%2 == 0, c, ts(day(2025, 5, 5)), nil, `{"department": "appsec"}`}}
}

func seedClient(id any, tenant string, created *time.Time) seeded {
	canon := fmt.Sprint(id)
	d := bson.D{
		{Key: "_id", Value: id}, {Key: "clientId", Value: canon}, {Key: "tenant", Value: tenant},
		{Key: "displayName", Value: "client " + canon}, {Key: "clientType", Value: "confidential"},
		{Key: "secretHash", Value: "$argon2id$x"}, {Key: "redirectUris", Value: bson.A{}},
		{Key: "allowedScopes", Value: bson.A{"vex:read", "advisory:read"}}, {Key: "grantTypes", Value: bson.A{"client_credentials"}},
		{Key: "enabled", Value: true}, {Key: "updatedAt", Value: nil},
		{Key: "properties", Value: bson.D{{Key: "tier", Value: "gold"}}},
	}
	var c any
	if created != nil {
		d = append(d, bson.E{Key: "createdAt", Value: dt(*created)})
		c = ts(*created)
	}
	return seeded{coll: CollClients, doc: d, id: canon, tenant: tenant, created: created,
		row: []any{uuid5("authority_clients:" + canon), canon, tenant, canon, "client " + canon, "confidential", "$argon2id$x",
			[]any{}, strs("vex:read", "advisory:read"), strs("client_credentials"), true, c, nil, `{"tier": "gold"}`}}
}

func seedScope(n int, name any) seeded {
	id := hexN(n)
	d := bson.D{{Key: "_id", Value: oid(id)}, {Key: "description", Value: "scope"}, {Key: "resources", Value: bson.A{"concelier"}},
		{Key: "createdAt", Value: dt(day(2023, 1, 1))}}
	if name != nil {
		d = append(d, bson.E{Key: "name", Value: name})
	}
	return seeded{coll: CollScopes, doc: d, id: id,
		row: []any{uuid5("authority_scopes:" + id), id, name, "scope", strs("concelier"), ts(day(2023, 1, 1))}}
}

func seedAccount(n int, tenant, account string, client any, created time.Time) seeded {
	id := hexN(n)
	return seeded{coll: CollServiceAccounts, id: id, tenant: tenant, created: &created,
		doc: bson.D{
			{Key: "_id", Value: oid(id)}, {Key: "tenant", Value: tenant}, {Key: "accountId", Value: account},
			{Key: "displayName", Value: "svc"}, {Key: "clientId", Value: client}, {Key: "scopes", Value: bson.A{"scheduler:read"}},
			{Key: "enabled", Value: true}, {Key: "createdAt", Value: dt(created)}, {Key: "updatedAt", Value: dt(created)},
		},
		row: []any{uuid5("authority_service_accounts:" + id), id, tenant, account, "svc", client, strs("scheduler:read"), true, ts(created), ts(created)}}
}

func seedToken(id, tenant, status string, subject *string, client any, created, expires time.Time) seeded {
	var subj, subjCol any
	if subject != nil {
		subj, subjCol = oid(*subject), userUUID(*subject)
	}
	return seeded{coll: CollTokens, id: id, tenant: tenant, created: &created,
		doc: bson.D{
			{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "type", Value: "access_token"},
			{Key: "subjectId", Value: subj}, {Key: "clientId", Value: client}, {Key: "scopes", Value: bson.A{"vex:read"}},
			{Key: "status", Value: status}, {Key: "createdAt", Value: dt(created)}, {Key: "expiresAt", Value: dt(expires)},
			{Key: "revokedAt", Value: nil}, {Key: "payload", Value: bson.D{{Key: "ip", Value: "192.0.2.1"}}},
		},
		row: []any{uuid5("authority_tokens:" + id), id, tenant, "access_token", subjCol, client, strs("vex:read"), status,
			ts(created), ts(expires), nil, `{"ip": "192.0.2.1"}`}}
}

func seedAttempt(n int, tenant any, subject *string, at any) seeded {
	id := hexN(n)
	var subj, subjCol any
	if subject != nil {
		subj, subjCol = oid(*subject), userUUID(*subject)
	}
	var atCol any
	if tm, ok := at.(time.Time); ok {
		atCol, at = ts(tm), dt(tm)
	}
	d := bson.D{{Key: "_id", Value: oid(id)}, {Key: "subjectId", Value: subj}, {Key: "username", Value: "someone"},
		{Key: "successful", Value: true}, {Key: "reason", Value: nil}, {Key: "remoteAddress", Value: "10.0.0.1"},
		{Key: "userAgent", Value: "curl/8.5.0"}, {Key: "occurredAt", Value: at}}
	s := seeded{coll: CollLoginAttempts, id: id}
	if tenant != nil {
		d = append(d, bson.E{Key: "tenant", Value: tenant})
		s.tenant = tenant.(string)
	}
	s.doc = d
	s.row = []any{uuid5("authority_login_attempts:" + id), id, tenant, subjCol, "someone", true, nil, "10.0.0.1", "curl/8.5.0", atCol}
	return s
}

func seedRevocation(n int, tenant, category string, revoked *time.Time) seeded {
	id := hexN(n)
	d := bson.D{{Key: "_id", Value: oid(id)}, {Key: "tenant", Value: tenant}, {Key: "category", Value: category},
		{Key: "revokedId", Value: "tok-x"}, {Key: "tokenType", Value: "access_token"}, {Key: "clientId", Value: "default-cli"},
		{Key: "subjectId", Value: nil}, {Key: "reason", Value: "rotation"}, {Key: "expiresAt", Value: nil}}
	var r any
	if revoked != nil {
		d = append(d, bson.E{Key: "revokedAt", Value: dt(*revoked)})
		r = ts(*revoked)
	}
	return seeded{coll: CollRevocations, doc: d, id: id, tenant: tenant,
		row: []any{uuid5("authority_revocations:" + id), id, tenant, category, "tok-x", "access_token", "default-cli", nil, r, "rotation", nil}}
}

// e2eSeed is the source of the end-to-end test, every collection, with the outcome of each
// document: every reference kind, every reject reason, and each tier edge.
func e2eSeed() []seeded {
	const (
		def     = "default"
		initech = "urn:tenant:initech"
		hooli   = "urn:tenant:hooli"
	)
	u1, u3, u4 := hexN(1), hexN(3), hexN(4)
	ghost := hexN(999)
	cut := asOf.Add(-90 * 24 * time.Hour)
	future := asOf.Add(24 * time.Hour)
	return []seeded{
		seedUser(1, def, "alice", []string{"admin", "viewer", "admin"}, ptr(day(2024, 1, 1))),
		seedUser(2, acme, "jdoe", []string{"viewer"}, ptr(day(2024, 2, 1))),
		// Earlier createdAt than acme's loaded rows: rejected, so it must not lower acme's tenants row.
		seedUser(3, acme, "jdoe", []string{"admin"}, ptr(day(2020, 1, 1))).rejects("username", "unique key (tenant_id, username) already held by _id "+hexN(2)),
		seedUser(4, globex, "bob", []string{"viewer"}, ptr(day(2024, 3, 1))),
		seedUser(5, def, "carol", nil, nil).rejects("createdAt", "missing value for NOT NULL column created_at"),
		seedUser(6, acme, "dave", []string{"admin"}, ptr(day(2024, 2, 15))),
		seedUser(7, def, "e\x00rin", nil, ptr(day(2024, 1, 1))).rejects("username", "column username: string contains NUL"),

		seedClient("default-cli", def, ptr(day(2023, 6, 1))),
		seedClient("acme-console", acme, ptr(day(2024, 5, 1))),
		seedClient("globex-worker", globex, nil),
		seedClient(int32(7), acme, ptr(day(2024, 5, 1))).rejects("_id", "column client_id: expected text, found int"),

		seedScope(101, "advisory:read"),
		seedScope(102, "vex:read"),
		seedScope(103, "advisory:read").rejects("name", "unique key (name) already held by _id "+hexN(101)),
		seedScope(104, nil).rejects("name", "missing value for NOT NULL column name"),

		seedAccount(201, def, "svc-ci", "default-cli", day(2024, 1, 5)),
		seedAccount(202, acme, "svc-ci", nil, day(2024, 1, 6)),
		seedAccount(203, globex, "svc-borrowed", "acme-console", day(2024, 1, 7)).rejects("clientId", "cross-tenant reference authority_clients/acme-console"),
		seedAccount(204, def, "svc-ghost", "nobody", day(2024, 1, 8)).rejects("clientId", "missing parent authority_clients/nobody"),
		seedAccount(205, def, "svc-ci", "default-cli", day(2024, 1, 9)).rejects("accountId", "unique key (tenant_id, account_id) already held by _id "+hexN(201)),
		// A client rejected for its _id is no parent either.
		seedAccount(206, acme, "svc-seven", "7", day(2024, 1, 10)).rejects("clientId", "missing parent authority_clients/7"),

		seedToken("tok-live", def, "valid", &u1, "default-cli", asOf.Add(-time.Hour), asOf.Add(time.Second)),
		seedToken("tok-at", def, "valid", &u1, "default-cli", asOf.Add(-time.Hour), asOf).skipped(),
		seedToken("tok-before", def, "valid", &u1, "default-cli", asOf.Add(-time.Hour), asOf.Add(-time.Second)).skipped(),
		seedToken("tok-revoked", def, "revoked", &u1, "default-cli", asOf.Add(-time.Hour), future).skipped(),
		seedToken("tok-loser-subject", acme, "valid", &u3, nil, day(2024, 1, 1), future).rejects("subjectId", "missing parent authority_users/"+u3),
		seedToken("tok-cross-subject", def, "valid", &u4, nil, day(2024, 1, 1), future).rejects("subjectId", "cross-tenant reference authority_users/"+u4),
		seedToken("tok-cross-client", def, "valid", &u1, "acme-console", day(2024, 1, 1), future).rejects("clientId", "cross-tenant reference authority_clients/acme-console"),
		seedToken("tok-ghost-client", def, "valid", nil, "nobody", day(2024, 1, 1), future).rejects("clientId", "missing parent authority_clients/nobody"),
		seedToken("tok-anon", acme, "valid", nil, nil, day(2023, 12, 1), future),

		seedAttempt(301, def, &u1, cut.Add(-time.Second)).skipped(),
		seedAttempt(302, def, &u1, cut),
		seedAttempt(303, def, nil, cut.Add(time.Second)),
		seedAttempt(304, def, &u1, cut.Add(time.Hour).Format(time.RFC3339)).skipped(),
		// A user that never existed: no reference, it loads, in a tenant nothing else names.
		seedAttempt(305, initech, &ghost, asOf.Add(-time.Hour)),
		seedAttempt(306, nil, nil, asOf.Add(-time.Hour)).rejects("tenant", "missing value for NOT NULL column tenant_id"),

		seedRevocation(401, acme, "token", ptr(day(2026, 1, 1))),
		seedRevocation(402, acme, "bogus", ptr(day(2026, 1, 1))).rejects("category", `column category: value "bogus" not allowed`),
		seedRevocation(403, acme, "client", nil).rejects("revokedAt", "missing value for NOT NULL column revoked_at"),
		seedRevocation(404, hooli, "key", ptr(day(2026, 1, 2))),
	}
}

// writeDump writes the seed as a mongodump directory, each collection in seed order.
func writeDump(t *testing.T, seed []seeded) string {
	t.Helper()
	dir := t.TempDir()
	w := dump.DirWriter{Root: dir, Data: dump.None, Metadata: dump.None}
	for _, c := range Module().Collections {
		var docs []bson.Raw
		for _, s := range seed {
			if s.coll == c.Name {
				docs = append(docs, marshal(t, s.doc))
			}
		}
		_, err := w.WriteCollection(t.Context(), DB, c.Name, nil, func(emit func(bson.Raw) error) error {
			for _, d := range docs {
				if err := emit(d); err != nil {
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
	pool, err := pgxpool.New(t.Context(), pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := manifests.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func applyMigrations(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var migs []load.Migration
	for _, m := range Module().Migrations {
		migs = append(migs, load.Migration{Name: m.Name, SQL: m.SQL})
	}
	if err := load.ApplyMigrations(t.Context(), pool, Schema, migs); err != nil {
		t.Fatal(err)
	}
}

func runModule(t *testing.T, pool *pgxpool.Pool, dir string, workers, batch int) (*pipeline.Report, error) {
	t.Helper()
	src, err := dump.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	jobs, err := Module().Jobs(asOf, transforms.Options{}, transforms.Override{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Run(t.Context(), pipeline.Options{
		AsOf: asOf, Selection: "modules:" + Name, Modules: []string{Name}, TransformVersion: Module().Version,
		Workers: workers, BatchSize: batch, Result: map[string]any{},
	}, pipeline.Deps{Source: src, Sink: load.NewSink(pool), Target: load.NewTarget(pool), Store: manifests.NewStore(pool), Collections: jobs})
}

// readRows reads a table's rows in column order: uuid and jsonb as text, timestamps as
// RFC 3339 UTC, text[] as []any.
func readRows(t *testing.T, pool *pgxpool.Pool, tb pipeline.Table) [][]any {
	t.Helper()
	var exprs []string
	for _, c := range tb.Written() {
		e := pipeline.QuoteIdent(c.Name)
		if c.Type == pipeline.TypeUUID || c.Type == pipeline.TypeJSONB {
			e += "::text"
		}
		exprs = append(exprs, e)
	}
	rows, err := pool.Query(t.Context(), "SELECT "+strings.Join(exprs, ", ")+" FROM "+tb.Ident())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if tm, ok := v.(time.Time); ok {
				vals[i] = ts(tm)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sortRows(rows [][]any) [][]any {
	sort.Slice(rows, func(i, j int) bool { return fmt.Sprint(rows[i]) < fmt.Sprint(rows[j]) })
	return rows
}

func tableOf(name string) pipeline.Table {
	for _, tb := range Module().Tables() {
		if tb.Name == name {
			return tb
		}
	}
	panic("no table " + name)
}

// TestEndToEnd converts a mongodump directory into a fresh database and checks every table
// value by value, every reject, the accounting and the RLS setup; a second run with other
// workers and batch size gives the same checksums.
func TestEndToEnd(t *testing.T) {
	seed := e2eSeed()
	dir := writeDump(t, seed)
	pool := newPool(t)
	applyMigrations(t, pool)
	rep, err := runModule(t, pool, dir, 2, 3)
	if err != nil {
		t.Fatal(err)
	}

	// Main tables: exactly the loaded documents' rows.
	mainTable := map[string]string{CollUsers: "users", CollClients: "clients", CollScopes: "scopes",
		CollServiceAccounts: "service_accounts", CollTokens: "tokens", CollLoginAttempts: "login_attempts", CollRevocations: "revocations"}
	want := map[string][][]any{}
	for _, tbl := range mainTable {
		want[tbl] = [][]any{}
	}
	// Derived tables, from the loaded documents only.
	minCreated := map[string]*time.Time{}
	seenTenant := map[string]bool{}
	roles := map[string][]any{}
	want["user_roles"] = [][]any{}
	for _, s := range seed {
		if !s.loaded() {
			continue
		}
		want[mainTable[s.coll]] = append(want[mainTable[s.coll]], s.row)
		if s.tenant != "" {
			seenTenant[s.tenant] = true
			if s.created != nil && (minCreated[s.tenant] == nil || s.created.Before(*minCreated[s.tenant])) {
				minCreated[s.tenant] = s.created
			}
		}
		for _, r := range s.roles {
			id := roleUUID(s.tenant, r)
			roles[id] = []any{id, s.tenant, r}
			want["user_roles"] = append(want["user_roles"], []any{userUUID(s.id), id, s.tenant})
		}
	}
	for tenant := range seenTenant {
		var c any
		if minCreated[tenant] != nil {
			c = ts(*minCreated[tenant])
		}
		want["tenants"] = append(want["tenants"], []any{tenant, c})
	}
	for _, r := range roles {
		want["roles"] = append(want["roles"], r)
	}
	for name, rows := range want {
		got := sortRows(readRows(t, pool, tableOf(name)))
		if !reflect.DeepEqual(got, sortRows(rows)) {
			t.Errorf("table %s:\n got %v\nwant %v", name, got, rows)
		}
	}
	// Spot checks of the derived rows the seed was built to exercise, stated literally.
	for _, c := range []struct{ tenant, created string }{
		{"default", ts(day(2023, 6, 1))}, // a client older than the users
		{acme, ts(day(2023, 12, 1))},     // a token; the rejected 2020 user does not count
		{globex, ts(day(2024, 3, 1))},    // a client without createdAt contributes NULL
		{"urn:tenant:initech", "<nil>"},  // only a login attempt: NULL
		{"urn:tenant:hooli", "<nil>"},    // only a revocation: NULL
	} {
		var got *time.Time
		if err := pool.QueryRow(t.Context(), `SELECT created_at FROM authority.tenants WHERE tenant_id = $1`, c.tenant).Scan(&got); err != nil {
			t.Fatalf("tenant %s: %v", c.tenant, err)
		}
		g := "<nil>"
		if got != nil {
			g = ts(*got)
		}
		if g != c.created {
			t.Errorf("tenants %s created_at %s, want %s", c.tenant, g, c.created)
		}
	}

	// Rejects: one row per rejected document, with its path and reason.
	type rejRow struct{ coll, id, path, reason string }
	var wantRej []rejRow
	for _, s := range seed {
		if s.reason != "" {
			wantRej = append(wantRej, rejRow{Name + "." + s.coll, s.id, s.path, s.reason})
		}
	}
	var gotRej []rejRow
	rows, err := pool.Query(t.Context(), `SELECT collection, coalesce(_id, ''), path, reason FROM convert.rejects`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r rejRow
		if err := rows.Scan(&r.coll, &r.id, &r.path, &r.reason); err != nil {
			t.Fatal(err)
		}
		gotRej = append(gotRej, r)
	}
	rows.Close()
	// The rejected client's _id is an int32: its canonical form is Extended JSON.
	for i := range wantRej {
		if wantRej[i].coll == Name+"."+CollClients && wantRej[i].id == "7" {
			wantRej[i].id = `{"$numberInt":"7"}`
		}
		// mongo_id faults aside, reasons and _ids are stored as text (NUL shown as \0).
		wantRej[i].reason = strings.ReplaceAll(wantRej[i].reason, "\x00", `\0`)
	}
	less := func(r []rejRow) func(i, j int) bool {
		return func(i, j int) bool { return fmt.Sprint(r[i]) < fmt.Sprint(r[j]) }
	}
	sort.Slice(wantRej, less(wantRej))
	sort.Slice(gotRej, less(gotRej))
	if !reflect.DeepEqual(gotRej, wantRej) {
		t.Errorf("rejects:\n got %v\nwant %v", gotRej, wantRej)
	}

	// Accounting per collection: read = loaded + rejected + skipped, with the seed's counts.
	byName := map[string]pipeline.CollectionReport{}
	for _, c := range rep.Collections {
		byName[c.Collection] = c
	}
	for _, c := range Module().Collections {
		var read, loaded, rejected, skipped int64
		for _, s := range seed {
			if s.coll != c.Name {
				continue
			}
			read++
			switch {
			case s.skip:
				skipped++
			case s.reason != "":
				rejected++
			default:
				loaded++
			}
		}
		got, ok := byName[Name+"."+c.Name]
		if !ok {
			t.Errorf("report has no %s", c.Name)
			continue
		}
		if got.Read != read || got.Loaded != loaded || got.Rejected != rejected || got.Skipped != skipped ||
			got.Read != got.Loaded+got.Rejected+got.Skipped || got.SkippedByReason[pipeline.SkipOutsideWindow] != skipped {
			t.Errorf("%s: read %d loaded %d rejected %d skipped %d (%v), want %d %d %d %d", c.Name,
				got.Read, got.Loaded, got.Rejected, got.Skipped, got.SkippedByReason, read, loaded, rejected, skipped)
		}
		if got.RowsByTable[Schema+"."+mainTable[c.Name]] != loaded {
			t.Errorf("%s: rows %v, want %d in %s", c.Name, got.RowsByTable, loaded, mainTable[c.Name])
		}
	}
	if c := byName[Name+"."+CollUsers]; c.DuplicatesCollapsed != 1 {
		t.Errorf("users: duplicates collapsed %d, want 1 (alice's repeated admin)", c.DuplicatesCollapsed)
	}
	derived, ok := byName[pipeline.DerivedName(Name)]
	if !ok || derived.RowsByTable[Schema+".tenants"] != int64(len(want["tenants"])) ||
		derived.RowsByTable[Schema+".roles"] != int64(len(want["roles"])) || derived.RowsByTable[Schema+".user_roles"] != int64(len(want["user_roles"])) {
		t.Errorf("derived entry %+v", derived)
	}

	// Row-level security on every table with tenant_id, without FORCE; none on scopes.
	rows, err = pool.Query(t.Context(), `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
  EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'),
  EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'authority' AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for rows.Next() {
		var name string
		var rls, force, policy, tenantCol bool
		if err := rows.Scan(&name, &rls, &force, &policy, &tenantCol); err != nil {
			t.Fatal(err)
		}
		if name == "schema_migrations" {
			continue
		}
		checked++
		if rls != tenantCol || policy != tenantCol || force {
			t.Errorf("%s: rls %v policy %v force %v, tenant_id column %v", name, rls, policy, force, tenantCol)
		}
	}
	rows.Close()
	if checked != len(Module().Tables()) {
		t.Errorf("checked %d tables, the module has %d", checked, len(Module().Tables()))
	}

	// Determinism: another database, other workers and batch size, same checksums.
	pool2 := newPool(t)
	applyMigrations(t, pool2)
	rep2, err := runModule(t, pool2, dir, 4, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Collections) != len(rep.Collections) {
		t.Fatalf("second run has %d collections, first %d", len(rep2.Collections), len(rep.Collections))
	}
	for _, c := range rep2.Collections {
		first := byName[c.Collection]
		if c.Checksum != first.Checksum || c.Checksum == "" {
			t.Errorf("%s: checksum %s, first run %s", c.Collection, c.Checksum, first.Checksum)
		}
	}
}

// TestSchemaRequired: without the migrations the run refuses before writing, naming what is
// missing.
func TestSchemaRequired(t *testing.T) {
	dir := writeDump(t, e2eSeed())
	pool := newPool(t)
	_, err := runModule(t, pool, dir, 2, 3)
	var sm *load.SchemaMismatchError
	if !errors.As(err, &sm) {
		t.Fatalf("err %v, want a SchemaMismatchError", err)
	}
	if !strings.Contains(sm.Error(), "table authority.users is missing") {
		t.Errorf("mismatch does not name authority.users: %v", sm)
	}
}

// TestMigrationsIdempotent: applying the migrations twice records them once and changes nothing.
func TestMigrationsIdempotent(t *testing.T) {
	pool := newPool(t)
	applyMigrations(t, pool)
	applyMigrations(t, pool)
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM authority.schema_migrations WHERE kind = 'schema'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(Module().Migrations) {
		t.Errorf("%d migrations recorded, want %d", n, len(Module().Migrations))
	}
}
