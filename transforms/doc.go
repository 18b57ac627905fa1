// Package transforms holds what every module transform shares: strict BSON reading, identity
// (UUIDv5 row ids and canonical _id), the BSON → PostgreSQL value mapping and canonical jsonb.
// The contract is ../shared/spec/mapping.md; this package implements it and points there rather
// than restating it.
//
// Everything here is a pure function of its arguments: no I/O, no globals that change, safe for
// concurrent use. Nothing imports pgx or the mongo client; values are encoded straight into the
// caller's buffer (normally pipeline.RowBuffer.Data between BeginCell and EndCell) in the
// checksum encoding's value form:
//
//   - binary types (uuid, smallint, integer, bigint, double precision, boolean,
//     timestamp with time zone, bytea, text, text[]) as PostgreSQL's binary send format;
//   - jsonb and numeric as the text PostgreSQL prints for them, so that reading a loaded value
//     back gives the same bytes and the checksum can be recomputed from the target.
//
// The Append functions follow strconv's append style: they extend dst and return it. On error
// they return dst cut back to its length on entry, so a caller that began a cell can drop it.
//
// Errors: ValidateStrict returns *InvalidBSONError (structural fault, reject reason as is);
// value checks return *ValueError (a value a column cannot hold, reject with its Path and
// Reason). Reasons never quote a stored value; a duplicate key's name, which is structure, is
// the one exception.
//
// Options.Fixed is how --fix-strings mends are counted: each mended value (a string, key,
// JavaScript code, symbol, regex part or DBPointer namespace that had a NUL or invalid UTF-8)
// adds one to *Fixed when the call succeeds; the transform reports the sum in
// pipeline.Verdict.StringsFixed. A mended
// value has its NULs removed and each byte that does not start a valid UTF-8 sequence replaced
// by U+FFFD (Go's decoding rule: one U+FFFD per such byte).
package transforms

import "strings"

// Options carries the run's --fix-strings choice and the column facts a spec states. The zero
// value is strict: faults reject, no string conversions.
type Options struct {
	// FixStrings mends NUL and invalid UTF-8 instead of rejecting (mapping.md, --fix-strings).
	FixStrings bool
	// Fixed, when not nil, is incremented once per value mended under FixStrings, by calls that
	// succeed. Each document's transform passes its own counter.
	Fixed *int
	// DateAsString lets an ISO-8601 (RFC 3339) date-time string fill a timestamptz column: the
	// spec's "date as string".
	DateAsString bool
	// NumberAsString lets a string holding a decimal number fill a numeric column: the spec's
	// "may be a double or a string" (advisory_cvss.base_score).
	NumberAsString bool
	// SortArray stores a text[] bytewise ascending, duplicates kept, NULL elements last: the
	// spec's "stored sorted".
	SortArray bool
	// Path is where the value sits in its document (e.g. "mfa.enabled"); ValueError.Path is
	// reported under it. Empty for a whole document.
	Path string
}

// ValueError is a value that its target cannot hold: the document is rejected with this path
// and reason (mapping.md, Rejects). Path uses dots, array positions as numbers ("a.b.3.c").
type ValueError struct {
	Path   string
	Reason string
}

func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// valueErr builds an error at opt.Path.
func valueErr(opt *Options, reason string) *ValueError {
	return &ValueError{Path: opt.Path, Reason: reason}
}

// joinPath puts a child path, built while the recursion unwinds, below its parent.
func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	if child == "" {
		return parent
	}
	return parent + "." + child
}

// pathKey is a key as a path element: paths are stored in rejects.path (text), so invalid
// UTF-8 in a key is mended for the report.
func pathKey(key []byte) string {
	return strings.ToValidUTF8(string(key), "\uFFFD")
}

func (o *Options) addFixed(n int) {
	if o.Fixed != nil && n > 0 {
		*o.Fixed += n
	}
}
