package concelier

import (
	"bytes"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/transforms"
)

// Indexes into the advisory collection's tables, in write order: the parent row first, so a
// batch COPYs advisories before the child rows that reference them.
const (
	tAdvisories = iota
	tCVSS
	tReferences
	tCredits
	tWeaknesses
)

// advisory → vuln.advisories (the whole document kept in doc) and its child tables from the
// embedded arrays cvssMetrics, references, credits and cwes, keyed (advisory_id, ordinal) with
// ordinal the 0-based array position (cwes: (advisory_id, cwe_id), a repeated CWE folded into one
// row and counted in Verdict.Collapsed). Any child fault rejects the whole advisory.
type advisory struct{ *base }

func newAdvisory(env transforms.Env) pipeline.Transform {
	t := advisory{newBase(env, "advisory", []pipeline.Table{
		advisoriesTable(), advisoryCVSSTable(), advisoryReferencesTable(), advisoryCreditsTable(), advisoryWeaknessesTable(),
	})}
	t.keyCols, t.keyPath = "advisory_key", "advisoryKey"
	t.parent = &parentKeys{collection: "source", query: `SELECT key, id::text FROM vuln.sources`}
	t.mapf = t.mapRows
	return t
}

// Apply implements pipeline.Transform: the Stage, then the count of repeated CWEs of an
// advisory that loads (the Stage's verdict has no room for it).
func (t advisory) Apply(doc bson.Raw, out *pipeline.RowBuffer) pipeline.Verdict {
	v := t.stage.Apply(doc, out)
	if v.Skip == "" && v.Reject == nil {
		v.Collapsed = repeatedCWEs(field(doc, "cwes"), t.stage.Options)
	}
	return v
}

func (t advisory) mapRows(st *state, doc bson.Raw, id bson.RawValue, canonical string, opt transforms.Options, out *pipeline.RowBuffer) (*pipeline.Reject, string, bool) {
	aid := t.rowID(canonical)
	key := field(doc, "advisoryKey")
	r := transforms.NewRow(out, t.tables, tAdvisories, opt)
	r.UUID(aid)
	r.Text(canonical, "_id")
	r.Value(key, "advisoryKey")
	sid, ok, rej := st.resolve(field(doc, "sourceName"), "sourceName", "source", "source_id", opt)
	writeRef(r, sid, ok, rej, "sourceName")
	for _, f := range [...]string{"title", "summary", "description", "severity", "exploitKnown", "publishedAt", "modifiedAt", "language", "provenance"} {
		r.Value(field(doc, f), f)
	}
	r.Value(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}, "")
	if rej := r.End(); rej != nil {
		return rej, "", false
	}
	if rej := t.cvss(doc, aid, opt, out); rej != nil {
		return rej, "", false
	}
	if rej := t.references(doc, aid, opt, out); rej != nil {
		return rej, "", false
	}
	if rej := t.credits(doc, aid, opt, out); rej != nil {
		return rej, "", false
	}
	if rej := t.weaknesses(doc, aid, opt, out); rej != nil {
		return rej, "", false
	}
	k, hasKey := keyOf(opt, key)
	return nil, k, hasKey
}

// eachDoc calls fn with every element of the array field of doc, each of which must be an
// embedded document; a null or missing field has no elements. Paths in fn's reject are
// relative to the element.
func eachDoc(doc bson.Raw, name string, fn func(i int, elem bson.Raw) *pipeline.Reject) *pipeline.Reject {
	return eachElem(doc, name, func(i int, v bson.RawValue) *pipeline.Reject {
		if v.Type != bson.TypeEmbeddedDocument {
			return &pipeline.Reject{Reason: "expected object, found " + transforms.TypeName(v.Type)}
		}
		return fn(i, bson.Raw(v.Value))
	})
}

// eachElem calls fn with every element of the array field of doc, in array order with its
// 0-based position (element keys are ignored: arrays are read by position). A reject's path,
// relative to the element, is completed here: paths are built only for faults, not for each
// value written.
func eachElem(doc bson.Raw, name string, fn func(i int, v bson.RawValue) *pipeline.Reject) *pipeline.Reject {
	arr := field(doc, name)
	switch arr.Type {
	case 0, bson.TypeNull:
		return nil
	case bson.TypeArray:
	default:
		return &pipeline.Reject{Path: name, Reason: "expected array, found " + transforms.TypeName(arr.Type)}
	}
	return eachValue(arr.Value, func(i int, v bson.RawValue) *pipeline.Reject {
		rej := fn(i, v)
		if rej != nil {
			at := name + "." + strconv.Itoa(i)
			if rej.Path != "" {
				at += "." + rej.Path
			}
			rej.Path = at
		}
		return rej
	})
}

// eachValue walks the elements of an array's bytes. The Stage validated the document strictly,
// so a read that fails is a programming error, reported rather than skipped.
func eachValue(arr []byte, fn func(i int, v bson.RawValue) *pipeline.Reject) *pipeline.Reject {
	if len(arr) < 5 {
		return &pipeline.Reject{Reason: "internal: malformed array"}
	}
	rem := arr[4 : len(arr)-1]
	for i := 0; len(rem) > 0; i++ {
		t := bsoncore.Type(rem[0])
		k := bytes.IndexByte(rem[1:], 0)
		if k < 0 {
			return &pipeline.Reject{Reason: "internal: malformed array element"}
		}
		v, rest, ok := bsoncore.ReadValue(rem[2+k:], t)
		if !ok {
			return &pipeline.Reject{Reason: "internal: malformed array element"}
		}
		if rej := fn(i, bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}); rej != nil {
			return rej
		}
		rem = rest
	}
	return nil
}

func (t advisory) cvss(doc bson.Raw, aid [16]byte, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	return eachDoc(doc, "cvssMetrics", func(i int, m bson.Raw) *pipeline.Reject {
		r := transforms.NewRow(out, t.tables, tCVSS, opt)
		r.UUID(aid)
		r.Int4(int32(i))
		r.Value(field(m, "version"), "version")
		r.Value(field(m, "vector"), "vector")
		writeBaseScore(r, field(m, "baseScore"), "baseScore")
		r.Value(field(m, "severity"), "severity")
		r.Value(field(m, "source"), "source")
		return r.End()
	})
}

// writeBaseScore writes base_score: a Decimal128, a double (its shortest decimal) or a string
// holding a decimal number (mapping.md, numbers into numeric), which must satisfy the column's
// CHECK (base_score BETWEEN 0 AND 10). NaN and ±Infinity fail it too: numeric NaN sorts above
// every number.
func writeBaseScore(r *transforms.Row, v bson.RawValue, path string) {
	if v.Type == 0 || v.Type == bson.TypeNull {
		r.Null(path)
		return
	}
	var scratch [48]byte
	num, _, verr := transforms.AppendColumn(scratch[:0], pipeline.TypeNumeric, v, transforms.Options{NumberAsString: true, Path: path})
	switch {
	case verr != nil:
		r.Fail(verr.Path, "column base_score: "+verr.Reason)
	case !scoreInRange(num):
		r.Fail(path, `column base_score: value "`+string(num)+`" not allowed`)
	default:
		r.Bytes(num)
	}
}

// scoreInRange tells whether numeric text, as PostgreSQL prints it (plain notation, no sign on
// zero, NaN and Infinity spelled out), lies within 0..10 inclusive.
func scoreInRange(num []byte) bool {
	if len(num) == 0 || num[0] < '0' || num[0] > '9' {
		return false // negative, NaN, Infinity, -Infinity
	}
	intLen := 0
	for intLen < len(num) && num[intLen] != '.' {
		intLen++
	}
	switch {
	case intLen == 1:
		return true // 0 … 9.999…
	case intLen == 2 && num[0] == '1' && num[1] == '0':
		for _, c := range num[intLen:] {
			if c != '.' && c != '0' {
				return false
			}
		}
		return true
	}
	return false
}

func (t advisory) references(doc bson.Raw, aid [16]byte, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	return eachDoc(doc, "references", func(i int, ref bson.Raw) *pipeline.Reject {
		r := transforms.NewRow(out, t.tables, tReferences, opt)
		r.UUID(aid)
		r.Int4(int32(i))
		r.Value(field(ref, "url"), "url")
		r.Value(field(ref, "kind"), "kind")
		r.Value(field(ref, "sourceTag"), "sourceTag")
		r.Value(field(ref, "summary"), "summary")
		return r.End()
	})
}

func (t advisory) credits(doc bson.Raw, aid [16]byte, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	return eachDoc(doc, "credits", func(i int, c bson.Raw) *pipeline.Reject {
		r := transforms.NewRow(out, t.tables, tCredits, opt)
		r.UUID(aid)
		r.Int4(int32(i))
		r.Value(field(c, "name"), "name")
		r.Value(field(c, "contact"), "contact")
		r.Value(field(c, "role"), "role")
		return r.End()
	})
}

// weaknesses writes one row per distinct CWE, in first-occurrence order. Distinct means as
// stored (after --fix-strings mending), the primary key's view; repeatedCWEs counts the rest.
func (t advisory) weaknesses(doc bson.Raw, aid [16]byte, opt transforms.Options, out *pipeline.RowBuffer) *pipeline.Reject {
	var seen map[string]bool
	return eachElem(doc, "cwes", func(_ int, v bson.RawValue) *pipeline.Reject {
		if s, ok := naturalText(v); ok {
			s = stored(s, opt)
			if seen[s] {
				return nil
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[s] = true
		}
		// Anything else (null, another type, a string that cannot be stored) fails in the row
		// with the shared value rules' reason.
		r := transforms.NewRow(out, t.tables, tWeaknesses, opt)
		r.UUID(aid)
		r.Value(v, "")
		return r.End()
	})
}

// repeatedCWEs counts the elements of a loaded advisory's cwes that weaknesses folded away.
func repeatedCWEs(cwes bson.RawValue, opt transforms.Options) int {
	if cwes.Type != bson.TypeArray {
		return 0
	}
	n := 0
	var seen map[string]bool
	_ = eachValue(cwes.Value, func(_ int, v bson.RawValue) *pipeline.Reject {
		if s, ok := naturalText(v); ok {
			s = stored(s, opt)
			if seen[s] {
				n++
			} else {
				if seen == nil {
					seen = map[string]bool{}
				}
				seen[s] = true
			}
		}
		return nil
	})
	return n
}
