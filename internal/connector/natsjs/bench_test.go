package natsjs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
	"github.com/backbone-etl/backbone/internal/connector/postgres"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/step"
)

// BenchmarkNATSToPostgres measures, in one run against the same server,
// the two bare rates of JetStream — an async publisher, and a Go consumer
// of a durable pull consumer acknowledging each message — and the rate of
// a pipeline nats → map → postgres (append). It reports the pipeline's
// rate as a fraction of the lesser bare rate.
//
//	go test -run '^$' -bench NATSToPostgres -benchtime 1x ./internal/connector/natsjs/
//
// BACKBONE_BENCH_MESSAGES sets the number of messages (200000).
func BenchmarkNATSToPostgres(b *testing.B) {
	n := 200_000
	if v := os.Getenv("BACKBONE_BENCH_MESSAGES"); v != "" {
		fmt.Sscan(v, &n)
	}
	_, js := testJS(b)
	dsn := os.Getenv("BACKBONE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	pgc, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Skipf("PostgreSQL is not reachable: %v", err)
	}
	defer pgc.Close(ctx)
	schema := fmt.Sprintf("bbbench_%08x", rand.Uint32())
	if _, err := pgc.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		b.Fatal(err)
	}
	defer pgc.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck // best effort

	for i := 0; i < b.N; i++ {
		stream := testStream(b, js, nil)
		subject := stream + ".orders"
		body := func(i int) []byte {
			return fmt.Appendf(nil, `{"order_id": %d, "customer_id": %d, "qty": %d, "unit_price": "%d.25", "ordered_at": "2024-05-01T12:00:00Z"}`, i, i%977, 1+i%9, i%100)
		}

		// Bare publisher: async, with the library's window of pending acks.
		start := time.Now()
		for j := 0; j < n; j++ {
			_, err := js.PublishAsync(subject, body(j))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				<-js.PublishAsyncComplete() // the server is behind: wait for it, then go on
				_, err = js.PublishAsync(subject, body(j))
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		pubRate := float64(n) / time.Since(start).Seconds()

		// Bare consumer: a durable pull consumer read with Consume,
		// acknowledging each message.
		cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "bare", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		all := make(chan struct{})
		var once sync.Once
		start = time.Now()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			if got.Add(1) == int64(n) {
				once.Do(func() { close(all) })
			}
		}, jetstream.PullMaxMessages(4096))
		if err != nil {
			b.Fatal(err)
		}
		<-all
		conRate := float64(n) / time.Since(start).Seconds()
		cc.Stop()

		// The pipeline, reading the same messages through its own consumer.
		table := fmt.Sprintf("orders_%d", i)
		src := fmt.Sprintf(`name: bench
source:
  type: nats
  url: %s
  stream: %s
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, ordered_at: timestamp}
steps:
  - map:
      total: qty * unit_price
sink:
  type: postgres
  dsn: %s
  db_schema: %s
  table: %s
  mode: append
  create: true
`, testURL(), stream, dsn, schema, table)
		r := connector.NewRegistry()
		Register(r)
		postgres.Register(r)
		step.Register(r)
		dir := b.TempDir()
		p, err := config.Load(filepath.Join(dir, "bench.yaml"), []byte(src), config.Options{Registry: r, Env: func(string) (string, bool) { return "", false }})
		if err != nil {
			b.Fatal(err)
		}
		st := brokertest.OpenState(b, dir)
		runCtx, cancel := context.WithCancel(ctx)
		var stopped sync.Once
		start = time.Now()
		var took time.Duration
		res, err := engine.Run(runCtx, p, engine.Options{Store: st, ProgressEvery: 10 * time.Millisecond, Progress: func(pr engine.Progress) {
			if pr.Written >= int64(n) {
				stopped.Do(func() { took = time.Since(start); cancel() })
			}
		}})
		cancel()
		if res == nil || res.Run.Written != int64(n) {
			b.Fatalf("pipeline: %v, %+v", err, res)
		}
		if took == 0 {
			took = time.Since(start)
		}
		pipeRate := float64(n) / took.Seconds()
		var rows int64
		if err := pgc.QueryRow(ctx, "SELECT count(*) FROM "+schema+"."+table).Scan(&rows); err != nil || rows != int64(n) {
			b.Fatalf("the table holds %d rows (%v), want %d", rows, err, n)
		}
		b.ReportMetric(pubRate, "publish_msgs/s")
		b.ReportMetric(conRate, "consume_msgs/s")
		b.ReportMetric(pipeRate, "pipeline_msgs/s")
		b.ReportMetric(pipeRate/min(pubRate, conRate), "ratio")
	}
}
