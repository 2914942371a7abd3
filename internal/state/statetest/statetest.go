package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
)

// Run runs the acceptance suite against stores made by open. open is called
// once per subtest and must return a new, empty store; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) state.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"CheckpointRoundTrip", testCheckpointRoundTrip},
		{"CheckpointUpsert", testCheckpointUpsert},
		{"CheckpointIsolationAndReset", testCheckpointIsolationAndReset},
		{"RunLifecycle", testRunLifecycle},
		{"RunErrors", testRunErrors},
		{"RunsFilter", testRunsFilter},
		{"DeadLetterAdd", testDeadLetterAdd},
		{"DeadLetterFilter", testDeadLetterFilter},
		{"DeadLetterReAdd", testDeadLetterReAdd},
		{"DeadLetterDelete", testDeadLetterDelete},
		{"Versions", testVersions},
		{"PruneRuns", testPruneRuns},
		{"UpdateRun", testUpdateRun},
		{"TimesOutOfRange", testTimesOutOfRange},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelledContext", testCancelledContext},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			if tt.name == "Close" {
				closed = true
			}
			tt.fn(t, s)
		})
	}
}

// at returns a fixed time to the microsecond, the precision stores keep.
func at(minute int) time.Time {
	return time.Date(2024, 5, 1, 12, minute, 7, 123456000, time.UTC)
}

func checkUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if !tm.IsZero() && tm.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, tm.Location())
	}
}

func testCheckpointRoundTrip(t *testing.T, s state.Store) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 16<<10)
	cps := []connector.Checkpoint{
		{Task: "nil-pos"},
		{Task: "empty-pos", Pos: []byte{}},
		{Task: "zero-bytes", Pos: []byte{0, 0, 'a', 0, 0}},
		{Task: "invalid-utf8", Pos: []byte{0xff, 0xfe, 0x80, 0xc3}},
		{Task: "big", Pos: big},
		{Task: "done", Pos: []byte("offset=42"), Done: true, Fingerprint: "size=10,mtime=1714560000"},
		{Task: "data/orders/2024-05-01 ümlaut.csv", Pos: []byte("1")},
	}
	if err := s.SaveCheckpoints(ctx, "p", cps); err != nil {
		t.Fatalf("SaveCheckpoints: %v", err)
	}
	got, err := s.LoadCheckpoints(ctx, "p")
	if err != nil {
		t.Fatalf("LoadCheckpoints: %v", err)
	}
	want := make(map[string]connector.Checkpoint)
	for _, cp := range cps {
		want[cp.Task] = cp
	}
	// No EquateEmpty: a nil position must stay nil and an empty one empty.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadCheckpoints (-want +got):\n%s", diff)
	}
	if got["nil-pos"].Pos != nil {
		t.Errorf("nil position came back as %#v", got["nil-pos"].Pos)
	}
	if p := got["empty-pos"].Pos; p == nil || len(p) != 0 {
		t.Errorf("empty position came back as %#v", p)
	}
	// Saving nothing is a no-op.
	if err := s.SaveCheckpoints(ctx, "p", nil); err != nil {
		t.Errorf("SaveCheckpoints(nil): %v", err)
	}
}

func testCheckpointUpsert(t *testing.T, s state.Store) {
	ctx := context.Background()
	steps := []struct {
		name string
		save []connector.Checkpoint
		want map[string]connector.Checkpoint
	}{
		{
			name: "first save",
			save: []connector.Checkpoint{{Task: "a", Pos: []byte("1")}, {Task: "b", Pos: []byte("1")}},
			want: map[string]connector.Checkpoint{"a": {Task: "a", Pos: []byte("1")}, "b": {Task: "b", Pos: []byte("1")}},
		},
		{
			name: "one task moves, the other is kept",
			save: []connector.Checkpoint{{Task: "a", Pos: []byte("2")}},
			want: map[string]connector.Checkpoint{"a": {Task: "a", Pos: []byte("2")}, "b": {Task: "b", Pos: []byte("1")}},
		},
		{
			name: "done and fingerprint set, position cleared",
			save: []connector.Checkpoint{{Task: "b", Done: true, Fingerprint: "f1"}},
			want: map[string]connector.Checkpoint{"a": {Task: "a", Pos: []byte("2")}, "b": {Task: "b", Done: true, Fingerprint: "f1"}},
		},
		{
			name: "done and fingerprint unset again",
			save: []connector.Checkpoint{{Task: "b", Pos: []byte{0}}},
			want: map[string]connector.Checkpoint{"a": {Task: "a", Pos: []byte("2")}, "b": {Task: "b", Pos: []byte{0}}},
		},
		{
			name: "the later of two checkpoints of one task wins",
			save: []connector.Checkpoint{{Task: "c", Pos: []byte("1")}, {Task: "c", Pos: []byte("9")}},
			want: map[string]connector.Checkpoint{
				"a": {Task: "a", Pos: []byte("2")}, "b": {Task: "b", Pos: []byte{0}}, "c": {Task: "c", Pos: []byte("9")},
			},
		},
	}
	for _, st := range steps {
		if err := s.SaveCheckpoints(ctx, "p", st.save); err != nil {
			t.Fatalf("%s: SaveCheckpoints: %v", st.name, err)
		}
		got, err := s.LoadCheckpoints(ctx, "p")
		if err != nil {
			t.Fatalf("%s: LoadCheckpoints: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: LoadCheckpoints (-want +got):\n%s", st.name, diff)
		}
	}
}

func testCheckpointIsolationAndReset(t *testing.T, s state.Store) {
	ctx := context.Background()
	p1 := []connector.Checkpoint{{Task: "a", Pos: []byte("p1-a")}, {Task: "b", Pos: []byte("p1-b")}}
	p2 := []connector.Checkpoint{{Task: "a", Pos: []byte("p2-a")}}
	if err := s.SaveCheckpoints(ctx, "p1", p1); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoints(ctx, "p2", p2); err != nil {
		t.Fatal(err)
	}
	load := func(p string) map[string]connector.Checkpoint {
		t.Helper()
		got, err := s.LoadCheckpoints(ctx, p)
		if err != nil {
			t.Fatalf("LoadCheckpoints(%q): %v", p, err)
		}
		if got == nil {
			t.Fatalf("LoadCheckpoints(%q) returned a nil map", p)
		}
		return got
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"a": p1[0], "b": p1[1]}, load("p1")); diff != "" {
		t.Errorf("p1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"a": p2[0]}, load("p2")); diff != "" {
		t.Errorf("p2 (-want +got):\n%s", diff)
	}
	if got := load("unknown"); len(got) != 0 {
		t.Errorf("unknown pipeline: %v, want none", got)
	}

	resets := []struct {
		pipeline string
		want     int
	}{
		{"p1", 2},
		{"p1", 0},
		{"unknown", 0},
	}
	for _, r := range resets {
		n, err := s.ResetCheckpoints(ctx, r.pipeline)
		if err != nil {
			t.Fatalf("ResetCheckpoints(%q): %v", r.pipeline, err)
		}
		if n != r.want {
			t.Errorf("ResetCheckpoints(%q) = %d, want %d", r.pipeline, n, r.want)
		}
	}
	if got := load("p1"); len(got) != 0 {
		t.Errorf("p1 after reset: %v, want none", got)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"a": p2[0]}, load("p2")); diff != "" {
		t.Errorf("p2 after resetting p1 (-want +got):\n%s", diff)
	}
}

func testRunLifecycle(t *testing.T, s state.Store) {
	ctx := context.Background()
	r := state.Run{
		ID: "run-1", Pipeline: "orders", ConfigHash: "sha256:abc", Trigger: state.TriggerSchedule,
		LogicalTime: at(0), Start: at(1).In(time.FixedZone("CEST", 2*3600)),
		Status:       "ignored: StartRun sets running",
		CursorBefore: `{"a.csv":{"pos":"MTA="}}`,
	}
	if err := s.StartRun(ctx, &r); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if r.Status != state.StatusRunning {
		t.Errorf("StartRun set Status %q, want %q", r.Status, state.StatusRunning)
	}
	got, err := s.Run(ctx, "run-1")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("running run (-want +got):\n%s", diff)
	}
	if !got.End.IsZero() {
		t.Errorf("running run has End %v", got.End)
	}
	checkUTC(t, "Start", got.Start)
	checkUTC(t, "LogicalTime", got.LogicalTime)

	fin := r
	fin.End = at(2)
	fin.Status = state.StatusFailed
	fin.Read, fin.Written, fin.Rejected, fin.Filtered = 1000, 900, 60, 40
	fin.Error = "reject rate 6% above budget 1%"
	fin.CursorAfter = `{"a.csv":{"pos":"MjA="}}`
	// Fields FinishRun does not update keep their stored values.
	changed := fin
	changed.ConfigHash, changed.CursorBefore, changed.Start = "other", "other", at(9)
	if err := s.FinishRun(ctx, &changed); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	got, err = s.Run(ctx, "run-1")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff(fin, got); diff != "" {
		t.Errorf("finished run (-want +got):\n%s", diff)
	}
	checkUTC(t, "End", got.End)

	// Zero Start and End are set to now.
	before := time.Now().Truncate(time.Microsecond)
	r2 := state.Run{ID: "run-2", Pipeline: "orders", Trigger: state.TriggerManual}
	if err := s.StartRun(ctx, &r2); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	r2.Status = state.StatusSucceeded
	if err := s.FinishRun(ctx, &r2); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	after := time.Now()
	got, err = s.Run(ctx, "run-2")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for name, tm := range map[string]time.Time{"Start": got.Start, "End": got.End} {
		if tm.Before(before) || tm.After(after) {
			t.Errorf("defaulted %s = %v, want within [%v, %v]", name, tm, before, after)
		}
	}
	if !got.Start.Equal(r2.Start.Truncate(time.Microsecond)) || !got.End.Equal(r2.End.Truncate(time.Microsecond)) {
		t.Errorf("stored Start/End %v/%v differ from the ones set in the Run %v/%v", got.Start, got.End, r2.Start, r2.End)
	}
}

func testRunErrors(t *testing.T, s state.Store) {
	ctx := context.Background()
	r := state.Run{ID: "r1", Pipeline: "p", Start: at(0)}
	if err := s.StartRun(ctx, &r); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	cases := []struct {
		name     string
		call     func() error
		notFound bool
	}{
		{"Run of an unknown id", func() error { _, err := s.Run(ctx, "nope"); return err }, true},
		{"FinishRun of an unknown id", func() error {
			return s.FinishRun(ctx, &state.Run{ID: "nope", Pipeline: "p", Status: state.StatusSucceeded})
		}, true},
		{"StartRun of an existing id", func() error { dup := r; return s.StartRun(ctx, &dup) }, false},
		{"StartRun without an id", func() error { return s.StartRun(ctx, &state.Run{Pipeline: "p"}) }, false},
	}
	for _, c := range cases {
		err := c.call()
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case c.notFound && !errors.Is(err, state.ErrNotFound):
			t.Errorf("%s: %v, want ErrNotFound", c.name, err)
		case !c.notFound && errors.Is(err, state.ErrNotFound):
			t.Errorf("%s: %v, want an error other than ErrNotFound", c.name, err)
		}
	}
	// The duplicate did not change the stored run.
	got, err := s.Run(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("run after a duplicate StartRun (-want +got):\n%s", diff)
	}
}

func testRunsFilter(t *testing.T, s state.Store) {
	ctx := context.Background()
	runs := []struct {
		id, pipeline, status string
		start                time.Time
	}{
		{"r1", "orders", state.StatusSucceeded, at(1)},
		{"r2", "orders", state.StatusFailed, at(2)},
		{"r3", "customers", state.StatusSucceeded, at(3)},
		{"r4", "orders", state.StatusRunning, at(4)},
		{"r5", "customers", state.StatusCancelled, at(5)},
		// Same start as r6: the greater ID comes first.
		{"r6", "orders", state.StatusSucceeded, at(6)},
		{"r7", "orders", state.StatusSucceeded, at(6)},
		// Started earlier than all but inserted last: order is by Start.
		{"r0", "orders", state.StatusSucceeded, at(0)},
	}
	for _, r := range runs {
		run := state.Run{ID: r.id, Pipeline: r.pipeline, Start: r.start, Trigger: state.TriggerSchedule}
		if err := s.StartRun(ctx, &run); err != nil {
			t.Fatalf("StartRun %s: %v", r.id, err)
		}
		if r.status != state.StatusRunning {
			run.Status, run.End = r.status, r.start.Add(time.Minute)
			if err := s.FinishRun(ctx, &run); err != nil {
				t.Fatalf("FinishRun %s: %v", r.id, err)
			}
		}
	}
	cases := []struct {
		name string
		f    state.RunFilter
		want []string
	}{
		{"all, newest first", state.RunFilter{}, []string{"r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}},
		{"pipeline", state.RunFilter{Pipeline: "customers"}, []string{"r5", "r3"}},
		{"status", state.RunFilter{Status: state.StatusSucceeded}, []string{"r7", "r6", "r3", "r1", "r0"}},
		{"running", state.RunFilter{Status: state.StatusRunning}, []string{"r4"}},
		{"pipeline and status", state.RunFilter{Pipeline: "orders", Status: state.StatusSucceeded}, []string{"r7", "r6", "r1", "r0"}},
		{"limit", state.RunFilter{Limit: 3}, []string{"r7", "r6", "r5"}},
		{"limit with pipeline", state.RunFilter{Pipeline: "orders", Limit: 2}, []string{"r7", "r6"}},
		{"limit above count", state.RunFilter{Pipeline: "customers", Limit: 10}, []string{"r5", "r3"}},
		{"no match", state.RunFilter{Pipeline: "nope"}, nil},
	}
	for _, c := range cases {
		got, err := s.Runs(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: Runs: %v", c.name, err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if diff := cmp.Diff(c.want, ids); diff != "" {
			t.Errorf("%s: Runs(%+v) IDs (-want +got):\n%s", c.name, c.f, diff)
		}
	}
	// Listed runs carry all their fields.
	got, err := s.Runs(ctx, state.RunFilter{Pipeline: "customers", Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("Runs: %v, %v", got, err)
	}
	one, err := s.Run(ctx, "r5")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one, got[0]); diff != "" {
		t.Errorf("listed run differs from Run (-Run +Runs):\n%s", diff)
	}
}

// dl is a dead letter of the fixtures.
func dl(pipeline, runID, task, loc, step, field, msg, rec string) state.DeadLetter {
	return state.DeadLetter{
		Pipeline: pipeline, RunID: runID, Task: task, Loc: loc, Step: step, Field: field, Error: msg,
		Record: []byte(rec), CreatedAt: at(0),
	}
}

func testDeadLetterAdd(t *testing.T, s state.Store) {
	ctx := context.Background()
	dls := []state.DeadLetter{
		dl("orders", "run-1", "a.csv", "a.csv:2", "parse", "qty", `qty: "x" is not an int`, "1,x,3"),
		{Pipeline: "orders", RunID: "run-1", Task: "a.csv", Loc: "a.csv:3", Step: "validate", Error: "qty must be positive",
			Record: []byte{0, 0xff, '\n', 0}},
		dl("customers", "run-2", "t", "t:1", "enrich", "region", "missing", `{"id":1}`),
	}
	before := time.Now().Truncate(time.Microsecond)
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatalf("AddDeadLetters: %v", err)
	}
	after := time.Now()
	for i, d := range dls {
		if d.ID <= 0 {
			t.Errorf("dead letter %d got ID %d", i, d.ID)
		}
		if i > 0 && d.ID <= dls[i-1].ID {
			t.Errorf("IDs not increasing: %d after %d", d.ID, dls[i-1].ID)
		}
	}
	if c := dls[1].CreatedAt; c.Before(before) || c.After(after) {
		t.Errorf("defaulted CreatedAt = %v, want within [%v, %v]", c, before, after)
	}
	dls[1].CreatedAt = dls[1].CreatedAt.Truncate(time.Microsecond)

	got, err := s.DeadLetters(ctx, state.DLQFilter{})
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if diff := cmp.Diff(dls, got); diff != "" {
		t.Errorf("DeadLetters (-want +got):\n%s", diff)
	}
	for _, d := range got {
		checkUTC(t, "CreatedAt", d.CreatedAt)
	}
	for _, want := range dls {
		got, err := s.DeadLetter(ctx, want.ID)
		if err != nil {
			t.Fatalf("DeadLetter(%d): %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DeadLetter(%d) (-want +got):\n%s", want.ID, diff)
		}
	}
	if _, err := s.DeadLetter(ctx, dls[2].ID+1000); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("DeadLetter of an unknown id: %v, want ErrNotFound", err)
	}
	if err := s.AddDeadLetters(ctx, nil); err != nil {
		t.Errorf("AddDeadLetters(nil): %v", err)
	}
	// A nil record is stored as an empty one.
	nilRec := []state.DeadLetter{{Pipeline: "orders", Task: "b", Loc: "b:1", Error: "e"}}
	if err := s.AddDeadLetters(ctx, nilRec); err != nil {
		t.Fatalf("AddDeadLetters: %v", err)
	}
	d, err := s.DeadLetter(ctx, nilRec[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Record) != 0 {
		t.Errorf("nil record came back as %q", d.Record)
	}
}

func testDeadLetterFilter(t *testing.T, s state.Store) {
	ctx := context.Background()
	dls := []state.DeadLetter{
		dl("orders", "run-1", "a.csv", "a.csv:2", "parse", "qty", `qty: "x" is not an int`, "1,x,3"),
		dl("orders", "run-1", "a.csv", "a.csv:5", "validate", "qty", "qty must be positive", "5,-1,3"),
		dl("orders", "run-2", "b.csv", "b.csv:9", "enrich", "customer_id", "no customer 77 (lookup customers)", "9,77,1"),
		dl("customers", "run-3", "t", "t:1", "parse", "email", "invalid email", "bob@@example"),
		dl("customers", "run-3", "t", "t:2", "sink", "", "duplicate key", "binary\x00Needle\xff"),
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatalf("AddDeadLetters: %v", err)
	}
	cases := []struct {
		name string
		f    state.DLQFilter
		want []string // Locs, oldest first
	}{
		{"all", state.DLQFilter{}, []string{"a.csv:2", "a.csv:5", "b.csv:9", "t:1", "t:2"}},
		{"pipeline", state.DLQFilter{Pipeline: "orders"}, []string{"a.csv:2", "a.csv:5", "b.csv:9"}},
		{"run id", state.DLQFilter{RunID: "run-1"}, []string{"a.csv:2", "a.csv:5"}},
		{"step", state.DLQFilter{Step: "parse"}, []string{"a.csv:2", "t:1"}},
		{"pipeline and step", state.DLQFilter{Pipeline: "customers", Step: "parse"}, []string{"t:1"}},
		{"contains in error", state.DLQFilter{Contains: "positive"}, []string{"a.csv:5"}},
		{"contains in field", state.DLQFilter{Contains: "customer_id"}, []string{"b.csv:9"}},
		{"contains in loc", state.DLQFilter{Contains: "b.csv"}, []string{"b.csv:9"}},
		{"contains in record", state.DLQFilter{Contains: "@@"}, []string{"t:1"}},
		{"contains in a binary record", state.DLQFilter{Contains: "Needle"}, []string{"t:2"}},
		{"contains is case-sensitive", state.DLQFilter{Contains: "NEEDLE"}, nil},
		{"contains and pipeline", state.DLQFilter{Pipeline: "orders", Contains: "qty"}, []string{"a.csv:2", "a.csv:5"}},
		{"ids", state.DLQFilter{IDs: []int64{dls[4].ID, dls[0].ID}}, []string{"a.csv:2", "t:2"}},
		{"ids with unknown ones", state.DLQFilter{IDs: []int64{dls[1].ID, dls[4].ID + 100, -1}}, []string{"a.csv:5"}},
		{"ids and pipeline", state.DLQFilter{IDs: []int64{dls[0].ID, dls[3].ID}, Pipeline: "customers"}, []string{"t:1"}},
		{"limit", state.DLQFilter{Limit: 2}, []string{"a.csv:2", "a.csv:5"}},
		{"limit with filter", state.DLQFilter{Pipeline: "customers", Limit: 1}, []string{"t:1"}},
		{"no match", state.DLQFilter{Pipeline: "orders", RunID: "run-3"}, nil},
	}
	for _, c := range cases {
		got, err := s.DeadLetters(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: DeadLetters: %v", c.name, err)
		}
		var locs []string
		for _, d := range got {
			locs = append(locs, d.Loc)
		}
		if diff := cmp.Diff(c.want, locs); diff != "" {
			t.Errorf("%s: DeadLetters(%+v) (-want +got):\n%s", c.name, c.f, diff)
		}
		// Count ignores Limit.
		wantCount := len(c.want)
		if c.f.Limit > 0 {
			unlimited := c.f
			unlimited.Limit = 0
			all, err := s.DeadLetters(ctx, unlimited)
			if err != nil {
				t.Fatal(err)
			}
			wantCount = len(all)
		}
		n, err := s.CountDeadLetters(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: CountDeadLetters: %v", c.name, err)
		}
		if n != wantCount {
			t.Errorf("%s: CountDeadLetters(%+v) = %d, want %d", c.name, c.f, n, wantCount)
		}
	}
}

func testDeadLetterReAdd(t *testing.T, s state.Store) {
	ctx := context.Background()
	first := []state.DeadLetter{
		dl("orders", "run-1", "a.csv", "a.csv:2", "parse", "qty", "bad qty", "1,x"),
		dl("orders", "run-1", "a.csv", "a.csv:3", "parse", "qty", "bad qty", "2,y"),
	}
	if err := s.AddDeadLetters(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A rerun re-rejects a.csv:2 in the same step; the same location in
	// another step, task or pipeline is another dead letter.
	again := dl("orders", "run-2", "a.csv", "a.csv:2", "parse", "qty2", "bad qty (rerun)", "1,x,changed")
	again.CreatedAt = at(5)
	second := []state.DeadLetter{
		again,
		dl("orders", "run-2", "a.csv", "a.csv:2", "validate", "qty", "other step", "1,x"),
		dl("orders", "run-2", "b.csv", "a.csv:2", "parse", "qty", "other task", "1,x"),
		dl("returns", "run-2", "a.csv", "a.csv:2", "parse", "qty", "other pipeline", "1,x"),
	}
	if err := s.AddDeadLetters(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second[0].ID != first[0].ID {
		t.Errorf("re-added dead letter got ID %d, want the stored one's %d", second[0].ID, first[0].ID)
	}
	if n, err := s.CountDeadLetters(ctx, state.DLQFilter{}); err != nil || n != 5 {
		t.Errorf("CountDeadLetters = %d, %v; want 5", n, err)
	}
	got, err := s.DeadLetter(ctx, first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := again
	want.ID = first[0].ID
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("re-added dead letter (-want +got):\n%s", diff)
	}

	// The same key twice in one call is stored once, the later one winning.
	dup := []state.DeadLetter{
		dl("orders", "run-3", "c.csv", "c.csv:1", "parse", "", "first", "r"),
		dl("orders", "run-3", "c.csv", "c.csv:1", "parse", "", "second", "r"),
	}
	if err := s.AddDeadLetters(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if dup[0].ID != dup[1].ID {
		t.Errorf("one key got two IDs %d and %d", dup[0].ID, dup[1].ID)
	}
	list, err := s.DeadLetters(ctx, state.DLQFilter{RunID: "run-3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Error != "second" {
		t.Errorf("DeadLetters(run-3) = %+v, want one with error %q", list, "second")
	}
}

func testDeadLetterDelete(t *testing.T, s state.Store) {
	ctx := context.Background()
	dls := []state.DeadLetter{
		dl("orders", "r", "a", "a:1", "parse", "", "e", "1"),
		dl("orders", "r", "a", "a:2", "parse", "", "e", "2"),
		dl("orders", "r", "a", "a:3", "parse", "", "e", "3"),
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ids  []int64
		want int
	}{
		{"none", nil, 0},
		{"two and an unknown one", []int64{dls[0].ID, dls[2].ID, dls[2].ID + 1000}, 2},
		{"already deleted", []int64{dls[0].ID}, 0},
	}
	for _, c := range cases {
		n, err := s.DeleteDeadLetters(ctx, c.ids)
		if err != nil {
			t.Fatalf("%s: DeleteDeadLetters: %v", c.name, err)
		}
		if n != c.want {
			t.Errorf("%s: DeleteDeadLetters = %d, want %d", c.name, n, c.want)
		}
	}
	got, err := s.DeadLetters(ctx, state.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != dls[1].ID {
		t.Errorf("after delete: %+v, want only ID %d", got, dls[1].ID)
	}
	if _, err := s.DeadLetter(ctx, dls[0].ID); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("DeadLetter of a deleted id: %v, want ErrNotFound", err)
	}
	// IDs are not reused after a delete, not even the greatest one.
	more := []state.DeadLetter{dl("orders", "r", "a", "a:4", "parse", "", "e", "4")}
	if err := s.AddDeadLetters(ctx, more); err != nil {
		t.Fatal(err)
	}
	if more[0].ID <= dls[2].ID {
		t.Errorf("new dead letter got ID %d, reusing a deleted ID (<= %d)", more[0].ID, dls[2].ID)
	}
}

// testConcurrentWriters runs 8 goroutines that write and read at once; none
// may fail (a "database is locked" error is a failure) and no write may be
// lost.
func testConcurrentWriters(t *testing.T, s state.Store) {
	ctx := context.Background()
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			errs <- func() error {
				task := fmt.Sprintf("task-%d", w)
				for i := range rounds {
					id := fmt.Sprintf("run-%d-%d", w, i)
					r := state.Run{ID: id, Pipeline: "p", Start: at(i)}
					if err := s.StartRun(ctx, &r); err != nil {
						return err
					}
					cp := []connector.Checkpoint{{Task: task, Pos: []byte{byte(i)}}}
					if err := s.SaveCheckpoints(ctx, "p", cp); err != nil {
						return err
					}
					dls := []state.DeadLetter{
						dl("p", id, task, fmt.Sprintf("%s:%d", task, i), "parse", "", "e", "r"),
						// Every worker re-rejects the same record.
						dl("p", id, "shared", "shared:1", "parse", "", "e", "r"),
					}
					if err := s.AddDeadLetters(ctx, dls); err != nil {
						return err
					}
					if _, err := s.LoadCheckpoints(ctx, "p"); err != nil {
						return err
					}
					if _, err := s.CountDeadLetters(ctx, state.DLQFilter{Pipeline: "p"}); err != nil {
						return err
					}
					r.Status, r.Read = state.StatusSucceeded, int64(i)
					if err := s.FinishRun(ctx, &r); err != nil {
						return err
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	}

	runs, err := s.Runs(ctx, state.RunFilter{Pipeline: "p", Status: state.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != workers*rounds {
		t.Errorf("%d succeeded runs, want %d", len(runs), workers*rounds)
	}
	cps, err := s.LoadCheckpoints(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	var tasks []string
	for k, cp := range cps {
		tasks = append(tasks, k)
		if !bytes.Equal(cp.Pos, []byte{rounds - 1}) {
			t.Errorf("checkpoint %s at %v, want the last one %v", k, cp.Pos, []byte{rounds - 1})
		}
	}
	sort.Strings(tasks)
	if len(tasks) != workers {
		t.Errorf("checkpoints of tasks %v, want %d tasks", tasks, workers)
	}
	n, err := s.CountDeadLetters(ctx, state.DLQFilter{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if want := workers*rounds + 1; n != want {
		t.Errorf("%d dead letters, want %d", n, want)
	}
}

func testCancelledContext(t *testing.T, s state.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"LoadCheckpoints", func() error { _, err := s.LoadCheckpoints(ctx, "p"); return err }},
		{"SaveCheckpoints", func() error {
			return s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: "a", Pos: []byte("1")}})
		}},
		{"ResetCheckpoints", func() error { _, err := s.ResetCheckpoints(ctx, "p"); return err }},
		{"StartRun", func() error { return s.StartRun(ctx, &state.Run{ID: "r", Pipeline: "p"}) }},
		{"FinishRun", func() error { return s.FinishRun(ctx, &state.Run{ID: "r", Status: state.StatusFailed}) }},
		{"Runs", func() error { _, err := s.Runs(ctx, state.RunFilter{}); return err }},
		{"Run", func() error { _, err := s.Run(ctx, "r"); return err }},
		{"AddDeadLetters", func() error {
			return s.AddDeadLetters(ctx, []state.DeadLetter{dl("p", "r", "a", "a:1", "parse", "", "e", "x")})
		}},
		{"DeadLetters", func() error { _, err := s.DeadLetters(ctx, state.DLQFilter{}); return err }},
		{"DeadLetter", func() error { _, err := s.DeadLetter(ctx, 1); return err }},
		{"DeleteDeadLetters", func() error { _, err := s.DeleteDeadLetters(ctx, []int64{1}); return err }},
		{"CountDeadLetters", func() error { _, err := s.CountDeadLetters(ctx, state.DLQFilter{}); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", c.name, err)
		}
	}
	// Nothing was written.
	bg := context.Background()
	if cps, err := s.LoadCheckpoints(bg, "p"); err != nil || len(cps) != 0 {
		t.Errorf("checkpoints after cancelled calls: %v, %v", cps, err)
	}
	if n, err := s.CountDeadLetters(bg, state.DLQFilter{}); err != nil || n != 0 {
		t.Errorf("dead letters after cancelled calls: %d, %v", n, err)
	}
	if _, err := s.Run(bg, "r"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("run after a cancelled StartRun: %v, want ErrNotFound", err)
	}
}

func testClose(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.LoadCheckpoints(ctx, "p"); err == nil {
		t.Error("LoadCheckpoints after Close: no error")
	}
	if err := s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: "b"}}); err == nil {
		t.Error("SaveCheckpoints after Close: no error")
	}
}
