package authority

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// want is the expected outcome of one document.
type want struct {
	skip      string
	rej       *rej
	rows      map[string][][]any // every row per table, compared whole (nil: not checked)
	check     func(t *testing.T, o outcome)
	collapsed int
	fixed     int
}

// docCase is one collection as the key pass sees it, and the outcome of each document.
type docCase struct {
	name    string
	opt     transforms.Options
	parents fakeParents
	docs    []bson.D
	want    []want
}

func runCases(t *testing.T, coll string, cases []docCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.docs) != len(c.want) {
				t.Fatalf("%d documents, %d expectations", len(c.docs), len(c.want))
			}
			raws := make([]bson.Raw, len(c.docs))
			for i, d := range c.docs {
				raws[i] = marshal(t, d)
			}
			h := newHarness(t, coll, c.opt, c.parents, raws...)
			for i, raw := range raws {
				o := h.apply(raw)
				w := c.want[i]
				if o.v.Skip != w.skip {
					t.Errorf("doc %d: skip %q, want %q", i, o.v.Skip, w.skip)
				}
				if got := o.reject(); !reflect.DeepEqual(got, w.rej) {
					t.Errorf("doc %d: reject %+v, want %+v", i, got, w.rej)
				}
				if w.rows != nil && !equalRows(o.rows, w.rows) {
					t.Errorf("doc %d: rows\n got %v\nwant %v", i, o.rows, w.rows)
				}
				if w.check != nil {
					w.check(t, o)
				}
				if o.v.Collapsed != w.collapsed {
					t.Errorf("doc %d: collapsed %d, want %d", i, o.v.Collapsed, w.collapsed)
				}
				if o.v.StringsFixed != w.fixed {
					t.Errorf("doc %d: strings fixed %d, want %d", i, o.v.StringsFixed, w.fixed)
				}
			}
		})
	}
}

// equalRows compares decoded rows, times by instant.
func equalRows(got, want map[string][][]any) bool {
	return reflect.DeepEqual(normRows(got), normRows(want))
}

func normRows(m map[string][][]any) map[string][][]any {
	out := map[string][][]any{}
	for k, rows := range m {
		for _, r := range rows {
			n := make([]any, len(r))
			for i, v := range r {
				if tm, ok := v.(time.Time); ok {
					v = tm.UTC().Format(time.RFC3339Nano)
				}
				n[i] = v
			}
			out[k] = append(out[k], n)
		}
	}
	return out
}

// set returns d with key set to val (replaced in place, or appended); unset removes key.
func set(d bson.D, key string, val any) bson.D {
	out := append(bson.D(nil), d...)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = val
			return out
		}
	}
	return append(out, bson.E{Key: key, Value: val})
}

func unset(d bson.D, key string) bson.D {
	var out bson.D
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

// column returns the value of a named column of the only row of a table.
func column(t *testing.T, o outcome, table, name string) any {
	t.Helper()
	rows := o.rows[table]
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", table, len(rows))
	}
	var tb pipeline.Table
	for _, c := range Module().Collections {
		for _, x := range c.Tables {
			if x.Name == table {
				tb = x
			}
		}
	}
	for i, c := range tb.Written() {
		if c.Name == name {
			return rows[0][i]
		}
	}
	t.Fatalf("%s has no column %s", table, name)
	return nil
}

func columnIs(table, name string, v any) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		t.Helper()
		got := column(t, o, table, name)
		if tm, ok := v.(time.Time); ok {
			if g, ok := got.(time.Time); !ok || !g.Equal(tm) {
				t.Errorf("%s.%s = %v, want %v", table, name, got, v)
			}
			return
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%s.%s = %#v, want %#v", table, name, got, v)
		}
	}
}

var (
	created = time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	updated = time.Date(2025, 3, 4, 5, 6, 7, 89_000_000, time.UTC)
)

const (
	acme   = "urn:tenant:acme"
	globex = "urn:tenant:globex"
)

// ---------------------------------------------------------------- users

func userDoc(hexID, tenant, username string, roles ...any) bson.D {
	return bson.D{
		{Key: "_id", Value: oid(hexID)},
		{Key: "tenant", Value: tenant},
		{Key: "username", Value: username},
		{Key: "email", Value: username + "@acme.test"},
		{Key: "displayName", Value: "Ada Lovelace"},
		{Key: "passwordHash", Value: "$argon2id$v=19$abc"},
		{Key: "status", Value: "active"},
		{Key: "roles", Value: bson.A(roles)},
		{Key: "mfa", Value: bson.D{{Key: "enabled", Value: true}, {Key: "methods", Value: bson.A{"totp"}}}},
		{Key: "attributes", Value: bson.D{{Key: "department", Value: "appsec"}, {Key: "idp", Value: "local"}}},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(updated)},
		{Key: "lastLoginAt", Value: nil},
	}
}

const (
	u1 = "65f0c0ffee0123456789ab01"
	u2 = "65f0c0ffee0123456789ab02"
	u3 = "65f0c0ffee0123456789ab03"
)

func TestUsers(t *testing.T) {
	uid := userUUID(u1)
	full := want{
		collapsed: 1,
		rows: map[string][][]any{
			"users": {{uid, u1, acme, "ada", "ada@acme.test", "Ada Lovelace", "$argon2id$v=19$abc", "active", true,
				created, updated, nil, `{"idp": "local", "department": "appsec"}`}},
			"tenants":    {{acme, created}},
			"roles":      {{roleUUID(acme, "admin"), acme, "admin"}, {roleUUID(acme, "viewer"), acme, "viewer"}},
			"user_roles": {{uid, roleUUID(acme, "admin"), acme}, {uid, roleUUID(acme, "viewer"), acme}},
		},
	}
	noRoles := map[string][][]any{
		"users": {{uid, u1, acme, "ada", "ada@acme.test", "Ada Lovelace", "$argon2id$v=19$abc", "active", true,
			created, updated, nil, `{"idp": "local", "department": "appsec"}`}},
		"tenants": {{acme, created}},
	}
	doc := userDoc(u1, acme, "ada", "admin", "viewer", "admin")
	runCases(t, CollUsers, []docCase{
		{name: "every column, derived rows, repeated role collapsed", docs: []bson.D{doc}, want: []want{full}},
		{name: "roles missing, null or empty: no role rows",
			docs: []bson.D{unset(doc, "roles"), set(doc, "roles", nil), set(doc, "roles", bson.A{})},
			want: []want{{rows: noRoles}, {rows: noRoles}, {rows: noRoles}}},
		{name: "attributes missing or null load the default {}",
			docs: []bson.D{unset(doc, "attributes"), set(doc, "attributes", nil)},
			want: []want{
				{check: columnIs("users", "attributes", "{}"), collapsed: 1},
				{check: columnIs("users", "attributes", "{}"), collapsed: 1},
			}},
		{name: "mfa missing or not a document: mfa_enabled NULL",
			docs: []bson.D{unset(doc, "mfa"), set(doc, "mfa", true), set(doc, "mfa", bson.D{{Key: "enabled", Value: false}})},
			want: []want{
				{check: columnIs("users", "mfa_enabled", nil), collapsed: 1},
				{check: columnIs("users", "mfa_enabled", nil), collapsed: 1},
				{check: columnIs("users", "mfa_enabled", false), collapsed: 1},
			}},
		{name: "NOT NULL columns",
			docs: []bson.D{unset(doc, "username"), unset(doc, "createdAt"), set(doc, "tenant", nil)},
			want: []want{
				{rej: &rej{"username", "missing value for NOT NULL column username"}},
				{rej: &rej{"createdAt", "missing value for NOT NULL column created_at"}},
				{rej: &rej{"tenant", "missing value for NOT NULL column tenant_id"}},
			}},
		{name: "value checks",
			docs: []bson.D{
				set(doc, "tenant", int32(7)),
				set(doc, "createdAt", "2025-01-02T03:04:05Z"),
				set(doc, "username", "nul\x00inside"),
				set(doc, "mfa", bson.D{{Key: "enabled", Value: "yes"}}),
				set(set(doc, "email", 5), "username", int64(1)), // the first column in table order is named
			},
			want: []want{
				{rej: &rej{"tenant", "column tenant_id: expected text, found int"}},
				{rej: &rej{"createdAt", "column created_at: expected timestamp with time zone, found string"}},
				{rej: &rej{"username", "column username: string contains NUL"}},
				{rej: &rej{"mfa.enabled", "column mfa_enabled: expected boolean, found string"}},
				{rej: &rej{"username", "column username: expected text, found long"}},
			}},
		{name: "roles faults reject the user",
			docs: []bson.D{
				set(doc, "roles", "admin"),
				set(doc, "roles", bson.A{"admin", nil}),
				set(doc, "roles", bson.A{"admin", int32(5)}),
				set(doc, "roles", bson.A{"admin", "bad\xff"}),
			},
			want: []want{
				{rej: &rej{"roles", "expected an array of role names, found string"}},
				{rej: &rej{"roles.1", "missing value for NOT NULL column name"}},
				{rej: &rej{"roles.1", "column name: expected text, found int"}},
				{rej: &rej{"roles.1", "column name: string is not valid UTF-8"}},
			}},
		{name: "a fault in an ignored field does not reject",
			docs: []bson.D{set(doc, "unmapped", "nul\x00inside")},
			want: []want{{rows: full.rows, collapsed: 1}}},
		{name: "--fix-strings mends and counts once per value", opt: transforms.Options{FixStrings: true},
			docs: []bson.D{set(set(doc, "username", "a\x00da"), "roles", bson.A{"ad\x00min", "admin"})},
			want: []want{{
				fixed: 2, collapsed: 1,
				check: func(t *testing.T, o outcome) {
					columnIs("users", "username", "ada")(t, o)
					if got := o.rows["roles"]; len(got) != 1 || got[0][2] != "admin" {
						t.Errorf("roles %v, want one row admin", got)
					}
				},
			}}},
		{name: "unique (tenant_id, username): the smallest _id wins, other tenants unaffected",
			docs: []bson.D{userDoc(u2, acme, "jdoe"), userDoc(u1, acme, "jdoe"), userDoc(u3, globex, "jdoe")},
			want: []want{
				{rej: &rej{"username", "unique key (tenant_id, username) already held by _id " + u1}},
				{check: columnIs("users", "id", userUUID(u1))},
				{check: columnIs("users", "id", userUUID(u3))},
			}},
		{name: "unique key decided among standing documents only",
			docs: []bson.D{unset(userDoc(u1, acme, "jdoe"), "createdAt"), userDoc(u2, acme, "jdoe")},
			want: []want{
				{rej: &rej{"createdAt", "missing value for NOT NULL column created_at"}},
				{check: columnIs("users", "id", userUUID(u2))},
			}},
		{name: "identity collision: a string _id equal to an ObjectId's hex wins (strings sort first)",
			docs: []bson.D{userDoc(u1, acme, "one"), set(userDoc(u1, acme, "two"), "_id", u1)},
			want: []want{
				{rej: &rej{"_id", "identity collision " + u1}},
				{check: columnIs("users", "username", "two")},
			}},
	})
}

// TestUsersBeforePrepare: without the key pass a transform refuses rather than load a loser.
func TestUsersBeforePrepare(t *testing.T) {
	c := collection(t, CollUsers)
	tr := c.New(transforms.Env{Module: Name, Collection: CollUsers, Filter: c.Tier.Bind(asOf)})
	var buf pipeline.RowBuffer
	buf.Reset()
	v := tr.Apply(marshal(t, userDoc(u1, acme, "ada")), &buf)
	if v.Reject == nil || !strings.HasPrefix(v.Reject.Reason, "internal:") {
		t.Fatalf("verdict %+v, want an internal reject", v)
	}
}

// ---------------------------------------------------------------- clients

func clientDoc(id any, tenant string) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "clientId", Value: "ignored"},
		{Key: "tenant", Value: tenant},
		{Key: "displayName", Value: "Acme console"},
		{Key: "clientType", Value: "public"},
		{Key: "secretHash", Value: nil},
		{Key: "redirectUris", Value: bson.A{"https://console.acme.test/cb", "http://127.0.0.1:8765/cb"}},
		{Key: "allowedScopes", Value: bson.A{"vex:read", "advisory:read"}},
		{Key: "grantTypes", Value: bson.A{}},
		{Key: "enabled", Value: true},
		{Key: "createdAt", Value: dt(created)},
		{Key: "updatedAt", Value: dt(updated)},
		{Key: "properties", Value: bson.D{{Key: "senderConstraint", Value: "dpop"}, {Key: "audiences", Value: bson.A{"api://x"}}}},
	}
}

func TestClients(t *testing.T) {
	doc := clientDoc("acme-console", acme)
	full := map[string][][]any{
		"clients": {{uuid5("authority_clients:acme-console"), "acme-console", acme, "acme-console", "Acme console", "public", nil,
			strs("https://console.acme.test/cb", "http://127.0.0.1:8765/cb"), strs("vex:read", "advisory:read"), []any{},
			true, created, updated, `{"audiences": ["api://x"], "senderConstraint": "dpop"}`}},
		"tenants": {{acme, created}},
	}
	runCases(t, CollClients, []docCase{
		{name: "every column; client_id is the _id", docs: []bson.D{doc}, want: []want{{rows: full}}},
		{name: "createdAt missing: the tenants row contributes NULL",
			docs: []bson.D{unset(doc, "createdAt")},
			want: []want{{check: func(t *testing.T, o outcome) {
				if !reflect.DeepEqual(o.rows["tenants"], [][]any{{acme, nil}}) {
					t.Errorf("tenants %v", o.rows["tenants"])
				}
			}}}},
		{name: "an ObjectId _id is its hex",
			docs: []bson.D{clientDoc(oid(u1), acme)},
			want: []want{{check: columnIs("clients", "client_id", u1)}}},
		{name: "value checks",
			docs: []bson.D{
				clientDoc(int32(7), acme),
				unset(clientDoc("c2", acme), "tenant"),
				set(clientDoc("c3", acme), "redirectUris", bson.A{"https://x", int32(1)}),
				set(clientDoc("c4", acme), "enabled", "yes"),
				set(clientDoc("c5", acme), "properties", bson.D{{Key: "a", Value: 1}, {Key: "a", Value: 2}}),
			},
			want: []want{
				{rej: &rej{"_id", "column client_id: expected text, found int"}},
				{rej: &rej{"tenant", "missing value for NOT NULL column tenant_id"}},
				{rej: &rej{"redirectUris.1", "column redirect_uris: expected text[] element string, found int"}},
				{rej: &rej{"enabled", "column enabled: expected boolean, found string"}},
				{rej: &rej{"properties.a", "column properties: duplicate key \"a\""}},
			}},
		{name: "--fix-strings: two _ids mended into one client_id, the smallest wins", opt: transforms.Options{FixStrings: true},
			docs: []bson.D{clientDoc("ab", acme), clientDoc("a\x00b", acme)},
			want: []want{
				{rej: &rej{"_id", "unique key (client_id) already held by _id a\x00b"}},
				{check: columnIs("clients", "client_id", "ab"), fixed: 1},
			}},
	})
}

// ---------------------------------------------------------------- scopes

func TestScopes(t *testing.T) {
	s1, s2 := "65f0c0ffee0123456789ac01", "65f0c0ffee0123456789ac02"
	doc := func(id, name string) bson.D {
		return bson.D{
			{Key: "_id", Value: oid(id)}, {Key: "name", Value: name}, {Key: "description", Value: "Read advisories"},
			{Key: "resources", Value: bson.A{"concelier", nil}}, {Key: "createdAt", Value: dt(created)},
			{Key: "tenant", Value: acme}, // ignored: scopes are global
		}
	}
	runCases(t, CollScopes, []docCase{
		{name: "every column; global, no tenants row", docs: []bson.D{doc(s1, "advisory:read")},
			want: []want{{rows: map[string][][]any{"scopes": {{uuid5("authority_scopes:" + s1), s1, "advisory:read", "Read advisories", []any{"concelier", nil}, created}}}}}},
		{name: "name is a NOT NULL natural key", docs: []bson.D{unset(doc(s1, "x"), "name")},
			want: []want{{rej: &rej{"name", "missing value for NOT NULL column name"}}}},
		{name: "name UNIQUE: the smallest _id wins", docs: []bson.D{doc(s2, "advisory:read"), doc(s1, "advisory:read")},
			want: []want{
				{rej: &rej{"name", "unique key (name) already held by _id " + s1}},
				{check: columnIs("scopes", "mongo_id", s1)},
			}},
	})
}

// ---------------------------------------------------------------- service accounts

func TestServiceAccounts(t *testing.T) {
	a1, a2, a3 := "65f0c0ffee0123456789ad01", "65f0c0ffee0123456789ad02", "65f0c0ffee0123456789ad03"
	parents := fakeParents{clients: [][2]string{{"acme-ci", acme}, {"globex-ci", globex}}}
	doc := func(id, tenant, account string, client any) bson.D {
		return bson.D{
			{Key: "_id", Value: oid(id)}, {Key: "tenant", Value: tenant}, {Key: "accountId", Value: account},
			{Key: "displayName", Value: "CI pipeline"}, {Key: "clientId", Value: client},
			{Key: "scopes", Value: bson.A{"scheduler:read"}}, {Key: "enabled", Value: false},
			{Key: "createdAt", Value: dt(created)}, {Key: "updatedAt", Value: dt(updated)},
		}
	}
	runCases(t, CollServiceAccounts, []docCase{
		{name: "every column; a client of the same tenant", parents: parents,
			docs: []bson.D{doc(a1, acme, "svc-ci", "acme-ci")},
			want: []want{{rows: map[string][][]any{
				"service_accounts": {{uuid5("authority_service_accounts:" + a1), a1, acme, "svc-ci", "CI pipeline", "acme-ci", strs("scheduler:read"), false, created, updated}},
				"tenants":          {{acme, created}},
			}}}},
		{name: "null or missing clientId is NULL", parents: parents,
			docs: []bson.D{doc(a1, acme, "x", nil), unset(doc(a2, acme, "y", nil), "clientId")},
			want: []want{{check: columnIs("service_accounts", "client_id", nil)}, {check: columnIs("service_accounts", "client_id", nil)}}},
		{name: "references", parents: parents,
			docs: []bson.D{doc(a1, acme, "x", "nobody"), doc(a2, acme, "y", "globex-ci")},
			want: []want{
				{rej: &rej{"clientId", "missing parent authority_clients/nobody"}},
				{rej: &rej{"clientId", "cross-tenant reference authority_clients/globex-ci"}},
			}},
		{name: "a value fault is found before a reference", parents: parents,
			docs: []bson.D{set(doc(a1, acme, "x", "nobody"), "enabled", "no")},
			want: []want{{rej: &rej{"enabled", "column enabled: expected boolean, found string"}}}},
		{name: "unique (tenant_id, account_id); a NULL part never collides", parents: parents,
			docs: []bson.D{doc(a3, acme, "svc", nil), doc(a1, acme, "svc", nil), doc(a2, globex, "svc", nil),
				unset(doc(a1, globex, "", nil), "accountId"), unset(doc(a3, globex, "", nil), "accountId")},
			want: []want{
				{rej: &rej{"accountId", "unique key (tenant_id, account_id) already held by _id " + a1}},
				{}, {}, {}, {},
			}},
		{name: "a loser of a reference does not hold the key", parents: parents,
			docs: []bson.D{doc(a1, acme, "svc", "nobody"), doc(a2, acme, "svc", "acme-ci")},
			want: []want{{rej: &rej{"clientId", "missing parent authority_clients/nobody"}}, {}}},
	})
}

// TestPrepareNeedsQuery: a collection with references cannot prepare without reading its parents.
func TestPrepareNeedsQuery(t *testing.T) {
	for _, name := range []string{CollServiceAccounts, CollTokens} {
		c := collection(t, name)
		tr := c.New(transforms.Env{Module: Name, Collection: name, Filter: c.Tier.Bind(asOf)})
		err := tr.(pipeline.Preparer).Prepare(context.Background(), pipeline.KeyPass{Scan: func(func(bson.Raw) error) error { return nil }})
		if err == nil || !strings.Contains(err.Error(), "no query function") {
			t.Errorf("%s: Prepare without Query: %v", name, err)
		}
	}
}

// ---------------------------------------------------------------- tokens

func TestTokens(t *testing.T) {
	parents := fakeParents{
		users:   [][2]string{{userUUID(u1), acme}, {userUUID(u2), globex}},
		clients: [][2]string{{"acme-cli", acme}, {"globex-cli", globex}},
	}
	expires := asOf.Add(time.Hour)
	doc := func(id string, mods ...bson.E) bson.D {
		d := bson.D{
			{Key: "_id", Value: id}, {Key: "tenant", Value: acme}, {Key: "type", Value: "access_token"},
			{Key: "subjectId", Value: oid(u1)}, {Key: "clientId", Value: "acme-cli"},
			{Key: "scopes", Value: bson.A{"vex:read"}}, {Key: "status", Value: "valid"},
			{Key: "createdAt", Value: dt(created)}, {Key: "expiresAt", Value: dt(expires)},
			{Key: "revokedAt", Value: nil}, {Key: "payload", Value: bson.D{{Key: "amr", Value: bson.A{"pwd"}}}},
		}
		for _, m := range mods {
			d = set(d, m.Key, m.Value)
		}
		return d
	}
	e := func(k string, v any) bson.E { return bson.E{Key: k, Value: v} }
	runCases(t, CollTokens, []docCase{
		{name: "every column", parents: parents, docs: []bson.D{doc("tok-1")},
			want: []want{{rows: map[string][][]any{
				"tokens": {{uuid5("authority_tokens:tok-1"), "tok-1", acme, "access_token", userUUID(u1), "acme-cli",
					strs("vex:read"), "valid", created, expires, nil, `{"amr": ["pwd"]}`}},
				"tenants": {{acme, created}},
			}}}},
		{name: "active only: status valid and expiresAt > as-of", parents: parents,
			docs: []bson.D{
				doc("t-minus", e("expiresAt", dt(asOf.Add(-time.Second)))),
				doc("t-at", e("expiresAt", dt(asOf))),
				doc("t-plus", e("expiresAt", dt(asOf.Add(time.Second)))),
				doc("t-revoked", e("status", "revoked")),
				doc("t-expired", e("status", "expired")),
				unset(doc("t-noexp"), "expiresAt"),
				doc("t-strexp", e("expiresAt", asOf.Add(time.Hour).Format(time.RFC3339))),
				unset(doc("t-nostatus"), "status"),
			},
			want: []want{
				{skip: pipeline.SkipOutsideWindow}, {skip: pipeline.SkipOutsideWindow},
				{check: columnIs("tokens", "expires_at", asOf.Add(time.Second))},
				{skip: pipeline.SkipOutsideWindow}, {skip: pipeline.SkipOutsideWindow}, {skip: pipeline.SkipOutsideWindow},
				{skip: pipeline.SkipOutsideWindow}, {skip: pipeline.SkipOutsideWindow},
			}},
		{name: "subject and client may be NULL", parents: parents,
			docs: []bson.D{doc("t1", e("subjectId", nil), e("clientId", nil)), unset(unset(doc("t2"), "subjectId"), "clientId")},
			want: []want{
				{check: func(t *testing.T, o outcome) {
					columnIs("tokens", "subject_id", nil)(t, o)
					columnIs("tokens", "client_id", nil)(t, o)
				}},
				{check: columnIs("tokens", "subject_id", nil)},
			}},
		{name: "references", parents: parents,
			docs: []bson.D{
				doc("t1", e("subjectId", oid(u3))),
				doc("t2", e("subjectId", oid(u2))),
				doc("t3", e("clientId", "nobody")),
				doc("t4", e("clientId", "globex-cli")),
				doc("t5", e("subjectId", oid(u3)), e("clientId", "nobody")),
				doc("t6", e("subjectId", u1)), // a string spelling the user's hex maps to the same id
			},
			want: []want{
				{rej: &rej{"subjectId", "missing parent authority_users/" + u3}},
				{rej: &rej{"subjectId", "cross-tenant reference authority_users/" + u2}},
				{rej: &rej{"clientId", "missing parent authority_clients/nobody"}},
				{rej: &rej{"clientId", "cross-tenant reference authority_clients/globex-cli"}},
				{rej: &rej{"subjectId", "missing parent authority_users/" + u3}},
				{check: columnIs("tokens", "subject_id", userUUID(u1))},
			}},
		{name: "value checks come before references", parents: parents,
			docs: []bson.D{
				doc("t1", e("subjectId", oid(u3)), e("scopes", "vex:read")),
				doc("t2", e("payload", bson.D{{Key: "k", Value: "nul\x00"}})),
			},
			want: []want{
				{rej: &rej{"scopes", "column scopes: expected text[], found string"}},
				{rej: &rej{"payload.k", "column payload: string contains NUL"}},
			}},
	})
}

// ---------------------------------------------------------------- login attempts

func TestLoginAttempts(t *testing.T) {
	cut := asOf.Add(-90 * 24 * time.Hour)
	l1 := "65f0c0ffee0123456789ae01"
	doc := func(id string, at any) bson.D {
		return bson.D{
			{Key: "_id", Value: oid(id)}, {Key: "tenant", Value: globex}, {Key: "subjectId", Value: oid(u3)},
			{Key: "username", Value: "former.employee"}, {Key: "successful", Value: false},
			{Key: "reason", Value: "invalid_password"}, {Key: "remoteAddress", Value: "2001:db8::1"},
			{Key: "userAgent", Value: "curl/8.5.0"}, {Key: "occurredAt", Value: at},
		}
	}
	ids := []string{"65f0c0ffee0123456789ae02", "65f0c0ffee0123456789ae03", "65f0c0ffee0123456789ae04",
		"65f0c0ffee0123456789ae05", "65f0c0ffee0123456789ae06"}
	runCases(t, CollLoginAttempts, []docCase{
		{name: "every column; subject_id maps through the users id function and always loads",
			docs: []bson.D{doc(l1, dt(cut))},
			want: []want{{rows: map[string][][]any{
				"login_attempts": {{uuid5("authority_login_attempts:" + l1), l1, globex, userUUID(u3), "former.employee", false,
					"invalid_password", "2001:db8::1", "curl/8.5.0", cut}},
				"tenants": {{globex, nil}},
			}}}},
		{name: "90-day window on occurredAt, inclusive at the cutoff",
			docs: []bson.D{
				doc(ids[0], dt(cut.Add(-time.Second))), doc(ids[1], dt(cut)), doc(ids[2], dt(cut.Add(time.Second))),
				doc(ids[3], cut.Add(time.Hour).Format(time.RFC3339)), unset(doc(ids[4], nil), "occurredAt"),
			},
			want: []want{{skip: pipeline.SkipOutsideWindow}, {}, {}, {skip: pipeline.SkipOutsideWindow}, {skip: pipeline.SkipOutsideWindow}}},
		{name: "null subject is NULL", docs: []bson.D{set(doc(l1, dt(asOf)), "subjectId", nil)},
			want: []want{{check: columnIs("login_attempts", "subject_id", nil)}}},
	})
}

// ---------------------------------------------------------------- revocations

func TestRevocations(t *testing.T) {
	r1 := "65f0c0ffee0123456789af01"
	revoked := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	doc := bson.D{
		{Key: "_id", Value: oid(r1)}, {Key: "tenant", Value: acme}, {Key: "category", Value: "subject"},
		{Key: "revokedId", Value: u1}, {Key: "tokenType", Value: nil}, {Key: "clientId", Value: nil},
		{Key: "subjectId", Value: oid(u1)}, {Key: "revokedAt", Value: dt(revoked)},
		{Key: "reason", Value: "offboarding"}, {Key: "expiresAt", Value: nil},
	}
	runCases(t, CollRevocations, []docCase{
		{name: "every column; subject_id is plain text (ObjectId as hex)", docs: []bson.D{doc},
			want: []want{{rows: map[string][][]any{
				"revocations": {{uuid5("authority_revocations:" + r1), r1, acme, "subject", u1, nil, nil, u1, revoked, "offboarding", nil}},
				"tenants":     {{acme, nil}},
			}}}},
		{name: "category CHECK",
			docs: []bson.D{
				set(doc, "category", "token"), set(doc, "category", "client"), set(doc, "category", "key"),
				set(doc, "category", nil), set(doc, "category", "Token"), set(doc, "category", int32(1)),
			},
			want: []want{{}, {}, {}, {check: columnIs("revocations", "category", nil)},
				{rej: &rej{"category", `column category: value "Token" not allowed`}},
				{rej: &rej{"category", "column category: expected text, found int"}},
			}},
		{name: "the first fault in column order",
			docs: []bson.D{unset(set(doc, "category", "bogus"), "revokedAt"), unset(doc, "revokedAt")},
			want: []want{
				{rej: &rej{"category", `column category: value "bogus" not allowed`}},
				{rej: &rej{"revokedAt", "missing value for NOT NULL column revoked_at"}},
			}},
	})
}

// ---------------------------------------------------------------- identity

// TestIdentityCollisionOtherTypes: an _id of another type whose canonical Extended JSON a
// string spells derives the same id; the smaller _id in MongoDB's order wins (numbers sort
// before strings). _ids of one type class never collide and need no second look.
func TestIdentityCollisionOtherTypes(t *testing.T) {
	doc := func(id any, at time.Time) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: acme}, {Key: "category", Value: "key"}, {Key: "revokedAt", Value: dt(at)}}
	}
	runCases(t, CollRevocations, []docCase{
		{name: "int32 against its Extended JSON string",
			docs: []bson.D{doc(`{"$numberInt":"7"}`, created), doc(int32(7), created), doc("plain", created)},
			want: []want{{rej: &rej{"_id", `identity collision {"$numberInt":"7"}`}}, {}, {}}},
	})
}
