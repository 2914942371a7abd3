package record

import "testing"

func TestDecAppendTextMatchesString(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "12.340", "-12.340", "0.001", "-0.001", "0.5", "9223372036854775807", "-9223372036854775808",
		"92233720368547758071", "-0.00000000000000000001", "1e3", "123456789.123456789", "100", "0.0"} {
		d, err := ParseDec(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got, want := string(d.AppendText([]byte("x"))), "x"+d.String(); got != want {
			t.Errorf("%s: AppendText %q, String %q", s, got, want)
		}
	}
}
