package excititor

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// cache is vex.cache, Tier C: every readable document is skipped ("tier C") and vex.cache is
// created empty by the migration. A structurally broken document is still rejected, before the
// tier filter, like everywhere else.
type cache struct {
	st transforms.Stage
}

var _ pipeline.Transform = (*cache)(nil)

func newCache(env transforms.Env) *cache {
	return &cache{st: transforms.Stage{Collection: CollCache, Filter: env.Filter, Options: env.Options,
		Map: func(bson.Raw, bson.RawValue, string, transforms.Options, *pipeline.RowBuffer) *pipeline.Reject {
			// Reached only if an operator gave the collection a tier that keeps documents.
			return &pipeline.Reject{Reason: "internal: " + CollCache + " is Tier C and maps no rows"}
		}}}
}

// Tables implements pipeline.Transform.
func (t *cache) Tables() []pipeline.Table { return []pipeline.Table{cacheTable} }

// Apply implements pipeline.Transform.
func (t *cache) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return t.st.Apply(doc, out)
}
