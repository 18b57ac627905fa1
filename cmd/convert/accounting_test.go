package main

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

// TestAccountingWithUnmappableDocuments seeds documents that cannot be mapped — string _ids
// that derive the same id as another _id — and checks read = loaded + rejected
// + skipped in the report and in the manifest, with one reject row per refused document naming
// its _id and reason, and the raw BSON kept.
func TestAccountingWithUnmappableDocuments(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	client := mongoClient(t, uri)
	var docs []bson.D
	for i := 0; i < 300; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: oid(i, 5)}, {Key: "tenant", Value: tenants[i%4]}, {Key: "n", Value: int32(i)}})
	}
	// FerretDB refuses a string _id equal to an ObjectId's hex as a duplicate, so collisions are
	// seeded as numbers and strings that spell their canonical Extended JSON (the dump tests
	// cover the ObjectId case).
	colliding := map[string]bool{}
	for i := 0; i < 5; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "n", Value: int32(i)}})
		canon := canonicalOf(int32(i))
		colliding[canon] = true
		docs = append(docs, bson.D{{Key: "_id", Value: canon}, {Key: "n", Value: int32(-i)}})
	}
	seedCollection(t, client, db, "mixed", docs)

	// FerretDB also mends invalid UTF-8 on insert, so encoding faults are covered by the
	// mongodump tests.
	{
		pgURL := pgtest.Database(t)
		args := []string{"run", "--from", uri, "--to", pgURL, "--json", "--workers", "2", "--batch-size", "50", "--collection", db + ".mixed"}
		wantRejected := int64(len(colliding))
		rep := parseReport(t, mustConvert(t, nil, args...).stdout)
		c := rep.Collections[0]
		if c.Read != int64(len(docs)) || c.Rejected != wantRejected || c.Read != c.Loaded+c.Rejected+c.Skipped {
			t.Fatalf("read %d loaded %d rejected %d skipped %d; want read %d, rejected %d", c.Read, c.Loaded, c.Rejected, c.Skipped, len(docs), wantRejected)
		}
		conn := pgConn(t, pgURL)
		var read, loaded, rejected, rejectRows int64
		if err := conn.QueryRow(t.Context(), `SELECT read, loaded, rejected, (SELECT count(*) FROM convert.rejects) FROM convert.collections`).Scan(&read, &loaded, &rejected, &rejectRows); err != nil {
			t.Fatal(err)
		}
		if read != c.Read || loaded != c.Loaded || rejected != c.Rejected || rejectRows != rejected {
			t.Errorf("manifest: read %d loaded %d rejected %d reject rows %d; report %+v", read, loaded, rejected, rejectRows, c)
		}
		rows, err := conn.Query(t.Context(), `SELECT coalesce(_id, ''), path, reason, raw FROM convert.rejects`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, reason string
			var path string
			var raw []byte
			if err := rows.Scan(&id, &path, &reason, &raw); err != nil {
				t.Fatal(err)
			}
			switch {
			case colliding[id]:
				if reason != "identity collision "+id {
					t.Errorf("reject %s: %q", id, reason)
				}
				// The string document is the one rejected: numbers sort before strings and win.
				if v := bson.Raw(raw).Lookup("_id"); v.Type != bson.TypeString {
					t.Errorf("reject %s kept the %s document, want the string one", id, v.Type)
				}
			default:
				t.Errorf("unexpected reject %s: %s", id, reason)
			}
			if err := bson.Raw(raw).Validate(); err != nil {
				t.Errorf("reject %s: raw BSON not kept: %v", id, err)
			}
		}
		rows.Close()
		var nums int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+db+`.mixed WHERE jsonb_typeof(doc->'_id') = 'number'`).Scan(&nums); err != nil {
			t.Fatal(err)
		}
		if nums != len(colliding) {
			t.Errorf("%d number _ids loaded, want the %d that won their collision", nums, len(colliding))
		}
	}
}
