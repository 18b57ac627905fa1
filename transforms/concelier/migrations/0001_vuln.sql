-- Concelier → schema vuln (shared/spec/modules.md, Concelier). Advisory data is global: only
-- advisory_snapshots carries tenant_id, and no table has row-level security.

CREATE TABLE vuln.sources (
    id         uuid PRIMARY KEY,
    mongo_id   text NOT NULL,
    key        text NOT NULL,
    kind       text,
    url        text,
    enabled    boolean,
    priority   integer,
    config     jsonb,
    created_at timestamptz,
    updated_at timestamptz,
    CONSTRAINT sources_key_key UNIQUE (key)
);

-- One row per source: the Mongo _id is the source name, resolved to sources.id.
CREATE TABLE vuln.source_states (
    source_id       uuid PRIMARY KEY REFERENCES vuln.sources (id),
    cursor          jsonb,
    last_success_at timestamptz,
    last_error      text,
    fail_count      integer,
    backoff_until   timestamptz,
    updated_at      timestamptz
);

CREATE TABLE vuln.advisories (
    id            uuid PRIMARY KEY,
    mongo_id      text NOT NULL,
    advisory_key  text NOT NULL,
    source_id     uuid REFERENCES vuln.sources (id),
    title         text,
    summary       text,
    description   text,
    severity      text,
    exploit_known boolean,
    published_at  timestamptz,
    modified_at   timestamptz,
    language      text,
    provenance    jsonb,
    doc           jsonb NOT NULL,
    search        tsvector GENERATED ALWAYS AS (to_tsvector('simple', advisory_key || ' ' || coalesce(title, '') || ' ' || coalesce(summary, ''))) STORED,
    CONSTRAINT advisories_advisory_key_key UNIQUE (advisory_key)
);
CREATE INDEX advisories_source_id_idx ON vuln.advisories (source_id);

CREATE TABLE vuln.advisory_cvss (
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id),
    ordinal     integer NOT NULL,
    version     text,
    vector      text,
    base_score  numeric CONSTRAINT advisory_cvss_base_score_check CHECK (base_score BETWEEN 0 AND 10),
    severity    text,
    source      text,
    PRIMARY KEY (advisory_id, ordinal)
);

CREATE TABLE vuln.advisory_references (
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id),
    ordinal     integer NOT NULL,
    url         text NOT NULL,
    kind        text,
    source_tag  text,
    summary     text,
    PRIMARY KEY (advisory_id, ordinal)
);

CREATE TABLE vuln.advisory_credits (
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id),
    ordinal     integer NOT NULL,
    name        text,
    contact     text,
    role        text,
    PRIMARY KEY (advisory_id, ordinal)
);

CREATE TABLE vuln.advisory_weaknesses (
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id),
    cwe_id      text NOT NULL,
    PRIMARY KEY (advisory_id, cwe_id)
);

CREATE TABLE vuln.advisory_aliases (
    id          uuid PRIMARY KEY,
    mongo_id    text NOT NULL,
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id),
    scheme      text,
    value       text,
    CONSTRAINT advisory_aliases_advisory_id_scheme_value_key UNIQUE (advisory_id, scheme, value)
);

CREATE TABLE vuln.advisory_affected (
    id           uuid PRIMARY KEY,
    mongo_id     text NOT NULL,
    advisory_id  uuid NOT NULL REFERENCES vuln.advisories (id),
    ecosystem    text,
    package_name text,
    purl         text,
    ranges       jsonb,
    versions     text[]
);
CREATE INDEX advisory_affected_purl_idx ON vuln.advisory_affected (purl);
-- Supports the foreign key: deleting an advisory (delta runs) finds its affected rows.
CREATE INDEX advisory_affected_advisory_id_idx ON vuln.advisory_affected (advisory_id);

-- Raw upstream documents: only GridFS references, never the blobs. supersedes is no foreign
-- key: it names another snapshot's id whether or not that snapshot exists.
CREATE TABLE vuln.advisory_snapshots (
    id            uuid PRIMARY KEY,
    mongo_id      text NOT NULL,
    tenant_id     text NOT NULL,
    source_vendor text,
    upstream_id   text,
    content_hash  text,
    fetched_at    timestamptz,
    received_at   timestamptz,
    format        text,
    spec_version  text,
    content       jsonb,
    gridfs_id     text,
    identifiers   jsonb,
    linkset       jsonb,
    supersedes    uuid,
    CONSTRAINT advisory_snapshots_natural_key UNIQUE (source_vendor, upstream_id, content_hash, tenant_id)
);

-- Tier C: created empty in the generic shape.
CREATE TABLE vuln.jobs (
    id        uuid PRIMARY KEY,
    mongo_id  text NOT NULL,
    tenant_id text,
    doc       jsonb NOT NULL
);

CREATE TABLE vuln.locks (
    id        uuid PRIMARY KEY,
    mongo_id  text NOT NULL,
    tenant_id text,
    doc       jsonb NOT NULL
);
