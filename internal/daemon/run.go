package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/backbone-etl/backbone/internal/alert"
	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/scheduler"
	"github.com/backbone-etl/backbone/internal/state"
)

// liveRun is a run in flight, for freshness ("no progress for that long")
// and for the API.
type liveRun struct {
	mu       sync.Mutex
	pipeline string
	id       string
	progress engine.Progress
	changed  time.Time // when progress last moved
	wroteAt  time.Time // when the written count last grew: freshness of a continuous run
	saved    time.Time // when the progress was last stored in the history
	// stop cancels the run softly (it stops reading, commits and ends).
	stop func(cause error)
}

// progressEvery is how often a run in flight has its counts stored in the
// history: a continuous run shows as one long run that moves.
const progressEvery = 10 * time.Second

// runJob is the scheduler's Run: one attempt of one run.
func (d *Daemon) runJob(ctx context.Context, job scheduler.Job) error {
	d.mu.Lock()
	p := d.pipes[job.Pipeline]
	if p == nil {
		d.mu.Unlock()
		return fmt.Errorf("pipeline %s is no longer loaded", job.Pipeline)
	}
	cfg, trial, prevOK := p.cur, p.trial, p.prevOK
	d.mu.Unlock()

	if err := d.store.SaveVersion(ctx, state.Version{Pipeline: cfg.Name, Hash: cfg.Hash,
		Content: []byte(d.secrets.Redact(cfg.Redactor.Redact(string(cfg.Raw)))), LastSeen: d.clock.Now()}); err != nil {
		return fmt.Errorf("state store: %w", err)
	}

	trigger := string(job.Trigger)
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	now := d.clock.Now()
	live := &liveRun{pipeline: cfg.Name, id: engine.NewRunID(now), changed: now, wroteAt: now, saved: now, stop: stop}
	d.mu.Lock()
	d.live[live.id] = live
	d.mu.Unlock()
	d.metrics.inFlight.Inc()
	defer func() {
		d.metrics.inFlight.Dec()
		d.mu.Lock()
		delete(d.live, live.id)
		d.mu.Unlock()
	}()

	var last engine.Progress
	opts := engine.Options{
		Store:       d.store,
		RunID:       live.id,
		Trigger:     trigger,
		LogicalTime: job.Logical,
		Hard:        scheduler.Hard(ctx),
		Logger:      d.log.With("pipeline", cfg.Name, "run", live.id),
		Backfill:    job.Origin == scheduler.TriggerBackfill,
		Observe:     d.metrics.observe(cfg.Name),
		Clock:       d.clock.Now,
		Progress: func(pr engine.Progress) {
			d.metrics.progress(cfg.Name, engine.Progress{Read: pr.Read - last.Read,
				Written: pr.Written - last.Written, Filtered: pr.Filtered - last.Filtered})
			now := d.clock.Now()
			live.mu.Lock()
			if pr.Read != live.progress.Read || pr.Written != live.progress.Written {
				live.changed = now
			}
			if pr.Written != live.progress.Written {
				live.wroteAt = now
			}
			live.progress = pr
			save := now.Sub(live.saved) >= progressEvery
			if save {
				live.saved = now
			}
			live.mu.Unlock()
			last = pr
			if save {
				r := state.Run{ID: live.id, Read: pr.Read, Written: pr.Written, Rejected: pr.Rejected, Filtered: pr.Filtered}
				if err := d.store.UpdateRun(ctx, &r); err != nil && ctx.Err() == nil {
					d.log.Warn("storing a run's progress", "pipeline", cfg.Name, "error", err)
				}
			}
		},
		ProgressEvery: time.Second,
	}
	if d.leases != nil && job.FencingToken != 0 {
		l := &lease{s: d.leases, holder: d.o.Instance, ttl: d.o.LeaseTTL}
		opts.Fence = func(ctx context.Context) error {
			if err := l.Renew(ctx, cfg.Name, job.FencingToken); err != nil {
				return fmt.Errorf("%w: %v", errLeaseLost, err)
			}
			return nil
		}
	}
	res, err := engine.Run(ctx, cfg, opts)
	if res != nil {
		// The progress callback saw part of the counts; add the rest.
		d.metrics.progress(cfg.Name, engine.Progress{Read: res.Run.Read - last.Read,
			Written: res.Run.Written - last.Written, Filtered: res.Run.Filtered - last.Filtered})
		d.metrics.finished(cfg.Name, trigger, res)
	}
	rolledBack := d.finished(ctx, job, cfg, res, err, trial, prevOK)
	if d.o.OnRun != nil && res != nil {
		d.o.OnRun(res.Run)
	}
	if errors.Is(context.Cause(ctx), errNewVersion) {
		// Stopped for a reload: the new version goes on as this run ends.
		if _, terr := d.sched.Trigger(cfg.Name, scheduler.TriggerManual, time.Time{}); terr != nil && !errors.Is(terr, scheduler.ErrAlreadyQueued) {
			d.log.Warn("restarting a continuous pipeline", "pipeline", cfg.Name, "error", terr)
		}
		return nil
	}
	if rolledBack {
		// Handled: the restored version runs at once (queued by finished);
		// a retry of the bad version's attempt would only delay it.
		return nil
	}
	return err
}

// finished records a run's outcome on its pipeline, judges a new version,
// and raises or clears alerts. It reports whether the version was rolled
// back.
func (d *Daemon) finished(ctx context.Context, job scheduler.Job, cfg *config.Pipeline, res *engine.Result, err error, trial, prevOK bool) bool {
	var run *state.Run
	if res != nil {
		r := res.Run
		run = &r
	}
	cancelled := err != nil && (errors.Is(err, context.Canceled) || (res != nil && res.Run.Status == state.StatusCancelled))
	var budget *engine.BudgetError
	isBudget := errors.As(err, &budget)

	d.mu.Lock()
	p := d.pipes[cfg.Name]
	if p != nil && run != nil {
		p.lastRun = run
		p.recent = append([]state.Run{*run}, p.recent...)
		if len(p.recent) > recentRuns {
			p.recent = p.recent[:recentRuns]
		}
		if err == nil {
			p.lastSuccess = run.End
		}
	}
	var rollback *config.Pipeline
	judged := p != nil && p.cur.Hash == cfg.Hash && trial && !cancelled && job.Origin != scheduler.TriggerBackfill
	bad := judged && err != nil && (isBudget || prevOK)
	if p != nil && err == nil && p.cur.Hash == cfg.Hash && job.Origin != scheduler.TriggerBackfill {
		p.trial, p.good = false, cfg
	}
	if bad {
		reason := "its first run failed where the previous version succeeded"
		if isBudget {
			reason = "its first run breached the error budget"
		}
		p.bad[cfg.Hash] = reason
		p.trial = false
		if cfg.Runs.OnBadVersion == "rollback" && p.good != nil && p.good.Hash != cfg.Hash {
			rollback = p.good
			p.cur = p.good
			p.problem = "version " + short(cfg.Hash) + " was rolled back: " + reason
		} else {
			p.problem = "version " + short(cfg.Hash) + " is bad: " + reason
		}
	}
	d.mu.Unlock()

	switch {
	case err == nil:
		if merr := d.store.MarkVersion(context.WithoutCancel(ctx), cfg.Name, cfg.Hash, state.VersionGood, ""); merr != nil {
			d.log.Warn("marking a version good", "pipeline", cfg.Name, "error", merr)
		}
		d.notify.Resolve("run_failed/" + cfg.Name)
		d.notify.Resolve("budget/" + cfg.Name)
		d.notify.Resolve("rollback/" + cfg.Name) // the restored version runs well
	case cancelled:
	case isBudget:
		d.notify.Fire(alert.Alert{Kind: alert.KindBudgetBreached, Pipeline: cfg.Name, Key: "budget/" + cfg.Name,
			Summary: fmt.Sprintf("%s: error budget breached; the checkpoint did not move past the bad data", cfg.Name),
			Details: runDetails(run, err)})
	default:
		d.notify.Fire(alert.Alert{Kind: alert.KindRunFailed, Pipeline: cfg.Name, Key: "run_failed/" + cfg.Name,
			Summary: fmt.Sprintf("%s: run failed (attempt %d)", cfg.Name, job.Attempt), Details: runDetails(run, err)})
	}
	if !bad {
		return false
	}
	reason := p.bad[cfg.Hash]
	if merr := d.store.MarkVersion(context.WithoutCancel(ctx), cfg.Name, cfg.Hash, state.VersionBad, reason); merr != nil {
		d.log.Warn("marking a version bad", "pipeline", cfg.Name, "error", merr)
	}
	if rollback == nil {
		d.log.Warn("new version is bad", "pipeline", cfg.Name, "version", short(cfg.Hash), "reason", reason)
		return false
	}
	if run != nil && run.CursorAfter == run.CursorBefore {
		// The bad run committed nothing: the restored version reads the
		// same records again, so the bad version's dead letters of them
		// would only mislead.
		if n, derr := d.purgeRun(context.WithoutCancel(ctx), run.ID); derr != nil {
			d.log.Warn("removing the bad run's dead letters", "pipeline", cfg.Name, "error", derr)
		} else if n > 0 {
			d.log.Info("removed the bad run's dead letters; their records are read again", "pipeline", cfg.Name, "count", n)
		}
	}
	d.log.Warn("new version is bad: rolled back", "pipeline", cfg.Name, "bad", short(cfg.Hash), "restored", short(rollback.Hash), "reason", reason)
	d.notify.Fire(alert.Alert{Kind: alert.KindVersionRolledBack, Pipeline: cfg.Name, Key: "rollback/" + cfg.Name,
		Summary: fmt.Sprintf("%s: version %s %s; version %s restored and run again from the same checkpoint",
			cfg.Name, short(cfg.Hash), reason, short(rollback.Hash)),
		Details: map[string]string{"bad_version": cfg.Hash, "restored_version": rollback.Hash, "reason": reason,
			"error": errString(err)}})
	if serr := d.sched.Set(d.spec(p)); serr != nil {
		d.log.Warn("rescheduling the restored version", "pipeline", cfg.Name, "error", serr)
	}
	// The restored version runs again at once, with the same logical time.
	if _, terr := d.sched.Trigger(cfg.Name, scheduler.TriggerManual, job.Logical); terr != nil {
		d.log.Warn("running the restored version", "pipeline", cfg.Name, "error", terr)
	}
	return true
}

func runDetails(run *state.Run, err error) map[string]string {
	m := map[string]string{"error": errString(err)}
	if run != nil {
		m["run_id"] = run.ID
		m["read"] = strconv.FormatInt(run.Read, 10)
		m["rejected"] = strconv.FormatInt(run.Rejected, 10)
		m["version"] = run.ConfigHash
		if !run.LogicalTime.IsZero() {
			m["logical_time"] = run.LogicalTime.UTC().Format(time.RFC3339)
		}
	}
	return m
}

// hooks turn scheduler events into logs and alerts.
func (d *Daemon) hooks() scheduler.Hooks {
	return scheduler.Hooks{
		RunFinished: func(job scheduler.Job, r scheduler.Result) {
			level := slog.LevelInfo
			if r.Outcome == scheduler.OutcomeFailed {
				level = slog.LevelWarn
			}
			d.log.Log(context.Background(), level, "run finished", "pipeline", job.Pipeline, "trigger", string(job.Trigger),
				"attempt", job.Attempt, "outcome", string(r.Outcome), "seconds", r.Finished.Sub(r.Started).Seconds(), "error", r.Err)
		},
		RetryScheduled: func(next scheduler.Job, at time.Time, cause error) {
			d.log.Warn("run failed; retrying", "pipeline", next.Pipeline, "attempt", next.Attempt, "at", at, "error", cause)
		},
		Quarantined: func(pipeline string, failures int, cause error) {
			d.log.Error("pipeline quarantined", "pipeline", pipeline, "failures", failures, "error", cause)
			d.notify.Fire(alert.Alert{Kind: alert.KindPipelineQuarantined, Pipeline: pipeline, Key: "quarantine/" + pipeline,
				Summary: fmt.Sprintf("%s: quarantined after %d failed runs in a row; resume it when fixed", pipeline, failures),
				Details: map[string]string{"error": errString(cause), "failures": strconv.Itoa(failures)}})
		},
		PanicRecovered: func(job scheduler.Job, p *scheduler.PanicError) {
			d.log.Error("run panicked", "pipeline", job.Pipeline, "panic", fmt.Sprint(p.Value))
		},
		TimedOut: func(job scheduler.Job, after time.Duration) {
			d.log.Error("run timed out", "pipeline", job.Pipeline, "after", after)
		},
		Stuck: func(job scheduler.Job) {
			d.log.Error("run stuck past its timeout; the pipeline starts nothing until it returns", "pipeline", job.Pipeline)
			d.notify.Fire(alert.Alert{Kind: alert.KindRunFailed, Pipeline: job.Pipeline, Key: "stuck/" + job.Pipeline,
				Summary: job.Pipeline + ": a run is stuck past its timeout"})
		},
		LeaseLost: func(job scheduler.Job, err error) {
			d.log.Warn("lease lost; the run stops without committing more", "pipeline", job.Pipeline, "error", err)
		},
		Skipped: func(s scheduler.Skip) {
			level := slog.LevelInfo
			if s.Reason == scheduler.SkipMissed {
				level = slog.LevelDebug // the scheduler logs the count; a continuous pipeline's watchdog skips every tick
			}
			d.log.Log(context.Background(), level, "logical times skipped", "pipeline", s.Pipeline, "reason", string(s.Reason))
		},
	}
}

// checkLoop judges freshness every CheckEvery.
func (d *Daemon) checkLoop(ctx context.Context) {
	for {
		d.checkFreshness()
		t := d.clock.NewTimer(d.o.CheckEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// checkFreshness fires or clears each pipeline's freshness alert: no
// success for longer than its freshness, or a run in flight without
// progress for that long. Independent of errors: a silent stall is caught.
func (d *Daemon) checkFreshness() {
	now := d.clock.Now()
	type verdict struct {
		name, why string
		age       time.Duration
		late      bool
		slo       time.Duration
	}
	var vs []verdict
	d.mu.Lock()
	stalled := map[string]time.Duration{}
	wrote := map[string]time.Time{}
	for _, lr := range d.live {
		lr.mu.Lock()
		if idle := now.Sub(lr.changed); idle > stalled[lr.pipeline] {
			stalled[lr.pipeline] = idle
		}
		if lr.wroteAt.After(wrote[lr.pipeline]) {
			wrote[lr.pipeline] = lr.wroteAt
		}
		lr.mu.Unlock()
	}
	for _, p := range d.pipes {
		since := p.lastSuccess
		if since.IsZero() {
			since = p.freshSince
		}
		if p.continuous {
			// One long run: fresh is the time since it last wrote a record.
			if w := wrote[p.name]; w.After(since) {
				since = w
			}
			stalled[p.name] = 0
		}
		age := now.Sub(since)
		v := verdict{name: p.name, age: age, slo: p.cur.Freshness}
		if slo := p.cur.Freshness; slo > 0 {
			switch {
			case age > slo:
				v.late, v.why = true, fmt.Sprintf("no successful run for %s (freshness %s)", age.Round(time.Second), slo)
			case stalled[p.name] > slo:
				v.late, v.why = true, fmt.Sprintf("a run has made no progress for %s (freshness %s)", stalled[p.name].Round(time.Second), slo)
			}
		}
		p.late = v.late
		vs = append(vs, v)
	}
	d.mu.Unlock()
	for _, v := range vs {
		d.metrics.freshness.WithLabelValues(v.name).Set(v.age.Seconds())
		if v.slo <= 0 {
			continue
		}
		if v.late {
			d.notify.Fire(alert.Alert{Kind: alert.KindFreshnessBreached, Pipeline: v.name, Key: "freshness/" + v.name,
				Summary: v.name + ": " + v.why, Details: map[string]string{"age_seconds": strconv.FormatFloat(v.age.Seconds(), 'f', 0, 64)}})
		} else {
			d.notify.Resolve("freshness/" + v.name)
		}
	}
}

// purgeRun deletes the dead letters of one run.
func (d *Daemon) purgeRun(ctx context.Context, runID string) (int, error) {
	return d.deleteDeadLetters(ctx, state.DLQFilter{RunID: runID})
}

// deleteDeadLetters deletes every dead letter f selects.
func (d *Daemon) deleteDeadLetters(ctx context.Context, f state.DLQFilter) (int, error) {
	f.Limit = 10000000
	dls, err := d.store.DeadLetters(ctx, f)
	if err != nil || len(dls) == 0 {
		return 0, err
	}
	ids := make([]int64, len(dls))
	for i, dl := range dls {
		ids[i] = dl.ID
	}
	return d.store.DeleteDeadLetters(ctx, ids)
}
