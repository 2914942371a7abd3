package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/backbone-etl/backbone/internal/alert"
	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/scheduler"
	"github.com/backbone-etl/backbone/internal/state"
)

// t0 is the fake clock's start: a Monday, on a whole hour.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	adminToken = "adm-3f9c2d7e1b"
	readToken  = "rd-8a1e4c0f55"
)

// chaos is a step of the tests' registry that misbehaves on purpose:
// mode panic panics, hang blocks until its context ends, fail returns an
// error. It stands for a buggy component, not for any service.
type chaos struct {
	Mode string `yaml:"mode"`
}

func (c *chaos) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	return in, nil
}
func (c *chaos) Process(ctx context.Context, b *record.Batch) error {
	switch c.Mode {
	case "panic":
		panic("chaos step panicked")
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	case "fail":
		return fmt.Errorf("chaos step failed")
	case "slow":
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func testRegistry() *connector.Registry {
	r := connector.NewRegistry()
	builtin.Register(r)
	r.AddStep(connector.Spec{Name: "chaos", Summary: "misbehaves (tests)",
		Fields: []connector.FieldSpec{{Name: "mode", Type: connector.TString, Required: true}}},
		func(p connector.Params) (connector.Step, error) {
			c := &chaos{}
			return c, p.Decode(c)
		})
	registerTicker(r)
	return r
}

// env is the process environment of the tests' pipelines.
type env map[string]string

func (e env) lookup(name string) (string, bool) { v, ok := e[name]; return v, ok }

// harness is a daemon on a fake clock with a folder of pipelines, a webhook
// receiver and its runs observed.
type harness struct {
	t      *testing.T
	dir    string // pipelines
	data   string // inputs and outputs
	clock  *scheduler.FakeClock
	d      *Daemon
	url    string
	hooks  *receiver
	runs   chan state.Run
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// receiver is a webhook endpoint on 127.0.0.1 that keeps every body.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	raw    []string
	got    chan map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan map[string]any, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		r.mu.Lock()
		r.bodies = append(r.bodies, m)
		r.raw = append(r.raw, string(b)+" "+req.Header.Get("Authorization"))
		r.mu.Unlock()
		r.got <- m
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait returns the next alert of kind and status, failing after 10s.
func (r *receiver) wait(t *testing.T, kind, status string) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-r.got:
			if m["kind"] == kind && m["status"] == status {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s %s alert arrived; got %v", kind, status, r.all())
			return nil
		}
	}
}

func (r *receiver) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.raw...)
}

func newHarness(t *testing.T, e env, tweak func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), data: t.TempDir(), clock: scheduler.NewFakeClock(t0),
		runs: make(chan state.Run, 1000), logs: &syncBuffer{}, hooks: newReceiver(t)}
	if e == nil {
		e = env{}
	}
	e["DATA"] = h.data
	h.start(e, tweak)
	return h
}

func (h *harness) start(e env, tweak func(*Options)) {
	t := h.t
	o := Options{
		Dir:         h.dir,
		State:       filepath.Join(h.data, "state.db"),
		Listen:      "127.0.0.1:0",
		Tokens:      []api.Token{{Name: "ops", Role: api.RoleAdmin, Value: adminToken}, {Name: "viewer", Role: api.RoleRead, Value: readToken}},
		Webhooks:    []alert.Webhook{{URL: h.hooks.srv.URL, Headers: map[string]string{"Authorization": "Bearer hook-secret-5d2e"}}},
		ReloadEvery: -1,
		Clock:       h.clock,
		// No run waits for a global slot: on the fake clock, a waiting run
		// would start only at the next Advance (the scheduler's own tests
		// cover the global limit).
		MaxConcurrent: 64,
		Registry:      testRegistry(),
		Env:           e.lookup,
		Logger:        slogTo(h.logs),
		RetryJitter:   -1,
		AlertBackoff:  10 * time.Millisecond,
		DrainTimeout:  10 * time.Second,
		Grace:         2 * time.Second,
		OnRun:         func(r state.Run) { h.runs <- r },
	}
	if tweak != nil {
		tweak(&o)
	}
	d, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	listening := make(chan string, 1)
	go func() { h.done <- d.Run(ctx, context.Background(), func(a string) { listening <- a }) }()
	select {
	case a := <-listening:
		h.url = "http://" + a
	case err := <-h.done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.t.Error("the daemon did not stop within 20s")
	}
}

// pipeline writes a pipeline file: CSV files of in/NAME into a SQLite
// table NAME, by upsert on id; extra is YAML added at the top level, steps
// the steps list.
func (h *harness) pipeline(name, extra, steps string) {
	h.t.Helper()
	if steps == "" {
		steps = "  - map: {doubled: v * 2}\n"
	}
	body := fmt.Sprintf(`name: %s
source:
  type: csv
  path: ${DATA}/in/%s/*.csv
  schema: {id: int, v: int}
steps:
%ssink:
  type: sqlite
  path: ${DATA}/out.db
  table: %s
  mode: upsert
  key: [id]
  create: true
%s`, name, name, steps, name, extra)
	if err := os.WriteFile(filepath.Join(h.dir, name+".yaml"), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.data, "in", name), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// input writes a CSV file of rows id = from..to-1, v = id.
func (h *harness) input(name, file string, from, to int) {
	h.t.Helper()
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%d,%d\n", i, i)
	}
	dir := filepath.Join(h.data, "in", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	// Written aside and renamed: a run never sees half a file.
	tmp := filepath.Join(h.data, "in", "."+file)
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
		h.t.Fatal(err)
	}
}

// waitRuns collects runs until want(runs) holds, failing after 20s.
func (h *harness) waitRuns(what string, want func(map[string][]state.Run) bool) map[string][]state.Run {
	h.t.Helper()
	got := map[string][]state.Run{}
	deadline := time.After(20 * time.Second)
	for !want(got) {
		select {
		case r := <-h.runs:
			got[r.Pipeline] = append(got[r.Pipeline], r)
		case <-deadline:
			h.t.Fatalf("waiting for %s: runs so far %v\nlog:\n%s", what, summarize(got), h.logs.String())
		}
	}
	return got
}

func summarize(m map[string][]state.Run) map[string][]string {
	out := map[string][]string{}
	for p, rs := range m {
		for _, r := range rs {
			out[p] = append(out[p], r.Trigger+"/"+r.Status+"/"+r.Error)
		}
	}
	return out
}

// advance moves the fake clock and lets the scheduler act on it.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.d.sched.Settle(ctx); err != nil {
		h.t.Fatalf("Settle: %v", err)
	}
}

// call sends an API request and decodes the answer into out (if not nil).
func (h *harness) call(method, path, token, body string, out any) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// table reads id → doubled of a pipeline's output table.
func (h *harness) table(name string) map[int64]int64 {
	h.t.Helper()
	out, err := h.rows(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// rows is table with its error, for polling before the table exists.
func (h *harness) rows(name string) (map[int64]int64, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.data, "out.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, doubled FROM ` + name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// trigger asks for a run now through the API and lets the scheduler start it.
func (h *harness) trigger(name string) {
	h.t.Helper()
	h.idle()
	if code, body := h.call("POST", "/api/v1/pipelines/"+name+"/trigger", adminToken, "", nil); code != 200 {
		h.t.Fatalf("trigger %s: %d %s", name, code, body)
	}
	h.advance(0)
}

// retarget replaces old by new in a pipeline file.
func (h *harness) retarget(name, old, new string) {
	h.t.Helper()
	path := filepath.Join(h.dir, name+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// idle waits until no run is in flight: a run's goroutine returns to the
// scheduler a moment after OnRun, and on the fake clock what it then
// schedules waits for the next Advance.
func (h *harness) idle() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		busy := 0
		for _, st := range h.d.sched.Statuses() {
			busy += st.InFlight
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("runs still in flight after 20s: %+v", h.d.sched.Statuses())
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.advance(0)
}

// write writes a pipeline file from a format with one int argument.
func (h *harness) write(file, format string, n int) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, file), []byte(fmt.Sprintf(format, n)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// waitRows waits until a table holds at least n rows, failing after 20s.
func (h *harness) waitRows(name string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows, err := h.rows(name)
		if len(rows) >= n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("table %s holds %d rows (%v), want %d\nlog:\n%s", name, len(rows), err, n, h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
