package statetest

import (
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/state"
)

// testPruneRuns: old runs and old empty runs go; each pipeline keeps its
// newest run and newest success; running runs stay.
func testPruneRuns(t *testing.T, s state.Store) {
	ctx := t.Context()
	add := func(id, pipeline, status string, minute int, read int64) {
		r := state.Run{ID: id, Pipeline: pipeline, Start: at(minute), Read: read}
		if err := s.StartRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if status != state.StatusRunning {
			r.Status, r.End = status, at(minute+1)
			if err := s.FinishRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("a1", "a", state.StatusSucceeded, 0, 5)  // old: goes
	add("a2", "a", state.StatusSucceeded, 10, 5) // old: goes (a5 is a's newest success)
	add("a3", "a", state.StatusFailed, 20, 5)    // old: goes
	add("a4", "a", state.StatusFailed, 60, 5)    // recent: stays
	add("a5", "a", state.StatusSucceeded, 50, 0) // empty and older than emptyBefore, but a's newest success: stays
	add("b1", "b", state.StatusRunning, 0, 0)    // running: stays
	add("b2", "b", state.StatusSucceeded, 5, 0)  // old and empty, but b's newest run and success: stays
	add("c1", "c", state.StatusFailed, 1, 1)     // old, but c's only run: stays
	n, err := s.PruneRuns(ctx, at(30), at(55))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, state.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	want := []string{"a4", "a5", "b1", "b2", "c1"}
	if diff := cmp.Diff(want, ids); diff != "" || n != 3 {
		t.Errorf("after pruning (%d deleted) (-want +got):\n%s", n, diff)
	}
}

// testUpdateRun: a running run's counts move; a finished one's do not.
func testUpdateRun(t *testing.T, s state.Store) {
	ctx := t.Context()
	r := state.Run{ID: "u1", Pipeline: "p", Start: at(0)}
	if err := s.StartRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	r.Read, r.Written, r.Rejected, r.Filtered, r.CursorAfter = 10, 7, 2, 1, `{"t":"AQ=="}`
	if err := s.UpdateRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(ctx, "u1")
	if err != nil || got.Read != 10 || got.Written != 7 || got.Rejected != 2 || got.Filtered != 1 || got.CursorAfter != r.CursorAfter || got.Status != state.StatusRunning {
		t.Fatalf("after UpdateRun: %+v %v", got, err)
	}
	r.Status, r.End, r.Read, r.Written = state.StatusSucceeded, at(1), 20, 17
	if err := s.FinishRun(ctx, &r); err != nil {
		t.Fatal(err)
	}
	late := r
	late.Read, late.Written = 11, 8
	if err := s.UpdateRun(ctx, &late); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Run(ctx, "u1"); got.Read != 20 || got.Status != state.StatusSucceeded {
		t.Errorf("a late progress update changed a finished run: %+v", got)
	}
	if err := s.UpdateRun(ctx, &state.Run{ID: "nope"}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("UpdateRun of an unknown run: %v, want ErrNotFound", err)
	}
}
