package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// message is one notification, shared by every webhook it is queued for.
type message struct {
	key    string
	kind   Kind
	status Status
	at     time.Time // the Fire or Resolve call, for latency
	body   []byte
	// reached is set by the first webhook that accepts the message, so that
	// latency is reported once however many webhooks there are.
	reached *atomic.Bool
}

// queue holds one webhook's notifications in the order they must arrive.
// items[0] is the one being delivered when inFlight is set; it leaves the
// queue only when its delivery is over, so nothing queued behind it, a
// resolved notification in particular, can overtake it.
type queue struct {
	mu       sync.Mutex
	items    []*message
	inFlight bool
	closed   bool
	limit    int
	wake     chan struct{} // capacity 1: "something changed"
	// announced holds the keys whose firing notification was queued here and
	// not yet followed by a resolved one: a key whose firing was dropped
	// gets no resolved notification either.
	announced map[string]bool
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues m unless the queue is full. A pending message of the same key
// and status with nothing of that key queued after it is replaced instead,
// so the queue holds no duplicates (a re-notification while the first one
// still waits). The message being delivered is never replaced.
func (q *queue) push(m *message) bool {
	first := 0
	if q.inFlight {
		first = 1
	}
	for i := len(q.items) - 1; i >= first; i-- {
		if q.items[i].key != m.key {
			continue
		}
		if q.items[i].status == m.status {
			q.items[i] = m
			return true
		}
		break
	}
	if len(q.items) >= q.limit {
		return false
	}
	q.items = append(q.items, m)
	q.signal()
	return true
}

// next returns the message to deliver, waiting for one. It returns nil when
// the queue is closed and empty, or when ctx is done.
func (q *queue) next(ctx context.Context) *message {
	for ctx.Err() == nil {
		q.mu.Lock()
		if len(q.items) > 0 {
			q.inFlight = true
			m := q.items[0]
			q.mu.Unlock()
			return m
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
		}
	}
	return nil
}

// pop removes the message next returned.
func (q *queue) pop() {
	q.mu.Lock()
	q.items[0] = nil
	q.items = q.items[1:]
	q.inFlight = false
	q.mu.Unlock()
}

// drain empties the queue and returns how many messages it held.
func (q *queue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := len(q.items)
	q.items = nil
	return k
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// webhook owns one receiver: its queue and the goroutine that empties it.
type webhook struct {
	n       *Notifier
	name    string
	url     string
	header  http.Header
	timeout time.Duration
	q       queue
}

// enqueue queues a firing notification; it is called with n.mu held, so
// announced cannot change under Resolve.
func (w *webhook) enqueue(m *message) {
	w.q.mu.Lock()
	ok := w.q.push(m)
	if ok {
		w.q.announced[m.key] = true
	}
	w.q.mu.Unlock()
	if !ok {
		w.dropped(m)
	}
}

// enqueueResolved queues a resolved notification if this webhook was to
// receive the condition's firing one. After Close (closed) it is counted as
// dropped instead: the delivery goroutine may be gone.
func (w *webhook) enqueueResolved(m *message, closed bool) {
	w.q.mu.Lock()
	if !w.q.announced[m.key] {
		w.q.mu.Unlock()
		return
	}
	delete(w.q.announced, m.key)
	ok := !closed && w.q.push(m)
	w.q.mu.Unlock()
	if !ok {
		w.dropped(m)
	}
}

func (w *webhook) dropped(m *message) {
	w.n.dropped.Add(1)
	w.n.log.Warn("alert dropped: webhook queue full or closed",
		"webhook", w.name, "kind", w.n.redact(string(m.kind)), "status", m.status,
		"queue_size", w.q.limit)
}

func (w *webhook) run() {
	ctx := w.n.abort
	for {
		m := w.q.next(ctx)
		if m == nil {
			break
		}
		w.deliver(ctx, m)
		w.q.pop()
	}
	// Only an aborted Close leaves messages behind.
	if k := w.q.drain(); k > 0 {
		w.n.dropped.Add(int64(k))
		w.n.log.Warn("alerts dropped at shutdown", "webhook", w.name, "count", k)
	}
}

// deliver sends m until the webhook accepts it, refuses it for good, the
// attempts run out or ctx is done.
func (w *webhook) deliver(ctx context.Context, m *message) {
	n := w.n
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, m)
		if err == nil {
			n.sent.Add(1)
			if m.reached.CompareAndSwap(false, true) {
				lat := n.clock.Now().Sub(m.at)
				n.lastLatency.Store(int64(lat))
				if n.opts.OnDelivered != nil {
					n.opts.OnDelivered(Delivery{Kind: m.kind, Status: m.status, Latency: lat})
				}
			}
			return
		}
		var pe *postError
		retry := errors.As(err, &pe) && pe.retry
		if ctx.Err() != nil || !retry || attempt >= n.opts.MaxAttempts {
			n.failed.Add(1)
			n.log.Error("alert not delivered", "webhook", w.name,
				"kind", n.redact(string(m.kind)), "status", m.status,
				"attempts", attempt, "err", n.redact(err.Error()))
			return
		}
		// A Retry-After of zero ("now") gets the backoff all the same: a
		// receiver that keeps saying so must not be hammered.
		wait := pe.after
		if wait <= 0 {
			wait = backoff(attempt, n.opts.BackoffBase, n.opts.BackoffMax)
		}
		n.retried.Add(1)
		n.log.Warn("alert delivery failed, retrying", "webhook", w.name,
			"kind", n.redact(string(m.kind)), "status", m.status,
			"attempt", attempt, "wait", wait, "err", n.redact(err.Error()))
		select {
		case <-n.clock.After(wait):
		case <-ctx.Done():
			n.failed.Add(1)
			n.log.Error("alert not delivered: shutting down", "webhook", w.name,
				"kind", n.redact(string(m.kind)), "status", m.status, "attempts", attempt)
			return
		}
	}
}

// postError is a failed request: whether it is worth repeating and, when
// the receiver said so, after how long.
type postError struct {
	status int // 0 for a network error
	retry  bool
	after  time.Duration
	err    error
}

func (e *postError) Error() string {
	if e.status == 0 {
		return e.err.Error()
	}
	return "HTTP " + strconv.Itoa(e.status)
}

func (e *postError) Unwrap() error { return e.err }

func (w *webhook) post(ctx context.Context, m *message) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(m.body))
	if err != nil {
		// The URL was checked by New; this is not worth retrying.
		return &postError{err: errors.New("cannot build request")}
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "backbone-alert/1")
	}
	resp, err := w.n.client.Do(req)
	if err != nil {
		return &postError{retry: true, err: stripURL(err)}
	}
	// Read a bounded part of the body so the connection can be reused; its
	// content is never logged (a receiver may echo the request back).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusTooManyRequests || c >= 500:
		after, _ := parseRetryAfter(resp.Header.Get("Retry-After"), w.n.clock.Now())
		return &postError{status: c, retry: true, after: min(after, w.n.opts.MaxRetryAfter)}
	default:
		return &postError{status: c}
	}
}

// stripURL drops the URL from a client error: it may carry a token.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// backoff is the wait before retry attempt (1 for the first retry): the
// exponential delay capped at max, minus a random part of up to half of it.
func backoff(attempt int, base, ceil time.Duration) time.Duration {
	d := ceil
	if attempt >= 1 && attempt < 63 {
		if e := base << (attempt - 1); e > 0 && e < ceil && e>>(attempt-1) == base {
			d = e
		}
	}
	return d - rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After header: a number of seconds or an
// HTTP date. It reports false for an absent or unreadable value; a date in
// the past is a wait of zero.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		// Beyond this the wait would overflow; it is capped later anyway.
		if s > uint64(365*24*time.Hour/time.Second) {
			s = uint64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
