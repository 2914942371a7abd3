package record

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDec(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string // String() of the result
		scale int32
		big   bool // the unscaled value does not fit an int64
	}{
		{name: "integer", in: "42", want: "42"},
		{name: "zero", in: "0", want: "0"},
		{name: "negative zero", in: "-0", want: "0"},
		{name: "keeps trailing zeros", in: "-12.340", want: "-12.340", scale: 3},
		{name: "plus sign", in: "+7.5", want: "7.5", scale: 1},
		{name: "leading point", in: ".5", want: "0.5", scale: 1},
		{name: "signed leading point", in: "+.5", want: "0.5", scale: 1},
		{name: "negative leading point", in: "-.25", want: "-0.25", scale: 2},
		{name: "trailing point", in: "5.", want: "5"},
		{name: "leading zeros", in: "007.10", want: "7.10", scale: 2},
		{name: "surrounding space", in: "  3.14\t", want: "3.14", scale: 2},
		{name: "exponent", in: "1e3", want: "1000"},
		{name: "capital exponent", in: "1E3", want: "1000"},
		{name: "signed exponent", in: "2.5e+2", want: "250"},
		{name: "negative exponent", in: "1e-3", want: "0.001", scale: 3},
		{name: "fraction and exponent", in: "-1.25e-2", want: "-0.0125", scale: 4},
		{name: "exponent keeps a fraction", in: "1.2345e2", want: "123.45", scale: 2},
		{name: "zero exponent", in: "1.50e0", want: "1.50", scale: 2},
		{name: "18 digits stay small", in: "999999999999999999", want: "999999999999999999"},
		{name: "max int64", in: "9223372036854775807", want: "9223372036854775807"},
		{name: "min int64", in: "-9223372036854775808", want: "-9223372036854775808"},
		{name: "past max int64", in: "9223372036854775808", want: "9223372036854775808", big: true},
		{name: "20 digits", in: "12345678901234567890", want: "12345678901234567890", big: true},
		{name: "negative 20 digits", in: "-12345678901234567890", want: "-12345678901234567890", big: true},
		{name: "big with fraction", in: "123456789012345678.901234567890", want: "123456789012345678.901234567890", scale: 12, big: true},
		{name: "many leading zeros", in: "0000000000000000000000000001.5", want: "1.5", scale: 1},
		{name: "big exponent", in: "1e30", want: "1000000000000000000000000000000", big: true},
		{name: "tiny", in: "1e-30", want: "0.000000000000000000000000000001", scale: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDec(tt.in)
			if err != nil {
				t.Fatalf("ParseDec(%q): %v", tt.in, err)
			}
			if got := d.String(); got != tt.want {
				t.Errorf("ParseDec(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			if d.Scale() != tt.scale {
				t.Errorf("ParseDec(%q).Scale() = %d, want %d", tt.in, d.Scale(), tt.scale)
			}
			if (d.big != nil) != tt.big {
				t.Errorf("ParseDec(%q) uses big.Int: %v, want %v", tt.in, d.big != nil, tt.big)
			}
		})
	}
}

func TestParseDecInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "blank", in: "   "},
		{name: "sign only", in: "-"},
		{name: "point only", in: "."},
		{name: "sign and point", in: "+."},
		{name: "two points", in: "1.2.3"},
		{name: "two signs", in: "--1"},
		{name: "mixed signs", in: "+-1"},
		{name: "letters", in: "abc"},
		{name: "trailing letter", in: "12a"},
		{name: "inner space", in: "1 000"},
		{name: "comma", in: "1,5"},
		{name: "exponent only", in: "e5"},
		{name: "empty exponent", in: "1e"},
		{name: "bad exponent", in: "1ex"},
		{name: "fraction exponent", in: "1e1.5"},
		{name: "two exponents", in: "1e2e3"},
		{name: "hex", in: "0x10"},
		{name: "underscores", in: "1_000"},
		{name: "infinity", in: "Inf"},
		{name: "nan", in: "NaN"},
		{name: "exponent past int32", in: "1e9999999999"},
		{name: "huge exponent", in: "1e999999999"},
		{name: "huge negative exponent", in: "1e-999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := ParseDec(tt.in); err == nil {
				t.Errorf("ParseDec(%q) = %s, want an error", tt.in, d)
			}
		})
	}
}

func TestMustDecPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), `"x"`) {
			t.Errorf("MustDec(\"x\") recovered %v, want a panic naming the text", r)
		}
	}()
	MustDec("x")
}

func TestDecStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"0", "1", "-1", "0.001", "-0.001", "12.340", "100", "0.10",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808",
		"-9223372036854775809", "123456789012345678901234567890.123456789",
		"-0.000000000000000000000000000000001",
	} {
		t.Run(s, func(t *testing.T) {
			d := MustDec(s)
			if got := d.String(); got != s {
				t.Fatalf("String() = %q, want %q", got, s)
			}
			again := MustDec(d.String())
			if again.Cmp(d) != 0 || again.Scale() != d.Scale() {
				t.Errorf("reparse of %q = %s (scale %d), want scale %d", s, again, again.Scale(), d.Scale())
			}
		})
	}
}

func TestDecStringNegativeScale(t *testing.T) {
	// Round to a negative scale rounds to tens, hundreds...; the text must
	// still be the value.
	tests := []struct {
		name  string
		in    string
		scale int32
		want  string
	}{
		{name: "tens", in: "125", scale: -1, want: "130"},
		{name: "hundreds down", in: "1249.9", scale: -2, want: "1200"},
		{name: "negative tens", in: "-125", scale: -1, want: "-130"},
		{name: "to zero", in: "4", scale: -1, want: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustDec(tt.in).Round(tt.scale)
			if got.String() != tt.want {
				t.Errorf("Round(%s, %d).String() = %q, want %q", tt.in, tt.scale, got.String(), tt.want)
			}
			if !got.Equal(MustDec(tt.want)) {
				t.Errorf("Round(%s, %d) = %s, not equal to %s", tt.in, tt.scale, got, tt.want)
			}
			if s := string(got.AppendText(nil)); s != tt.want {
				t.Errorf("Round(%s, %d).AppendText = %q, want %q", tt.in, tt.scale, s, tt.want)
			}
			if s := string(AppendJSON(nil, got)); s != tt.want {
				t.Errorf("AppendJSON(Round(%s, %d)) = %s, want %s", tt.in, tt.scale, s, tt.want)
			}
		})
	}
}

func TestDecArithmetic(t *testing.T) {
	const maxI = "9223372036854775807"
	const minI = "-9223372036854775808"
	tests := []struct {
		name string
		a, b string
		add  string
		sub  string
		mul  string
	}{
		{name: "integers", a: "2", b: "3", add: "5", sub: "-1", mul: "6"},
		{name: "classic float trap", a: "0.1", b: "0.2", add: "0.3", sub: "-0.1", mul: "0.02"},
		{name: "scales align", a: "1.5", b: "0.25", add: "1.75", sub: "1.25", mul: "0.375"},
		{name: "trailing zeros kept", a: "1.50", b: "1", add: "2.50", sub: "0.50", mul: "1.50"},
		{name: "negative", a: "-2.5", b: "4", add: "1.5", sub: "-6.5", mul: "-10.0"},
		{name: "zero", a: "0", b: "-7.25", add: "-7.25", sub: "7.25", mul: "0.00"},
		{name: "add overflows int64", a: maxI, b: "1", add: "9223372036854775808", sub: "9223372036854775806", mul: maxI},
		{name: "sub overflows int64", a: minI, b: "1", add: "-9223372036854775807", sub: "-9223372036854775809", mul: minI},
		{name: "negate min int64", a: "0", b: minI, add: minI, sub: "9223372036854775808", mul: "0"},
		{name: "mul overflows int64", a: "4294967296", b: "4294967296", add: "8589934592", sub: "0", mul: "18446744073709551616"},
		{name: "mul min by minus one", a: minI, b: "-1", add: "-9223372036854775809", sub: "-9223372036854775807", mul: "9223372036854775808"},
		{name: "big and small", a: "100000000000000000000.5", b: "0.25", add: "100000000000000000000.75", sub: "100000000000000000000.25", mul: "25000000000000000000.125"},
		{name: "big back to small", a: "9223372036854775808", b: "-9223372036854775808", add: "0", sub: "18446744073709551616", mul: "-85070591730234615865843651857942052864"},
		{name: "scale alignment overflows", a: "92233720368547758.07", b: "0.001", add: "92233720368547758.071", sub: "92233720368547758.069", mul: "92233720368547.75807"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustDec(tt.a), MustDec(tt.b)
			if got := a.Add(b).String(); got != tt.add {
				t.Errorf("%s + %s = %s, want %s", tt.a, tt.b, got, tt.add)
			}
			if got := a.Sub(b).String(); got != tt.sub {
				t.Errorf("%s - %s = %s, want %s", tt.a, tt.b, got, tt.sub)
			}
			if got := a.Mul(b).String(); got != tt.mul {
				t.Errorf("%s * %s = %s, want %s", tt.a, tt.b, got, tt.mul)
			}
			// Results that fit an int64 are kept small.
			for _, r := range []Dec{a.Add(b), a.Sub(b), a.Mul(b)} {
				if r.big != nil && r.big.IsInt64() {
					t.Errorf("%s keeps a big.Int although it fits an int64", r)
				}
			}
		})
	}
}

func TestDecNeg(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"1.5", "-1.5"}, {"-1.5", "1.5"},
		{"-9223372036854775808", "9223372036854775808"},
		{"9223372036854775808", "-9223372036854775808"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := MustDec(tt.in).Neg().String(); got != tt.want {
				t.Errorf("Neg(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecDiv(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{name: "exact", a: "10", b: "4", want: "2.5"},
		{name: "exact integer", a: "10", b: "2", want: "5"},
		{name: "one third", a: "1", b: "3", want: "0.333333333333333333"},
		{name: "two thirds rounds up", a: "2", b: "3", want: "0.666666666666666667"},
		{name: "negative two thirds rounds away from zero", a: "-2", b: "3", want: "-0.666666666666666667"},
		{name: "negative divisor", a: "2", b: "-3", want: "-0.666666666666666667"},
		{name: "both negative", a: "-2", b: "-3", want: "0.666666666666666667"},
		{name: "half rounds up", a: "1", b: "16", want: "0.0625"},
		{name: "half at the last digit rounds away", a: "5", b: "1e19", want: "0.000000000000000001"},
		{name: "negative half at the last digit rounds away", a: "-5", b: "1e19", want: "-0.000000000000000001"},
		{name: "below half rounds to zero", a: "4", b: "1e19", want: "0"},
		{name: "decimal operands", a: "7.5", b: "0.25", want: "30"},
		{name: "dividend scale kept when larger", a: "1.00000000000000000000", b: "3", want: "0.33333333333333333333"},
		{name: "big dividend", a: "100000000000000000000000", b: "8", want: "12500000000000000000000"},
		{name: "big divisor", a: "1", b: "100000000000000000000", want: "0"},
		{name: "big by big", a: "200000000000000000000", b: "100000000000000000000", want: "2"},
		{name: "zero dividend", a: "0", b: "7", want: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MustDec(tt.a).Div(MustDec(tt.b))
			if err != nil {
				t.Fatalf("%s / %s: %v", tt.a, tt.b, err)
			}
			if got.String() != tt.want {
				t.Errorf("%s / %s = %s, want %s", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestDecDivByZero(t *testing.T) {
	for _, z := range []string{"0", "0.000", "-0"} {
		if _, err := MustDec("1").Div(MustDec(z)); err == nil || !strings.Contains(err.Error(), "division by zero") {
			t.Errorf("1 / %s: err = %v, want division by zero", z, err)
		}
	}
}

func TestDecRound(t *testing.T) {
	tests := []struct {
		in    string
		scale int32
		want  string
	}{
		{"1.25", 1, "1.3"},
		{"1.24", 1, "1.2"},
		{"-1.25", 1, "-1.3"},
		{"-1.24", 1, "-1.2"},
		{"2.5", 0, "3"},
		{"-2.5", 0, "-3"},
		{"0.5", 0, "1"},
		{"0.4999", 0, "0"},
		{"1.005", 2, "1.01"},
		{"9.995", 2, "10.00"},
		{"-9.995", 2, "-10.00"},
		{"1.5", 3, "1.500"},
		{"1.5", 1, "1.5"},
		{"123456789012345678901.5", 0, "123456789012345678902"},
		{"-123456789012345678901.45", 1, "-123456789012345678901.5"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := MustDec(tt.in).Round(tt.scale)
			if got.String() != tt.want {
				t.Errorf("Round(%s, %d) = %s, want %s", tt.in, tt.scale, got, tt.want)
			}
		})
	}
}

func TestDecTrim(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.500", "1.5"},
		{"1.000", "1"},
		{"0.000", "0"},
		{"100", "100"},
		{"-2.50", "-2.5"},
		{"0.010", "0.01"},
		{"123456789012345678901.1000", "123456789012345678901.1"},
		{"12345678901234567890.0000000", "12345678901234567890"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := MustDec(tt.in).Trim()
			if got.String() != tt.want {
				t.Errorf("Trim(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecCmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.50", "1.5", 0},
		{"1.5", "1.50", 0},
		{"0", "0.000", 0},
		{"-0", "0", 0},
		{"1", "2", -1},
		{"2", "1", 1},
		{"1.05", "1.1", -1},
		{"-1.05", "-1.1", 1},
		{"-1", "1", -1},
		{"100", "99.999", 1},
		{"9223372036854775808", "9223372036854775807", 1},
		{"-9223372036854775809", "-9223372036854775808", -1},
		{"12345678901234567890.50", "12345678901234567890.5", 0},
		{"0.0000000000000000000001", "0", 1},
		{"92233720368547758.07", "92233720368547758.070000", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			a, b := MustDec(tt.a), MustDec(tt.b)
			if got := a.Cmp(b); got != tt.want {
				t.Errorf("Cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := b.Cmp(a); got != -tt.want {
				t.Errorf("Cmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
			if got := a.Equal(b); got != (tt.want == 0) {
				t.Errorf("Equal(%s, %s) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestDecSign(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{{"0", 0}, {"0.00", 0}, {"-0.01", -1}, {"3", 1}, {"99999999999999999999", 1}, {"-99999999999999999999", -1}}
	for _, tt := range tests {
		if got := MustDec(tt.in).Sign(); got != tt.want {
			t.Errorf("Sign(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestDecInt64(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"42", 42, true},
		{"42.99", 42, true},
		{"-42.99", -42, true},
		{"0.5", 0, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775807.9", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"1e30", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := MustDec(tt.in).Int64()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Int64(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDecFloat64(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"0.1", 0.1},
		{"-2.5", -2.5},
		{"1e30", 1e30},
		{"123456789012345678901234567890", 1.2345678901234568e29},
		{"0.000001", 1e-6},
	}
	for _, tt := range tests {
		if got := MustDec(tt.in).Float64(); got != tt.want {
			t.Errorf("Float64(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecFromFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0.1, "0.1"},
		{-2.5, "-2.5"},
		{100, "100"},
		{1e21, "1000000000000000000000"},
		{0, "0"},
	}
	for _, tt := range tests {
		d, err := DecFromFloat(tt.in)
		if err != nil || d.String() != tt.want {
			t.Errorf("DecFromFloat(%v) = %s, %v; want %s", tt.in, d, err, tt.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := DecFromFloat(f); err == nil {
			t.Errorf("DecFromFloat(%v): want an error", f)
		}
	}
	if got := DecFromInt(-7).String(); got != "-7" {
		t.Errorf("DecFromInt(-7) = %s", got)
	}
}

func TestDecJSON(t *testing.T) {
	type doc struct {
		Price Dec  `json:"price"`
		Tax   *Dec `json:"tax"`
	}
	tests := []struct {
		name string
		in   doc
		want string
	}{
		{name: "exact number", in: doc{Price: MustDec("12.340")}, want: `{"price":12.340,"tax":null}`},
		{name: "big number", in: doc{Price: MustDec("-123456789012345678901234567890.5")}, want: `{"price":-123456789012345678901234567890.5,"tax":null}`},
		{name: "pointer", in: doc{Price: MustDec("0"), Tax: ptr(MustDec("0.07"))}, want: `{"price":0,"tax":0.07}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("Marshal = %s, want %s", b, tt.want)
			}
			var back doc
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if back.Price.String() != tt.in.Price.String() {
				t.Errorf("price came back as %s, want %s", back.Price, tt.in.Price)
			}
			if (back.Tax == nil) != (tt.in.Tax == nil) || (back.Tax != nil && back.Tax.String() != tt.in.Tax.String()) {
				t.Errorf("tax came back as %v, want %v", back.Tax, tt.in.Tax)
			}
		})
	}
}

func TestDecUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "number", in: `{"price": 1.50}`, want: "1.50"},
		{name: "string", in: `{"price": "1.50"}`, want: "1.50"},
		{name: "exponent", in: `{"price": 1e2}`, want: "100"},
		{name: "null leaves the value", in: `{"price": null}`, want: "9.99"},
		{name: "not a number", in: `{"price": "abc"}`, wantErr: true},
		{name: "bool", in: `{"price": true}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := struct {
				Price Dec `json:"price"`
			}{Price: MustDec("9.99")}
			err := json.Unmarshal([]byte(tt.in), &v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s): err = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && v.Price.String() != tt.want {
				t.Errorf("Unmarshal(%s) = %s, want %s", tt.in, v.Price, tt.want)
			}
		})
	}
}

func TestDecZeroValue(t *testing.T) {
	var d Dec
	if d.String() != "0" || d.Sign() != 0 || !d.Equal(MustDec("0.00")) {
		t.Errorf("zero Dec = %s, sign %d", d, d.Sign())
	}
	if diff := cmp.Diff("1.5", d.Add(MustDec("1.5")).String()); diff != "" {
		t.Errorf("0 + 1.5 (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

func TestMulOverflowsAgreesWithBigInt(t *testing.T) {
	edges := []int64{0, 1, -1, 2, -2, 1<<31 - 1, 1 << 31, -(1 << 31), -(1 << 31) - 1, 1<<32 + 7, -(1 << 32),
		3037000499, 3037000500, -3037000500, math.MaxInt64, math.MinInt64, math.MaxInt64 / 2, math.MinInt64 / 2}
	for _, a := range edges {
		for _, b := range edges {
			want := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
			over, p := mulOverflows(a, b)
			if fits := want.IsInt64(); over == fits || (fits && p != want.Int64()) {
				t.Errorf("mulOverflows(%d, %d) = %v, %d; want overflow %v, product %s", a, b, over, p, !fits, want)
			}
		}
	}
}
