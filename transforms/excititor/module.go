package excititor

import (
	_ "embed"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// The module's names (modules.md, Excititor).
const (
	ModuleName = "excititor"
	Schema     = "vex"
	DB         = "excititor"
	// Version is recorded in runs; bump it when a mapping changes so a resume across the change
	// refuses.
	Version = "excititor/1"
)

// Default source collection names: ids always use these, whatever a deployment calls the
// collections.
const (
	CollRaw          = "vex.raw"
	CollStatements   = "vex.statements"
	CollObservations = "vex.observations"
	CollLinksets     = "vex.linksets"
	CollConsensus    = "vex.consensus"
	CollCache        = "vex.cache"
)

// RawWindowDays is vex.raw's Tier B window on retrievedAt.
const RawWindowDays = 90

//go:embed migrations/0001_create_vex.sql
var migration0001 string

// Module is the Excititor module: schema vex, collections in load order (parents first).
func Module() transforms.Module {
	return transforms.Module{
		Name: ModuleName, Schema: Schema, DB: DB, Version: Version,
		Migrations: []transforms.Migration{{Name: "create vex tables", SQL: migration0001}},
		Collections: []transforms.Collection{
			{
				Name: CollRaw, Tier: tiers.Recent("retrievedAt", RawWindowDays), ChangeField: "retrievedAt",
				Tables: []pipeline.Table{rawDocumentsTable},
				New:    func(env transforms.Env) pipeline.Transform { return newRaw(env) },
			},
			{
				Name: CollStatements, Tier: tiers.Full(), ChangeField: "lastUpdatedAt",
				Tables: []pipeline.Table{statementsTable},
				New:    func(env transforms.Env) pipeline.Transform { return newStatements(env) },
			},
			{
				Name: CollObservations, Tier: tiers.Full(), ChangeField: "createdAt",
				Tables: []pipeline.Table{observationsTable},
				New:    func(env transforms.Env) pipeline.Transform { return newObservations(env) },
			},
			{
				Name: CollLinksets, Tier: tiers.Full(), Parents: []string{CollObservations}, ChangeField: "updatedAt",
				Tables: []pipeline.Table{linksetsTable, linksetObservationsTable},
				New:    func(env transforms.Env) pipeline.Transform { return newLinksets(env) },
			},
			{
				Name: CollConsensus, Tier: tiers.Full(), ChangeField: "calculatedAt",
				Tables: []pipeline.Table{consensusTable},
				New:    func(env transforms.Env) pipeline.Transform { return newConsensus(env) },
			},
			{
				Name: CollCache, Tier: tiers.Fresh(),
				Tables: []pipeline.Table{cacheTable},
				New:    func(env transforms.Env) pipeline.Transform { return newCache(env) },
			},
		},
	}
}

func col(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t}
}

func notNull(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t, NotNull: true}
}

// The target tables, column for column as migrations/0001_create_vex.sql creates them
// (unexported: Module().Tables() hands out the list, nobody may change them).
var (
	rawDocumentsTable = pipeline.Table{
		Schema: Schema, Name: "raw_documents", PrimaryKey: []string{"id"}, Unique: [][]string{{"digest"}},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			notNull("tenant_id", pipeline.TypeText),
			notNull("digest", pipeline.TypeText),
			col("provider_id", pipeline.TypeText),
			col("format", pipeline.TypeText),
			col("source_uri", pipeline.TypeText),
			notNull("retrieved_at", pipeline.TypeTimestamptz),
			col("content", pipeline.TypeBytea),
			col("gridfs_id", pipeline.TypeText),
			col("metadata", pipeline.TypeJSONB),
		},
	}
	statementsTable = pipeline.Table{
		Schema: Schema, Name: "statements", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			notNull("tenant_id", pipeline.TypeText),
			col("vulnerability_id", pipeline.TypeText),
			col("product_key", pipeline.TypeText),
			col("status", pipeline.TypeText),
			col("justification", pipeline.TypeText),
			col("impact_statement", pipeline.TypeText),
			col("action_statement", pipeline.TypeText),
			col("provider_id", pipeline.TypeText),
			col("document_digest", pipeline.TypeText),
			col("issued_at", pipeline.TypeTimestamptz),
			col("last_updated_at", pipeline.TypeTimestamptz),
			col("created_at", pipeline.TypeTimestamptz),
		},
	}
	observationsTable = pipeline.Table{
		Schema: Schema, Name: "observations", PrimaryKey: []string{"id"}, Unique: [][]string{{"tenant_id", "observation_id"}},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			notNull("tenant_id", pipeline.TypeText),
			col("observation_id", pipeline.TypeText),
			col("vulnerability_id", pipeline.TypeText),
			col("product_key", pipeline.TypeText),
			col("provider_id", pipeline.TypeText),
			col("status", pipeline.TypeText),
			col("justification", pipeline.TypeJSONB),
			col("confidence", pipeline.TypeJSONB),
			col("signals", pipeline.TypeJSONB),
			col("document_digest", pipeline.TypeText),
			col("purls", pipeline.TypeTextArray),
			col("cpes", pipeline.TypeTextArray),
			col("anchors", pipeline.TypeTextArray),
			col("created_at", pipeline.TypeTimestamptz),
		},
	}
	linksetsTable = pipeline.Table{
		Schema: Schema, Name: "linksets", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			notNull("tenant_id", pipeline.TypeText),
			col("linkset_id", pipeline.TypeText),
			col("vulnerability_id", pipeline.TypeText),
			col("product_key", pipeline.TypeText),
			col("conflicts", pipeline.TypeJSONB),
			col("created_at", pipeline.TypeTimestamptz),
			col("updated_at", pipeline.TypeTimestamptz),
		},
	}
	linksetObservationsTable = pipeline.Table{
		Schema: Schema, Name: "linkset_observations", PrimaryKey: []string{"linkset_id", "ordinal"},
		Columns: []pipeline.Column{
			notNull("linkset_id", pipeline.TypeUUID),
			notNull("ordinal", pipeline.TypeInt4),
			notNull("observation_id", pipeline.TypeUUID),
			notNull("tenant_id", pipeline.TypeText),
		},
	}
	consensusTable = pipeline.Table{
		Schema: Schema, Name: "consensus", PrimaryKey: []string{"id"}, Unique: [][]string{{"tenant_id", "vulnerability_id", "product_key"}},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			notNull("tenant_id", pipeline.TypeText),
			col("vulnerability_id", pipeline.TypeText),
			col("product_key", pipeline.TypeText),
			col("status", pipeline.TypeText),
			col("sources", pipeline.TypeJSONB),
			col("policy_revision_id", pipeline.TypeText),
			notNull("calculated_at", pipeline.TypeTimestamptz),
		},
	}
	cacheTable = pipeline.Table{
		Schema: Schema, Name: "cache", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", pipeline.TypeUUID),
			notNull("mongo_id", pipeline.TypeText),
			col("tenant_id", pipeline.TypeText),
			notNull("doc", pipeline.TypeJSONB),
		},
	}
)
