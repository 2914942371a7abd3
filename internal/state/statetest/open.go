package statetest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// The helpers below serve the tests each implementation keeps for itself
// (opening, creating, upgrading a store): what those tests check in the
// same way whatever the store.

// Openers runs fn(0) … fn(n-1) in n goroutines at once, as n processes
// opening one store would, and reports the error of each that failed.
func Openers(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
		}
	}
}

// ConcurrentCreate opens one missing store from several goroutines at
// once with open, each saving a checkpoint: all must get the same store.
func ConcurrentCreate(t *testing.T, open func(ctx context.Context) (state.Store, error)) {
	ctx := t.Context()
	const openers = 8
	Openers(t, openers, func(i int) error {
		s, err := open(ctx)
		if err != nil {
			return err
		}
		err = s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: strconv.Itoa(i)}})
		return errors.Join(err, s.Close())
	})
	s, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cps, err := s.LoadCheckpoints(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != openers {
		t.Errorf("%d checkpoints, want %d: a store was replaced", len(cps), openers)
	}
}

// CheckVersionError checks that err, from opening the store path whose
// schema version is found, is a *state.VersionError that says so.
func CheckVersionError(t *testing.T, err error, path string, found, supported int) {
	t.Helper()
	var ve *state.VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("Open: %v, want a *state.VersionError", err)
	}
	want := &state.VersionError{Path: path, Found: found, Supported: supported}
	if diff := cmp.Diff(want, ve); diff != "" {
		t.Errorf("VersionError (-want +got):\n%s", diff)
	}
	wantMsg := "state store " + path + " has schema version " + strconv.Itoa(found) +
		", this backbone understands up to " + strconv.Itoa(supported) + "; upgrade backbone"
	if err.Error() != wantMsg {
		t.Errorf("message %q, want %q", err.Error(), wantMsg)
	}
}

func testTimesOutOfRange(t *testing.T, s state.Store) {
	ctx := t.Context()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		call func() error
	}{
		{"StartRun", func() error { return s.StartRun(ctx, &state.Run{ID: "r", Pipeline: "p", LogicalTime: far}) }},
		{"FinishRun", func() error { return s.FinishRun(ctx, &state.Run{ID: "r", Status: "failed", End: far}) }},
		{"AddDeadLetters", func() error {
			return s.AddDeadLetters(ctx, []state.DeadLetter{{Pipeline: "p", Loc: "x:1", CreatedAt: far}})
		}},
	}
	for _, c := range cases {
		if err := c.call(); err == nil || !strings.Contains(err.Error(), "outside the years") {
			t.Errorf("%s with year 10000: %v, want a range error", c.name, err)
		}
	}
	// Nothing unreadable was stored.
	if _, err := s.Runs(ctx, state.RunFilter{}); err != nil {
		t.Error(err)
	}
	if _, err := s.DeadLetters(ctx, state.DLQFilter{}); err != nil {
		t.Error(err)
	}
}

// BenchAddDeadLetters measures adding dead letters to s, 1,000 a call.
func BenchAddDeadLetters(b *testing.B, s state.Store) {
	const batch = 1000
	dls := make([]state.DeadLetter, batch)
	rec := []byte(strings.Repeat("x", 200))
	n := 0
	for b.Loop() {
		for i := range dls {
			dls[i] = state.DeadLetter{Pipeline: "p", RunID: "r", Task: "t", Loc: "t:" + strconv.Itoa(n), Step: "parse",
				Error: `qty: "x" is not an int`, Record: rec}
			n++
		}
		if err := s.AddDeadLetters(b.Context(), dls); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deadletters/s")
}

// BenchSaveCheckpoints measures saving the checkpoints of 8 tasks to s.
func BenchSaveCheckpoints(b *testing.B, s state.Store) {
	cps := make([]connector.Checkpoint, 8)
	for i := range cps {
		cps[i] = connector.Checkpoint{Task: "data/orders/part-" + strconv.Itoa(i) + ".csv", Pos: []byte("offset=123456789")}
	}
	for b.Loop() {
		if err := s.SaveCheckpoints(b.Context(), "orders", cps); err != nil {
			b.Fatal(err)
		}
	}
}

// CheckMigrations checks that ms go to versions 1, 2, … in order and end
// at schemaVersion, the version the store writes.
func CheckMigrations(t *testing.T, ms []sqlstate.Migration, schemaVersion int) {
	t.Helper()
	if got := sqlstate.Latest(ms); got != schemaVersion {
		t.Errorf("last migration is to version %d, SchemaVersion is %d", got, schemaVersion)
	}
	for i, m := range ms {
		if m.To != i+1 {
			t.Errorf("migration %d is to version %d, want %d", i, m.To, i+1)
		}
	}
}

// CheckRefused checks that err, from opening the store path, wraps want,
// names path and says wantMsg; a store refused as damaged must also say
// that it is not taken for a first run.
func CheckRefused(t *testing.T, err error, path string, want error, wantMsg string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("Open: %v, want an error wrapping %v", err, want)
	}
	msg := err.Error()
	if !strings.Contains(msg, wantMsg) || !strings.Contains(msg, path) {
		t.Errorf("Open: %q, want it to name %s and say %q", msg, path, wantMsg)
	}
	if want == state.ErrCorrupt && !strings.Contains(msg, "refused rather than treated as a first run") {
		t.Errorf("Open: %q does not say the store is refused", msg)
	}
}
