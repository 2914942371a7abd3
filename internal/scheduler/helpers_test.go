package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every goroutine a scheduler starts is owned and waited for: a test that
// leaves one behind fails the package.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait of a test: a test that waits this long has
// found a bug (a run that never comes), it never paces a test.
const waitLimit = 20 * time.Second

// t0 is where the tests' clocks start: 2024-06-01 10:00:00 UTC.
var t0 = at(10, 0, 0)

// harness runs a Scheduler on a FakeClock with a Run that records every
// job and behaves per pipeline as the test says.
type harness struct {
	t     testing.TB
	clock *FakeClock
	s     *Scheduler

	mu       sync.Mutex
	changed  chan struct{}
	jobs     []ranJob
	results  []finished
	started  int
	inRun    map[string]int
	maxInRun map[string]int
	inTotal  int
	maxTotal int
	blocks   map[*blocker]struct{}
	behave   map[string]func(ctx context.Context, j Job) error
	events   []string // hooks other than started/finished, in order
	skips    []Skip
	release  chan struct{} // closed at cleanup: hanging runs return
}

type ranJob struct {
	Job
	At  time.Time       // the clock when Run was called
	Ctx context.Context // the attempt's context
}

type finished struct {
	Job
	Result
}

// blocker is a Run blocked until one of its channels is closed.
type blocker struct{ chs []<-chan struct{} }

func (b *blocker) blocked() bool {
	for _, ch := range b.chs {
		select {
		case <-ch:
			return false
		default:
		}
	}
	return true
}

func newHarness(t testing.TB, o Options) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		clock:    NewFakeClock(t0),
		changed:  make(chan struct{}),
		inRun:    map[string]int{},
		maxInRun: map[string]int{},
		blocks:   map[*blocker]struct{}{},
		behave:   map[string]func(context.Context, Job) error{},
		release:  make(chan struct{}),
	}
	o.Clock = h.clock
	o.Run = h.run
	o.Hooks = h.hooks(o.Hooks)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	t.Cleanup(func() {
		close(h.release)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Drain(ctx); err != nil {
			t.Errorf("drain at cleanup: %v", err)
		}
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.s.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.settle()
}

func (h *harness) set(spec PipelineSpec) {
	h.t.Helper()
	if err := h.s.Set(spec); err != nil {
		h.t.Fatal(err)
	}
}

// on sets how Run behaves for a pipeline (nil: return nil at once).
func (h *harness) on(name string, f func(ctx context.Context, j Job) error) {
	h.mu.Lock()
	h.behave[name] = f
	h.mu.Unlock()
}

func (h *harness) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *harness) run(ctx context.Context, j Job) error {
	h.mu.Lock()
	h.jobs = append(h.jobs, ranJob{Job: j, At: h.clock.Now(), Ctx: ctx})
	h.inRun[j.Pipeline]++
	h.maxInRun[j.Pipeline] = max(h.maxInRun[j.Pipeline], h.inRun[j.Pipeline])
	h.inTotal++
	h.maxTotal = max(h.maxTotal, h.inTotal)
	f := h.behave[j.Pipeline]
	h.notifyLocked()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inRun[j.Pipeline]--
		h.inTotal--
		h.notifyLocked()
		h.mu.Unlock()
	}()
	if f == nil {
		return nil
	}
	return f(ctx, j)
}

// block blocks a Run until one of chs is closed; settle knows it is
// blocked as long as none is.
func (h *harness) block(chs ...<-chan struct{}) {
	b := &blocker{chs: append(chs, h.release)}
	h.mu.Lock()
	h.blocks[b] = struct{}{}
	h.notifyLocked()
	h.mu.Unlock()
	cases := make([]<-chan struct{}, len(b.chs))
	copy(cases, b.chs)
	waitAny(cases)
	h.mu.Lock()
	delete(h.blocks, b)
	h.mu.Unlock()
}

func waitAny(chs []<-chan struct{}) {
	switch len(chs) {
	case 1:
		<-chs[0]
	case 2:
		select {
		case <-chs[0]:
		case <-chs[1]:
		}
	default:
		select {
		case <-chs[0]:
		case <-chs[1]:
		case <-chs[2]:
		}
	}
}

// hang is a Run that ignores its contexts.
func (h *harness) hang(context.Context, Job) error {
	h.block()
	return nil
}

// honourSoft is a Run that returns when its context is cancelled.
func (h *harness) honourSoft(ctx context.Context, _ Job) error {
	h.block(ctx.Done())
	return context.Cause(ctx)
}

func (h *harness) hooks(extra Hooks) Hooks {
	event := func(format string, args ...any) {
		h.mu.Lock()
		h.events = append(h.events, fmt.Sprintf(format, args...))
		h.notifyLocked()
		h.mu.Unlock()
	}
	return Hooks{
		RunStarted: func(j Job) {
			h.mu.Lock()
			h.started++
			h.notifyLocked()
			h.mu.Unlock()
		},
		RunFinished: func(j Job, r Result) {
			h.mu.Lock()
			h.results = append(h.results, finished{j, r})
			h.notifyLocked()
			h.mu.Unlock()
		},
		RetryScheduled: func(next Job, at time.Time, cause error) {
			event("retry %s at %s", next, at.Format("15:04:05.000"))
		},
		Quarantined: func(p string, n int, cause error) {
			event("quarantined %s after %d: %v", p, n, firstLine(cause))
		},
		PanicRecovered: func(j Job, p *PanicError) { event("panic %s: %v", j, p.Value) },
		TimedOut:       func(j Job, d time.Duration) { event("timeout %s after %v", j, d) },
		Stuck:          func(j Job) { event("stuck %s", j) },
		LeaseLost:      func(j Job, err error) { event("lease lost %s", j) },
		Skipped: func(s Skip) {
			h.mu.Lock()
			h.skips = append(h.skips, s)
			h.notifyLocked()
			h.mu.Unlock()
		},
	}
}

func firstLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// blockedLocked counts the Runs blocked now.
func (h *harness) blockedLocked() int {
	n := 0
	for b := range h.blocks {
		if b.blocked() {
			n++
		}
	}
	return n
}

// waitFor waits until cond holds, or fails the test.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			h.t.Fatalf("waited %v for %s; statuses: %+v", waitLimit, what, h.s.Statuses())
		}
	}
}

// settle waits until every Run that is not blocked has returned and the
// scheduler has nothing left to do at the current fake time. The last
// check holds both locks: the scheduler quiet, with every attempt it has
// in Run a blocked one, is a state that lasts until the clock moves.
func (h *harness) settle() {
	h.t.Helper()
	balanced := func() bool { return h.started-len(h.results) == h.blockedLocked() }
	for {
		h.waitFor("runs to return", balanced)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		err := h.s.Settle(ctx)
		cancel()
		if err != nil {
			h.t.Fatalf("settle: %v; statuses: %+v", err, h.s.Statuses())
		}
		h.s.mu.Lock()
		h.mu.Lock()
		// A Run counted in started and not in results is inside Run, or
		// returning: RunFinished is called after its attempt leaves
		// phaseRunning, so a quiet scheduler has none returning.
		ok := h.s.quietLocked(h.clock.Now()) && balanced() && len(h.s.runs) == h.blockedLocked()
		h.mu.Unlock()
		h.s.mu.Unlock()
		if ok {
			return
		}
	}
}

// step advances the clock by d, n times, settling after each.
func (h *harness) step(d time.Duration, n int) {
	h.t.Helper()
	for range n {
		h.clock.Advance(d)
		h.settle()
	}
}

// logical returns the logical times that entered Run for a pipeline, in
// order, with their trigger and attempt unless plain is set.
func (h *harness) logical(name string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Time
	for _, j := range h.jobs {
		if j.Pipeline == name {
			out = append(out, j.Logical)
		}
	}
	return out
}

func (h *harness) jobsOf(name string) []ranJob {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ranJob
	for _, j := range h.jobs {
		if j.Pipeline == name {
			out = append(out, j)
		}
	}
	return out
}

func (h *harness) resultsOf(name string) []finished {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []finished
	for _, r := range h.results {
		if r.Pipeline == name {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) maxOf(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxInRun[name]
}

func (h *harness) maxAtOnce() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxTotal
}

func (h *harness) skipped() []Skip {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Skip(nil), h.skips...)
}

func (h *harness) eventsWith(sub string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		if strings.Contains(e, sub) {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) status(name string) Status {
	h.t.Helper()
	st, err := h.s.Status(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// fireTimesIn lists the fire times of s in (from, to].
func fireTimesIn(s Schedule, from, to time.Time) []time.Time {
	var out []time.Time
	for x := s.Next(from); !x.IsZero() && !x.After(to); x = s.Next(x) {
		out = append(out, x)
	}
	return out
}

func fmtTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.UTC().Format("15:04:05")
	}
	return strings.Join(s, " ")
}

func sortedTimes(ts []time.Time) []time.Time {
	out := append([]time.Time(nil), ts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

var errBoom = errors.New("boom")
