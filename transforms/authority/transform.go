package authority

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// buildFunc writes one document's rows and runs its value and reference checks; it returns the
// value of the collection's unique key (hasKey false where the key has a NULL part, which
// never collides) or the reject for the first fault. It makes no decision that depends on
// other documents of the collection: Prepare runs it to find the documents still standing.
type buildFunc func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (key string, hasKey bool, rej *pipeline.Reject)

// uniqueKey is a unique key the source never enforced, decided by the smallest _id.
type uniqueKey struct {
	cols string // as the reject names it: "tenant_id, username"
	path string // the source field the reject points at
}

// decisions are the key pass's outcome; read-only once published.
type decisions struct {
	// ident maps a canonical _id that several standing documents share (a string equal to an
	// ObjectId's hex, ...) to the winning _id; every other canonical _id is absent.
	ident   map[string]bson.RawValue
	winners *transforms.Winners
}

// parents are the loaded parent rows references resolve against; read-only once published.
type parents struct {
	users   map[[16]byte]string // users.id → tenant_id
	clients map[string]string   // clients.client_id → tenant_id
}

// base is what every authority collection's transform shares: the stage, the key pass and the
// key decisions. The collection supplies build, its unique key and the parents it reads.
type base struct {
	coll   string
	tables []pipeline.Table
	ns     [16]byte
	stage  transforms.Stage
	build  buildFunc
	unique *uniqueKey
	// needUsers, needClients name the parent tables the collection's references resolve in.
	needUsers, needClients bool

	dec  atomic.Pointer[decisions]
	refs atomic.Pointer[parents]
}

func newBase(env transforms.Env, coll string, tables []pipeline.Table, unique *uniqueKey) *base {
	b := &base{coll: coll, tables: tables, ns: transforms.ModuleNamespace(Name), unique: unique}
	b.stage = transforms.Stage{Collection: coll, Filter: env.Filter, Options: env.Options, Map: b.mapDoc}
	return b
}

// Tables implements pipeline.Transform.
func (b *base) Tables() []pipeline.Table { return b.tables }

// Apply implements pipeline.Transform.
func (b *base) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	return b.stage.Apply(doc, out)
}

// mapDoc is the stage's mapping: the rows, then the decisions that span documents (identity
// collisions, then the unique key), in mapping.md's order.
func (b *base) mapDoc(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	key, hasKey, rej := b.build(doc, id, canonical, opt, out)
	if rej != nil {
		return rej
	}
	d := b.dec.Load()
	if d == nil {
		// Loading without the key pass could load the loser of a unique key.
		return &pipeline.Reject{Reason: "internal: collection " + b.coll + " mapped before its key pass"}
	}
	if win, ok := d.ident[canonical]; ok && !sameID(win, id) {
		return &pipeline.Reject{Path: "_id", Reason: "identity collision " + canonical}
	}
	if hasKey && !d.winners.Wins(key, id) {
		win, _ := d.winners.Winner(key)
		wc, _ := transforms.CanonicalID(win)
		return &pipeline.Reject{Path: b.unique.path, Reason: "unique key (" + b.unique.cols + ") already held by _id " + wc}
	}
	return nil
}

func sameID(a, b bson.RawValue) bool {
	return a.Type == b.Type && string(a.Value) == string(b.Value)
}

var _ pipeline.Preparer = (*base)(nil)

// Prepare implements pipeline.Preparer. It reads the parent tables the references need, then
// scans the collection, mapping each document without key decisions (the stage's order: strict
// BSON, tier filter, value checks, references) to find those still standing; among them the
// smallest _id wins each unique key and each canonical _id that several _ids share. Only _ids
// whose canonical form another type can share are remembered, so memory stays small: strings
// that read as an ObjectId's hex or as Extended JSON, and _ids that are neither strings nor
// ObjectIds; ObjectIds are matched against them in a second pass, only when needed.
func (b *base) Prepare(ctx context.Context, kp pipeline.KeyPass) error {
	if kp.Scan == nil {
		return fmt.Errorf("%s: the key pass has no scan", b.coll)
	}
	if err := b.readParents(kp); err != nil {
		return err
	}
	var (
		key     string
		hasKey  bool
		scratch pipeline.RowBuffer
	)
	check := b.stage
	check.Map = func(doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
		var rej *pipeline.Reject
		key, hasKey, rej = b.build(doc, id, canonical, opt, out)
		return rej
	}
	stands := func(doc bson.Raw) bool {
		scratch.Reset()
		key, hasKey = "", false
		v := check.Apply(doc, &scratch)
		return v.Reject == nil && v.Skip == ""
	}

	winners := &transforms.Winners{}
	suspects := map[string][]bson.RawValue{}
	hexSuspects := false
	oneClass := len(kp.IDClasses) == 1 // one type class: no two _ids share a canonical form
	err := kp.Scan(func(doc bson.Raw) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := doc.LookupErr("_id")
		if err != nil || id.Validate() != nil {
			return nil // rejected by Apply
		}
		suspect := !oneClass && mayShareCanonical(id)
		if b.unique == nil && !suspect {
			return nil
		}
		if !stands(doc) {
			return nil
		}
		if hasKey {
			winners.Offer(key, id)
		}
		if suspect {
			c, err := transforms.CanonicalID(id)
			if err != nil {
				return nil
			}
			suspects[c] = append(suspects[c], ownID(id))
			hexSuspects = hexSuspects || id.Type == bson.TypeString && isHex24(c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if hexSuspects {
		err = kp.Scan(func(doc bson.Raw) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, err := doc.LookupErr("_id")
			if err != nil || id.Type != bson.TypeObjectID || len(id.Value) != 12 {
				return nil
			}
			c := hex.EncodeToString(id.Value)
			if _, ok := suspects[c]; ok && stands(doc) {
				suspects[c] = append(suspects[c], ownID(id))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	ident := map[string]bson.RawValue{}
	for c, ids := range suspects {
		if len(ids) < 2 {
			continue
		}
		win := ids[0]
		for _, x := range ids[1:] {
			if transforms.CompareIDs(x, win) < 0 {
				win = x
			}
		}
		ident[c] = win
	}
	b.dec.Store(&decisions{ident: ident, winners: winners})
	return nil
}

// mayShareCanonical tells whether an _id's canonical form could equal another type's: a string
// that reads as an ObjectId's hex or starts like Extended JSON, or any _id that is neither a
// string nor an ObjectId (its canonical form is Extended JSON, which a string can spell).
func mayShareCanonical(id bson.RawValue) bool {
	switch id.Type {
	case bson.TypeObjectID:
		return false // matched against the hex-like strings in the second pass
	case bson.TypeString:
		s, ok := id.StringValueOK()
		return ok && (isHex24(s) || strings.HasPrefix(s, "{"))
	}
	return true
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

// ownID copies an _id out of the scan's buffer, which the source reuses.
func ownID(id bson.RawValue) bson.RawValue {
	return bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)}
}

// readParents loads the parent rows the collection's references resolve against. The parent
// collections are complete before this one starts (Collection.Parents).
func (b *base) readParents(kp pipeline.KeyPass) error {
	if !b.needUsers && !b.needClients {
		b.refs.Store(&parents{})
		return nil
	}
	if kp.Query == nil {
		return fmt.Errorf("%s: the key pass has no query function to read the parent tables; references cannot be resolved", b.coll)
	}
	p := &parents{}
	tenants := map[string]string{} // one string per tenant, however many rows name it
	intern := func(s string) string {
		if t, ok := tenants[s]; ok {
			return t
		}
		tenants[s] = s
		return s
	}
	if b.needUsers {
		p.users = map[[16]byte]string{}
		err := kp.Query(`SELECT id::text, tenant_id FROM `+Schema+`.users`, func(vals []*string) error {
			if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
				return fmt.Errorf("unexpected row from %s.users", Schema)
			}
			u, ok := transforms.ParseUUID(*vals[0])
			if !ok {
				return fmt.Errorf("%s.users: id %q is not a uuid", Schema, *vals[0])
			}
			p.users[u] = intern(*vals[1])
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s.users: %w", Schema, err)
		}
	}
	if b.needClients {
		p.clients = map[string]string{}
		err := kp.Query(`SELECT client_id, tenant_id FROM `+Schema+`.clients`, func(vals []*string) error {
			if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
				return fmt.Errorf("unexpected row from %s.clients", Schema)
			}
			p.clients[*vals[0]] = intern(*vals[1])
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s.clients: %w", Schema, err)
		}
	}
	b.refs.Store(p)
	return nil
}

// parentsOrReject returns the loaded parents, or an internal reject before the key pass.
func (b *base) parentsOrReject() (*parents, *pipeline.Reject) {
	p := b.refs.Load()
	if p == nil {
		return nil, &pipeline.Reject{Reason: "internal: collection " + b.coll + " mapped before its parents were read"}
	}
	return p, nil
}

// Value helpers.

// stored reads back, as the text its column stored, a field that a row has already written
// and checked (so it cannot fail): the values keys, references and derived rows use. It counts
// no --fix-strings mend; the row did. ok is false for a missing or null field.
func stored(doc bson.Raw, path string, opt transforms.Options) (string, bool) {
	opt.Fixed = nil
	v, _ := transforms.Lookup(doc, path)
	s, ok, rej := textValue(v, path, "", opt)
	return s, ok && rej == nil
}

// textValue is a value's stored form in a text column (the NUL and UTF-8 rules applied, an
// ObjectId as 24 hex, any other type refused), ok false when missing or null.
func textValue(v bson.RawValue, path, column string, opt transforms.Options) (string, bool, *pipeline.Reject) {
	opt.Path = path
	var buf [64]byte
	b, null, verr := transforms.AppendColumn(buf[:0], pipeline.TypeText, v, opt)
	if verr != nil {
		return "", false, &pipeline.Reject{Path: verr.Path, Reason: "column " + column + ": " + verr.Reason}
	}
	if null {
		return "", false, nil
	}
	return string(b), true, nil
}

// mongoID is the mongo_id value: the canonical _id under the text rules.
func mongoID(canonical string, opt transforms.Options) (string, *pipeline.Reject) {
	opt.Path = "_id"
	s, verr := transforms.CleanString(canonical, opt)
	if verr != nil {
		return "", &pipeline.Reject{Path: "_id", Reason: verr.Reason}
	}
	return s, nil
}

// tenantRow writes the document's derived tenants row: its tenant, and the created_at it
// contributes (the field at createdPath, or NULL where createdPath is "").
func tenantRow(out *pipeline.RowBuffer, tables []pipeline.Table, tenant string, doc bson.Raw, createdPath string, opt transforms.Options) *pipeline.Reject {
	r := transforms.NewRow(out, tables, tiTenants, opt)
	r.Text(tenant, "tenant")
	if createdPath == "" {
		r.Null("")
	} else {
		r.Field(doc, createdPath)
	}
	return r.End()
}

// userRef is the users.id a subjectId names (the users id function), nil when null or missing.
func (b *base) userRef(doc bson.Raw, path string) (*[16]byte, string, *pipeline.Reject) {
	v, ok := transforms.Lookup(doc, path)
	if !ok || v.Type == bson.TypeNull {
		return nil, "", nil
	}
	u, canon, err := transforms.RowID(b.ns, CollUsers, v)
	if err != nil {
		return nil, "", &pipeline.Reject{Path: path, Reason: err.Error()}
	}
	return &u, canon, nil
}

// checkClient resolves a client_id reference of a document of tenant.
func checkClient(p *parents, client, tenant, path string) *pipeline.Reject {
	owner, ok := p.clients[client]
	switch {
	case !ok:
		return &pipeline.Reject{Path: path, Reason: "missing parent " + CollClients + "/" + client}
	case owner != tenant:
		return &pipeline.Reject{Path: path, Reason: "cross-tenant reference " + CollClients + "/" + client}
	}
	return nil
}
