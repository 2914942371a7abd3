package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/scheduler"
	"github.com/backbone-etl/backbone/internal/state"
)

// backend serves the API from the daemon.
type backend Daemon

func (b *backend) d() *Daemon { return (*Daemon)(b) }

// maxBackfill bounds the logical times one backfill request may queue.
const maxBackfill = 1000

func (b *backend) Pipelines(ctx context.Context) ([]api.Pipeline, error) {
	d := b.d()
	d.mu.Lock()
	names := make([]string, 0, len(d.pipes))
	for n := range d.pipes {
		names = append(names, n)
	}
	d.mu.Unlock()
	sort.Strings(names)
	out := make([]api.Pipeline, 0, len(names))
	for _, n := range names {
		if p, ok := b.summary(n); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// summary is a pipeline's status; ok false when it is gone.
func (b *backend) summary(name string) (api.Pipeline, bool) {
	d := b.d()
	st, serr := d.sched.Status(name)
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pipes[name]
	if p == nil {
		return api.Pipeline{}, false
	}
	out := api.Pipeline{Name: p.name, Description: p.cur.Description, File: p.file, Schedule: p.cur.Schedule,
		Version: p.cur.Hash, Problem: p.problem, Late: p.late}
	if serr == nil {
		out.Paused, out.Quarantined, out.Running = st.Paused, st.Quarantined, st.InFlight
		out.ConsecutiveFailures = st.ConsecutiveFailures
		if !st.Next.IsZero() {
			next := st.Next
			out.NextRun = &next
		}
	}
	if p.lastRun != nil {
		r := api.RunOf(*p.lastRun, now)
		out.LastRun = &r
		if p.lastRun.Read > 0 {
			out.RejectRate = float64(p.lastRun.Rejected) / float64(p.lastRun.Read)
		}
	}
	if !p.lastSuccess.IsZero() {
		ls := p.lastSuccess
		out.LastSuccess = &ls
	}
	if slo := p.cur.Freshness; slo > 0 {
		out.FreshnessSLOSeconds = slo.Seconds()
		since := p.lastSuccess
		if since.IsZero() {
			since = p.freshSince
		}
		age := now.Sub(since).Seconds()
		out.FreshnessAgeSeconds = &age
	}
	for _, r := range p.recent {
		out.Recent = append(out.Recent, api.RunOf(r, now))
	}
	failing := p.lastRun != nil && p.lastRun.Status == state.StatusFailed
	switch {
	case out.Paused:
		out.Status = "paused"
	case out.Quarantined:
		out.Status = "quarantined"
	case serr == nil && st.State == scheduler.StateStuck:
		out.Status = "stuck"
	case p.late:
		out.Status = "late"
	case serr == nil && st.State == scheduler.StateRetrying:
		out.Status = "retrying"
	case failing && out.Running == 0:
		out.Status = "failing"
	case out.Running > 0:
		out.Status = "running"
	case p.lastRun == nil:
		out.Status = "idle"
	default:
		out.Status = "healthy"
	}
	return out, true
}

func notFound(name string) error { return fmt.Errorf("pipeline %q: %w", name, api.ErrNotFound) }

func (b *backend) Pipeline(ctx context.Context, name string) (api.PipelineDetail, error) {
	d := b.d()
	sum, ok := b.summary(name)
	if !ok {
		return api.PipelineDetail{}, notFound(name)
	}
	d.mu.Lock()
	p := d.pipes[name]
	if p == nil {
		d.mu.Unlock()
		return api.PipelineDetail{}, notFound(name)
	}
	cfg := p.cur
	d.mu.Unlock()
	out := api.PipelineDetail{Pipeline: sum, YAML: d.secrets.Redact(cfg.Redactor.Redact(string(cfg.Raw))),
		OnBadVer: cfg.Runs.OnBadVersion, CatchUp: cfg.Runs.CatchUp, Checkpoints: map[string]string{}}
	cps, err := d.store.LoadCheckpoints(ctx, name)
	if err != nil {
		return out, err
	}
	for task, cp := range cps {
		pos := fmt.Sprintf("%q", string(cp.Pos))
		if cp.Done {
			pos = "done"
		}
		out.Checkpoints[d.secrets.Redact(cfg.Redactor.Redact(task))] = d.secrets.Redact(cfg.Redactor.Redact(pos))
	}
	return out, nil
}

func (b *backend) Runs(ctx context.Context, f state.RunFilter) ([]api.Run, error) {
	d := b.d()
	runs, err := d.store.Runs(ctx, f)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	out := make([]api.Run, len(runs))
	for i, r := range runs {
		out[i] = b.redactRun(api.RunOf(r, now))
	}
	return out, nil
}

func (b *backend) redactRun(r api.Run) api.Run {
	s := b.d().secrets
	r.Error, r.CursorBefore, r.CursorAfter = s.Redact(r.Error), s.Redact(r.CursorBefore), s.Redact(r.CursorAfter)
	return r
}

func (b *backend) Run(ctx context.Context, id string) (api.RunDetail, error) {
	d := b.d()
	r, err := d.store.Run(ctx, id)
	if err != nil {
		return api.RunDetail{}, err
	}
	out := api.RunDetail{Run: b.redactRun(api.RunOf(r, d.clock.Now())), RejectsByStep: map[string]int64{}}
	dls, err := d.store.DeadLetters(ctx, state.DLQFilter{RunID: id, Limit: 100000})
	if err != nil {
		return out, err
	}
	out.DeadLetters = len(dls)
	for _, dl := range dls {
		out.RejectsByStep[dl.Step]++
	}
	if out.DurationSecs > 0 {
		out.RowsPerSecond = float64(r.Read) / out.DurationSecs
	}
	return out, nil
}

// schedErr maps scheduler errors to API errors.
func schedErr(err error) error {
	switch {
	case errors.Is(err, scheduler.ErrUnknownPipeline):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, scheduler.ErrPaused), errors.Is(err, scheduler.ErrQueueFull),
		errors.Is(err, scheduler.ErrAlreadyQueued), errors.Is(err, scheduler.ErrDraining):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return err
}

func (b *backend) Trigger(ctx context.Context, name string) (api.Triggered, error) {
	d := b.d()
	if _, ok := b.summary(name); !ok {
		return api.Triggered{}, notFound(name)
	}
	job, err := d.sched.Trigger(name, scheduler.TriggerManual, time.Time{})
	if err != nil {
		return api.Triggered{}, schedErr(err)
	}
	return api.Triggered{Pipeline: name, LogicalTimes: []time.Time{job.Logical}, Queued: true}, nil
}

func (b *backend) Backfill(ctx context.Context, name string, from, to time.Time) (api.Triggered, error) {
	d := b.d()
	d.mu.Lock()
	p := d.pipes[name]
	var sch scheduler.Schedule
	if p != nil {
		sch = p.sched
	}
	d.mu.Unlock()
	if p == nil {
		return api.Triggered{}, notFound(name)
	}
	times := []time.Time{from}
	if sch != nil {
		times = times[:0]
		for t := sch.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = sch.Next(t) {
			if len(times) == maxBackfill {
				return api.Triggered{}, fmt.Errorf("%w: the range holds more than %d logical times; backfill it in parts", api.ErrBadRequest, maxBackfill)
			}
			times = append(times, t)
		}
		if len(times) == 0 {
			return api.Triggered{}, fmt.Errorf("%w: the schedule %q has no logical time in that range", api.ErrBadRequest, p.cur.Schedule)
		}
	}
	out := api.Triggered{Pipeline: name, Queued: true}
	for _, t := range times {
		if _, err := d.sched.Trigger(name, scheduler.TriggerBackfill, t); err != nil && !errors.Is(err, scheduler.ErrAlreadyQueued) {
			return out, schedErr(err)
		}
		out.LogicalTimes = append(out.LogicalTimes, t)
	}
	return out, nil
}

func (b *backend) Pause(ctx context.Context, name string) error {
	return schedErr(b.d().sched.Pause(name))
}

func (b *backend) Resume(ctx context.Context, name string) error {
	err := b.d().sched.Resume(name)
	if err == nil {
		b.d().notify.Resolve("quarantine/" + name)
	}
	return schedErr(err)
}

func (b *backend) current(name string) (string, bool) {
	d := b.d()
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.pipes[name]; p != nil {
		return p.cur.Hash, true
	}
	return "", false
}

func (b *backend) Versions(ctx context.Context, name string) ([]api.Version, error) {
	cur, ok := b.current(name)
	if !ok {
		return nil, notFound(name)
	}
	vs, err := b.d().store.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.Version, len(vs))
	for i, v := range vs {
		out[i] = api.VersionOf(v, cur, false)
		out[i].Reason = b.d().secrets.Redact(out[i].Reason)
	}
	return out, nil
}

func (b *backend) Version(ctx context.Context, name, hash string) (api.Version, error) {
	cur, _ := b.current(name)
	v, err := b.d().store.Version(ctx, name, hash)
	if err != nil {
		return api.Version{}, err
	}
	out := api.VersionOf(v, cur, true)
	out.Content = b.d().secrets.Redact(out.Content)
	return out, nil
}

func (b *backend) DeadLetters(ctx context.Context, f state.DLQFilter) (api.DeadLetterPage, error) {
	d := b.d()
	n, err := d.store.CountDeadLetters(ctx, state.DLQFilter{Pipeline: f.Pipeline, RunID: f.RunID, Step: f.Step, Contains: f.Contains})
	if err != nil {
		return api.DeadLetterPage{}, err
	}
	dls, err := d.store.DeadLetters(ctx, f)
	if err != nil {
		return api.DeadLetterPage{}, err
	}
	out := api.DeadLetterPage{Total: n, Items: make([]api.DeadLetter, len(dls))}
	for i, dl := range dls {
		out.Items[i] = b.redactDL(api.DeadLetterOf(dl))
	}
	return out, nil
}

func (b *backend) redactDL(dl api.DeadLetter) api.DeadLetter {
	s := b.d().secrets
	dl.Error, dl.Record, dl.Task, dl.Loc = s.Redact(dl.Error), s.Redact(dl.Record), s.Redact(dl.Task), s.Redact(dl.Loc)
	return dl
}

func (b *backend) DeadLetter(ctx context.Context, id int64) (api.DeadLetter, error) {
	dl, err := b.d().store.DeadLetter(ctx, id)
	if err != nil {
		return api.DeadLetter{}, err
	}
	return b.redactDL(api.DeadLetterOf(dl)), nil
}

// Replay sends the selected dead letters through the current version of
// their pipeline, one pipeline at a time.
func (b *backend) Replay(ctx context.Context, sel api.Selection) (api.ReplayResult, error) {
	d := b.d()
	f := sel.Filter()
	f.Limit = 100000
	dls, err := d.store.DeadLetters(ctx, f)
	if err != nil {
		return api.ReplayResult{}, err
	}
	byPipe := map[string][]state.DeadLetter{}
	for _, dl := range dls {
		byPipe[dl.Pipeline] = append(byPipe[dl.Pipeline], dl)
	}
	out := api.ReplayResult{Selected: len(dls)}
	names := make([]string, 0, len(byPipe))
	for n := range byPipe {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		d.mu.Lock()
		p := d.pipes[name]
		d.mu.Unlock()
		if p == nil {
			return out, fmt.Errorf("%w: dead letters of pipeline %q, which is not loaded", api.ErrConflict, name)
		}
		d.mu.Lock()
		cfg := p.cur
		d.mu.Unlock()
		d.runGroup.Add(1)
		res, err := engine.Replay(ctx, cfg, engine.Options{Store: d.store, Logger: d.log, Clock: d.clock.Now}, byPipe[name])
		d.runGroup.Done()
		if res != nil && res.Result != nil {
			out.RunID = res.Run.ID
			out.Written += res.Run.Written
			out.Rejected += int64(res.Still)
			out.Removed += res.Removed
			d.metrics.finished(name, state.TriggerReplay, res.Result)
		}
		if err != nil {
			return out, fmt.Errorf("replay of %s: %s", name, d.secrets.Redact(err.Error()))
		}
	}
	return out, nil
}

func (b *backend) Purge(ctx context.Context, sel api.Selection) (int, error) {
	return b.d().deleteDeadLetters(ctx, sel.Filter())
}

func (b *backend) Ready(ctx context.Context) api.Readiness {
	d := b.d()
	out := api.Readiness{Ready: true}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := d.store.Runs(cctx, state.RunFilter{Limit: 1}); err != nil {
		out.Ready = false
		out.Problems = append(out.Problems, "state store unreachable: "+d.secrets.Redact(err.Error()))
	}
	d.mu.Lock()
	if !d.ready {
		out.Ready = false
		out.Problems = append(out.Problems, "scheduler not running")
	}
	var late []string
	for _, p := range d.pipes {
		if p.late {
			late = append(late, p.name)
		}
	}
	d.mu.Unlock()
	sort.Strings(late)
	for _, n := range late {
		out.Degraded = true
		out.Problems = append(out.Problems, n+": freshness breached")
	}
	return out
}
