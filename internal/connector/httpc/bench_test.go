package httpc

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// BenchmarkLookup100kKeys looks up 100k distinct keys against a service
// on 127.0.0.1 the way the enrich step does (batches of 4096 keys, one
// GetBatch per batch, on two workers), then the same keys again. It
// reports the first pass's lookups per second and the second pass's cache
// hit rate. Run with -benchtime=1x.
func BenchmarkLookup100kKeys(b *testing.B) {
	for _, tc := range []struct{ name, yaml string }{
		{"PerKey", "url: {{.}}/customers/{{customer_id}}\nrecord: data\n"},
		{"Batch", "batch: { url: {{.}}/customers/batch, size: 200, body: ids, records: results }\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			svc := NewCustomerService(b)
			svc.Exists = func(int64) bool { return true }
			yaml := replaceBase(tc.yaml, svc.URL()) + customerSchema + "cache: { size: 200000 }\nconcurrency: 64\n"
			const keys, batch, workers = 100_000, 4096, 2
			var rate, hitRate float64
			for range b.N {
				tb := openLookup(b, yaml)
				pass := func() time.Duration {
					start := time.Now()
					next := make(chan int)
					var wg sync.WaitGroup
					for range workers {
						wg.Go(func() {
							ks := make([][]any, batch)
							out := make([]connector.Answer, batch)
							for first := range next {
								n := min(batch, keys-first)
								for i := range n {
									ks[i] = []any{int64(first + i + 1)}
								}
								tb.GetBatch(context.Background(), ks[:n], out[:n])
								for i := range n {
									if out[i].Err != nil || !out[i].OK {
										b.Errorf("key %d: %+v", first+i+1, out[i])
										return
									}
								}
							}
						})
					}
					for first := 0; first < keys; first += batch {
						next <- first
					}
					close(next)
					wg.Wait()
					return time.Since(start)
				}
				d := pass()
				h0, m0 := tb.CacheStats()
				pass()
				h1, m1 := tb.CacheStats()
				rate = keys / d.Seconds()
				hitRate = float64(h1-h0) / float64(h1-h0+m1-m0)
				tb.Close()
			}
			b.ReportMetric(rate, "lookups/s")
			b.ReportMetric(hitRate*100, "hit%")
			b.ReportMetric(float64(svc.Requests.Load())/float64(b.N), "requests/op")
		})
	}
}

func replaceBase(s, base string) string { return strings.ReplaceAll(s, "{{.}}", base) }
