package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/backbone-etl/backbone/internal/alert"
	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/scheduler"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/pgstate"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// Options configure a daemon.
type Options struct {
	// Dir holds the pipeline files (*.yaml, *.yml; *.test.yaml fixtures
	// are not pipelines).
	Dir string
	// State is the state store: a SQLite path or a postgres:// DSN.
	// ".backbone/state.db" when empty.
	State string
	// Listen is the API's address; "127.0.0.1:8080" when empty. Listening
	// beyond the loopback interface is the operator's explicit choice.
	Listen string
	// Tokens admit API requests; none: every endpoint but /healthz refuses.
	Tokens   []api.Token
	Webhooks []alert.Webhook
	// MaxConcurrent bounds the runs in flight over all pipelines; 0: the
	// number of CPUs times 2.
	MaxConcurrent int
	// DrainTimeout bounds the stop: runs in flight get this long to reach
	// a batch boundary and commit. 30s when zero.
	DrainTimeout time.Duration
	// ReloadEvery is how often the folder is checked for changes; 2s when
	// zero, negative: only on Reload (SIGHUP).
	ReloadEvery time.Duration
	// CheckEvery is how often freshness is judged; 1s when zero.
	CheckEvery time.Duration
	// LeaseTTL is the life of a pipeline's lease in a shared (PostgreSQL)
	// state store; renewed at a third of it. 30s when zero.
	LeaseTTL time.Duration
	// Instance names this process in leases; host:pid when empty.
	Instance string
	// Clock drives schedules and freshness; the system clock when nil.
	Clock    scheduler.Clock
	Registry *connector.Registry
	Env      config.LookupEnv
	Logger   *slog.Logger
	// UI serves the dashboard; nil: none.
	UI http.Handler
	// Grace is how long a run past its timeout has to return; see
	// scheduler.Options.Grace.
	Grace time.Duration
	// RetryJitter is the jitter of retry backoffs, in [0, 1]; 0.2 when
	// zero, negative: none (tests).
	RetryJitter float64
	// AlertBackoff is the first wait before an alert is sent again; 1s
	// when zero.
	AlertBackoff time.Duration
	// KeepHistory is how long run history is kept; 30 days when zero.
	// Runs that succeeded without reading anything are kept KeepEmpty (a
	// day when zero): a pipeline every minute writes 1440 of them a day.
	// Each pipeline's newest run and newest success are always kept.
	KeepHistory, KeepEmpty time.Duration
	// OnRun, when set, is called after every run with its history record
	// (tests and embedding programs).
	OnRun func(state.Run)
}

// Daemon is a running `backbone serve`.
type Daemon struct {
	o       Options
	log     *slog.Logger
	clock   scheduler.Clock
	store   state.Store
	leases  *pgstate.Store // nil: one process, no lease needed
	sched   *scheduler.Scheduler
	notify  *alert.Notifier
	metrics *metrics
	secrets *secrets
	started time.Time

	mu     sync.Mutex
	pipes  map[string]*pipe   // by pipeline name
	files  map[string]*source // by file path
	live   map[string]*liveRun
	ready  bool
	reload chan chan struct{}

	addr     string
	handler  http.Handler
	runGroup sync.WaitGroup // replays and other work outside the scheduler
}

// source is one pipeline file as last read.
type source struct {
	path    string
	hash    string // sha256 of the content last seen
	name    string // the pipeline it defines, "" when it never loaded
	problem string // why the content last seen was refused
}

// New opens the state store and loads the pipeline folder; Run serves.
func New(ctx context.Context, o Options) (*Daemon, error) {
	if o.Dir == "" {
		return nil, errors.New("serve: no pipeline folder")
	}
	if st, err := os.Stat(o.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("serve: pipeline folder %s: not a readable folder", o.Dir)
	}
	if o.State == "" {
		o.State = filepath.Join(".backbone", "state.db")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 2 * maxProcs()
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.ReloadEvery == 0 {
		o.ReloadEvery = 2 * time.Second
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Second
	}
	if o.KeepHistory <= 0 {
		o.KeepHistory = 30 * 24 * time.Hour
	}
	if o.KeepEmpty <= 0 {
		o.KeepEmpty = 24 * time.Hour
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Instance == "" {
		host, _ := os.Hostname()
		o.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Clock == nil {
		o.Clock = scheduler.SystemClock()
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.RetryJitter == 0:
		o.RetryJitter = 0.2
	case o.RetryJitter < 0:
		o.RetryJitter = 0
	}
	d := &Daemon{o: o, clock: o.Clock, secrets: newSecrets(),
		pipes: map[string]*pipe{}, files: map[string]*source{}, live: map[string]*liveRun{},
		reload: make(chan chan struct{})}
	for _, t := range o.Tokens {
		d.secrets.add(t.Value)
	}
	for _, w := range o.Webhooks {
		for _, v := range w.Headers {
			d.secrets.add(v)
			if _, tok, ok := strings.Cut(v, " "); ok {
				d.secrets.add(tok)
			}
		}
	}
	d.log = slog.New(&redactHandler{h: o.Logger.Handler(), s: d.secrets})
	d.started = d.clock.Now()

	var err error
	if isPostgres(o.State) {
		var pg *pgstate.Store
		pg, err = pgstate.Open(ctx, o.State)
		if err == nil {
			d.store, d.leases = pg, pg
		}
	} else {
		d.store, err = sqlitestate.Open(ctx, o.State)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: state store: %w", err)
	}

	notify, err := alert.New(alert.Options{Webhooks: o.Webhooks, Redact: d.secrets.Redact, Source: o.Instance,
		Logger: d.log, BackoffBase: o.AlertBackoff})
	if err != nil {
		d.store.Close()
		return nil, fmt.Errorf("serve: alerts: %w", err)
	}
	d.notify = notify
	d.metrics = newMetrics(func() (int64, int64) { s := d.notify.Stats(); return s.Sent, s.Failed })

	so := scheduler.Options{
		Run:           d.runJob,
		Clock:         o.Clock,
		MaxConcurrent: o.MaxConcurrent,
		Logger:        d.log,
		Grace:         o.Grace,
		Hooks:         d.hooks(),
	}
	if d.leases != nil {
		so.Lease = &lease{s: d.leases, holder: o.Instance, ttl: o.LeaseTTL}
		so.LeaseRenew = o.LeaseTTL / 3
	}
	d.sched, err = scheduler.New(so)
	if err != nil {
		d.store.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	d.reloadFolder(ctx)
	d.handler = api.New(api.Options{Backend: (*backend)(d), Tokens: o.Tokens, Metrics: d.metrics.handler(),
		UI: o.UI, Redact: d.secrets.Redact, Logger: d.log})
	return d, nil
}

func isPostgres(loc string) bool {
	return strings.HasPrefix(loc, "postgres://") || strings.HasPrefix(loc, "postgresql://")
}

// Handler is the API, metrics and dashboard handler.
func (d *Daemon) Handler() http.Handler { return d.handler }

// Addr is the address the API listens on, once Run listens.
func (d *Daemon) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// Reload reads the pipeline folder again now (SIGHUP) and returns when the
// changes are applied or refused.
func (d *Daemon) Reload(ctx context.Context) {
	done := make(chan struct{})
	select {
	case d.reload <- done:
		select {
		case <-done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
}

// Run serves until ctx is done, then drains: no new runs, runs in flight
// stop at a batch boundary and commit within DrainTimeout; a cancelled
// hard context abandons them at once. listening, when not nil, is called
// with the address once the API accepts connections.
func (d *Daemon) Run(ctx, hard context.Context, listening func(addr string)) error {
	defer d.store.Close()
	ln, err := net.Listen("tcp", d.o.Listen)
	if err != nil {
		d.notify.Close(context.Background())
		return &ListenError{Addr: d.o.Listen, Err: err}
	}
	srv := &http.Server{Handler: d.handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d.mu.Lock()
	d.addr = ln.Addr().String()
	d.mu.Unlock()
	d.log.Info("serving", "addr", d.addr, "pipelines", len(d.pipes), "state", redactDSN(d.o.State))
	if listening != nil {
		listening(d.addr)
	}

	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	if err := d.sched.Start(schedCtx); err != nil {
		return err
	}
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()

	var loops sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(ctx)
	loops.Go(func() { d.watch(loopCtx) })
	loops.Go(func() { d.checkLoop(loopCtx) })
	loops.Go(func() { d.pruneLoop(loopCtx) })

	select {
	case <-ctx.Done():
	case err = <-served:
		d.log.Error("the API server stopped", "error", err)
	}
	stopLoops()
	loops.Wait()
	d.mu.Lock()
	d.ready = false
	d.mu.Unlock()

	start := time.Now()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.DrainTimeout)
	defer cancel()
	stopHard := context.AfterFunc(hard, cancel)
	defer stopHard()
	derr := d.sched.Drain(drainCtx)
	d.runGroup.Wait()
	d.log.Info("drained", "seconds", time.Since(start).Seconds(), "error", errString(derr))

	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	_ = srv.Shutdown(shutCtx)
	alertCtx, cancelAlerts := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelAlerts()
	_ = d.notify.Close(alertCtx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return derr
}

// ListenError is a failure to listen on the API address.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return "serve: listen on " + e.Addr + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// redactDSN hides a DSN's password for logs.
func redactDSN(s string) string {
	if !isPostgres(s) {
		return s
	}
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://") + 3
	if at < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme:at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:scheme] + user + ":[redacted]" + s[at:]
	}
	return s
}

// redactHandler redacts every secret the daemon knows from log messages
// and string attributes.
type redactHandler struct {
	h slog.Handler
	s *secrets
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.s.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) attr(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.s.Redact(a.Value.String()))
	case slog.KindGroup:
		var as []any
		for _, g := range a.Value.Group() {
			as = append(as, r.attr(g))
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, r.s.Redact(err.Error()))
		}
		return slog.String(a.Key, r.s.Redact(a.Value.String()))
	}
	return a
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return &redactHandler{h: r.h.WithAttrs(out), s: r.s}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), s: r.s}
}

// pruneLoop trims the run history at start and every hour.
func (d *Daemon) pruneLoop(ctx context.Context) {
	for {
		now := d.clock.Now()
		n, err := d.store.PruneRuns(ctx, now.Add(-d.o.KeepHistory), now.Add(-d.o.KeepEmpty))
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("pruning run history", "error", err)
		case n > 0:
			d.log.Info("run history pruned", "runs", n)
		}
		t := time.NewTimer(time.Hour)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
