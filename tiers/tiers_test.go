package tiers

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func doc(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecide(t *testing.T) {
	asOf := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cutoff90 := asOf.Add(-90 * 24 * time.Hour)
	date := func(tm time.Time) bson.DateTime { return bson.NewDateTimeFromTime(tm) }
	terminal := []string{"completed", "failed", "cancelled"}
	activeOrRecent := Tier{Name: B, Keep: Or{NotIn{Field: "status", Values: terminal}, Window{Field: "createdAt", Days: 30}}}
	tokens := Tier{Name: B, Keep: And{Equals{Field: "status", Value: "valid"}, After{Field: "expiresAt"}}}

	cases := []struct {
		name string
		tier Tier
		doc  bson.D
		want string
	}{
		{"A keeps all", Full(), bson.D{{Key: "x", Value: 1}}, ""},
		{"C skips all", Fresh(), bson.D{{Key: "x", Value: 1}}, SkipTierC},
		{"window: at cutoff is inside", Recent("at", 90), bson.D{{Key: "at", Value: date(cutoff90)}}, ""},
		{"window: one second inside", Recent("at", 90), bson.D{{Key: "at", Value: date(cutoff90.Add(time.Second))}}, ""},
		{"window: one second outside", Recent("at", 90), bson.D{{Key: "at", Value: date(cutoff90.Add(-time.Second))}}, SkipOutsideWindow},
		{"window: one ms outside", Recent("at", 90), bson.D{{Key: "at", Value: date(cutoff90.Add(-time.Millisecond))}}, SkipOutsideWindow},
		{"window: missing field is outside", Recent("at", 90), bson.D{}, SkipOutsideWindow},
		{"window: string date is outside", Recent("at", 90), bson.D{{Key: "at", Value: asOf.Format(time.RFC3339)}}, SkipOutsideWindow},
		{"window: nested path", Recent("up.at", 90), bson.D{{Key: "up", Value: bson.D{{Key: "at", Value: date(asOf)}}}}, ""},
		{"active: running old job kept", activeOrRecent, bson.D{{Key: "status", Value: "running"}, {Key: "createdAt", Value: date(asOf.AddDate(-1, 0, 0))}}, ""},
		{"active: completed old job skipped", activeOrRecent, bson.D{{Key: "status", Value: "completed"}, {Key: "createdAt", Value: date(asOf.AddDate(-1, 0, 0))}}, SkipOutsideWindow},
		{"active: completed recent job kept", activeOrRecent, bson.D{{Key: "status", Value: "failed"}, {Key: "createdAt", Value: date(asOf.Add(-time.Hour))}}, ""},
		{"tokens: valid, expires one second after as-of", tokens, bson.D{{Key: "status", Value: "valid"}, {Key: "expiresAt", Value: date(asOf.Add(time.Second))}}, ""},
		{"tokens: valid, expires at as-of", tokens, bson.D{{Key: "status", Value: "valid"}, {Key: "expiresAt", Value: date(asOf)}}, SkipOutsideWindow},
		{"tokens: revoked", tokens, bson.D{{Key: "status", Value: "revoked"}, {Key: "expiresAt", Value: date(asOf.Add(time.Hour))}}, SkipOutsideWindow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.tier.Bind(asOf).Decide(doc(t, c.doc)); got != c.want {
				t.Fatalf("Decide = %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseAsOf(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	got, err := ParseAsOf("", now)
	if err != nil || !got.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("default as-of = %v, %v", got, err)
	}
	got, err = ParseAsOf("2026-01-31T01:00:00+01:00", now)
	if err != nil || !got.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("as-of with offset = %v, %v", got, err)
	}
	if _, err := ParseAsOf("yesterday", now); err == nil {
		t.Fatal("want an error for a non-RFC 3339 as-of")
	}
}
