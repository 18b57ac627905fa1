package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/ferrettest"
	"github.com/stellaops/convert/internal/pgtest"
)

var tenants = []string{"default", "urn:tenant:acme", "urn:tenant:globex", "urn:tenant:initech"}

func oid(i int, salt byte) bson.ObjectID {
	var o bson.ObjectID
	binary.BigEndian.PutUint32(o[0:4], uint32(1_700_000_000+i))
	o[4] = salt
	binary.BigEndian.PutUint32(o[8:12], uint32(i))
	return o
}

// richDoc is a document holding every BSON type FerretDB accepts, with awkward strings.
func richDoc(id any, i int, r *rand.Rand) bson.D {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(400*24*3600)) * time.Second).Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	uid := make([]byte, 16)
	for j := range uid {
		uid[j] = byte(r.IntN(256))
	}
	d := bson.D{{Key: "_id", Value: id}}
	switch i % 3 {
	case 0:
		d = append(d, bson.E{Key: "tenant", Value: tenants[i%len(tenants)]})
	case 1:
		d = append(d, bson.E{Key: "tenantId", Value: tenants[(i/3)%len(tenants)]})
	}
	d = append(d,
		bson.E{Key: "name", Value: fmt.Sprintf("doc %d \"quoted\" back\\slash\ttab\nnew é ✓ 𝄞 \x01\x1f", i)},
		bson.E{Key: "count", Value: int32(i - 500)},
		bson.E{Key: "big", Value: int64(1)<<62 + int64(i)},
		bson.E{Key: "ratio", Value: float64(i) / 7},
		bson.E{Key: "tiny", Value: 5e-324 * float64(i%3+1)},
		bson.E{Key: "huge", Value: 1.7976931348623157e308 / float64(i%5+1)},
		bson.E{Key: "flag", Value: i%2 == 0},
		bson.E{Key: "at", Value: bson.NewDateTimeFromTime(at)},
		bson.E{Key: "farFuture", Value: bson.DateTime(253402300800000 + int64(i))}, // year 10000
		bson.E{Key: "nothing", Value: nil},
		bson.E{Key: "tags", Value: bson.A{"a", fmt.Sprintf("t%d", i%7), "ü"}},
		bson.E{Key: "nested", Value: bson.D{
			{Key: "level", Value: int32(1)},
			{Key: "items", Value: bson.A{bson.D{{Key: "k", Value: "v"}, {Key: "n", Value: int64(i)}}, bson.D{{Key: "empty", Value: bson.D{}}}}},
			{Key: "list", Value: bson.A{}},
		}},
		bson.E{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, byte(i)}}},
		bson.E{Key: "uid", Value: bson.Binary{Subtype: 4, Data: uid}},
		bson.E{Key: "re", Value: bson.Regex{Pattern: "^a.*b$", Options: "im"}},
		bson.E{Key: "ts", Value: bson.Timestamp{T: uint32(1_700_000_000 + i), I: uint32(i % 10)}},
		bson.E{Key: "ref", Value: oid(i, 9)},
		bson.E{Key: "a key with spaces", Value: "x"},
		bson.E{Key: "ключ", Value: "значение"},
	)
	return d
}

// seedSet builds the test collections: ObjectId, string and mixed-type _ids.
func seedSet(nRuns, nSchedules, nEvents int) map[string][]bson.D {
	r := rand.New(rand.NewPCG(1, 2))
	out := map[string][]bson.D{}
	for i := 0; i < nRuns; i++ {
		out["runs"] = append(out["runs"], richDoc(oid(i, 1), i, r))
	}
	for i := 0; i < nSchedules; i++ {
		out["schedules"] = append(out["schedules"], richDoc(fmt.Sprintf("schedule-%05d", i), i, r))
	}
	for i := 0; i < nEvents; i++ {
		var id any
		switch i % 5 {
		case 0:
			id = int32(i)
		case 1:
			id = int64(1)<<40 + int64(i)
		case 2:
			id = float64(i) + 0.5
		case 3:
			id = fmt.Sprintf("event-%d", i)
		default:
			id = oid(i, 3)
		}
		out["events"] = append(out["events"], richDoc(id, i, r))
	}
	return out
}

func collectionArgs(db string, names ...string) []string {
	var args []string
	for _, n := range names {
		args = append(args, "--collection", db+"."+n)
	}
	return args
}

// TestEndToEnd seeds FerretDB through the driver, runs the real binary and checks the
// PostgreSQL rows value by value, the accounting and the status.
func TestEndToEnd(t *testing.T) {
	uri := ferrettest.URI(t)
	db := ferrettest.Database(t)
	pgURL := pgtest.Database(t)
	client := mongoClient(t, uri)
	set := seedSet(2500, 1200, 900)
	for name, docs := range set {
		seedCollection(t, client, db, name, docs)
	}
	reportPath := filepath.Join(t.TempDir(), "report.json")
	manifestPath := filepath.Join(t.TempDir(), "manifest.json.zst")
	args := append([]string{"run", "--from", uri, "--to", pgURL, "--workers", "3", "--batch-size", "300", "--range-docs", "700",
		"--report", reportPath, "--manifest", manifestPath, "--json"}, collectionArgs(db, "runs", "schedules", "events")...)
	res := mustConvert(t, nil, args...)
	rep := parseReport(t, res.stdout)
	if rep.Status != "completed" {
		t.Fatalf("run status %s", rep.Status)
	}
	conn := pgConn(t, pgURL)
	schema := strings.ToLower(db)
	for name, docs := range set {
		checkGenericTable(t, conn, schema+"."+name, db, name, docs)
	}
	for _, c := range rep.Collections {
		want := int64(len(set[strings.TrimPrefix(c.Collection, db+".")]))
		if c.Read != want || c.Loaded != want || c.Rejected != 0 || c.Skipped != 0 {
			t.Errorf("%s: read %d loaded %d rejected %d skipped %d, want %d read and loaded", c.Collection, c.Read, c.Loaded, c.Rejected, c.Skipped, want)
		}
		if len(c.Checksum) != 64 {
			t.Errorf("%s: checksum %q", c.Collection, c.Checksum)
		}
	}
	if b, err := os.ReadFile(reportPath); err != nil || parseReport(t, string(b)).RunID != rep.RunID {
		t.Errorf("--report file: %v", err)
	}
	if st, err := os.Stat(manifestPath); err != nil || st.Size() == 0 {
		t.Errorf("--manifest file: %v", err)
	}
	st := mustConvert(t, nil, "status", "--to", pgURL, "--run-id", rep.RunID, "--json")
	if s := parseReport(t, st.stdout); s.Status != "completed" || len(s.Collections) != 3 {
		t.Errorf("status: %+v", s)
	}
	// The checksums recomputed from what PostgreSQL holds equal the ones the run recorded.
	checkTargetChecksums(t, pgURL, rep)

	// Running again onto the populated target refuses (exit 2) naming the tables.
	again := convert(t, nil, append([]string{"run", "--from", uri, "--to", pgURL}, collectionArgs(db, "runs")...)...)
	if again.code != 2 || !strings.Contains(again.stderr, schema+".runs") {
		t.Errorf("rerun onto populated target: exit %d, stderr %s", again.code, again.stderr)
	}
}
