package generic

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/tiers"
	"github.com/stellaops/convert/transforms"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in      string
		want    Spec
		wantErr bool
	}{
		{in: "excititor.vex.raw", want: Spec{DB: "excititor", Collection: "vex.raw", Schema: "excititor", Table: "vex_raw"}},
		{in: "Stella-Ops.Runs", want: Spec{DB: "Stella-Ops", Collection: "Runs", Schema: "stella_ops", Table: "runs"}},
		{in: "db.c=Custom.T1", want: Spec{DB: "db", Collection: "c", Schema: "Custom", Table: "T1"}},
		{in: "nodot", wantErr: true},
		{in: ".c", wantErr: true},
		{in: "db.c=schemaonly", wantErr: true},
		{in: "db.c=a.b.c", wantErr: true},
		// PostgreSQL keeps 63 bytes of a name: one byte more is refused, default or given.
		{in: "db." + strings.Repeat("c", 63), want: Spec{DB: "db", Collection: strings.Repeat("c", 63), Schema: "db", Table: strings.Repeat("c", 63)}},
		{in: "db." + strings.Repeat("c", 64), wantErr: true},
		{in: "db.c=s." + strings.Repeat("t", 64), wantErr: true},
		{in: "db.c=" + strings.Repeat("s", 64) + ".t", wantErr: true},
		{in: strings.Repeat("d", 64) + ".c", wantErr: true},
		{in: "db." + strings.Repeat("c", 64) + "=s.t", want: Spec{DB: "db", Collection: strings.Repeat("c", 64), Schema: "s", Table: "t"}},
	}
	for _, c := range cases {
		got, err := ParseSpec(c.in)
		if (err != nil) != c.wantErr || (!c.wantErr && got != c.want) {
			t.Errorf("ParseSpec(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// TestIdentityCollisionsDecidedBySmallestID: whatever the order documents are applied in, the
// smallest _id in MongoDB's order wins a collision and the others are rejected.
func TestIdentityCollisionsDecidedBySmallestID(t *testing.T) {
	o := bson.NewObjectIDFromTimestamp(time.Unix(1_700_000_000, 0))
	mk := func(id any) bson.Raw {
		b, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	docs := []bson.Raw{mk(o), mk(o.Hex()), mk(int32(5)), mk(`{"$numberInt":"5"}`), mk("plain")}
	want := map[int]bool{0: true, 3: true} // rejected: the ObjectId (strings sort first) and the string (numbers sort first)
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {1, 3, 0, 2, 4}} {
		sp, _ := ParseSpec("db.c")
		tr := New(sp, tiers.Full().Bind(time.Now()), transforms.Options{})
		err := tr.Prepare(context.Background(), pipeline.KeyPass{Scan: func(fn func(bson.Raw) error) error {
			for _, i := range order {
				if err := fn(docs[i]); err != nil {
					return err
				}
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range order {
			var buf pipeline.RowBuffer
			v := tr.Apply(docs[i], &buf)
			if rejected := v.Reject != nil; rejected != want[i] {
				t.Errorf("order %v: document %d rejected = %v (%v)", order, i, rejected, v.Reject)
			}
		}
	}
}
