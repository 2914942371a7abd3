package sqlitestate

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
)

var update = flag.Bool("update", false, "rewrite testdata/state-v1.db")

const goldenV1 = "testdata/state-v1.db"

// The content of testdata/state-v1.db.
var (
	goldenTime = time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	goldenCps  = []connector.Checkpoint{
		{Task: "data/orders/a.csv", Pos: []byte{0, 1, 0, 0xff}},
		{Task: "data/orders/b.csv", Done: true, Fingerprint: "size=3,mtime=1714564800"},
		{Task: "data/orders/c.csv", Pos: []byte{}},
		{Task: "data/orders/d.csv"},
	}
	goldenRuns = []state.Run{
		{ID: "run-2", Pipeline: "orders", ConfigHash: "sha256:2", Trigger: state.TriggerRetry,
			LogicalTime: goldenTime.Add(time.Hour), Start: goldenTime.Add(time.Hour), Status: state.StatusRunning,
			CursorBefore: `{"a":"AQ=="}`},
		{ID: "run-1", Pipeline: "orders", ConfigHash: "sha256:1", Trigger: state.TriggerSchedule,
			LogicalTime: goldenTime, Start: goldenTime, End: goldenTime.Add(90 * time.Second), Status: state.StatusFailed,
			Read: 1000, Written: 900, Rejected: 60, Filtered: 40, Error: "reject rate 6% above budget 1%",
			CursorBefore: "{}", CursorAfter: `{"a":"AQ=="}`},
	}
	goldenDls = []state.DeadLetter{
		{ID: 1, Pipeline: "orders", RunID: "run-1", Task: "data/orders/a.csv", Loc: "a.csv:2", Step: "parse",
			Field: "qty", Error: `qty: "x" is not an int`, Record: []byte("1,x,3"), CreatedAt: goldenTime},
		{ID: 2, Pipeline: "orders", RunID: "run-1", Task: "data/orders/a.csv", Loc: "a.csv:3", Step: "validate",
			Field: "qty", Error: "qty must be positive", Record: []byte{'2', 0, 0xff}, CreatedAt: goldenTime.Add(time.Second)},
	}
)

func writeGolden(t *testing.T, path string) {
	ctx := t.Context()
	s := mustOpen(t, path)
	defer s.Close()
	if err := s.SaveCheckpoints(ctx, "orders", goldenCps); err != nil {
		t.Fatal(err)
	}
	for i := len(goldenRuns) - 1; i >= 0; i-- {
		r := goldenRuns[i]
		if err := s.StartRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if goldenRuns[i].Status != state.StatusRunning {
			r.Status, r.End = goldenRuns[i].Status, goldenRuns[i].End
			if err := s.FinishRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	dls := make([]state.DeadLetter, len(goldenDls))
	copy(dls, goldenDls)
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenV1 reads a version 1 store committed to testdata: a change of the
// version 1 schema or of how values are encoded breaks it, where a round
// trip through the current code would not notice. Regenerate with -update
// only for a new version's fixture; never rewrite state-v1.db.
func TestGoldenV1(t *testing.T) {
	if *update {
		if err := os.Remove(goldenV1); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		writeGolden(t, goldenV1)
	}
	b, err := os.ReadFile(goldenV1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	writeFile(t, path, b)

	ctx := t.Context()
	s := mustOpen(t, path)
	defer s.Close()
	cps, err := s.LoadCheckpoints(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	wantCps := make(map[string]connector.Checkpoint)
	for _, cp := range goldenCps {
		wantCps[cp.Task] = cp
	}
	if diff := cmp.Diff(wantCps, cps); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	runs, err := s.Runs(ctx, state.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenRuns, runs); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	dls, err := s.DeadLetters(ctx, state.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenDls, dls); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	// Writing to the old file still works and IDs go on from where they were.
	more := []state.DeadLetter{{Pipeline: "orders", Task: "t", Loc: "t:1", Error: "e"}}
	if err := s.AddDeadLetters(ctx, more); err != nil {
		t.Fatal(err)
	}
	if more[0].ID != 3 {
		t.Errorf("new dead letter ID %d, want 3", more[0].ID)
	}
	// Opening migrated it to the current version.
	if m := meta(t, path); m["schema_version"] != strconv.Itoa(SchemaVersion) {
		t.Errorf("schema_version %q, want %d", m["schema_version"], SchemaVersion)
	}
}
