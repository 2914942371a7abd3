package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRunsOnScheduleAndSurvivesClockJumps(t *testing.T) {
	for _, policy := range []CatchUp{CatchUpSkip, CatchUpOnce, CatchUpAll} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t, Options{Limits: Limits{Misfire: 5 * time.Second}})
			every := mustParse(t, "every 1m", nil)
			h.set(PipelineSpec{Name: "p", Schedule: every, CatchUp: policy})
			h.start()
			if got := h.logical("p"); len(got) != 0 {
				t.Fatalf("a pipeline that never ran ran at start: %s", fmtTimes(got))
			}
			h.step(time.Minute, 1)
			want := []time.Time{at(10, 1, 0)}
			if st := h.status("p"); st.State != StateIdle || !st.LastLogical.Equal(at(10, 1, 0)) || !st.Next.Equal(at(10, 2, 0)) {
				t.Errorf("status after 10:01 = %+v", st)
			}

			// The clock jumps back half an hour: nothing that ran runs
			// again, and the next run is the next fire time after the
			// last one, when the clock comes back to it.
			h.clock.Set(at(9, 30, 0))
			h.settle()
			if st := h.status("p"); !st.Next.Equal(at(10, 2, 0)) {
				t.Errorf("after the jump back, Next = %v, want 10:02", st.Next)
			}
			h.step(time.Minute, 32) // 09:31 ... 10:02
			want = append(want, at(10, 2, 0))
			if diff := cmp.Diff(want, h.logical("p")); diff != "" {
				t.Fatalf("after the jump back (-want +got):\n%s", diff)
			}

			// The clock jumps forward two hours: that is downtime, and the
			// catch-up policy decides.
			h.clock.Set(at(12, 0, 30))
			h.settle()
			h.step(time.Minute, 1)                                   // 12:01:30
			missed := fireTimesIn(every, at(10, 2, 0), at(12, 0, 0)) // 10:03 ... 12:00
			var wantSkipped Skipped
			switch policy {
			case CatchUpSkip: // 12:00 is 30s late: skipped too
				wantSkipped = Skipped{Count: len(missed), Exact: true, First: missed[0], Last: missed[len(missed)-1]}
			case CatchUpOnce:
				want = append(want, at(12, 0, 0))
				wantSkipped = Skipped{Count: len(missed) - 1, Exact: true, First: missed[0], Last: missed[len(missed)-2]}
			case CatchUpAll:
				want = append(want, missed...)
			}
			want = append(want, at(12, 1, 0))
			if diff := cmp.Diff(want, h.logical("p")); diff != "" {
				t.Errorf("after the jump forward (-want +got):\n%s", diff)
			}
			var gotSkipped Skipped
			if len(h.skipped()) > 0 {
				gotSkipped = h.skipped()[0].Missed
			}
			if diff := cmp.Diff(wantSkipped, gotSkipped); diff != "" || len(h.skipped()) > 1 {
				t.Errorf("skipped reports %+v (-want +got):\n%s", h.skipped(), diff)
			}
			for _, j := range h.jobsOf("p") {
				if j.Trigger != TriggerSchedule || j.Attempt != 1 {
					t.Errorf("job %s: want a first scheduled attempt", j.Job)
				}
			}
		})
	}
}

// TestDowntimeCatchUp restarts a daemon after downtime with three
// schedules under each policy: each logical time runs exactly once where
// the policy says so.
func TestDowntimeCatchUp(t *testing.T) {
	chicago := mustZone(t, "America/Chicago")
	specs := map[string]Schedule{
		"ten-minutes": mustParse(t, "*/10 * * * *", nil),
		"hourly":      mustParse(t, "0 * * * *", chicago),
		"every-45m":   mustParse(t, "every 45m", nil),
	}
	ranBefore := at(8, 0, 0) // history: each ran its last fire time up to 08:00
	restart, end := at(11, 37, 20), at(13, 0, 0)
	for _, policy := range []CatchUp{CatchUpSkip, CatchUpOnce, CatchUpAll} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t, Options{Limits: Limits{Misfire: 5 * time.Second}})
			h.clock.Set(restart)
			want := map[string][]time.Time{}
			for name, s := range specs {
				last := fireTimesIn(s, ranBefore.Add(-2*time.Hour), ranBefore)
				lastRan := last[len(last)-1]
				h.set(PipelineSpec{Name: name, Schedule: s, CatchUp: policy, LastLogical: lastRan})
				missed := fireTimesIn(s, lastRan, restart)
				switch policy {
				case CatchUpOnce:
					want[name] = missed[len(missed)-1:]
				case CatchUpAll:
					want[name] = missed
				}
				want[name] = append(want[name], fireTimesIn(s, restart, end)...)
			}
			h.start()
			for !h.clock.Now().After(end) {
				h.step(time.Minute, 1)
			}
			for name := range specs {
				got := h.logical(name)
				if diff := cmp.Diff(want[name], got); diff != "" {
					t.Errorf("%s ran (-want +got):\n%s", name, diff)
				}
				if diff := cmp.Diff(sortedTimes(got), got); diff != "" {
					t.Errorf("%s: logical times out of order", name)
				}
			}
		})
	}
}

func TestNeverTwoRunsOfOnePipeline(t *testing.T) {
	h := newHarness(t, Options{})
	gate := make(chan struct{})
	var first atomic.Bool
	h.on("p", func(ctx context.Context, j Job) error {
		if first.CompareAndSwap(false, true) {
			h.block(gate)
		}
		return nil
	})
	every := mustParse(t, "every 1s", nil)
	h.set(PipelineSpec{Name: "p", Schedule: every, CatchUp: CatchUpAll})
	h.start()
	h.step(time.Second, 6) // the 10:00:01 run blocks through 10:00:06
	if st := h.status("p"); st.State != StateRunning || st.InFlight != 1 {
		t.Errorf("status while blocked = %+v", st)
	}
	if _, err := h.s.Trigger("p", TriggerManual, time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if st := h.status("p"); st.Queued != 1 || len(h.jobsOf("p")) != 1 {
		t.Fatalf("a manual trigger of a running pipeline started at once: %+v", st)
	}
	close(gate)
	h.settle()
	jobs := h.jobsOf("p")
	var got []string
	for _, j := range jobs {
		got = append(got, string(j.Trigger)+" "+j.Logical.Format("15:04:05"))
	}
	want := []string{"schedule 10:00:01", "manual 10:00:06", "schedule 10:00:02", "schedule 10:00:03",
		"schedule 10:00:04", "schedule 10:00:05", "schedule 10:00:06"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if h.maxOf("p") != 1 {
		t.Errorf("%d runs of p at once, want 1", h.maxOf("p"))
	}

	// With concurrency 2, two runs overlap, never three.
	gate2 := make(chan struct{})
	h.on("q", func(ctx context.Context, j Job) error { h.block(gate2); return nil })
	h.set(PipelineSpec{Name: "q", Schedule: every, CatchUp: CatchUpAll, Concurrency: 2})
	h.step(time.Second, 5)
	if n := len(h.jobsOf("q")); n != 2 || h.maxOf("q") != 2 {
		t.Errorf("concurrency 2: %d runs started, %d at once; want 2, 2", n, h.maxOf("q"))
	}
	close(gate2)
	h.settle()
	// Two goroutines enter Run in either order: compare the sets.
	if diff := cmp.Diff(fireTimesIn(every, at(10, 0, 6), at(10, 0, 11)), sortedTimes(h.logical("q"))); diff != "" {
		t.Errorf("q ran (-want +got):\n%s", diff)
	}
}

func TestRetriesWithBackoffThenQuarantine(t *testing.T) {
	h := newHarness(t, Options{Rand: func() float64 { return 0.5 }})
	var fail atomic.Bool
	fail.Store(true)
	h.on("f", func(ctx context.Context, j Job) error {
		if fail.Load() {
			return errBoom
		}
		return nil
	})
	h.set(PipelineSpec{Name: "f", Schedule: mustParse(t, "every 1m", nil),
		Retry:           RetryPolicy{Retries: 2, Backoff: 10 * time.Second, MaxBackoff: 15 * time.Second, Jitter: 0.5},
		QuarantineAfter: 2})
	h.start()
	h.step(time.Minute, 1) // 10:01:00, attempt 1 fails
	// Waits: 10s less a quarter (jitter 0.5 × rand 0.5) = 7.5s, then
	// min(20s, 15s) less a quarter = 11.25s.
	if st := h.status("f"); st.State != StateRetrying || !st.RetryAt.Equal(at(10, 1, 7).Add(500*time.Millisecond)) {
		t.Fatalf("after a failure: %+v", st)
	}
	h.step(7500*time.Millisecond-time.Millisecond, 1)
	if n := len(h.jobsOf("f")); n != 1 {
		t.Fatalf("retried before its backoff: %d runs", n)
	}
	h.step(time.Millisecond, 1)       // 10:01:07.5, attempt 2
	h.step(11250*time.Millisecond, 1) // 10:01:18.75, attempt 3: the run has failed
	if st := h.status("f"); st.State != StateIdle || st.ConsecutiveFailures != 1 || !errors.Is(st.LastError, errBoom) {
		t.Fatalf("after the last retry: %+v", st)
	}
	h.clock.Set(at(10, 2, 0))
	h.settle()
	h.step(7500*time.Millisecond, 1)
	h.step(11250*time.Millisecond, 1) // the 10:02 run failed too: quarantined
	if st := h.status("f"); st.State != StateQuarantined || !st.Next.IsZero() {
		t.Fatalf("after two failed runs: %+v", st)
	}
	h.step(time.Minute, 10) // nothing runs while quarantined
	if _, err := h.s.Trigger("f", TriggerManual, time.Time{}); !errors.Is(err, ErrPaused) {
		t.Errorf("trigger of a quarantined pipeline: %v, want ErrPaused", err)
	}

	var got []string
	for _, j := range h.jobsOf("f") {
		got = append(got, j.At.Format("15:04:05.00")+" "+j.Job.String())
	}
	want := []string{
		"10:01:00.00 f@2024-06-01T10:01:00Z (schedule, attempt 1)",
		"10:01:07.50 f@2024-06-01T10:01:00Z (retry, attempt 2)",
		"10:01:18.75 f@2024-06-01T10:01:00Z (retry, attempt 3)",
		"10:02:00.00 f@2024-06-01T10:02:00Z (schedule, attempt 1)",
		"10:02:07.50 f@2024-06-01T10:02:00Z (retry, attempt 2)",
		"10:02:18.75 f@2024-06-01T10:02:00Z (retry, attempt 3)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	for _, j := range h.jobsOf("f") {
		if j.Origin != TriggerSchedule {
			t.Errorf("%s: origin %q, want schedule", j.Job, j.Origin)
		}
	}
	if q := h.eventsWith("quarantined"); len(q) != 1 || q[0] != "quarantined f after 2: boom" {
		t.Errorf("quarantine events: %q", q)
	}
	if r := h.eventsWith("retry "); len(r) != 4 {
		t.Errorf("retry events: %q, want 4", r)
	}

	// Resume lifts the quarantine; the missed fire times follow the
	// catch-up policy (once: the latest), and a success clears the count.
	fail.Store(false)
	if err := h.s.Resume("f"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	jobs := h.jobsOf("f")
	if last := jobs[len(jobs)-1]; len(jobs) != 7 || !last.Logical.Equal(at(10, 12, 0)) || last.Trigger != TriggerSchedule {
		t.Errorf("after Resume at %v: %d runs, the last %s; want the 10:12 run", h.clock.Now(), len(jobs), last.Job)
	}
	if st := h.status("f"); st.State != StateIdle || st.ConsecutiveFailures != 0 || st.LastError != nil {
		t.Errorf("after a success: %+v", st)
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{Backoff: time.Second, MaxBackoff: 10 * time.Second, Jitter: 0.2}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := p.delay(attempt, 0); got != want {
			t.Errorf("delay(%d, 0) = %v, want %v", attempt, got, want)
		}
		if got, low := p.delay(attempt, 0.999999), want-want/5; got < low || got > want {
			t.Errorf("delay(%d, ~1) = %v, want in [%v, %v]", attempt, got, low, want)
		}
	}
}

// TestIsolation: a pipeline that panics, one that hangs and one that fails
// run beside two healthy ones under a global limit; the healthy ones run
// exactly on their schedules.
func TestIsolation(t *testing.T) {
	h := newHarness(t, Options{MaxConcurrent: 2, Grace: 4 * time.Second})
	h.on("panics", func(context.Context, Job) error { panic("kaboom") })
	h.on("hangs", h.hang)
	h.on("fails", func(context.Context, Job) error { return errBoom })
	everySecond, everyFive := mustParse(t, "every 1s", nil), mustParse(t, "every 5s", nil)
	bad := PipelineSpec{Schedule: everySecond, Timeout: 3 * time.Second,
		Retry: RetryPolicy{Retries: 1, Backoff: 2 * time.Second}, QuarantineAfter: 3}
	for _, name := range []string{"panics", "hangs", "fails"} {
		spec := bad
		spec.Name = name
		h.set(spec)
	}
	h.set(PipelineSpec{Name: "healthy-1s", Schedule: everySecond, Timeout: 3 * time.Second})
	h.set(PipelineSpec{Name: "healthy-5s", Schedule: everyFive, Timeout: 3 * time.Second})
	h.start()
	h.step(time.Second, 60)

	for name, s := range map[string]Schedule{"healthy-1s": everySecond, "healthy-5s": everyFive} {
		if diff := cmp.Diff(fireTimesIn(s, t0, at(10, 1, 0)), h.logical(name)); diff != "" {
			t.Errorf("%s ran (-want +got):\n%s", name, diff)
		}
		for _, r := range h.resultsOf(name) {
			if r.Outcome != OutcomeSucceeded {
				t.Errorf("%s: %s %s: %v", name, r.Job, r.Outcome, r.Err)
			}
		}
	}
	// The hanging run: timed out at 10:00:04, stuck at 10:00:08, and its
	// pipeline never ran anything beside it.
	if n := len(h.jobsOf("hangs")); n != 1 {
		t.Errorf("hangs ran %d times, want once (no overlap with its stuck run)", n)
	}
	if diff := cmp.Diff([]string{"timeout hangs@2024-06-01T10:00:01Z (schedule, attempt 1) after 3s"}, h.eventsWith("timeout")); diff != "" {
		t.Errorf("timeouts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"stuck hangs@2024-06-01T10:00:01Z (schedule, attempt 1)"}, h.eventsWith("stuck")); diff != "" {
		t.Errorf("stuck (-want +got):\n%s", diff)
	}
	if st := h.status("hangs"); st.State != StateStuck || st.InFlight != 1 || st.Stuck != 1 {
		t.Errorf("hangs status %+v", st)
	}
	if ctx := h.jobsOf("hangs")[0].Ctx; ctx.Err() == nil || Hard(ctx).Err() == nil {
		t.Error("the hanging run's contexts were not cancelled")
	}
	// The panicking and the failing ones: recorded, retried, quarantined
	// after three failed runs.
	for _, name := range []string{"panics", "fails"} {
		st := h.status(name)
		if st.State != StateQuarantined || st.ConsecutiveFailures != 3 {
			t.Errorf("%s: %+v, want quarantined after 3 failures", name, st)
		}
		if n := len(h.jobsOf(name)); n != 6 {
			t.Errorf("%s ran %d attempts, want 3 runs of 2 attempts", name, n)
		}
	}
	var pe *PanicError
	for _, r := range h.resultsOf("panics") {
		if !errors.As(r.Err, &pe) || pe.Value != "kaboom" || !strings.Contains(string(pe.Stack), "TestIsolation") {
			t.Fatalf("panic result %v: want a *PanicError with the stack of the panic", r.Err)
		}
	}
	if n := len(h.eventsWith("panic panics@")); n != 6 {
		t.Errorf("%d panic events, want 6", n)
	}
}

func TestGlobalConcurrencyLimit(t *testing.T) {
	h := newHarness(t, Options{MaxConcurrent: 2})
	gates := map[string]chan struct{}{}
	names := []string{"g0", "g1", "g2", "g3", "g4"}
	for _, name := range names {
		gate := make(chan struct{})
		gates[name] = gate
		h.on(name, func(context.Context, Job) error { h.block(gate); return nil })
		h.set(PipelineSpec{Name: name, Schedule: mustParse(t, "0 * * * *", nil)})
	}
	h.start()
	h.clock.Set(at(11, 0, 0))
	h.settle()
	for opened := 0; opened < len(names); opened++ {
		h.mu.Lock()
		var running []string
		for n, c := range h.inRun {
			if c > 0 {
				running = append(running, n)
			}
		}
		h.mu.Unlock()
		if want := min(2, len(names)-opened); len(running) != want {
			t.Fatalf("%d opened: running %v, want %d", opened, running, want)
		}
		close(gates[running[0]])
		h.settle()
	}
	if h.maxAtOnce() != 2 {
		t.Errorf("%d runs at once, want 2", h.maxAtOnce())
	}
	for _, name := range names {
		if got := h.logical(name); len(got) != 1 || !got[0].Equal(at(11, 0, 0)) {
			t.Errorf("%s ran %s, want 11:00 once", name, fmtTimes(got))
		}
	}
}

func TestDrainWaitsAndStartsNothing(t *testing.T) {
	h := newHarness(t, Options{})
	committing, commit := make(chan struct{}), make(chan struct{})
	h.on("slow", func(ctx context.Context, j Job) error {
		h.block(ctx.Done())
		close(committing) // stopped reading; now commits what it has
		h.block(commit)
		return context.Cause(ctx)
	})
	every := mustParse(t, "every 1m", nil)
	h.set(PipelineSpec{Name: "slow", Schedule: every})
	h.set(PipelineSpec{Name: "quick", Schedule: every})
	h.start()
	h.step(time.Minute, 1)

	drained := make(chan error, 1)
	go func() { drained <- h.s.Drain(context.Background()) }()
	<-committing
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while a run was committing", err)
	default:
	}
	close(commit)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	res := h.resultsOf("slow")
	if len(res) != 1 || res[0].Outcome != OutcomeCanceled || !errors.Is(res[0].Err, ErrDraining) {
		t.Fatalf("drained run: %+v, want canceled by ErrDraining", res)
	}
	if st := h.status("slow"); st.ConsecutiveFailures != 0 || st.RetryAt != (time.Time{}) {
		t.Errorf("a drained run counted as a failure: %+v", st)
	}
	before := len(h.jobsOf("slow")) + len(h.jobsOf("quick"))
	h.clock.Advance(10 * time.Minute)
	if after := len(h.jobsOf("slow")) + len(h.jobsOf("quick")); after != before {
		t.Errorf("%d runs started after Drain", after-before)
	}
	if err := h.s.Set(PipelineSpec{Name: "new", Schedule: every}); !errors.Is(err, ErrDraining) {
		t.Errorf("Set after Drain: %v", err)
	}
	if _, err := h.s.Trigger("quick", TriggerManual, time.Time{}); !errors.Is(err, ErrDraining) {
		t.Errorf("Trigger after Drain: %v", err)
	}
}

func TestDrainDeadline(t *testing.T) {
	h := newHarness(t, Options{})
	h.on("hangs", h.hang)
	h.set(PipelineSpec{Name: "hangs", Schedule: mustParse(t, "every 1m", nil)})
	h.start()
	h.step(time.Minute, 1)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("shutdown deadline"))
	err := h.s.Drain(ctx)
	var de *DrainError
	if !errors.As(err, &de) || len(de.Running) != 1 || de.Running[0].Pipeline != "hangs" || !strings.Contains(err.Error(), "shutdown deadline") {
		t.Fatalf("Drain past its deadline: %v, want a DrainError naming the hanging run", err)
	}
	if Hard(h.jobsOf("hangs")[0].Ctx).Err() == nil {
		t.Error("the hard context of the run left behind was not cancelled")
	}
	// The cleanup releases the run and drains again, to no leak.
}

func TestRemoveLetsTheRunFinish(t *testing.T) {
	h := newHarness(t, Options{})
	gate := make(chan struct{})
	h.on("p", func(ctx context.Context, j Job) error {
		if j.Logical.Equal(at(10, 1, 0)) {
			h.block(gate)
			return ctx.Err()
		}
		return nil
	})
	every := mustParse(t, "every 1m", nil)
	h.set(PipelineSpec{Name: "p", Schedule: every})
	h.start()
	h.step(time.Minute, 1)
	if err := h.s.Remove("p"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Status("p"); !errors.Is(err, ErrUnknownPipeline) {
		t.Errorf("status of a removed pipeline: %v", err)
	}
	if err := h.s.Remove("p"); !errors.Is(err, ErrUnknownPipeline) {
		t.Errorf("second Remove: %v", err)
	}
	h.step(time.Minute, 2)
	// Added again while the old run is in flight: still no overlap.
	h.set(PipelineSpec{Name: "p", Schedule: every, CatchUp: CatchUpSkip})
	h.step(time.Minute, 2)
	if n := len(h.jobsOf("p")); n != 1 || h.jobsOf("p")[0].Ctx.Err() != nil {
		t.Fatalf("%d runs; want the first alone, its context live", n)
	}
	close(gate)
	h.settle()
	if res := h.resultsOf("p"); len(res) == 0 || !res[0].Logical.Equal(at(10, 1, 0)) || res[0].Outcome != OutcomeSucceeded {
		t.Fatalf("the removed pipeline's run: %+v, want it to finish", res)
	}
	// The new version started once the old run was over, at 10:05; it
	// skips (catch_up: skip) 10:02 to 10:04, missed while the old run
	// held the pipeline.
	if diff := cmp.Diff([]time.Time{at(10, 1, 0), at(10, 5, 0)}, h.logical("p")); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if len(h.skipped()) != 1 || h.skipped()[0].Missed.Count != 3 || !h.skipped()[0].Missed.First.Equal(at(10, 2, 0)) {
		t.Errorf("skips %+v, want 10:02 to 10:04", h.skipped())
	}
	if err := h.s.Remove("p"); err != nil {
		t.Fatal(err)
	}
	h.step(time.Minute, 5)
	if n := len(h.jobsOf("p")); n != 2 {
		t.Errorf("%d runs after Remove, want none more", n-2)
	}
}

func TestTriggers(t *testing.T) {
	h := newHarness(t, Options{MaxQueued: 3})
	gate := make(chan struct{})
	h.on("p", func(ctx context.Context, j Job) error {
		if j.Trigger == TriggerManual && j.Logical.Equal(t0) {
			h.block(gate)
		}
		return nil
	})
	h.set(PipelineSpec{Name: "p", Schedule: mustParse(t, "every 1m", nil)})
	h.set(PipelineSpec{Name: "manual-only"})
	h.start()
	if _, err := h.s.Trigger("p", TriggerManual, time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	day := func(d int) time.Time { return time.Date(2024, 5, d, 0, 0, 0, 0, time.UTC) }
	for _, d := range []int{1, 2} {
		if _, err := h.s.Trigger("p", TriggerBackfill, day(d)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.s.Trigger("p", TriggerBackfill, day(1)); !errors.Is(err, ErrAlreadyQueued) {
		t.Errorf("duplicate backfill: %v", err)
	}
	if _, err := h.s.Trigger("p", TriggerManual, at(10, 0, 30)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Trigger("p", TriggerBackfill, day(3)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("fourth queued job: %v, want ErrQueueFull", err)
	}
	if _, err := h.s.Trigger("p", TriggerBackfill, time.Time{}); err == nil {
		t.Error("a backfill without a logical time was accepted")
	}
	if _, err := h.s.Trigger("p", "retry", t0); err == nil {
		t.Error("a retry trigger was accepted")
	}
	if _, err := h.s.Trigger("nope", TriggerManual, time.Time{}); !errors.Is(err, ErrUnknownPipeline) {
		t.Errorf("unknown pipeline: %v", err)
	}
	h.step(time.Minute, 1) // 10:01 is due while the manual run blocks
	close(gate)
	h.settle()
	var got []string
	for _, j := range h.jobsOf("p") {
		got = append(got, string(j.Trigger)+" "+j.Logical.Format(time.RFC3339))
	}
	want := []string{ // manual first, then the schedule, then backfills
		"manual 2024-06-01T10:00:00Z", "manual 2024-06-01T10:00:30Z", "schedule 2024-06-01T10:01:00Z",
		"backfill 2024-05-01T00:00:00Z", "backfill 2024-05-02T00:00:00Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	// A pipeline without a schedule runs only when triggered.
	h.step(time.Hour, 1)
	if _, err := h.s.Trigger("manual-only", TriggerManual, time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if got := h.logical("manual-only"); len(got) != 1 || !got[0].Equal(h.clock.Now()) {
		t.Errorf("manual-only ran %s", fmtTimes(got))
	}
	if err := h.s.Pause("manual-only"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Trigger("manual-only", TriggerManual, time.Time{}); !errors.Is(err, ErrPaused) {
		t.Errorf("trigger of a paused pipeline: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t, Options{})
	every := mustParse(t, "every 1m", nil)
	h.set(PipelineSpec{Name: "p", Schedule: every, CatchUp: CatchUpAll})
	h.start()
	h.step(time.Minute, 1)
	if err := h.s.Pause("p"); err != nil {
		t.Fatal(err)
	}
	h.step(time.Minute, 3)
	if st := h.status("p"); st.State != StatePaused || !st.Next.IsZero() || len(h.logical("p")) != 1 {
		t.Fatalf("paused: %+v, %d runs", st, len(h.logical("p")))
	}
	if err := h.s.Resume("p"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if diff := cmp.Diff(fireTimesIn(every, t0, at(10, 4, 0)), h.logical("p")); diff != "" {
		t.Errorf("after Resume with catch_up all (-want +got):\n%s", diff)
	}
}

// fakeLease is an in-memory Lease: tokens grow, another holder can be
// simulated, and renewals can be made to fail.
type fakeLease struct {
	h         *harness
	token     int64
	held      map[string]int64
	elsewhere atomic.Bool
	failRenew atomic.Bool
	failErr   atomic.Pointer[error]
	renewals  []int64
	released  []int64
}

func (l *fakeLease) Acquire(ctx context.Context, name string) (int64, bool, error) {
	if e := l.failErr.Load(); e != nil {
		return 0, false, *e
	}
	if l.elsewhere.Load() {
		return 0, false, nil
	}
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	if t, ok := l.held[name]; ok {
		return t, true, nil
	}
	l.token++
	l.held[name] = l.token
	return l.token, true, nil
}

func (l *fakeLease) Renew(ctx context.Context, name string, token int64) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	l.renewals = append(l.renewals, token)
	if l.failRenew.Load() {
		return errors.New("lease lost to another holder")
	}
	return nil
}

func (l *fakeLease) Release(ctx context.Context, name string, token int64) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	l.released = append(l.released, token)
	if l.held[name] == token {
		delete(l.held, name)
	}
	return nil
}

func TestLease(t *testing.T) {
	lease := &fakeLease{held: map[string]int64{}}
	h := newHarness(t, Options{Lease: lease, LeaseRenew: 10 * time.Second})
	lease.h = h
	h.on("p", h.honourSoft)
	h.set(PipelineSpec{Name: "p", Schedule: mustParse(t, "every 1m", nil), Retry: RetryPolicy{Retries: 1, Backoff: time.Second}})
	h.start()
	h.step(time.Minute, 1)
	h.step(10*time.Second, 2) // two renewals
	jobs := h.jobsOf("p")
	if len(jobs) != 1 || jobs[0].FencingToken != 1 {
		t.Fatalf("jobs %+v, want one with fencing token 1", jobs)
	}
	lease.failRenew.Store(true)
	h.step(10*time.Second, 1) // 10:01:30: the renewal fails, the run stops
	res := h.resultsOf("p")
	var le *LeaseError
	if len(res) != 1 || res[0].Outcome != OutcomeFailed || !errors.As(res[0].Err, &le) || le.Op != "renew" {
		t.Fatalf("after a lost lease: %+v, want a failed run with a renew LeaseError", res)
	}
	if Hard(jobs[0].Ctx).Err() == nil {
		t.Error("a run that lost its lease keeps its hard context")
	}
	if diff := cmp.Diff([]int64{1, 1, 1}, lease.renewals); diff != "" {
		t.Errorf("renewals (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1}, lease.released); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	if n := len(h.eventsWith("lease lost p@")); n != 1 {
		t.Errorf("%d lease lost events", n)
	}

	// Held by another process: the retry is skipped, not failed.
	lease.elsewhere.Store(true)
	h.step(time.Second, 1)
	if len(h.skipped()) != 1 || h.skipped()[0].Reason != SkipHeldElsewhere || h.skipped()[0].Job.Trigger != TriggerRetry {
		t.Fatalf("skips %+v, want the retry skipped as held elsewhere", h.skipped())
	}
	if n := len(h.jobsOf("p")); n != 1 {
		t.Errorf("a job held elsewhere ran")
	}
	if st := h.status("p"); st.State != StateIdle || st.ConsecutiveFailures != 0 {
		t.Errorf("status after a skip %+v", st)
	}

	// The store unreachable: the attempt fails and is retried.
	lease.elsewhere.Store(false)
	down := errors.New("state store unreachable")
	lease.failErr.Store(&down)
	h.clock.Set(at(10, 2, 0))
	h.settle()
	res = h.resultsOf("p")
	if last := res[len(res)-1]; last.Outcome != OutcomeFailed || !errors.Is(last.Err, down) || last.Retry.IsZero() {
		t.Errorf("acquire error: %+v, want a failed attempt with a retry", last)
	}
	lease.failErr.Store(nil)
	lease.failRenew.Store(false)
	h.step(time.Second, 1)
	jobs = h.jobsOf("p")
	if last := jobs[len(jobs)-1]; last.Trigger != TriggerRetry || last.FencingToken != 2 {
		t.Errorf("retry after the store came back: %s with token %d, want token 2", last.Job, last.FencingToken)
	}
}

func TestTimeoutSoftThenHard(t *testing.T) {
	h := newHarness(t, Options{Grace: 10 * time.Second})
	var softCause atomic.Pointer[error]
	h.on("p", func(ctx context.Context, j Job) error {
		h.block(ctx.Done())
		cause := context.Cause(ctx)
		softCause.Store(&cause)
		if Hard(ctx).Err() != nil {
			return errors.New("hard context cancelled with the soft one")
		}
		h.block(Hard(ctx).Done()) // keeps going past the soft stop
		return Hard(ctx).Err()
	})
	h.set(PipelineSpec{Name: "p", Schedule: mustParse(t, "every 1h", nil), Timeout: 30 * time.Second})
	h.start()
	h.clock.Set(at(11, 0, 0))
	h.settle()
	h.step(30*time.Second, 1)
	var te *TimeoutError
	if c := softCause.Load(); c == nil || !errors.As(*c, &te) || te.Timeout != 30*time.Second {
		t.Fatalf("soft cause %v, want a TimeoutError", softCause.Load())
	}
	if len(h.resultsOf("p")) != 0 {
		t.Fatal("the run ended at its soft stop")
	}
	h.step(5*time.Second, 1) // half the grace period: the hard stop
	res := h.resultsOf("p")
	if len(res) != 1 || !errors.As(res[0].Err, &te) || !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("result %+v, want a TimeoutError wrapping the run's error", res)
	}
	if len(h.eventsWith("stuck")) != 0 {
		t.Error("a run that returned at its hard stop was declared stuck")
	}
	if d := res[0].Finished.Sub(res[0].Started); d != 35*time.Second {
		t.Errorf("run took %v on the clock, want 35s", d)
	}
}

func TestSetValidates(t *testing.T) {
	s, err := New(Options{Run: func(context.Context, Job) error { return nil }, Clock: NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []PipelineSpec{
		{},
		{Name: "p", CatchUp: "sometimes"},
		{Name: "p", Concurrency: -1},
		{Name: "p", Timeout: -time.Second},
		{Name: "p", Retry: RetryPolicy{Retries: -1}},
		{Name: "p", Retry: RetryPolicy{Jitter: 2}},
		{Name: "p", QuarantineAfter: -1},
	} {
		if err := s.Set(spec); err == nil {
			t.Errorf("Set(%+v) accepted", spec)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without Run accepted")
	}
	if diff := cmp.Diff([]Status(nil), s.Statuses(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("refused specs were kept: %s", diff)
	}
}

// TestSchedulerAcrossDST runs the DST table through the scheduler on a
// fake clock that walks each day in five-minute steps: the runs' logical
// times are exactly the table's, each run on time (catch_up skip with a
// 5s misfire would drop a late one).
func TestSchedulerAcrossDST(t *testing.T) {
	chicago, cases := dstCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Options{Limits: Limits{Misfire: 5 * time.Second}})
			start := c.day.Add(-time.Minute)
			end := time.Date(c.day.Year(), c.day.Month(), c.day.Day()+1, 0, 0, 0, 0, chicago)
			h.clock.Set(start)
			h.set(PipelineSpec{Name: "p", Schedule: mustParse(t, c.spec, chicago), CatchUp: CatchUpSkip})
			h.start()
			for h.clock.Now().Before(end) {
				h.step(5*time.Minute, 1)
			}
			var got []string
			for _, j := range h.jobsOf("p") {
				if j.Logical.Before(end) {
					got = append(got, j.Logical.In(chicago).Format("15:04 MST"))
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("runs of %q on %s (-want +got):\n%s", c.spec, c.day.Format(time.DateOnly), diff)
			}
			if len(h.skipped()) != 0 {
				t.Errorf("skipped %+v", h.skipped())
			}
		})
	}
}

// TestSystemClock runs a timeout on the machine's clock: its timers are
// real, and the attempt is cancelled within its 20ms.
func TestSystemClock(t *testing.T) {
	done := make(chan Result, 1)
	s, err := New(Options{
		Run: func(ctx context.Context, j Job) error {
			<-ctx.Done()
			return context.Cause(ctx)
		},
		Hooks: Hooks{RunFinished: func(_ Job, r Result) { done <- r }},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(PipelineSpec{Name: "p", Timeout: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Trigger("p", TriggerManual, time.Time{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		var te *TimeoutError
		if !errors.As(r.Err, &te) || r.Finished.Sub(r.Started) < 20*time.Millisecond {
			t.Errorf("result %+v, want a TimeoutError after 20ms", r)
		}
	case <-time.After(waitLimit):
		t.Fatal("the timeout never fired")
	}
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}
