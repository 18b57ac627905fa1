package transforms

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
)

// MapFunc maps one strictly valid document that the tier filter kept. id is its _id and
// canonical its canonical form; opt carries this call's own --fix-strings counter. It appends
// rows to out and returns nil, or the reject for the first fault found.
type MapFunc func(doc bson.Raw, id bson.RawValue, canonical string, opt Options, out *pipeline.RowBuffer) *pipeline.Reject

// Stage runs the decisions common to every collection in the order mapping.md fixes: strict
// BSON reading (a broken document is rejected before the tier filter), the _id, the tier
// filter, then the collection's mapping.
type Stage struct {
	Collection string
	Filter     tiers.Filter
	Options    Options
	Map        MapFunc
}

// Apply is the pipeline.Transform Apply of a collection built on Stage.
func (s Stage) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	if err := ValidateStrict(doc); err != nil {
		v := pipeline.Verdict{Reject: &pipeline.Reject{Reason: err.Error()}}
		// The _id is named when it can be read despite the fault.
		if id, lerr := bson.Raw(doc).LookupErr("_id"); lerr == nil && id.Validate() == nil {
			if c, cerr := CanonicalID(id); cerr == nil {
				v.ID, v.Reject.ID = &c, &c
			}
		}
		return v
	}
	id, ok := bsonpath.Top(doc, "_id")
	if !ok {
		return pipeline.Verdict{Reject: &pipeline.Reject{Path: "_id", Reason: "document has no _id"}}
	}
	canonical, err := CanonicalID(id)
	if err != nil {
		return pipeline.Verdict{Reject: &pipeline.Reject{Path: "_id", Reason: err.Error()}}
	}
	v := pipeline.Verdict{ID: &canonical}
	if skip := s.Filter.Decide(doc); skip != "" {
		v.Skip = skip
		return v
	}
	fixed := 0
	opt := s.Options
	opt.Fixed = &fixed
	if rej := s.Map(doc, id, canonical, opt, out); rej != nil {
		if rej.ID == nil {
			rej.ID = &canonical
		}
		v.Reject = rej
		return v
	}
	v.StringsFixed = fixed
	return v
}
