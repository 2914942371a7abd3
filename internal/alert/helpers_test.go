package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait of a test for something that should happen;
// reaching it is a failure, never a way to synchronise.
const patience = 10 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// hit is one request the receiver got and what it answered.
type hit struct {
	n      int // 1-based arrival order
	status int
	raw    []byte
	body   map[string]any
	header http.Header
	method string
}

func (h hit) str(field string) string {
	s, _ := h.body[field].(string)
	return s
}

// answerFunc decides the response to request n; it may block.
type answerFunc func(n int, body map[string]any) (status int, header http.Header)

func ok(int, map[string]any) (int, http.Header) { return http.StatusOK, nil }

// receiver is a webhook endpoint on 127.0.0.1 that reports every request on
// hits, after deciding its answer and before writing it.
type receiver struct {
	srv  *httptest.Server
	URL  string
	hits chan hit

	mu     sync.Mutex
	count  int
	answer answerFunc
}

func newReceiver(t *testing.T, answer answerFunc) *receiver {
	t.Helper()
	r := &receiver{hits: make(chan hit, 1000), answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hook"
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	r.mu.Lock()
	r.count++
	n := r.count
	r.mu.Unlock()
	status, header := r.answer(n, body)
	for k, v := range header {
		w.Header()[k] = v
	}
	r.hits <- hit{n: n, status: status, raw: raw, body: body, header: req.Header.Clone(), method: req.Method}
	w.WriteHeader(status)
}

// none fails if the receiver got a request not taken from hits yet. Call it
// after Close, when no delivery can still be under way.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case h := <-r.hits:
		t.Fatalf("unexpected request %d: %s", h.n, h.raw)
	default:
	}
}

// fakeClock never moves by itself: a delivery goroutine that waits shows
// up on waits, and the test lets it go with release.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan *fakeWait
}

type fakeWait struct {
	d   time.Duration
	c   chan time.Time
	clk *fakeClock
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:   time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC),
		waits: make(chan *fakeWait, 100),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := &fakeWait{d: d, c: make(chan time.Time, 1), clk: c}
	c.waits <- w
	return w.c
}

// release moves the clock by the wait and ends it.
func (w *fakeWait) release() {
	w.clk.advance(w.d)
	w.c <- w.clk.Now()
}

func (c *fakeClock) noWait(t *testing.T) {
	t.Helper()
	select {
	case w := <-c.waits:
		t.Fatalf("unexpected backoff wait of %v", w.d)
	default:
	}
}

// start makes a Notifier that the test's cleanup closes.
func start(t *testing.T, opts Options) *Notifier {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

func closeNow(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
