// Package excititor converts StellaOps Excititor's MongoDB collections (database excititor)
// into PostgreSQL schema vex. The contract is ../../../shared/spec/modules.md (Excititor, Source
// documents, Rules that cut across modules) and mapping.md; this package implements it and
// points there rather than restating it.
//
// Module returns the module: forward-only migrations (migrations/*.sql, embedded) and the
// collections in load order, parents first:
//
//	vex.raw          B, 90 days on retrievedAt → vex.raw_documents
//	vex.statements   A                         → vex.statements
//	vex.observations A                         → vex.observations
//	vex.linksets     A                         → vex.linksets, vex.linkset_observations
//	vex.consensus    A                         → vex.consensus
//	vex.cache        C                         → vex.cache (created empty)
//
// Every transform is pure (no pgx, no mongo client) and safe for concurrent Apply once Prepare
// has returned; Prepare builds read-only state. The decisions that span documents run in
// Prepare, over the documents still standing after strict reading, the tier filter, the value
// checks and references (the order modules.md fixes), by mapping each document once more into
// a scratch buffer:
//
//   - identity collisions (two _ids of different types with one canonical form): the smallest
//     _id keeps the row id, the others are rejected with "identity collision <_id>";
//   - observations UNIQUE(tenant_id, observation_id) and, under --fix-strings (the only case
//     where two standing documents can store one digest), raw_documents UNIQUE(digest): the
//     smallest _id wins, the others are rejected naming the key and the winner's _id;
//   - consensus UNIQUE(tenant_id, vulnerability_id, product_key): the latest calculatedAt wins
//     (ties: the greatest _id), the others are skipped as "superseded";
//   - linksets read the loaded observations (id → tenant) through KeyPass.Query; an element of
//     observationIds that names no loaded observation rejects the linkset with
//     "missing parent vex.observations/<id>", one of another tenant with
//     "cross-tenant reference vex.observations/<id>".
//
// Keys are compared as stored (after --fix-strings mends), read back from the row just written,
// so the key pass and Apply can never disagree.
//
// Choices where the spec is silent:
//   - raw_documents.digest is the _id (authoritative); a digest field is ignored, whatever it
//     holds. A non-string _id goes by the value rules (an ObjectId as 24 hex, others reject).
//   - gridfs_id takes only an ObjectId: a string would store arbitrary text where 24 hex is
//     promised. Null content or gridFsObjectId counts as absent.
//   - The hash check applies to an _id beginning "sha256:" in any case; a remainder that is not
//     the content's SHA-256 in hex (any case) rejects, malformed or not.
//   - observationIds: missing or null gives no link rows, a non-array rejects; every element,
//     of whatever type, maps through the observations id function, so a null or odd element is
//     a missing parent unless such an observation loaded.
//   - A CHECK column rejects a value outside its list with the value quoted (Go %q).
package excititor
