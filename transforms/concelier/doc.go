// Package concelier converts StellaOps Concelier's MongoDB database (default "concelier") into
// the PostgreSQL schema vuln. The contract is ../../../shared/spec/modules.md, section
// Concelier, with mapping.md's value rules; this package implements it and points there rather
// than restating it.
//
// Module() is the whole API: the schema's forward-only migrations (migrations/*.sql, embedded),
// the tables as pipeline.Table values matching that DDL column for column, and the collections
// in load order:
//
//	source        Tier A  → vuln.sources (key ← name, unique)
//	source_state  Tier A  → vuln.source_states (PK source_id: the _id is a source name)
//	advisory      Tier A  → vuln.advisories (doc kept) + advisory_cvss, advisory_references,
//	                        advisory_credits, advisory_weaknesses from the embedded arrays
//	alias         Tier A  → vuln.advisory_aliases (advisory by advisoryKey)
//	affected      Tier A  → vuln.advisory_affected (advisory by advisoryKey)
//	advisory_raw  Tier B  → vuln.advisory_snapshots ("GridFS refs only": nothing skipped)
//	jobs, locks   Tier C  → vuln.jobs, vuln.locks, created empty
//
// Advisory data is global: only advisory_snapshots has tenant_id, and no table has row-level
// security, so no reference can cross tenants.
//
// References by natural key (sourceName, the source_state _id, advisoryKey) resolve against the
// parent rows already loaded, read once by each collection's key pass (Prepare, through
// KeyPass.Query). The key pass also maps every document once without deciding winners, exactly
// as Apply will, so that identity collisions and unique keys are decided among the documents
// still standing after the tier filter, value checks and references, smallest _id first
// (modules.md, Rules that cut across modules). What it settles is published once and read-only
// afterwards: Apply is safe for concurrent use. Apply before Prepare rejects every document
// with an internal reason rather than guessing.
//
// Choices where the spec is silent (each also noted where it is made):
//   - A natural-key reference may be a string or an ObjectId (read as its 24 hex, as a text
//     column stores one); any other type rejects with "column <c>: expected string, found <t>".
//     The key is looked up as stored, i.e. mended first under --fix-strings.
//   - content.gridFsObjectId must be an ObjectId; another type rejects (gridfs_id is its hex).
//   - A unique key's reject points at one field: advisoryKey, name, value (alias),
//     upstream.content_hash (advisory_raw), _id (source_state).
//   - A cvss, reference or credit element that is not an embedded document rejects the
//     advisory ("expected object, found <t>" at cvssMetrics.<i>); so does a non-array field.
//   - source_states' primary key source_id is decided like a unique key (smallest _id wins):
//     two _ids can name one source (a string and an ObjectId of the same hex, or names equal
//     once mended under --fix-strings).
//   - Tier C tables (vuln.jobs, vuln.locks) take the generic mode's shape exactly (cli.md):
//     mongo_id and doc NOT NULL.
package concelier
