package lookupcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// fetchFunc is a Fetcher made of a function: the tests' stand-in for a
// service, which the connectors' own tests replace with real servers.
type fetchFunc func(ctx context.Context, keys []Key, out []Result) error

func (f fetchFunc) Fetch(ctx context.Context, keys []Key, out []Result) error {
	return f(ctx, keys, out)
}

// evens answers keys that are even integers with a row {key, "v<key>"}.
func evens(ctx context.Context, keys []Key, out []Result) error {
	for i, k := range keys {
		var n int64
		fmt.Sscan(k.Str, &n)
		if n%2 == 0 {
			out[i] = Result{Row: record.Row{n, "v" + k.Str}, OK: true}
		}
	}
	return nil
}

func options(mod func(*Options)) Options {
	o := Options{Name: "test lookup", Keys: []string{"id"}, Config: Defaults()}
	o.Backoff = connector.Duration(time.Millisecond)
	if mod != nil {
		mod(&o)
	}
	return o
}

func TestTableCachesRowsAndMisses(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		return evens(ctx, keys, out)
	}), options(nil))
	ctx := context.Background()
	for pass := range 2 {
		for i := range int64(10) {
			row, ok, err := tb.Get(ctx, []any{i})
			if err != nil || ok != (i%2 == 0) || (ok && row[1] != fmt.Sprintf("v%d", i)) {
				t.Fatalf("pass %d, key %d: row %v ok %v err %v", pass, i, row, ok, err)
			}
		}
	}
	if calls.Load() != 10 {
		t.Errorf("%d calls for 10 keys asked twice, want 10", calls.Load())
	}
	if hits, misses := tb.CacheStats(); hits != 10 || misses != 10 {
		t.Errorf("cache stats %d hits %d misses, want 10 and 10", hits, misses)
	}
	// The text "4" and the integer 4 are one key.
	if _, ok, _ := tb.Get(ctx, []any{"4"}); !ok || calls.Load() != 10 {
		t.Errorf("the text 4 was not found in the cache (calls %d)", calls.Load())
	}
}

func TestTableNegativeTTLZeroKeepsNoMiss(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		return evens(ctx, keys, out)
	}), options(func(o *Options) { o.Cache.NegativeTTL = 0 }))
	for range 3 {
		if _, ok, err := tb.Get(context.Background(), []any{int64(1)}); ok || err != nil {
			t.Fatalf("ok %v err %v", ok, err)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3: misses are not kept", calls.Load())
	}
}

func TestTableCoalescesConcurrentLookupsOfAKey(t *testing.T) {
	const n = 16
	var calls atomic.Int64
	release := make(chan struct{})
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		<-release
		return evens(ctx, keys, out)
	}), options(nil))
	waiting := make(chan struct{}, n)
	tb.onWait = func() { waiting <- struct{}{} }
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			row, ok, err := tb.Get(context.Background(), []any{int64(42)})
			if err != nil || !ok || row[1] != "v42" {
				errs <- fmt.Errorf("row %v ok %v err %v", row, ok, err)
			}
		})
	}
	for range n - 1 {
		<-waiting // every lookup but the one calling waits for its answer
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls for %d concurrent lookups of one key, want 1", calls.Load(), n)
	}
}

func TestTableBatchesKeys(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	var inflight, peak atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		if v := inflight.Add(1); v > peak.Load() {
			peak.Store(v)
		}
		defer inflight.Add(-1)
		mu.Lock()
		sizes = append(sizes, len(keys))
		mu.Unlock()
		return evens(ctx, keys, out)
	}), options(func(o *Options) { o.BatchSize = 10; o.Concurrency = 2 }))
	keys := make([][]any, 30)
	for i := range 25 {
		keys[i] = []any{int64(i)}
	}
	keys[25] = []any{int64(3)} // twice in one batch: asked once
	keys[26] = nil             // a null key: no answer
	keys[27] = []any{int64(1), int64(2)}
	keys[28] = []any{int64(4)}
	keys[29] = []any{int64(100)}
	out := make([]connector.Answer, len(keys))
	tb.GetBatch(context.Background(), keys, out)
	for i := range 25 {
		if out[i].Err != nil || out[i].OK != (i%2 == 0) {
			t.Errorf("key %d: %+v", i, out[i])
		}
	}
	if out[25].OK || out[25].Err != nil {
		t.Errorf("the second 3: %+v", out[25])
	}
	if out[26].Row != nil || out[26].OK || out[26].Err != nil {
		t.Errorf("a null key was answered: %+v", out[26])
	}
	if out[27].Err == nil || !strings.Contains(out[27].Err.Error(), "takes 1 key value(s) (id), got 2") {
		t.Errorf("a key of two values: %v", out[27].Err)
	}
	if !out[28].OK || !out[29].OK {
		t.Errorf("keys 4 and 100: %+v %+v", out[28], out[29])
	}
	total := 0
	for _, s := range sizes {
		if s > 10 {
			t.Errorf("a call of %d keys, more than the batch size", s)
		}
		total += s
	}
	if total != 26 || len(sizes) != 3 {
		t.Errorf("calls of %v keys, want 3 calls for 26 distinct keys", sizes)
	}
	if peak.Load() > 2 {
		t.Errorf("%d calls at once, more than the concurrency of 2", peak.Load())
	}
}

var errDown = errors.New("connection refused")

func TestTableRetriesHonouringRetryAfter(t *testing.T) {
	var calls atomic.Int64
	var slept []time.Duration
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		switch calls.Add(1) {
		case 1:
			return Retry(errors.New("429 Too Many Requests"), 3*time.Second)
		case 2:
			return connector.Transient(errDown)
		}
		return evens(ctx, keys, out)
	}), options(func(o *Options) {
		o.Backoff = connector.Duration(200 * time.Millisecond)
		o.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	}))
	if _, ok, err := tb.Get(context.Background(), []any{int64(2)}); !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if len(slept) != 2 || slept[0] != 3*time.Second || slept[1] < 200*time.Millisecond || slept[1] > 400*time.Millisecond {
		t.Errorf("waits %v, want 3s (Retry-After) then the second backoff step (200ms to 400ms)", slept)
	}
}

func TestTablePermanentErrorIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		return errors.New("401 Unauthorized")
	}), options(nil))
	_, _, err := tb.Get(context.Background(), []any{int64(2)})
	if err == nil || errors.Is(err, connector.ErrReject) || errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "test lookup: 401") {
		t.Errorf("error %v, want the permanent error named", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1", calls.Load())
	}
}

func TestTableTimeoutIsAFailure(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return evens(ctx, keys, out)
	}), options(func(o *Options) { o.Timeout = connector.Duration(20 * time.Millisecond) }))
	if _, ok, err := tb.Get(context.Background(), []any{int64(2)}); !ok || err != nil {
		t.Fatalf("ok %v err %v; want the retry's answer", ok, err)
	}
	if s := tb.Stats(); s.Calls != 2 || s.Failed != 1 {
		t.Errorf("stats %+v, want 2 calls of which 1 failed", s)
	}
}

func TestTableRejectPolicy(t *testing.T) {
	var calls atomic.Int64
	var up atomic.Bool
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		if !up.Load() {
			return connector.Transient(errDown)
		}
		return evens(ctx, keys, out)
	}), options(func(o *Options) {
		o.OnUnavailable = Reject
		o.Retries = 1
		o.Breaker = BreakerConfig{Failures: 4, Cooldown: connector.Duration(time.Hour)}
	}))
	ctx := context.Background()
	for i := range 2 {
		_, ok, err := tb.Get(ctx, []any{int64(2)})
		if ok || !errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "service unavailable for id=2") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("lookup %d: ok %v err %v; want a reject naming the key and the cause", i+1, ok, err)
		}
	}
	if s := tb.Stats(); s.Calls != 4 || s.Opened != 1 || s.Breaker != Open {
		t.Fatalf("stats %+v: want 4 calls (2 lookups, 1 retry each) and an open breaker", s)
	}
	// Open: rejected without a call, and nothing cached.
	up.Store(true)
	_, _, err := tb.Get(ctx, []any{int64(4)})
	if !errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("with the breaker open: %v", err)
	}
	if calls.Load() != 4 || tb.Stats().Cached != 0 {
		t.Errorf("calls %d, cached %d: the open breaker let a call through or an error was cached", calls.Load(), tb.Stats().Cached)
	}
}

func TestTableWaitPolicyWaitsForTheService(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		if calls.Add(1) <= 5 {
			return connector.Transient(errDown)
		}
		return evens(ctx, keys, out)
	}), options(func(o *Options) {
		o.Retries = 1
		o.Breaker = BreakerConfig{Failures: 2, Cooldown: connector.Duration(5 * time.Millisecond)}
		o.MaxWait = connector.Duration(time.Minute)
	}))
	row, ok, err := tb.Get(context.Background(), []any{int64(2)})
	if err != nil || !ok || row[1] != "v2" {
		t.Fatalf("row %v ok %v err %v; want the answer once the service is back", row, ok, err)
	}
	if s := tb.Stats(); s.Opened < 1 || s.Closed != 1 || s.Breaker != Closed {
		t.Errorf("stats %+v: want the breaker opened, then closed by a probe", s)
	}
}

func TestTableWaitPolicyIsBounded(t *testing.T) {
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		return connector.Transient(errDown)
	}), options(func(o *Options) {
		o.Retries = 1
		o.Breaker = BreakerConfig{Failures: 1, Cooldown: connector.Duration(5 * time.Millisecond)}
		o.MaxWait = connector.Duration(50 * time.Millisecond)
	}))
	start := time.Now()
	_, ok, err := tb.Get(context.Background(), []any{int64(2)})
	if ok || !errors.Is(err, connector.ErrUnavailable) || !strings.Contains(err.Error(), "max_wait") {
		t.Fatalf("ok %v err %v; want an unavailable error after max_wait", ok, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %s, want about max_wait (50ms)", d)
	}
}

func TestTableCancelledCallerLeavesOthersToAskAgain(t *testing.T) {
	var calls atomic.Int64
	first := make(chan struct{})
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		if calls.Add(1) == 1 {
			close(first)
			<-ctx.Done()
			return ctx.Err()
		}
		return evens(ctx, keys, out)
	}), options(nil))
	waiting := make(chan struct{}, 1)
	tb.onWait = func() { waiting <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() {
		_, _, err := tb.Get(ctx, []any{int64(2)})
		gone <- err
	}()
	<-first
	other := make(chan error)
	go func() {
		_, ok, err := tb.Get(context.Background(), []any{int64(2)})
		if err == nil && !ok {
			err = errors.New("not found")
		}
		other <- err
	}()
	<-waiting
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled caller got %v", err)
	}
	if err := <-other; err != nil {
		t.Errorf("the other caller got %v, want the answer of its own call", err)
	}
	if s := tb.Stats(); s.Failed != 0 || s.Opened != 0 {
		t.Errorf("a cancelled call counted as a failure: %+v", s)
	}
}

func TestTableKeyErrorIsNotCached(t *testing.T) {
	var calls atomic.Int64
	tb := New(fetchFunc(func(ctx context.Context, keys []Key, out []Result) error {
		calls.Add(1)
		for i := range keys {
			out[i].Err = connector.Reject(errors.New("field rate: \"x\" is not a decimal"))
		}
		return nil
	}), options(nil))
	for range 2 {
		if _, _, err := tb.Get(context.Background(), []any{"eur"}); !errors.Is(err, connector.ErrReject) {
			t.Fatalf("err %v", err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2: a key's error is not cached", calls.Load())
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 20: maxBackoff, 60: maxBackoff} {
		for range 20 {
			if d := Backoff(n, 100*time.Millisecond); d < want/2 || d > want {
				t.Errorf("Backoff(%d) = %s, want between %s and %s", n, d, want/2, want)
			}
		}
	}
	if d := Backoff(1, 0); d != 0 {
		t.Errorf("Backoff with no base = %s", d)
	}
}
