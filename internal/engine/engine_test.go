package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// The components below are test doubles of the engine's own contracts (not
// of any service): a source of numbered rows and a sink that records what it
// committed, so the engine's ordering, acks and checkpoints can be checked
// exactly.

var numSchema = record.MustSchema(record.Field{Name: "task", Type: record.String}, record.Field{Name: "n", Type: record.Int})

// numSource has tasks of numbered rows; a row whose number is in bad is a
// source reject. Positions are the index of the next row.
type numSource struct {
	tasks map[string]int
	bad   map[int]bool
	batch int
	hold  chan struct{} // when set, Next waits for it after the first batch
}

func (s *numSource) Schema() *record.Schema { return numSchema }

func (s *numSource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	var ts []connector.Task
	for _, k := range sortedTaskKeys(s.tasks) {
		ts = append(ts, connector.Task{Key: k, Final: true, Fingerprint: "v1", Size: int64(s.tasks[k])})
	}
	return ts, nil
}

func (s *numSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	next := 0
	if pos != nil {
		n, err := strconv.Atoi(string(pos))
		if err != nil {
			return nil, err
		}
		next = n
	}
	return &numReader{s: s, task: t.Key, next: next, end: s.tasks[t.Key]}, nil
}

type numReader struct {
	s         *numSource
	task      string
	next, end int
}

func (r *numReader) Schema() *record.Schema { return numSchema }
func (r *numReader) Close() error           { return nil }
func (r *numReader) Next(ctx context.Context) (*record.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.next >= r.end {
		return nil, io.EOF
	}
	if r.s.hold != nil && r.next > 0 {
		select {
		case <-r.s.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b := &record.Batch{Schema: numSchema, Origin: r.task}
	for i := 0; i < r.s.batch && r.next < r.end; i++ {
		n := r.next
		r.next++
		b.Read++
		if r.s.bad[n] {
			b.Rejects = append(b.Rejects, record.Reject{Line: int64(n), Step: "source", Err: fmt.Sprintf("row %d is bad", n), Raw: []byte(strconv.Itoa(n))})
			continue
		}
		b.Rows = append(b.Rows, record.Row{r.task, int64(n)})
		b.Lines = append(b.Lines, int64(n))
	}
	b.Pos = record.Position(strconv.Itoa(r.next))
	return b, nil
}

// memSink stages rows and makes them visible at Commit; it stores
// checkpoints with them when transactional.
type memSink struct {
	mu            sync.Mutex
	info          connector.WriterInfo
	rows          map[string][]int64 // committed rows by task, in commit order
	cps           map[string]connector.Checkpoint
	commits       int
	failAtCommit  int // the Nth commit fails for good (0: never)
	transientOnce bool
	refuse        map[int64]bool // rows refused with a BatchError
}

func newMemSink(info connector.WriterInfo) *memSink {
	return &memSink{info: info, rows: map[string][]int64{}, cps: map[string]connector.Checkpoint{}}
}

func (s *memSink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	return &memWriter{s: s}, nil
}

func (s *memSink) LoadCheckpoints(ctx context.Context, env *connector.Env) (map[string]connector.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.info.Transactional {
		return nil, nil
	}
	out := map[string]connector.Checkpoint{}
	for k, v := range s.cps {
		out[k] = v
	}
	return out, nil
}

type memWriter struct {
	s      *memSink
	staged map[string][]int64
	// batches written since the last commit: a writer that stages again
	// what a lost transaction held takes a batch written again as there
	batches map[*record.Batch]bool
}

func (w *memWriter) Info() connector.WriterInfo { return w.s.info }
func (w *memWriter) Close() error               { w.staged = nil; return nil }
func (w *memWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	if w.staged == nil {
		w.staged = map[string][]int64{}
	}
	if w.s.info.StageBatches > 1 {
		if w.batches[b] {
			return b.Len(), nil
		}
		if w.batches == nil {
			w.batches = map[*record.Batch]bool{}
		}
		w.batches[b] = true
	}
	var be connector.BatchError
	for i, row := range b.Rows {
		n := row[1].(int64)
		if w.s.refuse[n] {
			be.Rows = append(be.Rows, connector.RowError{Index: i, Err: fmt.Errorf("row %d violates a constraint", n)})
			continue
		}
		w.staged[row[0].(string)] = append(w.staged[row[0].(string)], n)
	}
	if len(be.Rows) > 0 {
		return b.Len() - len(be.Rows), &be
	}
	return b.Len(), nil
}

func (w *memWriter) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.commits++
	if w.s.transientOnce { // like a database: the transaction is lost
		w.s.transientOnce = false
		if w.s.info.StageBatches <= 1 {
			w.staged = nil // a writer that stages again keeps its rows
		}
		return connector.Transient(errors.New("connection reset"))
	}
	if w.s.failAtCommit > 0 && w.s.commits == w.s.failAtCommit {
		w.staged, w.batches = nil, nil
		return errors.New("disk full")
	}
	for k, v := range w.staged {
		w.s.rows[k] = append(w.s.rows[k], v...)
	}
	w.staged, w.batches = nil, nil
	if w.s.info.Transactional {
		for _, cp := range cps {
			w.s.cps[cp.Task] = cp
		}
	}
	return nil
}

// evenFilter drops odd numbers: "filtered" is an ack outcome.
type evenFilter struct{}

func (evenFilter) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	return in, nil
}
func (evenFilter) Process(ctx context.Context, b *record.Batch) error {
	for i, r := range b.Rows {
		if r[1].(int64)%2 == 1 {
			b.Drop(i)
		}
	}
	return nil
}

func pipeline(t *testing.T, src connector.Source, sink connector.Sink, steps ...connector.Step) *config.Pipeline {
	t.Helper()
	p := &config.Pipeline{
		File: "test.yaml", Dir: t.TempDir(), Name: "test", Hash: "h",
		Source:   &config.Component{Kind: connector.KindSource, Label: "source", Source: src},
		Sink:     &config.Component{Kind: connector.KindSink, Label: "sink", Sink: sink},
		Redactor: &config.Redactor{},
		Errors:   config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1, MinSample: 1000},
		Settings: config.Settings{Limits: record.DefaultLimits, Workers: 3, Tasks: 2},
	}
	for i, s := range steps {
		p.Steps = append(p.Steps, &config.Component{Kind: connector.KindStep, Label: fmt.Sprintf("step[%d]", i+1), Step: s})
	}
	return p
}

func openStore(t *testing.T) state.Store {
	t.Helper()
	st, err := sqlitestate.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sortedTaskKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// checkExactlyOnce asserts every task's rows 0..n-1 (minus skipped ones)
// are committed exactly once and in order.
func checkExactlyOnce(t *testing.T, s *memSink, tasks map[string]int, skip func(int64) bool) {
	t.Helper()
	for task, n := range tasks {
		var want []int64
		for i := int64(0); i < int64(n); i++ {
			if !skip(i) {
				want = append(want, i)
			}
		}
		got := s.rows[task]
		if len(got) != len(want) {
			t.Fatalf("task %s: %d rows committed, want %d", task, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("task %s: row %d is %d, want %d (order or duplicates)", task, i, got[i], want[i])
			}
		}
	}
}

func TestRunOrdersConservesAndCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		info connector.WriterInfo
	}{
		{"transactional", connector.WriterInfo{Transactional: true}},
		{"once", connector.WriterInfo{Once: true}},
		{"at least once", connector.WriterInfo{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks := map[string]int{"a": 10000, "b": 7777, "c": 1, "empty": 0}
			bad := map[int]bool{5: true, 4000: true}
			src := &numSource{tasks: tasks, bad: bad, batch: 100}
			sink := newMemSink(tc.info)
			st := openStore(t)
			p := pipeline(t, src, sink, evenFilter{})
			res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, sink, tasks, func(n int64) bool { return n%2 == 1 || bad[int(n)] })
			if !res.Conserved() {
				t.Fatalf("read %d != written %d + rejected %d + filtered %d", res.Run.Read, res.Run.Written, res.Run.Rejected, res.Run.Filtered)
			}
			if res.Run.Read != 17778 || res.Run.Rejected != 4 { // 5 and 4000, in a and in b
				t.Fatalf("read %d rejected %d, want 17778 and 4", res.Run.Read, res.Run.Rejected)
			}
			cps, err := st.LoadCheckpoints(context.Background(), "test")
			if err != nil {
				t.Fatal(err)
			}
			for task, n := range tasks {
				cp := cps[task]
				if !cp.Done || string(cp.Pos) != posOf(n) {
					t.Errorf("task %s checkpoint %+v, want done at %d", task, cp, n)
				}
			}
			dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "test"})
			if err != nil || len(dls) != 4 {
				t.Fatalf("dead letters %d (%v), want 4", len(dls), err)
			}
			// A second run finds every task done and reads nothing.
			res2, err := engine.Run(context.Background(), p, engine.Options{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Run.Read != 0 || res2.Skipped != len(tasks) {
				t.Fatalf("second run read %d, skipped %d; want 0 and %d", res2.Run.Read, res2.Skipped, len(tasks))
			}
			checkExactlyOnce(t, sink, tasks, func(n int64) bool { return n%2 == 1 || bad[int(n)] })
		})
	}
}

func posOf(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func TestResumeAfterFailedCommitLoadsEachRowOnce(t *testing.T) {
	tasks := map[string]int{"a": 5000, "b": 5000}
	src := &numSource{tasks: tasks, batch: 64}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	sink.failAtCommit = 37
	st := openStore(t)
	p := pipeline(t, src, sink)
	failed, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err == nil {
		t.Fatal("run with a failing commit succeeded")
	}
	// The failed run reports what it committed, which the next run does
	// not read again.
	committed := int64(len(sink.rows["a"]) + len(sink.rows["b"]))
	if failed.Run.Written != committed || !failed.Conserved() {
		t.Fatalf("failed run: read %d written %d, the sink holds %d", failed.Run.Read, failed.Run.Written, committed)
	}
	sink.failAtCommit = 0
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Read == 0 || res.Run.Read == 10000 {
		t.Fatalf("second run read %d: want a resume from the checkpoints, neither nothing nor everything", res.Run.Read)
	}
	if failed.Run.Read+res.Run.Read != 10000 {
		t.Fatalf("the runs read %d + %d, want 10000 in all", failed.Run.Read, res.Run.Read)
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
	runs, _ := st.Runs(context.Background(), state.RunFilter{Pipeline: "test"})
	if len(runs) != 2 || runs[1].Status != state.StatusFailed || runs[0].Status != state.StatusSucceeded {
		t.Fatalf("runs %+v", runs)
	}
}

func TestErrorBudgetStopsBeforeCheckpointMoves(t *testing.T) {
	bad := map[int]bool{}
	for n := 300; n < 310; n++ {
		bad[n] = true
	}
	tasks := map[string]int{"a": 1000}
	src := &numSource{tasks: tasks, bad: bad, batch: 100}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	st := openStore(t)
	p := pipeline(t, src, sink)
	p.Errors.MaxRejects = 5
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	var be *engine.BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("err %v, want a budget error", err)
	}
	if got := string(sink.cps["a"].Pos); got != "300" {
		t.Fatalf("checkpoint at %q, want 300: it must not move past the bad batch", got)
	}
	if len(sink.rows["a"]) != 300 {
		t.Fatalf("%d rows committed, want the 300 before the bad batch", len(sink.rows["a"]))
	}
	if res.Run.Status != state.StatusFailed {
		t.Fatalf("status %s", res.Run.Status)
	}
	// The rate form: 10 of 1000 is 1%, over 0.5% at the end of input.
	sink2 := newMemSink(connector.WriterInfo{Once: true})
	p2 := pipeline(t, src, sink2)
	p2.Name = "rate"
	p2.Errors.MaxRejectRate = 0.005
	p2.Errors.MinSample = 100000
	if _, err := engine.Run(context.Background(), p2, engine.Options{Store: st}); !errors.As(err, &be) {
		t.Fatalf("err %v, want a budget error at the end of input", err)
	}
	if len(sink2.rows["a"]) != 0 {
		t.Fatalf("a once sink committed %d rows of a run over budget", len(sink2.rows["a"]))
	}
}

func TestSinkRefusedRowsBecomeDeadLettersAndTransientErrorsRetry(t *testing.T) {
	tasks := map[string]int{"a": 500}
	src := &numSource{tasks: tasks, batch: 50}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	sink.refuse = map[int64]bool{7: true, 260: true}
	sink.transientOnce = true
	st := openStore(t)
	res, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Rejected != 2 || res.Run.Written != 498 || !res.Conserved() {
		t.Fatalf("rejected %d written %d read %d", res.Run.Rejected, res.Run.Written, res.Run.Read)
	}
	dls, _ := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "test", Step: "sink"})
	if len(dls) != 2 || dls[0].Loc != "a:7" || dls[1].Loc != "a:260" {
		t.Fatalf("dead letters %+v", dls)
	}
	checkExactlyOnce(t, sink, tasks, func(n int64) bool { return n == 7 || n == 260 })
}

func TestSoftStopCommitsWhatWasRead(t *testing.T) {
	tasks := map[string]int{"a": 200000}
	src := &numSource{tasks: tasks, batch: 10}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	opts := engine.Options{Store: st, ProgressEvery: 1, Progress: func(p engine.Progress) {
		if p.Written > 1000 {
			once.Do(cancel)
		}
	}}
	res, err := engine.Run(ctx, pipeline(t, src, sink), opts)
	if !errors.Is(err, context.Canceled) || res.Run.Status != state.StatusCancelled {
		t.Fatalf("err %v status %s, want cancelled", err, res.Run.Status)
	}
	n := len(sink.rows["a"])
	if n == 0 || n == 200000 {
		t.Fatalf("%d rows committed, want a part", n)
	}
	if string(sink.cps["a"].Pos) != strconv.Itoa(n) {
		t.Fatalf("checkpoint %q does not match the %d committed rows", sink.cps["a"].Pos, n)
	}
	if int64(n) != res.Run.Written {
		t.Fatalf("history says %d written, sink has %d", res.Run.Written, n)
	}
	// The next run goes on from there.
	if _, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: st}); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}

func TestDryRunWritesNothing(t *testing.T) {
	tasks := map[string]int{"a": 1000}
	src := &numSource{tasks: tasks, bad: map[int]bool{3: true}, batch: 100}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	res, err := engine.Run(context.Background(), pipeline(t, src, sink, evenFilter{}), engine.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sink.commits != 0 || len(sink.cps) != 0 {
		t.Fatalf("dry run committed %d times", sink.commits)
	}
	if res.Run.Read != 1000 || res.Run.Rejected != 1 || res.Run.Filtered != 499 || res.Run.Written != 500 || !res.Conserved() {
		t.Fatalf("counts %+v", res.Run)
	}
}

// failingSource fails its task after a few batches.
type failingSource struct{ numSource }

func (s *failingSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	r, err := s.numSource.Open(ctx, env, t, pos)
	if err != nil {
		return nil, err
	}
	return &failingReader{Reader: r}, nil
}

type failingReader struct {
	connector.Reader
	n int
}

func (r *failingReader) Next(ctx context.Context) (*record.Batch, error) {
	r.n++
	if r.n == 4 {
		return nil, errors.New("disk read error")
	}
	return r.Reader.Next(ctx)
}

func TestSourceFailureReportsItsCauseAndCommitsNothingMore(t *testing.T) {
	src := &failingSource{numSource{tasks: map[string]int{"a": 1000}, batch: 10}}
	sink := newMemSink(connector.WriterInfo{Once: true})
	res, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err == nil || !strings.Contains(err.Error(), "disk read error") {
		t.Fatalf("err %v, want the source's error", err)
	}
	if sink.commits != 0 || res.Run.Status != state.StatusFailed {
		t.Fatalf("a failed run of a once sink committed %d times (status %s)", sink.commits, res.Run.Status)
	}
}

// flakySource loses its connection once in the middle of a task.
type flakySource struct {
	numSource
	mu     sync.Mutex
	failed bool
	opens  int
}

func (s *flakySource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	s.mu.Lock()
	s.opens++
	s.mu.Unlock()
	r, err := s.numSource.Open(ctx, env, t, pos)
	if err != nil {
		return nil, err
	}
	return &flakyReader{Reader: r, s: s}, nil
}

type flakyReader struct {
	connector.Reader
	s *flakySource
	n int
}

func (r *flakyReader) Next(ctx context.Context) (*record.Batch, error) {
	r.n++
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.n == 5 && !r.s.failed {
		r.s.failed = true
		return nil, connector.Transient(errors.New("connection reset by peer"))
	}
	return r.Reader.Next(ctx)
}

func TestTransientSourceErrorReopensFromTheLastPosition(t *testing.T) {
	tasks := map[string]int{"a": 3000}
	src := &flakySource{numSource: numSource{tasks: tasks, batch: 100}}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	res, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if src.opens != 2 || res.Run.Read != 3000 {
		t.Fatalf("opened %d times, read %d; want a reopen and every row once", src.opens, res.Run.Read)
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}
