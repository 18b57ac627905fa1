// Package generic is the generic JSONB mode (cli.md, Inputs): any collection, every document
// kept whole as jsonb in (id uuid PK, mongo_id text NOT NULL, tenant_id text NULL, doc jsonb NOT
// NULL). id is UUIDv5 in the namespace of "urn:stellaops:convert:generic" over
// "<db>.<coll>:<canonical _id>"; tenant_id is a top-level string tenant, else a string tenantId.
package generic

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// Version is the generic transform's version, recorded in runs: a resume refuses another.
const Version = "generic/1"

// Spec is one --collection DB.COLL[=SCHEMA.TABLE].
type Spec struct {
	DB, Collection string
	Schema, Table  string
}

// Name is DB.COLL, the collection's name in manifests and reports.
func (s Spec) Name() string { return s.DB + "." + s.Collection }

var outside = regexp.MustCompile(`[^a-z0-9_]`)

// TargetName lower-cases a name and turns every character outside [a-z0-9_] into _.
func TargetName(s string) string { return outside.ReplaceAllString(strings.ToLower(s), "_") }

// ParseSpec reads DB.COLL[=SCHEMA.TABLE]. The database name cannot hold a dot, so the first dot
// splits database from collection (collection names may hold dots, e.g. vex.raw).
func ParseSpec(s string) (Spec, error) {
	src, dst, hasDst := strings.Cut(s, "=")
	db, coll, ok := strings.Cut(src, ".")
	if !ok || db == "" || coll == "" {
		return Spec{}, fmt.Errorf("--collection %q: want DB.COLL[=SCHEMA.TABLE]", s)
	}
	sp := Spec{DB: db, Collection: coll, Schema: TargetName(db), Table: TargetName(coll)}
	if hasDst {
		schema, table, ok := strings.Cut(dst, ".")
		if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
			return Spec{}, fmt.Errorf("--collection %q: target must be SCHEMA.TABLE", s)
		}
		sp.Schema, sp.Table = schema, table
	}
	// PostgreSQL cuts a longer identifier without an error, so two collections whose names
	// share their first 63 bytes would load into one table (cli.md, Inputs).
	for _, n := range []struct{ what, name string }{{"schema", sp.Schema}, {"table", sp.Table}} {
		if len(n.name) > MaxIdentBytes {
			return Spec{}, fmt.Errorf("--collection %q: %s name %q is %d bytes; PostgreSQL would cut it to %d: give an explicit =SCHEMA.TABLE", s, n.what, n.name, len(n.name), MaxIdentBytes)
		}
	}
	return sp, nil
}

// MaxIdentBytes is the longest identifier PostgreSQL keeps whole (NAMEDATALEN - 1).
const MaxIdentBytes = 63

// Table is the generic target table of a spec.
func Table(sp Spec) pipeline.Table {
	return pipeline.Table{
		Schema: sp.Schema, Name: sp.Table, CreateIfMissing: true, PrimaryKey: []string{"id"},
		Columns: []pipeline.Column{
			{Name: "id", Type: pipeline.TypeUUID, NotNull: true},
			{Name: "mongo_id", Type: pipeline.TypeText, NotNull: true},
			{Name: "tenant_id", Type: pipeline.TypeText},
			{Name: "doc", Type: pipeline.TypeJSONB, NotNull: true},
		},
	}
}

// Transform keeps documents of one collection as JSONB.
type Transform struct {
	spec   Spec
	tables []pipeline.Table
	ns     [16]byte
	stage  transforms.Stage

	mu sync.RWMutex
	// collide holds the canonical _ids that more than one source _id maps to, with the
	// winning _id (the smallest, in MongoDB's order) for each.
	collide map[string]bson.RawValue
}

var (
	_ pipeline.Transform = (*Transform)(nil)
	_ pipeline.Preparer  = (*Transform)(nil)
)

// New builds the transform of a spec with its tier filter (Tier A in generic mode).
func New(sp Spec, filter tiers.Filter, opt transforms.Options) *Transform {
	t := &Transform{spec: sp, tables: []pipeline.Table{Table(sp)}, ns: transforms.ModuleNamespace("generic")}
	t.stage = transforms.Stage{Collection: sp.Name(), Filter: filter, Options: opt, Map: t.mapDoc}
	return t
}

// Tables implements pipeline.Transform.
func (t *Transform) Tables() []pipeline.Table { return t.tables }

// Apply implements pipeline.Transform.
func (t *Transform) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.stage.Apply(doc, out)
}

// Prepare implements pipeline.Preparer: it finds _ids of different types whose canonical forms
// coincide (a string equal to an ObjectId's hex, a string that reads like another _id's
// Extended JSON); they would derive the same id. Where every _id is of one type class no
// collision is possible and nothing is read.
func (t *Transform) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	if len(kp.IDClasses) == 1 {
		return nil
	}
	// Only strings can collide with another type's canonical form; remember those that could,
	// and the canonical forms of the rare _ids that are neither strings nor ObjectIds.
	suspects := map[string]bool{}
	others := map[string]bson.RawValue{}
	err := kp.Scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, ok := bsonpath.Top(doc, "_id")
		if !ok {
			return nil // the document is rejected by Apply
		}
		switch v.Type {
		case bson.TypeString:
			s := v.StringValue()
			if isHex24(s) || strings.HasPrefix(s, "{") {
				suspects[s] = true
			}
		case bson.TypeObjectID:
			// checked in Apply against the suspects: a string with the same hex wins
		default:
			c, err := transforms.CanonicalID(v)
			if err == nil {
				others[c] = bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	collide := map[string]bson.RawValue{}
	for s := range suspects {
		str := bson.RawValue{Type: bson.TypeString, Value: bsonString(s)}
		if isHex24(s) {
			// An ObjectId with this hex may exist: strings sort before ObjectIds, so the string wins.
			collide[s] = str
		}
		if o, ok := others[s]; ok {
			if transforms.ClassRank(o.Type) < transforms.ClassRank(bson.TypeString) {
				collide[s] = o
			} else {
				collide[s] = str
			}
		}
	}
	t.mu.Lock()
	t.collide = collide
	t.mu.Unlock()
	return nil
}

func bsonString(s string) []byte {
	b := make([]byte, 0, len(s)+5)
	n := uint32(len(s) + 1)
	b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	b = append(b, s...)
	return append(b, 0)
}

func isHex24(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (t *Transform) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	t.mu.RLock()
	winner, collides := t.collide[canonical]
	t.mu.RUnlock()
	if collides && !winner.Equal(id) {
		return &pipeline.Reject{ID: &canonical, Path: "_id", Reason: "identity collision " + canonical}
	}
	// A string _id is kept as is in the id's name, but mongo_id is a stored text value: the
	// NUL and UTF-8 rules apply to it.
	mongoID, verr := transforms.CleanString(canonical, opt)
	if verr != nil {
		return &pipeline.Reject{ID: &canonical, Path: "_id", Reason: verr.Reason}
	}
	out.StartRow(0)
	u := transforms.UUIDv5(t.ns, t.spec.Name()+":"+canonical)
	out.Cell(u[:])
	out.Text(mongoID)
	if tenant, ok := tenantOf(doc); ok {
		s, verr := transforms.CleanString(tenant, opt)
		if verr != nil {
			return &pipeline.Reject{ID: &canonical, Path: "tenant", Reason: verr.Reason}
		}
		out.Text(s)
	} else {
		out.Null()
	}
	mark := out.BeginCell()
	out.Data, verr = transforms.AppendJSONB(out.Data, doc, opt)
	if verr != nil {
		return &pipeline.Reject{ID: &canonical, Path: verr.Path, Reason: verr.Reason}
	}
	out.EndCell(mark)
	out.EndRow()
	return nil
}

func tenantOf(doc bson.Raw) (string, bool) {
	for _, key := range []string{"tenant", "tenantId"} {
		if v, err := doc.LookupErr(key); err == nil {
			if s, ok := v.StringValueOK(); ok {
				return s, true
			}
		}
	}
	return "", false
}
