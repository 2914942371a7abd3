package scheduler

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"time"
)

// phase is where an attempt is; Settle waits for attempts outside
// phaseRunning.
type phase int

const (
	phaseStarting  phase = iota // acquiring its lease, calling RunStarted
	phaseRunning                // inside Options.Run
	phaseFinishing              // recording its end, calling hooks
)

// run is one attempt in flight. Its fields are guarded by Scheduler.mu,
// except job, which the run's goroutine owns until phaseRunning.
type run struct {
	p          *pipeline
	job        Job
	soft       context.Context
	hard       context.Context
	cancelSoft context.CancelCauseFunc
	cancelHard context.CancelCauseFunc
	phase      phase
	started    time.Time
	global     bool // holds a global slot (a stuck attempt gives it back)
	stuck      bool
	timedOut   bool
	leaseLost  error
	leased     bool // holds one use of its pipeline's lease
	done       bool

	stage  int            // of the timeout: 0 soft cancel, 1 hard cancel, 2 stuck
	stageT Timer          // the timeout's stages
	renewT Timer          // the lease's renewals
	cbs    sync.WaitGroup // its timer callbacks in progress
}

// startLocked starts job of p in a new goroutine.
func (s *Scheduler) startLocked(p *pipeline, job Job, now time.Time) {
	hard, cancelHard := context.WithCancelCause(s.base)
	soft, cancelSoft := context.WithCancelCause(context.WithValue(hard, hardKey{}, hard))
	r := &run{p: p, job: job, soft: soft, hard: hard, cancelSoft: cancelSoft, cancelHard: cancelHard, global: true, started: now}
	s.running++
	p.inFlight++
	if job.Trigger == TriggerSchedule && job.Logical.After(p.lastLogical) {
		p.lastLogical = job.Logical
	}
	s.runs[r] = struct{}{}
	s.wg.Add(1)
	go s.execute(r)
}

// execute is the goroutine of one attempt.
func (s *Scheduler) execute(r *run) {
	defer s.wg.Done()
	job := r.job
	if s.o.Lease != nil {
		token, ok, err := s.acquire(r, job.Pipeline)
		switch {
		case err != nil:
			// The attempt fails like one whose Run failed, and may be
			// retried: the hooks see it start and fail.
			s.enter(r, job)
			s.finish(r, &LeaseError{Op: "acquire", Err: err})
			return
		case !ok:
			s.skipHeld(r)
			return
		}
		job.FencingToken = token
	}
	s.enter(r, job)
	s.finish(r, s.call(r.soft, job))
}

// enter calls RunStarted and moves r into Run, starting its timers.
func (s *Scheduler) enter(r *run, job Job) {
	if h := s.o.Hooks.RunStarted; h != nil {
		h(job)
	}
	s.mu.Lock()
	r.job = job
	r.phase = phaseRunning
	r.started = s.clock.Now()
	if t := r.p.spec.Timeout; t > 0 {
		r.stageT = s.clock.AfterFunc(t, func() { s.onStage(r) })
	}
	if r.leased {
		r.renewT = s.clock.AfterFunc(s.o.LeaseRenew, func() { s.onRenew(r) })
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// call runs the job, turning a panic into a *PanicError.
func (s *Scheduler) call(ctx context.Context, job Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return s.o.Run(ctx, job)
}

// acquire takes the lease of r's pipeline, or shares the one that its
// runs in flight already hold (two runs of a pipeline with concurrency
// above 1 in this process are not an overlap across processes).
func (s *Scheduler) acquire(r *run, name string) (int64, bool, error) {
	p := r.p
	s.mu.Lock()
	if p.leaseUsers > 0 {
		p.leaseUsers++
		r.leased = true
		t := p.leaseToken
		s.mu.Unlock()
		return t, true, nil
	}
	s.mu.Unlock()
	token, ok, err := s.o.Lease.Acquire(r.soft, name)
	if err != nil || !ok {
		return 0, false, err
	}
	s.mu.Lock()
	if p.leaseUsers == 0 {
		p.leaseToken = token
	}
	p.leaseUsers++
	r.leased = true
	token = p.leaseToken
	s.mu.Unlock()
	return token, true, nil
}

// skipHeld ends an attempt whose lease another process holds: it did not
// run, and is neither a failure nor retried.
func (s *Scheduler) skipHeld(r *run) {
	s.mu.Lock()
	r.done = true
	r.phase = phaseFinishing
	s.releaseSlotsLocked(r)
	var fx effects
	skip := Skip{Pipeline: r.job.Pipeline, Reason: SkipHeldElsewhere, Job: r.job}
	s.log.Info("run skipped: lease held elsewhere", "pipeline", skip.Pipeline, "logical", r.job.Logical, "trigger", r.job.Trigger)
	if h := s.o.Hooks.Skipped; h != nil {
		fx.add(func() { h(skip) })
	}
	s.afterLocked(r, &fx)
}

func (s *Scheduler) releaseSlotsLocked(r *run) {
	r.cancelSoft(context.Canceled)
	r.cancelHard(context.Canceled)
	if r.global {
		r.global = false
		s.running--
	}
	r.p.inFlight--
	if r.stuck {
		r.p.stuck--
	}
}

// afterLocked finishes the bookkeeping of an ended attempt: the pipeline
// takes its next decision, hooks are called, and r leaves s.runs, after
// which Drain may return.
func (s *Scheduler) afterLocked(r *run, fx *effects) {
	p := r.p
	s.forgetLocked(p, r.job.Pipeline)
	now := s.clock.Now()
	s.evaluateLocked(p, now, fx)
	s.pumpLocked(now, fx)
	s.busy++ // r leaves s.runs below; until then Settle waits
	s.mu.Unlock()
	for _, f := range fx.hooks {
		f()
	}
	s.mu.Lock()
	s.busy--
	delete(s.runs, r)
	s.checkDrainedLocked()
	s.notifyLocked()
	s.mu.Unlock()
}

// finish records the end of an attempt that called RunStarted: err is what
// Run returned (ran) or why it could not run.
func (s *Scheduler) finish(r *run, err error) {
	s.mu.Lock()
	now := s.clock.Now()
	r.done = true
	r.phase = phaseFinishing
	if r.stageT != nil {
		r.stageT.Stop()
	}
	if r.renewT != nil {
		r.renewT.Stop()
	}
	cause := context.Cause(r.soft)
	s.releaseSlotsLocked(r)
	p, job := r.p, r.job
	res := Result{Started: r.started, Finished: now, Err: err}
	var panicked *PanicError
	switch {
	case err == nil:
		res.Outcome = OutcomeSucceeded
		p.failures, p.lastErr = 0, nil
	case errors.Is(cause, ErrDraining) || s.base.Err() != nil:
		res.Outcome = OutcomeCanceled
	default:
		res.Outcome = OutcomeFailed
		errors.As(err, &panicked)
		var te *TimeoutError
		switch {
		case r.timedOut && !errors.As(err, &te): // Run may return the cause itself
			res.Err = &TimeoutError{Timeout: p.spec.Timeout, Err: err}
		case r.leaseLost != nil && !errors.Is(err, r.leaseLost):
			res.Err = errors.Join(err, r.leaseLost)
		}
	}
	var fx effects
	if res.Outcome == OutcomeFailed {
		if job.Attempt <= p.spec.Retry.Retries && !p.removed && !s.draining {
			next := job
			next.Trigger, next.Attempt, next.FencingToken = TriggerRetry, job.Attempt+1, 0
			res.Retry = now.Add(p.spec.Retry.delay(job.Attempt, s.o.Rand()))
			p.retries = append(p.retries, pendingRetry{job: next, at: res.Retry})
			if h := s.o.Hooks.RetryScheduled; h != nil {
				at, cause := res.Retry, res.Err
				fx.add(func() { h(next, at, cause) })
			}
		} else {
			p.failures++
			p.lastErr = res.Err
			if q := p.spec.QuarantineAfter; q > 0 && p.failures >= q && !p.quarantined && !p.removed {
				p.quarantined = true
				s.log.Warn("pipeline quarantined", "pipeline", job.Pipeline, "failures", p.failures, "error", res.Err)
				if h := s.o.Hooks.Quarantined; h != nil {
					n, cause := p.failures, res.Err
					fx.add(func() { h(job.Pipeline, n, cause) })
				}
			}
		}
	}
	release := r.leased
	if release {
		p.leaseUsers--
		release = p.leaseUsers == 0
	}
	s.mu.Unlock()

	r.cbs.Wait() // a timer callback that began before done was set
	if release {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.base), s.o.LeaseRenew)
		if err := s.o.Lease.Release(ctx, job.Pipeline, job.FencingToken); err != nil {
			s.log.Warn("lease release failed; it will expire", "pipeline", job.Pipeline, "error", err)
		}
		cancel()
	}
	if h := s.o.Hooks.PanicRecovered; h != nil && panicked != nil {
		h(job, panicked)
	}
	if h := s.o.Hooks.RunFinished; h != nil {
		h(job, res)
	}
	s.mu.Lock()
	s.afterLocked(r, &fx)
}

// onStage is the timeout timer of r: at the timeout its soft context is
// cancelled; half the grace period later, its hard one; at the end of the
// grace period it is declared stuck and gives its global slot back, while
// it keeps its pipeline's slot: the pipeline never overlaps runs, even
// with a run that ignores its context.
func (s *Scheduler) onStage(r *run) {
	s.mu.Lock()
	if r.done {
		s.mu.Unlock()
		return
	}
	r.cbs.Add(1) // the run's end waits for this callback's hooks
	defer r.cbs.Done()
	now := s.clock.Now()
	var fx effects
	job, timeout := r.job, r.p.spec.Timeout
	switch r.stage {
	case 0:
		r.timedOut = true
		r.cancelSoft(&TimeoutError{Timeout: timeout})
		s.log.Warn("run timed out", "pipeline", job.Pipeline, "logical", job.Logical, "timeout", timeout)
		if h := s.o.Hooks.TimedOut; h != nil {
			fx.add(func() { h(job, timeout) })
		}
	case 1:
		r.cancelHard(&TimeoutError{Timeout: timeout})
	case 2:
		r.stuck = true
		r.p.stuck++
		if r.global {
			r.global = false
			s.running--
		}
		s.log.Error("run stuck: it ignores its cancelled context; its pipeline waits for it", "pipeline", job.Pipeline, "logical", job.Logical)
		if h := s.o.Hooks.Stuck; h != nil {
			fx.add(func() { h(job) })
		}
		s.pumpLocked(now, &fx) // its global slot is free
	}
	r.stage++
	if r.stage <= 2 {
		r.stageT.Reset(s.o.Grace / 2)
	}
	s.unlock(&fx)
}

// onRenew is the lease renewal timer of r.
func (s *Scheduler) onRenew(r *run) {
	s.mu.Lock()
	if r.done {
		s.mu.Unlock()
		return
	}
	r.cbs.Add(1)
	defer r.cbs.Done()
	job := r.job
	s.busy++ // the renewal is work in progress for Settle
	s.mu.Unlock()

	// The hard context: a run stopping softly (drain, timeout) still
	// commits its last batches, under its lease.
	ctx, cancel := context.WithTimeout(r.hard, s.o.LeaseRenew)
	err := s.o.Lease.Renew(ctx, job.Pipeline, job.FencingToken)
	cancel()

	s.mu.Lock()
	s.busy--
	var fx effects
	switch {
	case r.done:
	case r.hard.Err() != nil:
		// Stopping now: its writes are over, the lease may lapse.
	case err != nil:
		r.leaseLost = &LeaseError{Op: "renew", Err: err}
		r.cancelSoft(r.leaseLost)
		r.cancelHard(r.leaseLost)
		s.log.Warn("lease lost; run cancelled", "pipeline", job.Pipeline, "logical", job.Logical, "error", err)
		if h := s.o.Hooks.LeaseLost; h != nil {
			lost := r.leaseLost
			fx.add(func() { h(job, lost) })
		}
	default:
		r.renewT.Reset(s.o.LeaseRenew)
	}
	s.unlock(&fx)
}
