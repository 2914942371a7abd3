package alert

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, ceil := 100*time.Millisecond, 3*time.Second
	for _, tc := range []struct {
		attempt int
		full    time.Duration // before jitter
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{6, 3 * time.Second}, // 3.2s capped
		{40, 3 * time.Second},
		{70, 3 * time.Second}, // the shift would overflow
		{0, 3 * time.Second},  // not a retry number: the cap, never a panic
	} {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 200 {
			d := backoff(tc.attempt, base, ceil)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < tc.full/2 || hi > tc.full {
			t.Errorf("attempt %d: waits within [%v, %v], want within [%v, %v]", tc.attempt, lo, hi, tc.full/2, tc.full)
		}
		if lo == hi {
			t.Errorf("attempt %d: 200 waits all equal %v: no jitter", tc.attempt, lo)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 12 ", 12 * time.Second, true},
		{"99999999999999999999", 0, false}, // does not fit: not understood
		{"9999999999", 365 * 24 * time.Hour, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 01-Jun-25 10:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"soon", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "Sun, 01 Jun 2025 10:00:30 GMT", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Errorf("parseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}
