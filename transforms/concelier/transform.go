package concelier

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// mapFunc writes one document's rows, with every value check and reference resolved against
// st, and returns the document's unique key (ok false when the table has none, or a part of it
// is NULL: such a key never collides). It decides no winner: the caller does, after the key
// pass has seen every document.
type mapFunc func(st *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (rej *pipeline.Reject, key string, ok bool)

// parentKeys describes a natural-key reference read from an already loaded parent table.
type parentKeys struct {
	collection string // the parent's default collection name, for "missing parent <collection>/<key>"
	query      string // SELECT <natural key>, id::text FROM ...
}

// base is what every loading collection of the module shares: the Stage, the key pass that
// settles identity collisions, unique-key winners and natural-key references, and the decision
// applied to each mapped document.
type base struct {
	coll   string // default collection name: ids are RowID(ns, coll, _id)
	tables []pipeline.Table
	ns     [16]byte
	stage  transforms.Stage
	mapf   mapFunc
	parent *parentKeys
	// identity is set when rows carry an id derived from the _id (every table but
	// source_states), so two _ids with the same canonical form must be decided.
	identity bool
	// keyCols and keyPath name the unique key in rejects: its columns, and the document field
	// the reject points at.
	keyCols, keyPath string

	st atomic.Pointer[state]
}

// state is what the key pass settled. It is built whole in Prepare and only read once it is
// published (atomically), so any number of workers may Apply at once.
type state struct {
	// parents maps a parent's natural key (as stored) to its row id.
	parents map[string][16]byte
	// ids holds, per canonical _id, the smallest standing _id that is not an ObjectId.
	ids transforms.Winners
	// keys holds, per unique key, the smallest standing _id that holds it among the documents
	// that win their identity.
	keys transforms.Winners
}

// newBase builds a collection's shared part; the caller sets mapf and, where they apply, the
// unique key, the parent and identity.
func newBase(env transforms.Env, coll string, tables []pipeline.Table) *base {
	b := &base{coll: coll, tables: tables, ns: transforms.ModuleNamespace(Name), identity: true}
	b.stage = transforms.Stage{Collection: coll, Filter: env.Filter, Options: env.Options, Map: b.mapDoc}
	return b
}

// Tables implements pipeline.Transform.
func (b *base) Tables() []pipeline.Table { return b.tables }

// Apply implements pipeline.Transform.
func (b *base) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return b.stage.Apply(doc, out)
}

// errNoQuery is returned by a key pass that must read parents but was given no way to.
var errNoQuery = errors.New("key pass has no Query: the parent tables cannot be read")

// Prepare implements pipeline.Preparer. It reads the parents' natural keys, then maps every
// document once without deciding winners, exactly as Apply will (strict reading, tier filter,
// value checks, references): the documents still standing are the candidates for identity and
// unique keys, and the smallest _id wins each (mapping.md, Decisions that span documents).
// So the outcome is the same for any scan order, worker count, batch size or source kind.
func (b *base) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	st := &state{}
	if b.parent != nil {
		if kp.Query == nil {
			return fmt.Errorf("%s: %w", b.coll, errNoQuery)
		}
		st.parents = map[string][16]byte{}
		err := kp.Query(b.parent.query, func(vals []*string) error {
			if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
				return fmt.Errorf("%s: parent %s: unexpected row shape", b.coll, b.parent.collection)
			}
			u, ok := transforms.ParseUUID(*vals[1])
			if !ok {
				return fmt.Errorf("%s: parent %s: id %q is not a uuid", b.coll, b.parent.collection, *vals[1])
			}
			st.parents[*vals[0]] = u
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Within one _id type class canonical forms never coincide, so when the source knows
	// there is a single class (a live source plans ranges per class), only a unique key
	// needs the scan.
	if b.keyCols == "" && len(kp.IDClasses) == 1 {
		b.st.Store(st)
		return nil
	}
	if kp.Scan == nil {
		return fmt.Errorf("%s: key pass has no Scan", b.coll)
	}
	if err := b.decide(ctx, st, kp.Scan); err != nil {
		return err
	}
	b.st.Store(st)
	return nil
}

// candidate is a standing document that holds a unique key.
type candidate struct {
	id        bson.RawValue
	canonical string
	key       string
}

func (b *base) decide(ctx context.Context, st *state, scan func(func(bson.Raw) error) error) error {
	var cands []candidate
	dry := b.stage
	dry.Map = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		rej, key, ok := b.mapf(st, doc, id, canonical, opt, out)
		if rej != nil {
			return rej
		}
		if b.identity && id.Type != bson.TypeObjectID {
			// An ObjectId's canonical form can only equal a string's, and strings sort first:
			// ObjectIds never need recording, they lose to any standing string of their hex.
			st.ids.Offer(canonical, id)
		}
		if ok {
			cands = append(cands, candidate{id: copyValue(id), canonical: canonical, key: key})
		}
		return nil
	}
	var buf pipeline.RowBuffer
	err := scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf.Reset()
		dry.Apply(doc, &buf)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: key pass: %w", b.coll, err)
	}
	for _, c := range cands {
		if !b.identity || st.winsIdentity(c.id, c.canonical) {
			st.keys.Offer(c.key, c.id)
		}
	}
	return nil
}

func copyValue(v bson.RawValue) bson.RawValue {
	return bson.RawValue{Type: v.Type, Value: append([]byte(nil), v.Value...)}
}

// winsIdentity tells whether the document with _id id keeps its row id: no other standing
// document with a smaller _id derives the same one.
func (st *state) winsIdentity(id bson.RawValue, canonical string) bool {
	if id.Type == bson.TypeObjectID {
		_, taken := st.ids.Winner(canonical)
		return !taken
	}
	return st.ids.Wins(canonical, id)
}

// mapDoc is the Stage's mapping: the collection's rows, then identity and unique key, in the
// order of decisions (modules.md, Rules that cut across modules).
func (b *base) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	st := b.st.Load()
	if st == nil {
		return &pipeline.Reject{Reason: "internal: collection " + b.coll + ": Apply before the key pass (Prepare)"}
	}
	rej, key, ok := b.mapf(st, doc, id, canonical, opt, out)
	if rej != nil {
		return rej
	}
	if b.identity && !st.winsIdentity(id, canonical) {
		return &pipeline.Reject{Path: "_id", Reason: "identity collision " + canonical}
	}
	if ok && !st.keys.Wins(key, id) {
		w, _ := st.keys.Winner(key)
		wc, err := transforms.CanonicalID(w)
		if err != nil {
			wc = "<unreadable>"
		}
		return &pipeline.Reject{Path: b.keyPath, Reason: "unique key (" + b.keyCols + ") already held by _id " + wc}
	}
	return nil
}

// rowID is RowID(ns, coll, _id) from the canonical _id the Stage already computed.
func (b *base) rowID(canonical string) [16]byte {
	return transforms.UUIDv5(b.ns, b.coll+":"+canonical)
}

// naturalText is the text a text column stores for v, before the string checks: a string
// itself, an ObjectId as 24 lowercase hex (mapping.md's exact conversions into text). ok is
// false for null, missing and every other type.
func naturalText(v bson.RawValue) (string, bool) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValueOK()
	case bson.TypeObjectID:
		if len(v.Value) == 12 {
			return hex.EncodeToString(v.Value), true
		}
	}
	return "", false
}

// stored is the text a clean row stores for s: s itself, or its mended form under
// --fix-strings (not counted: the row that stores it counts). A value that cannot be stored
// comes back unchanged; the row that writes it rejects the document.
func stored(s string, opt transforms.Options) string {
	clean, err := transforms.CleanString(s, transforms.Options{FixStrings: opt.FixStrings})
	if err != nil {
		return s
	}
	return clean
}

// keyOf builds an unambiguous unique key from text parts (length-prefixed, so no separator
// can be forged by a value). ok is false when a part is NULL: PostgreSQL's unique keys never
// collide on NULL.
func keyOf(opt transforms.Options, parts ...bson.RawValue) (string, bool) {
	var b []byte
	for _, p := range parts {
		s, ok := naturalText(p)
		if !ok {
			return "", false
		}
		s = stored(s, opt)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return string(b), true
}

// resolve maps a natural-key reference (a parent's name or key) to the parent's row id. A null
// or missing reference gives ok false; a value naming no loaded parent rejects with "missing
// parent" (modules.md: only null or missing gives NULL). col is the referencing column, for
// type faults.
func (st *state) resolve(v bson.RawValue, path, parent, col string, opt transforms.Options) (id [16]byte, ok bool, rej *pipeline.Reject) {
	if v.Type == 0 || v.Type == bson.TypeNull {
		return id, false, nil
	}
	name, isText := naturalText(v)
	if !isText {
		return id, false, &pipeline.Reject{Path: path, Reason: "column " + col + ": expected string, found " + transforms.TypeName(v.Type)}
	}
	id, ok = st.parents[stored(name, opt)]
	if !ok {
		return id, false, &pipeline.Reject{Path: path, Reason: "missing parent " + parent + "/" + name}
	}
	return id, true, nil
}

// writeRef writes a resolved reference, or NULL (which a NOT NULL column rejects).
func writeRef(r *transforms.Row, id [16]byte, ok bool, rej *pipeline.Reject, path string) {
	switch {
	case rej != nil:
		r.Fail(rej.Path, rej.Reason)
	case ok:
		r.UUID(id)
	default:
		r.Null(path)
	}
}

// field is a top-level field of doc (the zero RawValue when missing), looked up without the
// path splitting of transforms.Lookup: Apply reads a dozen fields per document.
func field(doc bson.Raw, key string) bson.RawValue {
	v, _ := bsonpath.Top(doc, key)
	return v
}

// nested is field for a path of two keys (upstream.fetched_at).
func nested(doc bson.Raw, key, sub string) bson.RawValue {
	v, _ := bsonpath.Top(doc, key)
	if v.Type != bson.TypeEmbeddedDocument && v.Type != bson.TypeArray {
		return bson.RawValue{}
	}
	v, _ = bsonpath.Top(v.Value, sub)
	return v
}
