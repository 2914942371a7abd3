package connectortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// SinkHarness tells the suite how to make a sink of one connector,
// configured one way, against a real target.
type SinkHarness struct {
	// New creates a fresh, empty target (a table in a new schema or
	// database, a new directory) for rows of Schema and returns it. Files go
	// under env.Dir. New registers the target's cleanup with t and may skip
	// t when the service is unreachable (failing instead when CI=true).
	New func(t testing.TB, env *connector.Env) *SinkTarget
}

// SinkTarget is one target made by SinkHarness.New.
type SinkTarget struct {
	// Sink returns a new sink configured to write the target. Each call
	// stands for a start of the process.
	Sink func(t testing.TB) connector.Sink
	// Stored reads, in the target's own way (SQL, the file's parser), the
	// rows a reader of the target sees now, as rows of Schema in any order.
	Stored func(t testing.TB) []record.Row
	// Conns counts the connections (or open files) that the connector holds
	// on the target; nil: not checked. See SourceTarget.Conns.
	Conns func(t testing.TB) int
	// Refuse, when not nil, turns a row of Schema into one the target
	// refuses for its own sake — a name longer than its column, a NULL in a
	// NOT NULL column — while every row of Rows is accepted. nil: the
	// target accepts any row (a file).
	Refuse func(record.Row) record.Row
	// Keyed sinks write by the key id: a row written again replaces the
	// stored one (mode upsert).
	Keyed bool
}

// RunSink runs the conformance tests of a sink:
//
//   - WriteCommit: written rows appear at Commit, with their values, and
//     not before when the writer is transactional or once; a transactional
//     writer's sink keeps its checkpoints (CheckpointLoader);
//   - Checkpoints: checkpoints round-trip through CheckpointLoader after a
//     restart (arbitrary bytes, Done, Fingerprint), per pipeline, updated
//     by later commits and never by an abandoned or failed one;
//   - Refused: a batch with rows the target refuses stages the others and
//     returns n short with a *connector.BatchError naming exactly those
//     rows; through the engine they become dead letters and the rest is
//     stored;
//   - Abandoned: Close without Commit shows nothing; a Write or Commit
//     with a cancelled context leaves nothing of its rows visible, and the
//     engine's retry of the same batch stores it once;
//   - Keyed: rows written again by key replace the stored ones;
//   - Guard: a transactional writer's guarded commit stores nothing when
//     the sink's checkpoint moved away from its base (another process
//     committed the task), and fails with connector.ErrCheckpointConflict;
//   - Engine: a run whose writes or commits fail midway, then a second run,
//     store every row exactly once (at least once for a sink that is
//     neither transactional, once nor keyed), the second run resuming
//     after what the first committed;
//
// and after each test that no goroutine and no connection is left.
func RunSink(t *testing.T, h SinkHarness) {
	s := &sinkSuite{h: h}
	t.Run("WarmUp", func(t *testing.T) {
		env := NewEnv(t)
		tg := s.newTarget(t, env)
		w := s.open(t, tg.Sink(t), env)
		s.write(t, w, Rows(3))
		s.commit(t, w, nil)
		w.Close()
	})
	t.Run("WriteCommit", s.testWriteCommit)
	t.Run("Checkpoints", s.testCheckpoints)
	t.Run("Refused", s.testRefused)
	t.Run("Abandoned", s.testAbandoned)
	t.Run("Keyed", s.testKeyed)
	t.Run("Guard", s.testGuard)
	t.Run("Engine", s.testEngine)
}

type sinkSuite struct {
	h SinkHarness
}

func (s *sinkSuite) newTarget(t testing.TB, env *connector.Env) *SinkTarget {
	t.Helper()
	tg := s.h.New(t, env)
	if tg == nil || tg.Sink == nil || tg.Stored == nil {
		t.Fatal("the harness returned no target, or one without Sink or Stored")
	}
	return tg
}

func (s *sinkSuite) setup(t *testing.T) (*connector.Env, *SinkTarget, *leaks) {
	t.Helper()
	env := NewEnv(t)
	tg := s.newTarget(t, env)
	return env, tg, startLeaks(t, tg.Conns)
}

func (s *sinkSuite) open(t testing.TB, sink connector.Sink, env *connector.Env) connector.Writer {
	t.Helper()
	w, err := sink.Open(context.Background(), env, Schema)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if w == nil {
		t.Fatal("Open returned no writer and no error")
	}
	return w
}

// batches cuts rows into batches of BatchRows, each with the position of
// its end.
func batches(rows []record.Row) []*record.Batch {
	var out []*record.Batch
	for lo := 0; lo < len(rows); lo += BatchRows {
		hi := min(lo+BatchRows, len(rows))
		out = append(out, newBatch(rows[lo:hi], hi))
	}
	return out
}

func newBatch(rows []record.Row, end int) *record.Batch {
	b := &record.Batch{Schema: Schema, Origin: "conformance", Read: len(rows), Pos: record.Position(strconv.Itoa(end))}
	for i, r := range rows {
		b.Rows = append(b.Rows, slices.Clone(r))
		b.Lines = append(b.Lines, int64(end-len(rows)+i+1))
	}
	return b
}

// write writes rows in batches and fails the test unless every row is
// staged.
func (s *sinkSuite) write(t testing.TB, w connector.Writer, rows []record.Row) {
	t.Helper()
	for _, b := range batches(rows) {
		s.writeBatch(t, context.Background(), w, b)
	}
}

func (s *sinkSuite) writeBatch(t testing.TB, ctx context.Context, w connector.Writer, b *record.Batch) {
	t.Helper()
	n, err := w.Write(ctx, b)
	if err != nil || n != b.Len() {
		t.Fatalf("Write of %d rows: n=%d, error %v", b.Len(), n, err)
	}
}

// commit settles the writer, as the engine does, and commits.
func (s *sinkSuite) commit(t testing.TB, w connector.Writer, cps []connector.Checkpoint) {
	t.Helper()
	if st, ok := w.(connector.Settler); ok {
		if refused, err := st.Settle(context.Background()); err != nil || len(refused) > 0 {
			t.Fatalf("Settle: %v, refused %v", err, refused)
		}
	}
	if err := w.Commit(context.Background(), cps); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func cp(task, pos string) connector.Checkpoint {
	return connector.Checkpoint{Task: task, Pos: record.Position(pos)}
}

func (s *sinkSuite) testWriteCommit(t *testing.T) {
	env, tg, lk := s.setup(t)
	ctx := context.Background()
	rows := Rows(300)
	sink := tg.Sink(t)
	w := s.open(t, sink, env)
	defer w.Close()
	info := w.Info()
	if _, ok := sink.(connector.CheckpointLoader); info.Transactional && !ok {
		t.Errorf("the writer is transactional but its sink is no connector.CheckpointLoader: the checkpoints stored with the rows can never be read back")
	}
	hidden := info.Transactional || info.Once
	var committed []record.Row
	for i, b := range batches(rows) {
		s.writeBatch(t, ctx, w, b)
		if hidden {
			checkRows(t, fmt.Sprintf("after Write of batch %d, before its Commit", i+1), tg.Stored(t), committed, exactlyOnce)
		}
		if !info.Once {
			s.commit(t, w, []connector.Checkpoint{cp("t", string(b.Pos))})
			committed = append(committed, b.Rows...)
			checkRows(t, fmt.Sprintf("after Commit of batch %d", i+1), tg.Stored(t), committed, exactlyOnce)
		}
	}
	if info.Once {
		s.commit(t, w, []connector.Checkpoint{cp("t", strconv.Itoa(len(rows)))})
	}
	checkRows(t, "after the last Commit", tg.Stored(t), rows, exactlyOnce)
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	checkRows(t, "after Close", tg.Stored(t), rows, exactlyOnce)
	lk.check(t)
}

// load reads the checkpoints of env's pipeline through a new sink.
func (s *sinkSuite) load(t testing.TB, tg *SinkTarget, env *connector.Env) map[string]connector.Checkpoint {
	t.Helper()
	cl, ok := tg.Sink(t).(connector.CheckpointLoader)
	if !ok {
		t.Fatal("the sink is no longer a CheckpointLoader")
	}
	cps, err := cl.LoadCheckpoints(context.Background(), env)
	if err != nil {
		t.Fatalf("LoadCheckpoints: %v", err)
	}
	return cps
}

// checkCheckpoints compares checkpoints; an empty and a nil position are
// the same (both mean the start).
func checkCheckpoints(t testing.TB, what string, got map[string]connector.Checkpoint, want []connector.Checkpoint) {
	t.Helper()
	var problems []string
	for _, w := range want {
		g, ok := got[w.Task]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("task %q: none, want %s", w.Task, showCheckpoint(w)))
		case g.Task != w.Task || !bytes.Equal(g.Pos, w.Pos) || g.Done != w.Done || g.Fingerprint != w.Fingerprint:
			problems = append(problems, fmt.Sprintf("task %q: %s, want %s", w.Task, showCheckpoint(g), showCheckpoint(w)))
		}
	}
	for k, g := range got {
		if !slices.ContainsFunc(want, func(w connector.Checkpoint) bool { return w.Task == k }) {
			problems = append(problems, fmt.Sprintf("unexpected checkpoint %s under %q", showCheckpoint(g), k))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s: %s", what, strings.Join(problems, "; "))
	}
}

func showCheckpoint(c connector.Checkpoint) string {
	return fmt.Sprintf("{task %q, pos %q, done %v, fingerprint %q}", c.Task, c.Pos, c.Done, c.Fingerprint)
}

func (s *sinkSuite) testCheckpoints(t *testing.T) {
	env, tg, lk := s.setup(t)
	if _, ok := tg.Sink(t).(connector.CheckpointLoader); !ok {
		t.Skip("the sink keeps no checkpoints (the engine keeps them in the state store)")
	}
	ctx := context.Background()
	checkCheckpoints(t, "a target never written", s.load(t, tg, env), nil)

	rows := Rows(3 * BatchRows)
	bs := batches(rows)
	a := cp("a", "\x00\x01\"'\\\n\xff{}")
	b := connector.Checkpoint{Task: "b ü/#1", Done: true, Fingerprint: "size=10;mtime=1714564800"}
	w := s.open(t, tg.Sink(t), env)
	defer w.Close()
	info := w.Info()
	s.writeBatch(t, ctx, w, bs[0])
	s.commit(t, w, []connector.Checkpoint{a, b})
	want := []connector.Checkpoint{a, b}
	stored := slices.Clone(bs[0].Rows)
	if !info.Once {
		// Later commits of the same writer move a checkpoint and keep the
		// others.
		s.writeBatch(t, ctx, w, bs[1])
		a2 := cp("a", "2")
		s.commit(t, w, []connector.Checkpoint{a2})
		want = []connector.Checkpoint{a2, b}
		stored = append(stored, bs[1].Rows...)
		checkCheckpoints(t, "after a second commit", s.load(t, tg, env), want)

		// A commit of checkpoints alone, as the engine makes when a task
		// ends without a batch since the last commit.
		c := connector.Checkpoint{Task: "c", Pos: record.Position("end"), Done: true, Fingerprint: "f2"}
		s.commit(t, w, []connector.Checkpoint{c})
		want = append(want, c)
		checkCheckpoints(t, "after a commit of checkpoints alone", s.load(t, tg, env), want)
		checkRows(t, "after a commit of checkpoints alone", tg.Stored(t), stored, exactlyOnce)

		// A commit cut short by its context: rows and checkpoint move
		// together or not at all.
		s.writeBatch(t, ctx, w, bs[2])
		a3 := cp("a", "3")
		if err := w.Commit(cancelled(ctx), []connector.Checkpoint{a3}); err == nil {
			t.Log("the commit succeeded despite its cancelled context")
			want = []connector.Checkpoint{a3, b, c}
			stored = append(stored, bs[2].Rows...)
		}
		checkCheckpoints(t, "after a commit with a cancelled context", s.load(t, tg, env), want)
		checkRows(t, "after a commit with a cancelled context", tg.Stored(t), stored, exactlyOnce)
	}
	w.Close()
	checkCheckpoints(t, "after a restart", s.load(t, tg, env), want)

	other := *env
	other.Pipeline = "conformance-other"
	checkCheckpoints(t, "another pipeline", s.load(t, tg, &other), nil)

	// A later run that writes and closes without committing changes
	// nothing.
	w2 := s.open(t, tg.Sink(t), env)
	s.writeBatch(t, ctx, w2, bs[2])
	w2.Close()
	checkCheckpoints(t, "after a run closed without Commit", s.load(t, tg, env), want)
	if !info.Once {
		checkRows(t, "after a run closed without Commit", tg.Stored(t), stored, exactlyOnce)
	}
	lk.check(t)
}

func (s *sinkSuite) testRefused(t *testing.T) {
	t.Run("Write", func(t *testing.T) {
		env, tg, lk := s.setup(t)
		if tg.Refuse == nil {
			t.Skip("the target refuses no row")
		}
		rows := Rows(20)
		bad := []int{3, 11}
		b := newBatch(rows, len(rows))
		var good []record.Row
		for i := range b.Rows {
			if slices.Contains(bad, i) {
				b.Rows[i] = tg.Refuse(b.Rows[i])
			} else {
				good = append(good, rows[i])
			}
		}
		w := s.open(t, tg.Sink(t), env)
		defer w.Close()
		checkRefused(t, "a batch with 2 refused rows", w, b, bad)

		// A batch of refused rows only.
		all := newBatch([]record.Row{tg.Refuse(Row(21)), tg.Refuse(Row(22))}, 22)
		checkRefused(t, "a batch of refused rows only", w, all, []int{0, 1})

		s.commit(t, w, []connector.Checkpoint{cp("t", "22")})
		checkRows(t, "after Commit, the rows not refused", tg.Stored(t), good, exactlyOnce)
		w.Close()
		lk.check(t)
	})

	t.Run("Engine", func(t *testing.T) {
		env, tg, lk := s.setup(t)
		if tg.Refuse == nil {
			t.Skip("the target refuses no row")
		}
		ctx := context.Background()
		rows := Rows(300)
		badIDs := []int64{7, 150, 300}
		input := make([]record.Row, len(rows))
		var good []record.Row
		for i, r := range rows {
			input[i] = r
			if slices.Contains(badIDs, rowID(r)) {
				input[i] = tg.Refuse(slices.Clone(r))
			} else {
				good = append(good, r)
			}
		}
		st := openStore(t)
		defer st.Close()
		p := pipeline(env, newRowsSource(input, 2, BatchRows), tg.Sink(t))
		res, err := engine.Run(ctx, p, runOptions(env, st, "run-refused"))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if res.Run.Rejected != int64(len(badIDs)) || res.Run.Written != int64(len(good)) || !res.Conserved() {
			t.Errorf("run: read %d, written %d, rejected %d; want %d written and %d rejected", res.Run.Read, res.Run.Written, res.Run.Rejected, len(good), len(badIDs))
		}
		dls, err := st.DeadLetters(ctx, state.DLQFilter{Pipeline: p.Name, Step: "sink"})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != len(badIDs) {
			t.Errorf("%d dead letters from the sink, want %d", len(dls), len(badIDs))
		}
		for _, id := range badIDs {
			key := fmt.Sprintf(`"id":%d,`, id)
			if !slices.ContainsFunc(dls, func(d state.DeadLetter) bool { return bytes.Contains(d.Record, []byte(key)) && d.Error != "" }) {
				t.Errorf("no dead letter with a reason for the refused row id %d", id)
			}
		}
		checkRows(t, "the rows not refused", tg.Stored(t), good, exactlyOnce)
		st.Close()
		lk.check(t)
	})
}

// checkRefused checks the answer of a Write of n rows of which the rows at
// bad are refused.
// checkRefused writes b, which holds the rows bad the target refuses, and
// checks that they are refused by Write, or by Settle when the writer is a
// connector.Settler, and the others written.
func checkRefused(t testing.TB, what string, w connector.Writer, b *record.Batch, bad []int) {
	t.Helper()
	ctx := context.Background()
	n, err := w.Write(ctx, b)
	var got []int
	var be *connector.BatchError
	switch {
	case errors.As(err, &be):
		for _, re := range be.Rows {
			if re.Err == nil || re.Err.Error() == "" {
				t.Errorf("%s: refused row %d without a reason", what, re.Index)
			}
			got = append(got, re.Index)
		}
	case err != nil:
		t.Fatalf("%s: Write: %v", what, err)
	}
	if st, ok := w.(connector.Settler); ok {
		refused, err := st.Settle(ctx)
		if err != nil {
			t.Fatalf("%s: Settle: %v", what, err)
		}
		for _, rf := range refused {
			if rf.Batch != b {
				t.Errorf("%s: Settle refused rows %v of another batch", what, rf.Rows)
				continue
			}
			for _, re := range rf.Rows {
				if re.Err == nil || re.Err.Error() == "" {
					t.Errorf("%s: refused row %d without a reason", what, re.Index)
				}
				got = append(got, re.Index)
				n--
			}
		}
	} else if be == nil {
		t.Fatalf("%s: Write returned n=%d, error %v; want a *connector.BatchError naming rows %v", what, n, err, bad)
	}
	if want := b.Len() - len(bad); n != want {
		t.Errorf("%s: n=%d rows written, want %d (the rows staged)", what, n, want)
	}
	slices.Sort(got)
	if !slices.Equal(got, bad) {
		t.Errorf("%s: refused rows %v, want %v", what, got, bad)
	}
}

func (s *sinkSuite) testAbandoned(t *testing.T) {
	t.Run("CloseWithoutCommit", func(t *testing.T) {
		env, tg, lk := s.setup(t)
		rows := Rows(200)
		w := s.open(t, tg.Sink(t), env)
		info := w.Info()
		if !info.Transactional && !info.Once {
			w.Close()
			t.Skip("an at-least-once writer may show rows before Commit")
		}
		s.write(t, w, rows)
		if err := w.Close(); err != nil {
			t.Errorf("Close without Commit: %v", err)
		}
		checkRows(t, "after Close without Commit", tg.Stored(t), nil, exactlyOnce)
		if !info.Once {
			w := s.open(t, tg.Sink(t), env)
			s.write(t, w, rows[:100])
			s.commit(t, w, []connector.Checkpoint{cp("t", "100")})
			s.write(t, w, rows[100:])
			w.Close()
			checkRows(t, "after a Commit, more writes and Close", tg.Stored(t), rows[:100], exactlyOnce)
		}
		lk.check(t)
	})

	t.Run("CancelledWrite", func(t *testing.T) {
		env, tg, lk := s.setup(t)
		ctx := context.Background()
		rows := Rows(2 * BatchRows)
		bs := batches(rows)
		w := s.open(t, tg.Sink(t), env)
		defer w.Close()
		info := w.Info()
		var committed []record.Row
		if !info.Once {
			s.writeBatch(t, ctx, w, bs[0])
			s.commit(t, w, []connector.Checkpoint{cp("t", string(bs[0].Pos))})
			committed = bs[0].Rows
		}
		b := bs[1]
		n, err := w.Write(cancelled(ctx), b)
		if err == nil {
			if n != b.Len() {
				t.Fatalf("Write returned n=%d < %d without an error", n, b.Len())
			}
			w.Close()
			t.Skip("the writer staged a batch despite its cancelled context")
		}
		var be *connector.BatchError
		if errors.As(err, &be) {
			t.Errorf("a Write with a cancelled context returned a BatchError (%v): a cancellation is not the rows' fault", err)
		}
		if n >= b.Len() {
			t.Errorf("Write failed (%v) but returned n=%d", err, n)
		}
		if info.Transactional || info.Once {
			checkRows(t, "after a Write with a cancelled context", tg.Stored(t), committed, exactlyOnce)
		}
		if info.Once {
			// The engine never retries a once writer: the run fails.
			w.Close()
			checkRows(t, "after Close", tg.Stored(t), nil, exactlyOnce)
			lk.check(t)
			return
		}
		// The engine retries the same batch, then commits it.
		s.writeBatch(t, ctx, w, b)
		s.commit(t, w, []connector.Checkpoint{cp("t", string(b.Pos))})
		checkRows(t, "after the retried Write and its Commit", tg.Stored(t), rows, s.retryMatch(info, tg))
		if _, ok := tg.Sink(t).(connector.CheckpointLoader); ok {
			checkCheckpoints(t, "after the retried Write and its Commit", s.load(t, tg, env), []connector.Checkpoint{cp("t", string(b.Pos))})
		}
		w.Close()
		lk.check(t)
	})

	t.Run("CancelledCommit", func(t *testing.T) {
		env, tg, lk := s.setup(t)
		ctx := context.Background()
		rows := Rows(2 * BatchRows)
		bs := batches(rows)
		w := s.open(t, tg.Sink(t), env)
		defer w.Close()
		info := w.Info()
		var committed []record.Row
		if !info.Once {
			s.writeBatch(t, ctx, w, bs[0])
			s.commit(t, w, []connector.Checkpoint{cp("t", string(bs[0].Pos))})
			committed = bs[0].Rows
		}
		b := bs[1]
		s.writeBatch(t, ctx, w, b)
		if err := w.Commit(cancelled(ctx), []connector.Checkpoint{cp("t", string(b.Pos))}); err == nil {
			t.Log("the commit succeeded despite its cancelled context")
			checkRows(t, "after a Commit that succeeded despite its cancelled context", tg.Stored(t), append(slices.Clone(committed), b.Rows...), exactlyOnce)
			w.Close()
			lk.check(t)
			return
		}
		if info.Transactional || info.Once {
			checkRows(t, "after a Commit with a cancelled context", tg.Stored(t), committed, exactlyOnce)
		}
		if info.Once {
			w.Close()
			checkRows(t, "after Close", tg.Stored(t), nil, exactlyOnce)
			lk.check(t)
			return
		}
		// The engine redoes write and commit of the same batch as one unit.
		s.writeBatch(t, ctx, w, b)
		s.commit(t, w, []connector.Checkpoint{cp("t", string(b.Pos))})
		checkRows(t, "after the batch of a failed Commit was written and committed again", tg.Stored(t), rows, s.retryMatch(info, tg))
		if _, ok := tg.Sink(t).(connector.CheckpointLoader); ok {
			checkCheckpoints(t, "after the retried Commit", s.load(t, tg, env), []connector.Checkpoint{cp("t", string(b.Pos))})
		}
		w.Close()
		lk.check(t)
	})
}

// retryMatch is what a batch written again after a failure may leave: once
// for a transactional or keyed sink, at least once otherwise.
func (s *sinkSuite) retryMatch(info connector.WriterInfo, tg *SinkTarget) match {
	if info.Transactional || info.Once || tg.Keyed {
		return exactlyOnce
	}
	return atLeastOnce
}

func (s *sinkSuite) testKeyed(t *testing.T) {
	env, tg, lk := s.setup(t)
	if !tg.Keyed {
		t.Skip("the sink does not write by key")
	}
	rows := Rows(100)
	w := s.open(t, tg.Sink(t), env)
	defer w.Close()
	s.write(t, w, rows)
	s.commit(t, w, []connector.Checkpoint{cp("t", "100")})
	if w.Info().Once {
		w.Close()
		w = s.open(t, tg.Sink(t), env)
		defer w.Close()
	}
	// Rows 51 to 150: half of them known, with new values.
	again := RowRange(51, 100)
	for _, r := range again {
		r[ColName] = fmt.Sprintf("again %d", rowID(r))
		r[ColAmount] = record.MustDec("0.01")
		r[ColNote] = nil
	}
	s.write(t, w, again)
	s.commit(t, w, []connector.Checkpoint{cp("t", "150")})
	checkRows(t, "after writing rows 51 to 150 again with new values", tg.Stored(t), append(rows[:50:50], again...), exactlyOnce)
	w.Close()
	lk.check(t)
}

func (s *sinkSuite) testGuard(t *testing.T) {
	env, tg, lk := s.setup(t)
	ctx := context.Background()
	probe := s.open(t, tg.Sink(t), env)
	info := probe.Info()
	probe.Close()
	if !info.Transactional {
		t.Skip("the writer keeps no checkpoints with its rows")
	}
	rows := Rows(4 * BatchRows)
	bs := batches(rows)
	guard := func(pos string, base *connector.Checkpoint) []connector.Checkpoint {
		return []connector.Checkpoint{{Task: "t", Pos: record.Position(pos), Guard: true, Base: base}}
	}
	stale := func(w connector.Writer, b *record.Batch, cps []connector.Checkpoint, what string) {
		t.Helper()
		s.writeBatch(t, ctx, w, b)
		if err := w.Commit(ctx, cps); !errors.Is(err, connector.ErrCheckpointConflict) {
			t.Errorf("%s: Commit returned %v, want an error wrapping connector.ErrCheckpointConflict", what, err)
		}
	}
	first := &connector.Checkpoint{Task: "t", Pos: record.Position("1")}
	if info.Once {
		// Runs one after the other, each committing once: the second
		// started from no checkpoint, but the first committed one meanwhile.
		a := s.open(t, tg.Sink(t), env)
		s.writeBatch(t, ctx, a, bs[0])
		if err := a.Commit(ctx, guard("1", nil)); err != nil {
			t.Fatalf("a first guarded commit: %v", err)
		}
		a.Close()
		b := s.open(t, tg.Sink(t), env)
		stale(b, bs[1], guard("1", nil), "a run started from no checkpoint, after another committed one")
		b.Close()
		checkRows(t, "after a stale run's commit", tg.Stored(t), bs[0].Rows, exactlyOnce)
		checkCheckpoints(t, "after a stale run's commit", s.load(t, tg, env), []connector.Checkpoint{*first})
		c := s.open(t, tg.Sink(t), env)
		s.writeBatch(t, ctx, c, bs[2])
		if err := c.Commit(ctx, guard("3", first)); err != nil {
			t.Fatalf("a guarded commit over the stored checkpoint: %v", err)
		}
		c.Close()
		checkRows(t, "after a run over the stored checkpoint", tg.Stored(t), bs[2].Rows, exactlyOnce)
		lk.check(t)
		return
	}
	// Two processes writing the task at once.
	a, b := s.open(t, tg.Sink(t), env), s.open(t, tg.Sink(t), env)
	defer a.Close()
	defer b.Close()
	s.writeBatch(t, ctx, a, bs[0])
	if err := a.Commit(ctx, guard("1", nil)); err != nil {
		t.Fatalf("a first guarded commit: %v", err)
	}
	stale(b, bs[1], guard("1", nil), "a process started from no checkpoint, after another committed one")
	s.writeBatch(t, ctx, a, bs[2])
	if err := a.Commit(ctx, guard("2", first)); err != nil {
		t.Fatalf("a guarded commit over the process's own checkpoint: %v", err)
	}
	stale(b, bs[3], guard("2", first), "a process whose base the other moved past")
	want := append(slices.Clone(bs[0].Rows), bs[2].Rows...)
	checkRows(t, "after the stale commits", tg.Stored(t), want, exactlyOnce)
	checkCheckpoints(t, "after the stale commits", s.load(t, tg, env), []connector.Checkpoint{cp("t", "2")})
	a.Close()
	b.Close()
	lk.check(t)
}

func (s *sinkSuite) testEngine(t *testing.T) {
	for _, failOn := range []string{"write", "commit"} {
		t.Run("FailsAt"+strings.ToUpper(failOn[:1])+failOn[1:], func(t *testing.T) {
			env, tg, lk := s.setup(t)
			ctx := context.Background()
			rows := Rows(500)
			st := openStore(t)
			defer st.Close()
			fault := wrapFault(tg.Sink(t), failOn, 3)
			p := pipeline(env, newRowsSource(rows, 2, BatchRows), fault)
			if _, err := engine.Run(ctx, p, runOptions(env, st, "run-1")); !errors.Is(err, errInjected) {
				t.Fatalf("first run: error %v, want the injected failure", err)
			}
			info := faultOf(fault).info
			first := tg.Stored(t)
			switch {
			case info.Once:
				if len(first) > 0 {
					checkRows(t, "a failed run of a once writer shows all its rows or none", first, rows, exactlyOnce)
				}
			default:
				if d := diffRows(first, pick(rows, first), exactlyOnce); d != "" {
					t.Errorf("after the failed run: %s", d)
				}
			}

			p.Sink.Sink = tg.Sink(t)
			res, err := engine.Run(ctx, p, runOptions(env, st, "run-2"))
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if info.Transactional && !info.Once && res.Run.Read != int64(len(rows)-len(first)) {
				t.Errorf("the second run read %d rows; the first committed %d of %d, so the checkpoints stored with them leave %d",
					res.Run.Read, len(first), len(rows), len(rows)-len(first))
			}
			checkRows(t, "after the second run", tg.Stored(t), rows, s.retryMatch(info, tg))
			st.Close()
			lk.check(t)
		})
	}
}

func faultOf(s connector.Sink) *faultSink {
	if f, ok := s.(faultLoaderSink); ok {
		return f.faultSink
	}
	return s.(*faultSink)
}

// pick returns the rows of all whose ids appear in some.
func pick(all, some []record.Row) []record.Row {
	ids := map[int64]bool{}
	for _, r := range some {
		ids[rowID(r)] = true
	}
	var out []record.Row
	for _, r := range all {
		if ids[rowID(r)] {
			out = append(out, r)
		}
	}
	return out
}
