package httpc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/httpc"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// outage is how long the service stays down: BACKBONE_TEST_OUTAGE (like
// 30s, the length the issue names), 5s by default to keep the suite
// short.
func outage(t *testing.T) time.Duration {
	if s := os.Getenv("BACKBONE_TEST_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BACKBONE_TEST_OUTAGE: %v", err)
		}
		return d
	}
	return 5 * time.Second
}

// TestPipelineLookupOutage runs orders through an http lookup while its
// service goes down, comes back slow, then recovers: under either policy
// no record is enriched with nulls, the breaker opens and closes, memory
// and goroutines stay bounded while the service is down, and throughput
// comes back to what it was before.
func TestPipelineLookupOutage(t *testing.T) {
	down := outage(t)
	for _, policy := range []string{"wait", "reject"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			testOutage(t, policy, down)
		})
	}
}

func testOutage(t *testing.T, policy string, down time.Duration) {
	svc := httpc.NewCustomerService(t)
	svc.Exists = func(int64) bool { return true }
	stop := make(chan struct{})
	src := &orderGen{stop: stop}
	dir := t.TempDir()
	p := load(t, dir, fmt.Sprintf(`name: outage
source: { type: orders_until_stopped }
lookups:
  customers:
    type: http
    url: "%s/customers/{{customer_id}}"
    key: customer_id
    record: data
    schema: { customer_id: int, region: string, tier: string }
    timeout: 1s
    retries: 2
    backoff: 20ms
    breaker: { failures: 5, cooldown: 300ms }
    on_unavailable: %s
    max_wait: %s
steps:
  - enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: reject }
sink: { type: sqlite, path: out.db, table: orders, create: true }
settings: { batch_rows: 200 }
`, svc.URL(), policy, down+time.Minute), func(r *connector.Registry) {
		r.AddSource(connector.Spec{Name: "orders_until_stopped", Summary: "test orders", Example: "-"},
			func(connector.Params) (connector.Source, error) { return src, nil })
	})
	logs := &breakerLog{}
	st := openStore(t, dir)

	type phase struct {
		baseline, recovered float64 // requests per second
		heapBefore, heapMax uint64
		goroutinesMax       int
	}
	measured := make(chan phase, 1)
	go func() {
		defer close(stop)
		var ph phase
		<-svc.WhenRequests(1000)
		t1, r1 := time.Now(), svc.Requests.Load()
		<-svc.WhenRequests(3000)
		ph.baseline = float64(svc.Requests.Load()-r1) / time.Since(t1).Seconds()
		ph.heapBefore = heapInuse()
		svc.Down()
		// Sample memory while the service is down; the outage itself is
		// the one wait here.
		end := time.Now().Add(down)
		for tick := time.NewTicker(100 * time.Millisecond); time.Now().Before(end); <-tick.C {
			ph.heapMax = max(ph.heapMax, heapInuse())
			ph.goroutinesMax = max(ph.goroutinesMax, runtime.NumGoroutine())
		}
		svc.Slow(30 * time.Millisecond)
		svc.Up()
		time.Sleep(max(down/3, time.Second)) // answering slowly
		svc.Slow(0)
		// Let the adaptive concurrency climb back, then measure.
		time.Sleep(2 * time.Second)
		t3, r3 := time.Now(), svc.Requests.Load()
		time.Sleep(3 * time.Second)
		ph.recovered = float64(svc.Requests.Load()-r3) / time.Since(t3).Seconds()
		measured <- ph
	}()
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st, Logger: slog.New(logs)})
	ph := <-measured
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("%s: read %d, written %d, rejected %d; %.0f requests/s before, %.0f after; heap %d MiB before, at most %d MiB down; %d goroutines at most; breaker opened %d, closed %d",
		policy, res.Run.Read, res.Run.Written, res.Run.Rejected, ph.baseline, ph.recovered, ph.heapBefore>>20, ph.heapMax>>20, ph.goroutinesMax, logs.opened.Load(), logs.closed.Load())
	if !res.Conserved() || res.Run.Read == 0 {
		t.Errorf("read %d = written %d + rejected %d + filtered %d does not hold", res.Run.Read, res.Run.Written, res.Run.Rejected, res.Run.Filtered)
	}
	// No record enriched with nulls: every row written has its fields.
	db := openDB(t, filepath.Join(dir, "out.db"))
	var rows, nulls int64
	if err := db.QueryRow(`SELECT count(*), count(*) - count(region) FROM orders`).Scan(&rows, &nulls); err != nil {
		t.Fatal(err)
	}
	var wrong int64
	if err := db.QueryRow(`SELECT count(*) FROM orders WHERE tier IS NULL OR region NOT IN ('eu', 'us', 'apac')`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if rows != res.Run.Written || nulls != 0 || wrong != 0 {
		t.Errorf("%d rows in SQLite (written %d), %d without a region, %d with a wrong one", rows, res.Run.Written, nulls, wrong)
	}
	switch policy {
	case "wait":
		if res.Run.Rejected != 0 {
			t.Errorf("%d records rejected while waiting for the service", res.Run.Rejected)
		}
	case "reject":
		dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "outage", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if res.Run.Rejected == 0 || len(dls) == 0 {
			t.Errorf("no record rejected during the outage")
		}
		for _, dl := range dls {
			if !strings.Contains(dl.Error, "unavailable") {
				t.Fatalf("dead letter %q: want the service's unavailability", dl.Error)
			}
		}
	}
	if logs.opened.Load() == 0 || logs.closed.Load() == 0 {
		t.Errorf("breaker opened %d and closed %d times; want both", logs.opened.Load(), logs.closed.Load())
	}
	if grew := int64(ph.heapMax) - int64(ph.heapBefore); grew > 256<<20 {
		t.Errorf("heap grew by %d MiB while the service was down", grew>>20)
	}
	if ph.goroutinesMax > 2000 {
		t.Errorf("%d goroutines while the service was down", ph.goroutinesMax)
	}
	if ph.recovered < ph.baseline/2 {
		t.Errorf("throughput %.0f requests/s after the recovery, %.0f before: it did not recover", ph.recovered, ph.baseline)
	}
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// breakerLog counts the breaker's changes in the run's log.
type breakerLog struct{ opened, closed atomic.Int64 }

func (h *breakerLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *breakerLog) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.Contains(r.Message, "circuit opened"):
		h.opened.Add(1)
	case strings.Contains(r.Message, "circuit closed"):
		h.closed.Add(1)
	}
	return nil
}
func (h *breakerLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *breakerLog) WithGroup(string) slog.Handler      { return h }

// orderGen is an endless source of orders, each for a new customer, at
// most 2500 a second (so that the throughput before and after the outage
// compares the pipeline, not the machine's other load), until stop is
// closed: a double of the Source contract standing for a long input.
type orderGen struct {
	stop <-chan struct{}
	next atomic.Int64
}

var orderSchema = record.MustSchema(record.Field{Name: "order_id", Type: record.Int}, record.Field{Name: "customer_id", Type: record.Int})

func (g *orderGen) Schema() *record.Schema { return orderSchema }
func (g *orderGen) Plan(context.Context, *connector.Env) ([]connector.Task, error) {
	return []connector.Task{{Key: "orders"}}, nil
}
func (g *orderGen) Open(context.Context, *connector.Env, connector.Task, record.Position) (connector.Reader, error) {
	return &orderReader{g: g, pace: time.NewTicker(40 * time.Millisecond)}, nil
}

type orderReader struct {
	g    *orderGen
	pace *time.Ticker
}

func (r *orderReader) Schema() *record.Schema { return orderSchema }
func (r *orderReader) Close() error           { r.pace.Stop(); return nil }
func (r *orderReader) Next(ctx context.Context) (*record.Batch, error) {
	select {
	case <-r.g.stop:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.pace.C:
	}
	b := &record.Batch{Schema: orderSchema}
	for range 100 {
		n := r.g.next.Add(1)
		b.Rows = append(b.Rows, record.Row{n, n})
	}
	b.Read = len(b.Rows)
	b.Pos = record.Position(strconv.FormatInt(r.g.next.Load(), 10))
	return b, nil
}
