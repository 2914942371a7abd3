package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

// fireTimes lists the fire times of s in [from, to), formatted in loc.
func fireTimes(s Schedule, from, to time.Time, loc *time.Location) []string {
	var out []string
	for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && t.Before(to); t = s.Next(t) {
		out = append(out, t.In(loc).Format("15:04 MST"))
	}
	return out
}

// dstCase is a day of fire times across a DST change of America/Chicago in
// 2024: on 2024-03-10 02:00 CST becomes 03:00 CDT (the hour 02:xx does not
// exist), on 2024-11-03 02:00 CDT becomes 01:00 CST (the hour 01:xx happens
// twice). A wall time that does not exist does not fire; one that happens
// twice fires twice, as robfig/cron documents.
type dstCase struct {
	name string
	spec string
	day  time.Time
	want []string // fire times of the day, local
}

func dstCases(t testing.TB) (*time.Location, []dstCase) {
	chicago := mustZone(t, "America/Chicago")
	spring := time.Date(2024, 3, 10, 0, 0, 0, 0, chicago)
	fall := time.Date(2024, 11, 3, 0, 0, 0, 0, chicago)
	return chicago, []dstCase{
		{"spring: 02:30 does not exist that day", "30 2 * * *", spring, nil},
		{"spring: the day after, 02:30 is back", "30 2 * * *", spring.AddDate(0, 0, 1), []string{"02:30 CDT"}},
		{"spring: 01:30 still fires once", "30 1 * * *", spring, []string{"01:30 CST"}},
		{"spring: hourly has no 02:00", "0 * * * *", spring, []string{
			"00:00 CST", "01:00 CST", "03:00 CDT", "04:00 CDT", "05:00 CDT", "06:00 CDT", "07:00 CDT", "08:00 CDT",
			"09:00 CDT", "10:00 CDT", "11:00 CDT", "12:00 CDT", "13:00 CDT", "14:00 CDT", "15:00 CDT", "16:00 CDT",
			"17:00 CDT", "18:00 CDT", "19:00 CDT", "20:00 CDT", "21:00 CDT", "22:00 CDT", "23:00 CDT"}},
		{"spring: quarter hours 1-3 skip the missing hour", "*/15 1-3 * * *", spring, []string{
			"01:00 CST", "01:15 CST", "01:30 CST", "01:45 CST", "03:00 CDT", "03:15 CDT", "03:30 CDT", "03:45 CDT"}},
		{"fall: 02:30 fires once", "30 2 * * *", fall, []string{"02:30 CST"}},
		{"fall: 01:30 fires at both instants", "30 1 * * *", fall, []string{"01:30 CDT", "01:30 CST"}},
		{"fall: hourly has two 01:00", "0 * * * *", fall, []string{
			"00:00 CDT", "01:00 CDT", "01:00 CST", "02:00 CST", "03:00 CST", "04:00 CST", "05:00 CST", "06:00 CST",
			"07:00 CST", "08:00 CST", "09:00 CST", "10:00 CST", "11:00 CST", "12:00 CST", "13:00 CST", "14:00 CST",
			"15:00 CST", "16:00 CST", "17:00 CST", "18:00 CST", "19:00 CST", "20:00 CST", "21:00 CST", "22:00 CST",
			"23:00 CST"}},
		{"fall: quarter hours 1-3 repeat the hour 01", "*/15 1-3 * * *", fall, []string{
			"01:00 CDT", "01:15 CDT", "01:30 CDT", "01:45 CDT", "01:00 CST", "01:15 CST", "01:30 CST", "01:45 CST",
			"02:00 CST", "02:15 CST", "02:30 CST", "02:45 CST", "03:00 CST", "03:15 CST", "03:30 CST", "03:45 CST"}},
		{"fall: @daily at midnight once", "@daily", fall, []string{"00:00 CDT"}},
	}
}

// TestScheduleDST is the table of fire times across the two DST changes.
func TestScheduleDST(t *testing.T) {
	chicago, cases := dstCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.spec, chicago)
			if err != nil {
				t.Fatal(err)
			}
			end := time.Date(c.day.Year(), c.day.Month(), c.day.Day()+1, 0, 0, 0, 0, chicago)
			got := fireTimes(s, c.day, end, chicago)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("fire times of %q on %s (-want +got):\n%s", c.spec, c.day.Format(time.DateOnly), diff)
			}
			// Fire times are distinct instants, strictly increasing: the
			// repeated 01:30 is two logical times, never one run twice.
			var prev time.Time
			for x := s.Next(c.day); x.Before(end); x = s.Next(x) {
				if !x.After(prev) {
					t.Fatalf("fire time %v not after %v", x, prev)
				}
				prev = x
			}
		})
	}
}

func TestParseZones(t *testing.T) {
	chicago := mustZone(t, "America/Chicago")
	tokyo := mustZone(t, "Asia/Tokyo")
	ref := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC) // 07:00 in Chicago, 21:00 in Tokyo
	cases := []struct {
		spec string
		zone *time.Location
		want time.Time
	}{
		{"0 6 * * *", nil, time.Date(2024, 6, 2, 6, 0, 0, 0, time.UTC)},
		{"0 6 * * *", chicago, time.Date(2024, 6, 2, 6, 0, 0, 0, chicago)},
		{"CRON_TZ=Asia/Tokyo 0 6 * * *", chicago, time.Date(2024, 6, 2, 6, 0, 0, 0, tokyo)},
		{"TZ=Asia/Tokyo 0 22 * * *", nil, time.Date(2024, 6, 1, 22, 0, 0, 0, tokyo)},
		{"  @hourly ", chicago, time.Date(2024, 6, 1, 8, 0, 0, 0, chicago)},
		{"@weekly", tokyo, time.Date(2024, 6, 2, 0, 0, 0, 0, tokyo)}, // Sunday
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			s, err := Parse(c.spec, c.zone)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(ref); !got.Equal(c.want) {
				t.Errorf("Next(%v) = %v, want %v", ref, got, c.want)
			}
			again, err := Parse(s.String(), nil)
			if err != nil {
				t.Fatalf("String() %q does not parse: %v", s.String(), err)
			}
			if got := again.Next(ref); !got.Equal(c.want) {
				t.Errorf("reparsed %q: Next = %v, want %v", s.String(), got, c.want)
			}
		})
	}
}

func TestEveryIsAlignedToTheEpoch(t *testing.T) {
	cases := []struct {
		spec  string
		after time.Time
		want  time.Time
	}{
		{"every 30s", time.Date(2024, 6, 1, 12, 0, 10, 0, time.UTC), time.Date(2024, 6, 1, 12, 0, 30, 0, time.UTC)},
		{"every 30s", time.Date(2024, 6, 1, 12, 0, 30, 0, time.UTC), time.Date(2024, 6, 1, 12, 1, 0, 0, time.UTC)},
		{"@every 5m", time.Date(2024, 6, 1, 12, 4, 59, 999, time.UTC), time.Date(2024, 6, 1, 12, 5, 0, 0, time.UTC)},
		{"every 7m", time.Unix(1, 0), time.Unix(7*60, 0)},
		{"every 7m", time.Unix(-1, 0), time.Unix(0, 0)},
		{"every 7m", time.Unix(-7*60, 0), time.Unix(0, 0)},
		{"every 1h30m", time.Unix(1, 0), time.Unix(5400, 0)},
	}
	for _, c := range cases {
		s, err := Parse(c.spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(c.after); !got.Equal(c.want) {
			t.Errorf("%s: Next(%v) = %v, want %v", c.spec, c.after, got, c.want)
		}
	}
	// The grid does not depend on where one starts: a restart at any
	// moment finds the same fire times.
	s, _ := Parse("every 7m", nil)
	a := s.Next(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	b := s.Next(time.Date(2024, 6, 1, 0, 3, 17, 0, time.UTC))
	if !a.Equal(b) || a.Unix()%(7*60) != 0 {
		t.Errorf("every 7m: %v and %v, want the same multiple of 7m since the epoch", a, b)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"TZ=America/Chicago", "needs a schedule"},
		{"CRON_TZ=", "needs a schedule"},
		{"CRON_TZ= * * * * *", "unknown time zone"},
		{"TZ=Nowhere/Town 0 * * * *", `unknown time zone "Nowhere/Town"`},
		{"TZ=Local 0 * * * *", "depends on the machine"},
		{"TZ=UTC TZ=UTC 0 * * * *", "more than one time zone"},
		{"TZ=UTC every 5m", "takes no time zone"},
		{"* * * *", "expected exactly 5 fields"},
		{"0 0 * * * *", "expected exactly 5 fields"},
		{"*/0 * * * *", "positive"},
		{"60 * * * *", "above maximum"},
		{"5-1 * * * *", "beyond end of range"},
		{"a * * * *", "not a cron expression"},
		{"@fortnightly", "unrecognized descriptor"},
		{"0 0 30 2 *", "never fires"},
		{",,, * * * *", "never fires"},
		{"every", "needs an interval"},
		{"every soon", "bad interval"},
		{"every 500ms", "shorter than 1s"},
		{"every -5m", "shorter than 1s"},
		{"every 0s", "shorter than 1s"},
	}
	for _, c := range cases {
		s, err := Parse(c.spec, nil)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, %v; want a *SpecError", c.spec, s, err)
			continue
		}
		if se.Spec != c.spec || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `schedule "`) {
			t.Errorf("Parse(%q) error %q: want it to name the spec and say %q", c.spec, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "TZ=America/Chicago 30 2 * * *", "every 30s", "@daily", "CRON_TZ=", "TZ=X", "1-5/2 1,2 * JAN-MAR MON-FRI", "0 0 29 2 *"} {
		f.Add(s)
	}
	ref := time.Date(2024, 3, 10, 1, 59, 59, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec, time.UTC)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %T is not a *SpecError", spec, err)
			}
			return
		}
		n := s.Next(ref)
		if n.IsZero() {
			return // a schedule may stop firing (robfig/cron looks five years ahead)
		}
		if !n.After(ref) {
			t.Fatalf("Parse(%q).Next(%v) = %v, not after", spec, ref, n)
		}
		again, err := Parse(s.String(), time.UTC)
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", s.String(), spec, err)
		}
		if m := again.Next(ref); !m.Equal(n) {
			t.Fatalf("%q and its String() %q disagree: %v, %v", spec, s.String(), n, m)
		}
	})
}
