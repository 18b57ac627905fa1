-- Schema vex: Excititor's VEX documents, statements, observations, linksets and consensus
-- (shared/spec/modules.md, Excititor). The schema itself and vex.schema_migrations are created
-- by the tool (load.ApplyMigrations) before this runs.

CREATE TABLE vex.raw_documents (
    id           uuid PRIMARY KEY,
    mongo_id     text NOT NULL,
    tenant_id    text NOT NULL,
    digest       text NOT NULL UNIQUE,
    provider_id  text,
    format       text CHECK (format IN ('csaf', 'cyclonedx', 'openvex')),
    source_uri   text,
    retrieved_at timestamptz NOT NULL,
    content      bytea,
    gridfs_id    text,
    metadata     jsonb
);

CREATE TABLE vex.statements (
    id               uuid PRIMARY KEY,
    mongo_id         text NOT NULL,
    tenant_id        text NOT NULL,
    vulnerability_id text,
    product_key      text,
    status           text CHECK (status IN ('affected', 'not_affected', 'fixed', 'under_investigation')),
    justification    text,
    impact_statement text,
    action_statement text,
    provider_id      text,
    document_digest  text,
    issued_at        timestamptz,
    last_updated_at  timestamptz,
    created_at       timestamptz
);

CREATE TABLE vex.observations (
    id               uuid PRIMARY KEY,
    mongo_id         text NOT NULL,
    tenant_id        text NOT NULL,
    observation_id   text,
    vulnerability_id text,
    product_key      text,
    provider_id      text,
    status           text,
    justification    jsonb,
    confidence       jsonb,
    signals          jsonb,
    document_digest  text,
    purls            text[],
    cpes             text[],
    anchors          text[],
    created_at       timestamptz,
    UNIQUE (tenant_id, observation_id)
);
CREATE INDEX observations_tenant_vulnerability ON vex.observations (tenant_id, vulnerability_id);
CREATE INDEX observations_tenant_product ON vex.observations (tenant_id, product_key);
CREATE INDEX observations_tenant_document ON vex.observations (tenant_id, document_digest);
CREATE INDEX observations_tenant_provider_status ON vex.observations (tenant_id, provider_id, status);

CREATE TABLE vex.linksets (
    id               uuid PRIMARY KEY,
    mongo_id         text NOT NULL,
    tenant_id        text NOT NULL,
    linkset_id       text,
    vulnerability_id text,
    product_key      text,
    conflicts        jsonb,
    created_at       timestamptz,
    updated_at       timestamptz
);

CREATE TABLE vex.linkset_observations (
    linkset_id     uuid NOT NULL REFERENCES vex.linksets (id),
    ordinal        integer NOT NULL,
    observation_id uuid NOT NULL REFERENCES vex.observations (id),
    tenant_id      text NOT NULL,
    PRIMARY KEY (linkset_id, ordinal)
);
-- Not in the spec: serves the foreign key (deleting or replacing an observation) and
-- "which linksets hold this observation".
CREATE INDEX linkset_observations_observation ON vex.linkset_observations (observation_id);

CREATE TABLE vex.consensus (
    id                 uuid PRIMARY KEY,
    mongo_id           text NOT NULL,
    tenant_id          text NOT NULL,
    vulnerability_id   text,
    product_key        text,
    status             text,
    sources            jsonb,
    policy_revision_id text,
    calculated_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, vulnerability_id, product_key)
);

-- Tier C: created empty, in the generic shape.
-- Tier C: created empty, in the generic mode's shape (cli.md), like every module's Tier C table.
CREATE TABLE vex.cache (
    id        uuid PRIMARY KEY,
    mongo_id  text NOT NULL,
    tenant_id text NULL,
    doc       jsonb NOT NULL
);

-- Row-level security on every table with a tenant_id column, without FORCE: the table owner
-- (the loading role) still writes every tenant's rows.
ALTER TABLE vex.raw_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.raw_documents USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.statements ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.statements USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.observations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.observations USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.linksets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.linksets USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.linkset_observations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.linkset_observations USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.consensus ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.consensus USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.cache ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex.cache USING (tenant_id = current_setting('app.tenant_id'));
