package authority

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// emptyObject is users.attributes' DEFAULT '{}', the one default the spec names.
var emptyObject = []byte("{}")

// ---------------------------------------------------------------- users

// users maps authority_users to users, and derives tenants, roles and user_roles.
type users struct{ *base }

func newUsers(env transforms.Env) *users {
	u := &users{base: newBase(env, CollUsers, usersTables(), &uniqueKey{cols: "tenant_id, username", path: "username"})}
	u.build = u.buildDoc
	return u
}

// Apply implements pipeline.Transform. A role repeated in one user's roles yields one
// user_roles row; the repeats are counted in Verdict.Collapsed (the stage's mapping cannot
// report them, so they are counted here from what it wrote).
func (u *users) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	n0 := len(out.Rows)
	v := u.stage.Apply(doc, out)
	if v.Skip != "" || v.Reject != nil {
		return v
	}
	written := 0
	for _, r := range out.Rows[n0:] {
		if r.Table == tiUserRoles {
			written++
		}
	}
	if roles, ok := transforms.Lookup(doc, "roles"); ok && roles.Type == bson.TypeArray {
		if vals, err := roles.Array().Values(); err == nil {
			v.Collapsed = len(vals) - written
		}
	}
	return v
}

func (u *users) buildDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
	mongo, rej := mongoID(canonical, opt)
	if rej != nil {
		return "", false, rej
	}
	userID := transforms.UUIDv5(u.ns, CollUsers+":"+canonical)
	r := transforms.NewRow(out, u.tables, tiMain, opt)
	r.UUID(userID)
	r.Text(mongo, "_id")
	r.Field(doc, "tenant")
	r.Field(doc, "username")
	r.Field(doc, "email")
	r.Field(doc, "displayName")
	r.Field(doc, "passwordHash")
	r.Field(doc, "status")
	r.Field(doc, "mfa.enabled")
	r.Field(doc, "createdAt")
	r.Field(doc, "updatedAt")
	r.Field(doc, "lastLoginAt")
	if v, ok := transforms.Lookup(doc, "attributes"); ok && v.Type != bson.TypeNull {
		r.Value(v, "attributes")
	} else {
		r.Bytes(emptyObject)
	}
	if rej := r.End(); rej != nil {
		return "", false, rej
	}
	tenant, _ := stored(doc, "tenant", opt)
	username, _ := stored(doc, "username", opt)

	// roles: the distinct names, in order of first appearance; each element is a roles.name.
	var names []string
	if v, ok := transforms.Lookup(doc, "roles"); ok && v.Type != bson.TypeNull {
		if v.Type != bson.TypeArray {
			return "", false, &pipeline.Reject{Path: "roles", Reason: "expected an array of role names, found " + v.Type.String()}
		}
		vals, err := v.Array().Values()
		if err != nil {
			return "", false, &pipeline.Reject{Path: "roles", Reason: err.Error()}
		}
		for i, e := range vals {
			path := "roles." + strconv.Itoa(i)
			name, ok, rej := textValue(e, path, "name", opt)
			if rej != nil {
				return "", false, rej
			}
			if !ok {
				return "", false, &pipeline.Reject{Path: path, Reason: "missing value for NOT NULL column name"}
			}
			if !contains(names, name) {
				names = append(names, name)
			}
		}
	}

	if rej := tenantRow(out, u.tables, tenant, doc, "createdAt", opt); rej != nil {
		return "", false, rej
	}
	for _, name := range names {
		roleID := transforms.DerivedID(u.ns, "roles", tenant, name)
		r := transforms.NewRow(out, u.tables, tiRoles, opt)
		r.UUID(roleID)
		r.Text(tenant, "tenant")
		r.Text(name, "roles")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		r = transforms.NewRow(out, u.tables, tiUserRoles, opt)
		r.UUID(userID)
		r.UUID(roleID)
		r.Text(tenant, "tenant")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
	}
	return tenant + "\x00" + username, true, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- clients

// newClients maps authority_clients to clients. The _id is the OAuth client_id (modules.md):
// client_id is the _id's stored form (a clientId field is ignored), so its uniqueness follows
// from the _id's, except where --fix-strings mends two _ids into one text: the unique key
// covers that case.
func newClients(env transforms.Env) *base {
	b := newBase(env, CollClients, clientsTables(), &uniqueKey{cols: "client_id", path: "_id"})
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiMain, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollClients+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "tenant")
		// A string or ObjectId _id is stored as mongo_id is; any other type is no client id
		// and the text column refuses it.
		if id.Type == bson.TypeString || id.Type == bson.TypeObjectID {
			r.Text(mongo, "_id")
		} else {
			r.Value(id, "_id")
		}
		r.Field(doc, "displayName")
		r.Field(doc, "clientType")
		r.Field(doc, "secretHash")
		r.Field(doc, "redirectUris")
		r.Field(doc, "allowedScopes")
		r.Field(doc, "grantTypes")
		r.Field(doc, "enabled")
		r.Field(doc, "createdAt")
		r.Field(doc, "updatedAt")
		r.Field(doc, "properties")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		tenant, _ := stored(doc, "tenant", opt)
		if rej := tenantRow(out, b.tables, tenant, doc, "createdAt", opt); rej != nil {
			return "", false, rej
		}
		return mongo, true, nil
	}
	return b
}

// ---------------------------------------------------------------- scopes

// newScopes maps authority_scopes to scopes: global (no tenant_id, no tenants row), name
// UNIQUE and NOT NULL (a natural key).
func newScopes(env transforms.Env) *base {
	b := newBase(env, CollScopes, scopesTables(), &uniqueKey{cols: "name", path: "name"})
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiScopes, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollScopes+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "name")
		r.Field(doc, "description")
		r.Field(doc, "resources")
		r.Field(doc, "createdAt")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		name, _ := stored(doc, "name", opt)
		return name, true, nil
	}
	return b
}

// ---------------------------------------------------------------- service accounts

// newServiceAccounts maps authority_service_accounts; client_id references clients by their
// natural key and must name a loaded client of the same tenant.
func newServiceAccounts(env transforms.Env) *base {
	b := newBase(env, CollServiceAccounts, serviceAccountsTables(), &uniqueKey{cols: "tenant_id, account_id", path: "accountId"})
	b.needClients = true
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		p, rej := b.parentsOrReject()
		if rej != nil {
			return "", false, rej
		}
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiMain, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollServiceAccounts+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "tenant")
		r.Field(doc, "accountId")
		r.Field(doc, "displayName")
		r.Field(doc, "clientId")
		r.Field(doc, "scopes")
		r.Field(doc, "enabled")
		r.Field(doc, "createdAt")
		r.Field(doc, "updatedAt")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		tenant, _ := stored(doc, "tenant", opt)
		if client, ok := stored(doc, "clientId", opt); ok {
			if rej := checkClient(p, client, tenant, "clientId"); rej != nil {
				return "", false, rej
			}
		}
		if rej := tenantRow(out, b.tables, tenant, doc, "createdAt", opt); rej != nil {
			return "", false, rej
		}
		account, hasAccount := stored(doc, "accountId", opt)
		return tenant + "\x00" + account, hasAccount, nil
	}
	return b
}

// ---------------------------------------------------------------- tokens

// newTokens maps the active authority_tokens (the tier keeps status "valid" and expiresAt >
// as-of). subject_id is the users id of subjectId and must be a loaded user of the token's
// tenant; client_id must be a loaded client of the token's tenant.
func newTokens(env transforms.Env) *base {
	b := newBase(env, CollTokens, tokensTables(), nil)
	b.needUsers, b.needClients = true, true
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		p, rej := b.parentsOrReject()
		if rej != nil {
			return "", false, rej
		}
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		subject, subjectCanon, rej := b.userRef(doc, "subjectId")
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiMain, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollTokens+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "tenant")
		r.Field(doc, "type")
		r.OptUUID(subject, "subjectId")
		r.Field(doc, "clientId")
		r.Field(doc, "scopes")
		r.Field(doc, "status")
		r.Field(doc, "createdAt")
		r.Field(doc, "expiresAt")
		r.Field(doc, "revokedAt")
		r.Field(doc, "payload")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		tenant, _ := stored(doc, "tenant", opt)
		if subject != nil {
			owner, ok := p.users[*subject]
			switch {
			case !ok:
				return "", false, &pipeline.Reject{Path: "subjectId", Reason: "missing parent " + CollUsers + "/" + subjectCanon}
			case owner != tenant:
				return "", false, &pipeline.Reject{Path: "subjectId", Reason: "cross-tenant reference " + CollUsers + "/" + subjectCanon}
			}
		}
		if client, ok := stored(doc, "clientId", opt); ok {
			if rej := checkClient(p, client, tenant, "clientId"); rej != nil {
				return "", false, rej
			}
		}
		if rej := tenantRow(out, b.tables, tenant, doc, "createdAt", opt); rej != nil {
			return "", false, rej
		}
		return "", false, nil
	}
	return b
}

// ---------------------------------------------------------------- login attempts

// newLoginAttempts maps authority_login_attempts of the last 90 days. subject_id is no
// reference (users may be gone): it maps through the users id function and always loads.
func newLoginAttempts(env transforms.Env) *base {
	b := newBase(env, CollLoginAttempts, loginAttemptsTables(), nil)
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		subject, _, rej := b.userRef(doc, "subjectId")
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiMain, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollLoginAttempts+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "tenant")
		r.OptUUID(subject, "subjectId")
		r.Field(doc, "username")
		r.Field(doc, "successful")
		r.Field(doc, "reason")
		r.Field(doc, "remoteAddress")
		r.Field(doc, "userAgent")
		r.Field(doc, "occurredAt")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		tenant, _ := stored(doc, "tenant", opt)
		if rej := tenantRow(out, b.tables, tenant, doc, "", opt); rej != nil {
			return "", false, rej
		}
		return "", false, nil
	}
	return b
}

// ---------------------------------------------------------------- revocations

// revocationCategories is revocations.category's CHECK.
var revocationCategories = []string{"token", "subject", "client", "key"}

// newRevocations maps authority_revocations. Its client_id and subject_id are plain text (no
// reference): a revocation outlives what it revokes.
func newRevocations(env transforms.Env) *base {
	b := newBase(env, CollRevocations, revocationsTables(), nil)
	b.build = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (string, bool, *pipeline.Reject) {
		mongo, rej := mongoID(canonical, opt)
		if rej != nil {
			return "", false, rej
		}
		r := transforms.NewRow(out, b.tables, tiMain, opt)
		r.UUID(transforms.UUIDv5(b.ns, CollRevocations+":"+canonical))
		r.Text(mongo, "_id")
		r.Field(doc, "tenant")
		r.Field(doc, "category")
		// The CHECK is a value check of this column: it comes before the later columns'.
		if cat, ok := stored(doc, "category", opt); ok && !contains(revocationCategories, cat) {
			r.Fail("category", `column category: value "`+cat+`" not allowed`)
		}
		r.Field(doc, "revokedId")
		r.Field(doc, "tokenType")
		r.Field(doc, "clientId")
		r.Field(doc, "subjectId")
		r.Field(doc, "revokedAt")
		r.Field(doc, "reason")
		r.Field(doc, "expiresAt")
		if rej := r.End(); rej != nil {
			return "", false, rej
		}
		tenant, _ := stored(doc, "tenant", opt)
		if rej := tenantRow(out, b.tables, tenant, doc, "", opt); rej != nil {
			return "", false, rej
		}
		return "", false, nil
	}
	return b
}
