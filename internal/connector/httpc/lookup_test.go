package httpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/connector/lookupcache"
	"github.com/backbone-etl/backbone/internal/record"
)

const customerSchema = "schema: { customer_id: int, region: string, tier: string, credit: decimal }\nkey: customer_id\n"

// openLookup builds and opens an http lookup.
func openLookup(t testing.TB, src string) *table {
	t.Helper()
	return openLookupEnv(t, src, connectortest.NewEnv(t))
}

func openLookupEnv(t testing.TB, src string, env *connector.Env) *table {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLookup(p)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if s, ok := l.(connector.Schemer); !ok || s.Schema() == nil {
		t.Fatal("the lookup does not declare its schema")
	}
	tb, err := l.Open(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb.(*table)
}

func checkCustomer(t testing.TB, id int64, row record.Row) {
	t.Helper()
	want := Customer(id)
	if row[0] != id || row[1] != want["region"] || row[2] != want["tier"] || record.FormatText(row[3]) != fmt.Sprint(want["credit"]) {
		t.Errorf("customer %d: row %v, want %v", id, row, want)
	}
}

func TestLookupPerKey(t *testing.T) {
	svc := NewCustomerService(t)
	tb := openLookup(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\n"+customerSchema)
	ctx := context.Background()
	for pass := range 2 {
		for id := int64(1); id <= 20; id++ {
			row, ok, err := tb.Get(ctx, []any{id})
			if err != nil || ok != svc.Exists(id) {
				t.Fatalf("pass %d, customer %d: ok %v, err %v", pass, id, ok, err)
			}
			if ok {
				checkCustomer(t, id, row)
			}
		}
	}
	if n := svc.Keys.Load(); n != 20 {
		t.Errorf("%d keys asked in two passes over 20 keys, want 20 (rows and misses cached)", n)
	}
	if hits, misses := tb.CacheStats(); hits != 20 || misses != 20 {
		t.Errorf("cache: %d hits, %d misses; want 20 and 20", hits, misses)
	}
	// A null record is a miss; the text "3" is the key 3, from the cache.
	if _, ok, err := tb.Get(ctx, []any{int64(0)}); ok || err != nil {
		t.Errorf("a null record: ok %v err %v", ok, err)
	}
	if _, ok, _ := tb.Get(ctx, []any{"3"}); !ok || svc.Asked(3) != 1 {
		t.Errorf("the text 3: ok %v, asked %d times", ok, svc.Asked(3))
	}
	// A key the service refuses (400) rejects the record; a refused login
	// (401) fails the run; a key is escaped in the path.
	_, _, err := tb.Get(ctx, []any{"a/b c?"})
	if !errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "/customers/a%2Fb%20c%3F: 400 Bad Request") || !strings.Contains(err.Error(), "not a customer id") {
		t.Errorf("a key the service refuses: %v", err)
	}
	_, _, err = tb.Get(ctx, []any{int64(-1)})
	if err == nil || errors.Is(err, connector.ErrReject) || errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("a refused login: %v", err)
	}
}

func TestLookupCoalescesAndBoundsConcurrency(t *testing.T) {
	svc := NewCustomerService(t)
	svc.Slow(20 * time.Millisecond)
	tb := openLookup(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\nconcurrency: 4\n"+customerSchema)
	keys := make([][]any, 200)
	for i := range keys {
		keys[i] = []any{int64(i%50 + 1)} // 50 keys, each 4 times
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			out := make([]connector.Answer, len(keys))
			tb.GetBatch(context.Background(), keys, out)
			for i, a := range out {
				id := keys[i][0].(int64)
				if a.Err != nil || a.OK != svc.Exists(id) {
					t.Errorf("customer %d: %+v", id, a)
				}
			}
		})
	}
	wg.Wait()
	for id := int64(1); id <= 50; id++ {
		if n := svc.Asked(id); n != 1 {
			t.Errorf("customer %d asked %d times by 3 concurrent batches, want once", id, n)
		}
	}
	if p := svc.Peak.Load(); p > 4 {
		t.Errorf("%d requests in flight at once, more than concurrency 4", p)
	}
}

func TestLookupBatch(t *testing.T) {
	svc := NewCustomerService(t)
	for name, yaml := range map[string]string{
		"List":   "batch: { url: " + svc.URL() + "/customers/batch, size: 30, body: ids, records: results }\n",
		"Object": "batch: { url: " + svc.URL() + "/customers/by-id, size: 30 }\n",
	} {
		t.Run(name, func(t *testing.T) {
			before := svc.Requests.Load()
			tb := openLookup(t, yaml+customerSchema)
			keys := make([][]any, 100)
			for i := range keys {
				keys[i] = []any{int64(i + 1)}
			}
			out := make([]connector.Answer, len(keys))
			tb.GetBatch(context.Background(), keys, out)
			for i, a := range out {
				id := int64(i + 1)
				if a.Err != nil || a.OK != svc.Exists(id) {
					t.Fatalf("customer %d: %+v", id, a)
				}
				if a.OK {
					checkCustomer(t, id, a.Row)
				}
			}
			if n := svc.Requests.Load() - before; n != 4 {
				t.Errorf("%d requests for 100 keys by 30, want 4", n)
			}
			tb.GetBatch(context.Background(), keys, out)
			if n := svc.Requests.Load() - before; n != 4 {
				t.Errorf("the second pass made requests: %d in all", n)
			}
		})
	}
}

func TestLookupRetryAfter(t *testing.T) {
	svc := NewCustomerService(t)
	svc.FailNext("1", 429)
	tb := openLookup(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\nbackoff: 1ms\n"+customerSchema)
	start := time.Now()
	row, ok, err := tb.Get(context.Background(), []any{int64(8)})
	if err != nil || !ok {
		t.Fatalf("ok %v err %v", ok, err)
	}
	checkCustomer(t, 8, row)
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %s: Retry-After: 1 was not honoured", d)
	}
}

func TestLookupUnavailable(t *testing.T) {
	t.Run("Reject", func(t *testing.T) {
		svc := NewCustomerService(t)
		tb := openLookup(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\nretries: 1\nbackoff: 1ms\non_unavailable: reject\nbreaker: { failures: 3, cooldown: 200ms }\n"+customerSchema)
		ctx := context.Background()
		if _, ok, err := tb.Get(ctx, []any{int64(1)}); !ok || err != nil {
			t.Fatalf("before the outage: ok %v err %v", ok, err)
		}
		svc.Down()
		for id := int64(2); id < 6; id++ {
			_, ok, err := tb.Get(ctx, []any{id})
			if ok || !errors.Is(err, connector.ErrReject) {
				t.Fatalf("customer %d during the outage: ok %v err %v; want a reject", id, ok, err)
			}
		}
		if s := tb.Stats(); s.Breaker != lookupcache.Open || s.Opened != 1 {
			t.Fatalf("during the outage: %+v; want the breaker open", s)
		}
		svc.Up()
		// The breaker lets a probe through once its cooldown has passed.
		time.Sleep(250 * time.Millisecond)
		if row, ok, err := tb.Get(ctx, []any{int64(2)}); err != nil || !ok {
			t.Fatalf("after the outage and the cooldown: ok %v err %v", ok, err)
		} else {
			checkCustomer(t, 2, row)
		}
		if s := tb.Stats(); s.Breaker != lookupcache.Closed || s.Closed != 1 {
			t.Errorf("after the outage: %+v; want the breaker closed again", s)
		}
	})
	t.Run("WaitIsBounded", func(t *testing.T) {
		svc := NewCustomerService(t)
		svc.Down()
		tb := openLookup(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\nretries: 1\nbackoff: 1ms\nmax_wait: 300ms\nbreaker: { failures: 2, cooldown: 50ms }\n"+customerSchema)
		_, ok, err := tb.Get(context.Background(), []any{int64(1)})
		if ok || !errors.Is(err, connector.ErrUnavailable) || errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("ok %v err %v; want the run to fail after max_wait", ok, err)
		}
	})
	t.Run("WaitForTheService", func(t *testing.T) {
		svc := NewCustomerService(t)
		svc.Down()
		env := connectortest.NewEnv(t)
		opened := make(chan struct{}, 100)
		env.Logger = slog.New(&signalHandler{match: "circuit opened", ch: opened})
		tb := openLookupEnv(t, "url: "+svc.URL()+"/customers/{{customer_id}}\nrecord: data\nretries: 1\nbackoff: 1ms\nmax_wait: 1m\nbreaker: { failures: 2, cooldown: 50ms }\n"+customerSchema, env)
		got := make(chan error, 1)
		go func() {
			row, ok, err := tb.Get(context.Background(), []any{int64(1)})
			if err == nil && (!ok || row[1] != "us") {
				err = fmt.Errorf("row %v ok %v", row, ok)
			}
			got <- err
		}()
		<-opened // up once the lookup has failed enough to open the breaker
		svc.Up()
		if err := <-got; err != nil {
			t.Fatalf("the waiting lookup: %v", err)
		}
	})
}

func TestLookupConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"NoURL":               {customerSchema, "give url"},
		"Both":                {"url: http://x/{{customer_id}}\nbatch: {url: http://x/}\n" + customerSchema, "not both"},
		"NotAKey":             {"url: http://x/{{id}}\n" + customerSchema, "{{id}} is not a key field"},
		"KeyMissing":          {"url: http://x/{{a}}\nkey: [a, b]\nschema: {a: int}", "key field b has no {{b}}"},
		"BadTemplate":         {"url: http://x/{{customer_id\n" + customerSchema, "without its }}"},
		"BatchKeyNotInSchema": {"batch: {url: http://x/}\nkey: id\nschema: {a: int}", "must be in the schema"},
		"BadPolicy":           {"url: http://x/{{customer_id}}\non_unavailable: ignore\n" + customerSchema, "want wait or reject"},
		"NoSchema":            {"url: http://x/{{customer_id}}\nkey: customer_id", "schema is required"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := connector.ParamsFromYAML(tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newLookup(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// signalHandler is a slog handler that signals each record whose message
// contains match.
type signalHandler struct {
	match string
	ch    chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }
