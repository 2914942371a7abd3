package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
)

const ordersSchema = "{ order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp, sku: string }"

// ordersCSV returns n lines of an orders file with a header.
func ordersCSV(n int) string {
	var b strings.Builder
	b.WriteString("order_id,customer_id,qty,unit_price,currency,status,ordered_at,sku\n")
	cur := []string{"EUR", "USD", "GBP", "CHF"}
	st := []string{"paid", "shipped", "cancelled", "pending"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,%d,%d,%d.%02d,%s,%s,2024-05-%02dT%02d:%02d:%02d.%06dZ,SKU-%05d\n",
			1000000+i, 5000+i%9973, 1+i%7, 3+i%500, i%100, cur[i%4], st[i%4],
			1+i%28, i%24, i%60, (i*7)%60, i%1000000, i%50000)
	}
	return b.String()
}

func BenchmarkCSVRead(b *testing.B) {
	const rows = 200_000
	env := testEnv(b)
	data := ordersCSV(rows)
	path := filepath.Join(env.Dir, "orders.csv")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
	src := newSource(b, "type: csv\npath: orders.csv\nschema: "+ordersSchema)
	task := connector.Task{Key: "orders.csv"}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := src.Open(ctx, env, task, nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			batch, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if len(batch.Rejects) > 0 {
				b.Fatalf("reject: %+v", batch.Rejects[0])
			}
			n += len(batch.Rows)
		}
		r.Close()
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVScan splits the records of an orders file into fields: the
// part of reading that is done on one goroutine.
func BenchmarkCSVScan(b *testing.B) {
	data := ordersCSV(200_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w := newWindow(strings.NewReader(data), 16<<20)
		p := newCSVParser(w, ',', '"', 16<<20)
		for {
			rec, err := p.next()
			if err != nil {
				b.Fatal(err)
			}
			if rec.kind == recEOF {
				break
			}
		}
	}
}
