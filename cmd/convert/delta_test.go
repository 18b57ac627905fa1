package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
	"github.com/stellaops/convert/internal/sample"
	"github.com/stellaops/convert/pipeline/extract/dump"
)

// TestDeltaLive: after a first run, documents are inserted, updated and deleted in the live
// source; a delta run brings the target to exactly what a fresh full conversion gives (same
// checksums), and verify of the delta run is clean.
func TestDeltaLive(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(600, 200, 0)
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
	}
	colls := collectionArgs(db, "runs", "schedules")
	pgURL := pgtest.Database(t)
	first := parseReport(t, mustConvert(t, nil, append([]string{"run", "--from", uri, "--to", pgURL, "--json", "--as-of", "2026-06-01T00:00:00Z"}, colls...)...).stdout)

	ctx := context.Background()
	runs := client.Database(db).Collection("runs")
	if _, err := runs.DeleteMany(ctx, bson.D{{Key: "count", Value: bson.D{{Key: "$lt", Value: int32(-400)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := runs.UpdateMany(ctx, bson.D{{Key: "count", Value: bson.D{{Key: "$gt", Value: int32(50)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "renamed"}, {Key: "tenant", Value: "urn:tenant:moved"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := runs.InsertOne(ctx, bson.D{{Key: "_id", Value: oid(99999, 1)}, {Key: "tenant", Value: "default"}, {Key: "name", Value: "new"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Database(db).Collection("schedules").DeleteOne(ctx, bson.D{{Key: "_id", Value: "schedule-00003"}}); err != nil {
		t.Fatal(err)
	}

	delta := parseReport(t, mustConvert(t, nil, append([]string{"run", "--from", uri, "--to", pgURL, "--json", "--delta", "--since-run", first.RunID,
		"--as-of", "2026-07-01T00:00:00Z"}, colls...)...).stdout)
	fresh := parseReport(t, mustConvert(t, nil, append([]string{"run", "--from", uri, "--to", pgtest.Database(t), "--json", "--as-of", "2026-07-01T00:00:00Z"}, colls...)...).stdout)
	for name, sum := range checksums(fresh) {
		if checksums(delta)[name] != sum {
			t.Errorf("%s: delta %s, fresh %s", name, checksums(delta)[name], sum)
		}
	}
	checkTargetChecksums(t, pgURL, fresh) // the target itself, read back, equals the fresh conversion
	verifyClean(t, uri, pgURL, delta.RunID)
}

// TestDeltaModules: the four modules on the sample; the source then loses documents that others
// reference (a user with tokens, an advisory with aliases), changes documents (a user's roles
// and tenant) and gains new ones, and the as-of moves on; the delta run equals a fresh full
// conversion, derived tables included.
func TestDeltaModules(t *testing.T) {
	asOf1 := sample.DefaultAsOf
	asOf2 := asOf1.Add(20 * 24 * time.Hour)
	colls := sample.Generate(sample.Options{Seed: 11, Scale: 1, AsOf: asOf1})
	dir1 := filepath.Join(t.TempDir(), "before")
	if err := sample.WriteDump(context.Background(), dir1, colls, dump.None); err != nil {
		t.Fatal(err)
	}
	pgURL := pgtest.Database(t)
	first := parseReport(t, mustConvert(t, nil, "run", "--from", dir1, "--to", pgURL, "--module", "all", "--create-schema",
		"--as-of", asOf1.Format(time.RFC3339), "--json").stdout)

	mutate := func(name string, fn func(i int, d bson.D) (bson.D, bool)) {
		for ci := range colls {
			if colls[ci].Name != name {
				continue
			}
			var out []bson.Raw
			for i, raw := range colls[ci].Docs {
				var d bson.D
				if err := bson.Unmarshal(raw, &d); err != nil {
					t.Fatal(err)
				}
				nd, keep := fn(i, d)
				if !keep {
					continue
				}
				b, err := bson.Marshal(nd)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			colls[ci].Docs = out
		}
	}
	set := func(d bson.D, key string, v any) bson.D {
		for i := range d {
			if d[i].Key == key {
				d[i].Value = v
				return d
			}
		}
		return append(d, bson.E{Key: key, Value: v})
	}
	// The planted duplicate user (two acme/jdoe): deleting the winner makes the other one win,
	// while the old winner's row still holds the key in the target.
	var jdoe []string
	for _, c := range colls {
		if c.Name != "authority_users" {
			continue
		}
		for _, raw := range c.Docs {
			u, _ := bson.Raw(raw).Lookup("username").StringValueOK()
			tn, _ := bson.Raw(raw).Lookup("tenant").StringValueOK()
			if u == "jdoe" && tn == "urn:tenant:acme" {
				jdoe = append(jdoe, bson.Raw(raw).Lookup("_id").ObjectID().Hex())
			}
		}
	}
	if len(jdoe) != 2 {
		t.Fatalf("the sample has %d acme/jdoe users, want the planted pair", len(jdoe))
	}
	winner := min(jdoe[0], jdoe[1])
	mutate("authority_users", func(i int, d bson.D) (bson.D, bool) {
		if id, ok := d[0].Value.(bson.ObjectID); ok && id.Hex() == winner {
			return d, false
		}
		switch {
		case i%17 == 0:
			return d, false // deleted: its tokens lose their parent
		case i%11 == 0:
			return set(d, "roles", bson.A{"auditor", "operator", "auditor"}), true
		case i%13 == 0:
			return set(d, "tenant", "urn:tenant:newco"), true
		}
		return d, true
	})
	mutate("advisory", func(i int, d bson.D) (bson.D, bool) {
		if i%10 == 0 {
			return d, false // deleted: its aliases and affected lose their parent
		}
		if i%7 == 0 {
			return set(d, "title", "changed title"), true
		}
		return d, true
	})
	mutate("vex.observations", func(i int, d bson.D) (bson.D, bool) { return d, i%9 != 0 })
	dir2 := filepath.Join(t.TempDir(), "after")
	if err := sample.WriteDump(context.Background(), dir2, colls, dump.None); err != nil {
		t.Fatal(err)
	}
	// The source moved: a delta reads the same source under its new name.
	delta := parseReport(t, mustConvert(t, nil, "run", "--from", dir2, "--to", pgURL, "--module", "all", "--delta", "--since-run", first.RunID,
		"--as-of", asOf2.Format(time.RFC3339), "--json").stdout)
	fresh := parseReport(t, mustConvert(t, nil, "run", "--from", dir2, "--to", pgtest.Database(t), "--module", "all", "--create-schema",
		"--as-of", asOf2.Format(time.RFC3339), "--json").stdout)
	for name, sum := range checksums(fresh) {
		if checksums(delta)[name] != sum {
			t.Errorf("%s: delta %s, fresh %s", name, checksums(delta)[name], sum)
		}
	}
	verifyClean(t, dir2, pgURL, delta.RunID)
}
