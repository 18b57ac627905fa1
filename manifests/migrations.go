// Package manifests keeps the run state of conversions in the target database, schema
// `convert` (mapping.md, Manifest store): runs, collections, ranges, batches and rejects. A
// batch's manifest row commits in the transaction of its rows, so the store is the resume
// watermark and the audit trail at once. The schema is created by forward-only migrations,
// recorded with SHA-256 checksums under an advisory lock.
package manifests

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are forward-only: never edit one that has shipped, append a new one.
var migrations = []struct {
	name string
	sql  string
}{
	{"0001_manifest_store", `
CREATE TABLE convert.runs (
    id                 text PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('run', 'job', 'delta')),
    modules            text[],
    collections        text[],
    selection          text NOT NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    as_of              timestamptz NOT NULL,
    source_kind        text NOT NULL,
    source_fingerprint text NOT NULL,
    options            jsonb NOT NULL,
    tool_version       text NOT NULL,
    transform_version  text NOT NULL,
    status             text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'stopped')),
    error              text
);
CREATE INDEX runs_selection ON convert.runs (selection, started_at);

CREATE TABLE convert.collections (
    run_id        text NOT NULL REFERENCES convert.runs (id),
    collection    text NOT NULL,
    module        text NOT NULL,
    source_ns     text NOT NULL,
    tier          text NOT NULL,
    filter        jsonb NOT NULL,
    read          bigint NOT NULL DEFAULT 0,
    selected      bigint NOT NULL DEFAULT 0,
    loaded        bigint NOT NULL DEFAULT 0,
    rejected      bigint NOT NULL DEFAULT 0,
    skipped       jsonb NOT NULL DEFAULT '{}',
    rows          jsonb NOT NULL DEFAULT '{}',
    strings_fixed bigint NOT NULL DEFAULT 0,
    collapsed     bigint NOT NULL DEFAULT 0,
    table_sums    jsonb,
    checksum      bytea,
    status        text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    started_at    timestamptz,
    finished_at   timestamptz,
    elapsed_s     double precision,
    PRIMARY KEY (run_id, collection)
);

CREATE TABLE convert.ranges (
    run_id      text NOT NULL,
    collection  text NOT NULL,
    range_no    integer NOT NULL,
    type_class  text NOT NULL,
    lower       bytea,
    upper       bytea,
    status      text NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    claimed_by  text,
    claim_epoch integer NOT NULL DEFAULT 0,
    heartbeat   timestamptz,
    PRIMARY KEY (run_id, collection, range_no),
    FOREIGN KEY (run_id, collection) REFERENCES convert.collections (run_id, collection)
);

CREATE TABLE convert.batches (
    run_id       text NOT NULL,
    collection   text NOT NULL,
    range_no     integer NOT NULL,
    seq          integer NOT NULL,
    first_id     text,
    last_id      text,
    resume_id    bytea,
    start_offset bigint,
    end_offset   bigint,
    read         integer NOT NULL,
    loaded       integer NOT NULL,
    rows         jsonb NOT NULL,
    rejected     integer NOT NULL,
    skipped      jsonb NOT NULL,
    strings_fixed integer NOT NULL DEFAULT 0,
    collapsed    integer NOT NULL DEFAULT 0,
    table_sums   jsonb NOT NULL,
    checksum     bytea NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, collection, range_no, seq),
    FOREIGN KEY (run_id, collection, range_no) REFERENCES convert.ranges (run_id, collection, range_no)
);

CREATE TABLE convert.rejects (
    run_id     text NOT NULL,
    collection text NOT NULL,
    range_no   integer NOT NULL,
    seq        integer NOT NULL,
    _id        text,
    path       text NOT NULL,
    reason     text NOT NULL,
    raw        bytea NOT NULL,
    FOREIGN KEY (run_id, collection, range_no, seq) REFERENCES convert.batches (run_id, collection, range_no, seq)
);
CREATE INDEX rejects_by_collection ON convert.rejects (run_id, collection);
`},
	{"0002_delta", `
-- The primary keys a delta run produced, per table, committed with their batch: what is not
-- here when a collection completes is deleted from the target.
CREATE TABLE convert.delta_keys (
    run_id text  NOT NULL,
    tbl    text  NOT NULL,
    key    bytea NOT NULL,
    PRIMARY KEY (run_id, tbl, key)
);
-- The derived rows a delta run produced (checksum encoding), to rebuild derived tables exactly.
CREATE TABLE convert.delta_derived (
    run_id text  NOT NULL,
    tbl    text  NOT NULL,
    row    bytea NOT NULL
);
CREATE INDEX delta_derived_by_table ON convert.delta_derived (run_id, tbl);
`},
	{"0003_deferred_indexes", `
-- Secondary indexes a run dropped when it started (--defer-indexes), with the statement that
-- recreates each: the row is deleted in the transaction that rebuilds the index, when a
-- collection loading the table completes (in this run or any later one).
CREATE TABLE convert.deferred_indexes (
    schema_name text NOT NULL,
    index_name  text NOT NULL,
    table_name  text NOT NULL,
    definition  text NOT NULL,
    run_id      text NOT NULL,
    dropped_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, index_name)
);
`},
	{"0004_deferred_foreign_keys", `
-- Foreign keys are deferred too (--defer-foreign-keys): the record names its kind, and a
-- constraint's name is unique per table, not per schema like an index's.
ALTER TABLE convert.deferred_indexes RENAME TO deferred;
ALTER TABLE convert.deferred RENAME COLUMN index_name TO name;
ALTER TABLE convert.deferred ADD COLUMN kind text NOT NULL DEFAULT 'index'
    CHECK (kind IN ('index', 'foreign key'));
ALTER TABLE convert.deferred DROP CONSTRAINT deferred_indexes_pkey;
ALTER TABLE convert.deferred ADD PRIMARY KEY (schema_name, table_name, kind, name);
`},
	{"0005_batch_source_digest", `
-- What a resume proves before it reads on (cli.md, Runs, resume, replace): the SHA-256 of the
-- source BSON behind each batch, and for files the file read and its identity then (size and
-- modification time, for the refusal's message). NULL in batches committed before this
-- migration: those cannot be proven.
ALTER TABLE convert.batches ADD COLUMN source_digest bytea;
ALTER TABLE convert.batches ADD COLUMN source_file text;
ALTER TABLE convert.batches ADD COLUMN source_identity text;
`},
	{"0006_superseded_runs", `
-- A run is superseded once a later run writes any of its tables (cli.md): it is never
-- continued. The tables a run writes are recorded to find the runs a new one supersedes; a run
-- recorded before this migration has none, and is matched by its selection instead.
ALTER TABLE convert.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE convert.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'completed', 'failed', 'stopped', 'superseded'));
ALTER TABLE convert.runs ADD COLUMN tables text[];
ALTER TABLE convert.runs ADD COLUMN superseded_by text REFERENCES convert.runs (id);
`},
}

// Migrate brings schema `convert` up to date. Concurrent callers serialize on an advisory lock;
// an applied migration whose checksum differs from this binary's is refused.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("manifest store: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('convert:migrate'))`); err != nil {
		return fmt.Errorf("manifest store: lock: %w", err)
	}
	// A role without CREATE on the database can still use a store another role made.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('convert.schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("manifest store: %w", err)
	}
	if exists {
		// nothing to create
	} else if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS convert;
CREATE TABLE IF NOT EXISTS convert.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("manifest store: create schema: %w", err)
	}
	applied := map[int][]byte{}
	rows, err := tx.Query(ctx, `SELECT version, checksum FROM convert.schema_migrations`)
	if err != nil {
		return fmt.Errorf("manifest store: %w", err)
	}
	for rows.Next() {
		var v int
		var sum []byte
		if err := rows.Scan(&v, &sum); err != nil {
			return fmt.Errorf("manifest store: %w", err)
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("manifest store: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		sum := sha256.Sum256([]byte(m.sql))
		if got, ok := applied[version]; ok {
			if string(got) != string(sum[:]) {
				return &MigrationMismatchError{Version: version, Name: m.name}
			}
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("manifest store: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO convert.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
			version, m.name, sum[:]); err != nil {
			return fmt.Errorf("manifest store: record migration %s: %w", m.name, err)
		}
	}
	if len(applied) > len(migrations) {
		return fmt.Errorf("manifest store: schema convert is at version %d, newer than this tool (%d): upgrade the tool", len(applied), len(migrations))
	}
	return tx.Commit(ctx)
}

// MigrationMismatchError: the database holds a migration this binary would write differently.
type MigrationMismatchError struct {
	Version int
	Name    string
}

func (e *MigrationMismatchError) Error() string {
	return fmt.Sprintf("manifest store: migration %d (%s) was applied with a different checksum", e.Version, e.Name)
}

// ErrNoRun is returned for an unknown run id.
var ErrNoRun = errors.New("no such run")

var _ = pgx.ErrNoRows
