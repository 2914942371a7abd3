package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var runTime = time.Date(2024, 5, 17, 12, 0, 0, 0, time.UTC)

// testEnv is a run environment rooted in a fresh directory.
func testEnv(t testing.TB) *connector.Env {
	t.Helper()
	return &connector.Env{
		Pipeline: "test",
		RunID:    "run1",
		RunTime:  runTime,
		Dir:      t.TempDir(),
		Limits:   record.DefaultLimits,
		Location: time.UTC,
	}
}

func params(t testing.TB, src string) connector.Params {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	return p
}

// registry returns a registry holding the package's components.
func registry() *connector.Registry {
	r := connector.NewRegistry()
	Register(r)
	return r
}

func newSource(t testing.TB, yaml string) connector.Source {
	t.Helper()
	e, ok := registry().Get(connector.KindSource, typeOf(t, yaml))
	if !ok {
		t.Fatalf("no source for %q", yaml)
	}
	s, err := e.Source(params(t, yaml))
	if err != nil {
		t.Fatalf("source %q: %v", yaml, err)
	}
	return s
}

// typeOf reads the type: of a component's YAML.
func typeOf(t testing.TB, yaml string) string {
	t.Helper()
	var v struct {
		Type string `yaml:"type"`
	}
	if err := params(t, yaml).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Type
}

func writeFile(t testing.TB, env *connector.Env, name, content string) string {
	t.Helper()
	p := filepath.Join(env.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old := runTime.Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readResult is everything a source produced for one task.
type readResult struct {
	Schema  string
	Rows    []record.Row
	Lines   []int64
	Raw     []string
	Rejects []record.Reject
	Pos     []record.Position
}

// readTask opens a task and reads it to the end, checking conservation
// and the parallel slices of every batch.
func readTask(t testing.TB, src connector.Source, env *connector.Env, task connector.Task, pos record.Position) readResult {
	t.Helper()
	ctx := context.Background()
	r, err := src.Open(ctx, env, task, pos)
	if err != nil {
		t.Fatalf("open %s: %v", task.Key, err)
	}
	defer r.Close()
	res := readResult{Schema: r.Schema().String()}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return res
		}
		if err != nil {
			t.Fatalf("next %s: %v", task.Key, err)
		}
		if b.Decode != nil {
			b.Decode(b)
		}
		if b.Read != len(b.Rows)+len(b.Rejects)+b.Filtered {
			t.Fatalf("batch read %d records but has %d rows, %d rejects, %d filtered", b.Read, len(b.Rows), len(b.Rejects), b.Filtered)
		}
		if b.Read == 0 {
			t.Fatal("empty batch")
		}
		if len(b.Lines) != len(b.Rows) || (b.Raw != nil && len(b.Raw) != len(b.Rows)) {
			t.Fatalf("parallel slices: %d rows, %d lines, %d raw", len(b.Rows), len(b.Lines), len(b.Raw))
		}
		if b.Origin != task.Key {
			t.Fatalf("origin %q, want %q", b.Origin, task.Key)
		}
		for _, row := range b.Rows {
			if len(row) != b.Schema.Len() {
				t.Fatalf("row has %d values, schema %d", len(row), b.Schema.Len())
			}
		}
		res.Rows = append(res.Rows, b.Rows...)
		res.Lines = append(res.Lines, b.Lines...)
		for _, raw := range b.Raw {
			res.Raw = append(res.Raw, string(raw))
		}
		res.Rejects = append(res.Rejects, b.Rejects...)
		res.Pos = append(res.Pos, b.Pos)
	}
}

// planAll plans a source and reads every task.
func planAll(t testing.TB, src connector.Source, env *connector.Env) ([]connector.Task, []readResult) {
	t.Helper()
	tasks, err := src.Plan(context.Background(), env)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out []readResult
	for _, task := range tasks {
		out = append(out, readTask(t, src, env, task, nil))
	}
	return tasks, out
}

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 && a.Scale() == b.Scale() }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

func dec(s string) record.Dec { return record.MustDec(s) }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
