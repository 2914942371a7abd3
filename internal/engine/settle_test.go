package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// settleSink's writer judges rows late, as a database does at the end of a
// statement that streams many batches: Write takes every row, and Settle
// reports the rows of memSink.refuse, by batch. Settle fails once with a
// transient error when failSettle is set, keeping what it found.
type settleSink struct {
	*memSink
	failSettle bool
	settles    int
}

func (s *settleSink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	return &settleWriter{memWriter: &memWriter{s: s.memSink}, ss: s}, nil
}

type settleWriter struct {
	*memWriter
	ss       *settleSink
	unjudged []*record.Batch
}

func (w *settleWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	if !slices.Contains(w.unjudged, b) { // not written again when retried
		w.unjudged = append(w.unjudged, b)
	}
	return b.Len(), nil
}

func (w *settleWriter) Settle(ctx context.Context) ([]connector.Refusal, error) {
	w.ss.settles++
	if w.ss.failSettle {
		w.ss.failSettle = false
		return nil, connector.Transient(errors.New("connection reset"))
	}
	var out []connector.Refusal
	for _, b := range w.unjudged {
		rf := connector.Refusal{Batch: b}
		keep := &record.Batch{Schema: b.Schema, Origin: b.Origin}
		for i, row := range b.Rows {
			if w.s.refuse[row[1].(int64)] {
				rf.Rows = append(rf.Rows, connector.RowError{Index: i, Err: fmt.Errorf("row %d violates a constraint", row[1])})
				continue
			}
			keep.Rows = append(keep.Rows, row)
		}
		if _, err := w.memWriter.Write(ctx, keep); err != nil {
			return nil, err
		}
		if len(rf.Rows) > 0 {
			out = append(out, rf)
		}
	}
	w.unjudged = nil
	return out, nil
}

// runSettled runs src into sink with commits held only by the writer's
// window (StageBatches), after edit changes the pipeline.
func runSettled(t *testing.T, src connector.Source, sink *settleSink, st state.Store, edit func(*config.Pipeline)) (*engine.Result, error) {
	t.Helper()
	p := pipeline(t, src, sink)
	p.Settings.CommitInterval, p.Settings.CommitBytes = time.Hour, 1<<30
	if edit != nil {
		edit(p)
	}
	return engine.Run(context.Background(), p, engine.Options{Store: st})
}

// Rows a writer refuses at Settle, after Write took them, are rejects of
// their own lines: they are dead letters, counted as rejected and not
// written, every other row lands once, and the checkpoints are the last
// batches' — also when a Settle fails once and is retried.
func TestRowsRefusedAtSettle(t *testing.T) {
	for _, failSettle := range []bool{false, true} {
		t.Run(fmt.Sprint("failSettle=", failSettle), func(t *testing.T) {
			tasks := map[string]int{"a": 3000, "b": 2000}
			bad := map[int]bool{5: true, 1999: true}
			src := &numSource{tasks: tasks, batch: 50, bad: bad}
			sink := &settleSink{memSink: newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8}), failSettle: failSettle}
			sink.refuse = map[int64]bool{7: true, 260: true, 2500: true}
			st := openStore(t)
			res, err := runSettled(t, src, sink, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sink.settles == 0 {
				t.Fatal("the writer was never settled")
			}
			// Task a refuses 7, 260 and 2500; task b 7 and 260; both reject 5
			// and 1999 at the source.
			if res.Run.Read != 5000 || res.Run.Rejected != 9 || res.Run.Written != 4991 || !res.Conserved() {
				t.Fatalf("read %d written %d rejected %d", res.Run.Read, res.Run.Written, res.Run.Rejected)
			}
			if res.RejectsByStep["sink"] != 5 || res.RejectsByStep["source"] != 4 {
				t.Errorf("rejects by step %v, want 5 of the sink and 4 of the source", res.RejectsByStep)
			}
			checkExactlyOnce(t, sink.memSink, tasks, func(n int64) bool { return sink.refuse[n] || bad[int(n)] })
			dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "test"})
			if err != nil {
				t.Fatal(err)
			}
			var locs []string
			for _, dl := range dls {
				locs = append(locs, dl.Loc)
				if dl.Step == "sink" && dl.Error != "row "+dl.Loc[2:]+" violates a constraint" {
					t.Errorf("dead letter at %s: error %q", dl.Loc, dl.Error)
				}
			}
			sort.Strings(locs)
			want := []string{"a:1999", "a:2500", "a:260", "a:5", "a:7", "b:1999", "b:260", "b:5", "b:7"}
			if fmt.Sprint(locs) != fmt.Sprint(want) {
				t.Fatalf("dead letters at %v, want %v", locs, want)
			}
			for task, n := range tasks {
				if cp := sink.cps[task]; !cp.Done || string(cp.Pos) != strconv.Itoa(n) {
					t.Fatalf("task %s: checkpoint %+v, want done at %d", task, cp, n)
				}
			}
		})
	}
}

// Rows refused at Settle count against the error budget before the commit:
// a run over max_rejects fails with no checkpoint past them.
func TestRowsRefusedAtSettleJudgedByTheBudget(t *testing.T) {
	src := &numSource{tasks: map[string]int{"a": 3000}, batch: 50}
	sink := &settleSink{memSink: newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8})}
	sink.refuse = map[int64]bool{}
	for n := int64(1000); n < 1010; n++ {
		sink.refuse[n] = true
	}
	_, err := runSettled(t, src, sink, openStore(t), func(p *config.Pipeline) { p.Errors.MaxRejects = 5 })
	var be *engine.BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("run: %v, want the budget exceeded", err)
	}
	if cp := sink.cps["a"]; len(cp.Pos) > 0 {
		if n, _ := strconv.Atoi(string(cp.Pos)); n > 1000 {
			t.Errorf("checkpoint at %d, past the refused rows", n)
		}
	}
	for _, n := range sink.rows["a"] {
		if n >= 1000 {
			t.Fatalf("row %d committed, after the refused rows", n)
		}
	}
}

// A writer that commits once, at the end of the run, is settled a commit
// window at a time all the same: the engine lets go of the batches judged,
// and the refused rows are dead letters.
func TestOnceWriterSettledByWindows(t *testing.T) {
	src := &numSource{tasks: map[string]int{"a": 3000}, batch: 50}
	sink := &settleSink{memSink: newMemSink(connector.WriterInfo{Transactional: true, Once: true})}
	sink.refuse = map[int64]bool{10: true, 2990: true}
	res, err := runSettled(t, src, sink, openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 60 batches: settled after each 32, and at the commit.
	if sink.settles != 2 || sink.commits != 1 {
		t.Errorf("%d settles and %d commits, want 2 and 1", sink.settles, sink.commits)
	}
	if res.Run.Written != 2998 || res.Run.Rejected != 2 || !res.Conserved() {
		t.Errorf("written %d rejected %d", res.Run.Written, res.Run.Rejected)
	}
	checkExactlyOnce(t, sink.memSink, map[string]int{"a": 3000}, func(n int64) bool { return sink.refuse[n] })
}
