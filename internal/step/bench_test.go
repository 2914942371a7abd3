package step

import (
	"context"
	"testing"

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
