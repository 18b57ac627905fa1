package main

// The binary COPY encoding of the tool's rows comes from pipeline/load (the sink's own encoder);
// decodeCopyRow is the inverse, used to feed precomputed rows to the sink and to the naive
// INSERTs.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/stellaops/convert/pipeline"
	"github.com/stellaops/convert/pipeline/load"
)

var (
	copyHeader  = load.CopyHeader()
	copyTrailer = load.CopyTrailer()
)

// appendCopyRow is the sink's own encoder: the limit (a) streams exactly the bytes the tool's
// sink streams.
func appendCopyRow(dst []byte, cols []pipeline.Column, row []byte) ([]byte, error) {
	return load.AppendCopyRow(dst, cols, row)
}

// copyFields splits one binary COPY tuple at the start of b into its fields (nil for NULL) and
// returns the tuple's length. The fields alias b.
func copyFields(b []byte, fields [][]byte) ([][]byte, int, error) {
	if len(b) < 2 {
		return nil, 0, fmt.Errorf("copy tuple truncated")
	}
	n := int(binary.BigEndian.Uint16(b))
	off := 2
	fields = fields[:0]
	for i := 0; i < n; i++ {
		if len(b) < off+4 {
			return nil, 0, fmt.Errorf("copy tuple: field %d truncated", i)
		}
		l := int32(binary.BigEndian.Uint32(b[off:]))
		off += 4
		if l < 0 {
			fields = append(fields, nil)
			continue
		}
		if len(b) < off+int(l) {
			return nil, 0, fmt.Errorf("copy tuple: field %d truncated", i)
		}
		fields = append(fields, b[off:off+int(l)])
		off += int(l)
	}
	return fields, off, nil
}

// appendChecksumRow converts the fields of a binary COPY tuple back to the row's checksum
// encoding (the inverse of appendCopyRow), appending its cells to out's open row.
func appendChecksumRow(out *pipeline.RowBuffer, cols []pipeline.Column, fields [][]byte) error {
	if len(fields) != len(cols) {
		return fmt.Errorf("copy tuple has %d fields for %d columns", len(fields), len(cols))
	}
	for i, f := range fields {
		switch {
		case f == nil:
			out.Null()
		case cols[i].Type == pipeline.TypeJSONB:
			if len(f) == 0 || f[0] != 1 {
				return fmt.Errorf("column %s: jsonb field without version 1", cols[i].Name)
			}
			out.Cell(f[1:])
		case cols[i].Type == pipeline.TypeNumeric:
			s, err := numericText(f)
			if err != nil {
				return fmt.Errorf("column %s: %w", cols[i].Name, err)
			}
			out.Text(s)
		default:
			out.Cell(f)
		}
	}
	return nil
}

// numericText prints numeric's binary format the way PostgreSQL's numeric_out does.
func numericText(b []byte) (string, error) {
	if len(b) < 8 {
		return "", fmt.Errorf("numeric field of %d bytes", len(b))
	}
	ndigits := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	if len(b) != 8+2*ndigits {
		return "", fmt.Errorf("numeric field of %d bytes for %d digits", len(b), ndigits)
	}
	switch sign {
	case 0xC000:
		return "NaN", nil
	case 0xD000:
		return "Infinity", nil
	case 0xF000:
		return "-Infinity", nil
	}
	digit := func(i int) int { // base-10000 digit i, 0 outside the stored ones
		if i < 0 || i >= ndigits {
			return 0
		}
		return int(binary.BigEndian.Uint16(b[8+2*i:]))
	}
	var s strings.Builder
	if sign == 0x4000 {
		s.WriteByte('-')
	}
	if weight < 0 {
		s.WriteByte('0')
	} else {
		for i := 0; i <= weight; i++ {
			if i == 0 {
				s.WriteString(strconv.Itoa(digit(i)))
			} else {
				fmt.Fprintf(&s, "%04d", digit(i))
			}
		}
	}
	if dscale > 0 {
		var frac strings.Builder
		for i := weight + 1; frac.Len() < dscale; i++ {
			fmt.Fprintf(&frac, "%04d", digit(i))
		}
		s.WriteByte('.')
		s.WriteString(frac.String()[:dscale])
	}
	return s.String(), nil
}

// copySQL is the COPY statement the sink sends (pipeline/load/sink.go copySQL).
func copySQL(t pipeline.Table) string {
	cols := t.Written()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pipeline.QuoteIdent(c.Name)
	}
	return "COPY " + t.Ident() + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
}

// insertSQL is the naive path's prepared INSERT of one row.
func insertSQL(t pipeline.Table) string {
	cols := t.Written()
	names := make([]string, len(cols))
	params := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pipeline.QuoteIdent(c.Name)
		params[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO " + t.Ident() + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
}
