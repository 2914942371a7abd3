package mysql

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestLookupConfigErrors(t *testing.T) {
	const dsn = "dsn: 'root@tcp(127.0.0.1:3306)/test'\n"
	tests := []struct{ Name, YAML, Want string }{
		{"no key", dsn + "table: t", "key is required"},
		{"both table and query", dsn + "table: t\nquery: select 1\nkey: id", "exclude each other"},
		{"key not in schema", dsn + "table: t\nkey: id\nschema: {name: string}", `key field "id" is not in the schema`},
		{"unknown cache mode", dsn + "table: t\nkey: id\ncache: {mode: sometimes}", `cache.mode "sometimes"`},
		{"cache size", dsn + "table: t\nkey: id\ncache: {mode: query, size: 0}", "cache.size must be positive"},
		{"timeout", dsn + "table: t\nkey: id\ntimeout: 0s", "timeout must be positive"},
		{"breaker", dsn + "table: t\nkey: id\nbreaker: {failures: 0}", "breaker.failures must be positive"},
	}
	kit.ConfigErrors(t, connector.KindLookup, tests, nil)
}

func ratesTable(db *testDB) {
	db.exec(`CREATE TABLE rates (currency CHAR(3), day DATE, rate DECIMAL(10,4), note VARCHAR(20), PRIMARY KEY (currency, day))`)
	db.exec(`INSERT INTO rates VALUES ('EUR', '2024-01-01', 1.10, 'a'), ('EUR', '2024-01-02', 1.11, 'b'), ('USD', '2024-01-01', 1, 'c')`)
}

func TestLookupMultiColumnKey(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	day1, day2 := sqlkittest.MustDate(t, "2024-01-01"), sqlkittest.MustDate(t, "2024-01-02")
	tests := []struct {
		name   string
		key    []any
		want   record.Row
		wantOK bool
	}{
		{"typed key", []any{"EUR", day2}, record.Row{"EUR", day2, record.MustDec("1.1100"), "b"}, true},
		{"key as text", []any{"EUR", "2024-01-01"}, record.Row{"EUR", day1, record.MustDec("1.1"), "a"}, true},
		{"miss", []any{"EUR", "2024-01-03"}, nil, false},
		{"key of another type", []any{"EUR", "someday"}, nil, false},
		{"null key", []any{nil, day1}, nil, false},
	}
	for _, mode := range []string{"preload", "query"} {
		t.Run(mode, func(t *testing.T) {
			tbl, err := kit.Lookup(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: "+mode+"}")).Open(context.Background(), sqlkittest.Env(t))
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			if diff := cmp.Diff([]string{"currency", "day"}, tbl.Keys()); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if got := tbl.Schema().String(); got != "currency string, day date, rate decimal, note string" {
				t.Errorf("schema %s", got)
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					row, ok, err := tbl.Get(context.Background(), tc.key)
					if err != nil || ok != tc.wantOK {
						t.Fatalf("Get(%v): ok=%v err=%v, want ok=%v", tc.key, ok, err, tc.wantOK)
					}
					if diff := cmp.Diff(tc.want, row); diff != "" {
						t.Errorf("row (-want +got):\n%s", diff)
					}
				})
			}
			if _, _, err := tbl.Get(context.Background(), []any{"EUR"}); err == nil {
				t.Error("Get with one key value of two succeeded")
			}
		})
	}
}

func TestLookupQueryWithDeclaredSchema(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	l := kit.Lookup(t, db.yaml("query: SELECT currency, rate * 2 AS double_rate FROM rates WHERE day = '2024-01-01'\nkey: currency\nschema: {currency: string, double_rate: float}"))
	if sc, ok := l.(connector.Schemer); !ok || sc.Schema().String() != "currency string, double_rate float" {
		t.Fatalf("a lookup with a declared schema: Schemer %v", ok)
	}
	for _, mode := range []string{"preload", "query"} {
		t.Run(mode, func(t *testing.T) {
			tbl, err := kit.Lookup(t, db.yaml("query: SELECT currency, rate * 2 AS double_rate FROM rates WHERE day = '2024-01-01'\nkey: currency\nschema: {currency: string, double_rate: float}\ncache: {mode: "+mode+"}")).Open(context.Background(), sqlkittest.Env(t))
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			row, ok, err := tbl.Get(context.Background(), []any{"EUR"})
			if err != nil || !ok || !cmp.Equal(row, record.Row{"EUR", 2.2}) {
				t.Errorf("Get: %v %v %v", row, ok, err)
			}
		})
	}
}

func TestLookupPreloadRefreshSwapsTheRows(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	l := kit.Lookup(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: preload, refresh: 1h}")).(*lookup)
	tbl, err := l.Open(context.Background(), sqlkittest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	pt := tbl.(*preloadTable)
	key := []any{"EUR", "2024-01-01"}
	if row, ok, _ := tbl.Get(context.Background(), key); !ok || row[3] != "a" {
		t.Fatalf("first load: %v %v", row, ok)
	}
	db.exec(`UPDATE rates SET note = 'changed' WHERE currency = 'EUR' AND day = '2024-01-01'`)
	if row, _, _ := tbl.Get(context.Background(), key); row[3] != "a" {
		t.Errorf("the index changed before a refresh: %v", row)
	}
	ix, err := pt.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pt.ix.Store(ix)
	if row, _, _ := tbl.Get(context.Background(), key); row[3] != "changed" {
		t.Errorf("after a refresh: %v", row)
	}
	// enrich and lookup() read the index of the last load.
	if got := connector.IndexOf(tbl); got != ix {
		t.Errorf("the table's index after a refresh: %p, want %p", got, ix)
	}
	if err := tbl.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLookupPreloadRefreshRunsInTheBackground(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	tbl, err := kit.Lookup(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: preload, refresh: 10ms}")).Open(context.Background(), sqlkittest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	pt := tbl.(*preloadTable)
	db.exec(`UPDATE rates SET note = 'changed' WHERE currency = 'USD'`)
	// The refresh goroutine runs on its own clock: wait for its effect.
	eventually(t, "a background refresh", func() bool {
		row, _, _ := tbl.Get(context.Background(), []any{"USD", "2024-01-01"})
		return pt.loads.Load() >= 2 && row[3] == "changed"
	})
	if err := tbl.Close(); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is the time of a query table's cache and breaker.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func openQueryTable(t *testing.T, yaml string) (*queryTable, *fakeClock) {
	t.Helper()
	tbl, err := kit.Lookup(t, yaml).Open(context.Background(), sqlkittest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	qt := tbl.(*queryTable)
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	qt.now = clock.now
	return qt, clock
}

func TestLookupQueryCache(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	qt, clock := openQueryTable(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: query, size: 2, ttl: 1m, negative_ttl: 10s}"))
	get := func(cur, day string) bool {
		t.Helper()
		_, ok, err := qt.Get(context.Background(), []any{cur, day})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	steps := []struct {
		name    string
		do      func()
		queries int64
	}{
		{"first get queries", func() { get("EUR", "2024-01-01") }, 1},
		{"second get is a hit", func() { get("EUR", "2024-01-01") }, 1},
		{"same key as text and date is one entry", func() { qt.Get(context.Background(), []any{"EUR", sqlkittest.MustDate(t, "2024-01-01")}) }, 1},
		{"a miss queries", func() { get("GBP", "2024-01-01") }, 2},
		{"a miss is cached", func() {
			if get("GBP", "2024-01-01") {
				t.Error("GBP found")
			}
		}, 2},
		{"the miss expires after negative_ttl", func() { clock.advance(11 * time.Second); get("GBP", "2024-01-01") }, 3},
		{"the hit is still cached", func() { get("EUR", "2024-01-01") }, 3},
		{"a third key evicts the least recently used", func() { get("USD", "2024-01-01") }, 4},
		{"the evicted key queries again", func() { get("GBP", "2024-01-01") }, 5},
		{"the found row expires after ttl", func() { clock.advance(time.Minute); get("USD", "2024-01-01") }, 6},
	}
	for _, s := range steps {
		s.do()
		if got := qt.queries.Load(); got != s.queries {
			t.Fatalf("%s: %d queries, want %d", s.name, got, s.queries)
		}
	}
	if n := qt.cache.len(); n != 2 {
		t.Errorf("cache holds %d keys, want its size 2", n)
	}
	if qt.cache.negHits.Load() != 1 || qt.cache.hits.Load() != 4 {
		t.Errorf("hits %d, negative hits %d", qt.cache.hits.Load(), qt.cache.negHits.Load())
	}
}

func TestLookupQueryOneQueryPerKeyInFlight(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	qt, _ := openQueryTable(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: query}"))
	const n = 8
	waiting := make(chan struct{}, n)
	qt.onWait = func() { waiting <- struct{}{} }
	qt.beforeQuery = func() {
		for i := 0; i < n-1; i++ { // the query starts once every other lookup waits for it
			<-waiting
		}
	}
	var wg sync.WaitGroup
	rows := make([]record.Row, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i], _, errs[i] = qt.Get(context.Background(), []any{"USD", "2024-01-01"})
		}()
	}
	wg.Wait()
	if got := qt.queries.Load(); got != 1 {
		t.Errorf("%d queries for %d concurrent lookups of one key, want 1", got, n)
	}
	for i := range rows {
		if errs[i] != nil || rows[i] == nil || rows[i][3] != "c" {
			t.Errorf("lookup %d: %v %v", i, rows[i], errs[i])
		}
	}
}

func TestLookupQueryRetriesAndBreaker(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	p := newProxy(t, serverAddr)
	qt, clock := openQueryTable(t, "dsn: '"+p.dsn(db.name)+"?timeout=1s'\ntable: rates\nkey: [currency, day]\ncache: {mode: query, ttl: 1ms}\nretries: 2\nbackoff: 1ms\nbreaker: {failures: 3, cooldown: 30s}")
	key := []any{"EUR", "2024-01-02"}
	if _, ok, err := qt.Get(context.Background(), key); err != nil || !ok {
		t.Fatalf("Get before the outage: %v %v", ok, err)
	}
	p.stop()
	for i := 1; i <= 3; i++ {
		clock.advance(time.Second) // past the ttl: every Get asks the database
		before := qt.queries.Load()
		_, ok, err := qt.Get(context.Background(), key)
		if err == nil || ok || !errors.Is(err, connector.ErrTransient) {
			t.Fatalf("Get %d during the outage: ok=%v err=%v, want a transient error", i, ok, err)
		}
		if got := qt.queries.Load() - before; got != 3 {
			t.Errorf("Get %d ran %d queries, want 1 + 2 retries", i, got)
		}
	}
	// Open: fails at once, without a query.
	before := qt.queries.Load()
	_, _, err := qt.Get(context.Background(), key)
	if err == nil || !strings.Contains(err.Error(), "circuit open") || qt.queries.Load() != before {
		t.Fatalf("Get with the circuit open: %v (queries %d -> %d)", err, before, qt.queries.Load())
	}
	// Half-open after the cooldown: one probe; it fails and opens again.
	clock.advance(31 * time.Second)
	if _, _, err := qt.Get(context.Background(), key); err == nil || strings.Contains(err.Error(), "circuit open") {
		t.Fatalf("probe: %v, want the database's error", err)
	}
	if _, _, err := qt.Get(context.Background(), key); err == nil || !strings.Contains(err.Error(), "circuit open") {
		t.Fatalf("after a failed probe: %v, want the circuit open", err)
	}
	// The database is back: the next probe closes the circuit.
	p.start()
	clock.advance(31 * time.Second)
	if row, ok, err := qt.Get(context.Background(), key); err != nil || !ok || row[3] != "b" {
		t.Fatalf("probe after the outage: %v %v %v", row, ok, err)
	}
	clock.advance(time.Second)
	if _, ok, err := qt.Get(context.Background(), key); err != nil || !ok {
		t.Fatalf("Get with the circuit closed: %v %v", ok, err)
	}
}

func TestLookupQueryTimeout(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	qt, _ := openQueryTable(t, db.yaml("query: SELECT currency, note FROM rates WHERE SLEEP(0.3) = 0\nkey: currency\ncache: {mode: query}\ntimeout: 20ms\nretries: 1\nbackoff: 1ms"))
	_, ok, err := qt.Get(context.Background(), []any{"EUR"})
	if err == nil || ok || !strings.Contains(err.Error(), "timed out after 20ms") {
		t.Fatalf("Get: ok=%v err=%v, want a timeout", ok, err)
	}
	if got := qt.queries.Load(); got != 2 {
		t.Errorf("%d queries, want 2 (one retry)", got)
	}
}

func TestLookupGetHonoursCancelledContext(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	qt, _ := openQueryTable(t, db.yaml("table: rates\nkey: [currency, day]\ncache: {mode: query}"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := qt.Get(ctx, []any{"EUR", "2024-01-01"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v, want context.Canceled", err)
	}
	// A cancelled lookup neither caches nor counts as a failure.
	if _, ok, err := qt.Get(context.Background(), []any{"EUR", "2024-01-01"}); err != nil || !ok {
		t.Errorf("Get after: %v %v", ok, err)
	}
}

func TestLookupUnreachableServerIsUnavailable(t *testing.T) {
	_, err := kit.Lookup(t, "dsn: 'root:s3cret@tcp(127.0.0.1:1)/test?timeout=1s'\ntable: t\nkey: id").Open(context.Background(), sqlkittest.Env(t))
	if !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open: %v, want ErrUnavailable without the password", err)
	}
}

func TestLookupLoadsOnlyTheFieldsRead(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	env := sqlkittest.Env(t)
	day1 := sqlkittest.MustDate(t, "2024-01-01")
	tbl := sqlkittest.LoadsOnly(t, kit.Lookup(t, db.yaml("table: rates\nkey: [currency, day]")), env, []string{"rate"},
		[]any{"EUR", day1}, record.Row{"EUR", day1, record.MustDec("1.1"), nil})
	// A refresh loads the same fields.
	pt := tbl.(*preloadTable)
	ix, err := pt.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tbl.Schema().Index("note"); ix.Loaded(i) {
		t.Error("a refresh loaded a field no step reads")
	}
}
