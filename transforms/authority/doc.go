// Package authority converts StellaOps Authority's MongoDB collections (database
// stellaops_authority) into the PostgreSQL schema authority. The contract is the Authority
// section of ../../shared/spec/modules.md with its "Source documents" and "Rules that cut across
// modules", and ../../shared/spec/mapping.md; this package implements them and says here only
// what those leave open.
//
// Module returns the module: its forward-only migrations, its tables and its seven collections
// in load order:
//
//	authority_users            → users, and the derived tenants, roles, user_roles
//	authority_clients          → clients (+ tenants)
//	authority_scopes           → scopes (global: no tenant_id, no tenants row)
//	authority_service_accounts → service_accounts (+ tenants); client_id → clients(client_id)
//	authority_tokens           → tokens (+ tenants); subject_id → users, client_id → clients
//	authority_login_attempts   → login_attempts (+ tenants); subject_id is no reference
//	authority_revocations      → revocations (+ tenants)
//
// Each transform is pure (no pgx, no mongo client) and built on transforms.Stage: strict BSON,
// the _id, the tier filter, then the mapping. Every collection implements pipeline.Preparer:
// its key pass reads the parents it references (kp.Query over already loaded tables), then
// runs the mapping without key decisions over every document to find those still standing,
// and among them decides identity collisions and the unique keys the source never enforced
// (smallest _id wins). The decisions are read-only once Prepare returns, so Apply is safe for
// concurrent use; an Apply before Prepare rejects with an internal reason rather than load a
// duplicate.
//
// Decisions where the spec is silent (each also in the report to the lead):
//   - Every tenant-scoped table (users, roles, user_roles, clients, service_accounts, tokens,
//     login_attempts, revocations) has FK tenant_id → tenants, not users alone: each loaded
//     document writes its tenants row in its own batch, before its other rows, so the key is
//     always satisfied and documents the invariant that tenants lists every tenant.
//   - tenants.created_at is the least created_at of the tenant's loaded users, clients,
//     service_accounts and tokens rows; login_attempts and revocations have no created_at and
//     contribute NULL, which least() ignores.
//   - clients are tenant-scoped (tenant_id NOT NULL, the module convention). client_id is the
//     _id (modules.md: "source _id is the client id string"); a clientId field is ignored.
//   - service_accounts.enabled is boolean, as clients.enabled: the "no type means text"
//     convention would refuse every source document, which holds a bool.
//   - users.attributes: a missing or null attributes loads the spec's DEFAULT '{}'.
//   - users.roles: a missing or null roles gives no roles; a non-array roles, or an element
//     that is null or not text, rejects the user (roles.name is NOT NULL).
//   - Identity collisions and unique keys are decided among the documents standing after the
//     tier filter, value checks and references; identity first, then the collection's key.
//   - Reference checks run after the row's value checks, in column order; a CHECK is a value
//     check of its column (revocations.category).
//   - A role repeated in one user's roles is counted in Verdict.Collapsed by the users
//     transform's Apply around the stage, from the user_roles rows the mapping wrote: a
//     transforms.MapFunc cannot report it.
package authority
