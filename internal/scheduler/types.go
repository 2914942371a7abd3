package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// Trigger is why a job runs.
type Trigger string

const (
	TriggerSchedule Trigger = "schedule" // a fire time of the pipeline's schedule
	TriggerManual   Trigger = "manual"   // an operator asked for a run now
	TriggerRetry    Trigger = "retry"    // an earlier attempt of the same logical time failed
	TriggerBackfill Trigger = "backfill" // an operator asked for a past logical time
)

// Job is one attempt of one run, as handed to Options.Run.
type Job struct {
	Pipeline string
	// Logical is the run's logical time: its data window comes from it,
	// never from the wall clock. Every attempt of a run has the same one.
	Logical time.Time
	Trigger Trigger
	// Origin is the trigger of the run's first attempt (schedule, manual
	// or backfill): a retry of a backfill is still a backfill, which must
	// not move the live cursor.
	Origin Trigger
	// Attempt counts from 1; a retry has Attempt > 1.
	Attempt int
	// FencingToken is the token of the lease the run holds, 0 without a
	// Lease. A sink that stores it with its writes refuses a writer whose
	// token is older than the last one it saw: a process that lost its
	// lease while paused cannot commit after the next holder.
	FencingToken int64
}

func (j Job) String() string {
	return fmt.Sprintf("%s@%s (%s, attempt %d)", j.Pipeline, j.Logical.Format(time.RFC3339), j.Trigger, j.Attempt)
}

// RetryPolicy is how failed attempts are retried.
type RetryPolicy struct {
	// Retries is how many times a failed attempt is retried; 0: never.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one; 10s when zero.
	Backoff time.Duration
	// MaxBackoff caps the wait; 5m when zero.
	MaxBackoff time.Duration
	// Jitter, in [0, 1], shortens each wait by a random fraction of up to
	// Jitter, so that pipelines that failed together do not retry together.
	Jitter float64
}

const (
	defaultBackoff    = 10 * time.Second
	defaultMaxBackoff = 5 * time.Minute
)

// delay is the wait after attempt failed; rnd is in [0, 1).
func (r RetryPolicy) delay(attempt int, rnd float64) time.Duration {
	d := r.Backoff
	for i := 1; i < attempt && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return d - time.Duration(rnd*r.Jitter*float64(d))
}

// PipelineSpec is how one pipeline is scheduled. The scheduler knows
// nothing else of it: Options.Run maps the name to the pipeline itself.
type PipelineSpec struct {
	Name string
	// Schedule is nil for a pipeline that runs only when triggered.
	Schedule Schedule
	// CatchUp is the policy for missed fire times; CatchUpOnce when empty.
	CatchUp CatchUp
	// Concurrency is how many runs of the pipeline may be in flight at
	// once; 1 (the default) never overlaps two runs, which incremental
	// sources need.
	Concurrency int
	// Timeout bounds one attempt; 0: none. See Scheduler for what happens
	// to an attempt that outlives it.
	Timeout time.Duration
	Retry   RetryPolicy
	// QuarantineAfter is how many consecutive failed runs (each after its
	// retries) quarantine the pipeline until Resume; 0: never.
	QuarantineAfter int
	// LastLogical is the latest scheduled logical time that already ran,
	// from run history; zero for a pipeline that never ran, whose missed
	// times start when it is first scheduled.
	LastLogical time.Time
}

func (p *PipelineSpec) normalize() error {
	var bad []string
	if p.Name == "" {
		bad = append(bad, "empty name")
	}
	c, err := ParseCatchUp(string(p.CatchUp))
	if err != nil {
		bad = append(bad, err.Error())
	}
	p.CatchUp = c
	if p.Concurrency == 0 {
		p.Concurrency = 1
	}
	if p.Concurrency < 0 {
		bad = append(bad, fmt.Sprintf("concurrency %d is negative", p.Concurrency))
	}
	if p.Timeout < 0 {
		bad = append(bad, fmt.Sprintf("timeout %v is negative", p.Timeout))
	}
	if p.QuarantineAfter < 0 {
		bad = append(bad, fmt.Sprintf("quarantine_after %d is negative", p.QuarantineAfter))
	}
	r := &p.Retry
	if r.Retries < 0 {
		bad = append(bad, fmt.Sprintf("retries %d is negative", r.Retries))
	}
	if r.Backoff < 0 || r.MaxBackoff < 0 {
		bad = append(bad, "negative backoff")
	}
	if !(r.Jitter >= 0 && r.Jitter <= 1) { // NaN too
		bad = append(bad, fmt.Sprintf("jitter %v is not in [0, 1]", r.Jitter))
	}
	if r.Backoff == 0 {
		r.Backoff = defaultBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(defaultMaxBackoff, r.Backoff)
	}
	if len(bad) > 0 {
		return fmt.Errorf("scheduler: pipeline %q: %s", p.Name, strings.Join(bad, "; "))
	}
	return nil
}

// Lease keeps the runs of a pipeline to one process at a time when several
// processes share a state store. The scheduler acquires it before a run
// (once for all the runs of a pipeline in flight in this process), renews
// it while a run goes on and releases it after the last one. Every method
// is called from a run's goroutine or timer, never with a scheduler lock
// held; ctx bounds the call.
type Lease interface {
	// Acquire takes the lease of pipeline for this process. ok false with
	// a nil error means another process holds it: the job is skipped and
	// reported (Hooks.Skipped, SkipHeldElsewhere). Acquiring a lease that
	// this process still holds must succeed with the same token. An error
	// (the store unreachable) fails the attempt, which may be retried.
	Acquire(ctx context.Context, pipeline string) (token int64, ok bool, err error)
	// Renew extends the lease held with token. An error means the lease
	// may be lost: the run's contexts are cancelled (Hooks.LeaseLost), and
	// its writes are refused anyway by the sink's fencing check.
	Renew(ctx context.Context, pipeline string, token int64) error
	// Release gives the lease up so that another process may take it at
	// once. An error is logged: the lease expires by itself.
	Release(ctx context.Context, pipeline string, token int64) error
}

// Hooks are called on events that the daemon turns into logs, metrics and
// alerts. Any may be nil. They are called without a scheduler lock held,
// from the goroutine where the event happened, concurrently for different
// runs; for one run, RunStarted comes before RunFinished. A hook may call
// the scheduler's methods but Drain (which would wait for the run that
// calls the hook); it should return quickly.
type Hooks struct {
	// RunStarted: an attempt is about to call Options.Run.
	RunStarted func(Job)
	// RunFinished: an attempt returned (every RunStarted gets one).
	RunFinished func(Job, Result)
	// RetryScheduled: next will run at at, because of cause.
	RetryScheduled func(next Job, at time.Time, cause error)
	// Quarantined: the pipeline failed failures runs in a row, the last
	// with cause; it runs again after Resume.
	Quarantined func(pipeline string, failures int, cause error)
	// PanicRecovered: Run panicked; the attempt failed with p.
	PanicRecovered func(Job, *PanicError)
	// TimedOut: the attempt outlived its timeout; its context is cancelled.
	TimedOut func(Job, time.Duration)
	// Stuck: the attempt still had not returned a grace period after its
	// timeout. Its pipeline runs nothing else until it returns.
	Stuck func(Job)
	// LeaseLost: renewing the run's lease failed; its context is cancelled.
	LeaseLost func(Job, error)
	// Skipped: logical times that do not run (missed under the catch-up
	// policy, or held by another process).
	Skipped func(Skip)
}

// Outcome is how an attempt ended.
type Outcome string

const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	// OutcomeCanceled: Drain or the end of Start's context stopped the
	// attempt; it is neither a failure nor retried.
	OutcomeCanceled Outcome = "canceled"
)

// Result is how an attempt ended.
type Result struct {
	Outcome           Outcome
	Err               error // nil iff succeeded
	Started, Finished time.Time
	// Retry is when the next attempt runs, zero when none follows.
	Retry time.Time
}

// SkipReason is why logical times did not run.
type SkipReason string

const (
	// SkipMissed: fire times missed while the pipeline could not run, that
	// its catch-up policy does not run.
	SkipMissed SkipReason = "missed"
	// SkipHeldElsewhere: another process holds the pipeline's lease.
	SkipHeldElsewhere SkipReason = "skipped: held elsewhere"
)

// Skip reports logical times that do not run.
type Skip struct {
	Pipeline string
	Reason   SkipReason
	Job      Job     // SkipHeldElsewhere: the job not run
	Missed   Skipped // SkipMissed: the fire times not run
}

// State is what a pipeline is doing, for status displays.
type State string

const (
	StateIdle        State = "idle"        // waiting for its next fire time
	StateRunning     State = "running"     // a run is in flight
	StateRetrying    State = "retrying"    // waiting to retry a failed attempt
	StatePaused      State = "paused"      // by an operator; nothing starts
	StateQuarantined State = "quarantined" // by repeated failures; nothing starts
	StateStuck       State = "stuck"       // an attempt outlived its timeout and grace
)

// Status is a pipeline's scheduling state.
type Status struct {
	Name  string
	State State
	// Next is the next logical time to run on schedule; zero when paused,
	// quarantined, without a schedule, or never firing again.
	Next time.Time
	// LastLogical is the latest scheduled logical time that started.
	LastLogical         time.Time
	ConsecutiveFailures int
	LastError           error // of the last failed run; nil after a success
	InFlight            int   // attempts running, stuck ones included
	Stuck               int
	Queued              int       // manual and backfill jobs waiting
	RetryAt             time.Time // earliest pending retry
	Paused, Quarantined bool
}

// Options configure a Scheduler.
type Options struct {
	// Run runs one attempt; required. ctx is cancelled softly (stop
	// reading, finish and commit what is in flight) at the attempt's
	// timeout, by Drain, or when its lease is lost; context.Cause tells
	// which. Hard(ctx) is cancelled when the attempt must stop at once.
	// Remove and Pause let an attempt finish. A panic is recovered and
	// counted as a failure.
	Run func(ctx context.Context, job Job) error
	// Clock is SystemClock() when nil.
	Clock Clock
	// MaxConcurrent is the most attempts running at once over all
	// pipelines; 0: no limit.
	MaxConcurrent int
	// Logger is a discarding one when nil.
	Logger *slog.Logger
	Hooks  Hooks
	// Lease, when set, keeps each pipeline's runs to one process.
	Lease Lease
	// LeaseRenew is how often a run's lease is renewed; 10s when zero. It
	// should be a third of the lease's time to live at most.
	LeaseRenew time.Duration
	// Grace is how long an attempt past its timeout has to return: its
	// hard context is cancelled at half of it, and at its end the attempt
	// is declared stuck. 30s when zero.
	Grace time.Duration
	// Limits tune the catch-up decisions.
	Limits Limits
	// MaxQueued bounds the manual and backfill jobs waiting per pipeline;
	// 1000 when zero.
	MaxQueued int
	// Rand returns a number in [0, 1) for retry jitter; math/rand/v2's
	// Float64 when nil.
	Rand func() float64
}

// Errors of the scheduler's methods, wrapped with the pipeline's name.
var (
	ErrUnknownPipeline = errors.New("no such pipeline")
	ErrPaused          = errors.New("pipeline is paused or quarantined; resume it first")
	ErrQueueFull       = errors.New("too many runs queued")
	ErrAlreadyQueued   = errors.New("a run of this logical time is already queued")
	ErrDraining        = errors.New("scheduler is draining")
	ErrStarted         = errors.New("scheduler already started")
)

// PanicError is a panic recovered from Options.Run.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("run panicked: %v\n%s", e.Value, e.Stack)
}

// TimeoutError is the cause of an attempt's cancellation at its timeout,
// and wraps the error it then returned.
type TimeoutError struct {
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("run timed out after %v", e.Timeout)
	}
	return fmt.Sprintf("run timed out after %v: %v", e.Timeout, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// LeaseError is a failure of the pipeline's lease: acquiring it, or
// renewing it during the run (then it is the cause of the cancellation).
type LeaseError struct {
	Op  string // "acquire" or "renew"
	Err error
}

func (e *LeaseError) Error() string { return fmt.Sprintf("lease %s: %v", e.Op, e.Err) }
func (e *LeaseError) Unwrap() error { return e.Err }

// DrainError reports the attempts still running when Drain's context
// ended; their hard contexts were cancelled.
type DrainError struct {
	Running []Job
	Err     error // the context's cause
}

func (e *DrainError) Error() string {
	names := make([]string, len(e.Running))
	for i, j := range e.Running {
		names[i] = j.String()
	}
	sort.Strings(names)
	return fmt.Sprintf("scheduler: drain: %v with %d runs in flight: %s", e.Err, len(names), strings.Join(names, ", "))
}

func (e *DrainError) Unwrap() error { return e.Err }

// errDraining is the cause of the soft cancellation of runs by Drain.
var errDraining = fmt.Errorf("%w: runs stop at a batch boundary", ErrDraining)

type hardKey struct{}

// Hard returns the hard context of an attempt's context: cancelled when
// the attempt must stop at once rather than finish its batches (half the
// grace period after its timeout, the end of Drain's context, a lost
// lease). For a context that is not an attempt's, it returns ctx.
func Hard(ctx context.Context) context.Context {
	if h, ok := ctx.Value(hardKey{}).(context.Context); ok {
		return h
	}
	return ctx
}
