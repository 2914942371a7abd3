package file

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
)

// customersCSV returns a customers file of n rows keyed 1..n, shaped like
// bench/gen's: a unique name, and a region and a tier of few values each.
func customersCSV(n int) string {
	var b strings.Builder
	b.WriteString("customer_id,name,region,tier\n")
	regions := []string{"emea", "amer", "apac", "latam"}
	tiers := []string{"gold", "silver", "bronze"}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,Customer %d,%s,%s\n", i, i, regions[(i*7)%4], tiers[(i*13)%3])
	}
	return b.String()
}

const customersLookup = "type: csv\npath: customers.csv\nkey: customer_id\nschema: { customer_id: int, name: string, region: string, tier: string }"

func benchCustomers(b *testing.B, n int) (*connector.Env, connector.Table) {
	b.Helper()
	env := testEnv(b)
	if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv"), []byte(customersCSV(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	t, err := openLookup(b, env, customersLookup)
	if err != nil {
		b.Fatal(err)
	}
	return env, t
}

// BenchmarkCSVLookupPreload is the one-off cost of loading a 100k-row
// lookup when a run starts.
func BenchmarkCSVLookupPreload(b *testing.B) {
	env, _ := benchCustomers(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t, err := openLookup(b, env, customersLookup)
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkCSVLookupPreloadFields is the same load when the steps read two
// of the fields, as scenario b of bench/run.sh does: the names are not
// kept.
func BenchmarkCSVLookupPreloadFields(b *testing.B) {
	env, _ := benchCustomers(b, 100_000)
	e, _ := registry().Get(connector.KindLookup, "csv")
	l, err := e.Lookup(params(b, customersLookup))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t, err := l.(connector.FieldLoader).OpenFields(context.Background(), env, []string{"region", "tier"})
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkCSVLookupPreloadQuoted is BenchmarkCSVLookupPreload with every
// name quoted, as a writer that quotes texts writes them.
func BenchmarkCSVLookupPreloadQuoted(b *testing.B) {
	env := testEnv(b)
	quoted := regexp.MustCompile(`(?m)^(\d+),(Customer \d+),`).ReplaceAllString(customersCSV(100_000), `$1,"$2",`)
	if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv"), []byte(quoted), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		t, err := openLookup(b, env, customersLookup)
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkCSVLookupGet looks up random keys of a 100k-row lookup and reads
// two text fields of each row, as enrichment followed by a sink does: the
// cost is mostly where the table's memory sends the processor.
func BenchmarkCSVLookupGet(b *testing.B) {
	const n = 100_000
	_, t := benchCustomers(b, n)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([][]any, 1<<16)
	for i := range keys {
		keys[i] = []any{int64(1 + rng.IntN(n))}
	}
	ctx := context.Background()
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		row, ok, err := t.Get(ctx, keys[i&(len(keys)-1)])
		if err != nil || !ok {
			b.Fatalf("Get: %v, %v", ok, err)
		}
		total += len(row[2].(string)) + int(row[3].(string)[0])
		i++
	}
	if total == 0 {
		b.Fatal("nothing read")
	}
}

// BenchmarkCSVLookupGC is the time of one garbage collection with a
// 100k-row lookup loaded: every collection of a run pays it.
func BenchmarkCSVLookupGC(b *testing.B) {
	_, t := benchCustomers(b, 100_000)
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	runtime.KeepAlive(t)
}

// BenchmarkGCNoLookup is BenchmarkCSVLookupGC's baseline: a collection with no
// lookup loaded.
func BenchmarkGCNoLookup(b *testing.B) {
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
}

// BenchmarkJSONLLookupPreload is the one-off cost of loading a 100k-row
// JSON Lines lookup when a run starts, with a schema.
func BenchmarkJSONLLookupPreload(b *testing.B) {
	env := testEnv(b)
	var text strings.Builder
	regions := []string{"emea", "amer", "apac", "latam"}
	for i := 1; i <= 100_000; i++ {
		fmt.Fprintf(&text, `{"customer_id": %d, "name": "Customer %d", "region": %q, "tier": "gold"}`+"\n", i, i, regions[i%4])
	}
	if err := os.WriteFile(filepath.Join(env.Dir, "customers.jsonl"), []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	const lookup = "type: jsonl\npath: customers.jsonl\nkey: customer_id\nschema: { customer_id: int, name: string, region: string, tier: string }"
	b.ReportAllocs()
	for b.Loop() {
		t, err := openLookup(b, env, lookup)
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}
