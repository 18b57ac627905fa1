package authority

import "github.com/stellaops/convert/transforms"

// migrations are the schema's forward-only steps (modules.md, Authority). Never edit one that
// has shipped: its SHA-256 is recorded in authority.schema_migrations and a changed one refuses.
// load.ApplyMigrations creates the schema and its ledger and runs these in one transaction.
var migrations = []transforms.Migration{
	{Name: "authority tables", SQL: tablesSQL},
	{Name: "authority row-level security", SQL: rlsSQL},
}

// tablesSQL creates the tables in load order. The spec's tables, columns, types, nullability,
// keys and CHECKs; the indexes beyond the keys serve the foreign keys (a parent's delete or
// truncate check) and StellaOps' lookups by tenant.
const tablesSQL = `
CREATE TABLE authority.tenants (
    tenant_id  text PRIMARY KEY,
    created_at timestamptz
);

CREATE TABLE authority.users (
    id            uuid PRIMARY KEY,
    mongo_id      text NOT NULL,
    tenant_id     text NOT NULL REFERENCES authority.tenants (tenant_id),
    username      text NOT NULL,
    email         text,
    display_name  text,
    password_hash text,
    status        text,
    mfa_enabled   boolean,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz,
    last_login_at timestamptz,
    attributes    jsonb NOT NULL DEFAULT '{}',
    UNIQUE (tenant_id, username)
);

CREATE TABLE authority.roles (
    id        uuid PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES authority.tenants (tenant_id),
    name      text NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE authority.user_roles (
    user_id   uuid NOT NULL REFERENCES authority.users (id),
    role_id   uuid NOT NULL REFERENCES authority.roles (id),
    tenant_id text NOT NULL REFERENCES authority.tenants (tenant_id),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON authority.user_roles (role_id);

CREATE TABLE authority.clients (
    id             uuid PRIMARY KEY,
    mongo_id       text NOT NULL,
    tenant_id      text NOT NULL REFERENCES authority.tenants (tenant_id),
    client_id      text NOT NULL UNIQUE,
    display_name   text,
    client_type    text,
    secret_hash    text,
    redirect_uris  text[],
    allowed_scopes text[],
    grant_types    text[],
    enabled        boolean,
    created_at     timestamptz,
    updated_at     timestamptz,
    properties     jsonb
);
CREATE INDEX clients_tenant_id_idx ON authority.clients (tenant_id);

CREATE TABLE authority.scopes (
    id          uuid PRIMARY KEY,
    mongo_id    text NOT NULL,
    name        text NOT NULL UNIQUE,
    description text,
    resources   text[],
    created_at  timestamptz
);

CREATE TABLE authority.service_accounts (
    id           uuid PRIMARY KEY,
    mongo_id     text NOT NULL,
    tenant_id    text NOT NULL REFERENCES authority.tenants (tenant_id),
    account_id   text,
    display_name text,
    client_id    text REFERENCES authority.clients (client_id),
    scopes       text[],
    enabled      boolean,
    created_at   timestamptz,
    updated_at   timestamptz,
    UNIQUE (tenant_id, account_id)
);
CREATE INDEX service_accounts_client_id_idx ON authority.service_accounts (client_id);

CREATE TABLE authority.tokens (
    id         uuid PRIMARY KEY,
    mongo_id   text NOT NULL,
    tenant_id  text NOT NULL REFERENCES authority.tenants (tenant_id),
    token_type text,
    subject_id uuid REFERENCES authority.users (id),
    client_id  text REFERENCES authority.clients (client_id),
    scopes     text[],
    status     text,
    created_at timestamptz,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    payload    jsonb
);
CREATE INDEX tokens_subject_id_idx ON authority.tokens (subject_id);
CREATE INDEX tokens_client_id_idx ON authority.tokens (client_id);
CREATE INDEX tokens_tenant_id_expires_at_idx ON authority.tokens (tenant_id, expires_at);

CREATE TABLE authority.login_attempts (
    id             uuid PRIMARY KEY,
    mongo_id       text NOT NULL,
    tenant_id      text NOT NULL REFERENCES authority.tenants (tenant_id),
    subject_id     uuid,
    username       text,
    successful     boolean,
    reason         text,
    remote_address text,
    user_agent     text,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX login_attempts_tenant_id_occurred_at_idx ON authority.login_attempts (tenant_id, occurred_at);
CREATE INDEX login_attempts_subject_id_idx ON authority.login_attempts (subject_id);

CREATE TABLE authority.revocations (
    id          uuid PRIMARY KEY,
    mongo_id    text NOT NULL,
    tenant_id   text NOT NULL REFERENCES authority.tenants (tenant_id),
    category    text CHECK (category IN ('token', 'subject', 'client', 'key')),
    revoked_id  text,
    token_type  text,
    client_id   text,
    subject_id  text,
    revoked_at  timestamptz NOT NULL,
    reason      text,
    expires_at  timestamptz
);
CREATE INDEX revocations_tenant_id_category_idx ON authority.revocations (tenant_id, category);
`

// rlsSQL enables row-level security on every table with a tenant_id column (modules.md, Rules
// that cut across modules), without FORCE: the owner that loads is not subject to it.
const rlsSQL = `
ALTER TABLE authority.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.tenants USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.users USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.roles USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.user_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.user_roles USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.clients ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.clients USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.service_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.service_accounts USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.tokens USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.login_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.login_attempts USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.revocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authority.revocations USING (tenant_id = current_setting('app.tenant_id'));
`
