package httpc

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestSourceConformance(t *testing.T) {
	for _, tc := range []struct {
		name, paging, yaml string
		add                bool
	}{
		{"IncrementalByCursor", "cursor", "pagination: { type: cursor, next: meta.next_cursor, size_param: limit, size: 30 }\nmode: incremental\ncursor: created_at\nkey: id", true},
		{"IncrementalByPage", "page", "pagination: { type: page, size_param: limit, size: 40 }\nmode: incremental\ncursor: created_at\nkey: id", true},
		{"IncrementalByLink", "link", "pagination: { type: link }\nmode: incremental\ncursor: created_at\nkey: id", true},
		{"IncrementalOnePage", "none", "mode: incremental\ncursor: created_at\nkey: id", true},
		{"FullByCursor", "cursor", "pagination: { type: cursor, next: meta.next_cursor }", false},
		{"FullByLink", "link", "pagination: { type: link }", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
					api := newItemsAPI(t, tc.paging, rows)
					tg := &connectortest.SourceTarget{
						Source: func(t testing.TB) connector.Source {
							return buildSource(t, "url: "+api.url()+"\n"+itemsSchema+tc.yaml)
						},
						Conns: api.Conns,
					}
					if tc.add {
						tg.Add = func(_ testing.TB, rows []record.Row) { api.add(rows) }
					}
					return tg
				},
			})
		})
	}
}

// readAll reads a task to its end from pos.
func readAll(t *testing.T, src connector.Source, pos record.Position) ([]*record.Batch, error) {
	t.Helper()
	env := connectortest.NewEnv(t)
	ctx := context.Background()
	tasks, err := src.Plan(ctx, env)
	if err != nil {
		return nil, err
	}
	r, err := src.Open(ctx, env, tasks[0], pos)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*record.Batch
	for {
		b, err := r.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}

func lastPos(bs []*record.Batch) record.Position {
	if len(bs) == 0 {
		return nil
	}
	return bs[len(bs)-1].Pos
}

func rowCount(bs []*record.Batch) int {
	n := 0
	for _, b := range bs {
		n += b.Len()
	}
	return n
}

// TestSourceIncrementalSendsSinceAndFiltersTies: the second run asks with
// the last cursor value and skips the records sharing it that it read.
func TestSourceIncrementalSendsSinceAndFiltersTies(t *testing.T) {
	api := newItemsAPI(t, "cursor", connectortest.Rows(25)) // ties of 10 on created_at
	src := buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"pagination: { type: cursor, next: meta.next_cursor, size_param: limit, size: 7 }\nmode: incremental\ncursor: created_at\nkey: id")
	first, err := readAll(t, src, nil)
	if err != nil || rowCount(first) != 25 {
		t.Fatalf("first run: %d rows, %v", rowCount(first), err)
	}
	// Rows sharing the last created_at (21..25 of the group 21..30) come
	// after the checkpoint: the second run reads them and only them.
	api.add(connectortest.RowRange(26, 10))
	api.mu.Lock()
	api.requests = nil
	api.mu.Unlock()
	second, err := readAll(t, src, lastPos(first))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, b := range second {
		for _, r := range b.Rows {
			ids = append(ids, r[0].(int64))
		}
	}
	if len(ids) != 10 || ids[0] != 26 || ids[9] != 35 {
		t.Errorf("second run read ids %v, want 26 to 35", ids)
	}
	want := "since=" + strings.ReplaceAll(connectortest.Text(connectortest.Row(25)[connectortest.ColCreatedAt]), ":", "%3A")
	if log := api.log(); len(log) == 0 || !strings.Contains(log[0], want) {
		t.Errorf("second run's first request %q, want it to carry %s", log, want)
	}
	// A third run with nothing new reads nothing and keeps the checkpoint.
	third, err := readAll(t, src, lastPos(second))
	if err != nil || rowCount(third) != 0 {
		t.Errorf("third run: %d rows, %v", rowCount(third), err)
	}
	if p := lastPos(third); p != nil && string(p) != string(lastPos(second)) {
		t.Errorf("third run moved the checkpoint from %s to %s", lastPos(second), p)
	}
}

func TestSourceRetriesHonouringRetryAfter(t *testing.T) {
	api := newItemsAPI(t, "none", connectortest.Rows(5))
	api.failNext = []int{429, 503}
	api.retryIn = time.Second
	src := buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"backoff: 1ms")
	start := time.Now()
	bs, err := readAll(t, src, nil)
	if err != nil || rowCount(bs) != 5 {
		t.Fatalf("%d rows, %v", rowCount(bs), err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("read in %s: the two Retry-After of 1s were not honoured", d)
	}
	if n := len(api.log()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestSourceFailures(t *testing.T) {
	t.Run("RetriesExhaustedIsTransient", func(t *testing.T) {
		api := newItemsAPI(t, "none", connectortest.Rows(5))
		api.failNext = []int{502, 502, 502}
		_, err := readAll(t, buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"retries: 2\nbackoff: 1ms"), nil)
		if !errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "502 Bad Gateway") {
			t.Errorf("error %v, want a transient 502", err)
		}
	})
	t.Run("ClientErrorIsNotRetried", func(t *testing.T) {
		api := newItemsAPI(t, "none", connectortest.Rows(5))
		api.token = "s3cr3t-token"
		t.Setenv("ITEMS_TOKEN", "wrong-token-value")
		_, err := readAll(t, buildSource(t, "url: "+api.url()+"?api_key=hidden\n"+itemsSchema+"auth: { type: bearer, token_env: ITEMS_TOKEN }"), nil)
		if err == nil || errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "bad token") {
			t.Errorf("error %v, want a 401 with the response body", err)
		}
		if strings.Contains(err.Error(), "wrong-token-value") || strings.Contains(err.Error(), "hidden") {
			t.Errorf("the error shows a secret: %v", err)
		}
		if n := len(api.log()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("BearerToken", func(t *testing.T) {
		api := newItemsAPI(t, "none", connectortest.Rows(5))
		api.token = "s3cr3t-token"
		t.Setenv("ITEMS_TOKEN", "s3cr3t-token")
		bs, err := readAll(t, buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"auth: { type: bearer, token_env: ITEMS_TOKEN }"), nil)
		if err != nil || rowCount(bs) != 5 {
			t.Errorf("%d rows, %v", rowCount(bs), err)
		}
	})
	t.Run("MissingTokenVariable", func(t *testing.T) {
		api := newItemsAPI(t, "none", nil)
		_, err := readAll(t, buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"auth: { type: bearer, token_env: BACKBONE_NO_SUCH_VAR }"), nil)
		if err == nil || !strings.Contains(err.Error(), "BACKBONE_NO_SUCH_VAR is not set") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("RecordsPathTypo", func(t *testing.T) {
		api := newItemsAPI(t, "none", connectortest.Rows(5))
		_, err := readAll(t, buildSource(t, "url: "+api.url()+"\nschema: { id: int }\nrecords: dat"), nil)
		if err == nil || !strings.Contains(err.Error(), "nothing at dat (its members: data)") {
			t.Errorf("error %v", err)
		}
	})
}

func TestSourceRejectsRecordsThatDoNotConvert(t *testing.T) {
	api := newItemsAPI(t, "none", connectortest.Rows(6))
	bs, err := readAll(t, buildSource(t, "url: "+api.url()+"\nrecords: data\nschema: { id: int, name: int }"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows, rejects int
	for _, b := range bs {
		rows += b.Len()
		rejects += len(b.Rejects)
		for _, rj := range b.Rejects {
			if !strings.Contains(rj.Err, "field name") || !strings.Contains(string(rj.Raw), `"name":`) {
				t.Errorf("reject %q of %s", rj.Err, rj.Raw)
			}
		}
	}
	if rows != 0 || rejects != 6 {
		t.Errorf("%d rows and %d rejects, want every record rejected (name is text)", rows, rejects)
	}
}

func TestSourceConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"NoSchema":         {"url: http://x/", "schema is required"},
		"BadURL":           {"url: ftp://x/\nschema: {a: int}", "want an http:// or https:// URL"},
		"NoCursor":         {"url: http://x/\nschema: {a: int}\nmode: incremental\nkey: a", "needs a cursor"},
		"CursorNotField":   {"url: http://x/\nschema: {a: int}\nmode: incremental\ncursor: b\nkey: a", `"b" is not a field`},
		"CursorPagination": {"url: http://x/\nschema: {a: int}\npagination: {type: cursor}", "needs next"},
		"BodyWithGet":      {"url: http://x/\nschema: {a: int}\nbody: '{}'", "POST only"},
		"AuthNoVar":        {"url: http://x/\nschema: {a: int}\nauth: {type: bearer}", "token_env"},
		"BadHeader":        {"url: http://x/\nschema: {a: int}\nheaders: {'a b': c}", "not a header name"},
		"BadRate":          {"url: http://x/\nschema: {a: int}\nrate_limit: fast", "requests per second"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := connector.ParamsFromYAML(tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newSource(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSourceRateLimit(t *testing.T) {
	api := newItemsAPI(t, "page", connectortest.Rows(40))
	// 5 requests (4 pages and the empty one) at 2 per second: 2s.
	src := buildSource(t, "url: "+api.url()+"\n"+itemsSchema+"pagination: { type: page, size_param: limit, size: 10 }\nrate_limit: 2")
	start := time.Now()
	if bs, err := readAll(t, src, nil); err != nil || rowCount(bs) != 40 {
		t.Fatalf("%d rows, %v", rowCount(bs), err)
	}
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("5 requests at 2 per second took %s", d)
	}
}

func TestLinkNext(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last"`, "https://a/x?page=2"},
		{`</x?after=a,b>; rel="prev next"`, "https://a/x?after=a,b"},
		{`<https://a/x?page=1>; rel="first"`, ""},
		{`garbage`, ""},
	} {
		h := map[string][]string{"Link": {tc.header}}
		if got := linkNext(h, "https://a/x?page=1"); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.header, got, tc.want)
		}
	}
}
