package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
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
