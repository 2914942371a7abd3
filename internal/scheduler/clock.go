package scheduler

import (
	"context"
	"sync"
	"time"
)

// Clock is the scheduler's only source of time: every fire time, backoff,
// timeout and lease renewal is measured on it, so that a FakeClock drives
// the whole scheduler in tests without a sleep.
type Clock interface {
	// Now returns the current wall time.
	Now() time.Time
	// NewTimer returns a timer that sends on its channel once, after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc returns a timer that calls f once, after d. The system
	// clock calls f in its own goroutine, as time.AfterFunc does; a
	// FakeClock calls it in the goroutine that moves the clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending event of a Clock. Stop and Reset behave as those of
// time.Timer since Go 1.23: after either returns, no stale value is
// received from C.
type Timer interface {
	// C is the channel of a NewTimer timer; nil for an AfterFunc one.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was
	// pending.
	Stop() bool
	// Reset makes the timer fire after d from now; it reports whether it
	// was pending.
	Reset(d time.Duration) bool
}

// SystemClock returns the clock of the machine. Its timers, like
// time.Timer, measure elapsed time on the monotonic clock: a jump of the
// wall clock does not move them, and the scheduler rereads Now when they
// fire.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return sysTimer{time.AfterFunc(d, f)}
}

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time        { return t.t.C }
func (t sysTimer) Stop() bool                 { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// FakeClock is a Clock that moves only when told to, for tests: of the
// scheduler, and of the code that drives one (it is exported for them).
//
// Its timers fire at a time of the fake clock. Advance lets time pass:
// it fires, in order, each timer due before its end, with the clock
// reading that timer's time, then moves the clock to its end. Set jumps,
// as a wall clock set by hand or NTP does: it moves the clock first, then
// fires every timer that is due, all reading the new time. Both return
// after the callbacks they fire: an AfterFunc callback runs in the
// goroutine that moves the clock, and a timer it sets that is due fires
// in the same call. A NewTimer timer set for a time already come fires at
// once; an AfterFunc one set outside a callback, at the next Advance or
// Set (Advance(0) will do), so that its callback never runs under its
// caller's locks. Moving the clock back leaves pending timers waiting for
// their time to come again: unlike the system clock's, these timers
// follow the wall time.
type FakeClock struct {
	fire sync.Mutex // one Advance or Set fires at a time, in order

	mu      sync.Mutex
	now     time.Time
	seq     uint64
	pending []*fakeTimer
	waiters []fakeWaiter
}

type fakeWaiter struct {
	n  int
	ch chan struct{}
}

// NewFakeClock returns a FakeClock reading now.
func NewFakeClock(now time.Time) *FakeClock { return &FakeClock{now: now} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer whose channel receives the fake time once the
// clock reaches now+d.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc returns a timer that calls f once the clock reaches now+d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{c: c, f: f}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d, firing the timers due on the way
// at their times. A negative d moves it back, firing nothing.
func (c *FakeClock) Advance(d time.Duration) {
	c.fire.Lock()
	defer c.fire.Unlock()
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	if d > 0 {
		c.fireUntil(end, true)
	}
	c.mu.Lock()
	c.now = end
	c.mu.Unlock()
	c.fireUntil(end, false)
}

// Set moves the clock to t, forward or back, and fires the timers that
// are due: a jump of the wall clock.
func (c *FakeClock) Set(t time.Time) {
	c.fire.Lock()
	defer c.fire.Unlock()
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.fireUntil(t, false)
}

// Pending returns the number of timers waiting to fire.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// BlockUntil waits until at least n timers are pending, or ctx is done:
// the way for a test to know that the code under test is waiting on the
// clock before moving it.
func (c *FakeClock) BlockUntil(ctx context.Context, n int) error {
	c.mu.Lock()
	if len(c.pending) >= n {
		c.mu.Unlock()
		return nil
	}
	w := fakeWaiter{n: n, ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		for i, x := range c.waiters {
			if x.ch == w.ch {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return context.Cause(ctx)
	}
}

// fireUntil fires the timers due at end, in order of their times; when
// step is set, the clock reads each timer's time as it fires.
func (c *FakeClock) fireUntil(end time.Time, step bool) {
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.pending {
			if t.at.After(end) {
				continue
			}
			if next == nil || t.at.Before(next.at) || (t.at.Equal(next.at) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			c.mu.Unlock()
			return
		}
		c.removeLocked(next)
		if step && next.at.After(c.now) {
			c.now = next.at
		}
		now := c.now
		c.mu.Unlock()
		if next.f != nil {
			next.f()
			continue
		}
		select {
		case next.ch <- now:
		default: // a value not received yet; time.Timer drops the later one too
		}
	}
}

func (c *FakeClock) removeLocked(t *fakeTimer) bool {
	for i, x := range c.pending {
		if x == t {
			last := len(c.pending) - 1
			c.pending[i] = c.pending[last]
			c.pending[last] = nil
			c.pending = c.pending[:last]
			return true
		}
	}
	return false
}

type fakeTimer struct {
	c   *FakeClock
	ch  chan time.Time // nil for AfterFunc
	f   func()
	at  time.Time
	seq uint64
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	return t.c.removeLocked(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	t.drain()
	was := c.removeLocked(t)
	if t.ch != nil && d <= 0 {
		t.ch <- c.now // drained above: never blocks
		return was
	}
	c.seq++
	t.at, t.seq = c.now.Add(d), c.seq
	c.pending = append(c.pending, t)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if len(c.pending) >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
	return was
}

func (t *fakeTimer) drain() {
	if t.ch == nil {
		return
	}
	select {
	case <-t.ch:
	default:
	}
}
