package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/connector/lookupcache"
	"github.com/backbone-etl/backbone/internal/record"
)

func addr() string {
	if a := os.Getenv("BACKBONE_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// prefixFor connects to the test server and returns a key prefix of the
// test's own; its keys are deleted at the end. Without a server the test
// is skipped, unless CI=true.
func prefixFor(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr(), DisableIdentity: true, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is not reachable and CI=true: %v", addr(), err)
		}
		t.Skipf("Redis at %s is not reachable (%v): skipping", addr(), err)
	}
	var b [6]byte
	rand.Read(b[:])
	prefix := "bbtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		c.Close()
	})
	return c, prefix
}

func build(t testing.TB, src string) (connector.Lookup, error) {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	return newLookup(p)
}

func open(t testing.TB, src string) *table {
	t.Helper()
	l, err := build(t, src)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if s, ok := l.(connector.Schemer); !ok || s.Schema() == nil {
		t.Fatal("the lookup does not declare its schema")
	}
	tb, err := l.Open(context.Background(), connectortest.NewEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb.(*table)
}

// commands counts the commands the lookup's client sends, by name, with
// their number of arguments.
type commands struct {
	mu   sync.Mutex
	seen []string
}

func (h *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}
func (h *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.mu.Lock()
		h.seen = append(h.seen, fmt.Sprintf("pipeline %d", len(cmds)))
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}
func (h *commands) add(cmd goredis.Cmder) {
	if cmd.Name() == "hello" || cmd.Name() == "client" {
		return // a new connection's handshake
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, fmt.Sprintf("%s %d", cmd.Name(), len(cmd.Args())-1))
}

// take returns the commands seen since the last take, sorted (calls run
// concurrently).
func (h *commands) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.seen
	h.seen = nil
	slices.Sort(out)
	return out
}

func watch(tb *table) *commands {
	h := &commands{}
	tb.f.c.AddHook(h)
	return h
}

func customerJSON(id int) string {
	return fmt.Sprintf(`{"region": %q, "tier": "tier-%d", "credit": %d.%02d, "tags": ["a", "b"]}`, []string{"eu", "us", "apac"}[id%3], id%5, id*3, id%100)
}

const customerSchema = "schema: { customer_id: int, region: string, tier: string, credit: decimal, tags: json }\n"

func TestGetJSONBatchedWithMGET(t *testing.T) {
	c, prefix := prefixFor(t)
	ctx := context.Background()
	for id := 1; id <= 100; id++ {
		if id%7 != 0 {
			c.Set(ctx, fmt.Sprintf("%scust:%d", prefix, id), customerJSON(id), time.Hour)
		}
	}
	c.Set(ctx, prefix+"cust:101", `{"credit": "lots"}`, time.Hour)
	c.Set(ctx, prefix+"cust:102", `not json`, time.Hour)
	tb := open(t, "addr: "+addr()+"\nkey: customer_id\nkey_template: '"+prefix+"cust:{{customer_id}}'\nbatch_size: 30\n"+customerSchema)
	cmds := watch(tb)
	keys := make([][]any, 102)
	for i := range keys {
		keys[i] = []any{int64(i + 1)}
	}
	out := make([]connector.Answer, len(keys))
	var passes [2][]string
	for pass := range 2 {
		tb.GetBatch(ctx, keys, out)
		passes[pass] = cmds.take()
		for i, a := range out[:100] {
			id := i + 1
			if a.Err != nil || a.OK != (id%7 != 0) {
				t.Fatalf("pass %d, customer %d: %+v", pass, id, a)
			}
			if a.OK && (a.Row[0] != int64(id) || a.Row[2] != fmt.Sprintf("tier-%d", id%5) || record.FormatText(a.Row[3]) != fmt.Sprintf("%d.%02d", id*3, id%100) || record.FormatText(a.Row[4]) != `["a","b"]`) {
				t.Errorf("customer %d: %v", id, a.Row)
			}
		}
		for i, want := range []string{`field credit`, `the value is not JSON`} {
			if a := out[100+i]; !errors.Is(a.Err, connector.ErrReject) || !strings.Contains(a.Err.Error(), want) || !strings.Contains(a.Err.Error(), prefix+"cust:") {
				t.Errorf("customer %d: %+v; want a reject saying %q", 101+i, a, want)
			}
		}
	}
	// 102 keys by 30: 4 MGETs; the second pass asks again only for the two
	// keys whose values do not convert (errors are not cached).
	if !slices.Equal(passes[0], []string{"mget 12", "mget 30", "mget 30", "mget 30"}) || !slices.Equal(passes[1], []string{"mget 2"}) {
		t.Errorf("commands %q then %q; want 4 MGETs of at most 30 keys, then one of the 2 rejected keys", passes[0], passes[1])
	}
	if hits, misses := tb.CacheStats(); hits != 100 || misses != 104 {
		t.Errorf("cache: %d hits, %d misses; want 100 and 104", hits, misses)
	}
}

func TestGetScalar(t *testing.T) {
	c, prefix := prefixFor(t)
	ctx := context.Background()
	c.Set(ctx, prefix+"fx:EUR", "1.0842", time.Hour)
	c.Set(ctx, prefix+"fx:XXX", "n/a", time.Hour)
	c.HSet(ctx, prefix+"fx:HSH", "rate", "1")
	tb := open(t, "addr: "+addr()+"\nkey: currency\nkey_template: '"+prefix+"fx:{{currency}}'\nvalue: scalar\nschema: { currency: string, rate: decimal }\n")
	row, ok, err := tb.Get(ctx, []any{"EUR"})
	if err != nil || !ok || row[0] != "EUR" || record.FormatText(row[1]) != "1.0842" {
		t.Fatalf("EUR: %v %v %v", row, ok, err)
	}
	if _, ok, err := tb.Get(ctx, []any{"USD"}); ok || err != nil {
		t.Errorf("a key that does not exist: ok %v err %v", ok, err)
	}
	if _, _, err := tb.Get(ctx, []any{"XXX"}); !errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "field rate") {
		t.Errorf("a value that is not a decimal: %v", err)
	}
	// MGET answers nil for a key of another type: a miss.
	if _, ok, err := tb.Get(ctx, []any{"HSH"}); ok || err != nil {
		t.Errorf("a hash read with get: ok %v err %v", ok, err)
	}
}

func TestHGetAllPipelined(t *testing.T) {
	c, prefix := prefixFor(t)
	ctx := context.Background()
	for id := 1; id <= 40; id++ {
		if id%4 != 0 {
			c.HSet(ctx, fmt.Sprintf("%su:%d:eu", prefix, id), "name", fmt.Sprintf("user %d", id), "score", fmt.Sprint(id*10), "meta", `{"v":1}`)
		}
	}
	c.Set(ctx, prefix+"u:41:eu", "a string", time.Hour)
	c.HSet(ctx, prefix+"u:42:eu", "score", "high")
	tb := open(t, "addr: "+addr()+"\nkey: [id, zone]\nkey_template: '"+prefix+"u:{{id}}:{{zone}}'\ncommand: hgetall\nbatch_size: 25\n"+
		"schema: { id: int, zone: string, full_name: string, score: int, meta: json }\npaths: { full_name: name }\n")
	cmds := watch(tb)
	keys := make([][]any, 42)
	for i := range keys {
		keys[i] = []any{int64(i + 1), "eu"}
	}
	out := make([]connector.Answer, len(keys))
	tb.GetBatch(ctx, keys, out)
	for i, a := range out[:40] {
		id := int64(i + 1)
		if a.Err != nil || a.OK != (id%4 != 0) {
			t.Fatalf("user %d: %+v", id, a)
		}
		if a.OK && (a.Row[0] != id || a.Row[1] != "eu" || a.Row[2] != fmt.Sprintf("user %d", id) || a.Row[3] != id*10 || record.FormatText(a.Row[4]) != `{"v":1}`) {
			t.Errorf("user %d: %v", id, a.Row)
		}
	}
	if a := out[40]; !errors.Is(a.Err, connector.ErrReject) || !strings.Contains(a.Err.Error(), "WRONGTYPE") {
		t.Errorf("a string read with hgetall: %+v", a)
	}
	if a := out[41]; !errors.Is(a.Err, connector.ErrReject) || !strings.Contains(a.Err.Error(), "field score") {
		t.Errorf("a score that is not an int: %+v", a)
	}
	if got := cmds.take(); !slices.Equal(got, []string{"pipeline 17", "pipeline 25"}) {
		t.Errorf("commands %q, want two pipelines of 25 and 17 HGETALLs", got)
	}
}

func TestCoalescing(t *testing.T) {
	c, prefix := prefixFor(t)
	ctx := context.Background()
	c.Set(ctx, prefix+"k", `{"v": "x"}`, time.Hour)
	tb := open(t, "addr: "+addr()+"\nkey: id\nkey_template: '"+prefix+"{{id}}'\nschema: { v: string }\n")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if row, ok, err := tb.Get(ctx, []any{"k"}); err != nil || !ok || row[0] != "x" {
				t.Errorf("row %v ok %v err %v", row, ok, err)
			}
		})
	}
	wg.Wait()
	if s := tb.Stats(); s.Calls > 20 || s.Calls < 1 {
		t.Errorf("%d calls", s.Calls)
	}
	// Every concurrent lookup either hit the cache or shared the one call.
	if hits, misses := tb.CacheStats(); hits+misses != 20 || tb.Stats().Calls != 1 {
		t.Errorf("%d hits, %d misses, %d calls; want 20 lookups and 1 call", hits, misses, tb.Stats().Calls)
	}
}

// closedAddr is an address where nothing listens.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestUnavailable(t *testing.T) {
	down := closedAddr(t)
	t.Run("Reject", func(t *testing.T) {
		tb := open(t, "addr: "+down+"\nkey: id\nschema: { id: string, v: string }\nretries: 1\nbackoff: 1ms\non_unavailable: reject\nbreaker: { failures: 2, cooldown: 1h }\n")
		for i := range 3 {
			_, ok, err := tb.Get(context.Background(), []any{fmt.Sprint(i)})
			if ok || !errors.Is(err, connector.ErrReject) || !strings.Contains(err.Error(), "redis lookup "+down) {
				t.Fatalf("lookup %d: ok %v err %v; want a reject", i, ok, err)
			}
		}
		if s := tb.Stats(); s.Breaker != lookupcache.Open || s.Calls != 2 {
			t.Errorf("%+v: want the breaker open after 2 calls", s)
		}
	})
	t.Run("WaitIsBounded", func(t *testing.T) {
		tb := open(t, "addr: "+down+"\nkey: id\nschema: { id: string, v: string }\nretries: 1\nbackoff: 1ms\nmax_wait: 200ms\nbreaker: { failures: 2, cooldown: 50ms }\n")
		_, ok, err := tb.Get(context.Background(), []any{"a"})
		if ok || !errors.Is(err, connector.ErrUnavailable) || !strings.Contains(err.Error(), "max_wait") {
			t.Fatalf("ok %v err %v; want the run to fail after max_wait", ok, err)
		}
	})
	t.Run("Check", func(t *testing.T) {
		l, err := build(t, "addr: "+down+"\nkey: id\nschema: { id: string, v: string }\ntimeout: 1s")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.(connector.Checker).Check(context.Background(), connectortest.NewEnv(t)); !errors.Is(err, connector.ErrUnavailable) {
			t.Errorf("check: %v", err)
		}
	})
}

func TestPasswordFromTheEnvironment(t *testing.T) {
	l, err := build(t, "addr: 127.0.0.1:1\npassword_env: BACKBONE_NO_SUCH_VAR\nkey: id\nschema: { id: string, v: string }")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(context.Background(), connectortest.NewEnv(t)); err == nil || !strings.Contains(err.Error(), "BACKBONE_NO_SUCH_VAR is not set") {
		t.Errorf("open: %v", err)
	}
	t.Setenv("BACKBONE_TEST_REDIS_PW", "hunter2-secret")
	l, _ = build(t, "addr: "+closedAddr(t)+"\npassword_env: BACKBONE_TEST_REDIS_PW\nkey: id\nschema: { id: string, v: string }\non_unavailable: reject\nretries: 0")
	tb, err := l.Open(context.Background(), connectortest.NewEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if _, _, err := tb.Get(context.Background(), []any{"a"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v shows the password or is missing", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"NoServer":      {"key: id\nschema: {id: string, v: string}", "give addr or url"},
		"Both":          {"addr: a:1\nurl: redis://a:1\nkey: id\nschema: {id: string, v: string}", "give addr or url"},
		"BadURL":        {"url: http://a\nkey: id\nschema: {id: string, v: string}", "not a redis://"},
		"MultiKey":      {"addr: a:1\nkey: [a, b]\nschema: {a: string, b: string, v: string}", "needs a key_template"},
		"TemplateField": {"addr: a:1\nkey: id\nkey_template: 'x:{{nope}}'\nschema: {id: string, v: string}", "{{nope}} is not a key field"},
		"ScalarTwo":     {"addr: a:1\nkey: id\nvalue: scalar\nschema: {id: string, a: string, b: string}", "fills one field"},
		"ScalarHash":    {"addr: a:1\nkey: id\ncommand: hgetall\nvalue: scalar\nschema: {id: string, v: string}", "value scalar is for command get"},
		"NoSchema":      {"addr: a:1\nkey: id", "schema is required"},
		"BadPolicy":     {"addr: a:1\nkey: id\nschema: {id: string, v: string}\non_unavailable: maybe", "want wait or reject"},
		"PathsNotField": {"addr: a:1\nkey: id\ncommand: hgetall\nschema: {id: string, v: string}\npaths: {w: x}", `"w" is not a field`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := build(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
