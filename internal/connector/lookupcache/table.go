package lookupcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Key is one key to fetch: its values and their canonical text
// (connector.KeyString), which answers are matched by.
type Key struct {
	Vals []any
	Str  string
}

// Result is a Fetcher's answer for one key.
type Result struct {
	Row record.Row
	OK  bool // false: the service has no record for the key
	// Err is a problem of this key alone, not of the service: an answer
	// that does not convert, a key the service refuses. It is not retried
	// nor cached and does not count against the breaker; wrap it with
	// connector.Reject to reject the record rather than fail the run.
	Err error
}

// Fetcher asks a service for keys.
type Fetcher interface {
	// Fetch answers keys (at most Options.BatchSize of them) into out,
	// which has len(keys) entries. ctx bounds the call (the per-call
	// timeout). An error is the failure of the whole call: mark it
	// connector.Transient when the service is at fault (refused, timed out,
	// overloaded, a server error) so that it is retried and counts against
	// the breaker, with RetryAfter when the service said when to come back;
	// any other error fails the run at once (a refused login).
	Fetch(ctx context.Context, keys []Key, out []Result) error
}

// Options build a Table.
type Options struct {
	Name string   // "http lookup customers": starts every error
	Keys []string // the key fields, in the order lookups give them
	Config
	// BatchSize is how many keys one Fetch takes at most; 1 when zero.
	BatchSize int
	Logger    *slog.Logger

	// Sleep waits before a retry; a timer on ctx when nil. Tests set it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Table answers lookups by key through a Fetcher. It implements
// connector.Table (but Schema and Close, which the connector adds),
// connector.BatchTable and connector.CacheStats.
type Table struct {
	f       Fetcher
	o       Options
	cache   *Cache
	breaker *Breaker
	limiter *Limiter
	log     *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight

	calls, failed, opened, closed atomic.Int64
	waiting                       atomic.Int64

	onWait func() // tests: a lookup starts waiting for another's call
}

// flight is one key being fetched; waiters read its result once done is
// closed.
type flight struct {
	key  Key
	done chan struct{}
	res  Result
	err  error // of the call
}

// MaxRetryAfter bounds how long a server's Retry-After is honoured.
const MaxRetryAfter = time.Minute

// maxBackoff bounds the exponential backoff.
const maxBackoff = 10 * time.Second

// New returns a table fetching through f.
func New(f Fetcher, o Options) *Table {
	if o.BatchSize < 1 {
		o.BatchSize = 1
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	t := &Table{f: f, o: o, cache: NewCache(o.Cache.Size), limiter: NewLimiter(o.Concurrency), log: o.Logger, flights: map[string]*flight{}}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.breaker = NewBreaker(o.Breaker.Failures, time.Duration(o.Breaker.Cooldown), t.breakerChanged)
	return t
}

func (t *Table) breakerChanged(from, to State, cause error) {
	switch to {
	case Open:
		t.opened.Add(1)
		msg := ""
		if cause != nil {
			msg = cause.Error()
		}
		t.log.Warn("lookup: circuit opened: no call until the cooldown has passed", "lookup", t.o.Name,
			"after", from.String(), "cooldown", time.Duration(t.o.Breaker.Cooldown).String(), "error", msg)
	case Closed:
		t.closed.Add(1)
		t.log.Info("lookup: circuit closed: the service answers again", "lookup", t.o.Name)
	}
}

// Keys implements connector.Table.
func (t *Table) Keys() []string { return t.o.Keys }

// CacheStats implements connector.CacheStats.
func (t *Table) CacheStats() (hits, misses int64) { return t.cache.Stats() }

// Stats are counters for tests and logs.
type Stats struct {
	Calls          int64 // Fetch calls made
	Failed         int64 // of them, failed because of the service
	Opened, Closed int64 // breaker transitions
	Breaker        State
	Limit          int // the adaptive concurrency limit now
	Waiting        int64
	Cached         int // answers in the cache
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	return Stats{Calls: t.calls.Load(), Failed: t.failed.Load(), Opened: t.opened.Load(), Closed: t.closed.Load(),
		Breaker: t.breaker.State(), Limit: t.limiter.Limit(), Waiting: t.waiting.Load(), Cached: t.cache.Len()}
}

// Get implements connector.Table.
func (t *Table) Get(ctx context.Context, key []any) (record.Row, bool, error) {
	if len(key) == len(t.o.Keys) {
		var buf [64]byte
		if row, ok, hit := t.cache.Get(connector.AppendKey(buf[:0], key), time.Now()); hit {
			return row, ok, nil
		}
	}
	var out [1]connector.Answer
	t.getBatch(ctx, [][]any{key}, out[:], true)
	return out[0].Row, out[0].OK, out[0].Err
}

// GetBatch implements connector.BatchTable.
func (t *Table) GetBatch(ctx context.Context, keys [][]any, out []connector.Answer) {
	t.getBatch(ctx, keys, out, false)
}

// getBatch answers keys; checked says the cache was just asked for a
// single key (Get), which is then not asked again.
func (t *Table) getBatch(ctx context.Context, keys [][]any, out []connector.Answer, checked bool) {
	type wait struct {
		i int
		f *flight
	}
	var buf []byte
	todo := make([]int, 0, len(keys))
	for i, k := range keys {
		switch {
		case k == nil:
		case len(k) != len(t.o.Keys):
			out[i].Err = fmt.Errorf("%s: takes %d key value(s) (%s), got %d", t.o.Name, len(t.o.Keys), strings.Join(t.o.Keys, ", "), len(k))
		default:
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		var own []*flight
		var waits []wait
		now := time.Now()
		for _, i := range todo {
			buf = connector.AppendKey(buf[:0], keys[i])
			if !checked {
				if row, ok, hit := t.cache.Get(buf, now); hit {
					out[i] = connector.Answer{Row: row, OK: ok}
					continue
				}
			}
			t.mu.Lock()
			f := t.flights[string(buf)]
			if f == nil {
				// A call for the key that ended since the cache missed
				// left its answer there (before it left flights).
				if row, ok, hit := t.cache.GetAgain(buf, now); hit {
					t.mu.Unlock()
					out[i] = connector.Answer{Row: row, OK: ok}
					continue
				}
				f = &flight{key: Key{Vals: append([]any(nil), keys[i]...), Str: string(buf)}, done: make(chan struct{})}
				t.flights[f.key.Str] = f
				own = append(own, f)
			}
			t.mu.Unlock()
			waits = append(waits, wait{i, f})
		}
		checked = false
		if len(own) > 0 {
			t.fetchAll(ctx, own)
		}
		todo = todo[:0]
		for _, w := range waits {
			select {
			case <-w.f.done:
			default:
				t.waiting.Add(1)
				if t.onWait != nil {
					t.onWait()
				}
				select {
				case <-w.f.done:
				case <-ctx.Done():
				}
				t.waiting.Add(-1)
			}
			select {
			case <-w.f.done:
			default:
				out[w.i].Err = ctx.Err()
				continue
			}
			if w.f.err != nil && isContextErr(w.f.err) && ctx.Err() == nil {
				todo = append(todo, w.i) // the call was another caller's, which gave up: ask again
				continue
			}
			if w.f.err != nil {
				out[w.i].Err = w.f.err
				continue
			}
			out[w.i] = connector.Answer{Row: w.f.res.Row, OK: w.f.res.OK, Err: w.f.res.Err}
		}
	}
}

// fetchAll fetches the keys of flights this caller owns, in calls of at
// most BatchSize keys run by at most Concurrency goroutines, and completes
// every flight.
func (t *Table) fetchAll(ctx context.Context, own []*flight) {
	n := (len(own) + t.o.BatchSize - 1) / t.o.BatchSize
	chunk := func(c int) []*flight { return own[c*t.o.BatchSize : min((c+1)*t.o.BatchSize, len(own))] }
	workers := min(n, t.o.Concurrency)
	if workers <= 1 {
		for c := range n {
			t.resolve(ctx, chunk(c))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := int(next.Add(1) - 1); c < n; c = int(next.Add(1) - 1) {
				t.resolve(ctx, chunk(c))
			}
		})
	}
	wg.Wait()
}

// resolve makes the call for one chunk of flights, keeps the answers and
// wakes the waiters.
func (t *Table) resolve(ctx context.Context, fs []*flight) {
	keys := make([]Key, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	res := make([]Result, len(fs))
	err := t.call(ctx, keys, res)
	now := time.Now()
	for i, f := range fs {
		if err != nil {
			f.err = err
		} else {
			f.res = res[i]
			ttl := time.Duration(t.o.Cache.TTL)
			if !f.res.OK {
				ttl = time.Duration(t.o.Cache.NegativeTTL)
			}
			if f.res.Err == nil && ttl > 0 {
				t.cache.Put(f.key.Str, f.res.Row, f.res.OK, now.Add(ttl))
			}
		}
		t.mu.Lock()
		delete(t.flights, f.key.Str)
		t.mu.Unlock()
		close(f.done)
	}
}

// errCircuitOpen is the cause of a lookup refused by the open breaker.
var errCircuitOpen = errors.New("circuit open after repeated failures")

// call asks the service for keys with the per-call timeout, retries,
// breaker and adaptive concurrency, then applies the unavailability
// policy. It returns nil with res filled, ctx's error, a permanent error of
// the service, or — when the service stays down — an error wrapping
// connector.ErrReject (policy reject) or connector.ErrUnavailable (policy
// wait, after MaxWait).
func (t *Table) call(ctx context.Context, keys []Key, res []Result) error {
	var firstFail time.Time
	var last error
	attempt := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		ok, changed, until := t.breaker.Allow(now)
		if !ok {
			cause := errCircuitOpen
			if last != nil {
				cause = fmt.Errorf("%w; last error: %w", errCircuitOpen, last)
			}
			if firstFail.IsZero() {
				firstFail = now
			}
			if err := t.unavailable(keys, cause, firstFail, now); err != nil {
				return err
			}
			deadline := firstFail.Add(time.Duration(t.o.MaxWait))
			if until.IsZero() || until.After(deadline) {
				until = deadline
			}
			t.waiting.Add(1)
			werr := waitChange(ctx, changed, until.Sub(now))
			t.waiting.Add(-1)
			if werr != nil {
				return werr
			}
			continue
		}
		if err := t.limiter.Acquire(ctx); err != nil {
			t.breaker.Abandon()
			return err
		}
		t.calls.Add(1)
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, time.Duration(t.o.Timeout))
		clear(res)
		err := t.f.Fetch(cctx, keys, res)
		timedOut := err != nil && cctx.Err() != nil && ctx.Err() == nil
		cancel()
		end := time.Now()
		if err != nil && ctx.Err() != nil {
			t.limiter.Release(0, false, time.Time{})
			t.breaker.Abandon()
			return ctx.Err()
		}
		failure := err != nil && (timedOut || errors.Is(err, connector.ErrTransient))
		t.limiter.Release(end.Sub(start), failure, end)
		if err == nil {
			t.breaker.Success()
			return nil
		}
		if !failure {
			t.breaker.Success() // the service answered: it is up, the call is wrong
			return fmt.Errorf("%s: %w", t.o.Name, err)
		}
		t.failed.Add(1)
		if timedOut {
			err = connector.Transient(fmt.Errorf("no answer within %s: %w", time.Duration(t.o.Timeout), err))
		}
		last = err
		t.breaker.Failure(end, err)
		if firstFail.IsZero() {
			firstFail = start
		}
		attempt++
		if attempt > t.o.Retries {
			if err := t.unavailable(keys, err, firstFail, end); err != nil {
				return err
			}
		}
		d := Backoff(min(attempt, 20), time.Duration(t.o.Backoff))
		if hint, ok := RetryAfter(err); ok {
			d = min(hint, MaxRetryAfter)
		}
		if t.o.OnUnavailable == Wait {
			d = min(d, max(0, firstFail.Add(time.Duration(t.o.MaxWait)).Sub(end)))
		}
		if err := t.o.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// unavailable applies the policy to keys the service could not answer
// because of cause: nil to keep waiting, or the error that ends the call.
func (t *Table) unavailable(keys []Key, cause error, firstFail, now time.Time) error {
	what := t.describe(keys)
	if t.o.OnUnavailable == Reject {
		return connector.Reject(fmt.Errorf("%s: service unavailable for %s: %w", t.o.Name, what, cause))
	}
	if waited := now.Sub(firstFail); waited >= time.Duration(t.o.MaxWait) {
		return connector.Unavailable(fmt.Errorf("%s: service still unavailable for %s after waiting %s (max_wait): %w",
			t.o.Name, what, waited.Round(time.Millisecond), cause))
	}
	return nil
}

// describe names keys in errors: the first, and how many others.
func (t *Table) describe(keys []Key) string {
	if len(keys) == 0 {
		return "no key"
	}
	parts := make([]string, len(keys[0].Vals))
	for i, v := range keys[0].Vals {
		name := "key"
		if i < len(t.o.Keys) {
			name = t.o.Keys[i]
		}
		parts[i] = name + "=" + record.FormatText(v)
	}
	s := strings.Join(parts, ", ")
	if len(keys) > 1 {
		s += fmt.Sprintf(" and %d other key(s)", len(keys)-1)
	}
	return s
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// waitChange waits until changed is closed, d has passed or ctx is done.
func waitChange(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-tm.C:
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Backoff is the wait before retry n (from 1): base doubled n-1 times, at
// most 10s, with jitter (half to all of it) so that many callers do not
// retry in step.
func Backoff(n int, base time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	d := min(base<<min(n-1, 30), maxBackoff)
	if d <= 0 {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfterError carries a service's hint of when to come back.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string   { return e.err.Error() }
func (e *retryAfterError) Unwrap() []error { return []error{e.err, connector.ErrTransient} }

// Retry marks err as transient with the service's hint of how long to wait
// before the next call (a Retry-After header).
func Retry(err error, after time.Duration) error {
	return &retryAfterError{err: err, after: max(after, 0)}
}

// RetryAfter returns the hint of an error made by Retry.
func RetryAfter(err error) (time.Duration, bool) {
	var re *retryAfterError
	if errors.As(err, &re) {
		return re.after, true
	}
	return 0, false
}
