package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustParse(t testing.TB, spec string, zone *time.Location) Schedule {
	t.Helper()
	s, err := Parse(spec, zone)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// at is 2024-06-01 at h:m:s UTC.
func at(h, m, s int) time.Time { return time.Date(2024, 6, 1, h, m, s, 0, time.UTC) }

// minutes lists h:m0, h:m0+1, ... h:m1 (inclusive), at second 0.
func minutes(h, m0, m1 int) []time.Time {
	var out []time.Time
	for m := m0; m <= m1; m++ {
		out = append(out, at(h, m, 0))
	}
	return out
}

func TestDue(t *testing.T) {
	minutely := mustParse(t, "every 1m", nil)
	chicago := mustZone(t, "America/Chicago")
	hourlyChicago := mustParse(t, "0 * * * *", chicago)
	ct := func(h int, zone string) time.Time {
		off := map[string]int{"CST": -6, "CDT": -5}[zone]
		return time.Date(2024, 3, 10, h-off, 0, 0, 0, time.UTC)
	}
	lim := Limits{Misfire: 10 * time.Second}
	cases := []struct {
		name      string
		s         Schedule
		p         CatchUp
		last, now time.Time
		lim       Limits
		want      Decision
	}{
		{"nothing due yet", minutely, CatchUpOnce, at(10, 0, 0), at(10, 0, 59), lim,
			Decision{Next: at(10, 1, 0)}},
		{"on time runs under skip", minutely, CatchUpSkip, at(10, 0, 0), at(10, 1, 0), lim,
			Decision{Run: minutes(10, 1, 1), Through: at(10, 1, 0), Next: at(10, 2, 0)}},
		{"a little late is still on time", minutely, CatchUpSkip, at(10, 0, 0), at(10, 1, 9), lim,
			Decision{Run: minutes(10, 1, 1), Through: at(10, 1, 0), Next: at(10, 2, 0)}},
		{"skip: downtime runs nothing", minutely, CatchUpSkip, at(10, 0, 0), at(10, 30, 30), lim,
			Decision{Through: at(10, 30, 0), Next: at(10, 31, 0),
				Skipped: Skipped{Count: 30, Exact: true, First: at(10, 1, 0), Last: at(10, 30, 0)}}},
		{"skip: downtime ending on time runs the latest", minutely, CatchUpSkip, at(10, 0, 0), at(10, 30, 5), lim,
			Decision{Run: minutes(10, 30, 30), Through: at(10, 30, 0), Next: at(10, 31, 0),
				Skipped: Skipped{Count: 29, Exact: true, First: at(10, 1, 0), Last: at(10, 29, 0)}}},
		{"once: the latest missed runs", minutely, CatchUpOnce, at(10, 0, 0), at(10, 30, 30), lim,
			Decision{Run: minutes(10, 30, 30), Through: at(10, 30, 0), Next: at(10, 31, 0),
				Skipped: Skipped{Count: 29, Exact: true, First: at(10, 1, 0), Last: at(10, 29, 0)}}},
		{"all: every missed one, oldest first", minutely, CatchUpAll, at(10, 0, 0), at(10, 30, 30), lim,
			Decision{Run: minutes(10, 1, 30), Through: at(10, 30, 0), Next: at(10, 31, 0)}},
		{"all: capped to the latest", minutely, CatchUpAll, at(10, 0, 0), at(10, 30, 30), Limits{MaxCatchUp: 10},
			Decision{Run: minutes(10, 21, 30), Through: at(10, 30, 0), Next: at(10, 31, 0),
				Skipped: Skipped{Count: 20, Exact: true, First: at(10, 1, 0), Last: at(10, 20, 0)}}},
		{"clock back: nothing reruns", minutely, CatchUpAll, at(10, 0, 0), at(9, 30, 0), lim,
			Decision{Next: at(10, 1, 0)}},
		{"same instant", minutely, CatchUpAll, at(10, 0, 0), at(10, 0, 0), lim,
			Decision{Next: at(10, 1, 0)}},
		{"never ran: nothing is missed", minutely, CatchUpAll, time.Time{}, at(10, 0, 30), lim,
			Decision{Next: at(10, 1, 0)}},
		{"all across spring forward", hourlyChicago, CatchUpAll, ct(0, "CST"), ct(4, "CDT"), lim,
			Decision{Run: []time.Time{ct(1, "CST"), ct(3, "CDT"), ct(4, "CDT")}, Through: ct(4, "CDT"), Next: ct(5, "CDT")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Due(c.s, c.p, c.last, c.now, c.lim)
			if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Due (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDueLongGap: a year of downtime of a per-second schedule is decided
// without walking it; the skipped count is then a lower bound.
func TestDueLongGap(t *testing.T) {
	s := mustParse(t, "every 1s", nil)
	last, now := at(0, 0, 0).AddDate(-1, 0, 0), at(12, 0, 0)
	start := time.Now()
	d := Due(s, CatchUpAll, last, now, Limits{})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Due over a year took %v", el)
	}
	if len(d.Run) != DefaultMaxCatchUp || !d.Run[len(d.Run)-1].Equal(now) || !d.Run[0].Equal(now.Add(-(DefaultMaxCatchUp-1)*time.Second)) {
		t.Errorf("Run = %d times from %v to %v; want the latest %d up to %v", len(d.Run), d.Run[0], d.Run[len(d.Run)-1], DefaultMaxCatchUp, now)
	}
	if d.Skipped.Exact || d.Skipped.Count < countBudget || !d.Skipped.First.Equal(last.Add(time.Second)) ||
		!d.Skipped.Last.Equal(d.Run[0].Add(-time.Second)) {
		t.Errorf("Skipped = %+v; want an inexact count of at least %d from %v to %v", d.Skipped, countBudget, last.Add(time.Second), d.Run[0].Add(-time.Second))
	}
}

// TestDueMatchesBruteForce checks Due against the definition, computed by
// walking every fire time, on random gaps of various schedules.
func TestDueMatchesBruteForce(t *testing.T) {
	chicago := mustZone(t, "America/Chicago")
	specs := []string{"every 1s", "every 7s", "every 1m", "*/5 * * * *", "0 * * * *", "30 2 * * *", "*/15 1-3 * * *", "0 9 * * MON-FRI"}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC)
	for _, spec := range specs {
		s := mustParse(t, spec, chicago)
		for i := range 150 {
			last := base.Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
			gap := time.Duration(rng.Int64N(int64([]time.Duration{time.Minute, time.Hour, 30 * time.Hour}[i%3])))
			now := last.Add(gap)
			lim := Limits{Misfire: time.Duration(rng.Int64N(int64(2 * time.Minute))), MaxCatchUp: 1 + rng.IntN(40)}
			var all []time.Time
			for x := s.Next(last); !x.After(now); x = s.Next(x) {
				all = append(all, x)
			}
			for _, p := range []CatchUp{CatchUpSkip, CatchUpOnce, CatchUpAll} {
				d := Due(s, p, last, now, lim)
				var run []time.Time
				if n := len(all); n > 0 {
					switch p {
					case CatchUpSkip:
						if now.Sub(all[n-1]) <= lim.Misfire {
							run = all[n-1:]
						}
					case CatchUpOnce:
						run = all[n-1:]
					case CatchUpAll:
						run = all[max(0, n-lim.MaxCatchUp):]
					}
				}
				where := fmt.Sprintf("%s %s last=%v now=%v lim=%+v", spec, p, last, now, lim)
				if diff := cmp.Diff(run, d.Run, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("%s: Run (-want +got):\n%s", where, diff)
				}
				if skipped := len(all) - len(run); d.Skipped.Count != skipped || (skipped > 0 && !d.Skipped.Exact) {
					t.Fatalf("%s: Skipped %+v, want %d exactly", where, d.Skipped, skipped)
				} else if skipped > 0 && (!d.Skipped.First.Equal(all[0]) || !d.Skipped.Last.Equal(all[skipped-1])) {
					t.Fatalf("%s: Skipped %+v, want from %v to %v", where, d.Skipped, all[0], all[skipped-1])
				}
				if len(all) > 0 && !d.Through.Equal(all[len(all)-1]) {
					t.Fatalf("%s: Through %v, want %v", where, d.Through, all[len(all)-1])
				}
				if want := s.Next(now); !d.Next.Equal(want) {
					t.Fatalf("%s: Next %v, want %v", where, d.Next, want)
				}
			}
		}
	}
}
