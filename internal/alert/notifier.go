package alert

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied to zero fields of Options and Webhook.
const (
	DefaultQueueSize     = 100
	DefaultMaxAttempts   = 10
	DefaultBackoffBase   = time.Second
	DefaultBackoffMax    = time.Minute
	DefaultMaxRetryAfter = 5 * time.Minute
	DefaultTimeout       = 10 * time.Second
)

// Webhook is one receiver of notifications.
type Webhook struct {
	// Name identifies the webhook in logs; empty means the URL's host. The
	// URL itself is never logged: many services put a token in its path.
	Name string
	// URL receives a POST with the JSON body for every notification.
	URL string
	// Headers are added to every request (for example Authorization). Their
	// values are secrets: never logged, never part of an error.
	Headers map[string]string
	// Timeout bounds one request, response included; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// Options configures a Notifier. Zero values mean the documented default.
type Options struct {
	Webhooks []Webhook
	// QueueSize bounds the notifications waiting for each webhook, the one
	// being delivered included. When a queue is full a new notification for
	// it is dropped, counted and logged: the oldest are kept.
	QueueSize int
	// MaxAttempts bounds the requests for one notification to one webhook.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the wait before retry n:
	// min(BackoffMax, BackoffBase·2^(n-1)), of which a random half is
	// taken off so that many daemons do not retry in step.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryAfter caps the wait a receiver asks for with Retry-After.
	MaxRetryAfter time.Duration
	// Renotify, when positive, lets Fire send an active condition again once
	// this long has passed since it was last sent. Zero: once per condition.
	Renotify time.Duration
	// Redact is applied to every string of a body before it is sent and to
	// every error text logged. Nil means no redaction.
	Redact func(string) string
	// Source names the sender in each body (for example the host name), so a
	// receiver can tell several daemons apart.
	Source string
	// OnDelivered, when set, is called once per notification when its first
	// webhook accepts it, from a delivery goroutine: it must not block.
	OnDelivered func(Delivery)
	Clock       Clock
	Logger      *slog.Logger
	// HTTPClient sends the requests; nil means a client of its own that does
	// not follow redirects (a redirect would resend the headers elsewhere).
	HTTPClient *http.Client
}

// Delivery describes a notification that reached its first webhook.
type Delivery struct {
	Kind   Kind
	Status Status
	// Latency is the time from the Fire or Resolve call to the success.
	Latency time.Duration
}

// Stats are the notifier's counters since New. Sent, Failed, Retried and
// Dropped count per webhook: one notification to three webhooks that all
// accept it counts three sent.
type Stats struct {
	// Sent: notifications a webhook accepted (2xx).
	Sent int64
	// Failed: notifications given up on (a 4xx other than 429, attempts
	// exhausted, or shutdown during delivery).
	Failed int64
	// Retried: requests repeated after a failure.
	Retried int64
	// Dropped: notifications never attempted (queue full, or still queued
	// when Close gave up, or fired after Close).
	Dropped int64
	// Pending: notifications queued or being delivered, over all webhooks.
	Pending int
	// Active: conditions firing now.
	Active int
	// LastLatency: Delivery.Latency of the latest delivered notification.
	LastLatency time.Duration
}

// Notifier delivers alerts to webhooks; see the package documentation.
// Its methods are safe for concurrent use.
type Notifier struct {
	opts   Options
	clock  Clock
	log    *slog.Logger
	redact func(string) string
	client *http.Client
	hooks  []*webhook

	mu     sync.Mutex
	active map[string]*condition
	closed bool

	// abort cancels requests and backoff waits when Close runs out of time.
	abort     context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}

	sent, failed, retried, dropped atomic.Int64
	lastLatency                    atomic.Int64
}

// condition is an active key: what was last fired and when it was last sent.
type condition struct {
	alert    Alert
	notified time.Time
}

// New checks opts and starts one delivery goroutine per webhook. Close stops
// them. A Notifier without webhooks keeps track of conditions and sends
// nothing.
func New(opts Options) (*Notifier, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	n := &Notifier{
		opts:   opts,
		clock:  opts.Clock,
		log:    opts.Logger,
		redact: opts.Redact,
		client: opts.HTTPClient,
		active: map[string]*condition{},
		done:   make(chan struct{}),
	}
	n.abort, n.cancel = context.WithCancel(context.Background())
	for i, w := range opts.Webhooks {
		h, err := newWebhook(n, i, w)
		if err != nil {
			n.cancel()
			return nil, err
		}
		n.hooks = append(n.hooks, h)
	}
	for _, h := range n.hooks {
		n.wg.Go(h.run)
	}
	return n, nil
}

func (o *Options) withDefaults() error {
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"queue_size", &o.QueueSize, DefaultQueueSize},
		{"max_attempts", &o.MaxAttempts, DefaultMaxAttempts},
	} {
		if *f.v < 0 {
			return &ConfigError{Webhook: -1, Field: f.name, Reason: "must not be negative"}
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"backoff_base", &o.BackoffBase, DefaultBackoffBase},
		{"backoff_max", &o.BackoffMax, DefaultBackoffMax},
		{"max_retry_after", &o.MaxRetryAfter, DefaultMaxRetryAfter},
		{"renotify", &o.Renotify, 0},
	} {
		if *f.v < 0 {
			return &ConfigError{Webhook: -1, Field: f.name, Reason: "must not be negative"}
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.BackoffMax < o.BackoffBase {
		return &ConfigError{Webhook: -1, Field: "backoff_max", Reason: "must not be less than backoff_base"}
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return nil
}

// newWebhook checks one webhook's configuration. Errors name the field,
// never its value.
func newWebhook(n *Notifier, i int, w Webhook) (*webhook, error) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		return nil, &ConfigError{Webhook: i, Field: "url", Reason: "is empty"}
	case err != nil:
		return nil, &ConfigError{Webhook: i, Field: "url", Reason: "is not a valid URL"}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &ConfigError{Webhook: i, Field: "url", Reason: "scheme must be http or https"}
	case u.Host == "":
		return nil, &ConfigError{Webhook: i, Field: "url", Reason: "has no host"}
	}
	if w.Timeout < 0 {
		return nil, &ConfigError{Webhook: i, Field: "timeout", Reason: "must not be negative"}
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultTimeout
	}
	h := http.Header{}
	for k, v := range w.Headers {
		if !validHeaderName(k) {
			return nil, &ConfigError{Webhook: i, Field: "headers", Reason: "a header name is empty or not a token"}
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, &ConfigError{Webhook: i, Field: "headers." + k, Reason: "value contains a line break or NUL"}
		}
		h.Set(k, v)
	}
	name := w.Name
	if name == "" {
		name = u.Host
	}
	return &webhook{
		n:       n,
		name:    name,
		url:     w.URL,
		header:  h,
		timeout: w.Timeout,
		q: queue{
			limit:     n.opts.QueueSize,
			wake:      make(chan struct{}, 1),
			announced: map[string]bool{},
		},
	}, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Fire reports that a condition holds. The first Fire of a key queues a
// "firing" notification to every webhook; later ones only update what the
// resolved notification will carry, unless Options.Renotify has passed since
// the key was last sent. Fire never blocks on a webhook.
func (n *Notifier) Fire(a Alert) {
	now := n.clock.Now()
	a = a.normalize(now)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.dropped.Add(int64(len(n.hooks)))
		return
	}
	c, ok := n.active[a.Key]
	if ok {
		a.Since = c.alert.Since
		c.alert = a
		if n.opts.Renotify <= 0 || now.Sub(c.notified) < n.opts.Renotify {
			return
		}
	} else {
		c = &condition{alert: a}
		n.active[a.Key] = c
	}
	c.notified = now
	m := n.message(a, StatusFiring, now)
	for _, h := range n.hooks {
		h.enqueue(m)
	}
}

// Resolve reports that the condition key no longer holds. A "resolved"
// notification goes to each webhook that was sent (or is still to be sent)
// the condition's firing notification; it is delivered after that firing
// one. Resolving a key that is not firing does nothing.
func (n *Notifier) Resolve(key string) {
	now := n.clock.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.active[key]
	if !ok {
		return
	}
	delete(n.active, key)
	c.alert.Status = StatusResolved
	m := n.message(c.alert, StatusResolved, now)
	for _, h := range n.hooks {
		h.enqueueResolved(m, n.closed)
	}
}

// Active returns the conditions firing now, sorted by key.
func (n *Notifier) Active() []Alert {
	n.mu.Lock()
	out := make([]Alert, 0, len(n.active))
	for _, c := range n.active {
		out = append(out, c.alert)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (n *Notifier) message(a Alert, status Status, at time.Time) *message {
	return &message{
		key:     a.Key,
		kind:    a.Kind,
		status:  status,
		at:      at,
		body:    encode(a, status, at, n.opts.Source, n.redact),
		reached: new(atomic.Bool),
	}
}

// Stats returns a snapshot of the counters.
func (n *Notifier) Stats() Stats {
	s := Stats{
		Sent:        n.sent.Load(),
		Failed:      n.failed.Load(),
		Retried:     n.retried.Load(),
		Dropped:     n.dropped.Load(),
		LastLatency: time.Duration(n.lastLatency.Load()),
	}
	for _, h := range n.hooks {
		s.Pending += h.q.len()
	}
	n.mu.Lock()
	s.Active = len(n.active)
	n.mu.Unlock()
	return s
}

// Close stops accepting alerts and delivers what is queued, retries
// included, until ctx is done; then it abandons the rest (counted as failed
// or dropped) and returns an error wrapping ctx.Err(). Later calls wait for
// the same shutdown.
func (n *Notifier) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		for _, h := range n.hooks {
			h.q.close()
		}
		go func() {
			n.wg.Wait()
			close(n.done)
		}()
	})
	select {
	case <-n.done:
		n.cancel()
		return nil
	case <-ctx.Done():
	}
	before := n.failed.Load() + n.dropped.Load()
	n.cancel()
	<-n.done
	lost := n.failed.Load() + n.dropped.Load() - before
	return fmt.Errorf("alert: close: %d notifications undelivered: %w", lost, ctx.Err())
}
