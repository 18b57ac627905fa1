package authority

import (
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// Module facts (modules.md, Authority).
const (
	Name    = "authority"
	Schema  = "authority"
	DB      = "stellaops_authority"
	Version = "authority/1"
)

// Default source collection names: ids are always derived with these, whatever a deployment
// calls its collections.
const (
	CollUsers           = "authority_users"
	CollClients         = "authority_clients"
	CollScopes          = "authority_scopes"
	CollServiceAccounts = "authority_service_accounts"
	CollTokens          = "authority_tokens"
	CollLoginAttempts   = "authority_login_attempts"
	CollRevocations     = "authority_revocations"
)

// Module is the Authority module: its migrations, and its collections in load order (parents
// first: tokens reference users and clients, service accounts reference clients).
func Module() transforms.Module {
	return transforms.Module{
		Name: Name, Schema: Schema, DB: DB, Version: Version,
		Migrations: append([]transforms.Migration(nil), migrations...),
		Collections: []transforms.Collection{
			{
				Name: CollUsers, Tier: tiers.Full(), ChangeField: "updatedAt",
				Tables: usersTables(),
				New:    func(env transforms.Env) pipeline.Transform { return newUsers(env) },
			},
			{
				Name: CollClients, Tier: tiers.Full(), ChangeField: "updatedAt",
				Tables: clientsTables(),
				New:    func(env transforms.Env) pipeline.Transform { return newClients(env) },
			},
			{
				Name: CollScopes, Tier: tiers.Full(),
				Tables: scopesTables(),
				New:    func(env transforms.Env) pipeline.Transform { return newScopes(env) },
			},
			{
				Name: CollServiceAccounts, Tier: tiers.Full(), ChangeField: "updatedAt",
				Parents: []string{CollClients},
				Tables:  serviceAccountsTables(),
				New:     func(env transforms.Env) pipeline.Transform { return newServiceAccounts(env) },
			},
			{
				Name: CollTokens, Tier: tokensTier(),
				Parents: []string{CollUsers, CollClients},
				Tables:  tokensTables(),
				New:     func(env transforms.Env) pipeline.Transform { return newTokens(env) },
			},
			{
				Name: CollLoginAttempts, Tier: tiers.Recent("occurredAt", 90), ChangeField: "occurredAt",
				Tables: loginAttemptsTables(),
				New:    func(env transforms.Env) pipeline.Transform { return newLoginAttempts(env) },
			},
			{
				Name: CollRevocations, Tier: tiers.Full(), ChangeField: "revokedAt",
				Tables: revocationsTables(),
				New:    func(env transforms.Env) pipeline.Transform { return newRevocations(env) },
			},
		},
	}
}

// tokensTier is "B active only": status "valid" and expiresAt strictly after the as-of.
func tokensTier() tiers.Tier {
	return tiers.Tier{Name: tiers.B, Keep: tiers.And{
		tiers.Equals{Field: "status", Value: "valid"},
		tiers.After{Field: "expiresAt"},
	}}
}

// Column shorthands.
func col(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t}
}

func notNull(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t, NotNull: true}
}

const (
	tUUID  = pipeline.TypeUUID
	tText  = pipeline.TypeText
	tJSONB = pipeline.TypeJSONB
	tBool  = pipeline.TypeBool
	tTime  = pipeline.TypeTimestamptz
	tArray = pipeline.TypeTextArray
)

// The derived tables. tenants folds every loaded row of a tenant into one row whose created_at
// is the least seen (least() ignores NULL, so rows without created_at never lower it); rows of
// one batch sharing a tenant are folded to the least first by the sink (ORDER BY created_at,
// NULLs last). roles and user_roles rows are identical whoever writes them: DO NOTHING.

func tenantsTable() pipeline.Table {
	return pipeline.Table{
		Schema: Schema, Name: "tenants", PrimaryKey: []string{"tenant_id"},
		Columns:     []pipeline.Column{notNull("tenant_id", tText), col("created_at", tTime)},
		Derived:     true,
		ConflictKey: []string{"tenant_id"},
		Least:       []string{"created_at"},
	}
}

func rolesTable() pipeline.Table {
	return pipeline.Table{
		Schema: Schema, Name: "roles", PrimaryKey: []string{"id"}, Unique: [][]string{{"tenant_id", "name"}},
		Columns: []pipeline.Column{notNull("id", tUUID), notNull("tenant_id", tText), notNull("name", tText)},
		Derived: true,
	}
}

func userRolesTable() pipeline.Table {
	return pipeline.Table{
		Schema: Schema, Name: "user_roles", PrimaryKey: []string{"user_id", "role_id"},
		Columns: []pipeline.Column{notNull("user_id", tUUID), notNull("role_id", tUUID), notNull("tenant_id", tText)},
		Derived: true,
	}
}

// Table indexes within each collection's table list, as the transforms write them.
const (
	tiTenants   = 0 // every tenant-scoped collection writes tenants first
	tiMain      = 1 // then its own table
	tiRoles     = 2 // users only
	tiUserRoles = 3 // users only
	tiScopes    = 0 // scopes has no tenants table
)

func usersTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "users", PrimaryKey: []string{"id"}, Unique: [][]string{{"tenant_id", "username"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			notNull("username", tText), col("email", tText), col("display_name", tText),
			col("password_hash", tText), col("status", tText), col("mfa_enabled", tBool),
			notNull("created_at", tTime), col("updated_at", tTime), col("last_login_at", tTime),
			notNull("attributes", tJSONB),
		},
	}, rolesTable(), userRolesTable()}
}

func clientsTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "clients", PrimaryKey: []string{"id"}, Unique: [][]string{{"client_id"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			notNull("client_id", tText), col("display_name", tText), col("client_type", tText),
			col("secret_hash", tText), col("redirect_uris", tArray), col("allowed_scopes", tArray),
			col("grant_types", tArray), col("enabled", tBool), col("created_at", tTime),
			col("updated_at", tTime), col("properties", tJSONB),
		},
	}}
}

func scopesTables() []pipeline.Table {
	return []pipeline.Table{{
		Schema: Schema, Name: "scopes", PrimaryKey: []string{"id"}, Unique: [][]string{{"name"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("name", tText),
			col("description", tText), col("resources", tArray), col("created_at", tTime),
		},
	}}
}

func serviceAccountsTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "service_accounts", PrimaryKey: []string{"id"}, Unique: [][]string{{"tenant_id", "account_id"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			col("account_id", tText), col("display_name", tText), col("client_id", tText),
			col("scopes", tArray), col("enabled", tBool), col("created_at", tTime), col("updated_at", tTime),
		},
	}}
}

func tokensTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "tokens", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			col("token_type", tText), col("subject_id", tUUID), col("client_id", tText),
			col("scopes", tArray), col("status", tText), col("created_at", tTime),
			notNull("expires_at", tTime), col("revoked_at", tTime), col("payload", tJSONB),
		},
	}}
}

func loginAttemptsTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "login_attempts", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			col("subject_id", tUUID), col("username", tText), col("successful", tBool),
			col("reason", tText), col("remote_address", tText), col("user_agent", tText),
			notNull("occurred_at", tTime),
		},
	}}
}

func revocationsTables() []pipeline.Table {
	return []pipeline.Table{tenantsTable(), {
		Schema: Schema, Name: "revocations", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText),
			col("category", tText), col("revoked_id", tText), col("token_type", tText),
			col("client_id", tText), col("subject_id", tText), notNull("revoked_at", tTime),
			col("reason", tText), col("expires_at", tTime),
		},
	}}
}
