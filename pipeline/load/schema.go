package load

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/pipeline"
)

// Migration is one forward-only step of a module schema.
type Migration struct {
	Name string
	SQL  string
}

// MigrationChecksumError: the schema holds a migration this tool would write differently.
type MigrationChecksumError struct {
	Schema, Version, Name string
}

func (e *MigrationChecksumError) Error() string {
	return fmt.Sprintf("schema %s: migration %s (%s) was applied with a different checksum; the schema was changed by another version of the tool or by hand", e.Schema, e.Version, e.Name)
}

// SchemaMigrationsDDL is the ledger every module schema keeps: forward-only schema steps
// (kind 'schema') and data migrations of convert job (kind 'dm').
func SchemaMigrationsDDL(schema string) string {
	return `CREATE TABLE IF NOT EXISTS ` + pipeline.QuoteIdent(schema) + `.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('schema', 'dm')),
    checksum   bytea NOT NULL,
    applied_at timestamptz
)`
}

// ApplyMigrations brings a module schema up to date (--create-schema): under an advisory lock,
// each migration not yet recorded runs and is recorded with its SHA-256; a recorded one whose
// checksum differs refuses.
func ApplyMigrations(ctx context.Context, pool *pgxpool.Pool, schema string, migs []Migration) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "convert:schema:"+schema); err != nil {
		return fmt.Errorf("schema %s: lock: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pipeline.QuoteIdent(schema)); err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, SchemaMigrationsDDL(schema)); err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	applied := map[string][]byte{}
	rows, err := tx.Query(ctx, `SELECT version, checksum FROM `+pipeline.QuoteIdent(schema)+`.schema_migrations WHERE kind = 'schema'`)
	if err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	for rows.Next() {
		var v string
		var sum []byte
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return fmt.Errorf("schema %s: %w", schema, err)
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	for i, m := range migs {
		version := fmt.Sprintf("%04d", i+1)
		sum := sha256.Sum256([]byte(m.SQL))
		if got, ok := applied[version]; ok {
			if string(got) != string(sum[:]) {
				return &MigrationChecksumError{Schema: schema, Version: version, Name: m.Name}
			}
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("schema %s: migration %s %s: %w", schema, version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+pipeline.QuoteIdent(schema)+`.schema_migrations (version, name, kind, checksum, applied_at)
VALUES ($1, $2, 'schema', $3, now())`, version, m.Name, sum[:]); err != nil {
			return fmt.Errorf("schema %s: record migration %s: %w", schema, version, err)
		}
	}
	return tx.Commit(ctx)
}

// validateKeys checks that a table has its primary key and unique keys (as unique indexes over
// exactly those columns, partial ones included).
func (t *Target) validateKeys(ctx context.Context, tb pipeline.Table) ([]string, error) {
	want := [][]string{}
	if len(tb.PrimaryKey) > 0 {
		want = append(want, tb.PrimaryKey)
	}
	want = append(want, tb.Unique...)
	if len(want) == 0 {
		return nil, nil
	}
	rows, err := t.pool.Query(ctx, `SELECT array_agg(a.attname ORDER BY a.attname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique
GROUP BY i.indexrelid`, tb.Schema, tb.Name)
	if err != nil {
		return nil, fmt.Errorf("inspect %s keys: %w", tb.FullName(), err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var cols []string
		if err := rows.Scan(&cols); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inspect %s keys: %w", tb.FullName(), err)
		}
		have[strings.Join(cols, ",")] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inspect %s keys: %w", tb.FullName(), err)
	}
	var problems []string
	for _, k := range want {
		sorted := append([]string(nil), k...)
		sort.Strings(sorted)
		if !have[strings.Join(sorted, ",")] {
			problems = append(problems, fmt.Sprintf("%s: unique key (%s) is missing", tb.FullName(), strings.Join(k, ", ")))
		}
	}
	return problems, nil
}

// RLSError lists tables whose row-level security policies would apply to the loading role:
// PostgreSQL refuses COPY FROM into them.
type RLSError struct{ Tables []string }

func (e *RLSError) Error() string {
	return "row-level security applies to the loading role on: " + strings.Join(e.Tables, ", ") +
		" (load as the tables' owner without FORCE ROW LEVEL SECURITY, or as a role with BYPASSRLS)"
}

// CheckRLS refuses (before any data is written) when the current role could not write every
// tenant's rows: a table with row-level security enabled is writable by its owner unless FORCE
// is set, and by superusers and BYPASSRLS roles always.
func CheckRLS(ctx context.Context, pool *pgxpool.Pool, tables []pipeline.Table) error {
	var bypass bool
	if err := pool.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&bypass); err != nil {
		return fmt.Errorf("check row-level security: %w", err)
	}
	if bypass {
		return nil
	}
	var blocked []string
	for _, tb := range tables {
		var rls, force, owner bool
		err := pool.QueryRow(ctx, `SELECT c.relrowsecurity, c.relforcerowsecurity, pg_has_role(current_user, c.relowner, 'USAGE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, tb.Schema, tb.Name).Scan(&rls, &force, &owner)
		if err != nil {
			return fmt.Errorf("check row-level security of %s: %w", tb.FullName(), err)
		}
		if rls && (force || !owner) {
			blocked = append(blocked, tb.FullName())
		}
	}
	if len(blocked) > 0 {
		return &RLSError{Tables: blocked}
	}
	return nil
}

// RecordDM records a convert job in the module schema's ledger as a data migration (kind 'dm',
// version convert-<run id>, checksum SHA-256 of its recorded options); applied_at stays NULL
// until the job completes.
func RecordDM(ctx context.Context, pool *pgxpool.Pool, schema, runID string, options []byte) error {
	sum := sha256.Sum256(options)
	if _, err := pool.Exec(ctx, SchemaMigrationsDDL(schema)); err != nil {
		return fmt.Errorf("schema %s: %w", schema, err)
	}
	_, err := pool.Exec(ctx, `INSERT INTO `+pipeline.QuoteIdent(schema)+`.schema_migrations (version, name, kind, checksum)
VALUES ($1, $2, 'dm', $3) ON CONFLICT (version) DO NOTHING`, "convert-"+runID, "convert job "+runID, sum[:])
	if err != nil {
		return fmt.Errorf("schema %s: record data migration: %w", schema, err)
	}
	return nil
}

// CompleteDM sets applied_at of a job's data migration.
func CompleteDM(ctx context.Context, pool *pgxpool.Pool, schema, runID string) error {
	_, err := pool.Exec(ctx, `UPDATE `+pipeline.QuoteIdent(schema)+`.schema_migrations SET applied_at = now() WHERE version = $1 AND kind = 'dm'`, "convert-"+runID)
	if err != nil {
		return fmt.Errorf("schema %s: complete data migration: %w", schema, err)
	}
	return nil
}
