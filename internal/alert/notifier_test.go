package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFiringBody(t *testing.T) {
	rcv := newReceiver(t, ok)
	clk := newFakeClock()
	delivered := make(chan Delivery, 10)
	n := start(t, Options{
		Webhooks: []Webhook{{
			URL:     rcv.URL,
			Headers: map[string]string{"Authorization": "Bearer tok-123", "X-Team": "data"},
		}},
		Source:      "etl-1",
		Clock:       clk,
		OnDelivered: func(d Delivery) { delivered <- d },
	})
	chicago := time.FixedZone("CDT", -5*3600)
	n.Fire(Alert{
		Kind:     KindFreshnessBreached,
		Pipeline: "orders",
		Key:      "freshness/orders",
		Summary:  "orders: no successful run for 17m (freshness 15m) <late>",
		Details:  map[string]string{"last_success": "2025-06-01T09:43:00Z"},
		Since:    time.Date(2025, 6, 1, 5, 15, 0, 0, chicago),
		Status:   StatusResolved, // ignored by Fire
	})
	h := recv(t, rcv.hits, "the firing notification")

	if h.method != http.MethodPost {
		t.Errorf("method = %s, want POST", h.method)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Authorization": "Bearer tok-123",
		"X-Team":        "data",
	} {
		if got := h.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if id := h.str("id"); len(id) < 16 {
		t.Errorf("id = %q, want a random identifier", id)
	}
	delete(h.body, "id")
	want := map[string]any{
		"version":     float64(BodyVersion),
		"status":      "firing",
		"kind":        "freshness_breached",
		"key":         "freshness/orders",
		"pipeline":    "orders",
		"severity":    "critical",
		"summary":     "orders: no successful run for 17m (freshness 15m) <late>",
		"details":     map[string]any{"last_success": "2025-06-01T09:43:00Z"},
		"since":       "2025-06-01T10:15:00Z",
		"resolved_at": nil,
		"source":      "etl-1",
	}
	if d := cmp.Diff(want, h.body); d != "" {
		t.Errorf("body (-want +got):\n%s\nraw: %s", d, h.raw)
	}
	if !bytes.Contains(h.raw, []byte("<late>")) {
		t.Errorf("summary HTML-escaped in %s", h.raw)
	}
	if d := recv(t, delivered, "OnDelivered"); d.Kind != KindFreshnessBreached || d.Status != StatusFiring {
		t.Errorf("OnDelivered got %+v", d)
	}
}

func TestBodyDefaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alert Alert
		want  map[string]any
	}{
		{
			name:  "key from kind and pipeline",
			alert: Alert{Kind: KindRunFailed, Pipeline: "orders", Summary: "boom"},
			want: map[string]any{"kind": "run_failed", "key": "run_failed/orders", "pipeline": "orders",
				"severity": "warning", "details": map[string]any{}},
		},
		{
			name:  "daemon-wide",
			alert: Alert{Kind: KindReloadRefused},
			want: map[string]any{"kind": "reload_refused", "key": "reload_refused", "pipeline": "",
				"severity": "warning", "details": map[string]any{}},
		},
		{
			name:  "no kind",
			alert: Alert{Summary: "x", Details: map[string]string{"a": "b"}},
			want: map[string]any{"kind": "alert", "key": "alert", "pipeline": "",
				"severity": "warning", "details": map[string]any{"a": "b"}},
		},
		{
			name:  "free-form kind and own severity",
			alert: Alert{Kind: "disk_full", Pipeline: "p", Key: "disk", Severity: SeverityInfo},
			want: map[string]any{"kind": "disk_full", "key": "disk", "pipeline": "p",
				"severity": "info", "details": map[string]any{}},
		},
		{
			name:  "since out of JSON's range",
			alert: Alert{Kind: KindBudgetBreached, Pipeline: "p", Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			want: map[string]any{"kind": "budget_breached", "key": "budget_breached/p", "pipeline": "p",
				"severity": "critical", "details": map[string]any{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, ok)
			clk := newFakeClock()
			n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk})
			n.Fire(tc.alert)
			h := recv(t, rcv.hits, "the notification")
			got := map[string]any{}
			for k := range tc.want {
				got[k] = h.body[k]
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("body (-want +got):\n%s", d)
			}
			if want := clk.Now().Format(time.RFC3339Nano); h.str("since") != want {
				t.Errorf("since = %q, want the time of Fire %q", h.str("since"), want)
			}
		})
	}
}

func TestDuplicatesAreNotSent(t *testing.T) {
	rcv := newReceiver(t, ok)
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}})
	details := map[string]string{"run": "1"}
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders", Summary: "first", Details: details})
	details["run"] = "2" // the caller reuses its map: the queued alert must not change
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders", Summary: "second"})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders", Summary: "third"})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "marker"})

	// Delivery is in order: if a duplicate had been queued, it would arrive
	// before the marker.
	h := recv(t, rcv.hits, "the first alert")
	if h.str("key") != "run_failed/orders" || h.str("summary") != "first" {
		t.Fatalf("first request: %s", h.raw)
	}
	if got := h.body["details"].(map[string]any)["run"]; got != "1" {
		t.Errorf("details.run = %v, want the value at Fire time 1", got)
	}
	if h := recv(t, rcv.hits, "the marker"); h.str("key") != "run_failed/marker" {
		t.Fatalf("second request is not the marker: %s", h.raw)
	}
	active := n.Active()
	if len(active) != 2 || active[1].Summary != "third" || active[1].Status != StatusFiring {
		t.Errorf("Active() = %+v, want marker and orders with the latest summary", active)
	}
	closeNow(t, n)
	rcv.none(t)
	if s := n.Stats(); s.Sent != 2 || s.Dropped != 0 || s.Active != 2 {
		t.Errorf("stats = %+v, want 2 sent, 2 active", s)
	}
}

func TestRenotify(t *testing.T) {
	rcv := newReceiver(t, ok)
	clk := newFakeClock()
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk, Renotify: 10 * time.Minute})
	a := Alert{Kind: KindFreshnessBreached, Pipeline: "orders"}
	n.Fire(a)
	first := recv(t, rcv.hits, "the first notification")

	clk.advance(9 * time.Minute)
	n.Fire(a)
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "marker"})
	if h := recv(t, rcv.hits, "the marker"); h.str("pipeline") != "marker" {
		t.Fatalf("re-notified before the interval: %s", h.raw)
	}

	clk.advance(time.Minute)
	n.Fire(a)
	again := recv(t, rcv.hits, "the re-notification")
	if again.str("key") != "freshness_breached/orders" || again.str("status") != "firing" {
		t.Fatalf("re-notification: %s", again.raw)
	}
	if again.str("since") != first.str("since") {
		t.Errorf("since moved from %s to %s", first.str("since"), again.str("since"))
	}
	if again.str("id") == first.str("id") {
		t.Errorf("a re-notification reuses the id %s", first.str("id"))
	}
}

func TestResolveAfterFire(t *testing.T) {
	rcv := newReceiver(t, ok)
	clk := newFakeClock()
	t0 := clk.Now()
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk})
	n.Resolve("freshness/orders") // not firing: nothing to say
	n.Fire(Alert{Kind: KindFreshnessBreached, Pipeline: "orders", Key: "freshness/orders", Summary: "late"})
	clk.advance(3 * time.Minute)
	n.Resolve("freshness/orders")
	n.Resolve("freshness/orders")
	n.Resolve("never/fired")

	firing := recv(t, rcv.hits, "the firing notification")
	resolved := recv(t, rcv.hits, "the resolved notification")
	closeNow(t, n)
	rcv.none(t)

	if firing.str("status") != "firing" || resolved.str("status") != "resolved" {
		t.Fatalf("statuses %q then %q, want firing then resolved", firing.str("status"), resolved.str("status"))
	}
	if firing.body["resolved_at"] != nil {
		t.Errorf("firing notification has resolved_at %v", firing.body["resolved_at"])
	}
	want := map[string]any{
		"key": "freshness/orders", "kind": "freshness_breached", "pipeline": "orders", "summary": "late",
		"since": t0.Format(time.RFC3339Nano), "resolved_at": t0.Add(3 * time.Minute).Format(time.RFC3339Nano),
	}
	got := map[string]any{}
	for k := range want {
		got[k] = resolved.body[k]
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resolved body (-want +got):\n%s", d)
	}
	if resolved.str("id") == firing.str("id") {
		t.Errorf("firing and resolved share the id %s", firing.str("id"))
	}
	if a := n.Active(); len(a) != 0 {
		t.Errorf("Active() after Resolve = %+v", a)
	}
}

func TestReceiverDownThenUp(t *testing.T) {
	// A port nobody listens on: connections are refused until the receiver
	// starts on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	clk := newFakeClock()
	delivered := make(chan Delivery, 10)
	base := 100 * time.Millisecond
	n := start(t, Options{
		Webhooks:    []Webhook{{URL: "http://" + addr + "/hook"}},
		Clock:       clk,
		BackoffBase: base,
		BackoffMax:  time.Second,
		OnDelivered: func(d Delivery) { delivered <- d },
	})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders"})

	w1 := recv(t, clk.waits, "the first backoff")
	if w1.d < base/2 || w1.d > base {
		t.Errorf("first backoff %v, want within [%v, %v]", w1.d, base/2, base)
	}
	w1.release()
	w2 := recv(t, clk.waits, "the second backoff")
	if w2.d < base || w2.d > 2*base {
		t.Errorf("second backoff %v, want within [%v, %v]", w2.d, base, 2*base)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken by another process meanwhile: %v", addr, err)
	}
	hits := make(chan hit, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		hits <- hit{raw: b.Bytes()}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	w2.release()

	h := recv(t, hits, "the alert once the receiver is up")
	if !bytes.Contains(h.raw, []byte(`"key":"run_failed/orders"`)) {
		t.Errorf("unexpected body %s", h.raw)
	}
	d := recv(t, delivered, "OnDelivered")
	if d.Latency != w1.d+w2.d {
		t.Errorf("latency = %v, want the two backoffs %v", d.Latency, w1.d+w2.d)
	}
	closeNow(t, n)
	select {
	case h := <-hits:
		t.Errorf("delivered twice: %s", h.raw)
	default:
	}
	clk.noWait(t)
	s := n.Stats()
	if s.Sent != 1 || s.Retried != 2 || s.Failed != 0 || s.LastLatency != d.Latency {
		t.Errorf("stats = %+v, want 1 sent after 2 retries, latency %v", s, d.Latency)
	}
}

func TestRetryAfter(t *testing.T) {
	clk0 := newFakeClock()
	for _, tc := range []struct {
		name   string
		status int
		header string
		max    time.Duration
		want   time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, "7", 0, 7 * time.Second},
		{"429 http date", http.StatusTooManyRequests, clk0.Now().Add(30 * time.Second).Format(http.TimeFormat), 0, 30 * time.Second},
		{"503 seconds", http.StatusServiceUnavailable, "2", 0, 2 * time.Second},
		{"capped", http.StatusTooManyRequests, "3600", time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, func(n int, _ map[string]any) (int, http.Header) {
				if n == 1 {
					return tc.status, http.Header{"Retry-After": {tc.header}}
				}
				return http.StatusOK, nil
			})
			clk := newFakeClock()
			n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk, MaxRetryAfter: tc.max})
			n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders"})
			first := recv(t, rcv.hits, "the refused request")
			w := recv(t, clk.waits, "the wait")
			if w.d != tc.want {
				t.Errorf("waited %v, want %v", w.d, tc.want)
			}
			w.release()
			second := recv(t, rcv.hits, "the retry")
			if second.str("id") != first.str("id") {
				t.Errorf("retry has id %s, first had %s", second.str("id"), first.str("id"))
			}
			closeNow(t, n)
			rcv.none(t)
			if s := n.Stats(); s.Sent != 1 || s.Retried != 1 || s.Failed != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusMovedPermanently} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			rcv := newReceiver(t, func(_ int, b map[string]any) (int, http.Header) {
				if b["pipeline"] == "bad" {
					return status, http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}
				}
				return http.StatusOK, nil
			})
			clk := newFakeClock()
			n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk})
			n.Fire(Alert{Kind: KindRunFailed, Pipeline: "bad"})
			n.Fire(Alert{Kind: KindRunFailed, Pipeline: "marker"})
			if h := recv(t, rcv.hits, "the refused alert"); h.str("pipeline") != "bad" {
				t.Fatalf("first request: %s", h.raw)
			}
			if h := recv(t, rcv.hits, "the marker"); h.str("pipeline") != "marker" {
				t.Fatalf("the refused alert was sent again: %s", h.raw)
			}
			closeNow(t, n)
			rcv.none(t)
			clk.noWait(t)
			if s := n.Stats(); s.Failed != 1 || s.Retried != 0 || s.Sent != 1 {
				t.Errorf("stats = %+v, want 1 failed, 0 retried, 1 sent", s)
			}
		})
	}
}

func TestServerErrorRetriedUpToMaxAttempts(t *testing.T) {
	rcv := newReceiver(t, func(_ int, b map[string]any) (int, http.Header) {
		if b["pipeline"] == "bad" {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	clk := newFakeClock()
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk, MaxAttempts: 3})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "bad"})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "next"})
	for i := 1; i <= 3; i++ {
		if h := recv(t, rcv.hits, "an attempt"); h.str("pipeline") != "bad" {
			t.Fatalf("attempt %d: %s", i, h.raw)
		}
		if i < 3 {
			recv(t, clk.waits, "a backoff").release()
		}
	}
	// Given up on, the alert no longer holds the queue.
	if h := recv(t, rcv.hits, "the next alert"); h.str("pipeline") != "next" {
		t.Fatalf("after giving up: %s", h.raw)
	}
	closeNow(t, n)
	rcv.none(t)
	if s := n.Stats(); s.Failed != 1 || s.Retried != 2 || s.Sent != 1 {
		t.Errorf("stats = %+v, want 1 failed after 2 retries, 1 sent", s)
	}
}

func TestResolvedNeverOvertakesFiring(t *testing.T) {
	rcv := newReceiver(t, func(n int, _ map[string]any) (int, http.Header) {
		if n <= 2 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	clk := newFakeClock()
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk})
	n.Fire(Alert{Kind: KindBudgetBreached, Pipeline: "orders"})
	recv(t, rcv.hits, "the first attempt")
	w := recv(t, clk.waits, "the first backoff")
	n.Resolve("budget_breached/orders") // while the firing one is being retried
	w.release()
	recv(t, rcv.hits, "the second attempt")
	recv(t, clk.waits, "the second backoff").release()
	var got []string
	var ids []string
	for range 2 {
		h := recv(t, rcv.hits, "a delivery")
		got = append(got, fmt.Sprintf("%s %d", h.str("status"), h.status))
		ids = append(ids, h.str("id"))
	}
	if d := cmp.Diff([]string{"firing 200", "resolved 200"}, got); d != "" {
		t.Errorf("deliveries (-want +got):\n%s", d)
	}
	closeNow(t, n)
	rcv.none(t)
	if ids[0] == ids[1] {
		t.Errorf("firing and resolved share an id")
	}
}

// TestOrderingUnderFlakyReceivers fires and resolves many conditions while
// two receivers refuse a third of the requests at random, with real (short)
// backoff: each receiver accepts each firing and each resolved exactly once,
// the firing first.
func TestOrderingUnderFlakyReceivers(t *testing.T) {
	flaky := func(int, map[string]any) (int, http.Header) {
		if rand.N(3) == 0 {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	}
	a, b := newReceiver(t, flaky), newReceiver(t, flaky)
	n := start(t, Options{
		Webhooks:    []Webhook{{URL: a.URL}, {URL: b.URL}},
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, MaxAttempts: 100,
	})
	const conditions = 30
	var wg sync.WaitGroup
	for i := range conditions {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i)
			n.Fire(Alert{Kind: KindRunFailed, Key: key})
			n.Resolve(key)
		})
	}
	wg.Wait()
	closeNow(t, n)
	for name, r := range map[string]*receiver{"a": a, "b": b} {
		close(r.hits)
		seen := map[string][]string{}
		for h := range r.hits {
			if h.status == http.StatusOK {
				seen[h.str("key")] = append(seen[h.str("key")], h.str("status"))
			}
		}
		if len(seen) != conditions {
			t.Errorf("receiver %s got %d conditions, want %d", name, len(seen), conditions)
		}
		for key, statuses := range seen {
			if d := cmp.Diff([]string{"firing", "resolved"}, statuses); d != "" {
				t.Errorf("receiver %s, %s (-want +got):\n%s", name, key, d)
			}
		}
	}
	if s := n.Stats(); s.Sent != 4*conditions || s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats = %+v, want %d sent", s, 4*conditions)
	}
}

func TestWebhooksAreIndependent(t *testing.T) {
	down := newReceiver(t, func(int, map[string]any) (int, http.Header) { return http.StatusInternalServerError, nil })
	up := newReceiver(t, ok)
	clk := newFakeClock()
	delivered := make(chan Delivery, 10)
	n, err := New(Options{
		Webhooks:    []Webhook{{URL: down.URL}, {URL: up.URL}},
		Clock:       clk,
		OnDelivered: func(d Delivery) { delivered <- d },
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders"})
	n.Resolve("run_failed/orders")
	recv(t, clk.waits, "the failing webhook's backoff") // never released
	if h := recv(t, up.hits, "firing at the healthy webhook"); h.str("status") != "firing" {
		t.Fatalf("got %s", h.raw)
	}
	if h := recv(t, up.hits, "resolved at the healthy webhook"); h.str("status") != "resolved" {
		t.Fatalf("got %s", h.raw)
	}
	// The receiver reports a request before answering it: wait until the
	// healthy webhook has seen both answers.
	recv(t, delivered, "the firing delivery")
	recv(t, delivered, "the resolved delivery")

	// Close gives up on the failing webhook when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = n.Close(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "2 notifications undelivered") {
		t.Errorf("Close = %v, want 2 undelivered and context.Canceled", err)
	}
	if s := n.Stats(); s.Sent != 2 || s.Failed != 1 || s.Dropped != 1 || s.Pending != 0 {
		t.Errorf("stats = %+v, want 2 sent, the firing failed, the resolved dropped", s)
	}
}

func TestRedaction(t *testing.T) {
	const secret, token, pathToken = "hunter2", "Bearer hdr-s3cret", "T0KEN-in-path"
	redact := func(s string) string { return strings.ReplaceAll(s, secret, "[redacted]") }
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	accepting := newReceiver(t, ok)
	refusing := newReceiver(t, func(n int, _ map[string]any) (int, http.Header) {
		if n == 1 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusForbidden, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hooks/" + pathToken
	ln.Close()

	n := start(t, Options{
		Webhooks: []Webhook{
			{URL: accepting.URL, Headers: map[string]string{"Authorization": token}},
			{URL: refusing.URL + "/" + pathToken, Headers: map[string]string{"Authorization": token}},
			{URL: closed, Headers: map[string]string{"Authorization": token}},
		},
		Redact:      redact,
		Logger:      logger,
		BackoffBase: time.Millisecond, BackoffMax: time.Millisecond, MaxAttempts: 2,
	})
	n.Fire(Alert{
		Kind:     "leak_" + secret,
		Pipeline: "p_" + secret,
		Summary:  "login with " + secret + " failed",
		Details:  map[string]string{"dsn": "postgres://app:" + secret + "@db/x", "key_" + secret: "v"},
	})
	h := recv(t, accepting.hits, "the alert")
	closeNow(t, n)

	if bytes.Contains(h.raw, []byte(secret)) {
		t.Errorf("body carries the secret: %s", h.raw)
	}
	if got := h.str("summary"); got != "login with [redacted] failed" {
		t.Errorf("summary = %q", got)
	}
	want := map[string]any{"dsn": "postgres://app:[redacted]@db/x", "key_[redacted]": "v"}
	if d := cmp.Diff(want, h.body["details"]); d != "" {
		t.Errorf("details (-want +got):\n%s", d)
	}
	if h.header.Get("Authorization") != token {
		t.Errorf("the header itself must reach the receiver unredacted")
	}

	out := logs.String()
	if !strings.Contains(out, "alert not delivered") || !strings.Contains(out, "retrying") {
		t.Fatalf("the failing webhooks logged nothing: %s", out)
	}
	for _, s := range []string{secret, "hdr-s3cret", pathToken} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}

func TestFullQueueDoesNotBlock(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	rcv := newReceiver(t, func(n int, _ map[string]any) (int, http.Header) {
		if n == 1 {
			arrived <- struct{}{}
			<-release
		}
		return http.StatusOK, nil
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	clk := newFakeClock()
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, Clock: clk, QueueSize: 3, Renotify: time.Minute})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "a"})
	recv(t, arrived, "the first request to hang")

	fired := make(chan struct{})
	go func() {
		defer close(fired)
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: "b"})
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: "c", Summary: "v1"})
		clk.advance(time.Minute)
		// A re-notification replaces the one still queued: no duplicate, no
		// place taken.
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: "c", Summary: "v2"})
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: "d"}) // queue full: dropped
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: "e"}) // dropped
		n.Resolve("run_failed/d")                         // its firing was dropped: nothing to resolve
	}()
	recv(t, fired, "Fire and Resolve to return while the webhook hangs")
	if s := n.Stats(); s.Dropped != 2 || s.Pending != 3 {
		t.Errorf("stats = %+v, want 2 dropped, 3 pending", s)
	}

	close(release)
	var got []string
	for range 3 {
		h := recv(t, rcv.hits, "a delivery")
		got = append(got, h.str("pipeline")+" "+h.str("summary"))
	}
	closeNow(t, n)
	rcv.none(t)
	if d := cmp.Diff([]string{"a ", "b ", "c v2"}, got); d != "" {
		t.Errorf("deliveries (-want +got):\n%s", d)
	}
}

func TestCloseDeliversQueued(t *testing.T) {
	rcv := newReceiver(t, func(n int, _ map[string]any) (int, http.Header) {
		if n <= 2 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	n := start(t, Options{Webhooks: []Webhook{{URL: rcv.URL}}, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond})
	for i := range 5 {
		n.Fire(Alert{Kind: KindRunFailed, Pipeline: fmt.Sprint(i)})
	}
	closeNow(t, n)
	close(rcv.hits)
	var accepted []string
	for h := range rcv.hits {
		if h.status == http.StatusOK {
			accepted = append(accepted, h.str("pipeline"))
		}
	}
	if d := cmp.Diff([]string{"0", "1", "2", "3", "4"}, accepted); d != "" {
		t.Errorf("accepted before Close returned (-want +got):\n%s", d)
	}

	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "late"})
	n.Resolve("run_failed/0")
	if s := n.Stats(); s.Dropped != 2 || s.Sent != 5 {
		t.Errorf("stats after Fire and Resolve on a closed notifier = %+v, want 2 dropped", s)
	}
	closeNow(t, n) // a second Close is harmless
}

func TestNoWebhooks(t *testing.T) {
	n := start(t, Options{})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders"})
	if a := n.Active(); len(a) != 1 {
		t.Errorf("Active() = %+v", a)
	}
	n.Resolve("run_failed/orders")
	closeNow(t, n)
	if s := n.Stats(); s != (Stats{}) {
		t.Errorf("stats = %+v, want zero", s)
	}
}

func TestConfigErrors(t *testing.T) {
	const secret = "S3CRET"
	for _, tc := range []struct {
		name  string
		opts  Options
		field string
	}{
		{"empty url", Options{Webhooks: []Webhook{{URL: ""}}}, "url"},
		{"not a url", Options{Webhooks: []Webhook{{URL: "http://[::1/" + secret}}}, "url"},
		{"scheme", Options{Webhooks: []Webhook{{URL: "ftp://host/" + secret}}}, "url"},
		{"no host", Options{Webhooks: []Webhook{{URL: "http:///" + secret}}}, "url"},
		{"negative timeout", Options{Webhooks: []Webhook{{URL: "http://h/", Timeout: -1}}}, "timeout"},
		{"header name", Options{Webhooks: []Webhook{{URL: "http://h/", Headers: map[string]string{"Bad Name": secret}}}}, "headers"},
		{"header value", Options{Webhooks: []Webhook{{URL: "http://h/", Headers: map[string]string{"X-Token": "a\r\nX-Evil: " + secret}}}}, "headers.X-Token"},
		{"queue size", Options{QueueSize: -1}, "queue_size"},
		{"attempts", Options{MaxAttempts: -2}, "max_attempts"},
		{"renotify", Options{Renotify: -time.Second}, "renotify"},
		{"backoff", Options{BackoffBase: time.Minute, BackoffMax: time.Second}, "backoff_max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("New = %v, want a *ConfigError", err)
			}
			if ce.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the value: %v", err)
			}
		})
	}
}

func TestHungReceiverTimesOutAndIsRetried(t *testing.T) {
	hits := make(chan hit, 10)
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		hits <- hit{raw: b.Bytes()}
		if count.Add(1) == 1 {
			<-r.Context().Done() // hangs until the sender gives up
			return
		}
	}))
	defer srv.Close()
	clk := newFakeClock()
	n := start(t, Options{Webhooks: []Webhook{{URL: srv.URL, Timeout: 50 * time.Millisecond}}, Clock: clk})
	n.Fire(Alert{Kind: KindRunFailed, Pipeline: "orders"})
	first := recv(t, hits, "the hung request")
	recv(t, clk.waits, "the backoff after the timeout").release()
	second := recv(t, hits, "the retry")
	if !bytes.Equal(first.raw, second.raw) {
		t.Errorf("the retry differs from the first request:\n%s\n%s", first.raw, second.raw)
	}
	closeNow(t, n)
	if s := n.Stats(); s.Sent != 1 || s.Retried != 1 {
		t.Errorf("stats = %+v, want 1 sent after 1 retry", s)
	}
}
