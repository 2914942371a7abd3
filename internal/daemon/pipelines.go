package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/alert"
	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/scheduler"
	"github.com/backbone-etl/backbone/internal/state"
)

func maxProcs() int { return runtime.GOMAXPROCS(0) }

// pipe is one pipeline the daemon schedules; guarded by Daemon.mu.
type pipe struct {
	name string
	file string
	cur  *config.Pipeline // the version runs use
	good *config.Pipeline // the latest version with a successful run
	// trial: cur is a new version not judged yet by a run.
	trial bool
	// prevOK: the run before cur's first one succeeded.
	prevOK bool
	bad    map[string]string // hash → why that version is bad
	sched  scheduler.Schedule

	lastRun     *state.Run
	lastSuccess time.Time
	recent      []state.Run // newest first, at most recentRuns
	problem     string      // a refused reload, a rollback: shown in the API
	freshSince  time.Time   // when freshness is measured from without a success
	// continuous: the source is unbounded; one long run goes on until the
	// daemon stops, the version changes, or it fails (then it restarts).
	continuous bool
	late       bool
}

const recentRuns = 20

// reloadFolder reads the pipeline folder and applies what changed.
func (d *Daemon) reloadFolder(ctx context.Context) {
	paths, err := pipelineFiles(d.o.Dir)
	if err != nil {
		d.log.Error("reading the pipeline folder", "dir", d.o.Dir, "error", err)
		return
	}
	seen := map[string]bool{}
	for _, path := range paths {
		seen[path] = true
		d.loadFile(ctx, path)
	}
	d.mu.Lock()
	var gone []*source
	for path, src := range d.files {
		if !seen[path] {
			gone = append(gone, src)
			delete(d.files, path)
		}
	}
	d.mu.Unlock()
	for _, src := range gone {
		d.notify.Resolve("reload/" + src.path)
		if src.name == "" {
			continue
		}
		d.mu.Lock()
		p := d.pipes[src.name]
		if p != nil && p.file == src.path {
			delete(d.pipes, src.name)
		} else {
			p = nil
		}
		d.mu.Unlock()
		if p == nil {
			continue
		}
		// Runs in flight finish; nothing new starts.
		if err := d.sched.Remove(src.name); err != nil {
			d.log.Warn("removing a pipeline", "pipeline", src.name, "error", err)
		}
		d.metrics.forget(src.name)
		d.metrics.reloads.WithLabelValues("removed").Inc()
		for _, k := range []string{"freshness/", "run_failed/", "budget/"} {
			d.notify.Resolve(k + src.name)
		}
		d.log.Info("pipeline removed", "pipeline", src.name, "file", src.path)
	}
}

// pipelineFiles lists the pipeline files of dir, sorted.
func pipelineFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		ext := filepath.Ext(n)
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		if strings.HasSuffix(strings.TrimSuffix(n, ext), ".test") {
			continue // fixtures of `backbone test`
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

// loadFile loads one pipeline file when its content changed since it was
// last seen, and applies it or refuses it.
func (d *Daemon) loadFile(ctx context.Context, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		d.log.Warn("reading a pipeline file", "file", path, "error", err)
		return
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	d.mu.Lock()
	src := d.files[path]
	if src == nil {
		src = &source{path: path}
		d.files[path] = src
	}
	unchanged := src.hash == hash
	d.mu.Unlock()
	if unchanged {
		return
	}

	p, err := config.Load(path, raw, config.Options{Registry: d.o.Registry, Env: d.o.Env})
	var sch scheduler.Schedule
	if err == nil {
		d.secrets.add(p.Redactor.Values()...)
		err = d.check(ctx, p)
	}
	if err == nil && p.Schedule != "" {
		sch, err = scheduler.Parse(p.Schedule, p.Timezone)
		if err != nil {
			pos := p.Runs.SchedulePos
			err = fmt.Errorf("%s:%d:%d: schedule: %w", path, pos.Line, pos.Col, err)
		}
	}
	if err == nil {
		d.mu.Lock()
		if other := d.pipes[p.Name]; other != nil && other.file != path {
			err = fmt.Errorf("%s: pipeline name %q is already used by %s", path, p.Name, other.file)
		}
		d.mu.Unlock()
	}
	if err != nil {
		d.refuse(src, hash, err)
		return
	}
	d.apply(ctx, src, hash, p, sch)
}

// check validates a new version as `backbone validate` does: expressions
// bound to the schema, lookups opened.
func (d *Daemon) check(ctx context.Context, p *config.Pipeline) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := engine.Check(cctx, p); err != nil {
		return fmt.Errorf("%s: %s", p.File, p.Redactor.Redact(err.Error()))
	}
	return nil
}

// refuse records and alerts a pipeline file that does not load; the
// version already running, if any, keeps running.
func (d *Daemon) refuse(src *source, hash string, err error) {
	msg := d.secrets.Redact(err.Error())
	d.mu.Lock()
	src.hash, src.problem = hash, msg
	name := src.name
	if p := d.pipes[name]; p != nil {
		p.problem = "new version refused: " + msg
	}
	d.mu.Unlock()
	d.metrics.reloads.WithLabelValues("refused").Inc()
	summary := "pipeline file " + src.path + " refused"
	if name != "" {
		summary += "; the running version of " + name + " keeps running"
	}
	d.log.Warn("pipeline file refused", "file", src.path, "pipeline", name, "error", msg)
	d.notify.Fire(alert.Alert{Kind: alert.KindReloadRefused, Pipeline: name, Key: "reload/" + src.path,
		Summary: summary, Details: map[string]string{"file": src.path, "error": msg}})
}

// apply schedules a new or changed pipeline.
func (d *Daemon) apply(ctx context.Context, src *source, hash string, p *config.Pipeline, sch scheduler.Schedule) {
	d.mu.Lock()
	src.hash, src.problem = hash, ""
	old := d.pipes[p.Name]
	if src.name != "" && src.name != p.Name {
		// The file renamed its pipeline: the old name goes.
		if prev := d.pipes[src.name]; prev != nil && prev.file == src.path {
			delete(d.pipes, src.name)
			d.mu.Unlock()
			_ = d.sched.Remove(src.name)
			d.mu.Lock()
		}
	}
	src.name = p.Name
	if old != nil {
		if why, bad := old.bad[p.Hash]; bad {
			old.problem = "version " + short(p.Hash) + " is bad (" + why + "); the previous version keeps running"
			d.mu.Unlock()
			d.notify.Resolve("reload/" + src.path)
			return
		}
		if old.cur.Hash != p.Hash {
			old.trial = old.good == nil || old.good.Hash != p.Hash
			old.prevOK = old.lastRun != nil && old.lastRun.Status == state.StatusSucceeded
		}
		changed := old.cur.Hash != p.Hash
		old.cur, old.sched, old.problem = p, sch, ""
		old.continuous = connector.IsUnbounded(p.Source.Source)
		if changed && old.continuous {
			// A continuous run never ends by itself: stop it at a batch
			// boundary, and the new version starts when it has committed.
			d.stopLive(p.Name, errNewVersion)
		}
	}
	d.mu.Unlock()

	if old == nil {
		np := &pipe{name: p.Name, file: src.path, cur: p, sched: sch, bad: map[string]string{}, freshSince: d.clock.Now(),
			continuous: connector.IsUnbounded(p.Source.Source)}
		d.restore(ctx, np)
		d.mu.Lock()
		d.pipes[p.Name] = np
		d.mu.Unlock()
		old = np
	}
	if err := d.sched.Set(d.spec(old)); err != nil {
		d.refuse(src, hash, err)
		return
	}
	d.metrics.reloads.WithLabelValues("applied").Inc()
	d.notify.Resolve("reload/" + src.path)
	if p.Freshness > 0 {
		d.metrics.freshnessSLO.WithLabelValues(p.Name).Set(p.Freshness.Seconds())
	}
	d.log.Info("pipeline loaded", "pipeline", p.Name, "file", src.path, "version", short(p.Hash), "schedule", p.Schedule,
		"continuous", old.continuous)
	if old.continuous {
		d.startContinuous(p.Name)
	}
}

// watchdog is the schedule of a continuous pipeline: it restarts a run that
// ended (a failure past its retries); a tick while the run goes on is
// skipped.
var watchdog, _ = scheduler.Parse("every 1m", time.UTC)

// errNewVersion is the cause of stopping a continuous run for a reload.
var errNewVersion = errors.New("a new version of the pipeline was loaded")

// startContinuous starts a continuous pipeline's run unless one is in
// flight or queued.
func (d *Daemon) startContinuous(name string) {
	st, err := d.sched.Status(name)
	if err != nil || st.InFlight > 0 || st.Queued > 0 || st.Paused || st.Quarantined {
		return
	}
	if _, err := d.sched.Trigger(name, scheduler.TriggerManual, time.Time{}); err != nil && !errors.Is(err, scheduler.ErrAlreadyQueued) {
		d.log.Warn("starting a continuous pipeline", "pipeline", name, "error", err)
	}
}

// stopLive stops the runs in flight of a pipeline softly (caller holds d.mu).
func (d *Daemon) stopLive(name string, cause error) {
	for _, lr := range d.live {
		if lr.pipeline == name && lr.stop != nil {
			lr.stop(cause)
		}
	}
}

// spec is the scheduler's view of a pipeline.
func (d *Daemon) spec(p *pipe) scheduler.PipelineSpec {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := p.cur
	var last time.Time
	// The latest scheduled logical time: a retry repeats one already in
	// the history as scheduled (or as a backfill, which must not count).
	for _, r := range p.recent {
		if r.Trigger == state.TriggerSchedule {
			last = r.LogicalTime
			break
		}
	}
	sch, timeout, catchUp := p.sched, c.Runs.Timeout, scheduler.CatchUp(c.Runs.CatchUp)
	if p.continuous {
		sch, timeout, catchUp = watchdog, 0, scheduler.CatchUpSkip
	}
	return scheduler.PipelineSpec{
		Name:            c.Name,
		Schedule:        sch,
		CatchUp:         catchUp,
		Concurrency:     c.Runs.Concurrency,
		Timeout:         timeout,
		QuarantineAfter: c.Runs.QuarantineAfter,
		LastLogical:     last,
		Retry: scheduler.RetryPolicy{Retries: c.Runs.Retries, Backoff: c.Runs.Backoff,
			MaxBackoff: c.Runs.MaxBackoff, Jitter: d.o.RetryJitter},
	}
}

// restore reads a pipeline's recent history and versions from the store.
func (d *Daemon) restore(ctx context.Context, p *pipe) {
	runs, err := d.store.Runs(ctx, state.RunFilter{Pipeline: p.name, Limit: recentRuns})
	if err != nil {
		d.log.Warn("reading run history", "pipeline", p.name, "error", err)
		return
	}
	p.recent = runs
	if len(runs) > 0 {
		r := runs[0]
		p.lastRun = &r
	}
	if ok, err := d.store.Runs(ctx, state.RunFilter{Pipeline: p.name, Status: state.StatusSucceeded, Limit: 1}); err == nil && len(ok) > 0 {
		p.lastSuccess = ok[0].End
		d.metrics.lastSuccess.WithLabelValues(p.name).Set(float64(p.lastSuccess.UnixNano()) / 1e9)
	}
	vs, err := d.store.Versions(ctx, p.name)
	if err != nil {
		return
	}
	for _, v := range vs {
		if v.Status == state.VersionBad {
			p.bad[v.Hash] = v.Reason
		}
	}
	if why, bad := p.bad[p.cur.Hash]; bad {
		p.problem = "version " + short(p.cur.Hash) + " was judged bad before (" + why + ")"
	}
	// The version on disk has run before and is good, or it is new.
	known := false
	for _, v := range vs {
		if v.Hash == p.cur.Hash {
			known = true
			if v.Status == state.VersionGood {
				p.good = p.cur
			}
		}
	}
	if !known && len(vs) > 0 {
		p.trial = true
		p.prevOK = p.lastRun != nil && p.lastRun.Status == state.StatusSucceeded
		for _, v := range vs {
			if v.Status == state.VersionGood {
				// The previous good version is loadable from its stored
				// content for a rollback after a restart.
				if gp, err := config.Load(p.file, v.Content, config.Options{Registry: d.o.Registry, Env: d.o.Env}); err == nil && !strings.Contains(string(v.Content), "[redacted]") {
					p.good = gp
				}
				break
			}
		}
	}
}

// watch reloads the folder on Reload and every ReloadEvery.
func (d *Daemon) watch(ctx context.Context) {
	var tick <-chan time.Time
	if d.o.ReloadEvery > 0 {
		t := time.NewTicker(d.o.ReloadEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case done := <-d.reload:
			d.reloadFolder(ctx)
			close(done)
		case <-tick:
			d.reloadFolder(ctx)
		}
	}
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// lease adapts the PostgreSQL store's leases to the scheduler.
type lease struct {
	s interface {
		TryLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error)
		RenewLease(ctx context.Context, name, holder string, token int64, ttl time.Duration) error
		ReleaseLease(ctx context.Context, name, holder string, token int64) error
	}
	holder string
	ttl    time.Duration
}

func leaseName(pipeline string) string { return "pipeline/" + pipeline }

func (l *lease) Acquire(ctx context.Context, pipeline string) (int64, bool, error) {
	return l.s.TryLease(ctx, leaseName(pipeline), l.holder, l.ttl)
}

func (l *lease) Renew(ctx context.Context, pipeline string, token int64) error {
	return l.s.RenewLease(ctx, leaseName(pipeline), l.holder, token, l.ttl)
}

func (l *lease) Release(ctx context.Context, pipeline string, token int64) error {
	return l.s.ReleaseLease(ctx, leaseName(pipeline), l.holder, token)
}

// errLeaseLost is what the fence answers once the lease is gone.
var errLeaseLost = errors.New("this process no longer holds the pipeline's lease")
