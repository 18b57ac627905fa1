// Package tiers decides which source documents a conversion keeps (modules.md): Tier A keeps
// everything, Tier B a recent window or the active documents, Tier C nothing. Filters are
// evaluated on each document rather than pushed into the source query, so every document is read
// and a document left out is counted as skipped with its reason: read = loaded + rejected +
// skipped holds for every source kind alike.
//
// Windows are inclusive at the cutoff: "recent N days on F" keeps F >= as-of - N×24h; a missing
// or non-date F is outside.
package tiers

import (
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/bsonpath"
)

// Tier names.
const (
	A = "A"
	B = "B"
	C = "C"
)

// Skip reasons.
const (
	SkipOutsideWindow = "outside tier window"
	SkipTierC         = "tier C"
)

// Predicate is a condition on a document, given the run's as-of.
type Predicate interface {
	Match(doc bson.Raw, asOf time.Time) bool
	// Query renders the predicate as a MongoDB query with the as-of resolved, for plans and
	// reports.
	Query(asOf time.Time) any
}

// Tier is a collection's tier rule.
type Tier struct {
	Name string
	// Keep selects the documents a Tier B collection keeps; nil keeps all.
	Keep Predicate
	// Note explains a Tier B rule that skips nothing (e.g. "GridFS refs only").
	Note string
}

// Full is Tier A.
func Full() Tier { return Tier{Name: A} }

// Fresh is Tier C: nothing is loaded.
func Fresh() Tier { return Tier{Name: C} }

// Recent is Tier B keeping documents whose date field is within days of the as-of.
func Recent(field string, days int) Tier {
	return Tier{Name: B, Keep: Window{Field: field, Days: days}}
}

// Filter is a tier bound to a run's as-of.
type Filter struct {
	Tier Tier
	AsOf time.Time
}

// Bind fixes the as-of.
func (t Tier) Bind(asOf time.Time) Filter { return Filter{Tier: t, AsOf: asOf.UTC()} }

// Decide returns the skip reason for doc, or "" when the document is kept.
func (f Filter) Decide(doc bson.Raw) string {
	switch f.Tier.Name {
	case C:
		return SkipTierC
	case B:
		if f.Tier.Keep != nil && !f.Tier.Keep.Match(doc, f.AsOf) {
			return SkipOutsideWindow
		}
	}
	return ""
}

// Describe renders the filter for manifests and reports: {"tier", "as_of", "query", "note"}.
func (f Filter) Describe() json.RawMessage {
	d := map[string]any{"tier": f.Tier.Name, "as_of": f.AsOf.Format(time.RFC3339Nano)}
	switch {
	case f.Tier.Name == C:
		d["query"] = "none: fresh start, nothing is loaded"
	case f.Tier.Keep != nil:
		d["query"] = f.Tier.Keep.Query(f.AsOf)
	default:
		d["query"] = map[string]any{}
	}
	if f.Tier.Note != "" {
		d["note"] = f.Tier.Note
	}
	b, _ := json.Marshal(d) // maps of strings and numbers always marshal
	return b
}

// String is a one-line summary for plans and logs.
func (f Filter) String() string {
	switch {
	case f.Tier.Name == C:
		return "none (tier C)"
	case f.Tier.Keep != nil:
		b, _ := json.Marshal(f.Tier.Keep.Query(f.AsOf))
		return string(b)
	case f.Tier.Note != "":
		return "all (" + f.Tier.Note + ")"
	}
	return "all"
}

// Lookup finds a dotted path in doc.
func Lookup(doc bson.Raw, path string) (bson.RawValue, bool) {
	return bsonpath.Path(doc, path)
}

func dateMillis(doc bson.Raw, field string) (int64, bool) {
	v, ok := Lookup(doc, field)
	if !ok || v.Type != bson.TypeDateTime {
		return 0, false
	}
	return v.DateTimeOK()
}

// Window keeps documents whose Field is a date >= as-of - Days×24h.
type Window struct {
	Field string
	Days  int
}

func (w Window) cutoff(asOf time.Time) int64 {
	return asOf.Add(-time.Duration(w.Days) * 24 * time.Hour).UnixMilli()
}

// Match implements Predicate.
func (w Window) Match(doc bson.Raw, asOf time.Time) bool {
	ms, ok := dateMillis(doc, w.Field)
	return ok && ms >= w.cutoff(asOf)
}

// Query implements Predicate.
func (w Window) Query(asOf time.Time) any {
	return map[string]any{w.Field: map[string]any{"$gte": map[string]any{"$date": time.UnixMilli(w.cutoff(asOf)).UTC().Format("2006-01-02T15:04:05.000Z")}}}
}

// After keeps documents whose Field is a date strictly after the as-of.
type After struct{ Field string }

// Match implements Predicate.
func (a After) Match(doc bson.Raw, asOf time.Time) bool {
	ms, ok := dateMillis(doc, a.Field)
	return ok && ms > asOf.UnixMilli()
}

// Query implements Predicate.
func (a After) Query(asOf time.Time) any {
	return map[string]any{a.Field: map[string]any{"$gt": map[string]any{"$date": asOf.UTC().Format("2006-01-02T15:04:05.000Z")}}}
}

// Equals keeps documents whose Field is the string Value.
type Equals struct{ Field, Value string }

// Match implements Predicate.
func (e Equals) Match(doc bson.Raw, _ time.Time) bool {
	v, ok := Lookup(doc, e.Field)
	if !ok {
		return false
	}
	s, ok := v.StringValueOK()
	return ok && s == e.Value
}

// Query implements Predicate.
func (e Equals) Query(time.Time) any { return map[string]any{e.Field: e.Value} }

// NotIn keeps documents whose Field is not one of the strings Values (a missing field is kept:
// it is not one of them).
type NotIn struct {
	Field  string
	Values []string
}

// Match implements Predicate.
func (n NotIn) Match(doc bson.Raw, _ time.Time) bool {
	v, ok := Lookup(doc, n.Field)
	if !ok {
		return true
	}
	s, ok := v.StringValueOK()
	if !ok {
		return true
	}
	for _, x := range n.Values {
		if s == x {
			return false
		}
	}
	return true
}

// Query implements Predicate.
func (n NotIn) Query(time.Time) any { return map[string]any{n.Field: map[string]any{"$nin": n.Values}} }

// And keeps documents that match every predicate.
type And []Predicate

// Match implements Predicate.
func (a And) Match(doc bson.Raw, asOf time.Time) bool {
	for _, p := range a {
		if !p.Match(doc, asOf) {
			return false
		}
	}
	return true
}

// Query implements Predicate.
func (a And) Query(asOf time.Time) any {
	qs := make([]any, len(a))
	for i, p := range a {
		qs[i] = p.Query(asOf)
	}
	return map[string]any{"$and": qs}
}

// Or keeps documents that match any predicate.
type Or []Predicate

// Match implements Predicate.
func (o Or) Match(doc bson.Raw, asOf time.Time) bool {
	for _, p := range o {
		if p.Match(doc, asOf) {
			return true
		}
	}
	return false
}

// Query implements Predicate.
func (o Or) Query(asOf time.Time) any {
	qs := make([]any, len(o))
	for i, p := range o {
		qs[i] = p.Query(asOf)
	}
	return map[string]any{"$or": qs}
}

// ParseAsOf reads an RFC 3339 as-of; empty means now. Millisecond precision, like BSON dates.
func ParseAsOf(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now.UTC().Truncate(time.Millisecond), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--as-of %q: want RFC 3339, e.g. 2026-01-31T00:00:00Z", s)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// WithDays returns the tier with every window's length set to days (an operator's override of
// a Tier B window); a tier without a window is returned unchanged.
func WithDays(t Tier, days int) Tier {
	t.Keep = withDays(t.Keep, days)
	return t
}

// Days reports the tier's window length, or 0 when it has no window.
func Days(t Tier) int {
	return days(t.Keep)
}

func withDays(p Predicate, d int) Predicate {
	switch x := p.(type) {
	case Window:
		x.Days = d
		return x
	case And:
		out := make(And, len(x))
		for i, q := range x {
			out[i] = withDays(q, d)
		}
		return out
	case Or:
		out := make(Or, len(x))
		for i, q := range x {
			out[i] = withDays(q, d)
		}
		return out
	}
	return p
}

func days(p Predicate) int {
	switch x := p.(type) {
	case Window:
		return x.Days
	case And:
		for _, q := range x {
			if d := days(q); d > 0 {
				return d
			}
		}
	case Or:
		for _, q := range x {
			if d := days(q); d > 0 {
				return d
			}
		}
	}
	return 0
}
