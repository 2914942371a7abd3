package record

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has

	"github.com/google/go-cmp/cmp"
)

// valueCmp compares row values exactly: decimals with their scale,
// timestamps by instant and offset, floats by bits (NaN equals NaN).
var valueCmp = cmp.Options{
	cmp.Comparer(func(a, b Dec) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b time.Time) bool {
		_, oa := a.Zone()
		_, ob := b.Zone()
		return a.Equal(b) && oa == ob
	}),
	cmp.Comparer(func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
	}),
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func date(s string) LocalDate {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestParseText(t *testing.T) {
	paris := mustZone(t, "Europe/Paris")
	plus0530 := time.FixedZone("", 5*3600+30*60)
	tests := []struct {
		name string
		in   string
		typ  Type
		loc  *time.Location
		want any
	}{
		// The empty text is null, except for strings.
		{name: "empty string is empty", in: "", typ: String, want: ""},
		{name: "empty any is null", in: "", typ: Any, want: nil},
		{name: "empty int is null", in: "", typ: Int, want: nil},
		{name: "empty float is null", in: "", typ: Float, want: nil},
		{name: "empty decimal is null", in: "", typ: Decimal, want: nil},
		{name: "empty bool is null", in: "", typ: Bool, want: nil},
		{name: "empty timestamp is null", in: "", typ: Timestamp, want: nil},
		{name: "empty date is null", in: "", typ: Date, want: nil},
		{name: "empty bytes is null", in: "", typ: Bytes, want: nil},
		{name: "empty json is null", in: "", typ: JSON, want: nil},

		{name: "string kept as is", in: "  a b ", typ: String, want: "  a b "},
		{name: "string unicode", in: "héllo €", typ: String, want: "héllo €"},
		{name: "any is a string", in: "42", typ: Any, want: "42"},

		{name: "int", in: "42", typ: Int, want: int64(42)},
		{name: "negative int", in: "-42", typ: Int, want: int64(-42)},
		{name: "plus int", in: "+42", typ: Int, want: int64(42)},
		{name: "int max", in: "9223372036854775807", typ: Int, want: int64(math.MaxInt64)},
		{name: "int min", in: "-9223372036854775808", typ: Int, want: int64(math.MinInt64)},
		{name: "int from 42.0", in: "42.0", typ: Int, want: int64(42)},
		{name: "int from 42.000", in: "42.000", typ: Int, want: int64(42)},
		{name: "int from exponent", in: "4.2e1", typ: Int, want: int64(42)},
		{name: "int max with a fraction of zeros", in: "9223372036854775807.0", typ: Int, want: int64(math.MaxInt64)},

		{name: "float", in: "1.5", typ: Float, want: 1.5},
		{name: "float exponent", in: "-1e-3", typ: Float, want: -0.001},
		{name: "float spaces", in: " 2.5 ", typ: Float, want: 2.5},
		{name: "float integer", in: "7", typ: Float, want: 7.0},

		{name: "decimal keeps its scale", in: "12.340", typ: Decimal, want: MustDec("12.340")},
		{name: "decimal exponent", in: "1e3", typ: Decimal, want: MustDec("1000")},
		{name: "decimal big", in: "-123456789012345678901234567890.01", typ: Decimal, want: MustDec("-123456789012345678901234567890.01")},

		{name: "bool true", in: "true", typ: Bool, want: true},
		{name: "bool TRUE", in: "TRUE", typ: Bool, want: true},
		{name: "bool t", in: "t", typ: Bool, want: true},
		{name: "bool Yes", in: "Yes", typ: Bool, want: true},
		{name: "bool y", in: "y", typ: Bool, want: true},
		{name: "bool 1", in: "1", typ: Bool, want: true},
		{name: "bool on", in: " on ", typ: Bool, want: true},
		{name: "bool false", in: "false", typ: Bool, want: false},
		{name: "bool F", in: "F", typ: Bool, want: false},
		{name: "bool no", in: "no", typ: Bool, want: false},
		{name: "bool N", in: "N", typ: Bool, want: false},
		{name: "bool 0", in: "0", typ: Bool, want: false},
		{name: "bool OFF", in: "OFF", typ: Bool, want: false},

		{name: "rfc 3339 utc", in: "2024-03-05T10:20:30Z", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{name: "rfc 3339 nanoseconds and offset", in: "2024-03-05T10:20:30.123456789+05:30", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 123456789, plus0530)},
		{name: "rfc 3339 negative offset", in: "2024-03-05T10:20:30.5-03:00", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 500000000, time.FixedZone("", -3*3600))},
		{name: "sql form without zone is in loc", in: "2024-03-05 10:20:30", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, paris)},
		{name: "sql form in summer time", in: "2024-07-05 10:20:30", typ: Timestamp, loc: paris,
			want: time.Date(2024, 7, 5, 10, 20, 30, 0, time.FixedZone("", 2*3600))},
		{name: "sql form without zone and no loc is utc", in: "2024-03-05 10:20:30.000001", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 1000, time.UTC)},
		{name: "sql form nanoseconds", in: "2024-03-05 10:20:30.987654321", typ: Timestamp, loc: time.UTC,
			want: time.Date(2024, 3, 5, 10, 20, 30, 987654321, time.UTC)},
		{name: "sql form with offset", in: "2024-03-05 10:20:30+05:30", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, plus0530)},
		{name: "sql form with spaced offset", in: "2024-03-05 10:20:30 +05:30", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, plus0530)},
		{name: "sql form with compact offset", in: "2024-03-05 10:20:30.25+0530", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 250000000, plus0530)},
		{name: "sql form with Z", in: "2024-03-05 10:20:30Z", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{name: "T without zone is in loc", in: "2024-03-05T10:20:30", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, paris)},
		{name: "minutes only", in: "2024-03-05 10:20", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 0, 0, paris)},
		{name: "T minutes with zone", in: "2024-03-05T10:20Z", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 10, 20, 0, 0, time.UTC)},
		{name: "date only is midnight in loc", in: "2024-03-05", typ: Timestamp, loc: paris,
			want: time.Date(2024, 3, 5, 0, 0, 0, 0, paris)},
		{name: "timestamp spaces", in: " 2024-03-05T10:20:30Z\n", typ: Timestamp,
			want: time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},

		{name: "date", in: "2024-02-29", typ: Date, want: LocalDate(19782)},
		{name: "epoch", in: "1970-01-01", typ: Date, want: LocalDate(0)},
		{name: "before epoch", in: "1969-12-31", typ: Date, want: LocalDate(-1)},
		{name: "year one", in: "0001-01-01", typ: Date, want: LocalDate(-719162)},
		{name: "date spaces", in: " 2000-01-01 ", typ: Date, want: LocalDate(10957)},

		{name: "bytes kept", in: "a\x00\xff", typ: Bytes, want: []byte("a\x00\xff")},

		{name: "json object", in: `{"a": 1, "b": [true, null, "x", 2.50], "c": {"d": 1e400}}`, typ: JSON,
			want: map[string]any{"a": json.Number("1"), "b": []any{true, nil, "x", json.Number("2.50")}, "c": map[string]any{"d": json.Number("1e400")}}},
		{name: "json array", in: ` [1, "2"] `, typ: JSON, want: []any{json.Number("1"), "2"}},
		{name: "json string", in: `"x\ny"`, typ: JSON, want: "x\ny"},
		{name: "json number keeps its text", in: `12345678901234567890.10`, typ: JSON, want: json.Number("12345678901234567890.10")},
		{name: "json bool", in: `false`, typ: JSON, want: false},
		{name: "json null", in: `null`, typ: JSON, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseText(tt.in, tt.typ, tt.loc)
			if err != nil {
				t.Fatalf("ParseText(%q, %s): %v", tt.in, tt.typ, err)
			}
			if diff := cmp.Diff(tt.want, got, valueCmp); diff != "" {
				t.Errorf("ParseText(%q, %s) (-want +got):\n%s", tt.in, tt.typ, diff)
			}
		})
	}
}

func TestParseTextErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		in     string
		typ    Type
		value  string // ConvError.Value
		reason string // ConvError.Reason
	}{
		{name: "string invalid utf-8", in: "ab\xffc", typ: String, value: "ab\uFFFDc", reason: "invalid UTF-8"},
		{name: "any invalid utf-8", in: "\xc3(", typ: Any, value: "\uFFFD(", reason: "invalid UTF-8"},
		{name: "int letters", in: "abc", typ: Int, value: "abc", reason: "not an integer"},
		{name: "int fraction", in: "42.5", typ: Int, value: "42.5", reason: "not an integer"},
		{name: "int spaces only", in: "  ", typ: Int, value: "  ", reason: "not an integer"},
		{name: "int hex", in: "0x10", typ: Int, value: "0x10", reason: "not an integer"},
		{name: "int too big", in: "9223372036854775808", typ: Int, value: "9223372036854775808", reason: "out of range for a 64-bit integer"},
		{name: "int too small", in: "-9223372036854775809", typ: Int, value: "-9223372036854775809", reason: "out of range for a 64-bit integer"},
		{name: "int too big with a fraction", in: "9223372036854775808.0", typ: Int, value: "9223372036854775808.0", reason: "not an integer"},
		{name: "int huge exponent", in: "1e999999999", typ: Int, value: "1e999999999", reason: "not an integer"},
		{name: "int invalid utf-8", in: "4\xff", typ: Int, value: "4\uFFFD", reason: "not an integer"},
		{name: "float letters", in: "abc", typ: Float, value: "abc", reason: "not a number"},
		{name: "float comma", in: "1,5", typ: Float, value: "1,5", reason: "not a number"},
		{name: "float out of range", in: "1e400", typ: Float, value: "1e400", reason: "not a number"},
		{name: "decimal letters", in: "1.2.3", typ: Decimal, value: "1.2.3", reason: "not a decimal number"},
		{name: "decimal exponent out of range", in: "1e99999", typ: Decimal, value: "1e99999", reason: "decimal exponent out of range"},
		{name: "bool", in: "maybe", typ: Bool, value: "maybe", reason: "want true or false"},
		{name: "bool 2", in: "2", typ: Bool, value: "2", reason: "want true or false"},
		{name: "timestamp words", in: "yesterday", typ: Timestamp, value: "yesterday", reason: "want RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.fraction][zone]'"},
		{name: "timestamp month 13", in: "2024-13-05 10:00:00", typ: Timestamp, value: "2024-13-05 10:00:00", reason: "want RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.fraction][zone]'"},
		{name: "timestamp hour 25", in: "2024-03-05T25:00:00Z", typ: Timestamp, value: "2024-03-05T25:00:00Z", reason: "want RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.fraction][zone]'"},
		{name: "timestamp zone name", in: "2024-03-05 10:00:00 CET", typ: Timestamp, value: "2024-03-05 10:00:00 CET", reason: "want RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.fraction][zone]'"},
		{name: "date not a leap year", in: "2023-02-29", typ: Date, value: "2023-02-29", reason: "want YYYY-MM-DD"},
		{name: "date slashes", in: "2024/01/01", typ: Date, value: "2024/01/01", reason: "want YYYY-MM-DD"},
		{name: "date short", in: "2024-1-1", typ: Date, value: "2024-1-1", reason: "want YYYY-MM-DD"},
		{name: "date with time", in: "2024-01-01T00:00:00Z", typ: Date, value: "2024-01-01T00:00:00Z", reason: "want YYYY-MM-DD"},
		{name: "json broken", in: `{"a":`, typ: JSON, value: `{"a":`, reason: "not JSON: unexpected EOF"},
		{name: "json bare word", in: `hello`, typ: JSON, value: `hello`, reason: "not JSON: invalid character 'h' looking for beginning of value"},
		{name: "json two values", in: `{} {}`, typ: JSON, value: `{} {}`, reason: "not JSON: trailing data"},
		{name: "json trailing word", in: `1 x`, typ: JSON, value: `1 x`, reason: "not JSON: trailing data"},
		{name: "json trailing bracket", in: `[1] ]`, typ: JSON, value: `[1] ]`, reason: "not JSON: trailing data"},
		{name: "json trailing brace", in: `{"a":1}}`, typ: JSON, value: `{"a":1}}`, reason: "not JSON: trailing data"},
		{name: "long value is cut", in: long, typ: Int, value: long[:200] + "…", reason: "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseText(tt.in, tt.typ, nil)
			if err == nil {
				t.Fatalf("ParseText(%q, %s) = %#v, want an error", tt.in, tt.typ, got)
			}
			if got != nil {
				t.Errorf("ParseText(%q, %s) returned %#v with its error, want nil", tt.in, tt.typ, got)
			}
			var ce *ConvError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *ConvError", err, err)
			}
			want := &ConvError{Value: tt.value, Type: tt.typ, Reason: tt.reason}
			if diff := cmp.Diff(want, ce); diff != "" {
				t.Errorf("ConvError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *ConvError
		want string
	}{
		{
			name: "with field",
			err:  &ConvError{Field: "price", Value: "abc", Type: Decimal, Reason: "not a decimal number"},
			want: `field "price": value "abc" is not a valid decimal: not a decimal number`,
		},
		{
			name: "without field",
			err:  &ConvError{Value: "2", Type: Bool, Reason: "want true or false"},
			want: `value "2" is not a valid bool: want true or false`,
		},
		{
			name: "quotes and control characters are escaped",
			err:  &ConvError{Field: "a\"b", Value: "x\ny\"", Type: Int, Reason: "not an integer"},
			want: `field "a\"b": value "x\ny\"" is not a valid int: not an integer`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %s\nwant      %s", got, tt.want)
			}
		})
	}

	// A caller names the field of the error ParseText gives.
	_, err := ParseText("12,5", Decimal, nil)
	var ce *ConvError
	if !errors.As(err, &ce) {
		t.Fatalf("ParseText error %v is not a *ConvError", err)
	}
	ce.Field = "unit_price"
	if got, want := ce.Error(), `field "unit_price": value "12,5" is not a valid decimal: not a decimal number`; got != want {
		t.Errorf("Error() = %s\nwant      %s", got, want)
	}
}

func TestParseTimestampKeepsZoneForDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	// 2024-11-03 01:30 happens twice in New York; Go picks the first (EDT).
	got, err := ParseTimestamp("2024-11-03 01:30:00", ny)
	if err != nil {
		t.Fatal(err)
	}
	if got.Location() != ny {
		t.Errorf("location = %v, want America/New_York", got.Location())
	}
	if want := time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("instant = %v, want %v", got.UTC(), want)
	}
}

func TestConvert(t *testing.T) {
	ts := time.Date(2024, 3, 5, 23, 30, 0, 0, time.FixedZone("", -5*3600))
	tests := []struct {
		name string
		in   any
		typ  Type
		want any
	}{
		{name: "nil stays nil", in: nil, typ: Int, want: nil},
		{name: "nil string stays nil", in: nil, typ: String, want: nil},
		{name: "any passes through", in: int32(3), typ: Any, want: int32(3)},

		{name: "string to string", in: "abc", typ: String, want: "abc"},
		{name: "empty string to string", in: "", typ: String, want: ""},
		{name: "string to int", in: "42", typ: Int, want: int64(42)},
		{name: "string to int from 42.0", in: "42.0", typ: Int, want: int64(42)},
		{name: "empty string to int is null", in: "", typ: Int, want: nil},
		{name: "string to json is a json string", in: `{"a":1}`, typ: JSON, want: `{"a":1}`},
		{name: "base64 string to bytes", in: "aGk=", typ: Bytes, want: []byte("hi")},
		{name: "other string to bytes", in: "not base64!", typ: Bytes, want: []byte("not base64!")},
		{name: "string to timestamp", in: "2024-03-05 10:00:00", typ: Timestamp, want: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)},

		{name: "bytes to bytes", in: []byte{0xff, 0}, typ: Bytes, want: []byte{0xff, 0}},
		{name: "bytes to int", in: []byte("42"), typ: Int, want: int64(42)},
		{name: "bytes to string", in: []byte("abc"), typ: String, want: "abc"},

		{name: "json number to int", in: json.Number("42"), typ: Int, want: int64(42)},
		{name: "json number to decimal", in: json.Number("1.50"), typ: Decimal, want: MustDec("1.50")},
		{name: "json number to json", in: json.Number("1.50"), typ: JSON, want: json.Number("1.50")},
		{name: "json number to float", in: json.Number("1.5"), typ: Float, want: 1.5},

		{name: "int to string", in: int64(-7), typ: String, want: "-7"},
		{name: "decimal to string", in: MustDec("1.50"), typ: String, want: "1.50"},
		{name: "float to string", in: 0.1, typ: String, want: "0.1"},
		{name: "bool to string", in: true, typ: String, want: "true"},
		{name: "timestamp to string", in: time.Date(2024, 3, 5, 10, 0, 0, 5, time.UTC), typ: String, want: "2024-03-05T10:00:00.000000005Z"},
		{name: "date to string", in: date("2024-03-05"), typ: String, want: "2024-03-05"},

		{name: "int64 to int", in: int64(5), typ: Int, want: int64(5)},
		{name: "int to int", in: 5, typ: Int, want: int64(5)},
		{name: "int32 to int", in: int32(-5), typ: Int, want: int64(-5)},
		{name: "uint64 to int", in: uint64(5), typ: Int, want: int64(5)},
		{name: "max uint64 that fits", in: uint64(math.MaxInt64), typ: Int, want: int64(math.MaxInt64)},
		{name: "whole float to int", in: 42.0, typ: Int, want: int64(42)},
		{name: "negative whole float to int", in: -1e18, typ: Int, want: int64(-1e18)},
		{name: "min int float to int", in: -9223372036854775808.0, typ: Int, want: int64(math.MinInt64)},
		{name: "whole decimal to int", in: MustDec("42.00"), typ: Int, want: int64(42)},
		{name: "true to int", in: true, typ: Int, want: int64(1)},
		{name: "false to int", in: false, typ: Int, want: int64(0)},

		{name: "float to float", in: 1.5, typ: Float, want: 1.5},
		{name: "float32 to float", in: float32(1.5), typ: Float, want: 1.5},
		{name: "int64 to float", in: int64(3), typ: Float, want: 3.0},
		{name: "int to float", in: 3, typ: Float, want: 3.0},
		{name: "decimal to float", in: MustDec("0.1"), typ: Float, want: 0.1},

		{name: "decimal to decimal", in: MustDec("1.50"), typ: Decimal, want: MustDec("1.50")},
		{name: "int64 to decimal", in: int64(3), typ: Decimal, want: MustDec("3")},
		{name: "int to decimal", in: 3, typ: Decimal, want: MustDec("3")},
		{name: "float to decimal is its shortest text", in: 0.1, typ: Decimal, want: MustDec("0.1")},

		{name: "bool to bool", in: false, typ: Bool, want: false},
		{name: "int to bool", in: int64(2), typ: Bool, want: true},
		{name: "zero to bool", in: int64(0), typ: Bool, want: false},

		{name: "timestamp kept with its zone", in: ts, typ: Timestamp, want: ts},
		{name: "date to timestamp is midnight utc", in: date("2024-03-05"), typ: Timestamp, want: time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)},
		{name: "unix seconds to timestamp", in: int64(1700000000), typ: Timestamp, want: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)},

		{name: "date to date", in: date("2024-03-05"), typ: Date, want: date("2024-03-05")},
		{name: "timestamp to date in its own zone", in: ts, typ: Date, want: date("2024-03-05")},

		{name: "map to json", in: map[string]any{"a": 1.0}, typ: JSON, want: map[string]any{"a": 1.0}},
		{name: "list to json", in: []any{true}, typ: JSON, want: []any{true}},
		{name: "bool to json", in: true, typ: JSON, want: true},
		{name: "float to json", in: 1.5, typ: JSON, want: 1.5},
		{name: "int to json is a number", in: int64(42), typ: JSON, want: json.Number("42")},
		{name: "decimal to json is an exact number", in: MustDec("1.50"), typ: JSON, want: json.Number("1.50")},

		{name: "int to bytes", in: int64(42), typ: Bytes, want: []byte("42")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Convert(tt.in, tt.typ, nil)
			if err != nil {
				t.Fatalf("Convert(%#v, %s): %v", tt.in, tt.typ, err)
			}
			if diff := cmp.Diff(tt.want, got, valueCmp); diff != "" {
				t.Errorf("Convert(%#v, %s) (-want +got):\n%s", tt.in, tt.typ, diff)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     any
		typ    Type
		value  string
		reason string
	}{
		{name: "invalid utf-8 string", in: "a\xff", typ: String, value: "a\uFFFD", reason: "invalid UTF-8"},
		{name: "invalid utf-8 bytes to string", in: []byte("a\xff"), typ: String, value: "a\uFFFD", reason: "invalid UTF-8"},
		{name: "text to int", in: "abc", typ: Int, value: "abc", reason: "not an integer"},
		{name: "uint64 too big", in: uint64(math.MaxUint64), typ: Int, value: "18446744073709551615", reason: "out of range for a 64-bit integer"},
		{name: "float with a fraction to int", in: 42.5, typ: Int, value: "42.5", reason: "not an integer"},
		{name: "float 2^63 to int", in: 9223372036854775808.0, typ: Int, value: "9.223372036854776e+18", reason: "not an integer"},
		{name: "float too small to int", in: -1e19, typ: Int, value: "-1e+19", reason: "not an integer"},
		{name: "NaN to int", in: math.NaN(), typ: Int, value: "NaN", reason: "not an integer"},
		{name: "Inf to int", in: math.Inf(1), typ: Int, value: "+Inf", reason: "not an integer"},
		{name: "decimal fraction to int", in: MustDec("1.5"), typ: Int, value: "1.5", reason: "not an integer"},
		{name: "big decimal to int", in: MustDec("1e20"), typ: Int, value: "100000000000000000000", reason: "not an integer"},
		{name: "timestamp to int", in: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), typ: Int, value: "2024-01-01T00:00:00Z", reason: "cannot convert a timestamp"},
		{name: "bool to float", in: true, typ: Float, value: "true", reason: "cannot convert a bool"},
		{name: "NaN to decimal", in: math.NaN(), typ: Decimal, value: "NaN", reason: "NaN is not a decimal number"},
		{name: "bool to decimal", in: true, typ: Decimal, value: "true", reason: "cannot convert a bool"},
		{name: "float to bool", in: 1.0, typ: Bool, value: "1", reason: "cannot convert a float"},
		{name: "float to timestamp", in: 1.5, typ: Timestamp, value: "1.5", reason: "cannot convert a float"},
		{name: "int to date", in: int64(3), typ: Date, value: "3", reason: "cannot convert a int"},
		{name: "json number to bool", in: json.Number("2"), typ: Bool, value: "2", reason: "want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Convert(tt.in, tt.typ, nil)
			if err == nil {
				t.Fatalf("Convert(%#v, %s) = %#v, want an error", tt.in, tt.typ, got)
			}
			var ce *ConvError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *ConvError", err, err)
			}
			want := &ConvError{Value: tt.value, Type: tt.typ, Reason: tt.reason}
			if diff := cmp.Diff(want, ce); diff != "" {
				t.Errorf("ConvError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTypeOf(t *testing.T) {
	tests := []struct {
		in   any
		want Type
	}{
		{"s", String}, {int64(1), Int}, {1.5, Float}, {MustDec("1"), Decimal}, {true, Bool},
		{time.Time{}, Timestamp}, {LocalDate(0), Date}, {[]byte{}, Bytes},
		{map[string]any{}, JSON}, {[]any{}, JSON}, {json.Number("1"), JSON},
		{nil, Any}, {int32(1), Any}, {struct{}{}, Any},
	}
	for _, tt := range tests {
		if got := TypeOf(tt.in); got != tt.want {
			t.Errorf("TypeOf(%#v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFormatText(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{name: "nil", in: nil, want: ""},
		{name: "string", in: "a,b\n", want: "a,b\n"},
		{name: "int64", in: int64(-42), want: "-42"},
		{name: "int", in: 42, want: "42"},
		{name: "float", in: 0.1, want: "0.1"},
		{name: "float big", in: 1e21, want: "1e+21"},
		{name: "float negative zero", in: math.Copysign(0, -1), want: "-0"},
		{name: "float NaN", in: math.NaN(), want: "NaN"},
		{name: "decimal exact", in: MustDec("-12.340"), want: "-12.340"},
		{name: "bool", in: false, want: "false"},
		{name: "timestamp nanoseconds and zone", in: time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.FixedZone("", 5*3600+30*60)), want: "2024-03-05T10:20:30.123456789+05:30"},
		{name: "timestamp utc", in: time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC), want: "2024-03-05T10:20:30Z"},
		{name: "timestamp with a zone of seconds keeps its instant", in: time.Date(1900, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", 561)), want: "1900-01-01T00:00:39+00:10"},
		{name: "timestamp with a negative zone of seconds keeps its instant", in: time.Date(1800, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -17762)), want: "1800-01-01T00:00:02-04:56"},
		{name: "date", in: date("2024-03-05"), want: "2024-03-05"},
		{name: "bytes", in: []byte("hi"), want: "hi"},
		{name: "json number", in: json.Number("1.50"), want: "1.50"},
		{name: "stringer", in: Decimal, want: "decimal"},
		{name: "json object sorted", in: map[string]any{"b": json.Number("2"), "a": []any{"x", nil, true}}, want: `{"a":["x",null,true],"b":2}`},
		{name: "json list", in: []any{json.Number("1"), "a"}, want: `[1,"a"]`},
		{name: "unknown type", in: struct{ A int }{A: 1}, want: `{"A":1}`},
		{name: "unmarshalable falls back", in: func() {}, want: "<func>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatText(tt.in)
			if tt.name == "unmarshalable falls back" {
				if got == "" {
					t.Errorf("FormatText(func) is empty")
				}
				return
			}
			if got != tt.want {
				t.Errorf("FormatText(%#v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestTextRoundTrip checks that FormatText then ParseText gives the value
// back, for every type.
func TestTextRoundTrip(t *testing.T) {
	paris := mustZone(t, "Europe/Paris")
	tests := []struct {
		name string
		typ  Type
		in   any
		loc  *time.Location
	}{
		{name: "string", typ: String, in: "a, \"b\"\n\tc é"},
		{name: "empty string", typ: String, in: ""},
		{name: "any", typ: Any, in: "x"},
		{name: "int", typ: Int, in: int64(-9)},
		{name: "int min", typ: Int, in: int64(math.MinInt64)},
		{name: "int max", typ: Int, in: int64(math.MaxInt64)},
		{name: "float", typ: Float, in: 0.1},
		{name: "float tiny", typ: Float, in: 5e-324},
		{name: "float huge", typ: Float, in: math.MaxFloat64},
		{name: "float negative zero", typ: Float, in: math.Copysign(0, -1)},
		{name: "float inf", typ: Float, in: math.Inf(-1)},
		{name: "float NaN", typ: Float, in: math.NaN()},
		{name: "decimal scale kept", typ: Decimal, in: MustDec("1.500")},
		{name: "decimal big", typ: Decimal, in: MustDec("-123456789012345678901234567890.000001")},
		{name: "bool true", typ: Bool, in: true},
		{name: "bool false", typ: Bool, in: false},
		{name: "timestamp nanoseconds", typ: Timestamp, in: time.Date(2024, 3, 5, 10, 20, 30, 1, time.FixedZone("", -9*3600-30*60))},
		{name: "timestamp utc", typ: Timestamp, in: time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{name: "timestamp in a named zone", typ: Timestamp, in: time.Date(2024, 7, 1, 12, 0, 0, 0, paris), loc: paris},
		{name: "timestamp in a zone of seconds", typ: Timestamp, in: time.Date(1900, 1, 1, 12, 0, 0, 0, paris), loc: paris},
		{name: "year zero in a zone of seconds", typ: Timestamp, in: time.Date(0, 1, 1, 0, 0, 0, 0, paris), loc: paris},
		{name: "date", typ: Date, in: date("2024-02-29")},
		{name: "date year one", typ: Date, in: date("0001-01-01")},
		{name: "date year 9999", typ: Date, in: date("9999-12-31")},
		{name: "bytes", typ: Bytes, in: []byte("\x00\xff\n")},
		{name: "json object", typ: JSON, in: map[string]any{"a<b": []any{json.Number("1.50"), nil, false, map[string]any{}}, "é": "\u2028"}},
		{name: "json list", typ: JSON, in: []any{}},
		{name: "json number", typ: JSON, in: json.Number("-1e-7")},
		{name: "json bool", typ: JSON, in: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := FormatText(tt.in)
			got, err := ParseText(text, tt.typ, tt.loc)
			if err != nil {
				t.Fatalf("ParseText(%q, %s): %v", text, tt.typ, err)
			}
			if tt.typ == Timestamp {
				// The instant comes back, in the offset the text names.
				want, gotT := tt.in.(time.Time), got.(time.Time)
				if !want.Equal(gotT) {
					t.Errorf("round trip of %v through %q = %v", want, text, gotT)
				}
				return
			}
			if diff := cmp.Diff(tt.in, got, valueCmp); diff != "" {
				t.Errorf("round trip through %q (-want +got):\n%s", text, diff)
			}
		})
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{name: "nil", in: nil, want: `null`},
		{name: "string", in: "plain", want: `"plain"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "control characters", in: "a\nb\rc\td\x00e\x01f\x1f\x7f", want: `"a\nb\rc\td\u0000e\u0001f\u001f` + "\x7f" + `"`},
		{name: "invalid utf-8 replaced", in: "a\xffb\xc3", want: `"a\ufffdb\ufffd"`},
		{name: "unicode kept", in: "é€😀", want: `"é€😀"`},
		{name: "int", in: int64(-42), want: `-42`},
		{name: "float", in: 1.5, want: `1.5`},
		{name: "float exponent", in: 1e21, want: `1e+21`},
		{name: "float NaN is null", in: math.NaN(), want: `null`},
		{name: "float Inf is null", in: math.Inf(1), want: `null`},
		{name: "decimal exact", in: MustDec("12345678901234567890.10"), want: `12345678901234567890.10`},
		{name: "bool", in: true, want: `true`},
		{name: "timestamp", in: time.Date(2024, 3, 5, 10, 20, 30, 123000000, time.FixedZone("", 3600)), want: `"2024-03-05T10:20:30.123+01:00"`},
		{name: "timestamp with a zone of seconds keeps its instant", in: time.Date(1900, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", 561)), want: `"1900-01-01T00:00:39+00:10"`},
		{name: "date", in: date("2024-03-05"), want: `"2024-03-05"`},
		{name: "bytes base64", in: []byte("hi\xff"), want: `"aGn/"`},
		{name: "json number", in: json.Number("1.50"), want: `1.50`},
		{name: "object sorted and nested", in: map[string]any{"z": []any{int64(1), "a\n"}, "a": map[string]any{"k\"": nil}}, want: `{"a":{"k\"":null},"z":[1,"a\n"]}`},
		{name: "empty object", in: map[string]any{}, want: `{}`},
		{name: "empty list", in: []any{}, want: `[]`},
		{name: "other types through encoding/json", in: int32(7), want: `7`},
		{name: "unmarshalable is a string", in: make(chan int), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSON([]byte("prefix:"), tt.in)
			if !strings.HasPrefix(string(got), "prefix:") {
				t.Fatalf("AppendJSON lost what dst held: %q", got)
			}
			js := strings.TrimPrefix(string(got), "prefix:")
			if !json.Valid([]byte(js)) {
				t.Errorf("AppendJSON(%#v) = %s, not valid JSON", tt.in, js)
			}
			if tt.want != "" && js != tt.want {
				t.Errorf("AppendJSON(%#v) = %s, want %s", tt.in, js, tt.want)
			}
		})
	}
}

func TestAppendJSONStringDecodes(t *testing.T) {
	// Every string, including control characters, decodes back to itself.
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		all.WriteByte(byte(c))
	}
	all.WriteString("é\u2028\u2029😀")
	s := all.String()
	var back string
	if err := json.Unmarshal(AppendJSON(nil, s), &back); err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Errorf("decoded %q, want %q", back, s)
	}
}

func TestRowJSON(t *testing.T) {
	s := MustSchema(
		Field{Name: "id", Type: Int},
		Field{Name: "name", Type: String},
		Field{Name: "price", Type: Decimal},
		Field{Name: "at", Type: Timestamp},
		Field{Name: "day", Type: Date},
		Field{Name: "ok", Type: Bool},
		Field{Name: "raw", Type: Bytes},
		Field{Name: "tags", Type: JSON},
		Field{Name: "say \"hi\"", Type: Float},
	)
	row := Row{int64(1), "Ann\n", MustDec("9.90"), time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC), date("2024-03-05"), true, []byte{1, 2}, []any{"a"}, nil}
	want := `{"id":1,"name":"Ann\n","price":9.90,"at":"2024-03-05T10:00:00Z","day":"2024-03-05","ok":true,"raw":"AQI=","tags":["a"],"say \"hi\"":null}`
	if got := string(RowJSON(s, row)); got != want {
		t.Errorf("RowJSON =\n%s\nwant\n%s", got, want)
	}
	if got := string(AppendRowJSON([]byte("x"), s, row)); got != "x"+want {
		t.Errorf("AppendRowJSON =\n%s\nwant\nx%s", got, want)
	}
	if !json.Valid([]byte(want)) {
		t.Errorf("RowJSON is not valid JSON")
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in   string
		want Type
	}{
		{"any", Any}, {"string", String}, {"text", String}, {"varchar", String},
		{"int", Int}, {"integer", Int}, {"bigint", Int}, {"int64", Int},
		{"float", Float}, {"double", Float}, {"float64", Float}, {"real", Float},
		{"decimal", Decimal}, {"numeric", Decimal},
		{"bool", Bool}, {"boolean", Bool},
		{"timestamp", Timestamp}, {"datetime", Timestamp}, {"timestamptz", Timestamp},
		{"date", Date}, {"bytes", Bytes}, {"binary", Bytes}, {"blob", Bytes},
		{"json", JSON}, {"object", JSON},
		{" Decimal ", Decimal}, {"INT", Int},
	}
	for _, tt := range tests {
		got, err := ParseType(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseType(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	_, err := ParseType("intt")
	want := `unknown type "intt" (want one of string, int, float, decimal, bool, timestamp, date, bytes, json)`
	if err == nil || err.Error() != want {
		t.Errorf("ParseType(intt) error = %v, want %s", err, want)
	}
	// Every name a type renders as is accepted back.
	for _, name := range TypeNames() {
		typ, err := ParseType(name)
		if err != nil || typ.String() != name {
			t.Errorf("ParseType(%q) = %s, %v", name, typ, err)
		}
	}
	if got := Type(99).String(); got != "type(99)" {
		t.Errorf("Type(99).String() = %q", got)
	}
}

func TestLocalDate(t *testing.T) {
	d := date("2024-03-05")
	if got := d.Time(); !got.Equal(time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Time() = %v", got)
	}
	if got, err := d.MarshalJSON(); err != nil || string(got) != `"2024-03-05"` {
		t.Errorf("MarshalJSON() = %s, %v", got, err)
	}
	// The date of a time is taken in the time's own zone.
	late := time.Date(2024, 3, 5, 23, 30, 0, 0, time.FixedZone("", -5*3600))
	if got := LocalDateOf(late); got != d {
		t.Errorf("LocalDateOf(%v) = %s, want 2024-03-05", late, got)
	}
	if got := LocalDateOf(late.UTC()); got != d+1 {
		t.Errorf("LocalDateOf(%v) = %s, want 2024-03-06", late.UTC(), got)
	}
	if got := LocalDate(-1).String(); got != "1969-12-31" {
		t.Errorf("LocalDate(-1) = %s", got)
	}
}
