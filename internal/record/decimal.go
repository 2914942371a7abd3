package record

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Dec is an exact decimal number: unscaled × 10^-scale. Small values keep
// their unscaled part in an int64 (no allocation); larger ones use a big.Int.
// The zero value is 0.
type Dec struct {
	small int64
	big   *big.Int // non-nil when the value does not fit small
	scale int32
}

// MaxDecimalScale bounds the digits after the point that division produces.
const MaxDecimalScale = 18

// maxParseScale bounds the scale ParseDec gives, either way: without it a
// dozen bytes ("1e999999999") would make a number of a billion digits.
const maxParseScale = 1 << 14

var errDecSyntax = errors.New("not a decimal number")

// ParseDec parses "-12.340", "1e3", "+.5". It never rounds.
func ParseDec(s string) (Dec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Dec{}, errDecSyntax
	}
	exp := int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil {
			return Dec{}, errDecSyntax
		}
		exp = e
		s = s[:i]
	}
	neg := false
	switch {
	case s == "":
		return Dec{}, errDecSyntax
	case s[0] == '-':
		neg, s = true, s[1:]
	case s[0] == '+':
		s = s[1:]
	}
	digits := 0
	var scale int64
	var small uint64
	overflow := false
	seenPoint := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if seenPoint {
				scale++
			}
			if !overflow {
				if small > (math.MaxInt64-9)/10 {
					overflow = true
				} else {
					small = small*10 + uint64(c-'0')
				}
			}
		case c == '.' && !seenPoint:
			seenPoint = true
		default:
			return Dec{}, errDecSyntax
		}
	}
	if digits == 0 {
		return Dec{}, errDecSyntax
	}
	scale -= exp
	if scale > maxParseScale || scale < -maxParseScale {
		return Dec{}, errors.New("decimal exponent out of range")
	}
	var d Dec
	if overflow {
		b, ok := new(big.Int).SetString(strings.Replace(s, ".", "", 1), 10)
		if !ok {
			return Dec{}, errDecSyntax
		}
		if neg {
			b.Neg(b)
		}
		d = norm(b, int32(scale)) // 19 digits may still fit an int64
	} else {
		v := int64(small)
		if neg {
			v = -v
		}
		d = Dec{small: v, scale: int32(scale)}
	}
	if d.scale < 0 { // 1e3 → 1000, scale 0
		return d.rescale(0), nil
	}
	return d, nil
}

// MustDec is ParseDec for constants in code and tests.
func MustDec(s string) Dec {
	d, err := ParseDec(s)
	if err != nil {
		panic(fmt.Sprintf("record.MustDec(%q): %v", s, err))
	}
	return d
}

// DecFromInt returns v with scale 0.
func DecFromInt(v int64) Dec { return Dec{small: v} }

// DecFromFloat converts through the shortest decimal text of f, so 0.1
// becomes exactly 0.1.
func DecFromFloat(f float64) (Dec, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Dec{}, fmt.Errorf("%v is not a decimal number", f)
	}
	return ParseDec(strconv.FormatFloat(f, 'f', -1, 64))
}

// Scale is the number of digits after the point.
func (d Dec) Scale() int32 { return d.scale }

// Unscaled returns the decimal's digits as an integer, d × 10^Scale, when it
// fits in an int64.
func (d Dec) Unscaled() (int64, bool) { return d.small, d.big == nil }

func (d Dec) bigInt() *big.Int {
	if d.big != nil {
		return d.big
	}
	return big.NewInt(d.small)
}

func norm(b *big.Int, scale int32) Dec {
	if b.IsInt64() {
		return Dec{small: b.Int64(), scale: scale}
	}
	return Dec{big: b, scale: scale}
}

var bigTen = big.NewInt(10)

func pow10(n int32) *big.Int { return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil) }

// rescale returns d with the given scale; when it lowers the scale it
// truncates toward zero.
func (d Dec) rescale(scale int32) Dec {
	if scale == d.scale {
		return d
	}
	if scale > d.scale && d.big == nil {
		diff := scale - d.scale
		if diff <= 18 {
			m := int64(math.Pow10(int(diff)))
			if hi, lo := mulOverflows(d.small, m); !hi {
				return Dec{small: lo, scale: scale}
			}
		}
	}
	b := d.bigInt()
	if scale > d.scale {
		return norm(new(big.Int).Mul(b, pow10(scale-d.scale)), scale)
	}
	return norm(new(big.Int).Quo(b, pow10(d.scale-scale)), scale)
}

func mulOverflows(a, b int64) (bool, int64) {
	const half = 1 << 31
	if uint64(a+half) < 2*half && uint64(b+half) < 2*half {
		return false, a * b // both within ±2³¹: the product fits, no division needed
	}
	if a == 0 || b == 0 {
		return false, 0
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return true, 0
	}
	return false, c
}

func align(a, b Dec) (Dec, Dec) {
	if a.scale < b.scale {
		return a.rescale(b.scale), b
	}
	return a, b.rescale(a.scale)
}

// Add returns a+b exactly.
func (d Dec) Add(o Dec) Dec {
	a, b := align(d, o)
	if a.big == nil && b.big == nil {
		s := a.small + b.small
		if (s > a.small) == (b.small > 0) {
			return Dec{small: s, scale: a.scale}
		}
	}
	return norm(new(big.Int).Add(a.bigInt(), b.bigInt()), a.scale)
}

// Neg returns -d.
func (d Dec) Neg() Dec {
	if d.big == nil && d.small != math.MinInt64 {
		return Dec{small: -d.small, scale: d.scale}
	}
	return norm(new(big.Int).Neg(d.bigInt()), d.scale)
}

// Sub returns d-o exactly.
func (d Dec) Sub(o Dec) Dec { return d.Add(o.Neg()) }

// Mul returns d*o exactly (the scales add).
func (d Dec) Mul(o Dec) Dec {
	if d.big == nil && o.big == nil {
		if hi, p := mulOverflows(d.small, o.small); !hi {
			return Dec{small: p, scale: d.scale + o.scale}
		}
	}
	return norm(new(big.Int).Mul(d.bigInt(), o.bigInt()), d.scale+o.scale)
}

// Div returns d/o rounded half away from zero to MaxDecimalScale digits
// (or the operands' larger scale when that is greater).
func (d Dec) Div(o Dec) (Dec, error) {
	if o.Sign() == 0 {
		return Dec{}, errors.New("division by zero")
	}
	scale := int32(MaxDecimalScale)
	if d.scale > scale {
		scale = d.scale
	}
	// d/o = (dU/10^ds) / (oU/10^os); result unscaled = dU*10^(scale+os-ds+1) / oU, then round.
	shift := scale + o.scale - d.scale + 1
	num := d.bigInt()
	if shift >= 0 {
		num = new(big.Int).Mul(num, pow10(shift))
	} else {
		num = new(big.Int).Quo(num, pow10(-shift))
	}
	q := new(big.Int).Quo(num, o.bigInt())
	r := new(big.Int)
	q.QuoRem(q, bigTen, r)
	if r.CmpAbs(big.NewInt(5)) >= 0 {
		if q.Sign() < 0 || (q.Sign() == 0 && r.Sign() < 0) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return norm(q, scale).Trim(), nil
}

// Trim drops trailing zeros after the point.
func (d Dec) Trim() Dec {
	for d.scale > 0 {
		if d.big == nil {
			if d.small%10 != 0 {
				return d
			}
			d = Dec{small: d.small / 10, scale: d.scale - 1}
			continue
		}
		q, r := new(big.Int).QuoRem(d.big, bigTen, new(big.Int))
		if r.Sign() != 0 {
			return d
		}
		d = norm(q, d.scale-1)
	}
	return d
}

// Round rounds half away from zero to scale digits after the point.
func (d Dec) Round(scale int32) Dec {
	if scale >= d.scale {
		return d.rescale(scale)
	}
	half := Dec{small: 5, scale: scale + 1}
	if d.Sign() < 0 {
		half = half.Neg()
	}
	return d.Add(half).rescale(scale)
}

// Sign is -1, 0 or 1.
func (d Dec) Sign() int {
	if d.big != nil {
		return d.big.Sign()
	}
	switch {
	case d.small < 0:
		return -1
	case d.small > 0:
		return 1
	}
	return 0
}

// Cmp compares numerically: 1.50 equals 1.5.
func (d Dec) Cmp(o Dec) int {
	a, b := align(d, o)
	if a.big == nil && b.big == nil {
		switch {
		case a.small < b.small:
			return -1
		case a.small > b.small:
			return 1
		}
		return 0
	}
	return a.bigInt().Cmp(b.bigInt())
}

// Equal reports numeric equality.
func (d Dec) Equal(o Dec) bool { return d.Cmp(o) == 0 }

// Float64 is the nearest float64.
func (d Dec) Float64() float64 {
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// Int64 truncates toward zero; ok is false when it does not fit.
func (d Dec) Int64() (int64, bool) {
	t := d.rescale(0)
	if t.big != nil {
		return 0, false
	}
	return t.small, true
}

// String renders the exact value with its scale: "12.340".
func (d Dec) String() string {
	var digits string
	neg := false
	if d.big != nil {
		neg = d.big.Sign() < 0
		digits = new(big.Int).Abs(d.big).String()
	} else {
		u := uint64(d.small)
		if d.small < 0 {
			neg = true
			u = uint64(-(d.small + 1)) + 1
		}
		digits = strconv.FormatUint(u, 10)
	}
	if d.scale < 0 && digits != "0" { // Round(-1) rounds to tens
		digits += strings.Repeat("0", int(-d.scale))
	}
	if d.scale > 0 {
		if pad := int(d.scale) - len(digits) + 1; pad > 0 {
			digits = strings.Repeat("0", pad) + digits
		}
		p := len(digits) - int(d.scale)
		digits = digits[:p] + "." + digits[p:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// MarshalJSON writes the decimal as a JSON number, exactly.
func (d Dec) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON number or a string holding one; null leaves d
// as it is, like encoding/json does for its own types.
func (d *Dec) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := strings.Trim(string(b), `"`)
	v, err := ParseDec(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
