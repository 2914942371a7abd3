package file

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/record"
)

// exactTime compares times by instant and zone: the fast paths must build
// the very value ParseText builds.
var exactOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool {
		return a.Equal(b) && a.Location().String() == b.Location().String() && a.Format(time.RFC3339Nano) == b.Format(time.RFC3339Nano)
	}),
	cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 && a.Scale() == b.Scale() && a.String() == b.String() }),
}

var parseTypes = []record.Type{record.String, record.Int, record.Float, record.Decimal, record.Bool, record.Timestamp, record.Date, record.JSON, record.Bytes}

func TestBoxerParse(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		typ  record.Type
		loc  *time.Location
		want any
	}{
		{"42", record.Int, nil, int64(42)},
		{"-9223372036854775808", record.Int, nil, int64(-9223372036854775808)},
		{"1000", record.Int, nil, int64(1000)},
		{"+7", record.Int, nil, int64(7)},
		{"42.0", record.Int, nil, int64(42)},
		{"12.340", record.Decimal, nil, record.MustDec("12.340")},
		{"-0.05", record.Decimal, nil, record.MustDec("-0.05")},
		{"123456789012345678901234567890.5", record.Decimal, nil, record.MustDec("123456789012345678901234567890.5")},
		{"2024-02-29T23:59:59.5Z", record.Timestamp, nil, time.Date(2024, 2, 29, 23, 59, 59, 500000000, time.UTC)},
		{"2024-07-01 12:00:00", record.Timestamp, paris, time.Date(2024, 7, 1, 12, 0, 0, 0, paris)},
		{"1969-12-31T23:59:59.999999999Z", record.Timestamp, time.UTC, time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"0001-01-01T00:00:00Z", record.Timestamp, time.UTC, time.Time{}},
		{"2024-07-01", record.Date, nil, record.LocalDate(19905)},
		{"1.5e3", record.Float, nil, 1500.0},
		{"héllo", record.String, nil, "héllo"},
		{"", record.String, nil, ""},
		{"", record.Int, nil, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %q", tc.typ, tc.text), func(t *testing.T) {
			got, err := newBoxer(4).parse(tc.text, tc.typ, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, exactOpts...); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseText checks the fast paths against record.ParseText.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"0", "255", "256", "-12", "+3", "007", "99999999999999999999", "1.50", "-.5", "5.", "1e3",
		"2024-01-02T03:04:05Z", "2024-01-02 03:04:05.123", "2023-02-29T00:00:00", "2024-13-01T00:00:00", "2024-01-02T03:04:05+02:00",
		"2024-01-02T03:04:05.1234567891Z", "0000-01-01T00:00:00Z", "true", "2024-01-02", "\xff", " 1", "abc"} {
		f.Add(s, uint8(0))
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		f.Fatal(err)
	}
	locs := []*time.Location{nil, time.UTC, paris, time.FixedZone("", 3600)}
	f.Fuzz(func(t *testing.T, s string, sel uint8) {
		typ := parseTypes[int(sel)%len(parseTypes)]
		loc := locs[int(sel/16)%len(locs)]
		want, werr := record.ParseText(s, typ, loc)
		got, gerr := newBoxer(4).parse(s, typ, loc)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s %q: ParseText err %v, fast err %v", typ, s, werr, gerr)
		}
		if werr != nil {
			if werr.Error() != gerr.Error() {
				t.Fatalf("%s %q: errors differ: %v / %v", typ, s, werr, gerr)
			}
			return
		}
		if diff := cmp.Diff(want, got, exactOpts...); diff != "" {
			t.Fatalf("%s %q in %v (-ParseText +fast):\n%s", typ, s, loc, diff)
		}
	})
}

// TestBoxSurvivesGC keeps only the interfaces made from slabs and checks
// their values after collections that would reuse freed slabs.
func TestBoxSurvivesGC(t *testing.T) {
	var kept []any
	for i := 0; i < 50; i++ {
		bx := newBoxer(64)
		for j := 0; j < 100; j++ {
			n := int64(i*1000 + j + 1000)
			kept = append(kept, bx.ints.box(n), bx.strs.box(fmt.Sprint(n)), bx.decs.box(record.DecFromInt(n)),
				bx.times.box(time.Unix(n, 0).UTC()))
		}
		runtime.GC()
		// Garbage that would land in the slabs' memory if they were freed.
		for k := 0; k < 100; k++ {
			_ = make([]int64, 64)
		}
	}
	runtime.GC()
	for i := 0; i < 50; i++ {
		for j := 0; j < 100; j++ {
			n := int64(i*1000 + j + 1000)
			base := (i*100 + j) * 4
			if kept[base] != n || kept[base+1] != fmt.Sprint(n) || kept[base+2].(record.Dec).Cmp(record.DecFromInt(n)) != 0 ||
				!kept[base+3].(time.Time).Equal(time.Unix(n, 0)) {
				t.Fatalf("value %d changed: %v %v %v %v", n, kept[base], kept[base+1], kept[base+2], kept[base+3])
			}
		}
	}
}

// The fast timestamp path counts days from tables for the years they hold
// and by arithmetic around them: every day from 1890 to 2210, and each
// fraction length, gives the instant time.Date gives.
func TestFastTimestampEveryDay(t *testing.T) {
	for d := time.Date(1890, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2210; d = d.AddDate(0, 0, 1) {
		want := d.Add(23*time.Hour + 59*time.Minute + 58*time.Second + 123456789)
		frac := 1 + d.YearDay()%9 // 1 to 9 digits
		s := want.Format("2006-01-02T15:04:05.") + fmt.Sprintf("%09d", want.Nanosecond())[:frac] + "Z"
		want = want.Truncate(time.Duration([]int{0, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 100, 10, 1}[frac]))
		got, ok := fastTimestamp(s, nil)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("fastTimestamp(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-0xT00:00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567890Z"} {
		if _, ok := fastTimestamp(s, nil); ok {
			t.Errorf("fastTimestamp(%q) took it", s)
		}
	}
}
