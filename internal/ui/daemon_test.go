package ui_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/daemon"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/ui"
)

const (
	adminToken = "ui-admin-5b7e21c9"
	readToken  = "ui-read-0d4f8a33"
)

// served is a real daemon with the dashboard on 127.0.0.1: pipelines in a
// temporary folder read CSV files and write a SQLite database.
type served struct {
	t    *testing.T
	dir  string // pipeline files
	data string // inputs, outputs and the state store
	d    *daemon.Daemon
	url  string
	runs chan state.Run
}

func serve(t *testing.T) *served {
	t.Helper()
	s := &served{t: t, dir: t.TempDir(), data: t.TempDir(), runs: make(chan state.Run, 1000)}
	reg := connector.NewRegistry()
	builtin.Register(reg)
	env := map[string]string{"DATA": s.data}
	d, err := daemon.New(t.Context(), daemon.Options{
		Dir:    s.dir,
		State:  filepath.Join(s.data, "state.db"),
		Listen: "127.0.0.1:0",
		Tokens: []api.Token{{Name: "ops", Role: api.RoleAdmin, Value: adminToken},
			{Name: "viewer", Role: api.RoleRead, Value: readToken}},
		ReloadEvery:  -1, // the test reloads when it changed a file
		CheckEvery:   50 * time.Millisecond,
		Registry:     reg,
		Env:          func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:       slog.New(slog.DiscardHandler),
		RetryJitter:  -1,
		DrainTimeout: 10 * time.Second,
		UI:           ui.Handler(),
		OnRun:        func(r state.Run) { s.runs <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listening := make(chan string, 1)
	go func() { done <- d.Run(ctx, context.Background(), func(a string) { listening <- a }) }()
	select {
	case a := <-listening:
		s.url = "http://" + a
	case err := <-done:
		t.Fatalf("the daemon did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the daemon did not stop within 20s")
		}
	})
	return s
}

// use makes the helpers report to t, a subtest.
func (s *served) use(t *testing.T) {
	s.t = t
}

// pipeline writes a pipeline file: the CSV files of in/NAME (id, v) into
// the SQLite table NAME (id, doubled) by upsert on id. extra is YAML added
// at the top level, steps the steps list ("" for the mapping only).
func (s *served) pipeline(name, extra, steps string) {
	s.t.Helper()
	body := fmt.Sprintf(`name: %s
description: Test pipeline %s.
source:
  type: csv
  path: ${DATA}/in/%s/*.csv
  schema: {id: int, v: int}
steps:
  - map: {doubled: v * 2}
%ssink:
  type: sqlite
  path: ${DATA}/out.db
  table: %s
  mode: upsert
  key: [id]
  create: true
%s`, name, name, name, steps, name, extra)
	if err := os.WriteFile(filepath.Join(s.dir, name+".yaml"), []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.data, "in", name), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// input writes a CSV file of rows id = from..to-1, v = id.
func (s *served) input(name, file string, from, to int) {
	s.t.Helper()
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%d,%d\n", i, i)
	}
	tmp := filepath.Join(s.data, "in", "."+file)
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.data, "in", name, file)); err != nil {
		s.t.Fatal(err)
	}
}

// reload applies the pipeline folder's changes now.
func (s *served) reload() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 10*time.Second)
	defer cancel()
	s.d.Reload(ctx)
}

// call sends an API request with token and decodes a 200 answer into out.
func (s *served) call(method, path, token string, out any) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// trigger asks for a run through the API and returns it once it ended.
func (s *served) trigger(name string) state.Run {
	s.t.Helper()
	if code, body := s.call("POST", "/api/v1/pipelines/"+name+"/trigger", adminToken, nil); code != 200 {
		s.t.Fatalf("trigger %s: %d %s", name, code, body)
	}
	return s.waitRun(name)
}

// waitRun returns the next run of name that ended, failing after 30s.
func (s *served) waitRun(name string) state.Run {
	s.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-s.runs:
			if r.Pipeline == name {
				return r
			}
		case <-deadline:
			s.t.Fatalf("no run of %s ended within 30s", name)
			return state.Run{}
		}
	}
}

// runsOf lists the runs of name through the API, newest first.
func (s *served) runsOf(name string) []api.Run {
	s.t.Helper()
	var rs []api.Run
	if code, body := s.call("GET", "/api/v1/pipelines/"+name+"/runs", readToken, &rs); code != 200 {
		s.t.Fatalf("runs of %s: %d %s", name, code, body)
	}
	return rs
}

// rows reads id → doubled of a pipeline's output table.
func (s *served) rows(name string) map[int64]int64 {
	s.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.data, "out.db")+"?mode=ro")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, doubled FROM ` + name)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			s.t.Fatal(err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}
