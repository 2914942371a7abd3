package postgres

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// target is what the sink knows of a column it writes: enough to render a
// value as text that the column's input function reads as meant.
type target uint8

const (
	tOther       target = iota
	tTimestamptz        // an instant: written in UTC with +00
	tTimestamp          // a wall clock: written in the run's zone, without offset
	tDate               // a date: the date of a timestamp in the run's zone
	tBytea              // bytes in hex
	tJSON               // json or jsonb
	tBool               // boolean
	tInt                // an integer type: a bool is 1 or 0
)

// targetOf maps a column's base type OID to how values are written to it.
func targetOf(oid uint32) target {
	switch oid {
	case oidTimestamptz:
		return tTimestamptz
	case oidTimestamp:
		return tTimestamp
	case oidDate:
		return tDate
	case oidBytea:
		return tBytea
	case oidJSON, oidJSONB:
		return tJSON
	case oidBool:
		return tBool
	case oidInt2, oidInt4, oidInt8:
		return tInt
	}
	return tOther
}

// copyColumn is how one field is written in COPY text format.
type copyColumn struct {
	name   string
	ftype  record.Type
	target target
	bin    binKind // bNone: no binary writing for this field and column
	scaled bool    // a numeric(p, s) column
}

// appendCopyRow appends one row in COPY text format, tab-separated and
// ending in a newline, followed by the extra column ord when ord >= 0. On a
// value it cannot render it returns the field's index and the reason, and
// dst unchanged.
func appendCopyRow(dst []byte, cols []copyColumn, row record.Row, loc *time.Location, ord int, scratch *[]byte) ([]byte, int, error) {
	start := len(dst)
	for j, v := range row {
		if j > 0 {
			dst = append(dst, '\t')
		}
		var err error
		dst, err = appendCopyValue(dst, v, cols[j], loc, scratch)
		if err != nil {
			return dst[:start], j, err
		}
	}
	if ord >= 0 {
		dst = append(dst, '\t')
		dst = appendOrd(dst, ord)
	}
	return append(dst, '\n'), 0, nil
}

// ordDigits is the width of ord in COPY text format: zero-padded, so that
// setOrds can number the rows again in place.
const ordDigits = 10

func appendOrd(dst []byte, ord int) []byte {
	var d [ordDigits]byte
	for i := ordDigits - 1; i >= 0; i-- {
		d[i] = byte('0' + ord%10)
		ord /= 10
	}
	return append(dst, d[:]...)
}

// appendCopyValue appends one value in COPY text format: NULL as \N, text
// with backslash, tab, newline and carriage return escaped.
func appendCopyValue(dst []byte, v any, c copyColumn, loc *time.Location, scratch *[]byte) ([]byte, error) {
	if v == nil {
		return append(dst, '\\', 'N'), nil
	}
	if c.ftype == record.JSON {
		*scratch = record.AppendJSON((*scratch)[:0], v)
		return appendEscaped(dst, *scratch), nil
	}
	switch x := v.(type) {
	case string:
		if c.target == tBytea {
			return appendByteaHex(dst, []byte(x)), nil
		}
		return appendEscapedString(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		return appendFloat(dst, x, 64), nil
	case record.Dec:
		return x.AppendText(dst), nil
	case bool:
		if c.target == tInt {
			if x {
				return append(dst, '1'), nil
			}
			return append(dst, '0'), nil
		}
		if x {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	case time.Time:
		return appendTime(dst, x, c.target, loc), nil
	case record.LocalDate:
		return appendDate(dst, x), nil
	case []byte:
		if c.target == tBytea {
			return appendByteaHex(dst, x), nil
		}
		return appendEscaped(dst, x), nil
	case json.Number:
		return appendEscapedString(dst, string(x)), nil
	case map[string]any, []any:
		*scratch = record.AppendJSON((*scratch)[:0], v)
		return appendEscaped(dst, *scratch), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case float32:
		return appendFloat(dst, float64(x), 32), nil
	}
	return dst, fmt.Errorf("a %T value cannot be written to PostgreSQL", v)
}

// appendTime writes a timestamp for a column of target t: an instant in
// UTC for timestamptz (and text), the wall clock in loc for a timestamp
// without time zone, the date in loc for a date.
func appendTime(dst []byte, x time.Time, t target, loc *time.Location) []byte {
	if loc == nil {
		loc = time.UTC
	}
	switch t {
	case tTimestamp:
		return appendTimestamp(dst, x.In(loc), false)
	case tDate:
		return appendDate(dst, record.LocalDateOf(x.In(loc)))
	}
	return appendTimestamp(dst, x.UTC(), true)
}

func appendByteaHex(dst, b []byte) []byte {
	dst = append(dst, '\\', '\\', 'x') // \x, its backslash escaped for COPY
	n := len(dst)
	dst = append(dst, make([]byte, hex.EncodedLen(len(b)))...)
	hex.Encode(dst[n:], b)
	return dst
}

// appendEscaped appends b with the characters COPY text format gives a
// meaning escaped.
func appendEscaped(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' && c != '\t' && c != '\n' && c != '\r' {
			continue
		}
		dst = append(dst, b[start:i]...)
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		}
		start = i + 1
	}
	return append(dst, b[start:]...)
}

func appendEscapedString(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' && c != '\t' && c != '\n' && c != '\r' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}
