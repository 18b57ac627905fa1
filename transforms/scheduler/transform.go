package scheduler

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// collection is the transform every scheduler collection is built on: a transforms.Stage
// (strict BSON, _id, tier filter, then the mapping) whose mapping first writes the row (value
// checks and references, rows) and then applies the decisions that span documents — identity
// collisions and, for schedules, the unique key — which Prepare settles over the documents
// still standing after the tier filter, the value checks and the references (modules.md, order
// of decisions per document). Apply is safe for concurrent use: what Prepare builds is
// replaced whole under mu and only read afterwards.
type collection struct {
	name   string
	tables []pipeline.Table
	ns     [16]byte
	opt    transforms.Options

	// rows writes the document's rows; it depends on no other document of the collection.
	rows transforms.MapFunc
	// unique, when set, is the collection's unique key that the source never enforced.
	unique *uniqueKey

	stage    transforms.Stage // every decision: Apply
	standing transforms.Stage // every decision but those spanning documents: Prepare

	mu sync.RWMutex
	// collide maps a canonical _id that more than one standing document holds (a string equal
	// to an ObjectId's hex, ...) to the winner, the smallest _id.
	collide map[string]bson.RawValue
	winners *transforms.Winners
}

// uniqueKey describes a unique key decided by the smallest-_id rule (mapping.md).
type uniqueKey struct {
	columns string // "(tenant_id, name)", as the reject names it
	path    string // the source field the reject points at
	// of returns the document's key as stored (after --fix-strings), or false when the
	// document holds none (a NULL part, a soft-deleted schedule).
	of func(doc bson.Raw, fix bool) (string, bool)
}

var (
	_ pipeline.Transform = (*collection)(nil)
	_ pipeline.Preparer  = (*collection)(nil)
)

func newCollection(env transforms.Env, name string, table pipeline.Table, rows transforms.MapFunc, unique *uniqueKey) *collection {
	c := &collection{name: name, tables: []pipeline.Table{table}, ns: transforms.ModuleNamespace(Name), opt: env.Options,
		rows: rows, unique: unique}
	c.stage = transforms.Stage{Collection: name, Filter: env.Filter, Options: env.Options, Map: c.mapDoc}
	c.standing = transforms.Stage{Collection: name, Filter: env.Filter, Options: env.Options, Map: rows}
	return c
}

// Tables implements pipeline.Transform.
func (c *collection) Tables() []pipeline.Table { return c.tables }

// Apply implements pipeline.Transform.
func (c *collection) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return c.stage.Apply(doc, out)
}

// Prepare implements pipeline.Preparer.
func (c *collection) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	return c.prepare(ctx, kp, nil)
}

// rowID is the id of this collection's document with canonical _id canonical (mapping.md,
// Identity): RowID's name, without computing the canonical form again.
func (c *collection) rowID(canonical string) [16]byte {
	return transforms.UUIDv5(c.ns, c.name+":"+canonical)
}

func (c *collection) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	if rej := c.rows(doc, id, canonical, opt, out); rej != nil {
		return rej
	}
	c.mu.RLock()
	winner, collides := c.collide[canonical]
	winners := c.winners
	c.mu.RUnlock()
	if collides && !sameID(winner, id) {
		return &pipeline.Reject{Path: "_id", Reason: "identity collision " + canonical}
	}
	if c.unique != nil && winners != nil {
		if key, ok := c.unique.of(doc, opt.FixStrings); ok {
			if win, held := winners.Winner(key); held && !sameID(win, id) {
				wc, err := transforms.CanonicalID(win)
				if err != nil {
					wc = "<unreadable>"
				}
				return &pipeline.Reject{Path: c.unique.path, Reason: "unique key " + c.unique.columns + " already held by _id " + wc}
			}
		}
	}
	return nil
}

// observer sees the standing documents during the key pass (runs: the months its partitions
// need). wants tells, cheaply and before the document is mapped, whether observe could learn
// anything from it; a document it does not want, and that neither holds a unique key nor could
// collide on identity, is not mapped at all.
type observer struct {
	wants   func(doc bson.Raw) bool
	observe func(doc bson.Raw)
}

// prepare scans the collection once, runs the documents that matter through the standing stage
// (all of them when there is a unique key; those an observer wants), and decides identity
// collisions and then the unique key among the documents that stand; a document that loses its
// identity does not hold a unique key.
func (c *collection) prepare(ctx context.Context, kp pipeline.KeyPass, obs *observer) error {
	if kp.Scan == nil {
		return errors.New(Name + "." + c.name + ": key pass without a Scan")
	}
	type held struct {
		id        bson.RawValue
		canonical string
		key       string
	}
	var (
		ids     idCollector
		keys    []held
		scratch pipeline.RowBuffer
	)
	// Where only identity collisions are at stake, a document matters only if its _id could
	// share its canonical form with an _id of another type; when the source knows that every
	// _id is of one type class, none can.
	onlyIDs := c.unique == nil
	if onlyIDs && obs == nil && len(kp.IDClasses) == 1 {
		c.mu.Lock()
		c.collide, c.winners = map[string]bson.RawValue{}, &transforms.Winners{}
		c.mu.Unlock()
		return nil
	}
	err := kp.Scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if onlyIDs {
			id, ok := bsonpath.Top(doc, "_id")
			if (!ok || !mayCollide(id)) && (obs == nil || !obs.wants(doc)) {
				return nil
			}
		}
		scratch.Reset()
		v := c.standing.Apply(doc, &scratch)
		if v.Skip != "" || v.Reject != nil {
			return nil
		}
		id, ok := bsonpath.Top(doc, "_id")
		if !ok {
			return nil // cannot happen: the stage rejects a document without _id
		}
		ids.add(id, *v.ID)
		if obs != nil {
			obs.observe(doc)
		}
		if c.unique != nil {
			if key, ok := c.unique.of(doc, c.opt.FixStrings); ok {
				keys = append(keys, held{id: copyValue(id), canonical: *v.ID, key: key})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	collide := ids.decide()
	winners := &transforms.Winners{}
	for _, h := range keys {
		if win, ok := collide[h.canonical]; ok && !sameID(win, h.id) {
			continue
		}
		winners.Offer(h.key, h.id)
	}
	c.mu.Lock()
	c.collide, c.winners = collide, winners
	c.mu.Unlock()
	return nil
}

// idCollector finds standing documents whose _ids of different types have the same canonical
// form and so would derive the same row id (mapping.md, Identity). Only a string can equal
// another type's canonical form — an ObjectId's 24 hex digits, the Extended JSON of a number,
// date or binary ("{...}"), true, false or null — so only such strings, and the rare _ids that
// are neither strings nor ObjectIds, are remembered: a collection of ObjectIds or ordinary
// strings costs nothing.
type idCollector struct {
	suspects map[string]bool
	others   map[string]bson.RawValue
}

// mayCollide tells whether an _id could share its canonical form with an _id of another type.
// An ObjectId is decided by the strings alone: a string with the same hex sorts first and wins.
func mayCollide(id bson.RawValue) bool {
	switch id.Type {
	case bson.TypeObjectID:
		return false
	case bson.TypeString:
		s, ok := id.StringValueOK()
		return ok && suspectString(s)
	}
	return true
}

func suspectString(s string) bool {
	return isHex24(s) || strings.HasPrefix(s, "{") || s == "true" || s == "false" || s == "null"
}

func (c *idCollector) add(id bson.RawValue, canonical string) {
	switch id.Type {
	case bson.TypeObjectID:
	case bson.TypeString:
		if suspectString(canonical) {
			if c.suspects == nil {
				c.suspects = map[string]bool{}
			}
			c.suspects[canonical] = true
		}
	default:
		if c.others == nil {
			c.others = map[string]bson.RawValue{}
		}
		c.others[canonical] = copyValue(id)
	}
}

// decide returns the canonical forms held by more than one _id (or, for a 24-hex string,
// possibly by an ObjectId too), each with its winner: the smallest _id in MongoDB's order.
func (c *idCollector) decide() map[string]bson.RawValue {
	out := map[string]bson.RawValue{}
	for s := range c.suspects {
		str := stringValue(s)
		if isHex24(s) {
			out[s] = str
		}
		if o, ok := c.others[s]; ok {
			if transforms.CompareIDs(o, str) < 0 {
				out[s] = o
			} else {
				out[s] = str
			}
		}
	}
	return out
}

func sameID(a, b bson.RawValue) bool {
	return a.Type == b.Type && string(a.Value) == string(b.Value)
}

func copyValue(v bson.RawValue) bson.RawValue {
	return bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
}

func stringValue(s string) bson.RawValue {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, len(s)+5), uint32(len(s)+1))
	b = append(append(b, s...), 0)
	return bson.RawValue{Type: bson.TypeString, Value: b}
}

func isHex24(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// get reads a top-level field; the zero value when it is missing.
func get(doc bson.Raw, key string) bson.RawValue {
	v, _ := bsonpath.Top(doc, key)
	return v
}

// fields reads the top-level fields of the document a mapping writes: the mappings read them
// in about the order documents hold them, which a cursor turns into one element per lookup.
type fields struct{ c bsonpath.Cursor }

func newFields(doc bson.Raw) *fields { return &fields{c: bsonpath.NewCursor(doc)} }

// get reads a top-level field; the zero value when it is missing.
func (f *fields) get(key string) bson.RawValue {
	v, _ := f.c.Get(key)
	return v
}

// field writes a top-level field into the row's next column.
func field(r *transforms.Row, f *fields, key string) { r.Value(f.get(key), key) }

func isNull(v bson.RawValue) bool { return v.Type == 0 || v.Type == bson.TypeNull }

// storedText is the text a text column stores for v (a string, mended under --fix-strings
// without counting, or an ObjectId's hex); false for anything a text column refuses.
func storedText(v bson.RawValue, fix bool) (string, bool) {
	switch v.Type {
	case bson.TypeString:
		s := v.StringValue()
		clean, verr := transforms.CleanString(s, transforms.Options{FixStrings: fix})
		if verr != nil {
			return "", false
		}
		return clean, true
	case bson.TypeObjectID:
		return v.ObjectID().Hex(), true
	}
	return "", false
}

// enum writes a smallint enum code for a lowercase name (modules.md: graph_jobs type and
// status); an unknown name or a value that is no string rejects, naming the value.
func enum(r *transforms.Row, f *fields, key, column string, codes map[string]int16) {
	v := f.get(key)
	if isNull(v) {
		r.Null(key)
		return
	}
	s, ok := v.StringValueOK()
	if !ok {
		r.Fail(key, "column "+column+": expected an enum name (string), found "+transforms.TypeName(v.Type))
		return
	}
	code, ok := codes[s]
	if !ok {
		r.Fail(key, "column "+column+": unknown value "+quote(s))
		return
	}
	r.Int2(code)
}

// quote writes a source value into a reject reason (allowed for enum and CHECK columns) Go
// quoted: NUL and invalid UTF-8 come out escaped, never raw.
func quote(s string) string { return strconv.Quote(s) }
