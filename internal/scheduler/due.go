package scheduler

import (
	"fmt"
	"time"
)

// CatchUp is what a pipeline does with fire times it missed: while the
// daemon was down, while the pipeline was paused or quarantined, while its
// previous run was still going, or across a forward jump of the clock.
type CatchUp string

const (
	// CatchUpSkip runs none of the missed times: only a fire time that is
	// on time (at most Limits.Misfire late) runs.
	CatchUpSkip CatchUp = "skip"
	// CatchUpOnce runs the latest missed time once, now, and skips the
	// earlier ones. The default: an incremental source reads everything
	// that arrived meanwhile in that one run.
	CatchUpOnce CatchUp = "once"
	// CatchUpAll runs every missed time, oldest first, at most
	// Limits.MaxCatchUp of them; older ones beyond that are skipped and
	// reported.
	CatchUpAll CatchUp = "all"
)

// ParseCatchUp parses "skip", "once" or "all"; "" is CatchUpOnce.
func ParseCatchUp(s string) (CatchUp, error) {
	switch c := CatchUp(s); c {
	case "":
		return CatchUpOnce, nil
	case CatchUpSkip, CatchUpOnce, CatchUpAll:
		return c, nil
	}
	return "", fmt.Errorf("catch_up %q: want skip, once or all", s)
}

const (
	// DefaultMisfire is how late a fire time may start and still count as
	// on time: scheduling latency, a short restart or a busy machine must
	// not make a `skip` pipeline lose its run.
	DefaultMisfire = time.Minute
	// DefaultMaxCatchUp bounds the missed runs that CatchUpAll replays.
	DefaultMaxCatchUp = 1000
	// countBudget bounds the fire times counted to report how many were
	// skipped (about 90 days of a per-minute schedule); beyond it the count
	// is a lower bound. Finding the times to run never needs it.
	countBudget = 1 << 17
)

// Limits tune Due.
type Limits struct {
	Misfire    time.Duration // DefaultMisfire when zero
	MaxCatchUp int           // DefaultMaxCatchUp when zero
}

func (l Limits) withDefaults() Limits {
	if l.Misfire <= 0 {
		l.Misfire = DefaultMisfire
	}
	if l.MaxCatchUp <= 0 {
		l.MaxCatchUp = DefaultMaxCatchUp
	}
	return l
}

// Decision is which logical times of a schedule are due at a moment.
type Decision struct {
	// Run are the logical times to run now, oldest first.
	Run []time.Time
	// Through is the latest fire time in (last, now], zero when there is
	// none: every fire time up to it is decided (run or skipped), so the
	// next decision starts from it.
	Through time.Time
	// Skipped are the fire times in (last, now] that do not run.
	Skipped Skipped
	// Next is the first fire time after both last and now; zero when the
	// schedule never fires again.
	Next time.Time
}

// Skipped describes fire times that were decided not to run: Count of
// them, from First to Last. When Exact is false the gap was too long to
// count to its end and Count is a lower bound.
type Skipped struct {
	Count       int
	Exact       bool
	First, Last time.Time
}

// Due decides which fire times of s are due at now, given last, the latest
// logical time already decided (run, or skipped by an earlier decision).
// A zero last means the pipeline never ran: nothing before now is missed.
// When now is not after last (the clock went back), nothing is due and
// Next is after last: a logical time never runs twice.
//
// The latest fire time in (last, now] is on time when it is at most
// l.Misfire before now; the earlier ones are missed. CatchUpSkip runs the
// latest only if it is on time; CatchUpOnce runs the latest; CatchUpAll
// runs them all, oldest first, at most l.MaxCatchUp (the latest ones).
//
// The cost grows with the number of fire times returned, not with the
// length of the gap, except to count the skipped ones (bounded).
func Due(s Schedule, p CatchUp, last, now time.Time, l Limits) Decision {
	l = l.withDefaults()
	if last.IsZero() {
		last = now
	}
	if !now.After(last) {
		return Decision{Next: s.Next(last)}
	}
	first := s.Next(last)
	if first.IsZero() || first.After(now) {
		return Decision{Next: first}
	}
	keep := 1
	if p == CatchUpAll {
		keep = l.MaxCatchUp
	}
	start, w := tailWindow(s, last, now, keep)
	latest := w.tail[len(w.tail)-1]
	d := Decision{Through: latest, Next: s.Next(now)}
	switch p {
	case CatchUpSkip:
		if now.Sub(latest) <= l.Misfire {
			d.Run = w.tail[len(w.tail)-1:]
		}
	case CatchUpAll:
		d.Run = w.tail[max(0, len(w.tail)-keep):]
	default: // CatchUpOnce, and "" as its default
		d.Run = w.tail[len(w.tail)-1:]
	}
	d.Run = append([]time.Time(nil), d.Run...) // not aliasing the window
	inWindow := w.count - len(d.Run)
	if inWindow == 0 && start.Equal(last) {
		return d
	}
	// Skipped times exist: in the window before the kept ones, and before
	// the window when it does not reach back to last.
	d.Skipped = Skipped{Count: inWindow, Exact: true, First: first}
	d.Skipped.Last = w.tail[len(w.tail)-len(d.Run)-1]
	if !start.Equal(last) {
		n, exact := count(s, last, start, countBudget)
		d.Skipped.Count += n
		d.Skipped.Exact = exact
	}
	return d
}

// window is the fire times in (start, now]: how many, and the latest
// keep+1 of them in order.
type window struct {
	count int
	tail  []time.Time
}

// tailWindow finds a start in [last, now) whose window (start, now] holds
// more than keep fire times, or start = last when the whole gap holds
// fewer. It doubles the window from a minute, so its cost follows the
// number of fire times near now rather than the length of the gap.
func tailWindow(s Schedule, last, now time.Time, keep int) (time.Time, window) {
	gap := now.Sub(last) // saturates for gaps beyond 292 years
	for w := time.Minute; ; w *= 2 {
		start := last
		if w < gap && w < 1<<61 {
			start = now.Add(-w)
		}
		win := collect(s, start, now, keep+1)
		if start.Equal(last) || win.count > keep {
			return start, win
		}
	}
}

// collect walks (start, now], keeping the last n fire times.
func collect(s Schedule, start, now time.Time, n int) window {
	var w window
	head := 0 // w.tail is a ring once full; head is its oldest element
	for t := s.Next(start); !t.IsZero() && !t.After(now); t = s.Next(t) {
		w.count++
		if len(w.tail) < n {
			w.tail = append(w.tail, t)
			continue
		}
		w.tail[head] = t
		head = (head + 1) % n
	}
	if head != 0 {
		w.tail = append(append(make([]time.Time, 0, n), w.tail[head:]...), w.tail[:head]...)
	}
	return w
}

// count counts the fire times in (from, to], up to budget.
func count(s Schedule, from, to time.Time, budget int) (n int, exact bool) {
	for t := s.Next(from); !t.IsZero() && !t.After(to); t = s.Next(t) {
		if n == budget {
			return n, false
		}
		n++
	}
	return n, true
}
