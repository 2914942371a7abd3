package record

import (
	"math/rand/v2"
	"testing"
)

func TestDecAppendTextMatchesString(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "12.340", "-12.340", "0.001", "-0.001", "0.5", "9223372036854775807", "-9223372036854775808",
		"92233720368547758071", "-0.00000000000000000001", "1e3", "123456789.123456789", "100", "0.0",
		"5295.409455", "-5295.409455", "0.0000000000000000001", "-9.223372036854775808", "922337203685477580.7", "10.01", "-99.99", "1000000.000001",
		"0.9223372036854775807", "-0.0000000000000000009"} {
		d, err := ParseDec(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got, want := string(d.AppendText([]byte("x"))), "x"+d.String(); got != want {
			t.Errorf("%s: AppendText %q, String %q", s, got, want)
		}
	}
}

func TestDecAppendTextMatchesStringAtRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 200_000 {
		n := rng.Int64() >> rng.IntN(64)
		if rng.IntN(2) == 0 {
			n = -n
		}
		d := DecFromInt(n)
		if scale := int32(rng.IntN(24)); scale > 0 {
			d = Dec{small: n, scale: scale}
		}
		if got, want := string(d.AppendText(nil)), d.String(); got != want {
			t.Fatalf("%d scale %d: AppendText %q, String %q", n, d.Scale(), got, want)
		}
	}
}
