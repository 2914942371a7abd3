package record

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LocalDate is a calendar date without a zone: days since 1970-01-01.
type LocalDate int32

// LocalDateOf returns the date of t in t's own zone.
func LocalDateOf(t time.Time) LocalDate {
	y, m, d := t.Date()
	return LocalDate(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Time returns midnight UTC of the date.
func (d LocalDate) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String renders 2006-01-02.
func (d LocalDate) String() string { return d.Time().Format(time.DateOnly) }

// MarshalJSON renders the date as a JSON string.
func (d LocalDate) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// ConvError says why a value could not become a field's type. Sources and
// steps put it into a Reject, which names the field, the value and the reason.
type ConvError struct {
	Field  string
	Value  string // the offending value, cut to 200 bytes
	Type   Type
	Reason string
}

func (e *ConvError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("value %q is not a valid %s: %s", e.Value, e.Type, e.Reason)
	}
	return fmt.Sprintf("field %q: value %q is not a valid %s: %s", e.Field, e.Value, e.Type, e.Reason)
}

func convErr(t Type, v string, reason string) *ConvError {
	if len(v) > 200 {
		v = v[:200] + "…"
	}
	return &ConvError{Value: strings.ToValidUTF8(v, "\uFFFD"), Type: t, Reason: reason}
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	time.DateOnly,
}

// ParseTimestamp accepts RFC 3339 and the common SQL forms, with fractions
// to the nanosecond. A text without a zone is read in loc (UTC when nil).
func ParseTimestamp(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.TrimSpace(s)
	for _, layout := range timestampLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.fraction][zone]'")
}

// ParseDate accepts YYYY-MM-DD.
func ParseDate(s string) (LocalDate, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("want YYYY-MM-DD")
	}
	return LocalDateOf(t), nil
}

// ParseBool accepts true/false, t/f, yes/no, y/n, 1/0, on/off in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1", "on":
		return true, nil
	case "false", "f", "no", "n", "0", "off":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// ParseText converts text from a file to type t. An empty text is null for
// every type but string. loc is the zone of timestamps written without one.
func ParseText(s string, t Type, loc *time.Location) (any, error) {
	if s == "" && t != String {
		return nil, nil
	}
	switch t {
	case String, Any:
		if !utf8.ValidString(s) {
			return nil, convErr(t, s, "invalid UTF-8")
		}
		return s, nil
	case Int:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, convErr(t, s, "out of range for a 64-bit integer")
			}
			// "42.0" is an integer written by a spreadsheet.
			if d, derr := ParseDec(s); derr == nil {
				if i, ok := d.Int64(); ok && d.Cmp(DecFromInt(i)) == 0 {
					return i, nil
				}
			}
			return nil, convErr(t, s, "not an integer")
		}
		return v, nil
	case Float:
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, convErr(t, s, "not a number")
		}
		return v, nil
	case Decimal:
		v, err := ParseDec(s)
		if err != nil {
			return nil, convErr(t, s, err.Error())
		}
		return v, nil
	case Bool:
		v, err := ParseBool(s)
		if err != nil {
			return nil, convErr(t, s, err.Error())
		}
		return v, nil
	case Timestamp:
		v, err := ParseTimestamp(s, loc)
		if err != nil {
			return nil, convErr(t, s, err.Error())
		}
		return v, nil
	case Date:
		v, err := ParseDate(s)
		if err != nil {
			return nil, convErr(t, s, err.Error())
		}
		return v, nil
	case Bytes:
		return []byte(s), nil
	case JSON:
		var v any
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, convErr(t, s, "not JSON: "+err.Error())
		}
		// d.More is false before a stray ']' or '}': look at the rest.
		if strings.TrimLeft(s[d.InputOffset():], " \t\r\n") != "" {
			return nil, convErr(t, s, "not JSON: trailing data")
		}
		return v, nil
	}
	return nil, convErr(t, s, "unsupported type")
}

// Convert turns any Go value (from a decoder, a driver or an expression)
// into the representation of type t. nil stays nil.
func Convert(v any, t Type, loc *time.Location) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t == Any {
		return v, nil
	}
	switch x := v.(type) {
	case string:
		if t == String {
			if !utf8.ValidString(x) {
				return nil, convErr(t, x, "invalid UTF-8")
			}
			return x, nil
		}
		if t == JSON {
			return x, nil // a JSON string value
		}
		if t == Bytes {
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				return b, nil
			}
			return []byte(x), nil
		}
		return ParseText(x, t, loc)
	case []byte:
		if t == Bytes {
			return x, nil
		}
		return ParseText(string(x), t, loc)
	case json.Number:
		if t == JSON {
			return x, nil
		}
		return ParseText(string(x), t, loc)
	}
	switch t {
	case String:
		return FormatText(v), nil
	case Int:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case uint64:
			if x > math.MaxInt64 {
				return nil, convErr(t, FormatText(v), "out of range for a 64-bit integer")
			}
			return int64(x), nil
		case float64:
			// float64(math.MaxInt64) is 2^63, one past the largest int64.
			if x != math.Trunc(x) || x >= math.MaxInt64 || x < math.MinInt64 {
				return nil, convErr(t, FormatText(v), "not an integer")
			}
			return int64(x), nil
		case Dec:
			i, ok := x.Int64()
			if !ok || x.Cmp(DecFromInt(i)) != 0 {
				return nil, convErr(t, x.String(), "not an integer")
			}
			return i, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case Float:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		case Dec:
			return x.Float64(), nil
		}
	case Decimal:
		switch x := v.(type) {
		case Dec:
			return x, nil
		case int64:
			return DecFromInt(x), nil
		case int:
			return DecFromInt(int64(x)), nil
		case float64:
			d, err := DecFromFloat(x)
			if err != nil {
				return nil, convErr(t, FormatText(v), err.Error())
			}
			return d, nil
		}
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		}
	case Timestamp:
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case LocalDate:
			return x.Time(), nil
		case int64: // Unix seconds
			return time.Unix(x, 0).UTC(), nil
		}
	case Date:
		switch x := v.(type) {
		case LocalDate:
			return x, nil
		case time.Time:
			return LocalDateOf(x), nil
		}
	case JSON:
		switch x := v.(type) {
		case map[string]any, []any, bool, float64:
			return x, nil
		case int64:
			return json.Number(strconv.FormatInt(x, 10)), nil
		case Dec:
			return json.Number(x.String()), nil
		}
		return v, nil
	case Bytes:
		return []byte(FormatText(v)), nil
	}
	return nil, convErr(t, FormatText(v), fmt.Sprintf("cannot convert a %s", TypeOf(v)))
}

// TypeOf names the type of a value's representation (Any for unknown ones).
func TypeOf(v any) Type {
	switch v.(type) {
	case string:
		return String
	case int64:
		return Int
	case float64:
		return Float
	case Dec:
		return Decimal
	case bool:
		return Bool
	case time.Time:
		return Timestamp
	case LocalDate:
		return Date
	case []byte:
		return Bytes
	case map[string]any, []any, json.Number:
		return JSON
	}
	return Any
}

// FormatText renders a value as text for CSV files and messages: timestamps
// in RFC 3339 with their full precision, decimals exactly, json compactly.
// nil renders as "".
func FormatText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case Dec:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		var b [64]byte
		return string(AppendRFC3339Nano(b[:0], x))
	case LocalDate:
		return x.String()
	case []byte:
		return string(x)
	case json.Number:
		return string(x)
	case fmt.Stringer:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// rfc3339 moves t to a whole-minute offset when its offset has seconds
// (local mean time of old dates), which RFC 3339 cannot write: the text
// would be off by them. The offset is rounded up, so the clock moves
// forward by less than a minute and 0000-01-01 stays in year 0.
func rfc3339(t time.Time) time.Time {
	_, off := t.Zone()
	if off%60 == 0 {
		return t
	}
	m := off / 60 * 60
	if off > 0 {
		m += 60
	}
	return t.In(time.FixedZone("", m))
}

// AppendJSON appends v as a JSON value: decimals as exact numbers,
// timestamps as RFC 3339 strings, bytes as base64, dates as strings.
func AppendJSON(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendJSONString(dst, x)
	case int64:
		return AppendInt(dst, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	case Dec:
		return x.AppendText(dst)
	case bool:
		return strconv.AppendBool(dst, x)
	case time.Time:
		dst = append(dst, '"')
		dst = AppendRFC3339Nano(dst, x)
		return append(dst, '"')
	case LocalDate:
		return append(append(append(dst, '"'), x.String()...), '"')
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case json.Number:
		return append(dst, x...)
	case map[string]any:
		dst = append(dst, '{')
		first := true
		for _, k := range sortedKeys(x) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = AppendJSON(dst, x[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, e)
		}
		return append(dst, ']')
	}
	b, err := json.Marshal(v)
	if err != nil {
		return appendJSONString(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
