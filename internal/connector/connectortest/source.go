package connectortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
)

// SourceHarness tells the suite how to make a source of one connector,
// configured one way, against a real target.
type SourceHarness struct {
	// New creates a fresh target (a schema, a database, a directory of
	// files) holding rows — rows of Schema, stored in the connector's own
	// form — and returns it. When the source can spread a target over
	// several tasks, New spreads the rows over about tasks of them (one
	// file per task, a key-range split); otherwise it ignores tasks. Files
	// go under env.Dir. New registers the target's cleanup with t and may
	// skip t when the service is unreachable (failing instead when CI=true).
	New func(t testing.TB, env *connector.Env, rows []record.Row, tasks int) *SourceTarget
	// Unbounded sources have readers that never return io.EOF by
	// themselves (a stream, a queue): the suite takes a task as read once
	// Next has had nothing to return for Quiet.
	Unbounded bool
	// Quiet is how long an unbounded reader may be silent before its task
	// counts as read; 500ms when zero.
	Quiet time.Duration
	// Rows is the number of rows of the target; 500 when zero. Batches hold
	// BatchRows rows, so a task spans several batches.
	Rows int
}

// SourceTarget is one target made by SourceHarness.New.
type SourceTarget struct {
	// Source returns a new source configured to read the target. Each call
	// stands for a start of the process: the suite restarts by calling it
	// again.
	Source func(t testing.TB) connector.Source
	// Conns counts the connections (or open files) that the connector holds
	// on the target, for the leak checks: PostgreSQL sessions of the test's
	// application_name, MariaDB processlist rows of the test's database,
	// OpenFiles for files and SQLite. nil: connections are not checked.
	Conns func(t testing.TB) int
	// Add, when not nil, adds rows to the target so that they come after
	// every row already there: rows with greater cursor values, a new file
	// (never a change to a file already read), messages published. The suite
	// checks that reading on from the checkpoints reads exactly them.
	Add func(t testing.TB, rows []record.Row)
}

// BatchRows is the batch size of every run of the suite: small, so that a
// few hundred rows make several batches per task.
const BatchRows = 64

// RunID is the run id of the suite's environments. Sources whose tasks are
// named after the run (a full read) plan the same tasks for every restart
// within it.
const RunID = "20240501T120000Z-000000c0ffee"

// NewEnv returns the environment of one conformance test: pipeline
// "conformance", run RunID, batches of BatchRows rows, files under a new
// temporary directory, UTC.
func NewEnv(t testing.TB) *connector.Env {
	t.Helper()
	return &connector.Env{
		Pipeline: "conformance",
		RunID:    RunID,
		RunTime:  time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Dir:      t.TempDir(),
		Limits:   record.Limits{BatchRows: BatchRows, BatchBytes: 4 << 20, MaxRecordBytes: 1 << 20},
		Location: time.UTC,
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// nextTimeout bounds one Next of a bounded source: a source that does not
// answer by then is reported rather than left to hang the test binary.
const nextTimeout = 30 * time.Second

// unboundedRun bounds a run of an unbounded source, which the suite stops
// once every row is committed: one that never gets there is reported.
const unboundedRun = time.Minute

// cancelBound is how promptly Next and Open must return once their context
// is cancelled.
const cancelBound = 5 * time.Second

// RunSource runs the conformance tests of a source:
//
//   - ReadAll: every task read from its start yields every row exactly
//     once, with its values, in well-formed batches (accounting, lines,
//     a position after each batch), with Decode deferred or not;
//   - Resume: a restarted source opened at the position of the last
//     acknowledged batch reads exactly the rest: after every batch of a
//     task in turn with one more batch read and never acknowledged, at the
//     task's end too (sources whose positions say where to read), and
//     through a chain of restarts that acknowledge as the engine does (every
//     source; a broker's reader is acknowledged through connector.Acker);
//     Plan names the same tasks after a restart;
//   - Engine: the real engine, with a sink that fails after a few batches,
//     commits only positions of batches the sink committed; reading on from
//     those checkpoints, and a second run, complete every row exactly once;
//   - Cancel: Open and Next return promptly with the context's error once
//     it is cancelled, before or during a Next;
//   - Continue: rows added to the target after everything was read are
//     exactly what reading on from the last positions yields (when the
//     harness can Add);
//
// and after each test, once every reader is closed, that no goroutine and
// no connection of the connector is left.
func RunSource(t *testing.T, h SourceHarness) {
	if h.Rows <= 0 {
		h.Rows = 500
	}
	if h.Quiet <= 0 {
		h.Quiet = 500 * time.Millisecond
	}
	s := &sourceSuite{h: h}
	// A first read starts whatever a driver starts once per process, so that
	// the leak checks count only what a test leaves behind.
	t.Run("WarmUp", func(t *testing.T) {
		env := NewEnv(t)
		tg := h.New(t, env, Rows(10), 1)
		src := tg.Source(t)
		for _, task := range s.plan(t, src, env) {
			s.readTask(t, src, env, task, nil, -1)
		}
	})
	t.Run("ReadAll", s.testReadAll)
	t.Run("Resume", s.testResume)
	t.Run("Engine", s.testEngine)
	t.Run("Cancel", s.testCancel)
	t.Run("Continue", s.testContinue)
}

type sourceSuite struct {
	h      SourceHarness
	broker bool // the readers are connector.Ackers: reads are destructive once acknowledged
}

// setup makes a target of n rows over about tasks tasks and starts the
// leak check.
func (s *sourceSuite) setup(t *testing.T, tasks int) (*connector.Env, *SourceTarget, []record.Row, *leaks) {
	t.Helper()
	env := NewEnv(t)
	rows := Rows(s.h.Rows)
	tg := s.h.New(t, env, rows, tasks)
	if tg == nil || tg.Source == nil {
		t.Fatal("the harness returned no target or no Source")
	}
	return env, tg, rows, startLeaks(t, tg.Conns)
}

// plan plans the source's tasks and checks their keys.
func (s *sourceSuite) plan(t testing.TB, src connector.Source, env *connector.Env) []connector.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nextTimeout)
	defer cancel()
	tasks, err := src.Plan(ctx, env)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(tasks) == 0 {
		t.Fatal("Plan: no task for a target holding rows")
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		if task.Key == "" {
			t.Fatalf("Plan: a task without a key: %+v", task)
		}
		if seen[task.Key] {
			t.Fatalf("Plan: task key %q appears twice: checkpoints are stored by key", task.Key)
		}
		seen[task.Key] = true
	}
	return tasks
}

func taskKeys(tasks []connector.Task) []string {
	keys := make([]string, len(tasks))
	for i, t := range tasks {
		keys[i] = t.Key
	}
	sort.Strings(keys)
	return keys
}

// batchRead is one batch as the suite saw it: its rows in Schema, and the
// position after it.
type batchRead struct {
	rows []record.Row
	pos  record.Position
}

// open opens task at pos and checks the reader's schema.
func (s *sourceSuite) open(t testing.TB, src connector.Source, env *connector.Env, task connector.Task, pos record.Position) (connector.Reader, *projection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nextTimeout)
	defer cancel()
	r, err := src.Open(ctx, env, task, pos)
	if err != nil {
		t.Fatalf("Open task %q at %s: %v", task.Key, showPos(pos), err)
	}
	if r == nil {
		t.Fatalf("Open task %q: no reader and no error", task.Key)
	}
	p, err := project(r.Schema())
	if err != nil {
		r.Close()
		t.Fatalf("Open task %q: the reader's %v", task.Key, err)
	}
	if _, ok := r.(connector.Acker); ok {
		s.broker = true
	}
	if sc, ok := src.(connector.Schemer); ok && sc.Schema() != nil && !sc.Schema().Equal(r.Schema()) {
		t.Errorf("the source declares schema (%s) but its reader's is (%s): steps are checked against the first", sc.Schema(), r.Schema())
	}
	return r, p
}

// next reads one batch; end reports the end of the task: io.EOF, or for an
// unbounded source Quiet without a batch.
func (s *sourceSuite) next(t testing.TB, r connector.Reader, p *projection) (batchRead, bool) {
	t.Helper()
	timeout := nextTimeout
	if s.h.Unbounded {
		timeout = s.h.Quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := r.Next(ctx)
	switch {
	case err == io.EOF:
		if s.h.Unbounded {
			t.Errorf("Next of an unbounded source returned io.EOF")
		}
		if b != nil {
			t.Errorf("Next returned a batch of %d rows together with io.EOF: the rows are lost", b.Len())
		}
		return batchRead{}, true
	case err != nil && errors.Is(err, io.EOF):
		t.Fatalf("Next returned a wrapped io.EOF (%v): the end of a task is io.EOF itself, which the engine compares with ==", err)
	case err != nil && s.h.Unbounded && errors.Is(err, context.DeadlineExceeded):
		return batchRead{}, true
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("Next did not return a batch within %s: %v", timeout, err)
	case err != nil:
		t.Fatalf("Next: %v", err)
	case b == nil:
		t.Fatal("Next returned neither a batch nor an error")
	}
	return s.checkBatch(t, r, p, b), false
}

// checkBatch checks the form of a batch and returns its rows in Schema.
func (s *sourceSuite) checkBatch(t testing.TB, r connector.Reader, p *projection, b *record.Batch) batchRead {
	t.Helper()
	if b.Decode != nil {
		b.Decode(b)
		b.Decode = nil
	}
	if !b.Schema.Equal(r.Schema()) {
		t.Errorf("a batch's schema (%s) is not the reader's (%s)", b.Schema, r.Schema())
	}
	if got := b.Len() + len(b.Rejects) + b.Filtered; got != b.Read {
		t.Errorf("batch accounting: %d rows + %d rejects + %d filtered != %d read", b.Len(), len(b.Rejects), b.Filtered, b.Read)
	}
	for i, rj := range b.Rejects {
		if i == 3 {
			t.Errorf("… %d rejects in all", len(b.Rejects))
			break
		}
		t.Errorf("a valid row was rejected at %s: step %q, field %q: %s (%s)", b.Loc(rj.Line), rj.Step, rj.Field, rj.Err, rj.Raw)
	}
	if b.Lines != nil && len(b.Lines) != b.Len() {
		t.Errorf("a batch has %d lines for %d rows", len(b.Lines), b.Len())
	}
	if b.Raw != nil && len(b.Raw) != b.Len() {
		t.Errorf("a batch has %d raw records for %d rows", len(b.Raw), b.Len())
	}
	if b.Read > 0 && len(b.Pos) == 0 {
		t.Errorf("a batch of %d records has no position: a restart after it would read them again", b.Read)
	}
	out := batchRead{pos: b.Pos, rows: make([]record.Row, 0, b.Len())}
	for _, row := range b.Rows {
		if len(row) != r.Schema().Len() {
			t.Errorf("a row has %d values for %d fields", len(row), r.Schema().Len())
			continue
		}
		out.rows = append(out.rows, p.row(row))
	}
	return out
}

// readTask opens task at pos with src and reads at most max batches (all
// when max < 0), then closes the reader. It reports whether the end of the
// task was reached. Nothing is acknowledged: a broker delivers the
// messages again.
func (s *sourceSuite) readTask(t testing.TB, src connector.Source, env *connector.Env, task connector.Task, pos record.Position, max int) ([]batchRead, bool) {
	t.Helper()
	r, p := s.open(t, src, env, task, pos)
	defer r.Close()
	return s.read(t, r, p, task, max)
}

// read reads at most max batches (all when max < 0) from r.
func (s *sourceSuite) read(t testing.TB, r connector.Reader, p *projection, task connector.Task, max int) ([]batchRead, bool) {
	t.Helper()
	var out []batchRead
	for max < 0 || len(out) < max {
		b, end := s.next(t, r, p)
		if end {
			return out, true
		}
		if len(out) > 0 && len(b.pos) > 0 && string(b.pos) == string(out[len(out)-1].pos) && len(b.rows) > 0 {
			t.Errorf("task %q: two batches with rows end at the same position %s", task.Key, showPos(b.pos))
		}
		out = append(out, b)
	}
	return out, false
}

// ack acknowledges the batches of r up to pos, as the engine does after a
// commit, when r is a broker's reader.
func (s *sourceSuite) ack(t testing.TB, r connector.Reader, pos record.Position) {
	t.Helper()
	a, ok := r.(connector.Acker)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), nextTimeout)
	defer cancel()
	if err := a.Ack(ctx, pos); err != nil {
		t.Fatalf("Ack of %s: %v", showPos(pos), err)
	}
}

func rowsOf(bs []batchRead) []record.Row {
	var out []record.Row
	for _, b := range bs {
		out = append(out, b.rows...)
	}
	return out
}

// showPos renders a position for messages.
func showPos(p record.Position) string {
	switch {
	case p == nil:
		return "the start"
	case len(p) > 120:
		return fmt.Sprintf("position %q…", p[:120])
	}
	return fmt.Sprintf("position %q", p)
}

func (s *sourceSuite) testReadAll(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("DeferDecode=%v", deferred), func(t *testing.T) {
			env, tg, rows, lk := s.setup(t, 3)
			env.DeferDecode = deferred
			src := tg.Source(t)
			tasks := s.plan(t, src, env)
			var got []record.Row
			for _, task := range tasks {
				bs, _ := s.readTask(t, src, env, task, nil, -1)
				got = append(got, rowsOf(bs)...)
			}
			checkRows(t, "rows read from every task", got, rows, exactlyOnce)
			lk.check(t)
		})
	}
}

func (s *sourceSuite) testResume(t *testing.T) {
	env, tg, rows, lk := s.setup(t, 3)
	src := tg.Source(t)
	tasks := s.plan(t, src, env)
	var all []record.Row
	for _, task := range tasks {
		ref, _ := s.readTask(t, src, env, task, nil, -1)
		want := rowsOf(ref)
		all = append(all, want...)
		if !s.broker {
			s.resumeEveryBatch(t, tg, env, tasks, task, ref)
		}
		s.resumeChain(t, tg, env, task, want)
	}
	checkRows(t, "rows of every task", all, rows, exactlyOnce)
	lk.check(t)
}

// resumeEveryBatch restarts after every batch of a task in turn: a first
// process reads the acknowledged batches and, when there is one, a batch
// in flight whose acknowledgement never comes; a restarted source reads the
// rest from the position of the last acknowledged batch. ref is the task
// read whole. A broker's reads cannot be repeated from the start, so only
// sources whose positions say where to read take this test.
func (s *sourceSuite) resumeEveryBatch(t testing.TB, tg *SourceTarget, env *connector.Env, tasks []connector.Task, task connector.Task, ref []batchRead) {
	t.Helper()
	src := tg.Source(t)
	want := rowsOf(ref)
	m := len(ref)
	for acked := 0; acked <= m; acked++ {
		first, _ := s.readTask(t, src, env, task, nil, min(acked+1, m))
		var pos record.Position
		var done []record.Row
		if acked > 0 {
			if len(first) < acked {
				t.Fatalf("task %q: a second read from the start returned %d batches, the first %d", task.Key, len(first), m)
			}
			pos = first[acked-1].pos
			done = rowsOf(first[:acked])
		}
		// Restart: a new source, the same plan, the task from its
		// checkpoint.
		src2 := tg.Source(t)
		if got, want := taskKeys(s.plan(t, src2, env)), taskKeys(tasks); !slices.Equal(got, want) {
			t.Fatalf("after a restart Plan names tasks %q, before %q: checkpoints are found by task key", got, want)
		}
		rest, _ := s.readTask(t, src2, env, task, pos, -1)
		what := fmt.Sprintf("task %q: %d of %d batches acknowledged, then the rest from %s", task.Key, acked, m, showPos(pos))
		if !checkRows(t, what, append(done, rowsOf(rest)...), want, exactlyOnce) {
			return
		}
	}
}

// resumeChain reads a task through a chain of processes, each a restart
// from the position its predecessor acknowledged last (acknowledged to the
// broker too, for a broker's reader): each reads n batches and
// acknowledges the first a, with (n, a) going round (1, 0) — the only batch
// in flight —, (2, 1) — one acknowledged, one in flight —, and (3, 3) —
// everything read acknowledged. The acknowledged batches hold every row of
// the task exactly once.
func (s *sourceSuite) resumeChain(t testing.TB, tg *SourceTarget, env *connector.Env, task connector.Task, want []record.Row) {
	t.Helper()
	steps := [][2]int{{1, 0}, {2, 1}, {3, 3}}
	var pos record.Position
	var acked []record.Row
	for i := 0; ; i++ {
		if i > 3*len(want)+10 {
			t.Fatalf("task %q: the chain of restarts does not end", task.Key)
		}
		n, a := steps[i%3][0], steps[i%3][1]
		r, p := s.open(t, tg.Source(t), env, task, pos)
		got, end := s.read(t, r, p, task, n)
		a = min(a, len(got))
		if a > 0 {
			pos = got[a-1].pos
			acked = append(acked, rowsOf(got[:a])...)
			s.ack(t, r, pos)
		}
		r.Close()
		if end && a == len(got) {
			break
		}
	}
	checkRows(t, fmt.Sprintf("task %q read by a chain of restarts, each from the last position acknowledged", task.Key), acked, want, exactlyOnce)
}

func (s *sourceSuite) testEngine(t *testing.T) {
	for _, tc := range []struct {
		name          string
		transactional bool
		failOn        string
	}{
		{"TransactionalSinkFailsAtWrite", true, "write"},
		{"TransactionalSinkFailsAtCommit", true, "commit"},
		{"AtLeastOnceSinkFailsAtCommit", false, "commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, tg, rows, lk := s.setup(t, 3)
			ctx := context.Background()
			sink := newAckSink(tc.transactional, len(rows))
			sink.failOn, sink.failAt = tc.failOn, 3
			st1 := openStore(t)
			defer st1.Close()
			p := pipeline(env, tg.Source(t), sink)
			if _, err := s.runEngine(t, p, runOptions(env, st1, env.RunID), nil); !errors.Is(err, errInjected) {
				t.Fatalf("first run: error %v, want the sink's failure", err)
			}
			committed, acked, cps := sink.snapshot()
			for _, p := range sink.problems() {
				t.Error(p)
			}
			if !tc.transactional {
				var err error
				if cps, err = st1.LoadCheckpoints(ctx, p.Name); err != nil {
					t.Fatal(err)
				}
			}
			for task, cp := range cps {
				if len(cp.Pos) > 0 && !acked[string(cp.Pos)] {
					t.Errorf("task %q: the engine stored checkpoint %s, which is not the position of a batch the sink committed", task, showPos(cp.Pos))
				}
			}
			// A restart reads on from the stored checkpoints: with what the
			// sink committed, every row exactly once.
			src := tg.Source(t)
			rest := append([]record.Row(nil), committed...)
			for _, task := range s.plan(t, src, env) {
				cp := cps[task.Key]
				if cp.Done && task.Final && cp.Fingerprint == task.Fingerprint {
					continue
				}
				bs, _ := s.readTask(t, src, env, task, cp.Pos, -1)
				rest = append(rest, rowsOf(bs)...)
			}
			checkRows(t, fmt.Sprintf("%d rows committed by the failed run, then the rest read from its checkpoints", len(committed)), rest, rows, exactlyOnce)

			// The second run, through the engine, in the same run (a full
			// read names its tasks after the run) from the same checkpoints.
			st2 := openStore(t)
			defer st2.Close()
			if err := st2.SaveCheckpoints(ctx, p.Name, checkpointList(cps)); err != nil {
				t.Fatal(err)
			}
			sink.mu.Lock()
			sink.failOn = ""
			sink.mu.Unlock()
			p.Source.Source = tg.Source(t)
			if _, err := s.runEngine(t, p, runOptions(env, st2, env.RunID), sink.full); err != nil {
				t.Fatalf("second run: %v", err)
			}
			all, _, _ := sink.snapshot()
			checkRows(t, "rows committed by both runs", all, rows, exactlyOnce)
			st1.Close()
			st2.Close()
			lk.check(t)
		})
	}
}

// runEngine runs p. An unbounded run is stopped once full is closed, which
// then counts as success: softly for a broker's reader, which the engine
// interrupts at a soft stop, hard as well for other readers, which need not
// notice a soft stop while they wait for data (every row is committed by
// then, so nothing is lost).
func (s *sourceSuite) runEngine(t testing.TB, p *config.Pipeline, opts engine.Options, full <-chan struct{}) (*engine.Result, error) {
	t.Helper()
	if !s.h.Unbounded || full == nil {
		return engine.Run(context.Background(), p, opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hard, cancelHard := context.WithCancel(context.Background())
	defer cancelHard()
	opts.Hard = hard
	type result struct {
		res *engine.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := engine.Run(ctx, p, opts)
		done <- result{res, err}
	}()
	bound := time.NewTimer(unboundedRun)
	defer bound.Stop()
	select {
	case <-bound.C:
		cancel()
		cancelHard()
		<-done
		return nil, fmt.Errorf("the run did not commit every row within %s", unboundedRun)
	case <-full:
		cancel()
		if !s.broker {
			// A reader that is no broker's waits for data through the soft
			// stop; everything is committed, so nothing is lost by a hard one.
			cancelHard()
		}
		r := <-done
		if errors.Is(r.err, context.Canceled) {
			r.err = nil
		}
		return r.res, r.err
	case r := <-done:
		return r.res, r.err
	}
}

func checkpointList(m map[string]connector.Checkpoint) []connector.Checkpoint {
	out := make([]connector.Checkpoint, 0, len(m))
	for _, cp := range m {
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Task < out[j].Task })
	return out
}

func (s *sourceSuite) testCancel(t *testing.T) {
	env, tg, _, lk := s.setup(t, 1)
	src := tg.Source(t)
	task := s.plan(t, src, env)[0]

	t.Run("BeforeNext", func(t *testing.T) {
		r, p := s.open(t, src, env, task, nil)
		defer r.Close()
		if _, end := s.next(t, r, p); end {
			t.Fatal("the task ended before its first batch")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b, err := s.nextBounded(t, ctx, r)
		if b != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a cancelled context: batch %v, error %v; want no batch and context.Canceled", b != nil, err)
		}
	})

	t.Run("DuringNext", func(t *testing.T) {
		r, _ := s.open(t, src, env, task, nil)
		defer r.Close()
		// Each Next gets a context that is cancelled the moment the reader
		// starts watching it, which is when it is about to wait for its
		// service: the cancellation lands midway, deterministically. A
		// reader that had its batch at hand may still return it, but must
		// then go on reading; one that waits must give up with the
		// context's error. An unbounded reader waits at the latest once its
		// rows are read.
		for i := 0; ; i++ {
			ctx, tripped := TripContext()
			b, err := s.nextBounded(t, ctx, r)
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Next cancelled midway returned %v, want an error wrapping context.Canceled", err)
				}
				break
			}
			if b == nil {
				t.Fatal("Next returned neither a batch nor an error")
			}
			if tripped() {
				// The batch came although the context was cancelled while Next
				// ran: the reader must be as good as before.
				b, err := s.nextBounded(t, context.Background(), r)
				if err != nil && err != io.EOF {
					t.Fatalf("Next returned a batch although its context was cancelled meanwhile, then the next Next (with a live context) failed: %v", err)
				}
				if err == io.EOF || b == nil {
					break
				}
			}
			if i > 100000 {
				t.Fatal("Next never ended")
			}
		}
	})

	t.Run("Open", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		r, err := src.Open(ctx, env, task, nil)
		if d := time.Since(start); d > cancelBound {
			t.Errorf("Open with a cancelled context took %s", d)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Open with a cancelled context: %v, want an error wrapping context.Canceled", err)
			}
			return
		}
		defer r.Close()
		b, err := s.nextBounded(t, ctx, r)
		if b != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Next of a reader opened with a cancelled context: batch %v, error %v; want no batch and context.Canceled", b != nil, err)
		}
	})
	lk.check(t)
}

// TripContext returns a context that cancels itself the first time its
// Done channel is asked for (by a select, context.AfterFunc, a derived
// context, a driver's context watcher), and whether that happened. A
// reader given one is cancelled exactly when it starts to wait on its
// service, which makes a cancellation midway reproducible.
func TripContext() (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(context.Background())
	tc := &tripCtx{Context: ctx, cancel: cancel}
	return tc, func() bool { return tc.tripped.Load() }
}

type tripCtx struct {
	context.Context
	cancel  context.CancelFunc
	once    sync.Once
	tripped atomic.Bool
}

func (c *tripCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		c.tripped.Store(true)
		c.cancel()
	})
	return c.Context.Done()
}

// nextBounded calls Next and fails the test when it does not return within
// cancelBound.
func (s *sourceSuite) nextBounded(t testing.TB, ctx context.Context, r connector.Reader) (*record.Batch, error) {
	t.Helper()
	type result struct {
		b   *record.Batch
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := r.Next(ctx)
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		return res.b, res.err
	case <-time.After(cancelBound):
		t.Fatalf("Next did not return within %s of its context's cancellation", cancelBound)
	}
	return nil, nil
}

func (s *sourceSuite) testContinue(t *testing.T) {
	env, tg, _, lk := s.setup(t, 2)
	if tg.Add == nil {
		t.Skip("the harness cannot add rows to its target")
	}
	src := tg.Source(t)
	tasks := s.plan(t, src, env)
	type progress struct {
		pos         record.Position
		done        bool
		fingerprint string
	}
	seen := map[string]progress{}
	for _, task := range tasks {
		r, p := s.open(t, src, env, task, nil)
		bs, end := s.read(t, r, p, task, -1)
		pr := progress{done: end && task.Final, fingerprint: task.Fingerprint}
		if len(bs) > 0 {
			pr.pos = bs[len(bs)-1].pos
			s.ack(t, r, pr.pos)
		}
		r.Close()
		seen[task.Key] = pr
	}
	more := RowRange(int64(s.h.Rows)+1, 150)
	tg.Add(t, more)
	src2 := tg.Source(t)
	var got []record.Row
	for _, task := range s.plan(t, src2, env) {
		pr := seen[task.Key]
		if pr.done && pr.fingerprint == task.Fingerprint {
			continue // the engine skips a finished Final task
		}
		bs, _ := s.readTask(t, src2, env, task, pr.pos, -1)
		got = append(got, rowsOf(bs)...)
	}
	checkRows(t, "rows read on from the last positions after rows were added", got, more, exactlyOnce)
	lk.check(t)
}
