package concelier

import (
	"embed"
	"io/fs"
	"sort"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// Schema is the target schema of the module.
const Schema = "vuln"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations lists the forward-only schema steps in file name order. A shipped file is never
// edited: a change is a new file.
func migrations() []transforms.Migration {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic("concelier: migrations: " + err.Error()) // a bad pattern is a programming error
	}
	sort.Strings(names)
	out := make([]transforms.Migration, 0, len(names))
	for _, n := range names {
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			panic("concelier: migration " + n + ": " + err.Error()) // embedded: cannot fail
		}
		out = append(out, transforms.Migration{Name: n[len("migrations/"):], SQL: string(b)})
	}
	return out
}

// Column helpers keep the table lists below as readable as the DDL they mirror.
func col(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t}
}

func notNull(name string, t pipeline.ColumnType) pipeline.Column {
	return pipeline.Column{Name: name, Type: t, NotNull: true}
}

const (
	tUUID  = pipeline.TypeUUID
	tText  = pipeline.TypeText
	tJSONB = pipeline.TypeJSONB
	tInt4  = pipeline.TypeInt4
	tNum   = pipeline.TypeNumeric
	tBool  = pipeline.TypeBool
	tTime  = pipeline.TypeTimestamptz
	tTexts = pipeline.TypeTextArray
	tTSV   = pipeline.TypeTSVector
)

// searchExpr is advisories.search (modules.md, conventions).
const searchExpr = `to_tsvector('simple', advisory_key || ' ' || coalesce(title, '') || ' ' || coalesce(summary, ''))`

// The tables, column for column in the order of migrations/0001_vuln.sql.

func sourcesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "sources", PrimaryKey: []string{"id"}, Unique: [][]string{{"key"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("key", tText), col("kind", tText), col("url", tText),
			col("enabled", tBool), col("priority", tInt4), col("config", tJSONB), col("created_at", tTime), col("updated_at", tTime),
		}}
}

func sourceStatesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "source_states", PrimaryKey: []string{"source_id"},
		Columns: []pipeline.Column{
			notNull("source_id", tUUID), col("cursor", tJSONB), col("last_success_at", tTime), col("last_error", tText),
			col("fail_count", tInt4), col("backoff_until", tTime), col("updated_at", tTime),
		}}
}

func advisoriesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisories", PrimaryKey: []string{"id"}, Unique: [][]string{{"advisory_key"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("advisory_key", tText), col("source_id", tUUID),
			col("title", tText), col("summary", tText), col("description", tText), col("severity", tText),
			col("exploit_known", tBool), col("published_at", tTime), col("modified_at", tTime), col("language", tText),
			col("provenance", tJSONB), notNull("doc", tJSONB),
			{Name: "search", Type: tTSV, Generated: searchExpr},
		}}
}

func advisoryCVSSTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_cvss", PrimaryKey: []string{"advisory_id", "ordinal"},
		Columns: []pipeline.Column{
			notNull("advisory_id", tUUID), notNull("ordinal", tInt4), col("version", tText), col("vector", tText),
			col("base_score", tNum), col("severity", tText), col("source", tText),
		}}
}

func advisoryReferencesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_references", PrimaryKey: []string{"advisory_id", "ordinal"},
		Columns: []pipeline.Column{
			notNull("advisory_id", tUUID), notNull("ordinal", tInt4), notNull("url", tText), col("kind", tText),
			col("source_tag", tText), col("summary", tText),
		}}
}

func advisoryCreditsTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_credits", PrimaryKey: []string{"advisory_id", "ordinal"},
		Columns: []pipeline.Column{
			notNull("advisory_id", tUUID), notNull("ordinal", tInt4), col("name", tText), col("contact", tText), col("role", tText),
		}}
}

func advisoryWeaknessesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_weaknesses", PrimaryKey: []string{"advisory_id", "cwe_id"},
		Columns: []pipeline.Column{notNull("advisory_id", tUUID), notNull("cwe_id", tText)}}
}

func aliasesTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_aliases", PrimaryKey: []string{"id"},
		Unique: [][]string{{"advisory_id", "scheme", "value"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("advisory_id", tUUID), col("scheme", tText), col("value", tText),
		}}
}

func affectedTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_affected", PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("advisory_id", tUUID), col("ecosystem", tText),
			col("package_name", tText), col("purl", tText), col("ranges", tJSONB), col("versions", tTexts),
		}}
}

func snapshotsTable() pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: "advisory_snapshots", PrimaryKey: []string{"id"},
		Unique: [][]string{{"source_vendor", "upstream_id", "content_hash", "tenant_id"}},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), notNull("tenant_id", tText), col("source_vendor", tText),
			col("upstream_id", tText), col("content_hash", tText), col("fetched_at", tTime), col("received_at", tTime),
			col("format", tText), col("spec_version", tText), col("content", tJSONB), col("gridfs_id", tText),
			col("identifiers", tJSONB), col("linkset", tJSONB), col("supersedes", tUUID),
		}}
}

// genericTable is a Tier C table: the generic mode's shape (cli.md, Inputs), created empty.
func genericTable(name string) pipeline.Table {
	return pipeline.Table{Schema: Schema, Name: name, PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			notNull("id", tUUID), notNull("mongo_id", tText), col("tenant_id", tText), notNull("doc", tJSONB),
		}}
}
