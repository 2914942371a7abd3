package lookupcache

import (
	"context"
	"sync"
	"time"
)

// Limiter bounds the calls in flight with a limit that adapts to the
// service (additive increase, multiplicative decrease): while calls succeed
// and the limit is in use it grows by one per limit-many calls; a failed
// call or one much slower than the recent fastest shrinks it by decrease,
// at most once per recent round trip so that one burst of failures counts
// once. The limit stays between 1 and max. Safe for concurrent use.
type Limiter struct {
	max      float64
	decrease float64

	mu       sync.Mutex
	limit    float64
	inflight int
	waiters  []chan struct{} // FIFO
	lastDrop time.Time

	// Latency baseline: the fastest round trip of the previous window of
	// samples. A call slower than slowFactor × baseline + slowSlack is a
	// sign of a loaded service.
	baseline  time.Duration
	windowMin time.Duration
	samples   int
}

const (
	initialLimit = 8
	windowSize   = 100
	slowFactor   = 4
	slowSlack    = 5 * time.Millisecond
)

// NewLimiter returns a limiter allowing at most n calls (at least 1),
// starting from min(8, max).
func NewLimiter(n int) *Limiter {
	m := float64(max(n, 1))
	return &Limiter{max: m, decrease: 0.7, limit: min(initialLimit, m)}
}

// Acquire waits for a slot; the caller must Release it.
func (l *Limiter) Acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.inflight < int(l.limit) && len(l.waiters) == 0 {
		l.inflight++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil // the slot was handed over
	case <-ctx.Done():
		l.mu.Lock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				l.mu.Unlock()
				return ctx.Err()
			}
		}
		l.mu.Unlock()
		// The slot was handed over as ctx ended: give it back.
		l.Release(0, false, time.Time{})
		return ctx.Err()
	}
}

// Release gives back a slot taken by Acquire, telling how the call went:
// its round trip and whether it failed because of the service. A zero now
// releases without adapting (a call that was not made).
func (l *Limiter) Release(rtt time.Duration, failed bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	used := l.inflight
	l.inflight--
	if !now.IsZero() {
		l.adapt(rtt, failed, now, used)
	}
	for len(l.waiters) > 0 && l.inflight < int(l.limit) {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inflight++
		close(ch)
	}
}

func (l *Limiter) adapt(rtt time.Duration, failed bool, now time.Time, used int) {
	if !failed && rtt > 0 {
		if l.windowMin == 0 || rtt < l.windowMin {
			l.windowMin = rtt
		}
		if l.samples++; l.samples >= windowSize {
			l.baseline, l.windowMin, l.samples = l.windowMin, 0, 0
		}
		if l.baseline > 0 && rtt > slowFactor*l.baseline+slowSlack {
			failed = true
		}
	}
	if failed {
		if now.Sub(l.lastDrop) >= max(rtt, l.baseline) {
			l.limit = max(1, l.limit*l.decrease)
			l.lastDrop = now
		}
		return
	}
	// Grow only when the limit is what holds calls back: a limit nobody
	// reaches says nothing about the service.
	if float64(used) >= l.limit/2 {
		l.limit = min(l.max, l.limit+1/l.limit)
	}
}

// Limit is the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// InFlight is the number of slots taken.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}
