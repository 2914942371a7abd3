package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func testEnv(t testing.TB) *connector.Env {
	t.Helper()
	return &connector.Env{
		Pipeline: "orders",
		RunID:    "run1",
		RunTime:  time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Dir:      t.TempDir(),
		Limits:   record.DefaultLimits,
		Location: time.UTC,
	}
}

func testRegistry() *connector.Registry {
	r := connector.NewRegistry()
	Register(r)
	return r
}

func params(t testing.TB, src string) connector.Params {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatalf("ParamsFromYAML: %v", err)
	}
	return p
}

func buildSource(t testing.TB, src string) connector.Source {
	t.Helper()
	e, _ := testRegistry().Get(connector.KindSource, "sqlite")
	s, err := e.Source(params(t, src))
	if err != nil {
		t.Fatalf("source factory: %v", err)
	}
	return s
}

func buildSink(t testing.TB, src string) connector.Sink {
	t.Helper()
	e, _ := testRegistry().Get(connector.KindSink, "sqlite")
	s, err := e.Sink(params(t, src))
	if err != nil {
		t.Fatalf("sink factory: %v", err)
	}
	return s
}

func buildLookup(t testing.TB, src string) connector.Lookup {
	t.Helper()
	e, _ := testRegistry().Get(connector.KindLookup, "sqlite")
	l, err := e.Lookup(params(t, src))
	if err != nil {
		t.Fatalf("lookup factory: %v", err)
	}
	return l
}

// testDB opens (creating) a database for the test's own statements.
func testDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, false, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// readResult is everything a reader returned.
type readResult struct {
	rows    []record.Row
	lines   []int64
	rejects []record.Reject
	batches int
	pos     record.Position // of the last batch
}

// readAll opens task at pos and reads it to its end, checking the
// accounting of every batch.
func readAll(t testing.TB, s connector.Source, env *connector.Env, task connector.Task, pos record.Position) readResult {
	t.Helper()
	r, err := s.Open(context.Background(), env, task, pos)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	return drain(t, r, -1)
}

// drain reads up to max batches (all when max < 0).
func drain(t testing.TB, r connector.Reader, max int) readResult {
	t.Helper()
	var res readResult
	for max < 0 || res.batches < max {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got := b.Len() + len(b.Rejects) + b.Filtered; got != b.Read {
			t.Fatalf("batch accounting: rows+rejects+filtered = %d, read = %d", got, b.Read)
		}
		if len(b.Lines) != b.Len() {
			t.Fatalf("batch has %d lines for %d rows", len(b.Lines), b.Len())
		}
		if b.Pos == nil {
			t.Fatal("batch without a position")
		}
		res.batches++
		res.rows = append(res.rows, b.Rows...)
		res.lines = append(res.lines, b.Lines...)
		res.rejects = append(res.rejects, b.Rejects...)
		res.pos = b.Pos
	}
	return res
}

func dbPath(env *connector.Env, name string) string { return filepath.Join(env.Dir, name) }

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := record.ParseTimestamp(s, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
