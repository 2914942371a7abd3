package postgres

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// The sink writes COPY in binary format when every field maps naturally to
// its column's type (an int to an integer type, a timestamp to timestamptz,
// a string to text…): the server then runs no input function, which makes
// the load about a third cheaper for it. Any other column type (an enum, an
// array, inet…) makes the whole COPY text, which the column's input
// function reads, as psql would send it.

// binKind is how a value is written in binary for its column.
type binKind uint8

const (
	bNone binKind = iota
	bInt2
	bInt4
	bInt8
	bFloat4
	bFloat8
	bNumeric
	bText
	bBool
	bTimestamptz
	bTimestamp
	bDate
	bBytea
	bJSON
	bJSONB
	bUUID
)

// binaryKind is the binary writing of a field of type ft into a column of
// base type oid; bNone when there is none.
func binaryKind(ft record.Type, oid uint32) binKind {
	switch ft {
	case record.Int:
		switch oid {
		case oidInt2:
			return bInt2
		case oidInt4:
			return bInt4
		case oidInt8:
			return bInt8
		case oidFloat8:
			return bFloat8
		case oidNumeric:
			return bNumeric
		}
	case record.Float:
		switch oid {
		case oidFloat4:
			return bFloat4
		case oidFloat8:
			return bFloat8
		case oidNumeric:
			return bNumeric
		}
	case record.Decimal:
		switch oid {
		case oidNumeric:
			return bNumeric
		case oidFloat8:
			return bFloat8
		}
	case record.String:
		switch oid {
		case oidText, oidVarchar, oidBpchar:
			return bText
		case oidJSON:
			return bJSON
		case oidJSONB:
			return bJSONB
		case oidUUID:
			return bUUID
		}
	case record.Bool:
		if oid == oidBool {
			return bBool
		}
	case record.Timestamp:
		switch oid {
		case oidTimestamptz:
			return bTimestamptz
		case oidTimestamp:
			return bTimestamp
		case oidDate:
			return bDate
		}
	case record.Date:
		if oid == oidDate {
			return bDate
		}
	case record.Bytes:
		if oid == oidBytea {
			return bBytea
		}
	case record.JSON:
		switch oid {
		case oidJSON:
			return bJSON
		case oidJSONB:
			return bJSONB
		}
	}
	return bNone
}

// binaryHeader starts and binaryTrailer ends the data of a binary COPY.
var (
	binaryHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	binaryTrailer = []byte{0xff, 0xff}
)

// appendBinaryRow appends one tuple, followed by the extra int4 column ord
// when ord >= 0. On a value it cannot write it returns the field's index
// and the reason, and dst unchanged.
func appendBinaryRow(dst []byte, cols []copyColumn, row record.Row, loc *time.Location, ord int, scratch *[]byte) ([]byte, int, error) {
	start := len(dst)
	n := len(row)
	if ord >= 0 {
		n++
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	for j, v := range row {
		var err error
		dst, err = appendBinaryValue(dst, v, cols[j], loc, scratch)
		if err != nil {
			return dst[:start], j, err
		}
	}
	if ord >= 0 {
		dst = binary.BigEndian.AppendUint32(dst, 4)
		dst = binary.BigEndian.AppendUint32(dst, uint32(int32(ord)))
	}
	return dst, 0, nil
}

// appendBinaryValue appends a value's length and bytes.
func appendBinaryValue(dst []byte, v any, c copyColumn, loc *time.Location, scratch *[]byte) ([]byte, error) {
	if v == nil {
		return binary.BigEndian.AppendUint32(dst, math.MaxUint32), nil // -1: NULL
	}
	switch c.bin {
	case bInt2, bInt4, bInt8:
		i, ok := intValue(v)
		if !ok {
			break
		}
		switch c.bin {
		case bInt2:
			if i < math.MinInt16 || i > math.MaxInt16 {
				return dst, fmt.Errorf("value %d is out of range for type smallint", i)
			}
			dst = binary.BigEndian.AppendUint32(dst, 2)
			return binary.BigEndian.AppendUint16(dst, uint16(int16(i))), nil
		case bInt4:
			if i < math.MinInt32 || i > math.MaxInt32 {
				return dst, fmt.Errorf("value %d is out of range for type integer", i)
			}
			dst = binary.BigEndian.AppendUint32(dst, 4)
			return binary.BigEndian.AppendUint32(dst, uint32(int32(i))), nil
		}
		dst = binary.BigEndian.AppendUint32(dst, 8)
		return binary.BigEndian.AppendUint64(dst, uint64(i)), nil
	case bFloat4, bFloat8:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case record.Dec:
			f = x.Float64()
		case float32:
			f = float64(x)
		default:
			return dst, typeErr(v)
		}
		if c.bin == bFloat4 {
			dst = binary.BigEndian.AppendUint32(dst, 4)
			return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		dst = binary.BigEndian.AppendUint32(dst, 8)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case bNumeric:
		*scratch = (*scratch)[:0]
		switch x := v.(type) {
		case record.Dec:
			if u, ok := x.Unscaled(); ok {
				if out, ok := appendNumericSmall(dst, u, x.Scale()); ok {
					return out, nil
				}
			}
			*scratch = x.AppendText(*scratch)
		case int64:
			if out, ok := appendNumericSmall(dst, x, 0); ok {
				return out, nil
			}
			*scratch = strconv.AppendInt(*scratch, x, 10)
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return appendNumericSpecial(dst, x), nil
			}
			*scratch = strconv.AppendFloat(*scratch, x, 'f', -1, 64)
		default:
			return dst, typeErr(v)
		}
		return appendNumeric(dst, *scratch)
	case bText, bJSON, bJSONB:
		var s []byte
		var str string
		isStr := false
		switch x := v.(type) {
		case string:
			if c.ftype == record.JSON {
				*scratch = record.AppendJSON((*scratch)[:0], x) // a JSON string value
				s = *scratch
			} else {
				str, isStr = x, true
			}
		case json.Number:
			str, isStr = string(x), true
		case []byte:
			s = x
		default:
			if c.ftype != record.JSON && c.bin == bText {
				return dst, typeErr(v)
			}
			*scratch = record.AppendJSON((*scratch)[:0], v)
			s = *scratch
		}
		n := len(s)
		if isStr {
			n = len(str)
		}
		if c.bin == bJSONB {
			dst = binary.BigEndian.AppendUint32(dst, uint32(n+1))
			dst = append(dst, 1)
		} else {
			dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		}
		if isStr {
			return append(dst, str...), nil
		}
		return append(dst, s...), nil
	case bBool:
		b, ok := v.(bool)
		if !ok {
			break
		}
		dst = binary.BigEndian.AppendUint32(dst, 1)
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case bTimestamptz, bTimestamp:
		t, ok := v.(time.Time)
		if !ok {
			break
		}
		if c.bin == bTimestamp {
			t = wallClockUTC(t, loc)
		}
		us, err := pgMicros(t)
		if err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, 8)
		return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
	case bDate:
		var d record.LocalDate
		switch x := v.(type) {
		case record.LocalDate:
			d = x
		case time.Time:
			if loc == nil {
				loc = time.UTC
			}
			d = record.LocalDateOf(x.In(loc))
		default:
			return dst, typeErr(v)
		}
		days := int64(d) - pgEpochDays
		if days < -2451545 || days > 2145031948 { // 4714-11-24 BC to 5874897-12-31
			return dst, errors.New("date out of range")
		}
		dst = binary.BigEndian.AppendUint32(dst, 4)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(days))), nil
	case bBytea:
		var s []byte
		switch x := v.(type) {
		case []byte:
			s = x
		case string:
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
			return append(dst, x...), nil
		default:
			return dst, typeErr(v)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...), nil
	case bUUID:
		s, ok := v.(string)
		if !ok {
			break
		}
		dst = binary.BigEndian.AppendUint32(dst, 16)
		return appendUUIDBytes(dst, s)
	}
	return dst, typeErr(v)
}

func typeErr(v any) error {
	return fmt.Errorf("a %T value cannot be written to this column", v)
}

func intValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	}
	return 0, false
}

// wallClockUTC is t's wall clock in loc, as a UTC time: what a timestamp
// without time zone stores.
func wallClockUTC(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// The range of PostgreSQL timestamps, in microseconds since 2000-01-01:
// 4714-11-24 00:00:00 BC to 294277-01-01 00:00:00 (exclusive).
const (
	minPgMicros = -211813488000000000
	endPgMicros = 9223371331200000000
)

// pgMicros is t in microseconds since 2000-01-01 UTC, rounded to the
// nearest microsecond like the server rounds text input.
func pgMicros(t time.Time) (int64, error) {
	sec := t.Unix() - pgEpochUnix
	if sec < minPgMicros/1_000_000-1 || sec > endPgMicros/1_000_000+1 {
		return 0, errors.New("timestamp out of range")
	}
	us := sec*1_000_000 + int64((t.Nanosecond()+500)/1000)
	if us < minPgMicros || us >= endPgMicros {
		return 0, errors.New("timestamp out of range")
	}
	return us, nil
}

// appendNumeric writes decimal text ("-12.340", "5") as a binary numeric.
func appendNumeric(dst, text []byte) ([]byte, error) {
	neg := false
	if len(text) > 0 && (text[0] == '-' || text[0] == '+') {
		neg = text[0] == '-'
		text = text[1:]
	}
	intPart, frac := text, []byte(nil)
	for i, c := range text {
		if c == '.' {
			intPart, frac = text[:i], text[i+1:]
			break
		}
	}
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	dscale := len(frac)
	if dscale > 0x3FFF {
		return dst, errors.New("value out of range for type numeric")
	}
	// Groups of four digits aligned on the point: the integer part padded
	// with zeros on the left, the fraction on the right.
	var small [32]uint16
	groups := small[:0]
	lead := (4 - len(intPart)%4) % 4
	var g uint16
	n := lead
	for _, part := range [2][]byte{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return dst, fmt.Errorf("%q is not a decimal number", text)
			}
			g = g*10 + uint16(c-'0')
			n++
			if n == 4 {
				groups = append(groups, g)
				g, n = 0, 0
			}
		}
	}
	if n > 0 {
		for ; n < 4; n++ {
			g *= 10
		}
		groups = append(groups, g)
	}
	intGroups := (len(intPart) + lead) / 4
	first, last := 0, len(groups)-1
	for first <= last && groups[first] == 0 {
		first++
	}
	for last >= first && groups[last] == 0 {
		last--
	}
	nd, weight := 0, 0
	if first <= last {
		nd = last - first + 1
		weight = intGroups - 1 - first
	}
	if nd > 0x7FFF || weight > 0x7FFF || weight < -0x8000 {
		return dst, errors.New("value out of range for type numeric")
	}
	return appendNumericDigits(dst, groups[first:last+1], weight, neg, dscale), nil
}

// appendNumericDigits appends a numeric value: its base-10000 digits, most
// significant first, without leading or trailing zero digits; the weight
// of the first; the sign (a value without digits is zero, never negative);
// the digits shown after the point.
func appendNumericDigits(dst []byte, digits []uint16, weight int, neg bool, dscale int) []byte {
	sign := uint16(0)
	if neg && len(digits) > 0 {
		sign = 0x4000
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(8+2*len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(dscale))
	for _, d := range digits {
		dst = binary.BigEndian.AppendUint16(dst, d)
	}
	return dst
}

// appendNumericSmall appends the numeric u × 10^-scale as appendNumeric
// does its text, from the integer: base-10000 digits aligned on the point,
// without leading or trailing zero digits. ok is false for a negative
// scale, or an integer too long once its fraction fills whole digits.
func appendNumericSmall(dst []byte, u int64, scale int32) (out []byte, ok bool) {
	if scale < 0 || scale > 0x3FFF {
		return dst, false
	}
	m := uint64(u)
	if u < 0 {
		m = uint64(-(u + 1)) + 1
	}
	pad := (4 - scale%4) % 4 // zeros that make the fraction whole digits
	for range pad {
		if m > math.MaxUint64/10 {
			return dst, false
		}
		m *= 10
	}
	frac := int((scale + pad) / 4)
	var groups [5]uint16 // 10000^5 > 2^64
	at := len(groups)    // the digits are groups[at:], filled from the least significant
	for ; m > 0; m /= 10000 {
		at--
		groups[at] = uint16(m % 10000)
	}
	digits := groups[at:]
	weight := len(digits) - 1 - frac
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight = 0
	}
	return appendNumericDigits(dst, digits, weight, u < 0, int(scale)), true
}

func appendNumericSpecial(dst []byte, f float64) []byte {
	sign := uint16(0xC000) // NaN
	switch {
	case math.IsInf(f, 1):
		sign = 0xD000
	case math.IsInf(f, -1):
		sign = 0xF000
	}
	dst = binary.BigEndian.AppendUint32(dst, 8)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, sign)
	return binary.BigEndian.AppendUint16(dst, 0)
}

// appendUUIDBytes parses a UUID as the server does (hyphens between groups
// of four digits, braces around) and appends its 16 bytes.
func appendUUIDBytes(dst []byte, s string) ([]byte, error) {
	in := s
	if len(in) >= 2 && in[0] == '{' && in[len(in)-1] == '}' {
		in = in[1 : len(in)-1]
	}
	var out [16]byte
	n := 0
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '-' && n > 0 && n%4 == 0 && n < 32 && i+1 < len(in) && in[i+1] != '-' {
			continue
		}
		h, ok := unhex(c)
		if !ok || n >= 32 {
			return dst, fmt.Errorf("invalid input syntax for type uuid: %q", cutString(s, 200))
		}
		if n%2 == 0 {
			out[n/2] = h << 4
		} else {
			out[n/2] |= h
		}
		n++
	}
	if n != 32 {
		return dst, fmt.Errorf("invalid input syntax for type uuid: %q", cutString(s, 200))
	}
	return append(dst, out[:]...), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func cutString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
