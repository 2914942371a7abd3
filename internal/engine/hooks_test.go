package engine_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
)

// A backfill reads everything again and leaves the live checkpoints where
// they were, in the state store and in a transactional sink.
func TestBackfillMovesNoCheckpoint(t *testing.T) {
	for _, info := range []connector.WriterInfo{{Transactional: true}, {}} {
		src := &numSource{tasks: map[string]int{"a": 50}, batch: 10}
		sink := newMemSink(info)
		p := pipeline(t, src, sink)
		st := openStore(t)
		if _, err := engine.Run(t.Context(), p, engine.Options{Store: st}); err != nil {
			t.Fatal(err)
		}
		before, err := st.LoadCheckpoints(t.Context(), p.Name)
		if err != nil {
			t.Fatal(err)
		}
		sinkBefore := len(sink.cps)
		res, err := engine.Run(t.Context(), p, engine.Options{Store: st, Backfill: true, Trigger: "backfill"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Run.Read != 50 || res.Run.Written != 50 {
			t.Errorf("transactional=%v: backfill read %d wrote %d, want 50 and 50", info.Transactional, res.Run.Read, res.Run.Written)
		}
		after, err := st.LoadCheckpoints(t.Context(), p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 || len(after) != 1 || string(before["a"].Pos) != string(after["a"].Pos) || !after["a"].Done {
			t.Errorf("transactional=%v: checkpoints moved: before %v after %v", info.Transactional, before, after)
		}
		if len(sink.cps) != sinkBefore {
			t.Errorf("the sink's checkpoints changed in a backfill")
		}
		if n := len(sink.rows["a"]); n != 100 {
			t.Errorf("sink holds %d rows, want 100 (50 live, 50 backfilled)", n)
		}
	}
}

// A fence that refuses stops the run before that commit; what was committed
// before stays, nothing after it.
func TestFenceRefusesCommit(t *testing.T) {
	src := &numSource{tasks: map[string]int{"a": 5000}, batch: 100}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	p := pipeline(t, src, sink)
	var commits atomic.Int32
	lost := errors.New("lease held by another process")
	var observed atomic.Int32
	_, err := engine.Run(t.Context(), p, engine.Options{Store: openStore(t),
		Fence: func(ctx context.Context) error {
			if commits.Add(1) > 2 {
				return lost
			}
			return nil
		},
		Observe: func(op string, d time.Duration) { observed.Add(1) },
	})
	var fe *engine.FenceError
	if !errors.As(err, &fe) || !errors.Is(err, lost) {
		t.Fatalf("Run: %v, want a FenceError wrapping the lease error", err)
	}
	if sink.commits != 2 {
		t.Errorf("%d commits reached the sink, want 2 (the fence refused the third)", sink.commits)
	}
	if observed.Load() == 0 {
		t.Error("Observe was never called")
	}
}

// panicStep panics on the batch holding row 120.
type panicStep struct{}

func (panicStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	return in, nil
}
func (panicStep) Process(ctx context.Context, b *record.Batch) error {
	for _, row := range b.Rows {
		if row[1].(int64) == 120 {
			panic("step bug")
		}
	}
	return nil
}

// A panic in a step fails the run with the panic's value; the process
// lives on, nothing past the bad batch is committed, and no goroutine is
// left behind.
func TestPanicInAStepFailsTheRunOnly(t *testing.T) {
	st := openStore(t)
	before := runtime.NumGoroutine()
	src := &numSource{tasks: map[string]int{"a": 1000, "b": 1000}, batch: 50}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	_, err := engine.Run(t.Context(), pipeline(t, src, sink, panicStep{}), engine.Options{Store: st})
	if err == nil || !strings.Contains(err.Error(), "internal error in a step") || !strings.Contains(err.Error(), "step bug") {
		t.Fatalf("Run: %v, want the step's panic as the error", err)
	}
	for _, rows := range sink.rows {
		for _, n := range rows {
			if n >= 100 && n < 150 {
				t.Fatalf("row %d of the panicking batch was committed", n)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the run, %d before", n, before)
	}
}

// A run over its reject rate is judged before its checkpoint moves, also
// when it is shorter than the error budget's sample: nothing it read is
// committed, so the next run (a fixed version) reads the same data.
func TestShortRunOverBudgetCommitsNothing(t *testing.T) {
	for _, info := range []connector.WriterInfo{{Transactional: true}, {}} {
		bad := map[int]bool{}
		for i := 0; i < 300; i += 2 {
			bad[i] = true // half the rows
		}
		src := &numSource{tasks: map[string]int{"a": 300, "b": 300}, batch: 20, bad: bad}
		sink := newMemSink(info)
		p := pipeline(t, src, sink)
		p.Errors = config.ErrorPolicy{MaxRejectRate: 0.1, MaxRejects: -1, MinSample: 1000}
		st := openStore(t)
		_, err := engine.Run(t.Context(), p, engine.Options{Store: st})
		var be *engine.BudgetError
		if !errors.As(err, &be) {
			t.Fatalf("Run: %v, want a budget error", err)
		}
		if sink.commits != 0 || len(sink.rows) != 0 {
			t.Errorf("transactional=%v: %d commits, rows %v: want nothing committed", info.Transactional, sink.commits, len(sink.rows))
		}
		if cps, _ := st.LoadCheckpoints(t.Context(), p.Name); len(cps) != 0 || len(sink.cps) != 0 {
			t.Errorf("transactional=%v: checkpoints moved: %v %v", info.Transactional, cps, sink.cps)
		}
		// The fixed source: everything loads, each row once.
		src.bad = nil
		res, err := engine.Run(t.Context(), p, engine.Options{Store: st})
		if err != nil || res.Run.Written != 600 {
			t.Fatalf("rerun: %v, written %d, want 600", err, res.Run.Written)
		}
		if info.Transactional {
			checkExactlyOnce(t, sink, src.tasks, func(int64) bool { return false })
		}
	}
}

// Each step's records in, out and filtered are counted over the run.
func TestStepCounts(t *testing.T) {
	src := &numSource{tasks: map[string]int{"a": 100, "b": 50}, batch: 7}
	res, err := engine.Run(t.Context(), pipeline(t, src, newMemSink(connector.WriterInfo{Transactional: true}), evenFilter{}), engine.Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 1 {
		t.Fatalf("steps %+v", res.Steps)
	}
	got := res.Steps[0]
	if got.In != 150 || got.Out != 75 || got.Filtered != 75 {
		t.Errorf("step counts %+v, want in 150, out 75, filtered 75", got)
	}
}
