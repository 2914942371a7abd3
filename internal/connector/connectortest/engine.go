package connectortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// The suite drives the real engine to check what only shows across the
// engine's boundary: which positions it commits, and how the connector
// resumes from them. The components below are test doubles of the
// engine's contracts, never of a service: a sink that records what it
// committed for source tests, a source of Rows for sink tests, and a
// wrapper that makes a real sink fail at a chosen call.

// errInjected is the failure the suite injects; it is not transient, so
// the engine stops the run instead of retrying.
var errInjected = errors.New("conformance: injected failure")

// pipeline assembles a pipeline of src and sink without steps, in env's
// directory, with no error budget.
func pipeline(env *connector.Env, src connector.Source, sink connector.Sink) *config.Pipeline {
	return &config.Pipeline{
		File: filepath.Join(env.Dir, "conformance.yaml"), Dir: env.Dir, Name: env.Pipeline, Hash: "conformance",
		Timezone: env.Location,
		Source:   &config.Component{Kind: connector.KindSource, Label: "source", Source: src},
		Sink:     &config.Component{Kind: connector.KindSink, Label: "sink", Sink: sink},
		Redactor: &config.Redactor{},
		Errors:   config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1, MinSample: 1000},
		Settings: config.Settings{Limits: env.Limits, Workers: 2, Tasks: 2},
	}
}

// openStore opens a state store in a new directory; the caller closes it.
func openStore(t testing.TB) state.Store {
	t.Helper()
	st, err := sqlitestate.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("state store: %v", err)
	}
	return st
}

// runOptions are the options of a run with id runID in env's time.
func runOptions(env *connector.Env, st state.Store, runID string) engine.Options {
	return engine.Options{Store: st, RunID: runID, LogicalTime: env.RunTime}
}

// ackSink is the sink of the source tests. It makes rows visible at Commit
// only, remembers the positions of the batches it committed, and stores
// checkpoints with its rows when transactional. The failAt-th call of
// failOn ("write" or "commit") fails for good.
type ackSink struct {
	transactional bool
	failOn        string
	failAt        int
	want          int           // rows after which full is closed
	full          chan struct{} // closed once want rows are committed

	mu     sync.Mutex
	calls  int
	rows   []record.Row
	acked  map[string]bool // positions of committed batches
	cps    map[string]connector.Checkpoint
	closed bool     // full was closed
	badPos []string // batches without a position
}

func newAckSink(transactional bool, want int) *ackSink {
	return &ackSink{transactional: transactional, want: want, full: make(chan struct{}),
		acked: map[string]bool{}, cps: map[string]connector.Checkpoint{}}
}

func (s *ackSink) Open(_ context.Context, _ *connector.Env, schema *record.Schema) (connector.Writer, error) {
	p, err := project(schema)
	if err != nil {
		return nil, fmt.Errorf("conformance sink: %w", err)
	}
	return &ackWriter{s: s, proj: p}, nil
}

// LoadCheckpoints implements connector.CheckpointLoader; a sink that is not
// transactional has none.
func (s *ackSink) LoadCheckpoints(context.Context, *connector.Env) (map[string]connector.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.transactional {
		return nil, nil
	}
	out := make(map[string]connector.Checkpoint, len(s.cps))
	for k, v := range s.cps {
		out[k] = v
	}
	return out, nil
}

// fail counts a call of kind what and reports whether it is the one to fail.
func (s *ackSink) fail(what string) bool {
	if s.failOn != what {
		return false
	}
	s.calls++
	return s.calls == s.failAt
}

func (s *ackSink) snapshot() (rows []record.Row, acked map[string]bool, cps map[string]connector.Checkpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked = make(map[string]bool, len(s.acked))
	for k := range s.acked {
		acked[k] = true
	}
	cps = make(map[string]connector.Checkpoint, len(s.cps))
	for k, v := range s.cps {
		cps[k] = v
	}
	return append([]record.Row(nil), s.rows...), acked, cps
}

// problems lists what the sink found wrong in the batches it was given.
func (s *ackSink) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.badPos)
}

type ackWriter struct {
	s      *ackSink
	proj   *projection
	staged []record.Row
	pos    []string
}

func (w *ackWriter) Info() connector.WriterInfo {
	return connector.WriterInfo{Transactional: w.s.transactional}
}

func (w *ackWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.fail("write") {
		w.staged, w.pos = nil, nil
		return 0, fmt.Errorf("write: %w", errInjected)
	}
	if b.Read > 0 && len(b.Pos) == 0 {
		w.s.badPos = append(w.s.badPos, fmt.Sprintf("a batch of %d records from %q has no position", b.Read, b.Origin))
	}
	for _, r := range b.Rows {
		w.staged = append(w.staged, w.proj.row(r))
	}
	w.pos = append(w.pos, string(b.Pos))
	return b.Len(), nil
}

func (w *ackWriter) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.fail("commit") {
		w.staged, w.pos = nil, nil
		return fmt.Errorf("commit: %w", errInjected)
	}
	w.s.rows = append(w.s.rows, w.staged...)
	for _, p := range w.pos {
		w.s.acked[p] = true
	}
	if w.s.transactional {
		for _, cp := range cps {
			w.s.cps[cp.Task] = cp
		}
	}
	w.staged, w.pos = nil, nil
	if !w.s.closed && len(w.s.rows) >= w.s.want {
		w.s.closed = true
		close(w.s.full)
	}
	return nil
}

func (w *ackWriter) Close() error {
	w.staged, w.pos = nil, nil
	return nil
}

// rowsSource is the source of the sink tests: tasks "part-1" … of rows of
// Schema, Final, positions the index of the next row.
type rowsSource struct {
	tasks [][]record.Row
	batch int
}

func newRowsSource(rows []record.Row, tasks, batch int) *rowsSource {
	s := &rowsSource{batch: batch}
	per := (len(rows) + tasks - 1) / tasks
	for lo := 0; lo < len(rows); lo += per {
		s.tasks = append(s.tasks, rows[lo:min(lo+per, len(rows))])
	}
	return s
}

func (s *rowsSource) Schema() *record.Schema { return Schema }

func (s *rowsSource) Plan(context.Context, *connector.Env) ([]connector.Task, error) {
	out := make([]connector.Task, len(s.tasks))
	for i, rows := range s.tasks {
		out[i] = connector.Task{Key: fmt.Sprintf("part-%d", i+1), Size: int64(len(rows)), Final: true, Fingerprint: "v1"}
	}
	return out, nil
}

func (s *rowsSource) Open(_ context.Context, _ *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	var i int
	if _, err := fmt.Sscanf(t.Key, "part-%d", &i); err != nil || i < 1 || i > len(s.tasks) {
		return nil, fmt.Errorf("conformance source: no task %q", t.Key)
	}
	next := 0
	if len(pos) > 0 {
		n, err := strconv.Atoi(string(pos))
		if err != nil || n < 0 || n > len(s.tasks[i-1]) {
			return nil, fmt.Errorf("conformance source: position %q is not one of task %s", pos, t.Key)
		}
		next = n
	}
	return &rowsReader{rows: s.tasks[i-1], next: next, batch: s.batch, task: t.Key}, nil
}

type rowsReader struct {
	rows  []record.Row
	next  int
	batch int
	task  string
}

func (r *rowsReader) Schema() *record.Schema { return Schema }
func (r *rowsReader) Close() error           { return nil }

func (r *rowsReader) Next(ctx context.Context) (*record.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.next >= len(r.rows) {
		return nil, io.EOF
	}
	end := min(r.next+r.batch, len(r.rows))
	b := &record.Batch{Schema: Schema, Origin: r.task}
	for i := r.next; i < end; i++ {
		b.Rows = append(b.Rows, append(record.Row(nil), r.rows[i]...))
		b.Lines = append(b.Lines, int64(i+1))
	}
	b.Read = end - r.next
	r.next = end
	b.Pos = record.Position(strconv.Itoa(end))
	return b, nil
}

// faultSink wraps a real sink so that the failAt-th call of failOn
// ("write" or "commit") reaches the real writer with a cancelled context —
// the sink sees a write or commit interrupted midway — and then fails for
// good, whatever the real writer answered.
type faultSink struct {
	inner  connector.Sink
	failOn string
	failAt int

	mu    sync.Mutex
	calls int
	info  connector.WriterInfo // of the last writer opened
}

// faultLoaderSink is a faultSink whose inner sink has checkpoints.
type faultLoaderSink struct{ *faultSink }

func (s faultLoaderSink) LoadCheckpoints(ctx context.Context, env *connector.Env) (map[string]connector.Checkpoint, error) {
	return s.inner.(connector.CheckpointLoader).LoadCheckpoints(ctx, env)
}

// wrapFault wraps sink, keeping its CheckpointLoader.
func wrapFault(sink connector.Sink, failOn string, failAt int) connector.Sink {
	f := &faultSink{inner: sink, failOn: failOn, failAt: failAt}
	if _, ok := sink.(connector.CheckpointLoader); ok {
		return faultLoaderSink{f}
	}
	return f
}

func (s *faultSink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	w, err := s.inner.Open(ctx, env, schema)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.info = w.Info()
	s.mu.Unlock()
	return &faultWriter{s: s, inner: w}, nil
}

// fail counts a call of kind what and reports whether it is the one to
// fail. A once writer commits once: its commit fails at the first.
func (s *faultSink) fail(what string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failOn != what {
		return false
	}
	s.calls++
	return s.calls == s.failAt || (what == "commit" && s.info.Once && s.calls == 1)
}

type faultWriter struct {
	s     *faultSink
	inner connector.Writer
}

func cancelled(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

func (w *faultWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	if w.s.fail("write") {
		w.inner.Write(cancelled(ctx), b) //nolint:errcheck // the write fails whatever it answered
		return 0, fmt.Errorf("write: %w", errInjected)
	}
	return w.inner.Write(ctx, b)
}

func (w *faultWriter) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	if w.s.fail("commit") {
		w.inner.Commit(cancelled(ctx), cps) //nolint:errcheck // the commit fails whatever it answered
		return fmt.Errorf("commit: %w", errInjected)
	}
	return w.inner.Commit(ctx, cps)
}

// Prepare keeps the real writer's preparation on the engine's workers.
func (w *faultWriter) Prepare(b *record.Batch) error {
	if p, ok := w.inner.(connector.Preparer); ok {
		return p.Prepare(b)
	}
	return nil
}

func (w *faultWriter) Close() error               { return w.inner.Close() }
func (w *faultWriter) Info() connector.WriterInfo { return w.inner.Info() }
