package load

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/stellaops/convert/pipeline"
)

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// CopyHeader is the header of a binary COPY stream (a new slice each call).
func CopyHeader() []byte { return append([]byte(nil), copyHeader...) }

// CopyTrailer ends a binary COPY stream.
func CopyTrailer() []byte { return []byte{0xFF, 0xFF} }

// AppendCopyRow appends a row, given in checksum encoding (pipeline.RowBuffer), as a tuple of
// the binary COPY stream the sink sends: benchmarks stream exactly these bytes.
func AppendCopyRow(dst []byte, cols []pipeline.Column, row []byte) ([]byte, error) {
	return appendCopyRow(dst, cols, row)
}

// appendCopyRow converts one row from checksum encoding (pipeline.RowBuffer) to a tuple of
// PostgreSQL's binary COPY format. The two differ only in NULLs and in jsonb and numeric, which
// checksums take as text and COPY as binary.
func appendCopyRow(dst []byte, cols []pipeline.Column, row []byte) ([]byte, error) {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cols)))
	err := pipeline.ForEachCell(row, func(i int, v []byte, null bool) error {
		if i >= len(cols) {
			return fmt.Errorf("row has more cells than the %d columns", len(cols))
		}
		if null {
			dst = binary.BigEndian.AppendUint32(dst, 0xFFFFFFFF)
			return nil
		}
		switch cols[i].Type {
		case pipeline.TypeJSONB:
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)+1))
			dst = append(dst, 1)
			dst = append(dst, v...)
		case pipeline.TypeNumeric:
			mark := len(dst)
			dst = append(dst, 0, 0, 0, 0)
			var err error
			dst, err = appendNumericBinary(dst, string(v))
			if err != nil {
				return fmt.Errorf("column %s: %w", cols[i].Name, err)
			}
			binary.BigEndian.PutUint32(dst[mark:], uint32(len(dst)-mark-4))
		default:
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
		return nil
	})
	return dst, err
}

// appendNumericBinary encodes numeric text as PostgreSQL prints it ([-]digits[.digits], NaN,
// Infinity, -Infinity) in numeric's binary format: ndigits, weight, sign, dscale, then base-10000
// digits.
func appendNumericBinary(dst []byte, s string) ([]byte, error) {
	const (
		pos  = 0x0000
		neg  = 0x4000
		nan  = 0xC000
		pinf = 0xD000
		ninf = 0xF000
	)
	special := func(sign uint16) []byte {
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, sign)
		return binary.BigEndian.AppendUint16(dst, 0)
	}
	switch s {
	case "NaN":
		return special(nan), nil
	case "Infinity":
		return special(pinf), nil
	case "-Infinity":
		return special(ninf), nil
	}
	sign := uint16(pos)
	if strings.HasPrefix(s, "-") {
		sign = neg
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return dst, fmt.Errorf("numeric %q is not in canonical form", s)
	}
	dscale := len(frac)
	// Pad the integer part on the left and the fraction on the right to whole base-10000 digits.
	if r := len(intPart) % 4; r != 0 {
		intPart = strings.Repeat("0", 4-r) + intPart
	}
	if r := len(frac) % 4; r != 0 {
		frac += strings.Repeat("0", 4-r)
	}
	all := intPart + frac
	digits := make([]uint16, 0, len(all)/4)
	for i := 0; i < len(all); i += 4 {
		d := uint16(all[i]-'0')*1000 + uint16(all[i+1]-'0')*100 + uint16(all[i+2]-'0')*10 + uint16(all[i+3]-'0')
		digits = append(digits, d)
	}
	weight := len(intPart)/4 - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight = 0
		sign = pos
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(dscale))
	for _, d := range digits {
		dst = binary.BigEndian.AppendUint16(dst, d)
	}
	return dst, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
