package transforms

// Round trips through a real PostgreSQL (internal/pgtest): the server is the judge of what
// "as PostgreSQL prints it" and "binary send format" mean.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/stellaops/convert/pipeline"
)

func pgContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pgEcho sends each text through `<text>::<cast>::text` in one statement and returns what the
// server printed, or the error text for inputs it refused (refusals are not expected here).
func pgEcho(t *testing.T, conn *pgx.Conn, cast string, texts []string) []string {
	t.Helper()
	ctx := pgContext(t)
	out := make([]string, 0, len(texts))
	// Batches keep each statement well below the protocol's limits.
	for len(texts) > 0 {
		n := min(len(texts), 500)
		rows, err := conn.Query(ctx,
			"SELECT u.t::"+cast+"::text FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY u.n",
			texts[:n])
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			// Find the culprit so the failure names it.
			for _, s := range texts[:n] {
				var x string
				if err := conn.QueryRow(ctx, "SELECT $1::"+cast+"::text", s).Scan(&x); err != nil {
					t.Fatalf("server refused %.200q: %v", s, err)
				}
			}
			t.Fatal(err)
		}
		out = append(out, got...)
		texts = texts[n:]
	}
	return out
}

func compareEcho(t *testing.T, names, ours, theirs []string) {
	t.Helper()
	bad := 0
	for i := range ours {
		if ours[i] != theirs[i] {
			bad++
			if bad <= 10 {
				t.Errorf("%s:\n ours %.400q\n  pg  %.400q", names[i], ours[i], theirs[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d differ", bad, len(ours))
	}
}

func TestJSONBRoundTripPG(t *testing.T) {
	conn := testConn(t)
	var names, texts []string
	add := func(name string, doc bson.Raw) {
		t.Helper()
		if err := ValidateStrict(doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := AppendJSONB(nil, doc, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names, texts = append(names, name), append(texts, string(b))
	}
	add("every type", everyType(t))
	kd, _ := keyOrderDoc(t)
	add("key order", kd)
	for _, c := range jsonbValueCases(t) {
		add(c.name, rawDoc(rawEl(byte(c.v.Type), "v", c.v.Value)))
		b, err := AppendJSONBValue(nil, c.v, Options{})
		if err != nil {
			t.Fatal(err)
		}
		names, texts = append(names, c.name+" (value)"), append(texts, string(b))
	}
	// Every byte that can appear in a valid string, as a value and as a key.
	var all []byte
	for c := 1; c < 0x80; c++ {
		all = append(all, byte(c))
	}
	all = append(all, "é€😀\uFFFF\u2028\u00a0\U0010FFFF"...)
	var d bson.D
	for i := 1; i < 0x80; i++ {
		d = append(d, bson.E{Key: string(rune(i)), Value: string(all[:i])})
	}
	add("all bytes", mustMarshal(t, d))
	add("long key", mustMarshal(t, bson.D{{Key: strings.Repeat("ключ", 2000), Value: strings.Repeat("x\n", 5000)}}))
	// Nesting to the limit.
	deep := rawDoc()
	for i := 1; i < MaxDepth; i++ {
		if i%2 == 0 {
			deep = rawDoc(rawEl(0x04, "0", deep))
		} else {
			deep = rawDoc(rawEl(0x03, "k", deep), rawEl(0x10, "i", rawI32(int32(i))))
		}
	}
	add("deep", deep)
	// Mended strings load too.
	mended, err := AppendJSONB(nil, rawDoc(rawEl(0x02, "s\xff", rawStr("a\x00\xc3(b"))), Options{FixStrings: true})
	if err != nil {
		t.Fatal(err)
	}
	names, texts = append(names, "mended"), append(texts, string(mended))

	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		doc := mustMarshal(t, randomDoc(r, 0))
		add(fmt.Sprintf("random %d (%x)", i, []byte(doc)), doc)
	}
	compareEcho(t, names, texts, pgEcho(t, conn, "jsonb", texts))
}

// randomDoc builds a document of random keys and values of every BSON type.
func randomDoc(r *rand.Rand, depth int) bson.D {
	n := r.IntN(8)
	if depth == 0 {
		n += 1 + r.IntN(30)
	}
	seen := map[string]bool{}
	d := bson.D{}
	for len(d) < n {
		k := randomString(r, 12)
		if strings.IndexByte(k, 0) >= 0 || seen[k] {
			continue
		}
		seen[k] = true
		d = append(d, bson.E{Key: k, Value: randomValue(r, depth)})
	}
	return d
}

var stringAlphabet = []rune("aZ09 _-.$\"\\/\b\f\n\r\t\x01\x1f\x7f\u0080éß€😀\u2028\uFFFD\uFFFF\U0010FFFF")

func randomString(r *rand.Rand, maxLen int) string {
	var b strings.Builder
	for n := r.IntN(maxLen + 1); n > 0; n-- {
		b.WriteRune(stringAlphabet[r.IntN(len(stringAlphabet))])
	}
	return b.String()
}

func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(6) {
	case 0:
		return math.Float64frombits(r.Uint64()) // anything, NaN and subnormals included
	case 1:
		return float64(r.Int64N(1<<53)) * []float64{1, -1}[r.IntN(2)]
	case 2:
		return math.Ldexp(r.Float64(), r.IntN(2100)-1075)
	case 3:
		return []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, math.MaxFloat64, 1e21, 1e-7, 0.1}[r.IntN(10)]
	}
	return math.Round(r.NormFloat64()*1e4) / 100
}

func randomDecimal(r *rand.Rand) bson.Decimal128 {
	switch r.IntN(10) {
	case 0:
		return bson.NewDecimal128(r.Uint64(), r.Uint64()) // non-canonical, NaN and Inf included
	case 1:
		s := []string{"NaN", "Infinity", "-Infinity", "-0", "0E+6111", "0E-6176", "-0.000"}[r.IntN(7)]
		d, _ := bson.ParseDecimal128(s)
		return d
	}
	digits := strconv.FormatUint(r.Uint64(), 10)
	if r.IntN(2) == 0 {
		digits += strconv.FormatUint(r.Uint64()%1e14, 10)
	}
	exp := r.IntN(40) - 30
	if r.IntN(8) == 0 {
		exp = r.IntN(6111+6176-34) - 6176
	}
	sign := []string{"", "-"}[r.IntN(2)]
	d, err := bson.ParseDecimal128(sign + digits + "E" + strconv.Itoa(exp))
	if err != nil {
		panic(err)
	}
	return d
}

func randomValue(r *rand.Rand, depth int) any {
	k := r.IntN(24)
	if depth >= 4 && (k == 2 || k == 3 || k == 15) {
		k = 0
	}
	oid := bson.ObjectID{}
	for i := range oid {
		oid[i] = byte(r.Uint32())
	}
	switch k {
	case 0:
		return randomFloat(r)
	case 1:
		return randomString(r, 20)
	case 2:
		return randomDoc(r, depth+1)
	case 3:
		var a bson.A
		for n := r.IntN(5); n > 0; n-- {
			a = append(a, randomValue(r, depth+1))
		}
		if a == nil {
			a = bson.A{}
		}
		return a
	case 4:
		data := make([]byte, r.IntN(20))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		sub := []byte{0, 1, 3, 4, 5, 6, 0x80, 0xff}[r.IntN(8)]
		if sub == 4 && r.IntN(2) == 0 {
			data = append(data[:0], make([]byte, 16)...)
			data[0] = byte(r.Uint32())
		}
		return bson.Binary{Subtype: sub, Data: data}
	case 5:
		return bson.Undefined{}
	case 6:
		return oid
	case 7:
		return r.IntN(2) == 0
	case 8:
		ms := r.Int64N(4e14) - 2e14
		if r.IntN(4) == 0 {
			ms = int64(r.Uint64())
		}
		return bson.DateTime(ms)
	case 9:
		return nil
	case 10:
		opts := []byte("imsxlu")
		r.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
		return bson.Regex{Pattern: strings.ReplaceAll(randomString(r, 10), "\x00", ""), Options: string(opts[:r.IntN(7)])}
	case 11:
		return bson.DBPointer{DB: randomString(r, 10), Pointer: oid}
	case 12:
		return bson.JavaScript(randomString(r, 20))
	case 13:
		return bson.Symbol(randomString(r, 10))
	case 14:
		return bson.CodeWithScope{Code: bson.JavaScript(randomString(r, 10)), Scope: randomDoc(r, depth+1)}
	case 15:
		return bson.D{{Key: "$numberDouble", Value: "NaN"}} // looks like a tag, is not one
	case 16:
		return int32(r.Uint32())
	case 17:
		return bson.Timestamp{T: r.Uint32(), I: r.Uint32()}
	case 18:
		return int64(r.Uint64())
	case 19, 20:
		return randomDecimal(r)
	case 21:
		return bson.MinKey{}
	case 22:
		return bson.MaxKey{}
	}
	return randomString(r, 40)
}

// pgBinaryEcho has the server read b as a binary parameter of type oid and send it back in
// binary: the server's own send format for the value it read.
func pgBinaryEcho(t *testing.T, conn *pgx.Conn, sqlType string, oid uint32, b []byte) ([]byte, error) {
	t.Helper()
	res := conn.PgConn().ExecParams(pgContext(t), "SELECT $1::"+sqlType, [][]byte{b}, []uint32{oid}, []int16{1}, []int16{1}).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Rows[0][0], nil
}

func TestColumnsRoundTripPG(t *testing.T) {
	conn := testConn(t)
	for _, c := range columnCases(t) {
		if c.err != "" || c.null {
			continue
		}
		got, _, err := AppendColumn(nil, c.t, c.v, c.opt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		switch c.t {
		case pipeline.TypeJSONB, pipeline.TypeNumeric:
			// Text forms: compare with what the server prints.
			var printed string
			if err := conn.QueryRow(pgContext(t), "SELECT $1::"+c.t.SQL()+"::text", string(got)).Scan(&printed); err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if printed != string(got) {
				t.Errorf("%s: ours %q, server %q", c.name, got, printed)
			}
		default:
			echo, err := pgBinaryEcho(t, conn, c.t.SQL(), c.t.OID(), got)
			if err != nil {
				t.Errorf("%s: server refused %x: %v", c.name, got, err)
			} else if !bytes.Equal(echo, got) {
				t.Errorf("%s: ours %x, server %x", c.name, got, echo)
			}
		}
	}
}

// Facts the encoders rely on, asked of the server directly.
func TestServerFactsPG(t *testing.T) {
	conn := testConn(t)
	ctx := pgContext(t)
	var b []byte
	if err := conn.QueryRow(ctx, "SELECT float8send('NaN'::float8)").Scan(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, AppendFloat8(nil, math.NaN())) {
		t.Errorf("the server's NaN is %x, ours %x", b, AppendFloat8(nil, math.NaN()))
	}
	// The timestamptz range: both ends load, one microsecond beyond either is refused.
	lo, _ := AppendTimestamptzMillis(nil, minTimestampMs)
	hi, _ := AppendTimestamptzMillis(nil, endTimestampMs-1)
	for _, c := range []struct {
		us int64
		ok bool
	}{
		{int64(readInt8(lo)), true}, {int64(readInt8(lo)) - 1, false},
		{(endTimestampMs - pgEpochMillis) * 1000, false}, {(endTimestampMs-pgEpochMillis)*1000 - 1, true},
		{int64(readInt8(hi)), true},
	} {
		_, err := pgBinaryEcho(t, conn, "timestamptz", 1184, AppendInt8(nil, c.us))
		if (err == nil) != c.ok {
			t.Errorf("timestamptz %d µs: server error %v, want ok=%v", c.us, err, c.ok)
		}
	}
	var printed string
	if err := conn.QueryRow(ctx, "SELECT $1::timestamptz::text", "4714-11-24 00:00:00+00 BC").Scan(&printed); err != nil {
		t.Fatal(err)
	}
	var us int64
	if err := conn.QueryRow(ctx, "SELECT (extract(epoch FROM $1::timestamptz) * 1000)::bigint", "4714-11-24 00:00:00+00 BC").Scan(&us); err != nil {
		t.Fatal(err)
	}
	if us != minTimestampMs {
		t.Errorf("4714-11-24 BC is %d ms, minTimestampMs %d", us, minTimestampMs)
	}
}

func readInt8(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestNumericRoundTripPG(t *testing.T) {
	conn := testConn(t)
	var names, texts []string
	for _, c := range numericStringCases {
		if c.want == "" {
			continue
		}
		got, err := AppendNumericString(nil, c.in)
		if err != nil {
			t.Fatal(err)
		}
		names, texts = append(names, "string "+c.in), append(texts, string(got))
	}
	// The raw inputs too: the server's reading of the original string must match ours.
	var rawNames, raw, ours []string
	for _, c := range numericStringCases {
		if c.want != "" {
			rawNames, raw, ours = append(rawNames, c.in), append(raw, c.in), append(ours, c.want)
		}
	}
	compareEcho(t, rawNames, ours, pgEcho(t, conn, "numeric", raw))

	// Inputs we refuse as out of range, the server refuses too.
	for _, in := range []string{"1e-16384", "1e131072", "0e1073741823", "0e-20000", "1e99999999999999999999"} {
		var x string
		if err := conn.QueryRow(pgContext(t), "SELECT $1::numeric::text", in).Scan(&x); err == nil {
			t.Errorf("server accepts %q, which we refuse", in)
		}
	}

	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		d := randomDecimal(r)
		names, texts = append(names, "decimal "+d.String()), append(texts, string(AppendNumericDecimal128(nil, d)))
		f := randomFloat(r)
		if b, err := AppendNumericFloat64(nil, f); err == nil {
			if back, _ := strconv.ParseFloat(string(b), 64); back != f {
				t.Errorf("%v: %s does not read back", f, b)
			}
			names, texts = append(names, "double "+strconv.FormatFloat(f, 'g', -1, 64)), append(texts, string(b))
		}
		n := int64(r.Uint64())
		names, texts = append(names, "int64"), append(texts, string(AppendNumericInt64(nil, n)))
	}
	compareEcho(t, names, texts, pgEcho(t, conn, "numeric", texts))
}

func TestBinaryRoundTripRandomPG(t *testing.T) {
	conn := testConn(t)
	r := rand.New(rand.NewPCG(5, 6))
	check := func(sqlType string, oid uint32, b []byte) {
		t.Helper()
		echo, err := pgBinaryEcho(t, conn, sqlType, oid, b)
		if err != nil {
			t.Fatalf("%s %x: %v", sqlType, b, err)
		}
		if !bytes.Equal(echo, b) {
			t.Fatalf("%s: ours %x, server %x", sqlType, b, echo)
		}
	}
	for i := 0; i < 200; i++ {
		check("float8", 701, AppendFloat8(nil, randomFloat(r)))
		ms := r.Int64N(endTimestampMs-minTimestampMs) + minTimestampMs
		b, err := AppendTimestamptzMillis(nil, ms)
		if err != nil {
			t.Fatal(err)
		}
		check("timestamptz", 1184, b)
		var elems []TextElem
		for n := r.IntN(6); n > 0; n-- {
			elems = append(elems, TextElem{S: randomString(r, 10), Null: r.IntN(5) == 0})
		}
		check("text[]", 1009, AppendTextArray(nil, elems))
		arr := bson.A{}
		for _, e := range elems {
			if e.Null {
				arr = append(arr, nil)
			} else {
				arr = append(arr, e.S)
			}
		}
		got, _, verr := AppendColumn(nil, pipeline.TypeTextArray, rawValue(t, arr), Options{SortArray: true})
		if verr != nil {
			t.Fatal(verr)
		}
		check("text[]", 1009, got)
		check("int2", 21, AppendInt2(nil, int16(r.Uint32())))
		check("int4", 23, AppendInt4(nil, int32(r.Uint32())))
		check("int8", 20, AppendInt8(nil, int64(r.Uint64())))
		check("bool", 16, AppendBool(nil, r.IntN(2) == 0))
		var u [16]byte
		for j := range u {
			u[j] = byte(r.Uint32())
		}
		check("uuid", 2950, AppendUUID(nil, UUIDv5(u, randomString(r, 5))))
		check("text", 25, []byte(randomString(r, 30)))
	}
}

// "Date as string" must read as the server reads the same string.
func TestDateStringRoundTripPG(t *testing.T) {
	conn := testConn(t)
	for _, s := range []string{
		"2025-11-28T10:11:12.345678Z", "2025-11-28T10:11:12Z", "2025-11-28T10:11:12.1+05:30",
		"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999-12:00", "1969-12-31T23:59:59.999999Z",
	} {
		ours, _, err := AppendColumn(nil, pipeline.TypeTimestamptz, rawValue(t, s), Options{DateAsString: true})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		res := conn.PgConn().ExecParams(pgContext(t), "SELECT $1::text::timestamptz", [][]byte{[]byte(s)}, []uint32{25}, []int16{0}, []int16{1}).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if !bytes.Equal(res.Rows[0][0], ours) {
			t.Errorf("%s: ours %x, server %x", s, ours, res.Rows[0][0])
		}
	}
}
