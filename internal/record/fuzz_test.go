package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var allTypes = []Type{Any, String, Int, Float, Decimal, Bool, Timestamp, Date, Bytes, JSON}

// fuzzZones are the zones a fuzzed text without one is read in: none, UTC,
// a fixed offset, and named zones with summer time and, for old dates,
// offsets of seconds.
func fuzzZones(f *testing.F) []*time.Location {
	return []*time.Location{nil, time.UTC, time.FixedZone("", -(3*3600 + 30*60)), mustZone(f, "Europe/Paris"), mustZone(f, "America/New_York")}
}

// FuzzParseText checks, for every type, that ParseText never panics, that
// its errors are ConvErrors naming value and reason, and that FormatText
// then ParseText gives an equal value back.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"", "42", "-0", "42.0", "4.2e1", "9223372036854775808", "1e999999999", "0.1", "NaN", "-Inf", "1e400",
		"12.340", "true", "Y", "off", "2024-03-05T10:20:30.123456789+05:30", "2024-03-05 10:20:30",
		"2024-11-03 01:30:00", "1850-06-01 12:00:00", "2024-03-05", "0000-01-01", "9999-12-31T23:59:59.999999999-23:59",
		`{"a":[1,"x",null,{"b":2.50}]}`, `"str"`, `[1] ]`, "null", "a\xffb", "\xc3", "é", strings.Repeat("9", 30),
	} {
		for z := range 5 {
			f.Add(s, uint8(z))
		}
	}
	zones := fuzzZones(f)
	f.Fuzz(func(t *testing.T, s string, zone uint8) {
		loc := zones[int(zone)%len(zones)]
		for _, typ := range allTypes {
			v, err := ParseText(s, typ, loc)
			if err != nil {
				var ce *ConvError
				if !errors.As(err, &ce) {
					t.Fatalf("ParseText(%q, %s): error %v is a %T, want *ConvError", s, typ, err, err)
				}
				if ce.Type != typ || ce.Reason == "" || !utf8.ValidString(ce.Value) || utf8.RuneCountInString(ce.Value) > 201 {
					t.Fatalf("ParseText(%q, %s): bad ConvError %+v", s, typ, ce)
				}
				if v != nil {
					t.Fatalf("ParseText(%q, %s) returned %#v with its error", s, typ, v)
				}
				continue
			}
			if s == "" && typ != String {
				if v != nil {
					t.Fatalf("ParseText(\"\", %s) = %#v, want null", typ, v)
				}
				continue
			}
			if got := TypeOf(v); typ != Any && typ != JSON && got != typ {
				t.Fatalf("ParseText(%q, %s) gave a %T (%s)", s, typ, v, got)
			}
			if typ == JSON {
				if _, isString := v.(string); isString {
					// A JSON string's text is the bare string: FormatText
					// does not know the field is JSON.
					continue
				}
			}
			text := FormatText(v)
			back, err := ParseText(text, typ, loc)
			if err != nil {
				t.Fatalf("ParseText(%q, %s) = %#v, its text %q does not parse back: %v", s, typ, v, text, err)
			}
			if !sameValue(v, back) {
				t.Fatalf("ParseText(%q, %s) = %#v; through its text %q it became %#v", s, typ, v, text, back)
			}
			// The JSON of every value is valid.
			if js := AppendJSON(nil, v); !json.Valid(js) {
				t.Fatalf("AppendJSON(%#v) = %s, not valid JSON", v, js)
			}
		}
	})
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return cmp.Equal(a, b, valueCmp)
}

// FuzzParseDec checks that the text of a decimal parses back to the same
// decimal, and that Cmp agrees with the order of the nearest floats.
func FuzzParseDec(f *testing.F) {
	for _, s := range [][2]string{
		{"0", "-0"}, {"1.50", "1.5"}, {"-12.340", "12.34"}, {"1e3", "999.9999"}, {".5", "-.5"},
		{"9223372036854775807", "9223372036854775808"}, {"-9223372036854775808", "-9223372036854775809"},
		{"123456789012345678901234567890.5", "1e30"}, {"1e-30", "0"}, {"+7", "7.0000000000000000000001"},
		{"1e16384", "1e-16384"}, {"1e999999999", "x"}, {"1.2.3", "--1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, errA := ParseDec(a)
		db, errB := ParseDec(b)
		for _, c := range []struct {
			text string
			d    Dec
			err  error
		}{{a, da, errA}, {b, db, errB}} {
			if c.err != nil {
				continue
			}
			s := c.d.String()
			back, err := ParseDec(s)
			if err != nil {
				t.Fatalf("ParseDec(%q).String() = %q does not parse: %v", c.text, s, err)
			}
			if back.Cmp(c.d) != 0 || back.Scale() != c.d.Scale() || back.String() != s {
				t.Fatalf("ParseDec(%q) = %s (scale %d); reparsed %s (scale %d)", c.text, s, c.d.Scale(), back, back.Scale())
			}
			if got := string(c.d.AppendText(nil)); got != s {
				t.Fatalf("AppendText(%s) = %q", s, got)
			}
			for _, scale := range []int32{-2, 0, 2} {
				r := c.d.Round(scale)
				if got := string(r.AppendText(nil)); got != r.String() {
					t.Fatalf("Round(%s, %d): AppendText %q, String %q", s, scale, got, r.String())
				}
			}
			if c.d.Neg().Neg().String() != s || c.d.Add(c.d.Neg()).Sign() != 0 || c.d.Sub(c.d).Sign() != 0 {
				t.Fatalf("negation of %s is not exact", s)
			}
			if !c.d.Trim().Equal(c.d) {
				t.Fatalf("Trim(%s) = %s changed the value", s, c.d.Trim())
			}
		}
		if errA != nil || errB != nil {
			return
		}
		c := da.Cmp(db)
		if db.Cmp(da) != -c {
			t.Fatalf("Cmp(%s, %s) = %d but Cmp(%s, %s) = %d", da, db, c, db, da, db.Cmp(da))
		}
		if (c == 0) != (da.Sub(db).Sign() == 0) || c != da.Sub(db).Sign() {
			t.Fatalf("Cmp(%s, %s) = %d, but the difference is %s", da, db, c, da.Sub(db))
		}
		fa, fb := da.Float64(), db.Float64()
		if math.IsInf(fa, 0) || math.IsInf(fb, 0) {
			return // too large for a float
		}
		switch {
		case fa < fb && c >= 0, fa > fb && c <= 0:
			t.Fatalf("floats %v, %v disagree with Cmp(%s, %s) = %d", fa, fb, da, db, c)
		case c < 0 && fa > fb, c > 0 && fa < fb:
			t.Fatalf("Cmp(%s, %s) = %d but floats are %v, %v", da, db, c, fa, fb)
		}
		if c == 0 && fa != fb {
			t.Fatalf("equal decimals %s, %s have floats %v, %v", da, db, fa, fb)
		}
	})
}
