-- Scheduler target schema (shared/spec/modules.md, Scheduler). Forward-only: never edit this
-- file once shipped; append a new migration. The schema itself and scheduler.schema_migrations
-- are created by the tool (load.ApplyMigrations), not here.

CREATE TABLE scheduler.schedules (
    id              uuid PRIMARY KEY,
    mongo_id        text NOT NULL,
    tenant_id       text NOT NULL,
    name            text NOT NULL,
    enabled         boolean,
    cron_expression text,
    timezone        text,
    mode            text,
    selection       jsonb,
    only_if         jsonb,
    notify          jsonb,
    limits          jsonb,
    created_at      timestamptz,
    created_by      text,
    updated_at      timestamptz,
    updated_by      text,
    deleted_at      timestamptz,
    deleted_by      text
);
-- A name is unique per tenant among live schedules only: soft-deleted ones keep their name.
CREATE UNIQUE INDEX schedules_tenant_id_name_live ON scheduler.schedules (tenant_id, name) WHERE deleted_at IS NULL;

-- runs is partitioned by month on created_at; the tool creates the partitions its data needs
-- (runs_yYYYYmMM) before loading, so there is deliberately no default partition. Unique keys
-- of a partitioned table must include the partition key, hence PRIMARY KEY (id, created_at).
CREATE TABLE scheduler.runs (
    id              uuid NOT NULL,
    mongo_id        text NOT NULL,
    tenant_id       text NOT NULL,
    schedule_id     uuid REFERENCES scheduler.schedules (id),
    trigger         text,
    state           text,
    stats           jsonb NOT NULL,
    reason          jsonb,
    deltas          jsonb,
    error           text,
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    stats_completed integer GENERATED ALWAYS AS ((stats->>'completed')::int) STORED,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
-- Deleting or looking up a schedule's runs must not scan every partition.
CREATE INDEX runs_schedule_id ON scheduler.runs (schedule_id);

CREATE TABLE scheduler.graph_jobs (
    id             uuid PRIMARY KEY,
    mongo_id       text NOT NULL,
    tenant_id      text NOT NULL,
    -- build 0, overlay 1
    type           smallint NOT NULL CHECK (type BETWEEN 0 AND 1),
    -- pending 0, queued 1, running 2, completed 3, failed 4, cancelled 5
    status         smallint NOT NULL CHECK (status BETWEEN 0 AND 5),
    payload        jsonb NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE scheduler.policy_jobs (
    id             uuid PRIMARY KEY,
    mongo_id       text NOT NULL,
    tenant_id      text NOT NULL,
    policy_id      text NOT NULL,
    policy_version integer,
    mode           text,
    status         text,
    priority       integer,
    inputs         jsonb,
    attempts       integer,
    last_error     text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz
);

CREATE TABLE scheduler.impact_snapshots (
    id           uuid PRIMARY KEY,
    mongo_id     text NOT NULL,
    tenant_id    text NOT NULL,
    snapshot_id  text,
    selector     jsonb,
    images       jsonb,
    image_count  integer,
    generated_at timestamptz NOT NULL
);

-- Tier C: created empty, in the generic shape.
CREATE TABLE scheduler.locks (
    id        uuid PRIMARY KEY,
    mongo_id  text NOT NULL,
    tenant_id text,
    doc       jsonb NOT NULL
);

-- Row-level security on every table with a tenant_id column, without FORCE: the loading role
-- owns the tables (or has BYPASSRLS) and writes every tenant's rows. On the partitioned runs
-- table it is enabled on the parent, through which the services query.
ALTER TABLE scheduler.schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.schedules USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.runs USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.graph_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.graph_jobs USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.policy_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.policy_jobs USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.impact_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.impact_snapshots USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.locks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduler.locks USING (tenant_id = current_setting('app.tenant_id'));
