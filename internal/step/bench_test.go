package step

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// benchProcess measures one step over batches of 4096 orders.
func benchProcess(b *testing.B, src string) {
	s, _, err := bind(b, src, orders)
	if err != nil {
		b.Fatal(err)
	}
	const n = 4096
	proto := make([]record.Row, n)
	for i := range proto {
		proto[i] = order(int64(i), int64(42+i%3*10), int64(i%9), "19.99", []string{"shipped", "new", "cancelled"}[i%3])
	}
	rows := make([]record.Row, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range rows {
			rows[i] = append(record.Row(nil), proto[i]...)
		}
		b.StartTimer()
		batch := &record.Batch{Schema: orders, Rows: rows, Read: n}
		if err := s.Process(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

func BenchmarkFilter(b *testing.B) { benchProcess(b, `- filter: status != "cancelled"`) }
func BenchmarkMap(b *testing.B)    { benchProcess(b, "- map: { total: qty * unit_price }") }
func BenchmarkMapReplace(b *testing.B) {
	benchProcess(b, "- map: { status: upper(status), qty: qty + 1 }")
}
func BenchmarkValidate(b *testing.B) {
	benchProcess(b, `- validate: [ { check: "qty >= 0" }, { check: "unit_price > 0" } ]`)
}
func BenchmarkEnrich(b *testing.B) {
	benchProcess(b, "- enrich: { lookup: customers, on: customer_id, missing: null }")
}
func BenchmarkSelect(b *testing.B) { benchProcess(b, "- select: [order_id, qty, status]") }

// The step chains of bench/run.sh's scenarios a (filter, map) and b (a,
// plus enrichment from 100k customers and a rate per currency), on batches
// of 4096 orders whose rows have the room the chain asks for, as the CSV
// source makes them. Compare b's ns/row with a's.

var benchOrders = record.MustSchema(
	record.Field{Name: "order_id", Type: record.Int},
	record.Field{Name: "customer_id", Type: record.Int},
	record.Field{Name: "qty", Type: record.Int},
	record.Field{Name: "unit_price", Type: record.Decimal},
	record.Field{Name: "currency", Type: record.String},
	record.Field{Name: "status", Type: record.String},
	record.Field{Name: "ordered_at", Type: record.Timestamp},
)

func benchLookups(b *testing.B) map[string]connector.Table {
	cs := record.MustSchema(
		record.Field{Name: "customer_id", Type: record.Int},
		record.Field{Name: "name", Type: record.String},
		record.Field{Name: "region", Type: record.String},
		record.Field{Name: "tier", Type: record.String},
	)
	customers, err := connector.NewIndex(cs, []string{"customer_id"})
	if err != nil {
		b.Fatal(err)
	}
	regions, tiers := []string{"emea", "amer", "apac", "latam"}, []string{"gold", "silver", "bronze"}
	for i := 1; i <= 100_000; i++ {
		customers.Add(record.Row{int64(i), fmt.Sprint("Customer ", i), regions[i%4], tiers[i%3]})
	}
	fx, err := connector.NewIndex(record.MustSchema(
		record.Field{Name: "currency", Type: record.String}, record.Field{Name: "rate", Type: record.Decimal}), []string{"currency"})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range [][2]string{{"USD", "1"}, {"EUR", "1.0842"}, {"GBP", "1.2713"}, {"JPY", "0.006712"}, {"CHF", "1.1305"}} {
		fx.Add(record.Row{r[0], record.MustDec(r[1])})
	}
	return map[string]connector.Table{"customers": customers, "fx": fx}
}

func benchChain(b *testing.B, srcs ...string) {
	env := &connector.StepEnv{Env: &connector.Env{RunTime: runTime, Location: time.UTC}, Lookups: benchLookups(b)}
	in := record.MustSchema(benchOrders.Fields()...)
	var steps []connector.Step
	schema := in
	for _, src := range srcs {
		s, err := build(b, src)
		if err != nil {
			b.Fatal(err)
		}
		if schema, err = s.Bind(schema, env); err != nil {
			b.Fatal(err)
		}
		steps = append(steps, s)
	}
	const n = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	currencies := []string{"USD", "EUR", "GBP", "JPY", "CHF"}
	statuses := []string{"paid", "shipped", "pending", "refunded", "new", "cancelled"}
	proto := make([]record.Row, n)
	for i := range proto {
		proto[i] = record.Row{int64(i), int64(1 + rng.IntN(100_000)), int64(1 + rng.IntN(10)),
			record.MustDec(fmt.Sprintf("%d.%02d", 1+rng.IntN(999), rng.IntN(100))), currencies[rng.IntN(5)],
			statuses[rng.IntN(6)], runTime.Add(-time.Duration(rng.IntN(1e6)) * time.Second)}
	}
	room := in.RowCap()
	ctx := context.Background()
	rows := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		batch := &record.Batch{Schema: in, Rows: make([]record.Row, n), Read: n, OwnCap: true}
		slab := make([]any, n*room)
		for i := range batch.Rows {
			batch.Rows[i] = slab[i*room : i*room+len(proto[i]) : (i+1)*room]
			copy(batch.Rows[i], proto[i])
		}
		b.StartTimer()
		for _, s := range steps {
			if err := s.Process(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		rows += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

func BenchmarkChainA(b *testing.B) {
	benchChain(b, `- filter: status != "cancelled"`, "- map: { total: qty * unit_price }")
}

func BenchmarkChainB(b *testing.B) {
	benchChain(b, `- filter: status != "cancelled"`, "- map: { total: qty * unit_price }",
		"- enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: null }",
		"- map:\n    total_usd: qty * unit_price * lookup(\"fx\", currency).rate\n")
}

func BenchmarkChainBEnrichOnly(b *testing.B) {
	benchChain(b, `- filter: status != "cancelled"`, "- map: { total: qty * unit_price }",
		"- enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: null }")
}
