package transforms

import (
	"math"
	"math/bits"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// PostgreSQL's numeric storage limits (numeric.c): at most 131072 digits before the decimal
// point and a display scale of at most 16383 digits after it; numeric_in refuses exponents of
// INT_MAX/2 or more in magnitude before looking at the digits.
const (
	numericMaxIntDigits = 131072
	numericMaxScale     = 16383
	numericMaxExponent  = math.MaxInt32 / 2
)

// decimal128Parts splits a BSON Decimal128 (IEEE 754-2008 BID) into sign, coefficient and exponent.
// special is 'N' for NaN, 'I' for ±Infinity, 0 otherwise.
func decimal128Parts(d bson.Decimal128) (neg bool, hi, lo uint64, exp int, special byte) {
	hi, lo = d.GetBytes()
	neg = hi>>63 == 1
	switch hi >> 58 & 0x1f {
	case 0x1f:
		return neg, 0, 0, 0, 'N'
	case 0x1e:
		return neg, 0, 0, 0, 'I'
	}
	if hi>>61&3 == 3 {
		// The 0b11 form implies a coefficient of at least 2^113 > 10^34-1: non-canonical, so
		// the standard reads it as zero.
		exp = int(hi>>47&0x3fff) - 6176
		return neg, 0, 0, exp, 0
	}
	exp = int(hi>>49&0x3fff) - 6176
	hi &= 1<<49 - 1
	// 10^34-1 = 0x1ed09bead87c0_378d8e63ffffffff. Larger coefficients are non-canonical: zero.
	const maxHi, maxLo = 0x1ed09bead87c0, 0x378d8e63ffffffff
	if hi > maxHi || hi == maxHi && lo > maxLo {
		hi, lo = 0, 0
	}
	return neg, hi, lo, exp, 0
}

// appendUint128 writes hi:lo (below 10^38) in decimal.
func appendUint128(dst []byte, hi, lo uint64) []byte {
	const e19 = 10000000000000000000
	if hi == 0 {
		return strconv.AppendUint(dst, lo, 10)
	}
	// hi < e19 always holds for coefficients below 2^113, so one division splits off the low
	// 19 digits and the quotient fits in 64 bits.
	q, r := bits.Div64(hi, lo, e19)
	dst = strconv.AppendUint(dst, q, 10)
	var buf [19]byte
	for i := 18; i >= 0; i-- {
		buf[i] = byte('0' + r%10)
		r /= 10
	}
	return append(dst, buf[:]...)
}

// appendPlainDecimal writes sign, digits (no leading zeros, "0" for zero) and exponent as
// PostgreSQL's numeric_out prints the value numeric_in reads from "digits E exp": no exponent,
// trailing fraction zeros kept, and no sign on zero.
func appendPlainDecimal(dst []byte, neg bool, digits []byte, exp int) []byte {
	zero := len(digits) == 1 && digits[0] == '0'
	if neg && !zero {
		dst = append(dst, '-')
	}
	if exp >= 0 {
		dst = append(dst, digits...)
		if !zero {
			for i := 0; i < exp; i++ {
				dst = append(dst, '0')
			}
		}
		return dst
	}
	scale := -exp
	if len(digits) > scale {
		dst = append(dst, digits[:len(digits)-scale]...)
		dst = append(dst, '.')
		return append(dst, digits[len(digits)-scale:]...)
	}
	dst = append(dst, '0', '.')
	for i := len(digits); i < scale; i++ {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// appendDecimal128Finite writes a finite Decimal128 with all its digits; for NaN ('N') and
// ±Infinity ('I') it writes nothing and returns special, which the caller tags or maps itself.
func appendDecimal128Finite(dst []byte, d bson.Decimal128) (_ []byte, special byte, neg bool) {
	neg, hi, lo, exp, special := decimal128Parts(d)
	if special != 0 {
		return dst, special, neg
	}
	var buf [40]byte
	digits := appendUint128(buf[:0], hi, lo)
	return appendPlainDecimal(dst, neg, digits, exp), 0, neg
}

// AppendNumericDecimal128 writes d as PostgreSQL prints the numeric it equals: all its digits in
// plain notation (1.50 → 1.50, 1E+3 → 1000, -0.0 → 0.0), NaN as NaN and ±Infinity as
// Infinity / -Infinity (PostgreSQL 14 and later hold those in numeric).
func AppendNumericDecimal128(dst []byte, d bson.Decimal128) []byte {
	dst, special, neg := appendDecimal128Finite(dst, d)
	switch {
	case special == 'N':
		return append(dst, "NaN"...)
	case special == 'I' && neg:
		return append(dst, "-Infinity"...)
	case special == 'I':
		return append(dst, "Infinity"...)
	}
	return dst
}

// AppendNumericInt64 writes i as numeric text.
func AppendNumericInt64(dst []byte, i int64) []byte { return strconv.AppendInt(dst, i, 10) }

// appendFiniteFloat writes a finite double as the shortest decimal that reads back to it, with
// the sign of zero dropped as numeric drops it.
func appendFiniteFloat(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// AppendNumericFloat64 writes a finite f as numeric text: the shortest decimal that reads back
// to the same double, in plain notation. NaN and ±Inf are refused: mapping.md sends doubles
// into numeric only where the value is exact.
func AppendNumericFloat64(dst []byte, f float64) ([]byte, *ValueError) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, &ValueError{Reason: "NaN or infinite double into numeric"}
	}
	return appendFiniteFloat(dst, f), nil
}

// AppendNumericString writes the decimal number s as PostgreSQL's numeric_in then numeric_out
// would: "+1.50" → "1.50", "1e3" → "1000", ".5" → "0.5", "-0" → "0", "007" → "7". s must be
// [+-] digits [. digits] [e [+-] digits] (at least one digit before the exponent): no spaces,
// no NaN or Infinity, nothing PostgreSQL would have to round or refuse as out of range.
func AppendNumericString(dst []byte, s string) ([]byte, *ValueError) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	var fracPart string
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracPart = s[fracStart:i]
	}
	if len(intPart)+len(fracPart) == 0 {
		return dst, notDecimal()
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && isDigit(s[i]) {
			if exp < numericMaxExponent {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == expStart {
			return dst, notDecimal()
		}
		if exp >= numericMaxExponent {
			return dst, &ValueError{Reason: "decimal number out of numeric range"}
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return dst, notDecimal()
	}

	// The value is digits × 10^(exp - len(fracPart)), with numeric_in's display scale
	// len(fracPart) - exp (never negative).
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	scale := len(fracPart) - exp
	if scale < 0 {
		scale = 0
	}
	if scale > numericMaxScale {
		return dst, &ValueError{Reason: "decimal number out of numeric range"}
	}
	pointAt := len(intPart) + exp // where the point falls within intPart+fracPart
	all := len(intPart) + len(fracPart)
	digit := func(k int) byte {
		switch {
		case k < 0 || k >= all:
			return '0'
		case k < len(intPart):
			return intPart[k]
		}
		return fracPart[k-len(intPart)]
	}
	first := 0 // first non-zero digit
	for first < all && digit(first) == '0' {
		first++
	}
	if first == all {
		// Zero: numeric has no negative zero, and keeps the display scale.
		dst = append(dst, '0')
		if scale > 0 {
			dst = append(dst, '.')
			for k := 0; k < scale; k++ {
				dst = append(dst, '0')
			}
		}
		return dst, nil
	}
	if pointAt-first > numericMaxIntDigits {
		return dst, &ValueError{Reason: "decimal number out of numeric range"}
	}
	if neg {
		dst = append(dst, '-')
	}
	// Integer part: positions [0, pointAt), skipping leading zeros, at least one digit.
	start := first
	if start >= pointAt {
		dst = append(dst, '0')
	} else {
		for k := start; k < pointAt; k++ {
			dst = append(dst, digit(k))
		}
	}
	if scale > 0 {
		dst = append(dst, '.')
		for k := pointAt; k < pointAt+scale; k++ {
			dst = append(dst, digit(k))
		}
	}
	return dst, nil
}

func notDecimal() *ValueError { return &ValueError{Reason: "string is not a decimal number"} }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
