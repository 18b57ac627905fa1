package transforms

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/internal/pgtest"
)

// Raw BSON builders, for documents the driver would refuse to build (faults, odd encodings).

func rawDoc(elems ...[]byte) []byte {
	n := 4 + 1
	for _, e := range elems {
		n += len(e)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(n))
	for _, e := range elems {
		b = append(b, e...)
	}
	return append(b, 0)
}

func rawEl(t byte, key string, val []byte) []byte {
	b := append([]byte{t}, key...)
	b = append(b, 0)
	return append(b, val...)
}

func rawStr(s string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(s)+1))
	b = append(b, s...)
	return append(b, 0)
}

func rawI32(i int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(i)) }
func rawI64(i int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(i)) }
func rawF64(f float64) []byte {
	return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f))
}

func rawBin(sub byte, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, sub)
	return append(b, data...)
}

// rawOldBin is binary subtype 2 with its inner length.
func rawOldBin(data []byte) []byte {
	inner := append(rawI32(int32(len(data))), data...)
	return rawBin(2, inner)
}

func rawDec(h, l uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, l)
	return binary.LittleEndian.AppendUint64(b, h)
}

func rawTS(t, i uint32) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(t)<<32|uint64(i))
}

func rawCWS(code string, scope []byte) []byte {
	s := rawStr(code)
	b := rawI32(int32(4 + len(s) + len(scope)))
	b = append(b, s...)
	return append(b, scope...)
}

func mustMarshal(t testing.TB, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawValue marshals one value and returns it as a RawValue.
func rawValue(t testing.TB, v any) bson.RawValue {
	t.Helper()
	doc := mustMarshal(t, bson.D{{Key: "v", Value: v}})
	return doc.Lookup("v")
}

func mustDecimal(t testing.TB, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatalf("ParseDecimal128(%q): %v", s, err)
	}
	return d
}

// testConn connects to a fresh database on the shared test server (internal/pgtest): skipped
// without one, except under CI, where a skipped server test would hide a gap and so fails.
func testConn(t testing.TB) *pgx.Conn {
	t.Helper()
	url := pgtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var major int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		t.Fatal(err)
	}
	if major < 15 {
		t.Fatalf("PostgreSQL %d: these tests need 15 or later", major)
	}
	return conn
}
