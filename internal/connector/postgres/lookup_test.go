package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestLookupConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field, want string
	}{
		{"no key", "dsn: " + testDSN + "\ntable: t", "key", "key is required"},
		{"both table and query", "dsn: " + testDSN + "\ntable: t\nquery: select 1\nkey: id", "query", "exclude each other"},
		{"key not in schema", "dsn: " + testDSN + "\ntable: t\nkey: id\nschema: {name: string}", "key", `key field "id" is not in the schema`},
		{"unknown cache mode", "dsn: " + testDSN + "\ntable: t\nkey: id\ncache: {mode: sometimes}", "cache", `cache.mode "sometimes"`},
		{"cache size zero", "dsn: " + testDSN + "\ntable: t\nkey: id\ncache: {mode: query, size: 0}", "cache", "cache.size must be positive"},
		{"timeout zero", "dsn: " + testDSN + "\ntable: t\nkey: id\ntimeout: 0s", "timeout", "timeout must be positive"},
		{"breaker failures zero", "dsn: " + testDSN + "\ntable: t\nkey: id\nbreaker: {failures: 0}", "breaker", "breaker.failures must be positive"},
		{"pool too big", "dsn: " + testDSN + "\ntable: t\nkey: id\npool: 1000", "pool", "pool must be between"},
	}
	e, _ := testRegistry().Get(connector.KindLookup, "postgres")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params(t, tc.yaml)
			_, err := e.Lookup(p)
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
				t.Fatalf("error %v, want a *PosError containing %q", err, tc.want)
			}
			if pe.Pos != p.FieldPos(tc.field) {
				t.Errorf("error at %v, want at field %s", pe.Pos, tc.field)
			}
		})
	}
}

func TestLookupNestedDefaultsSurvivePartialConfig(t *testing.T) {
	l := buildLookup(t, "dsn: "+testDSN+"\ntable: t\nkey: id\ncache: {mode: query, ttl: 1h}\nbreaker: {cooldown: 5s}").(*pgLookup)
	want := lookupConfig{Cache: cacheConfig{Mode: cacheQuery, Size: 10000, TTL: connector.Duration(time.Hour), MissTTL: connector.Duration(time.Minute)},
		Breaker: breakerConfig{Failures: 5, Cooldown: connector.Duration(5 * time.Second)}}
	if diff := cmp.Diff(want.Cache, l.cfg.Cache); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Breaker, l.cfg.Breaker); diff != "" {
		t.Errorf("breaker (-want +got):\n%s", diff)
	}
}

const ratesTable = `CREATE TABLE rates (currency text, day date, rate numeric, note text, PRIMARY KEY (currency, day));
	INSERT INTO rates VALUES ('EUR', '2024-01-01', 1.10, 'a'), ('EUR', '2024-01-02', 1.11, 'b'), ('USD', '2024-01-01', 1, 'c'), ('GBP', '2024-01-01', 'NaN', 'bad rate')`

func TestLookupMultiColumnKey(t *testing.T) {
	p := newPG(t)
	p.exec(ratesTable)
	env := testEnv(t)
	day1, _ := record.ParseDate("2024-01-01")
	day2, _ := record.ParseDate("2024-01-02")
	tests := []struct {
		name   string
		yaml   string
		key    []any
		want   record.Row
		wantOK bool
	}{
		{"typed key", "table: rates\nkey: [currency, day]", []any{"EUR", day2}, record.Row{"EUR", day2, record.MustDec("1.11"), "b"}, true},
		{"key as text", "table: rates\nkey: [currency, day]", []any{"EUR", "2024-01-01"}, record.Row{"EUR", day1, record.MustDec("1.10"), "a"}, true},
		{"miss", "table: rates\nkey: [currency, day]", []any{"EUR", "2024-01-03"}, nil, false},
		{"key that is no date", "table: rates\nkey: [currency, day]", []any{"EUR", "someday"}, nil, false},
		{"null key", "table: rates\nkey: [currency, day]", []any{nil, day1}, nil, false},
		{"row that does not convert is left out", "table: rates\nkey: [currency, day]", []any{"GBP", day1}, nil, false},
		{"query with declared schema", "query: SELECT currency, day, rate FROM rates WHERE currency = 'USD'\nkey: [currency, day]\nschema: {currency: string, day: string, rate: float}",
			[]any{"USD", "2024-01-01"}, record.Row{"USD", "2024-01-01", 1.0}, true},
	}
	for _, mode := range []string{cachePreload, cacheQuery} {
		for _, tc := range tests {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				if mode == cachePreload && tc.name == "key that is no date" {
					tc.key = []any{"EUR", "someday"} // no such text key either
				}
				tbl, err := buildLookup(t, p.yaml(tc.yaml+"\ncache: {mode: "+mode+"}")).Open(context.Background(), env)
				if err != nil {
					t.Fatal(err)
				}
				defer tbl.Close()
				if diff := cmp.Diff([]string{"currency", "day"}, tbl.Keys()); diff != "" {
					t.Errorf("keys (-want +got):\n%s", diff)
				}
				row, ok, err := tbl.Get(context.Background(), tc.key)
				if err != nil || ok != tc.wantOK {
					t.Fatalf("Get(%v): ok=%v err=%v, want ok=%v", tc.key, ok, err, tc.wantOK)
				}
				if diff := cmp.Diff(tc.want, row, cmp.Comparer(func(a, b record.Dec) bool { return a.String() == b.String() })); diff != "" {
					t.Errorf("row (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestLookupPreloadRefresh(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE c (id bigint PRIMARY KEY, name text); INSERT INTO c VALUES (1, 'ana')")
	p.noLeaks()
	env := testEnv(t)
	tbl, err := buildLookup(t, p.yaml("table: c\nkey: id")).Open(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	pt := tbl.(*preloadTable)
	p.exec("UPDATE c SET name = 'anna'; INSERT INTO c VALUES (2, 'bob')")
	if row, _, _ := tbl.Get(context.Background(), []any{int64(1)}); row[1] != "ana" {
		t.Errorf("before the refresh: %v", row)
	}
	before := connector.IndexOf(tbl)
	if err := pt.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	// enrich and lookup() read the index of the last load.
	if ix := connector.IndexOf(tbl); ix == nil || ix == before || ix.Len() != 2 {
		t.Errorf("the table's index after the refresh: %v (before: %v)", ix, before)
	}
	for id, name := range map[int64]string{1: "anna", 2: "bob"} {
		if row, ok, err := tbl.Get(context.Background(), []any{id}); err != nil || !ok || row[1] != name {
			t.Errorf("after the refresh, key %d: %v %v %v", id, row, ok, err)
		}
	}
	// A failed refresh keeps the rows read before.
	p.exec("ALTER TABLE c RENAME TO c_gone")
	if err := pt.reload(context.Background()); err == nil {
		t.Error("refresh of a missing table succeeded")
	}
	if _, ok, _ := tbl.Get(context.Background(), []any{int64(2)}); !ok {
		t.Error("a failed refresh dropped the rows")
	}
	p.exec("ALTER TABLE c_gone RENAME TO c")
	tbl.Close()

	// The refresh runs on its own every refresh period until Close.
	tbl, err = buildLookup(t, p.yaml("table: c\nkey: id\ncache: {refresh: 1ms}")).Open(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	pt = tbl.(*preloadTable)
	refreshed := make(chan error, 100)
	pt.mu.Lock()
	pt.reloaded = func(err error) {
		select {
		case refreshed <- err:
		default:
		}
	}
	pt.mu.Unlock()
	p.exec("INSERT INTO c VALUES (3, 'cy')")
	// Wait for a refresh that started after the insert: forget those that
	// ended before it, and the one that may have been under way meanwhile.
	for len(refreshed) > 0 {
		<-refreshed
	}
	<-refreshed
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tbl.Get(context.Background(), []any{int64(3)}); !ok {
		t.Error("the periodic refresh did not pick up a new row")
	}
	tbl.Close()
}

// queryLookup opens a lookup in query mode on a table c(id, name) with
// rows 1..5.
func queryLookup(t *testing.T, p *pg, extra string) *queryTable {
	t.Helper()
	p.exec("CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY, name text); INSERT INTO c SELECT i, 'n' || i FROM generate_series(1, 5) i ON CONFLICT DO NOTHING")
	tbl, err := buildLookup(t, p.yaml("table: c\nkey: id\n"+extra)).Open(context.Background(), testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl.(*queryTable)
}

func TestLookupQueryCache(t *testing.T) {
	p := newPG(t)
	p.noLeaks()
	qt := queryLookup(t, p, "cache: {mode: query, size: 3, ttl: 1m, miss_ttl: 10s}")
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	qt.now = func() time.Time { return now }
	ctx := context.Background()
	get := func(id any) (record.Row, bool) {
		t.Helper()
		row, ok, err := qt.Get(ctx, []any{id})
		if err != nil {
			t.Fatalf("Get(%v): %v", id, err)
		}
		return row, ok
	}
	steps := []struct {
		what        string
		key         any
		advance     time.Duration
		wantOK      bool
		wantQueries int64
	}{
		{"first lookup asks", int64(1), 0, true, 1},
		{"second is a hit", int64(1), 0, true, 1},
		{"the same key as text is a hit", "1", 0, true, 1},
		{"a miss asks", int64(9), 0, false, 2},
		{"a miss is cached", int64(9), 0, false, 2},
		{"a key no bigint can be is a miss", "x", 0, false, 3},
		{"a cached miss expires after miss_ttl", int64(9), 11 * time.Second, false, 4},
		{"a cached row lives for ttl", int64(1), 0, true, 4},
		{"and then expires", int64(1), time.Minute, true, 5},
		{"fill the cache", int64(2), 0, true, 6},
		{"over its size", int64(3), 0, true, 7},
		{"the least recently used went", int64(9), 0, false, 8},
		{"recent ones stayed", int64(3), 0, true, 8},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		_, ok := get(s.key)
		if ok != s.wantOK || qt.queries.Load() != s.wantQueries {
			t.Errorf("%s: ok=%v queries=%d, want ok=%v queries=%d", s.what, ok, qt.queries.Load(), s.wantOK, s.wantQueries)
		}
	}
	if n := qt.cache.len(); n != 3 {
		t.Errorf("cache holds %d keys, want 3", n)
	}
	row, _ := get(int64(3))
	if diff := cmp.Diff(record.Row{int64(3), "n3"}, row); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestLookupQuerySharesInFlightQueries(t *testing.T) {
	p := newPG(t)
	qt := queryLookup(t, p, "cache: {mode: query}\ntimeout: 30s")
	// Hold the table locked so that the first query waits.
	p.exec("BEGIN; LOCK TABLE c IN ACCESS EXCLUSIVE MODE")
	const n = 8
	var wg sync.WaitGroup
	rows := make([]record.Row, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { rows[i], _, errs[i] = qt.Get(context.Background(), []any{int64(4)}) })
	}
	// Wait until one goroutine queries and the others wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for qt.waiting.Load() < n-1 || qt.queries.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("waiting %d, queries %d", qt.waiting.Load(), qt.queries.Load())
		}
		time.Sleep(time.Millisecond)
	}
	p.exec("ROLLBACK")
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !cmp.Equal(rows[i], record.Row{int64(4), "n4"}) {
			t.Errorf("Get %d: %v %v", i, rows[i], errs[i])
		}
	}
	if q := qt.queries.Load(); q != 1 {
		t.Errorf("%d queries for one key, want 1", q)
	}
}

func TestLookupQueryTimeout(t *testing.T) {
	p := newPG(t)
	qt := queryLookup(t, p, "cache: {mode: query}\ntimeout: 100ms\nretries: 0")
	p.exec("BEGIN; LOCK TABLE c IN ACCESS EXCLUSIVE MODE")
	_, _, err := qt.Get(context.Background(), []any{int64(1)})
	p.exec("ROLLBACK")
	if !errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("Get on a locked table: %v, want a transient timeout", err)
	}
	// The next lookup works on a new connection.
	if _, ok, err := qt.Get(context.Background(), []any{int64(1)}); err != nil || !ok {
		t.Errorf("Get after the timeout: ok=%v err=%v", ok, err)
	}
}

func TestLookupQueryRetriesAndBreaker(t *testing.T) {
	p := newPG(t)
	qt := queryLookup(t, p, "cache: {mode: query}\nretries: 2\nbreaker: {failures: 4, cooldown: 30s}")
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	qt.now = func() time.Time { return now }
	var slept []time.Duration
	qt.sleepFor = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	up := qt.pool.srv
	down, err := parseDSN("postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	// The database goes away.
	qt.pool.close()
	qt.pool = newConnPool(down, 2)
	ctx := context.Background()

	_, _, err = qt.Get(ctx, []any{int64(1)})
	if err == nil || !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("Get with the database down: %v", err)
	}
	if qt.attempts.Load() != 3 || len(slept) != 2 {
		t.Errorf("%d attempts, %d backoffs; want 3 and 2", qt.attempts.Load(), len(slept))
	}
	if slept[0] < 25*time.Millisecond || slept[0] > 50*time.Millisecond || slept[1] < 50*time.Millisecond || slept[1] > 100*time.Millisecond {
		t.Errorf("backoffs %v, want within [25ms, 50ms] and [50ms, 100ms]", slept)
	}
	// The fourth consecutive failure opens the circuit: no more attempts.
	_, _, err = qt.Get(ctx, []any{int64(2)})
	if !errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("Get with the circuit open: %v", err)
	}
	if qt.attempts.Load() != 4 {
		t.Errorf("%d attempts, want 4: the open circuit still asked", qt.attempts.Load())
	}
	// After the cooldown, one lookup tries: it fails and the circuit stays open.
	now = now.Add(31 * time.Second)
	if _, _, err := qt.Get(ctx, []any{int64(3)}); err == nil || qt.attempts.Load() != 5 {
		t.Errorf("half-open trial: %v, attempts %d", err, qt.attempts.Load())
	}
	if _, _, err := qt.Get(ctx, []any{int64(3)}); err == nil || !strings.Contains(err.Error(), "circuit open") || qt.attempts.Load() != 5 {
		t.Errorf("after a failed trial: %v, attempts %d", err, qt.attempts.Load())
	}
	// The database is back: after the cooldown a trial closes the circuit.
	qt.pool = newConnPool(up, 2)
	now = now.Add(31 * time.Second)
	for id := int64(1); id <= 3; id++ {
		if row, ok, err := qt.Get(ctx, []any{id}); err != nil || !ok || row[1] != fmt.Sprint("n", id) {
			t.Errorf("Get(%d) after recovery: %v %v %v", id, row, ok, err)
		}
	}
}

func TestLookupCheck(t *testing.T) {
	p := newPG(t)
	p.exec(ratesTable)
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "table: rates\nkey: [currency, day]", ""},
		{"missing table", "table: nope\nkey: id", "nope"},
		{"missing key", "table: rates\nkey: id", `key field "id"`},
		{"missing declared field", "table: rates\nkey: currency\nschema: {currency: string, x: int}", "no column x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := buildLookup(t, p.yaml(tc.yaml)).(checker).Check(context.Background(), testEnv(t))
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLookupUnreachableIsUnavailable(t *testing.T) {
	l := buildLookup(t, "dsn: 'postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2'\ntable: t\nkey: id")
	_, err := l.Open(context.Background(), testEnv(t))
	if !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("Open: %v, want ErrUnavailable without the password", err)
	}
}

func TestLookupLoadsOnlyTheFieldsRead(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE c (id bigint PRIMARY KEY, name text, region text, since timestamptz); INSERT INTO c VALUES (1, 'ana', 'emea', now()), (2, 'bob', 'apac', now())")
	p.noLeaks()
	env := testEnv(t)
	tbl := sqlkittest.LoadsOnly(t, buildLookup(t, p.yaml("table: c\nkey: id")), env, []string{"region"},
		[]any{int64(2)}, record.Row{int64(2), nil, "apac", nil})
	pt := tbl.(*preloadTable)
	if err := pt.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ix := connector.IndexOf(tbl); ix.Loaded(1) || !ix.Loaded(2) {
		t.Error("a refresh loaded other fields")
	}
}
