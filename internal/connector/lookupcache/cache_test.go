package lookupcache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := NewCache(3)
	now := time.Unix(1000, 0)
	later := now.Add(time.Hour)
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, record.Row{k}, true, later)
	}
	if _, _, hit := c.Get([]byte("a"), now); !hit { // a becomes the most recent
		t.Fatal("a is not cached")
	}
	c.Put("d", record.Row{"d"}, true, later) // evicts b
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, _, hit := c.Get([]byte(k), now); hit != want {
			t.Errorf("key %s cached %v, want %v", k, hit, want)
		}
	}
	if c.Len() != 3 {
		t.Errorf("len %d, want 3", c.Len())
	}
}

func TestCacheExpiresAndKeepsMisses(t *testing.T) {
	c := NewCache(10)
	now := time.Unix(1000, 0)
	c.Put("found", record.Row{int64(1)}, true, now.Add(time.Minute))
	c.Put("missing", nil, false, now.Add(time.Second))
	row, ok, hit := c.Get([]byte("found"), now)
	if !hit || !ok || row[0] != int64(1) {
		t.Errorf("found: row %v ok %v hit %v", row, ok, hit)
	}
	if _, ok, hit := c.Get([]byte("missing"), now); !hit || ok {
		t.Errorf("missing: ok %v hit %v; want a cached miss", ok, hit)
	}
	if _, _, hit := c.Get([]byte("missing"), now.Add(time.Second)); hit {
		t.Error("an expired miss was a hit")
	}
	if _, _, hit := c.Get([]byte("found"), now.Add(time.Minute)); hit {
		t.Error("an expired row was a hit")
	}
	if c.Len() != 0 {
		t.Errorf("expired entries are still counted: len %d", c.Len())
	}
	hits, misses := c.Stats()
	if hits != 2 || misses != 2 {
		t.Errorf("stats: %d hits %d misses, want 2 and 2", hits, misses)
	}
}

// A key asked again after its miss (a call for it ended meanwhile) counts
// once: as a hit when the answer is there now, as the miss otherwise.
func TestCacheGetAgainCountsOnce(t *testing.T) {
	c := NewCache(8)
	now := time.Unix(1000, 0)
	if _, _, hit := c.Get([]byte("k"), now); hit {
		t.Fatal("hit in an empty cache")
	}
	if _, _, hit := c.GetAgain([]byte("k"), now); hit {
		t.Fatal("hit again in an empty cache")
	}
	if h, m := c.Stats(); h != 0 || m != 1 {
		t.Fatalf("%d hits, %d misses; want the one miss", h, m)
	}
	c.Put("k", record.Row{"v"}, true, now.Add(time.Hour))
	if row, ok, hit := c.GetAgain([]byte("k"), now); !hit || !ok || row[0] != "v" {
		t.Fatalf("GetAgain after Put: %v %v %v", row, ok, hit)
	}
	if h, m := c.Stats(); h != 1 || m != 0 {
		t.Fatalf("%d hits, %d misses; want the miss counted as a hit", h, m)
	}
}

func TestCacheShardsStayWithinSize(t *testing.T) {
	for _, size := range []int{1, 255, 1000, 20000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := NewCache(size)
			exp := time.Unix(2000, 0)
			for i := range 3 * size {
				c.Put(fmt.Sprintf("k%d", i), nil, false, exp)
			}
			if n := c.Len(); n > size || n < size*9/10 {
				t.Errorf("%d entries kept for a size of %d", n, size)
			}
		})
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(1000)
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprintf("k%d", (i*7+g)%1500)
				if _, _, hit := c.Get([]byte(k), now); !hit {
					c.Put(k, record.Row{k}, true, now.Add(time.Hour))
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 1000 {
		t.Errorf("%d entries for a size of 1000", c.Len())
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	var changes []string
	b := NewBreaker(3, time.Minute, func(from, to State, _ error) { changes = append(changes, from.String()+">"+to.String()) })
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _, _ := b.Allow(now); !ok {
			t.Fatalf("call %d refused while closed", i+1)
		}
		b.Failure(now, fmt.Errorf("refused"))
	}
	ok, changed, until := b.Allow(now.Add(time.Second))
	if ok || b.State() != Open || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("after 3 failures: allowed %v, state %v, until %v", ok, b.State(), until)
	}
	// After the cooldown one call probes; the others wait for it.
	if ok, _, _ := b.Allow(now.Add(time.Minute)); !ok {
		t.Fatal("no probe after the cooldown")
	}
	select {
	case <-changed:
	default:
		t.Error("the waiters were not woken when the breaker went half-open")
	}
	ok, changed, until = b.Allow(now.Add(time.Minute))
	if ok || !until.IsZero() {
		t.Fatalf("a second call went through while the probe is out (until %v)", until)
	}
	// An abandoned probe hands its slot on.
	b.Abandon()
	select {
	case <-changed:
	default:
		t.Error("the waiters were not woken when the probe was abandoned")
	}
	if ok, _, _ := b.Allow(now.Add(time.Minute)); !ok {
		t.Fatal("no new probe after an abandoned one")
	}
	// A failed probe opens it for another cooldown.
	b.Failure(now.Add(time.Minute), fmt.Errorf("still down"))
	if ok, _, until := b.Allow(now.Add(time.Minute + time.Second)); ok || !until.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("after a failed probe: allowed %v until %v", ok, until)
	}
	if ok, _, _ := b.Allow(now.Add(2 * time.Minute)); !ok {
		t.Fatal("no probe after the second cooldown")
	}
	b.Success()
	if ok, _, _ := b.Allow(now.Add(2 * time.Minute)); !ok || b.State() != Closed {
		t.Fatalf("after a successful probe: allowed %v, state %v", ok, b.State())
	}
	want := "closed>open half-open>open open>half-open"
	got := fmt.Sprint(changes)
	if got != "[closed>open open>half-open half-open>open open>half-open half-open>closed]" {
		t.Errorf("changes %s (the transitions should be %s …)", got, want)
	}
	// Failures below the threshold, with a success between, keep it closed.
	b.Failure(now, nil)
	b.Failure(now, nil)
	b.Success()
	b.Failure(now, nil)
	b.Failure(now, nil)
	if b.State() != Closed {
		t.Errorf("non-consecutive failures opened the breaker")
	}
}

func TestLimiterAdapts(t *testing.T) {
	l := NewLimiter(20)
	now := time.Unix(1000, 0)
	ctx := context.Background()
	if l.Limit() != initialLimit {
		t.Fatalf("initial limit %d", l.Limit())
	}
	// Calls that use the limit and succeed make it grow, up to the max.
	for range 2000 {
		for range l.Limit() {
			if err := l.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range l.InFlight() {
			now = now.Add(time.Millisecond)
			l.Release(time.Millisecond, false, now)
		}
	}
	if l.Limit() != 20 {
		t.Fatalf("limit %d after many successful calls at the limit, want the max 20", l.Limit())
	}
	// A burst of failures within one round trip shrinks it once.
	for range 5 {
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		l.Release(time.Millisecond, true, now)
	}
	if l.Limit() != 14 {
		t.Errorf("limit %d after a burst of failures, want 14 (20 × 0.7, once)", l.Limit())
	}
	// Calls much slower than the baseline count as failures.
	for i := range 10 {
		now = now.Add(time.Second)
		if err := l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		l.Release(500*time.Millisecond, false, now)
		if i == 9 && l.Limit() >= 14 {
			t.Errorf("limit %d after slow calls, want it below 14", l.Limit())
		}
	}
	// Never below 1.
	for range 50 {
		now = now.Add(time.Minute)
		_ = l.Acquire(ctx)
		l.Release(time.Millisecond, true, now)
	}
	if l.Limit() != 1 {
		t.Errorf("limit %d after many failures, want 1", l.Limit())
	}
}

func TestLimiterBlocksAndHandsOver(t *testing.T) {
	l := NewLimiter(1)
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Acquire(cctx); err == nil {
		t.Fatal("Acquire over the limit with a cancelled context succeeded")
	}
	got := make(chan error)
	go func() { got <- l.Acquire(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire over the limit returned %v", err)
	default:
	}
	l.Release(time.Millisecond, false, time.Unix(1, 0))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if l.InFlight() != 1 {
		t.Errorf("in flight %d, want 1", l.InFlight())
	}
}
