package httpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// ingestAPI is an HTTP service on 127.0.0.1 that stores the JSON records
// posted to /ingest (an array, an object holding one under "records", or
// one record), all of a request or none: a record without a name refuses
// the request with 422. A request with an idempotency key it has seen is
// answered again without storing anything. keyed stores by id, replacing.
type ingestAPI struct {
	srv   *httptest.Server
	keyed bool

	mu       sync.Mutex
	stored   []map[string]any
	byID     map[float64]int // keyed: index in stored
	seen     map[string]bool
	requests int
	noKey    int   // requests without an idempotency key
	fail     []int // statuses of the next requests, after storing (a lost answer)
	failPre  []int // statuses of the next requests, before storing
	conns    atomic.Int64
}

func newIngestAPI(t testing.TB, keyed bool) *ingestAPI {
	a := &ingestAPI{keyed: keyed, byID: map[float64]int{}, seen: map[string]bool{}}
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

func (a *ingestAPI) url() string { return a.srv.URL + "/ingest" }

func (a *ingestAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		a.noKey++
	}
	if len(a.failPre) > 0 {
		status := a.failPre[0]
		a.failPre = a.failPre[1:]
		http.Error(w, `{"error":"busy"}`, status)
		return
	}
	if key != "" && a.seen[key] {
		w.WriteHeader(http.StatusOK) // a retry: stored before
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		http.Error(w, `{"error":"not JSON"}`, http.StatusBadRequest)
		return
	}
	var recs []any
	switch x := doc.(type) {
	case []any:
		recs = x
	case map[string]any:
		if list, ok := x["records"].([]any); ok {
			recs = list
		} else {
			recs = []any{x}
		}
	}
	for i, rec := range recs {
		if m, _ := rec.(map[string]any); m == nil || m["name"] == nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"error":"record %d: name is required"}`, i)
			return
		}
	}
	for _, rec := range recs {
		m := rec.(map[string]any)
		id, _ := m["id"].(json.Number).Float64()
		if i, ok := a.byID[id]; ok && a.keyed {
			a.stored[i] = m
			continue
		}
		a.byID[id] = len(a.stored)
		a.stored = append(a.stored, m)
	}
	if key != "" {
		a.seen[key] = true
	}
	if len(a.fail) > 0 {
		status := a.fail[0]
		a.fail = a.fail[1:]
		http.Error(w, `{"error":"stored, but the answer is lost"}`, status)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// rows returns the stored records as rows of connectortest.Schema.
func (a *ingestAPI) rows(t testing.TB) []record.Row {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]record.Row, 0, len(a.stored))
	for _, m := range a.stored {
		texts := make([]*string, 5)
		for i, f := range []string{"id", "name", "amount", "created_at", "note"} {
			if v := m[f]; v != nil {
				s := fmt.Sprint(v)
				texts[i] = &s
			}
		}
		r, err := connectortest.FromText(texts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func buildSink(t testing.TB, src string) connector.Sink {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSink(p)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	return s
}

func TestSinkConformance(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		keyed      bool
	}{
		{"Batches", "batch_size: 25", false},
		{"BatchesInAnObject", "batch_size: 1000\nbody: records", false},
		{"Singles", "batch: false\nconcurrency: 3", false},
		{"SinglesKeyed", "batch: false\nidempotency_key: 'item-{{id}}-{{name}}'", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSink(t, connectortest.SinkHarness{
				New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
					api := newIngestAPI(t, tc.keyed)
					return &connectortest.SinkTarget{
						Sink:   func(t testing.TB) connector.Sink { return buildSink(t, "url: "+api.url()+"\n"+tc.yaml) },
						Stored: api.rows,
						Conns:  func(testing.TB) int { return int(api.conns.Load()) },
						Refuse: func(r record.Row) record.Row {
							r[connectortest.ColName] = nil
							return r
						},
						Keyed: tc.keyed,
					}
				},
			})
		})
	}
}

// writeRows opens a writer and writes rows as one batch.
func writeRows(t *testing.T, s connector.Sink, rows []record.Row) (int, error) {
	t.Helper()
	env := connectortest.NewEnv(t)
	w, err := s.Open(context.Background(), env, connectortest.Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if info := w.Info(); info.Transactional || info.Once {
		t.Errorf("info %+v: the http sink delivers at Write", info)
	}
	b := &record.Batch{Schema: connectortest.Schema, Rows: rows, Pos: record.Position("p1"), Origin: "test"}
	return w.Write(context.Background(), b)
}

func TestSinkSplitsARefusedBatch(t *testing.T) {
	api := newIngestAPI(t, false)
	rows := connectortest.Rows(40)
	for _, i := range []int{5, 6, 33} {
		rows[i][connectortest.ColName] = nil
	}
	n, err := writeRows(t, buildSink(t, "url: "+api.url()+"\nbatch_size: 16"), rows)
	var be *connector.BatchError
	if !errors.As(err, &be) || n != 37 {
		t.Fatalf("n %d, err %v; want 37 and a BatchError", n, err)
	}
	var idx []int
	for _, re := range be.Rows {
		idx = append(idx, re.Index)
		if !strings.Contains(re.Err.Error(), "422 Unprocessable Entity") || !strings.Contains(re.Err.Error(), "name is required") {
			t.Errorf("row %d: %v; want the status and the response body", re.Index, re.Err)
		}
	}
	slices.Sort(idx)
	if !slices.Equal(idx, []int{5, 6, 33}) {
		t.Errorf("refused rows %v, want [5 6 33]", idx)
	}
	if got := len(api.rows(t)); got != 37 {
		t.Errorf("%d rows stored, want 37", got)
	}
}

func TestSinkRetriesOnlyWhenSafe(t *testing.T) {
	t.Run("ServerErrorWithKey", func(t *testing.T) {
		api := newIngestAPI(t, false)
		api.failPre = []int{502} // refused before storing
		api.fail = []int{503}    // stored, then the answer is lost
		n, err := writeRows(t, buildSink(t, "url: "+api.url()+"\nbackoff: 1ms"), connectortest.Rows(10))
		if err != nil || n != 10 {
			t.Fatalf("n %d, err %v", n, err)
		}
		if got := len(api.rows(t)); got != 10 || api.requests != 3 {
			t.Errorf("%d rows stored in %d requests; want 10 rows stored once, in 3 requests", got, api.requests)
		}
	})
	t.Run("ServerErrorWithoutKey", func(t *testing.T) {
		api := newIngestAPI(t, false)
		api.fail = []int{503}
		_, err := writeRows(t, buildSink(t, "url: "+api.url()+"\nbackoff: 1ms\nidempotency_header: ''"), connectortest.Rows(10))
		if !errors.Is(err, connector.ErrTransient) || api.requests != 1 || api.noKey != 1 {
			t.Errorf("err %v after %d requests; want a transient error and no retry of a request without a key", err, api.requests)
		}
	})
	t.Run("RefusedConnectionWithoutKey", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: the request never reaches a server
		s := buildSink(t, "url: http://"+addr+"/ingest\nbackoff: 1ms\nretries: 2\nidempotency_header: ''")
		w, err := s.Open(context.Background(), connectortest.NewEnv(t), connectortest.Schema)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var attempts int
		w.(*writer).sleep = func(context.Context, time.Duration) error { attempts++; return nil }
		_, err = w.Write(context.Background(), &record.Batch{Schema: connectortest.Schema, Rows: connectortest.Rows(2)})
		if !errors.Is(err, connector.ErrTransient) || attempts != 2 {
			t.Errorf("err %v after %d retries; want a transient error after 2 retries (nothing was sent)", err, attempts)
		}
	})
	t.Run("ClientErrorIsNotRetried", func(t *testing.T) {
		api := newIngestAPI(t, false)
		api.failPre = []int{409}
		n, err := writeRows(t, buildSink(t, "url: "+api.url()+"\nbatch: false"), connectortest.Rows(1))
		var be *connector.BatchError
		if !errors.As(err, &be) || n != 0 || api.requests != 1 {
			t.Errorf("n %d err %v after %d requests; want the row refused without a retry", n, err, api.requests)
		}
	})
	t.Run("UnauthorizedFailsTheRun", func(t *testing.T) {
		api := newIngestAPI(t, false)
		api.failPre = []int{401}
		_, err := writeRows(t, buildSink(t, "url: "+api.url()), connectortest.Rows(5))
		var be *connector.BatchError
		if err == nil || errors.As(err, &be) || errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "401") {
			t.Errorf("err %v; want a run error, not dead letters", err)
		}
	})
}

func TestSinkIdempotencyKeys(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("X-Request-Id"))
		mu.Unlock()
	}))
	defer srv.Close()
	rows := connectortest.Rows(3)
	if _, err := writeRows(t, buildSink(t, "url: "+srv.URL+"\nbatch: false\nconcurrency: 1\nidempotency_header: X-Request-Id\nidempotency_key: \"order-{{id}}/{{name}}\""), rows); err != nil {
		t.Fatal(err)
	}
	if want := []string{"order-1/name 1", "order-2/name 2", "order-3/name 3"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	keys = nil
	s := buildSink(t, "url: "+srv.URL+"\nbatch_size: 2\nidempotency_header: X-Request-Id")
	for range 2 {
		if _, err := writeRows(t, s, rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) != 4 || keys[0] == keys[1] || keys[0] != keys[2] || keys[1] != keys[3] || len(keys[0]) != 32 {
		t.Errorf("keys %q: want a key per request, the same for the same batch written again", keys)
	}
}

func TestSinkConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"NoURL":            {"batch: true", "want an http"},
		"KeyWithBatch":     {"url: http://x/\nidempotency_key: '{{id}}'", "for batch: false"},
		"KeyWithoutHeader": {"url: http://x/\nbatch: false\nidempotency_header: ''\nidempotency_key: '{{id}}'", "needs an idempotency_header"},
		"BodyWithSingles":  {"url: http://x/\nbatch: false\nbody: records", "body is for batches"},
		"BadMethod":        {"url: http://x/\nmethod: GET", "want POST, PUT or PATCH"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := connector.ParamsFromYAML(tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newSink(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	p, _ := connector.ParamsFromYAML("url: http://x/\nbatch: false\nidempotency_key: '{{nope}}'")
	s, err := newSink(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), connectortest.NewEnv(t), connectortest.Schema); err == nil || !strings.Contains(err.Error(), "{{nope}} is not a field") {
		t.Errorf("open: %v", err)
	}
}
