package lookupcache

import (
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State int

// The states of a breaker.
const (
	Closed   State = iota // calls go through
	Open                  // calls fail at once until the cooldown has passed
	HalfOpen              // one call probes the service; the others wait for it
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "closed"
}

// Breaker opens after a number of consecutive failed calls, stays open for
// a cooldown, then lets one call probe the service: its success closes the
// breaker, its failure opens it for another cooldown. Safe for concurrent
// use. Callers that are refused can wait on the channel Allow returns,
// which is closed at the next change of state.
type Breaker struct {
	failures int
	cooldown time.Duration
	onChange func(from, to State, cause error)

	mu        sync.Mutex
	state     State
	count     int // consecutive failures while closed
	openUntil time.Time
	probing   bool
	changed   chan struct{}
}

// NewBreaker returns a closed breaker that opens after failures consecutive
// failures (at least 1) for cooldown. onChange, when not nil, is called on
// every change of state, outside the breaker's lock.
func NewBreaker(failures int, cooldown time.Duration, onChange func(from, to State, cause error)) *Breaker {
	return &Breaker{failures: max(failures, 1), cooldown: cooldown, onChange: onChange, changed: make(chan struct{})}
}

// State returns the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow reports whether a call may go now. When it may not, changed is
// closed at the breaker's next change of state and until is when an open
// breaker lets a probe through (zero while a probe is out). A caller that
// was allowed must report Success, Failure or Abandon.
func (b *Breaker) Allow(now time.Time) (ok bool, changed <-chan struct{}, until time.Time) {
	b.mu.Lock()
	switch b.state {
	case Closed:
		b.mu.Unlock()
		return true, nil, time.Time{}
	case Open:
		if now.Before(b.openUntil) {
			defer b.mu.Unlock()
			return false, b.changed, b.openUntil
		}
		b.probing = true
		b.notify(b.move(HalfOpen, nil))
		return true, nil, time.Time{}
	}
	defer b.mu.Unlock()
	if b.probing {
		return false, b.changed, time.Time{}
	}
	b.probing = true // the previous probe was abandoned
	return true, nil, time.Time{}
}

// Success reports a call that reached the service.
func (b *Breaker) Success() {
	b.mu.Lock()
	b.count = 0
	if b.state == Closed {
		b.mu.Unlock()
		return
	}
	b.probing = false
	b.notify(b.move(Closed, nil))
}

// Failure reports a call that failed because of the service: refused, timed
// out, an overload or server error.
func (b *Breaker) Failure(now time.Time, cause error) {
	b.mu.Lock()
	switch b.state {
	case Closed:
		b.count++
		if b.count < b.failures {
			b.mu.Unlock()
			return
		}
	case Open:
		b.mu.Unlock()
		return // a call that started before the breaker opened
	}
	b.count = 0
	b.probing = false
	b.openUntil = now.Add(b.cooldown)
	b.notify(b.move(Open, cause))
}

// Abandon reports a call that ended without telling anything about the
// service (its caller gave up): a probe's slot goes to the next caller.
func (b *Breaker) Abandon() {
	b.mu.Lock()
	if b.state != HalfOpen || !b.probing {
		b.mu.Unlock()
		return
	}
	b.probing = false
	b.notify(b.move(HalfOpen, nil))
}

// change is a change of state to announce once the lock is released.
type change struct {
	ch       chan struct{}
	from, to State
	cause    error
}

// move sets the state with b.mu held and returns what to announce.
func (b *Breaker) move(to State, cause error) change {
	c := change{ch: b.changed, from: b.state, to: to, cause: cause}
	b.state = to
	b.changed = make(chan struct{})
	return c
}

// notify releases b.mu, wakes the waiters and tells onChange.
func (b *Breaker) notify(c change) {
	b.mu.Unlock()
	close(c.ch)
	if b.onChange != nil && c.from != c.to {
		b.onChange(c.from, c.to, c.cause)
	}
}
