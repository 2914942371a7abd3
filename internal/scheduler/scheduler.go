package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"
)

// recheck bounds the scheduler's sleep while a pipeline waits for a fire
// time: the system clock's timers follow the monotonic clock, so a jump
// of the wall clock is noticed within this long.
const recheck = time.Minute

const (
	defaultLeaseRenew = 10 * time.Second
	defaultGrace      = 30 * time.Second
	defaultMaxQueued  = 1000
)

// Scheduler runs pipelines on their schedules. See the package doc for its
// guarantees. Its methods are safe for concurrent use.
type Scheduler struct {
	o     Options
	clock Clock
	log   *slog.Logger

	mu       sync.Mutex
	pipes    map[string]*pipeline
	wake     wakeHeap    // pipelines waiting for a time: a fire time or a retry
	waitQ    []*pipeline // pipelines with a job waiting for a global slot, first come first served
	running  int         // global slots held
	runs     map[*run]struct{}
	busy     int // groups of hooks being called, for Settle
	started  bool
	draining bool
	base     context.Context
	stopBase func() bool
	timer    Timer // fires at timerAt, the earliest wake
	timerAt  time.Time
	// slack is how far the clock may move while a decision is taken
	// before it is taken again: none for a FakeClock, whose moves are
	// the test's steps; a millisecond for the others, which always move.
	slack   time.Duration
	changed chan struct{} // closed and cleared at each change Settle waits for
	noRuns  chan struct{} // the same, for WaitIdle, only when no attempt is in flight
	drained chan struct{} // closed when draining and no run is left

	wg  sync.WaitGroup // run goroutines
	cbs sync.WaitGroup // timer callbacks in progress
}

// pipeline is the scheduling state of one pipeline; guarded by
// Scheduler.mu.
type pipeline struct {
	spec PipelineSpec
	// considered is the latest fire time decided (run or skipped); the
	// next decision looks at the fire times after it. Zero until the
	// pipeline is first evaluated, when it becomes now for a pipeline
	// that never ran.
	considered  time.Time
	lastLogical time.Time
	backlog     []time.Time // decided fire times waiting for a slot, oldest first
	manual      []Job
	backfill    []Job
	retries     []pendingRetry // each holds one of the pipeline's slots
	waiting     *Job           // decided, waiting for a global slot; holds a slot
	inFlight    int            // attempts running, stuck ones included
	stuck       int
	failures    int
	lastErr     error
	paused      bool
	quarantined bool
	removed     bool // by Remove; forgotten once no attempt is in flight
	leaseToken  int64
	leaseUsers  int
	wakeAt      time.Time
	heapIdx     int // in Scheduler.wake, -1 when not
}

type pendingRetry struct {
	job Job
	at  time.Time
}

// used is how many of the pipeline's Concurrency slots are taken.
func (p *pipeline) used() int {
	n := p.inFlight + len(p.retries)
	if p.waiting != nil {
		n++
	}
	return n
}

// New returns a scheduler; it starts nothing before Start.
func New(o Options) (*Scheduler, error) {
	if o.Run == nil {
		return nil, errors.New("scheduler: Options.Run is required")
	}
	if o.MaxConcurrent < 0 {
		return nil, fmt.Errorf("scheduler: MaxConcurrent %d is negative", o.MaxConcurrent)
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LeaseRenew <= 0 {
		o.LeaseRenew = defaultLeaseRenew
	}
	if o.Grace <= 0 {
		o.Grace = defaultGrace
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = defaultMaxQueued
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	o.Limits = o.Limits.withDefaults()
	s := &Scheduler{
		o:     o,
		clock: o.Clock,
		log:   o.Logger,
		pipes: make(map[string]*pipeline),
		runs:  make(map[*run]struct{}),
		slack: time.Millisecond,
	}
	if _, fake := o.Clock.(*FakeClock); fake {
		s.slack = 0
	}
	return s, nil
}

// effects collects what must happen after the lock is released: hooks.
type effects struct {
	hooks []func()
}

func (fx *effects) add(f func()) { fx.hooks = append(fx.hooks, f) }

// unlock releases s.mu, then calls the hooks collected in fx. Settle
// counts them as work in progress until they returned.
func (s *Scheduler) unlock(fx *effects) {
	if len(fx.hooks) == 0 {
		s.notifyLocked()
		s.mu.Unlock()
		return
	}
	s.busy++
	s.mu.Unlock()
	for _, f := range fx.hooks {
		f()
	}
	s.mu.Lock()
	s.busy--
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Scheduler) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	// WaitIdle needs no attempt in flight: it is not woken before.
	if s.noRuns != nil && len(s.runs) == 0 {
		close(s.noRuns)
		s.noRuns = nil
	}
}

// Start starts scheduling. ctx bounds the scheduler: when it is done,
// nothing starts any more and the contexts of the runs in flight are
// cancelled (soft and hard); Drain still waits for them.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return fmt.Errorf("scheduler: start: %w", ErrDraining)
	}
	if s.started {
		s.mu.Unlock()
		return fmt.Errorf("scheduler: start: %w", ErrStarted)
	}
	s.started = true
	s.base = ctx
	s.stopBase = context.AfterFunc(ctx, s.stop)
	var fx effects
	now := s.clock.Now()
	for _, name := range s.namesLocked() { // in name order, for a stable start
		s.evaluateLocked(s.pipes[name], now, &fx)
	}
	s.pumpLocked(now, &fx)
	s.unlock(&fx)
	return nil
}

// stop is called when Start's context is done.
func (s *Scheduler) stop() {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
}

// stopLocked stops starting runs; it is where draining begins.
func (s *Scheduler) stopLocked() {
	if s.draining {
		return
	}
	s.draining = true
	if s.timer != nil {
		s.timer.Stop()
		s.timerAt = time.Time{}
	}
	for _, p := range s.waitQ {
		p.waiting = nil
	}
	s.waitQ = nil
	for s.wake.Len() > 0 {
		heap.Pop(&s.wake)
	}
	for r := range s.runs {
		r.cancelSoft(errDraining)
	}
	s.checkDrainedLocked()
}

func (s *Scheduler) checkDrainedLocked() {
	if s.draining && len(s.runs) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// Drain stops starting runs, cancels the contexts of the runs in flight
// softly (context.Cause is ErrDraining) so that they stop at a batch
// boundary and commit, and waits for them until ctx is done. Then it
// cancels their hard contexts and returns a *DrainError naming them; an
// attempt that ignores its contexts keeps its goroutine until it returns.
// Pending retries and queued jobs are dropped. Drain may be called more
// than once; afterwards the scheduler starts nothing.
func (s *Scheduler) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.stopLocked()
	if s.stopBase != nil {
		s.stopBase()
	}
	var done chan struct{}
	if len(s.runs) > 0 {
		if s.drained == nil {
			s.drained = make(chan struct{})
		}
		done = s.drained
	}
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			s.mu.Lock()
			err := &DrainError{Err: context.Cause(ctx)}
			for r := range s.runs {
				r.cancelHard(err.Err)
				err.Running = append(err.Running, r.job)
			}
			s.mu.Unlock()
			if len(err.Running) > 0 {
				return err
			}
		}
	}
	s.cbs.Wait()
	s.wg.Wait()
	return nil
}

// Set adds a pipeline or replaces its spec. A replaced pipeline keeps its
// runs in flight, its pending retries, queued jobs, failures and pause or
// quarantine: a new version never overlaps a run of the old one. When its
// schedule changes, fire times before now of the new schedule are not
// missed ones. LastLogical never moves a pipeline's decisions back.
func (s *Scheduler) Set(spec PipelineSpec) error {
	if err := spec.normalize(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return fmt.Errorf("scheduler: set %q: %w", spec.Name, ErrDraining)
	}
	now := s.clock.Now()
	p := s.pipes[spec.Name]
	if p == nil {
		p = &pipeline{heapIdx: -1, considered: spec.LastLogical}
		s.pipes[spec.Name] = p
	} else {
		if p.removed { // added again while a run of the removed one is in flight
			p.removed, p.paused, p.quarantined, p.failures, p.lastErr = false, false, false, 0, nil
		}
		if scheduleString(p.spec.Schedule) != scheduleString(spec.Schedule) {
			p.backlog = nil
			if !p.considered.IsZero() && now.After(p.considered) {
				p.considered = now
			}
		}
		if spec.LastLogical.After(p.considered) {
			p.considered = spec.LastLogical
		}
	}
	if spec.LastLogical.After(p.lastLogical) {
		p.lastLogical = spec.LastLogical
	}
	p.spec = spec
	var fx effects
	s.evaluateLocked(p, now, &fx)
	s.pumpLocked(now, &fx)
	s.unlock(&fx)
	return nil
}

func scheduleString(s Schedule) string {
	if s == nil {
		return ""
	}
	return s.String()
}

// Remove stops scheduling a pipeline: nothing more starts, its queued jobs
// and pending retries are dropped, and a run in flight finishes.
func (s *Scheduler) Remove(name string) error {
	s.mu.Lock()
	p := s.pipes[name]
	if p == nil || p.removed {
		s.mu.Unlock()
		return fmt.Errorf("scheduler: remove %q: %w", name, ErrUnknownPipeline)
	}
	p.removed = true
	p.manual, p.backfill, p.backlog, p.retries = nil, nil, nil, nil
	s.unwaitLocked(p, false, time.Time{})
	if p.heapIdx >= 0 {
		heap.Remove(&s.wake, p.heapIdx)
	}
	s.forgetLocked(p, name)
	var fx effects
	s.pumpLocked(s.clock.Now(), &fx)
	s.unlock(&fx)
	return nil
}

func (s *Scheduler) forgetLocked(p *pipeline, name string) {
	if p.removed && p.inFlight == 0 && s.pipes[name] == p {
		delete(s.pipes, name)
	}
}

// Pause stops starting runs of a pipeline until Resume; a run in flight
// finishes, and a pending retry waits. Fire times missed meanwhile follow
// the catch-up policy on Resume.
func (s *Scheduler) Pause(name string) error {
	s.mu.Lock()
	p, err := s.lookupLocked("pause", name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	p.paused = true
	now := s.clock.Now()
	s.unwaitLocked(p, true, now)
	var fx effects
	s.evaluateLocked(p, now, &fx)
	s.pumpLocked(now, &fx)
	s.unlock(&fx)
	return nil
}

// Resume lifts a pause and a quarantine (and then forgets the failures
// that led to it).
func (s *Scheduler) Resume(name string) error {
	s.mu.Lock()
	p, err := s.lookupLocked("resume", name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	p.paused = false
	if p.quarantined {
		p.quarantined, p.failures = false, 0
	}
	now := s.clock.Now()
	var fx effects
	s.evaluateLocked(p, now, &fx)
	s.pumpLocked(now, &fx)
	s.unlock(&fx)
	return nil
}

// Trigger queues a run of a pipeline: TriggerManual at logical time
// logical (now when zero), or TriggerBackfill at logical (required), which
// the run must not use to move the live cursor. A queued job starts as
// soon as the pipeline has a free slot — after the run in flight, for a
// pipeline whose concurrency is 1: a trigger never overlaps runs, and
// never waits for the next fire time. Manual jobs go before scheduled
// ones, backfills after them. Trigger refuses a paused or quarantined
// pipeline (ErrPaused), a full queue (ErrQueueFull), and a logical time
// already queued with the same trigger (ErrAlreadyQueued), so that
// repeating a request is harmless.
func (s *Scheduler) Trigger(name string, trigger Trigger, logical time.Time) (Job, error) {
	op := fmt.Sprintf("trigger %s of", trigger)
	switch trigger {
	case TriggerManual:
	case TriggerBackfill:
		if logical.IsZero() {
			return Job{}, fmt.Errorf("scheduler: %s %q: a backfill needs a logical time", op, name)
		}
	default:
		return Job{}, fmt.Errorf("scheduler: trigger of %q: %q is not manual or backfill", name, trigger)
	}
	s.mu.Lock()
	p, err := s.lookupLocked(op, name)
	if err != nil {
		s.mu.Unlock()
		return Job{}, err
	}
	now := s.clock.Now()
	if logical.IsZero() {
		logical = now
	}
	job := Job{Pipeline: name, Logical: logical, Trigger: trigger, Origin: trigger, Attempt: 1}
	q := &p.manual
	if trigger == TriggerBackfill {
		q = &p.backfill
	}
	switch {
	case p.paused || p.quarantined:
		err = ErrPaused
	case len(p.manual)+len(p.backfill) >= s.o.MaxQueued:
		err = ErrQueueFull
	case slices.ContainsFunc(*q, func(j Job) bool { return j.Logical.Equal(logical) }) ||
		(p.waiting != nil && p.waiting.Trigger == trigger && p.waiting.Logical.Equal(logical)):
		err = ErrAlreadyQueued
	}
	if err != nil {
		s.mu.Unlock()
		return Job{}, fmt.Errorf("scheduler: %s %q at %s: %w", op, name, logical.Format(time.RFC3339), err)
	}
	*q = append(*q, job)
	var fx effects
	s.evaluateLocked(p, now, &fx)
	s.pumpLocked(now, &fx)
	s.unlock(&fx)
	return job, nil
}

func (s *Scheduler) lookupLocked(op, name string) (*pipeline, error) {
	p := s.pipes[name]
	if p == nil || p.removed {
		return nil, fmt.Errorf("scheduler: %s %q: %w", op, name, ErrUnknownPipeline)
	}
	if s.draining {
		return nil, fmt.Errorf("scheduler: %s %q: %w", op, name, ErrDraining)
	}
	return p, nil
}

// Status returns the scheduling state of a pipeline.
func (s *Scheduler) Status(name string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pipes[name]
	if p == nil || p.removed {
		return Status{}, fmt.Errorf("scheduler: status of %q: %w", name, ErrUnknownPipeline)
	}
	return s.statusLocked(name, p, s.clock.Now()), nil
}

// Statuses returns the state of every pipeline, by name.
func (s *Scheduler) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []Status
	for _, name := range s.namesLocked() {
		if p := s.pipes[name]; !p.removed {
			out = append(out, s.statusLocked(name, p, now))
		}
	}
	return out
}

func (s *Scheduler) namesLocked() []string {
	names := make([]string, 0, len(s.pipes))
	for name := range s.pipes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (s *Scheduler) statusLocked(name string, p *pipeline, now time.Time) Status {
	st := Status{
		Name:                name,
		LastLogical:         p.lastLogical,
		ConsecutiveFailures: p.failures,
		LastError:           p.lastErr,
		InFlight:            p.inFlight,
		Stuck:               p.stuck,
		Queued:              len(p.manual) + len(p.backfill),
		Paused:              p.paused,
		Quarantined:         p.quarantined,
	}
	for _, r := range p.retries {
		if st.RetryAt.IsZero() || r.at.Before(st.RetryAt) {
			st.RetryAt = r.at
		}
	}
	switch {
	case p.stuck > 0:
		st.State = StateStuck
	case p.quarantined:
		st.State = StateQuarantined
	case p.paused:
		st.State = StatePaused
	case p.inFlight > 0:
		st.State = StateRunning
	case len(p.retries) > 0:
		st.State = StateRetrying
	default:
		st.State = StateIdle
	}
	if !p.paused && !p.quarantined && !s.draining && p.spec.Schedule != nil {
		switch {
		case len(p.backlog) > 0:
			st.Next = p.backlog[0]
		case p.waiting != nil && p.waiting.Trigger == TriggerSchedule:
			st.Next = p.waiting.Logical
		default:
			last := p.considered
			if last.IsZero() {
				last = now
			}
			d := Due(p.spec.Schedule, p.spec.CatchUp, last, now, s.o.Limits)
			if len(d.Run) > 0 {
				st.Next = d.Run[0]
			} else {
				st.Next = d.Next
			}
		}
	}
	return st
}

// Settle waits until the scheduler has nothing left to do at the clock's
// current time, or ctx is done: no decision or hook is in progress, no
// job waits to start for a reason other than a full global limit, every
// attempt in flight is inside Options.Run, and the scheduler's timer is
// not due. It is meant for tests driving a FakeClock: move the clock, then
// Settle, then look. Its answer is a moment's: an attempt inside Run may
// return right after, and its pipeline start its next job. When every
// Run returns, WaitIdle gives a fixed point instead.
func (s *Scheduler) Settle(ctx context.Context) error {
	return s.waitUntil(ctx, &s.changed, s.quietLocked)
}

// WaitIdle waits until Settle's conditions hold with no attempt in flight
// at all, or ctx is done: after it, nothing happens until the clock moves
// or a method is called. A test whose runs all return moves a FakeClock,
// then calls WaitIdle, then looks.
func (s *Scheduler) WaitIdle(ctx context.Context) error {
	return s.waitUntil(ctx, &s.noRuns, func(now time.Time) bool { return len(s.runs) == 0 && s.quietLocked(now) })
}

// waitUntil waits until cond, called with s.mu held, holds, checking it
// again each time the channel *signal is closed.
func (s *Scheduler) waitUntil(ctx context.Context, signal *chan struct{}, cond func(now time.Time) bool) error {
	for {
		s.mu.Lock()
		if cond(s.clock.Now()) {
			s.mu.Unlock()
			return nil
		}
		if *signal == nil {
			*signal = make(chan struct{})
		}
		ch := *signal
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (s *Scheduler) quietLocked(now time.Time) bool {
	if s.busy > 0 || due(s.timerAt, now) {
		return false
	}
	if len(s.waitQ) > 0 && s.globalFreeLocked() {
		return false
	}
	// The timers of runs are not looked at: a FakeClock runs their
	// callbacks before Advance or Set returns.
	for r := range s.runs {
		if r.phase != phaseRunning {
			return false
		}
	}
	return true
}

func due(at, now time.Time) bool { return !at.IsZero() && !at.After(now) }

func (s *Scheduler) globalFreeLocked() bool {
	return s.o.MaxConcurrent == 0 || s.running < s.o.MaxConcurrent
}

// onTimer is the callback of s.timer.
func (s *Scheduler) onTimer() {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.cbs.Add(1)
	defer s.cbs.Done()
	s.timerAt = time.Time{}
	var fx effects
	s.pumpLocked(s.clock.Now(), &fx)
	s.unlock(&fx)
}

// pumpLocked evaluates the pipelines whose time has come, starts waiting
// jobs while global slots are free, and sets the timer for the next wake.
func (s *Scheduler) pumpLocked(now time.Time, fx *effects) {
	if !s.started || s.draining {
		return
	}
	for force := false; ; force = true {
		for s.wake.Len() > 0 && !s.wake[0].wakeAt.After(now) {
			p := heap.Pop(&s.wake).(*pipeline)
			s.evaluateLocked(p, now, fx)
		}
		s.startWaitingLocked(now, fx)
		s.armLocked(now, force)
		// A timer is set for a duration from the clock's reading when it
		// is set. Had the clock moved since now was read (a FakeClock moved
		// by the test while a run's goroutine decided), the timer would
		// fire late and a due wake wait for it: decide again at the new
		// time until the clock holds still.
		later := s.clock.Now()
		if d := later.Sub(now); d == 0 || (s.slack > 0 && d > 0 && d < s.slack) {
			return
		}
		now = later
	}
}

func (s *Scheduler) armLocked(now time.Time, force bool) {
	var at time.Time
	if s.wake.Len() > 0 {
		at = s.wake[0].wakeAt
		if lim := now.Add(recheck); at.After(lim) {
			at = lim
		}
	}
	if at.Equal(s.timerAt) && !force {
		return
	}
	s.timerAt = at
	switch {
	case at.IsZero():
		if s.timer != nil {
			s.timer.Stop()
		}
	case s.timer == nil:
		s.timer = s.clock.AfterFunc(at.Sub(now), s.onTimer)
	default:
		s.timer.Reset(at.Sub(now))
	}
}

// startWaitingLocked starts jobs waiting for a global slot, first come
// first served.
func (s *Scheduler) startWaitingLocked(now time.Time, fx *effects) {
	for len(s.waitQ) > 0 && s.globalFreeLocked() {
		p := s.waitQ[0]
		s.waitQ[0] = nil
		s.waitQ = s.waitQ[1:]
		job := *p.waiting
		p.waiting = nil
		s.startLocked(p, job, now)
		s.evaluateLocked(p, now, fx) // it may have more to start
	}
}

// evaluateLocked decides what pipeline p starts now and when it must be
// looked at again.
func (s *Scheduler) evaluateLocked(p *pipeline, now time.Time, fx *effects) {
	if p.heapIdx >= 0 {
		heap.Remove(&s.wake, p.heapIdx)
	}
	if !s.started || s.draining || p.removed {
		return
	}
	if p.considered.IsZero() {
		p.considered = now // never ran: nothing before now is missed
	}
	if p.paused || p.quarantined {
		return
	}
	for p.waiting == nil {
		job, ok := s.nextJobLocked(p, now, fx)
		if !ok {
			break
		}
		if s.globalFreeLocked() && len(s.waitQ) == 0 {
			s.startLocked(p, job, now)
		} else {
			p.waiting = &job
			s.waitQ = append(s.waitQ, p)
		}
	}
	var at time.Time
	for _, r := range p.retries {
		if r.at.After(now) && (at.IsZero() || r.at.Before(at)) {
			at = r.at
		}
	}
	if p.waiting == nil && p.used() < p.spec.Concurrency && len(p.backlog) == 0 && p.spec.Schedule != nil {
		// Every fire time up to now is decided: the next one is after it.
		if n := p.spec.Schedule.Next(p.considered); !n.IsZero() && (at.IsZero() || n.Before(at)) {
			at = n
		}
	}
	if !at.IsZero() {
		p.wakeAt = at
		heap.Push(&s.wake, p)
	}
}

// nextJobLocked picks the next job of p that may start now: a due retry
// (it holds its slot already), else, with a free slot, a manual job, a
// scheduled one (deciding the fire times due under the catch-up policy),
// then a backfill.
func (s *Scheduler) nextJobLocked(p *pipeline, now time.Time, fx *effects) (Job, bool) {
	best := -1
	for i, r := range p.retries {
		if !r.at.After(now) && (best < 0 || r.at.Before(p.retries[best].at)) {
			best = i
		}
	}
	if best >= 0 {
		job := p.retries[best].job
		p.retries = slices.Delete(p.retries, best, best+1)
		return job, true
	}
	if p.used() >= p.spec.Concurrency {
		return Job{}, false
	}
	if len(p.manual) > 0 {
		job := p.manual[0]
		p.manual = slices.Delete(p.manual, 0, 1)
		return job, true
	}
	if len(p.backlog) == 0 && p.spec.Schedule != nil {
		d := Due(p.spec.Schedule, p.spec.CatchUp, p.considered, now, s.o.Limits)
		if !d.Through.IsZero() {
			p.considered = d.Through
		}
		p.backlog = d.Run
		if d.Skipped.Count > 0 {
			skip := Skip{Pipeline: p.spec.Name, Reason: SkipMissed, Missed: d.Skipped}
			s.log.Info("missed fire times skipped", "pipeline", skip.Pipeline, "count", skip.Missed.Count,
				"first", skip.Missed.First, "last", skip.Missed.Last, "catch_up", p.spec.CatchUp)
			if h := s.o.Hooks.Skipped; h != nil {
				fx.add(func() { h(skip) })
			}
		}
	}
	if len(p.backlog) > 0 {
		t := p.backlog[0]
		p.backlog = p.backlog[1:]
		if len(p.backlog) == 0 {
			p.backlog = nil
		}
		return Job{Pipeline: p.spec.Name, Logical: t, Trigger: TriggerSchedule, Origin: TriggerSchedule, Attempt: 1}, true
	}
	if len(p.backfill) > 0 {
		job := p.backfill[0]
		p.backfill = slices.Delete(p.backfill, 0, 1)
		return job, true
	}
	return Job{}, false
}

// unwaitLocked takes back the job p has waiting for a global slot: it goes
// back where it came from when keep (Pause), or is dropped (Remove).
func (s *Scheduler) unwaitLocked(p *pipeline, keep bool, now time.Time) {
	if p.waiting == nil {
		return
	}
	if i := slices.Index(s.waitQ, p); i >= 0 {
		s.waitQ = slices.Delete(s.waitQ, i, i+1)
	}
	job := *p.waiting
	p.waiting = nil
	if !keep {
		return
	}
	switch job.Trigger {
	case TriggerSchedule:
		p.backlog = append([]time.Time{job.Logical}, p.backlog...)
	case TriggerManual:
		p.manual = append([]Job{job}, p.manual...)
	case TriggerBackfill:
		p.backfill = append([]Job{job}, p.backfill...)
	case TriggerRetry:
		p.retries = append(p.retries, pendingRetry{job: job, at: now})
	}
}

// wakeHeap orders pipelines by wakeAt.
type wakeHeap []*pipeline

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].wakeAt.Before(h[j].wakeAt) }
func (h wakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *wakeHeap) Push(x any) {
	p := x.(*pipeline)
	p.heapIdx = len(*h)
	*h = append(*h, p)
}
func (h *wakeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.heapIdx = -1
	*h = old[:len(old)-1]
	return p
}
