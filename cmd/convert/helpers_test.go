package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stellaops/convert/manifests"
	"github.com/stellaops/convert/pipeline/load"
	"github.com/stellaops/convert/transforms/generic"
)

// binPath is the convert binary under test: $CONVERT_BIN (make test builds it), else one built
// by TestMain.
var binPath string

func TestMain(m *testing.M) {
	binPath = os.Getenv("CONVERT_BIN")
	if binPath == "" {
		dir, err := os.MkdirTemp("", "convert-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binPath = filepath.Join(dir, "convert")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build convert: %v\n%s", err, out)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
}

// convert runs the real binary with a bounded time.
func convert(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("convert %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func mustConvert(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := convert(t, env, args...)
	if r.code != 0 {
		t.Fatalf("convert %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// uuidV5 is the test's own RFC 9562 UUIDv5, an oracle independent of transforms.UUIDv5.
func uuidV5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

var nameSpaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

func genericID(db, coll, canonical string) [16]byte {
	return uuidV5(uuidV5(nameSpaceURL, "urn:stellaops:convert:generic"), db+"."+coll+":"+canonical)
}

// canonicalOf is the canonical _id as mapping.md defines it, for the _id types the tests seed.
func canonicalOf(v any) string {
	switch x := v.(type) {
	case bson.ObjectID:
		return x.Hex()
	case string:
		return x
	case int32:
		return fmt.Sprintf(`{"$numberInt":"%d"}`, x)
	case int64:
		return fmt.Sprintf(`{"$numberLong":"%d"}`, x)
	case float64:
		return fmt.Sprintf(`{"$numberDouble":"%s"}`, strconv.FormatFloat(x, 'G', -1, 64))
	}
	panic(fmt.Sprintf("canonicalOf: %T", v))
}

// expectJSON is the test's oracle of the JSONB rules (mapping.md) for the types it seeds.
func expectJSON(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string, bool:
		return x
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return map[string]any{"$numberDouble": strconv.FormatFloat(x, 'G', -1, 64)}
		}
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case bson.ObjectID:
		return x.Hex()
	case bson.DateTime:
		tm := x.Time().UTC()
		if tm.Year() < 0 || tm.Year() > 9999 {
			return map[string]any{"$date": map[string]any{"$numberLong": strconv.FormatInt(int64(x), 10)}}
		}
		return tm.Format("2006-01-02T15:04:05.000Z")
	case bson.Binary:
		if x.Subtype == 4 && len(x.Data) == 16 {
			h := hex.EncodeToString(x.Data)
			return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		}
		return map[string]any{"$binary": map[string]any{"base64": base64.StdEncoding.EncodeToString(x.Data), "subType": fmt.Sprintf("%02x", x.Subtype)}}
	case bson.Regex:
		return map[string]any{"$regularExpression": map[string]any{"pattern": x.Pattern, "options": x.Options}}
	case bson.Timestamp:
		return map[string]any{"$timestamp": map[string]any{"t": x.T, "i": x.I}}
	case bson.D:
		m := map[string]any{}
		for _, e := range x {
			m[e.Key] = expectJSON(e.Value)
		}
		return m
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expectJSON(e)
		}
		return out
	}
	panic(fmt.Sprintf("expectJSON: %T", v))
}

func tenantOfDoc(d bson.D) *string {
	for _, key := range []string{"tenant", "tenantId"} {
		for _, e := range d {
			if e.Key == key {
				if s, ok := e.Value.(string); ok {
					return &s
				}
			}
		}
	}
	return nil
}

// seedCollection inserts docs through the driver.
func seedCollection(t *testing.T, client *mongo.Client, db, coll string, docs []bson.D) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c := client.Database(db).Collection(coll)
	const chunk = 500
	for i := 0; i < len(docs); i += chunk {
		end := min(i+chunk, len(docs))
		batch := make([]any, 0, end-i)
		for _, d := range docs[i:end] {
			batch = append(batch, d)
		}
		if _, err := c.InsertMany(ctx, batch, options.InsertMany().SetOrdered(true)); err != nil {
			t.Fatalf("seed %s.%s: %v", db, coll, err)
		}
	}
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func pgConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// checkGenericTable compares a generic table with the seeded documents, value by value: every
// expected row is present with the expected id, mongo_id, tenant_id and doc, and nothing else.
func checkGenericTable(t *testing.T, conn *pgx.Conn, table, db, coll string, docs []bson.D) {
	t.Helper()
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS expected (id uuid, mongo_id text, tenant_id text, doc jsonb); TRUNCATE expected`); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 0, len(docs))
	for _, d := range docs {
		var idv any
		for _, e := range d {
			if e.Key == "_id" {
				idv = e.Value
			}
		}
		canon := canonicalOf(idv)
		js, err := json.Marshal(expectJSON(d))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, []any{genericID(db, coll, canon), canon, tenantOfDoc(d), string(js)})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"expected"}, []string{"id", "mongo_id", "tenant_id", "doc"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	var n, bad int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(docs) {
		t.Errorf("%s holds %d rows, want %d", table, n, len(docs))
	}
	q := `SELECT count(*) FROM expected e FULL JOIN ` + table + ` t ON t.id = e.id
WHERE e.id IS NULL OR t.id IS NULL OR t.mongo_id <> e.mongo_id OR t.tenant_id IS DISTINCT FROM e.tenant_id OR t.doc <> e.doc`
	if err := conn.QueryRow(ctx, q).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		r, _ := conn.Query(ctx, `SELECT e.mongo_id, t.mongo_id, e.doc::text, t.doc::text FROM expected e FULL JOIN `+table+` t ON t.id = e.id
WHERE e.id IS NULL OR t.id IS NULL OR t.mongo_id <> e.mongo_id OR t.tenant_id IS DISTINCT FROM e.tenant_id OR t.doc <> e.doc LIMIT 3`)
		for r.Next() {
			var a, b, c, d *string
			_ = r.Scan(&a, &b, &c, &d)
			t.Logf("differs: expected %v %v\n  got %v %v", deref(a), deref(c), deref(b), deref(d))
		}
		r.Close()
		t.Fatalf("%s: %d rows differ from the seeded documents", table, bad)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// report is the subset of the JSON report the tests read.
type report struct {
	RunID       string   `json:"run_id"`
	Status      string   `json:"status"`
	Unmapped    []string `json:"unmapped"`
	Collections []struct {
		Collection      string           `json:"collection"`
		Read            int64            `json:"read"`
		Selected        int64            `json:"selected"`
		Loaded          int64            `json:"loaded"`
		Rejected        int64            `json:"rejected"`
		Skipped         int64            `json:"skipped"`
		SkippedByReason map[string]int64 `json:"skipped_by_reason"`
		RowsByTable     map[string]int64 `json:"rows_by_table"`
		Checksum        string           `json:"checksum"`
		Status          string           `json:"status"`
	} `json:"collections"`
}

func parseReport(t *testing.T, s string) report {
	t.Helper()
	var r report
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("parse report: %v\n%s", err, s)
	}
	return r
}

func checksums(r report) map[string]string {
	m := map[string]string{}
	for _, c := range r.Collections {
		m[c.Collection] = c.Checksum
	}
	return m
}

// checkTargetChecksums recomputes each generic collection's checksum from the rows PostgreSQL
// holds and compares it with the run's record: the bytes hashed on the way in are the bytes
// read back.
func checkTargetChecksums(t *testing.T, pgURL string, rep report) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, c := range rep.Collections {
		sp, err := generic.ParseSpec(c.Collection)
		if err != nil {
			t.Fatal(err)
		}
		tb := generic.Table(sp)
		sum, err := load.ReadTableSum(t.Context(), pool, tb)
		if err != nil {
			t.Fatal(err)
		}
		got := manifests.CollectionChecksum(manifests.TableSums{tb.FullName(): sum}).String()
		if got != c.Checksum {
			t.Errorf("%s: checksum from target %s, run recorded %s", c.Collection, got, c.Checksum)
		}
	}
}

func mustUnmarshal(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
}
