package concelier

import (
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// Module identity (modules.md, Concelier).
const (
	Name    = "concelier"
	DB      = "concelier"
	Version = "concelier/1"
)

// rawTier is advisory_raw's Tier B: no window and nothing skipped; B means the GridFS blobs
// its documents point at are not copied.
var rawTier = tiers.Tier{Name: tiers.B, Note: "GridFS refs only: blobs are not copied"}

// Module describes the Concelier module: schema vuln, its migrations, and its collections in
// load order (sources before everything that names them, advisories before their aliases and
// affected packages).
func Module() transforms.Module {
	return transforms.Module{
		Name: Name, Schema: Schema, DB: DB, Version: Version,
		Migrations: migrations(),
		Collections: []transforms.Collection{
			{Name: "source", Tier: tiers.Full(), ChangeField: "updatedAt",
				Tables: []pipeline.Table{sourcesTable()}, New: newSource},
			{Name: "source_state", Tier: tiers.Full(), Parents: []string{"source"}, ChangeField: "updatedAt",
				Tables: []pipeline.Table{sourceStatesTable()}, New: newSourceState},
			{Name: "advisory", Tier: tiers.Full(), Parents: []string{"source"}, ChangeField: "modifiedAt",
				Tables: []pipeline.Table{advisoriesTable(), advisoryCVSSTable(), advisoryReferencesTable(), advisoryCreditsTable(), advisoryWeaknessesTable()},
				New:    newAdvisory},
			// alias and affected have no field that says they changed: delta runs rescan them.
			{Name: "alias", Tier: tiers.Full(), Parents: []string{"advisory"},
				Tables: []pipeline.Table{aliasesTable()}, New: newAlias},
			{Name: "affected", Tier: tiers.Full(), Parents: []string{"advisory"},
				Tables: []pipeline.Table{affectedTable()}, New: newAffected},
			{Name: "advisory_raw", Tier: rawTier, ChangeField: "upstream.received_at",
				Tables: []pipeline.Table{snapshotsTable()}, New: newAdvisoryRaw},
			{Name: "jobs", Tier: tiers.Fresh(),
				Tables: []pipeline.Table{genericTable("jobs")}, New: func(env transforms.Env) pipeline.Transform { return newFresh(env, "jobs") }},
			{Name: "locks", Tier: tiers.Fresh(),
				Tables: []pipeline.Table{genericTable("locks")}, New: func(env transforms.Env) pipeline.Transform { return newFresh(env, "locks") }},
		},
	}
}
