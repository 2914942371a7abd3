package record

import (
	"testing"
	"time"
)

// stdRFC3339Nano is what AppendRFC3339Nano must write, byte for byte.
func stdRFC3339Nano(dst []byte, t time.Time) []byte {
	return rfc3339(t).AppendFormat(dst, time.RFC3339Nano)
}

func TestAppendRFC3339Nano(t *testing.T) {
	amsterdam := mustZone(t, "Europe/Amsterdam")
	paris := mustZone(t, "Europe/Paris")
	kolkata := mustZone(t, "Asia/Kolkata")
	utc := time.UTC
	fixed := func(sec int) *time.Location { return time.FixedZone("", sec) }
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{name: "utc", t: time.Date(2024, 3, 5, 10, 20, 30, 0, utc), want: "2024-03-05T10:20:30Z"},
		{name: "fixed zone of offset zero is Z", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(0)), want: "2024-03-05T10:20:30Z"},
		{name: "plus 05:30", t: time.Date(2024, 3, 5, 10, 20, 30, 5e8, fixed(5*3600+30*60)), want: "2024-03-05T10:20:30.5+05:30"},
		{name: "Kolkata", t: time.Date(2024, 3, 5, 10, 20, 30, 0, kolkata), want: "2024-03-05T10:20:30+05:30"},
		{name: "minus 00:30", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(-30*60)), want: "2024-03-05T10:20:30-00:30"},
		{name: "Paris summer", t: time.Date(2024, 7, 1, 0, 0, 0, 0, paris), want: "2024-07-01T00:00:00+02:00"},
		{name: "minus 99:59", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(-(99*3600 + 59*60))), want: "2024-03-05T10:20:30-99:59"},

		// Offsets with seconds are rounded up to the minute first, and the
		// clock moves forward by as much.
		{name: "Amsterdam LMT 1900", t: time.Date(1900, 1, 1, 12, 0, 0, 0, amsterdam), want: "1900-01-01T12:00:28+00:20"},
		{name: "plus 30 seconds", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(30)), want: "2024-03-05T10:21:00+00:01"},
		{name: "minus 30 seconds is Z", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(-30)), want: "2024-03-05T10:21:00Z"},
		{name: "minus 90 seconds", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(-90)), want: "2024-03-05T10:21:00-00:01"},

		// The fraction loses its trailing zeros, and its point when zero.
		{name: "1 ns", t: time.Date(2024, 3, 5, 10, 20, 30, 1, utc), want: "2024-03-05T10:20:30.000000001Z"},
		{name: "100 ns", t: time.Date(2024, 3, 5, 10, 20, 30, 100, utc), want: "2024-03-05T10:20:30.0000001Z"},
		{name: "999999999 ns", t: time.Date(2024, 3, 5, 10, 20, 30, 999999999, utc), want: "2024-03-05T10:20:30.999999999Z"},
		{name: "1 ms", t: time.Date(2024, 3, 5, 10, 20, 30, 1e6, utc), want: "2024-03-05T10:20:30.001Z"},
		{name: "123456 µs", t: time.Date(2024, 3, 5, 10, 20, 30, 123456000, utc), want: "2024-03-05T10:20:30.123456Z"},

		// Calendar edges.
		{name: "leap day", t: time.Date(2024, 2, 29, 23, 59, 59, 0, utc), want: "2024-02-29T23:59:59Z"},
		{name: "day after leap day", t: time.Date(2024, 3, 1, 0, 0, 0, 0, utc), want: "2024-03-01T00:00:00Z"},
		{name: "1900 is not leap", t: time.Date(1900, 2, 28, 0, 0, 0, 0, utc).AddDate(0, 0, 1), want: "1900-03-01T00:00:00Z"},
		{name: "2000 is leap", t: time.Date(2000, 2, 29, 0, 0, 0, 0, utc), want: "2000-02-29T00:00:00Z"},
		{name: "new year", t: time.Date(2023, 12, 31, 23, 59, 59, 0, utc), want: "2023-12-31T23:59:59Z"},
		{name: "Unix epoch", t: time.Unix(0, 0).UTC(), want: "1970-01-01T00:00:00Z"},
		{name: "before the epoch", t: time.Unix(-1, 0).UTC(), want: "1969-12-31T23:59:59Z"},
		{name: "year 0", t: time.Date(0, 1, 1, 0, 0, 0, 0, utc), want: "0000-01-01T00:00:00Z"},
		{name: "year 0 leap day", t: time.Date(0, 2, 29, 12, 0, 0, 0, utc), want: "0000-02-29T12:00:00Z"},
		{name: "year 0 end", t: time.Date(0, 12, 31, 23, 59, 59, 0, utc), want: "0000-12-31T23:59:59Z"},
		{name: "year 0 from LMT", t: time.Date(0, 1, 1, 0, 0, 0, 0, fixed(-30)), want: "0000-01-01T00:00:30Z"},
		{name: "year 9999", t: time.Date(9999, 12, 31, 23, 59, 59, 999999999, utc), want: "9999-12-31T23:59:59.999999999Z"},
		{name: "year 9999 in a zone behind", t: time.Date(9999, 12, 31, 23, 30, 0, 0, fixed(-3600)), want: "9999-12-31T23:30:00-01:00"},

		// Outside the fast path: the standard library's text.
		{name: "year 10000", t: time.Date(10000, 1, 1, 0, 0, 0, 0, utc), want: "10000-01-01T00:00:00Z"},
		{name: "year 10000 in a zone ahead", t: time.Date(9999, 12, 31, 23, 30, 0, 0, utc).In(fixed(3600)), want: "10000-01-01T00:30:00+01:00"},
		{name: "year -1", t: time.Date(-1, 12, 31, 23, 59, 59, 0, utc), want: "-0001-12-31T23:59:59Z"},
		{name: "year -1 in a zone behind", t: time.Date(0, 1, 1, 0, 30, 0, 0, utc).In(fixed(-3600)), want: "-0001-12-31T23:30:00-01:00"},
		{name: "offset of 100 hours", t: time.Date(2024, 3, 5, 10, 20, 30, 0, fixed(100*3600)), want: "2024-03-05T10:20:30+100:00"},
		{name: "zero time", t: time.Time{}, want: "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendRFC3339Nano([]byte("x"), tt.t))
			if want := string(stdRFC3339Nano([]byte("x"), tt.t)); got != want {
				t.Errorf("AppendRFC3339Nano(%v) = %q, the standard library writes %q", tt.t, got, want)
			}
			if got != "x"+tt.want {
				t.Errorf("AppendRFC3339Nano(%v) = %q, want %q", tt.t, got, "x"+tt.want)
			}
		})
	}
}

// FuzzAppendRFC3339Nano checks AppendRFC3339Nano against the standard
// library, byte for byte, at any instant and in any fixed offset, and in
// named zones whose past offsets have seconds.
func FuzzAppendRFC3339Nano(f *testing.F) {
	for _, s := range []struct {
		sec, nsec int64
		off       int
	}{
		{0, 0, 0}, {1709634030, 123456789, 0}, {1709634030, 1, 5*3600 + 30*60}, {1709634030, 100, -30 * 60},
		{-2208988800, 0, 1172}, {-2208988800, 999999999, -30}, {-62167219200, 0, 0}, {-62167219200, 0, -1},
		{-62167219201, 0, 3600}, {253402300799, 999999999, 0}, {253402300799, 0, -3600}, {253402300800, 0, 0},
		{951782400, 0, 0}, {-1, 0, 0}, {1 << 62, 0, 0}, {-1 << 62, -1, 0}, {0, 0, 359999}, {0, 0, -360000},
	} {
		f.Add(s.sec, s.nsec, s.off)
	}
	zones := []*time.Location{time.UTC, mustZone(f, "Europe/Amsterdam"), mustZone(f, "America/New_York"), mustZone(f, "Asia/Kolkata")}
	f.Fuzz(func(t *testing.T, sec, nsec int64, off int) {
		u := time.Unix(sec, nsec)
		check := func(tm time.Time) {
			got := AppendRFC3339Nano([]byte("x"), tm)
			if want := stdRFC3339Nano([]byte("x"), tm); string(got) != string(want) {
				t.Fatalf("AppendRFC3339Nano(%d, %d in %v) = %q, the standard library writes %q", sec, nsec, tm.Location(), got, want)
			}
		}
		check(u.In(time.FixedZone("", off)))
		for _, z := range zones {
			check(u.In(z))
		}
	})
}

// TestAppendRFC3339NanoEveryDay compares every day of the years 0 to 9999,
// each at a different second of the day and in one of a few offsets,
// with the standard library's text.
func TestAppendRFC3339NanoEveryDay(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -(9*3600 + 30*60))}
	var got, want []byte
	for day := int64(0); ; day++ {
		sec := unixYear0 + day*86400 + day*7919%86400
		if sec >= unixYear10000 {
			break
		}
		tm := time.Unix(sec, day*104729%1e9).In(zones[day%3])
		got = AppendRFC3339Nano(got[:0], tm)
		want = stdRFC3339Nano(want[:0], tm)
		if string(got) != string(want) {
			t.Fatalf("AppendRFC3339Nano(%d s) = %q, the standard library writes %q", sec, got, want)
		}
	}
}

func BenchmarkAppendJSONTime(b *testing.B) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 3, 5, 10, 20, 30, 123456000, time.UTC)
	for _, bb := range []struct {
		name string
		t    time.Time
	}{
		{"UTC", base},
		{"UTCWhole", base.Truncate(time.Second)},
		{"Fixed", base.In(time.FixedZone("", 5*3600+30*60))},
		{"Paris", base.In(paris)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var v any = bb.t
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendJSON(buf[:0], v)
			}
		})
	}
}

func BenchmarkAppendJSONInt(b *testing.B) {
	for _, bb := range []struct {
		name string
		v    int64
	}{{"Small", 42}, {"Id", 1234567}, {"Large", -8123456789012345678}} {
		b.Run(bb.name, func(b *testing.B) {
			var v any = bb.v
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendJSON(buf[:0], v)
			}
		})
	}
}

func BenchmarkAppendJSONDec(b *testing.B) {
	for _, s := range []string{"833.07", "12345.67", "5295.409455", "27.94286720", "-0.5"} {
		b.Run(s, func(b *testing.B) {
			var v any = MustDec(s)
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendJSON(buf[:0], v)
			}
		})
	}
}
