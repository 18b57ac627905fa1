package excititor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

// ns is the namespace of every excititor row id (mapping.md, Identity).
var ns = transforms.ModuleNamespace(ModuleName)

// rowID is the id of the row a document of coll (a default collection name) maps to, or that a
// reference to it maps through.
func rowID(coll, canonical string) [16]byte { return transforms.UUIDv5(ns, coll+":"+canonical) }

// base is what every collection transform shares: its tables, the bound tier filter and
// options, the stage that runs the common decisions, and the identity collisions found by the
// key pass.
type base struct {
	coll   string
	tables []pipeline.Table
	filter tiers.Filter
	opt    transforms.Options
	// core writes a document's rows with every value check and reference applied, but none of
	// the decisions that need other documents of the collection (identity, unique keys,
	// superseded): the key pass runs it to learn which documents stand.
	core transforms.MapFunc

	mu sync.RWMutex
	// lost maps each canonical _id that several standing documents share to the _id that keeps
	// it (the smallest); written by Prepare only, read by Apply.
	lost map[string]bson.RawValue
}

func (b *base) init(env transforms.Env, coll string, tables []pipeline.Table, core transforms.MapFunc) {
	b.coll, b.tables, b.filter, b.opt, b.core = coll, tables, env.Filter, env.Options, core
}

// stage is the collection's Stage with m as its mapping.
func (b *base) stage(m transforms.MapFunc) transforms.Stage {
	return transforms.Stage{Collection: b.coll, Filter: b.filter, Options: b.opt, Map: m}
}

// Tables implements pipeline.Transform.
func (b *base) Tables() []pipeline.Table { return b.tables }

// identity rejects a document whose row id another standing document keeps: two _ids of
// different types with the same canonical form (a string equal to an ObjectId's hex).
func (b *base) identity(id bson.RawValue, canonical string) *pipeline.Reject {
	b.mu.RLock()
	w, ok := b.lost[canonical]
	b.mu.RUnlock()
	if ok && !w.Equal(id) {
		return &pipeline.Reject{Path: "_id", Reason: "identity collision " + canonical}
	}
	return nil
}

func (b *base) losesIdentity(id bson.RawValue, canonical string) bool {
	return b.identity(id, canonical) != nil
}

// standing is what the key pass learns of one document that passed strict reading, the tier
// filter, the value checks and references. Its slices are valid only during the callback.
type standing struct {
	id        bson.RawValue
	canonical string
	doc       bson.Raw
	out       *pipeline.RowBuffer
	row       int // index in out.Rows of the document's first (main) row
}

// cell is column col of the document's main row.
func (s standing) cell(col int) ([]byte, bool) { return cellAt(s.out, s.row, col) }

// scanStanding runs the key pass's scan, calling fn for every standing document. pick, when not
// nil, preselects documents by _id before they are mapped (a rescan that needs only a few).
func (b *base) scanStanding(ctx context.Context, kp pipeline.KeyPass, pick func(id bson.RawValue) bool, fn func(s standing) error) error {
	if kp.Scan == nil {
		return errors.New(b.coll + ": the key pass cannot scan the collection")
	}
	var buf pipeline.RowBuffer
	var cur standing
	stood := false
	probe := b.stage(func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		n := len(out.Rows)
		if rej := b.core(doc, id, canonical, opt, out); rej != nil {
			return rej
		}
		cur, stood = standing{id: id, canonical: canonical, doc: doc, out: out, row: n}, true
		return nil
	})
	return kp.Scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if pick != nil {
			id, err := doc.LookupErr("_id")
			if err != nil || !pick(id) {
				return nil
			}
		}
		buf.Reset()
		stood = false
		probe.Apply(doc, &buf)
		if !stood {
			return nil
		}
		return fn(cur)
	})
}

// keys is a collection's own cross-document decision (unique keys, superseded documents),
// learned over the standing documents that keep their identity.
type keys interface {
	reset()
	offer(s standing)
}

// prepare is the key pass every collection runs: identity collisions first (mapping.md,
// Identity: the smallest _id keeps the id), then k's keys over the documents still standing.
// With a single _id type class no two _ids share a canonical form and nothing is tracked; a
// collection without keys of its own reads only the _ids unless two could collide.
func (b *base) prepare(ctx context.Context, kp pipeline.KeyPass, k keys) error {
	track := len(kp.IDClasses) != 1
	if track && k == nil {
		// Mapping every document costs far more than reading its _id: look first.
		may, err := mayCollide(ctx, kp)
		if err != nil {
			return err
		}
		track = may
	}
	if !track && k == nil {
		b.mu.Lock()
		b.lost = nil
		b.mu.Unlock()
		return nil
	}
	ids := identityPass{seen: map[string][]bson.RawValue{}}
	if k != nil {
		k.reset()
	}
	err := b.scanStanding(ctx, kp, nil, func(s standing) error {
		if track {
			ids.see(s.id, s.canonical)
		}
		if k != nil {
			k.offer(s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ids.hexStrings {
		// A string that reads like an ObjectId's hex: find the standing ObjectIds it meets.
		err := b.scanStanding(ctx, kp, func(id bson.RawValue) bool {
			if id.Type != bson.TypeObjectID || len(id.Value) != 12 {
				return false
			}
			_, ok := ids.seen[fmt.Sprintf("%x", id.Value)]
			return ok
		}, func(s standing) error {
			ids.add(s.id, s.canonical)
			return nil
		})
		if err != nil {
			return err
		}
	}
	lost := ids.decide()
	b.mu.Lock()
	b.lost = lost
	b.mu.Unlock()
	if len(lost) == 0 || k == nil {
		return nil
	}
	// Rare: some documents lost their identity, so they hold no key. Learn the keys again
	// without them.
	k.reset()
	return b.scanStanding(ctx, kp, nil, func(s standing) error {
		if !b.losesIdentity(s.id, s.canonical) {
			k.offer(s)
		}
		return nil
	})
}

// mayCollide reads only the _ids and tells whether two of them could share a canonical form:
// a 24-hex string beside an ObjectId, or a string reading like Extended JSON beside an _id
// that is neither string nor ObjectId.
func mayCollide(ctx context.Context, kp pipeline.KeyPass) (bool, error) {
	if kp.Scan == nil {
		return false, errors.New("the key pass cannot scan the collection")
	}
	var hexString, objectID, braceString, other bool
	err := kp.Scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := doc.LookupErr("_id")
		if err != nil {
			return nil // rejected by Apply
		}
		switch id.Type {
		case bson.TypeObjectID:
			objectID = true
		case bson.TypeString:
			s, ok := id.StringValueOK()
			hexString = hexString || ok && isHex24(s)
			braceString = braceString || ok && strings.HasPrefix(s, "{")
		default:
			other = true
		}
		return nil
	})
	return hexString && objectID || braceString && other, err
}

// identityPass collects the standing _ids whose canonical form another type could share.
type identityPass struct {
	seen       map[string][]bson.RawValue
	hexStrings bool
}

func (p *identityPass) see(id bson.RawValue, canonical string) {
	switch id.Type {
	case bson.TypeObjectID:
		// Only meets a hex string: found by the rescan when one exists.
	case bson.TypeString:
		if isHex24(canonical) {
			p.hexStrings = true
			p.add(id, canonical)
		} else if strings.HasPrefix(canonical, "{") {
			// Reads like the Extended JSON of a number, a date, ... _id.
			p.add(id, canonical)
		}
	default:
		p.add(id, canonical)
	}
}

func (p *identityPass) add(id bson.RawValue, canonical string) {
	for _, x := range p.seen[canonical] {
		if x.Equal(id) {
			return
		}
	}
	p.seen[canonical] = append(p.seen[canonical], bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)})
}

// decide maps each canonical form held by several _ids to the smallest of them.
func (p *identityPass) decide() map[string]bson.RawValue {
	lost := map[string]bson.RawValue{}
	for c, ids := range p.seen {
		if len(ids) < 2 {
			continue
		}
		w := ids[0]
		for _, x := range ids[1:] {
			if transforms.CompareIDs(x, w) < 0 {
				w = x
			}
		}
		lost[c] = w
	}
	return lost
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

// cellAt is column col of row i of out as written (binary send format; jsonb as text); null is
// true for NULL. The row must be complete.
func cellAt(out *pipeline.RowBuffer, i, col int) (v []byte, null bool) {
	row := out.RowBytes(out.Rows[i])
	for c := 0; len(row) > 0; c++ {
		if row[0] == 0 {
			if c == col {
				return nil, true
			}
			row = row[1:]
			continue
		}
		n := int(binary.BigEndian.Uint32(row[1:5]))
		if c == col {
			return row[5 : 5+n], false
		}
		row = row[5+n:]
	}
	return nil, true
}

// keyOf joins stored column values into a map key; ok is false when any part is NULL (a unique
// key with a NULL part never collides).
func keyOf(s standing, cols ...int) (string, bool) {
	return rowKey(s.out, s.row, cols...)
}

func rowKey(out *pipeline.RowBuffer, row int, cols ...int) (string, bool) {
	var b []byte
	for _, c := range cols {
		v, null := cellAt(out, row, c)
		if null {
			return "", false
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b), true
}

// top is a top-level field of doc; the zero RawValue when missing.
func top(doc bson.Raw, key string) bson.RawValue {
	v, _ := bsonpath.Top(doc, key)
	return v
}

// present tells a value from a missing or null field.
func present(v bson.RawValue) bool { return v.Type != 0 && v.Type != bson.TypeNull }

// checkIn fails the row when v, a value just written into the CHECK column col, is not one of
// allowed. A fault in the value itself was already reported by the write; NULL satisfies the
// CHECK (modules.md: a column with a CHECK is nullable unless marked NOT NULL).
func checkIn(r *transforms.Row, v bson.RawValue, path, col string, opt transforms.Options, allowed []string) {
	var s string
	switch v.Type {
	case bson.TypeString:
		// The value as stored: under --fix-strings the mended text is what the CHECK sees.
		cs, verr := transforms.CleanString(v.StringValue(), transforms.Options{FixStrings: opt.FixStrings})
		if verr != nil {
			return
		}
		s = cs
	case bson.TypeObjectID:
		s = fmt.Sprintf("%x", v.Value)
	default:
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	r.Fail(path, fmt.Sprintf("column %s: value %q not allowed", col, s))
}

// uniqueReason is the reject reason of a unique-key loser (no values: cli.md, Output).
func uniqueReason(cols string, winner bson.RawValue) string {
	c, err := transforms.CanonicalID(winner)
	if err != nil {
		c = "<unreadable>"
	}
	return "unique key (" + cols + ") already held by _id " + c
}

// uniqueKeys decides a unique key the source never enforced (mapping.md): among the standing
// documents the smallest _id keeps the key, the others are rejected naming it.
type uniqueKeys struct {
	cols []int // the key's columns in the main row
	mu   sync.RWMutex
	w    *transforms.Winners
}

func (u *uniqueKeys) reset() {
	u.mu.Lock()
	u.w = &transforms.Winners{}
	u.mu.Unlock()
}

func (u *uniqueKeys) offer(s standing) {
	if k, ok := keyOf(s, u.cols...); ok {
		u.winners().Offer(k, s.id)
	}
}

func (u *uniqueKeys) winners() *transforms.Winners {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.w
}

// holder returns the _id that keeps the key of the document's main row when it is not the
// document's own: lost is true then.
func (u *uniqueKeys) holder(out *pipeline.RowBuffer, row int, id bson.RawValue) (w bson.RawValue, lost bool) {
	k, ok := rowKey(out, row, u.cols...)
	if !ok {
		return bson.RawValue{}, false
	}
	ws := u.winners()
	if ws == nil {
		return bson.RawValue{}, false
	}
	win, ok := ws.Winner(k)
	if !ok || win.Equal(id) {
		return bson.RawValue{}, false
	}
	return win, true
}
