package httpc

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// itemsAPI is a JSON API over HTTP serving rows of connectortest.Schema at
// /items, the way public APIs page through records: by an opaque cursor,
// by page number or by Link headers, filtered by ?since= (inclusive, on
// created_at) and ordered by (created_at, id). It is a real server on
// 127.0.0.1 that the source talks HTTP to.
type itemsAPI struct {
	t      testing.TB
	srv    *httptest.Server
	paging string // cursor, page, link or none
	size   int    // default page size

	mu       sync.Mutex
	rows     []record.Row
	requests []string      // request URIs, in order
	failNext []int         // statuses to answer the next requests with
	retryIn  time.Duration // Retry-After of a failure
	token    string        // the bearer token required, when set

	conns atomic.Int64
}

func newItemsAPI(t testing.TB, paging string, rows []record.Row) *itemsAPI {
	a := &itemsAPI{t: t, paging: paging, size: 50, rows: slices.Clone(rows)}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			a.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			a.conns.Add(-1)
		}
	}
	a.srv.Start()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *itemsAPI) url() string { return a.srv.URL + "/items" }

// Conns counts the connections clients hold open.
func (a *itemsAPI) Conns(testing.TB) int { return int(a.conns.Load()) }

func (a *itemsAPI) add(rows []record.Row) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rows = append(a.rows, rows...)
}

func (a *itemsAPI) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

func itemJSON(r record.Row) map[string]any {
	m := map[string]any{
		"id":         r[connectortest.ColID],
		"name":       r[connectortest.ColName],
		"amount":     json.RawMessage(connectortest.Text(r[connectortest.ColAmount])),
		"created_at": connectortest.Text(r[connectortest.ColCreatedAt]),
		"note":       r[connectortest.ColNote],
	}
	return m
}

func (a *itemsAPI) serve(w http.ResponseWriter, req *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, req.URL.RequestURI())
	if a.token != "" && req.Header.Get("Authorization") != "Bearer "+a.token {
		a.mu.Unlock()
		http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
		return
	}
	if len(a.failNext) > 0 {
		status := a.failNext[0]
		a.failNext = a.failNext[1:]
		retry := a.retryIn
		a.mu.Unlock()
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
		}
		http.Error(w, `{"error":"try later"}`, status)
		return
	}
	rows := slices.Clone(a.rows)
	a.mu.Unlock()
	if req.URL.Path != "/items" {
		http.NotFound(w, req)
		return
	}
	q := req.URL.Query()
	slices.SortFunc(rows, func(x, y record.Row) int {
		if c := x[connectortest.ColCreatedAt].(time.Time).Compare(y[connectortest.ColCreatedAt].(time.Time)); c != 0 {
			return c
		}
		return int(x[connectortest.ColID].(int64) - y[connectortest.ColID].(int64))
	})
	if s := q.Get("since"); s != "" {
		since, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			http.Error(w, `{"error":"bad since"}`, http.StatusBadRequest)
			return
		}
		rows = slices.DeleteFunc(rows, func(r record.Row) bool { return r[connectortest.ColCreatedAt].(time.Time).Before(since) })
	}
	size := a.size
	if l := q.Get("limit"); l != "" {
		size, _ = strconv.Atoi(l)
	}
	from := 0
	switch a.paging {
	case "cursor":
		if c := q.Get("cursor"); c != "" {
			from, _ = strconv.Atoi(c[len("c"):])
		}
	case "page":
		p, _ := strconv.Atoi(q.Get("page"))
		from = (p - 1) * size
	case "link":
		from, _ = strconv.Atoi(q.Get("offset"))
	case "none":
		size = len(rows)
	}
	from = min(max(from, 0), len(rows))
	to := min(from+size, len(rows))
	items := make([]any, 0, to-from)
	for _, r := range rows[from:to] {
		items = append(items, itemJSON(r))
	}
	body := map[string]any{"data": items}
	switch a.paging {
	case "cursor":
		next := ""
		if to < len(rows) {
			next = fmt.Sprintf("c%d", to)
		}
		body["meta"] = map[string]any{"next_cursor": next}
	case "link":
		if to < len(rows) {
			nq := req.URL.Query()
			nq.Set("offset", strconv.Itoa(to))
			w.Header().Add("Link", fmt.Sprintf(`</items?%s>; rel="next", </items>; rel="first"`, nq.Encode()))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// buildSource makes an http source from its YAML configuration.
func buildSource(t testing.TB, src string) connector.Source {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSource(p)
	if err != nil {
		t.Fatalf("source: %v", err)
	}
	return s
}

const itemsSchema = "schema: { id: int, name: string, amount: decimal, created_at: timestamp, note: string }\nrecords: data\n"
