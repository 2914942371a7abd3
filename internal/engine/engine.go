package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/failpoint"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// Options tune one run.
type Options struct {
	Store       state.Store // required unless DryRun
	RunID       string      // generated when empty
	Trigger     string      // state.TriggerManual when empty
	LogicalTime time.Time   // the run's logical time; the start time when zero
	DryRun      bool        // read and transform, write nothing anywhere
	// Hard bounds the work after a soft stop: when ctx (the soft stop) is
	// cancelled, reading stops and batches in flight are still processed and
	// committed until Hard is done. context.Background() when nil.
	Hard     context.Context
	Logger   *slog.Logger
	Progress func(Progress) // called from one goroutine, at most every ProgressEvery
	// ProgressEvery is the progress period; 200ms when zero.
	ProgressEvery time.Duration
	// Clock returns the wall time for run history; time.Now when nil.
	Clock func() time.Time
	// MemoryBudget, when positive, tunes the garbage collector of the whole
	// process for this run: a soft limit of this many bytes beyond what the
	// loaded lookups hold. For `backbone run`, which owns its process.
	MemoryBudget int64
	// Backfill reads the source from its start and moves no checkpoint, so
	// a backfill of past logical times leaves the live cursor where it is.
	// Rejects go to the dead letters as in any run.
	Backfill bool
	// Fence, when set, is asked before every commit whether this process
	// may still commit (it holds the pipeline's lease); an error stops the
	// run without committing. The daemon sets it when several processes
	// share a state store.
	Fence func(ctx context.Context) error
	// Observe, when set, is told how long each sink write and commit took.
	Observe func(op string, d time.Duration)

	noCheckpoints bool                     // replay: read no checkpoint, move none
	onRejects     func([]state.DeadLetter) // replay: takes the dead letters instead of the store
}

// Progress is a snapshot of a run in flight.
type Progress struct {
	Read, Written, Rejected, Filtered int64
	BytesRead, BytesTotal             int64 // BytesTotal 0 when unknown
	TasksDone, Tasks                  int
	Elapsed                           time.Duration
}

// Result is what a run did.
type Result struct {
	Run           state.Run
	Duration      time.Duration
	RejectsByStep map[string]int64
	TopReasons    []Reason // most frequent reject reasons, first 5
	Tasks         int      // tasks read this run
	Skipped       int      // tasks already done in an earlier run
	Schema        *record.Schema
	// LookupCache has, per lookup with a cache, its hits and misses.
	LookupCache map[string][2]int64
	// Steps are the records in and out of each step, in pipeline order.
	Steps []StepCount
}

// StepCount is what one step of a run saw.
type StepCount struct {
	Step              string
	In, Out, Filtered int64
}

// Reason is a reject reason and how often it occurred.
type Reason struct {
	Step, Reason string
	Count        int64
}

// Conserved reports read = written + rejected + filtered.
func (r *Result) Conserved() bool {
	return r.Run.Read == r.Run.Written+r.Run.Rejected+r.Run.Filtered
}

// BudgetError is the failure of a run whose rejects exceeded the error
// budget. The checkpoint did not move past the batch that exceeded it.
type BudgetError struct {
	Rejected, Read int64
	Limit          string
}

func (e *BudgetError) Error() string {
	rate := 0.0
	if e.Read > 0 {
		rate = float64(e.Rejected) / float64(e.Read) * 100
	}
	return fmt.Sprintf("error budget exceeded: %d of %d records rejected (%.2f%%), over %s; the checkpoint was not moved past the bad data",
		e.Rejected, e.Read, rate, e.Limit)
}

// FenceError stops a run that may no longer commit: another process took
// the pipeline's lease. Nothing was committed after the fence refused.
type FenceError struct{ Err error }

func (e *FenceError) Error() string { return "lease lost, commit refused: " + e.Err.Error() }
func (e *FenceError) Unwrap() error { return e.Err }

// Run executes one run of a pipeline: plan tasks, read, transform, write,
// commit checkpoints, record rejects and history. The returned Result is
// non-nil whenever the run started, also when err is not nil.
func Run(ctx context.Context, p *config.Pipeline, opts Options) (*Result, error) {
	r, err := newRunner(p, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type runner struct {
	p    *config.Pipeline
	opts Options
	env  *connector.Env
	log  *slog.Logger
	now  func() time.Time

	tables   map[string]connector.Table
	parallel []*boundStep // steps run by workers
	ordered  []*boundStep // steps run in order by the sink goroutine
	in, out  *record.Schema

	read, written, rejected, filtered atomic.Int64
	// durable are read, written, rejected and filtered as of the last
	// commit, when the sink's rows can be rolled back (transactional or
	// once): what a failed run reports, since the rest is read again.
	durable               *[4]int64
	bytesRead, bytesTotal atomic.Int64
	tasksDone             atomic.Int64
	tasks                 int

	mu      sync.Mutex
	byStep  map[string]int64
	reasons map[[2]string]int64

	cacheStats map[string][2]int64 // set when the lookups close

	ackers []connector.Reader // Ackers read to their end, closed once the sink is done (mu)
	// stored is the sink's checkpoints as loaded and then committed by this
	// run: the Base of each checkpoint committed (sink goroutine only).
	stored map[string]connector.Checkpoint
}

type boundStep struct {
	label string
	step  connector.Step
	// Records in and out of the step, and those it filtered, over the run.
	in, out, filtered atomic.Int64
}

func newRunner(p *config.Pipeline, opts Options) (*runner, error) {
	if opts.Store == nil && !opts.DryRun {
		return nil, errors.New("engine: a state store is required")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RunID == "" {
		opts.RunID = NewRunID(opts.Clock())
	}
	if opts.Trigger == "" {
		opts.Trigger = state.TriggerManual
	}
	if opts.LogicalTime.IsZero() {
		opts.LogicalTime = opts.Clock()
	}
	if opts.Hard == nil {
		opts.Hard = context.Background()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 200 * time.Millisecond
	}
	if opts.Backfill {
		opts.noCheckpoints = true
	}
	env := &connector.Env{
		Pipeline: p.Name,
		RunID:    opts.RunID,
		RunTime:  opts.LogicalTime,
		Dir:      p.Dir,
		Limits:   p.Settings.Limits,
		Location: p.Timezone,
		Logger:   opts.Logger,
		DryRun:   opts.DryRun,

		DeferDecode: true,
	}
	return &runner{p: p, opts: opts, env: env, log: opts.Logger, now: opts.Clock,
		byStep: map[string]int64{}, reasons: map[[2]string]int64{}}, nil
}

// NewRunID returns a sortable unique run id: the UTC time and 6 random bytes.
func NewRunID(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (r *runner) run(ctx context.Context) (res *Result, err error) {
	start := r.now()
	res = &Result{RejectsByStep: r.byStep}
	res.Run = state.Run{
		ID: r.opts.RunID, Pipeline: r.p.Name, ConfigHash: r.p.Hash, Trigger: r.opts.Trigger,
		LogicalTime: r.opts.LogicalTime, Start: start, Status: state.StatusRunning,
	}
	hard := r.opts.Hard
	if !r.opts.DryRun {
		if err := r.opts.Store.StartRun(hard, &res.Run); err != nil {
			return nil, fmt.Errorf("state store: %w", err)
		}
		// Every version that runs is kept with its runs, secrets redacted.
		if r.p.Hash != "" && len(r.p.Raw) > 0 {
			if err := r.opts.Store.SaveVersion(hard, state.Version{Pipeline: r.p.Name, Hash: r.p.Hash,
				Content: []byte(r.p.Redactor.Redact(string(r.p.Raw))), LastSeen: start}); err != nil {
				return nil, fmt.Errorf("state store: %w", err)
			}
		}
	}
	defer func() {
		if p := recover(); p != nil {
			err = panicError("the run", p)
		}
		res.Run.Read, res.Run.Written = r.read.Load(), r.written.Load()
		res.Run.Rejected, res.Run.Filtered = r.rejected.Load(), r.filtered.Load()
		if err != nil && r.durable != nil {
			res.Run.Read, res.Run.Written, res.Run.Rejected, res.Run.Filtered = r.durable[0], r.durable[1], r.durable[2], r.durable[3]
		}
		res.Run.End = r.now()
		res.Duration = res.Run.End.Sub(start)
		res.TopReasons = r.topReasons(5)
		res.LookupCache = r.cacheStats
		for _, bs := range append(append([]*boundStep(nil), r.parallel...), r.ordered...) {
			res.Steps = append(res.Steps, StepCount{Step: bs.label, In: bs.in.Load(), Out: bs.out.Load(), Filtered: bs.filtered.Load()})
		}
		switch {
		case err == nil:
			res.Run.Status = state.StatusSucceeded
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			res.Run.Status = state.StatusCancelled
			res.Run.Error = r.p.Redactor.Redact(err.Error())
		default:
			res.Run.Status = state.StatusFailed
			res.Run.Error = r.p.Redactor.Redact(err.Error())
		}
		if !r.opts.DryRun {
			if ferr := r.opts.Store.FinishRun(context.WithoutCancel(hard), &res.Run); ferr != nil && err == nil {
				err = fmt.Errorf("state store: %w", ferr)
			}
			// A version is good once one of its runs (not a replay of
			// dead letters, not a backfill) succeeded.
			if err == nil && r.p.Hash != "" && len(r.p.Raw) > 0 && !r.opts.noCheckpoints {
				if merr := r.opts.Store.MarkVersion(context.WithoutCancel(hard), r.p.Name, r.p.Hash, state.VersionGood, ""); merr != nil {
					r.log.Warn("state store: marking the version good", "error", merr)
				}
			}
		}
	}()
	if r.opts.MemoryBudget > 0 { // lookups load with the run's collector settings
		tuneMemory(r.opts.MemoryBudget)
	}
	if err := r.openLookups(ctx); err != nil {
		return res, err
	}
	defer r.closeLookups()
	if r.opts.MemoryBudget > 0 { // and what they hold is left room
		tuneMemory(r.opts.MemoryBudget)
	}

	tasks, cps, err := r.plan(ctx)
	if err != nil {
		return res, err
	}
	res.Skipped = len(cps.skipped)
	res.Tasks = len(tasks)
	res.Run.CursorBefore = r.p.Redactor.Redact(cursorJSON(cps.prior))
	r.tasks = len(tasks)
	for _, t := range tasks {
		r.bytesTotal.Add(t.Size)
	}
	if len(tasks) == 0 {
		if sc, ok := r.p.Source.Source.(connector.Schemer); ok && sc.Schema() != nil {
			if err := r.bind(sc.Schema()); err != nil {
				return res, err
			}
		}
		res.Run.CursorAfter = res.Run.CursorBefore
		return res, nil
	}

	// The first reader gives the schema every step binds to.
	first, err := r.p.Source.Source.Open(ctx, r.env, tasks[0], cps.prior[tasks[0].Key].Pos)
	if err != nil {
		return res, fmt.Errorf("source %s: %w", tasks[0].Key, err)
	}
	if err := r.bind(first.Schema()); err != nil {
		first.Close()
		return res, err
	}
	res.Schema = r.out

	var w connector.Writer
	if !r.opts.DryRun {
		w, err = r.p.Sink.Sink.Open(ctx, r.env, r.out)
		if err != nil {
			first.Close()
			return res, fmt.Errorf("sink: %w", err)
		}
		defer w.Close()
	}
	final, err := r.pump(ctx, tasks, first, cps.prior, w)
	res.Run.CursorAfter = r.p.Redactor.Redact(cursorJSON(final))
	return res, err
}

type planned struct {
	prior   map[string]connector.Checkpoint
	skipped []string
}

// plan lists the source's tasks and drops those finished in earlier runs.
// A sink that stores checkpoints with its rows is the authority on them.
func (r *runner) plan(ctx context.Context) ([]connector.Task, planned, error) {
	pl := planned{prior: map[string]connector.Checkpoint{}}
	tasks, err := r.p.Source.Source.Plan(ctx, r.env)
	if err != nil {
		return nil, pl, fmt.Errorf("source: %w", err)
	}
	if r.opts.noCheckpoints {
		return tasks, pl, nil
	}
	if r.opts.Store != nil {
		cps, err := r.opts.Store.LoadCheckpoints(ctx, r.p.Name)
		if err != nil {
			return nil, pl, fmt.Errorf("state store: %w", err)
		}
		pl.prior = cps
	}
	if cl, ok := r.p.Sink.Sink.(connector.CheckpointLoader); ok {
		cps, err := cl.LoadCheckpoints(ctx, r.env)
		if err != nil {
			return nil, pl, fmt.Errorf("sink checkpoints: %w", err)
		}
		// What the sink holds is the base of every commit's checkpoints.
		r.stored = make(map[string]connector.Checkpoint, len(cps))
		for k, v := range cps {
			r.stored[k] = v
		}
		// The sink's checkpoints were committed with its rows: they win.
		// Tasks the sink does not know fall back to the state store only
		// when the sink never held checkpoints for this pipeline.
		if len(cps) > 0 || len(pl.prior) == 0 {
			pl.prior = cps
		}
	}
	keep := tasks[:0]
	for _, t := range tasks {
		cp, ok := pl.prior[t.Key]
		if ok && cp.Done && t.Final && cp.Fingerprint == t.Fingerprint {
			pl.skipped = append(pl.skipped, t.Key)
			continue
		}
		if ok && cp.Done && cp.Fingerprint != t.Fingerprint {
			// The input changed since it was read: read it again whole.
			delete(pl.prior, t.Key)
		}
		keep = append(keep, t)
	}
	return keep, pl, nil
}

func (r *runner) openLookups(ctx context.Context) error {
	r.tables = map[string]connector.Table{}
	uses := r.lookupUses()
	for _, lk := range r.p.Lookups {
		t, err := connector.OpenLookup(ctx, lk.Lookup, r.env, lk.Name, uses)
		if err != nil {
			r.closeLookups()
			return fmt.Errorf("lookup %s: %w", lk.Name, err)
		}
		r.tables[lk.Name] = t
	}
	return nil
}

// lookupUses is which lookup fields the steps read: what a preload needs
// to load (see connector.LookupUser).
func (r *runner) lookupUses() *connector.LookupUses {
	u := &connector.LookupUses{}
	for _, c := range r.p.Steps {
		if lu, ok := c.Step.(connector.LookupUser); ok {
			lu.UsesLookups(u)
		} else {
			u.All()
		}
	}
	return u
}

func (r *runner) closeLookups() {
	for name, t := range r.tables {
		if cs, ok := t.(connector.CacheStats); ok {
			hits, misses := cs.CacheStats()
			if r.cacheStats == nil {
				r.cacheStats = map[string][2]int64{}
			}
			r.cacheStats[name] = [2]int64{hits, misses}
		}
		t.Close()
	}
}

// bind compiles the steps against the schema flowing into each and splits
// them into the parallel prefix and the ordered rest.
func (r *runner) bind(in *record.Schema) error {
	var errs config.Errors
	schema := in
	orderedFrom := len(r.p.Steps)
	for i, c := range r.p.Steps {
		if o, ok := c.Step.(connector.Ordered); ok && o.Ordered() && i < orderedFrom {
			orderedFrom = i
		}
		senv := &connector.StepEnv{Env: r.env, Name: c.Label, Lookups: r.tables}
		out, err := c.Step.Bind(schema, senv)
		if err != nil {
			var pe *connector.PosError
			if errors.As(err, &pe) {
				cp := *pe
				if cp.Pos.File == "" {
					cp.Pos.File = r.p.File
				}
				errs = append(errs, &cp)
			} else {
				errs = append(errs, &connector.PosError{Pos: c.Pos, Msg: c.Label + ": " + err.Error()})
			}
			continue
		}
		schema = out
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	r.parallel, r.ordered = nil, nil
	for i, c := range r.p.Steps {
		b := &boundStep{label: c.Label, step: c.Step}
		if i < orderedFrom {
			r.parallel = append(r.parallel, b)
		} else {
			r.ordered = append(r.ordered, b)
		}
	}
	r.in, r.out = in, schema
	return nil
}

// job is one batch on its way from a reader through the workers to the
// sink. done is closed when the parallel steps have run.
type job struct {
	task  string
	batch *record.Batch
	err   error
	end   bool // the task's reader reached its end: no batch
	final bool // with end: the task is Final
	fp    string
	done  chan struct{}
	ack   connector.Acker // the reader of batch, when it acknowledges to a broker
}

// pump runs the tasks: readers (one goroutine per task, Settings.Tasks at
// once) feed batches to a pool of step workers; a sequencer per task passes
// them on in source order to the one goroutine that writes, commits and
// checkpoints.
func (r *runner) pump(ctx context.Context, tasks []connector.Task, first connector.Reader, prior map[string]connector.Checkpoint, w connector.Writer) (map[string]connector.Checkpoint, error) {
	hard, cancelHard := context.WithCancelCause(r.opts.Hard)
	defer cancelHard(nil)
	fail := func(err error) { cancelHard(err) }

	workers := r.p.Settings.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	concurrent := r.p.Settings.Tasks
	if concurrent <= 0 {
		concurrent = runtime.GOMAXPROCS(0)
	}
	concurrent = min(concurrent, len(tasks))
	depth := 2*workers + 2 // batches in flight per task

	jobs := make(chan *job, workers*2)
	toSink := make(chan *job, depth)
	var wg sync.WaitGroup

	// Step workers: decode what the source left undecoded, run the
	// parallel steps, and let the sink encode when no ordered step follows.
	prep, _ := w.(connector.Preparer)
	if len(r.ordered) > 0 {
		prep = nil
	}
	for i := 0; i < workers; i++ {
		wg.Go(func() {
			for j := range jobs {
				r.work(hard, j, prep)
				// The reader this receive woke waits in this worker's
				// processor's next slot, which a worker that finds another
				// job ready keeps for up to its 10 ms time slice: the
				// reader, the one goroutine that can fill the queue, sat
				// idle while the workers emptied it (a CSV → JSONL run at
				// 1M rows: 1.5-1.7 of 2 cores busy, 1.9 with the yield,
				// and a fifth less time).
				runtime.Gosched()
			}
		})
	}

	// Readers and their sequencers, Settings.Tasks at once.
	var readers sync.WaitGroup
	sem := make(chan struct{}, concurrent)
	go func() {
		defer func() {
			readers.Wait()
			close(jobs)
			close(toSink)
		}()
		for i, t := range tasks {
			select {
			case sem <- struct{}{}:
			case <-hard.Done():
				if i == 0 {
					first.Close()
				}
				return
			}
			if ctx.Err() != nil { // soft stop: start no new task
				<-sem
				if i == 0 {
					first.Close()
				}
				return
			}
			var rd connector.Reader
			if i == 0 {
				rd = first
			}
			readers.Add(1)
			go func(t connector.Task, rd connector.Reader) {
				defer readers.Done()
				defer func() { <-sem }()
				defer func() {
					if p := recover(); p != nil {
						fail(panicError("reading "+t.Key, p))
					}
				}()
				r.readTask(ctx, hard, t, rd, prior[t.Key].Pos, jobs, toSink, depth, fail)
			}(t, rd)
		}
	}()

	final, err := r.safeSinkLoop(hard, toSink, prior, w)
	if err != nil {
		fail(err)
	}
	// Drain: let readers and workers see the failure and stop.
	for range toSink {
	}
	wg.Wait()
	r.closeAckers()
	if err == nil {
		err = context.Cause(hard)
		if errors.Is(err, context.Canceled) && r.opts.Hard.Err() == nil {
			err = nil // our own cancel after success
		}
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("stopped before the end of the input: %w", ctx.Err())
	}
	return final, err
}

// work decodes a batch, runs the parallel steps and lets the sink encode
// it. A panic in a step becomes the batch's error: the run fails cleanly,
// and the process (a daemon running other pipelines) lives on.
func (r *runner) work(ctx context.Context, j *job, prep connector.Preparer) {
	defer close(j.done)
	defer func() {
		if p := recover(); p != nil {
			j.err = panicError("a step", p)
		}
	}()
	b := j.batch
	if b.Decode != nil {
		b.Decode(b)
		b.Decode = nil
	}
	if j.err == nil {
		j.err = r.runSteps(ctx, r.parallel, b)
	}
	if j.err == nil && prep != nil {
		j.err = prep.Prepare(b)
	}
}

// safeSinkLoop is sinkLoop with a panic turned into its error, so pump
// still stops the readers and workers.
func (r *runner) safeSinkLoop(ctx context.Context, in <-chan *job, prior map[string]connector.Checkpoint, w connector.Writer) (final map[string]connector.Checkpoint, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError("the sink", p)
		}
	}()
	return r.sinkLoop(ctx, in, prior, w)
}

// panicError is a recovered panic, with the stack for the report.
func panicError(where string, p any) error {
	return fmt.Errorf("internal error in %s (please report): %v\n%s", where, p, debug.Stack())
}

// readTask reads one task and hands its batches to the workers, then to the
// sink in order. It keeps at most depth batches of the task in flight.
func (r *runner) readTask(soft, hard context.Context, t connector.Task, rd connector.Reader, pos record.Position, jobs, toSink chan<- *job, depth int, fail func(error)) {
	queue := make(chan *job, depth)
	seqDone := make(chan struct{})
	go func() { // sequencer: source order to the sink
		defer close(seqDone)
		for j := range queue {
			select {
			case <-j.done:
			case <-hard.Done():
				return
			}
			select {
			case toSink <- j:
			case <-hard.Done():
				return
			}
		}
	}()
	defer func() {
		close(queue)
		<-seqDone
	}()
	send := func(j *job) bool {
		select {
		case queue <- j:
		case <-hard.Done():
			return false
		}
		if j.end {
			close(j.done)
			return true
		}
		select {
		case jobs <- j:
			return true
		case <-hard.Done():
			return false
		}
	}
	retries := 0
	if rd == nil {
		var err error
		rd, err = r.openSource(hard, t, pos, &retries)
		if err != nil {
			fail(fmt.Errorf("source %s: %w", t.Key, err))
			return
		}
	}
	defer func() { r.closeReader(rd) }()
	if !rd.Schema().Equal(r.firstSchema()) {
		fail(fmt.Errorf("source %s: its fields (%s) differ from the first task's (%s)", t.Key, rd.Schema(), r.firstSchema()))
		return
	}
	// A broker's reader waits for messages inside Next: the soft stop
	// interrupts that wait, where a bounded reader finishes its batch.
	next := hard
	_, broker := rd.(connector.Acker)
	if broker {
		c, cancel := context.WithCancel(hard)
		defer cancel()
		defer context.AfterFunc(soft, cancel)()
		next = c
	}
	last := pos // position after the last batch handed on
	for {
		if soft.Err() != nil {
			return // soft stop: what was read is still drained and committed
		}
		b, err := rd.Next(next)
		if err != nil && broker && soft.Err() != nil && hard.Err() == nil {
			return // soft stop of a broker's reader
		}
		if err == io.EOF {
			send(&job{task: t.Key, end: true, final: t.Final, fp: t.Fingerprint, done: make(chan struct{})})
			return
		}
		if err != nil && errors.Is(err, connector.ErrTransient) && retries < maxReadRetries && hard.Err() == nil {
			// The service went away: read again from the last position
			// handed on, after a backoff. Batches in flight stay valid.
			retries++
			r.log.Warn("source: retrying after a transient error", "task", t.Key, "attempt", retries, "error", r.p.Redactor.Redact(err.Error()))
			r.closeReader(rd)
			rd = nopReader{}
			if !sleep(hard, backoff(retries)) {
				return
			}
			var again connector.Reader
			if again, err = r.openSource(hard, t, last, &retries); err == nil {
				rd = again
				continue
			}
		}
		if err != nil {
			fail(fmt.Errorf("source %s: %w", t.Key, err))
			return
		}
		retries = 0
		last = b.Pos
		r.bytesRead.Add(b.Bytes)
		ack, _ := rd.(connector.Acker)
		if !send(&job{task: t.Key, batch: b, done: make(chan struct{}), ack: ack}) {
			return
		}
	}
}

// closeReader closes rd once its task is read. An Acker stays open until
// closeAckers, for the sink to acknowledge the batches it still holds.
func (r *runner) closeReader(rd connector.Reader) {
	if _, ok := rd.(connector.Acker); ok {
		r.mu.Lock()
		r.ackers = append(r.ackers, rd)
		r.mu.Unlock()
		return
	}
	rd.Close()
}

// closeAckers closes the Ackers once every reader and the sink are done.
func (r *runner) closeAckers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rd := range r.ackers {
		rd.Close()
	}
	r.ackers = nil
}

// openSource opens task t at pos. The source answered when the run began,
// so a server that fails or cannot be reached now is an outage (a restart,
// a failover): the open is retried with backoff while the error is
// transient or unavailable, counting in *retries up to maxReadRetries.
func (r *runner) openSource(hard context.Context, t connector.Task, pos record.Position, retries *int) (connector.Reader, error) {
	for {
		rd, err := r.p.Source.Source.Open(hard, r.env, t, pos)
		if err == nil {
			return rd, nil
		}
		outage := errors.Is(err, connector.ErrTransient) || errors.Is(err, connector.ErrUnavailable)
		if !outage || *retries >= maxReadRetries || hard.Err() != nil {
			return nil, err
		}
		*retries++
		r.log.Warn("source: retrying after a transient error", "task", t.Key, "attempt", *retries, "error", r.p.Redactor.Redact(err.Error()))
		if !sleep(hard, backoff(*retries)) {
			return nil, err
		}
	}
}

func (r *runner) firstSchema() *record.Schema { return r.in }

func (r *runner) runSteps(ctx context.Context, steps []*boundStep, b *record.Batch) error {
	for _, s := range steps {
		in, filtered := b.Len(), b.Filtered
		if err := s.step.Process(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		b.Compact()
		s.in.Add(int64(in))
		s.out.Add(int64(b.Len()))
		s.filtered.Add(int64(b.Filtered - filtered))
	}
	return nil
}

// sinkLoop is the one goroutine that writes. For every batch, in each
// task's order: ordered steps, error budget, dead letters, write, commit
// with the task's checkpoint. Dead letters are stored before the commit that
// moves the checkpoint past them, so a crash never loses one; storing them
// again after a crash replaces, never duplicates.
func (r *runner) sinkLoop(ctx context.Context, in <-chan *job, prior map[string]connector.Checkpoint, w connector.Writer) (final map[string]connector.Checkpoint, err error) {
	cps := map[string]connector.Checkpoint{}
	committed := map[string]connector.Checkpoint{} // what the history shows on failure
	for k, v := range prior {
		cps[k] = v
		committed[k] = v
	}
	defer func() {
		if err != nil {
			final = committed
		}
	}()
	var info connector.WriterInfo
	if w != nil {
		info = w.Info()
		if info.Transactional || info.Once {
			r.durable = &[4]int64{}
		}
	}
	// markDurable notes the counts of what is committed, once a commit
	// happened and every batch it held is counted.
	commits, marked := 0, 0
	markDurable := func() {
		if r.durable == nil || marked == commits {
			return
		}
		marked = commits
		*r.durable = [4]int64{r.read.Load(), r.written.Load(), r.rejected.Load(), r.filtered.Load()}
	}
	// A writer that stages again what a lost transaction held commits once
	// CommitInterval has passed, CommitBytes of input or StageBatches
	// batches were written since its last commit (see config.Settings);
	// other writers after every batch.
	batched := info.Transactional && info.StageBatches > 1 && !info.Once && r.p.Settings.CommitInterval > 0
	var (
		stagedSince   time.Time        // when the first batch since the last commit was written
		stagedBytes   int64            // input bytes written since the last commit
		stagedBatches int              // batches written since the last commit
		commitDue     <-chan time.Time // fires CommitInterval after stagedSince
	)
	pending := map[string]connector.Checkpoint{}  // reached, not yet committed
	acks := map[connector.Acker]record.Position{} // brokers' readers: last batch written, not yet committed
	tick := time.NewTicker(r.opts.ProgressEvery)
	defer tick.Stop()
	start := r.now()
	report := func() {
		if r.opts.Progress != nil {
			r.opts.Progress(r.progress(start))
		}
	}
	// A Settler's refused rows become rejects before the commit that
	// moves the checkpoint past them. ending: the run's last commit, judged
	// as the end of its input.
	settler, _ := w.(connector.Settler)
	unsettled := map[*record.Batch]string{} // Settler: batches written since the last Settle, by task
	var late []connector.Refusal            // refused, their dead letters not yet stored
	ending := false
	var unjudgedBytes int64 // a once writer's input since the last Settle
	held := false           // commits held back: see attempt
	// settle stores the dead letters of the rows the sink refused since
	// the last Settle and judges the error budget with them.
	settle := func() error {
		if settler == nil {
			return nil
		}
		refused, err := settler.Settle(ctx)
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		late = append(late, refused...)
		if len(late) == 0 {
			clear(unsettled)
			return nil
		}
		for len(late) > 0 {
			rf := late[0]
			task, ok := unsettled[rf.Batch]
			if !ok {
				return fmt.Errorf("sink: rows refused of a batch that was not written since the last commit")
			}
			rejects := r.sinkRejects(rf.Batch, rf.Rows)
			if err := r.deadLetters(ctx, task, rf.Batch, rejects); err != nil {
				return err
			}
			late = late[1:]
			r.written.Add(-int64(len(rejects)))
			r.countRejects(rejects)
		}
		clear(unsettled)
		if err := r.checkBudget(r.read.Load(), r.rejected.Load(), ending); err != nil {
			return err
		}
		if !ending && r.checkBudget(r.read.Load(), r.rejected.Load(), true) != nil {
			held = true // see attempt
		}
		return nil
	}
	commit := func() error {
		if w == nil || len(pending) == 0 {
			return nil
		}
		if err := settle(); err != nil {
			return err
		}
		if held && !ending {
			return nil
		}
		list := sortedCheckpoints(pending)
		if r.opts.noCheckpoints {
			list = nil
		}
		if info.Transactional && r.stored != nil {
			for i := range list {
				list[i].Guard = true
				if base, ok := r.stored[list[i].Task]; ok {
					list[i].Base = &base
				}
			}
		}
		failpoint.Hit("before-commit") // rows staged, nothing committed
		if r.opts.Fence != nil {
			if err := r.opts.Fence(ctx); err != nil {
				return &FenceError{Err: err}
			}
		}
		start := time.Now()
		if err := w.Commit(ctx, list); err != nil {
			return fmt.Errorf("sink commit: %w", err)
		}
		if r.opts.Observe != nil {
			r.opts.Observe("commit", time.Since(start))
		}
		if !info.Transactional && list != nil {
			failpoint.Hit("between-commit-and-checkpoint") // rows durable, state store not told yet
			if err := r.opts.Store.SaveCheckpoints(ctx, r.p.Name, list); err != nil {
				return fmt.Errorf("state store: %w", err)
			}
		}
		failpoint.Hit("after-commit")
		commits++
		for a, pos := range acks {
			if err := a.Ack(ctx, pos); err != nil {
				r.log.Warn("source: acknowledgement failed; the broker will deliver those messages again", "error", r.p.Redactor.Redact(err.Error()))
			}
		}
		clear(acks)
		for k, v := range pending {
			committed[k] = v
		}
		if info.Transactional && list != nil {
			if r.stored == nil {
				r.stored = map[string]connector.Checkpoint{}
			}
			for _, cp := range list {
				cp.Guard, cp.Base = false, nil
				r.stored[cp.Task] = cp
			}
		}
		clear(pending)
		stagedBytes, stagedBatches, commitDue = 0, 0, nil
		return nil
	}
	// stageOnly reports whether a batch just written may wait for a later
	// commit.
	stageOnly := func(b *record.Batch) bool {
		if !batched {
			return false
		}
		now := time.Now()
		if commitDue == nil {
			stagedSince = now
			commitDue = time.After(r.p.Settings.CommitInterval)
		}
		stagedBytes += max(b.Bytes, 1)
		stagedBatches++
		return stagedBytes < r.p.Settings.CommitBytes && stagedBatches < info.StageBatches &&
			now.Sub(stagedSince) < r.p.Settings.CommitInterval
	}
	for {
		var j *job
		var ok bool
		select {
		case j, ok = <-in:
		case <-tick.C:
			report()
			continue
		case <-commitDue: // no batch came to commit what was staged
			commitDue = nil
			if held {
				continue
			}
			if err := r.retry(ctx, "sink commit", commit); err != nil {
				return cps, err
			}
			markDurable()
			continue
		}
		if !ok {
			break
		}
		if j.err != nil {
			return cps, j.err
		}
		cp := cps[j.task]
		cp.Task = j.task
		if j.end {
			r.tasksDone.Add(1)
			if !j.final {
				continue
			}
			cp.Done, cp.Fingerprint = true, j.fp
			cps[j.task] = cp
			pending[j.task] = cp
			if !info.Once && !held {
				if err := r.retry(ctx, "sink commit", commit); err != nil {
					return cps, err
				}
				markDurable()
			}
			continue
		}
		b := j.batch
		if err := r.runSteps(ctx, r.ordered, b); err != nil {
			return cps, err
		}
		cp.Pos = b.Pos
		srcRejects := len(b.Rejects)
		written := 0
		// Write, dead letters and commit are one unit: a transient failure
		// anywhere in it loses what was staged since the last commit, so all
		// of it is done again. Dead letters are stored before the commit that
		// moves the checkpoint past them; storing them again replaces them.
		attempt := func() error {
			b.Rejects = b.Rejects[:srcRejects]
			n, sinkRejects, err := r.write(ctx, w, b)
			if err != nil {
				return err
			}
			written = n
			b.Rejects = append(b.Rejects, sinkRejects...)
			if err := r.checkBudget(r.read.Load()+int64(b.Read), r.rejected.Load()+int64(len(b.Rejects)), false); err != nil {
				return err
			}
			if err := r.deadLetters(ctx, j.task, b, b.Rejects); err != nil {
				return err
			}
			if settler != nil {
				unsettled[b] = j.task
			}
			pending[j.task] = cp
			if j.ack != nil {
				acks[j.ack] = b.Pos
			}
			if info.Once {
				// Its batches wait for the one commit of the run; those of
				// a Settler are let go once judged, a commit window at a
				// time.
				if settler != nil {
					unjudgedBytes += max(b.Bytes, 1)
					if unjudgedBytes >= r.p.Settings.CommitBytes || len(unsettled) >= max(info.StageBatches, 32) {
						unjudgedBytes = 0
						return settle()
					}
				}
				return nil
			}
			// Over the reject rate before the sample is complete: hold the
			// commit, so that a run judged over budget at the end of its
			// sample (or of its input) has moved no checkpoint past the bad
			// data. Held batches are not retried one by one (a transient
			// failure loses all of them): the run fails and the next one
			// reads them again.
			if r.checkBudget(r.read.Load()+int64(b.Read), r.rejected.Load()+int64(len(b.Rejects)), true) != nil {
				held = true
				return nil
			}
			held = false
			if stageOnly(b) {
				return nil
			}
			return commit()
		}
		var err error
		if info.Once || held {
			// A once writer holds every batch of the run uncommitted: a
			// failure loses them all, so one batch cannot be done again.
			// The run fails and the next one starts from the checkpoints.
			err = attempt()
		} else {
			err = r.retry(ctx, "sink", attempt)
		}
		r.count(b, written)
		if err != nil {
			return cps, err
		}
		markDurable()
		cps[j.task] = cp
	}
	if cause := context.Cause(ctx); cause != nil {
		return cps, cause // a reader or worker failed: commit nothing more
	}
	if err := r.checkBudget(r.read.Load(), r.rejected.Load(), true); err != nil {
		return cps, err
	}
	ending = true
	if info.Once {
		// Never retried: a failed commit of a once writer may have lost its
		// rows, and committing its checkpoints alone would skip them.
		if err := commit(); err != nil {
			return cps, err
		}
	} else if err := r.retry(ctx, "sink commit", commit); err != nil {
		return cps, err // only checkpoints are pending here: no rows to lose
	}
	markDurable()
	if info.Transactional && len(cps) > 0 && !r.opts.DryRun && !r.opts.noCheckpoints {
		// Keep the state store's copy current for history and tools; the
		// sink's copy stays the authority.
		if err := r.opts.Store.SaveCheckpoints(ctx, r.p.Name, sortedCheckpoints(cps)); err != nil {
			return cps, fmt.Errorf("state store: %w", err)
		}
	}
	report()
	return cps, nil
}

// write hands a batch to the sink once. Rows the sink refuses for their
// own sake come back as rejects.
func (r *runner) write(ctx context.Context, w connector.Writer, b *record.Batch) (int, []record.Reject, error) {
	if w == nil {
		return b.Len(), nil, nil // dry run: counted as written, nothing written
	}
	if b.Len() == 0 {
		return 0, nil, nil
	}
	start := time.Now()
	n, err := w.Write(ctx, b)
	if r.opts.Observe != nil {
		r.opts.Observe("write", time.Since(start))
	}
	var be *connector.BatchError
	if !errors.As(err, &be) {
		if err != nil {
			return 0, nil, fmt.Errorf("sink: %w", err)
		}
		return n, nil, nil
	}
	return n, r.sinkRejects(b, be.Rows), nil
}

// sinkRejects makes the rows of b the sink refused rejects of step "sink".
func (r *runner) sinkRejects(b *record.Batch, rows []connector.RowError) []record.Reject {
	rejects := make([]record.Reject, 0, len(rows))
	for _, re := range rows {
		raw := record.RowJSON(b.Schema, b.Rows[re.Index])
		if b.Raw != nil && b.Raw[re.Index] != nil {
			raw = b.Raw[re.Index]
		}
		var line int64
		if b.Lines != nil {
			line = b.Lines[re.Index]
		}
		rejects = append(rejects, record.Reject{Line: line, Step: "sink", Err: r.p.Redactor.Redact(re.Err.Error()), Raw: raw})
	}
	return rejects
}

// maxReadRetries and maxWriteRetries bound the retries of transient
// failures; with backoff they span about a minute (35 to 70 s for writes),
// long enough for a database to restart: a PostgreSQL restart with crash
// recovery on a loaded machine refused connections for up to 14 s, longer
// than the 6 to 13 s that eight attempts waited.
const (
	maxReadRetries  = 12
	maxWriteRetries = 12
)

// backoff is the wait before retry n (from 1): exponential from 100ms, at
// most 15s, with jitter so that many runs do not retry in step.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 8)
	d = min(d, 15*time.Second)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// nopReader stands in for a reader that could not be reopened.
type nopReader struct{}

func (nopReader) Schema() *record.Schema                      { return nil }
func (nopReader) Next(context.Context) (*record.Batch, error) { return nil, io.EOF }
func (nopReader) Close() error                                { return nil }

// retry runs f until it succeeds, fails for good, or keeps failing
// transiently maxWriteRetries times.
func (r *runner) retry(ctx context.Context, what string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !errors.Is(err, connector.ErrTransient) || attempt == maxWriteRetries {
			return err
		}
		r.log.Warn("retrying after a transient error", "what", what, "attempt", attempt, "error", r.p.Redactor.Redact(err.Error()))
		if !sleep(ctx, backoff(attempt)) {
			return err
		}
	}
}

func (r *runner) count(b *record.Batch, written int) {
	r.read.Add(int64(b.Read))
	r.written.Add(int64(written))
	r.filtered.Add(int64(b.Filtered))
	r.countRejects(b.Rejects)
}

// countRejects counts rejects, by step and by reason.
func (r *runner) countRejects(rejects []record.Reject) {
	r.rejected.Add(int64(len(rejects)))
	if len(rejects) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rj := range rejects {
		r.byStep[rj.Step]++
		reason := rj.Err
		if len(reason) > 120 {
			reason = reason[:120]
		}
		r.reasons[[2]string{rj.Step, reasonClass(reason)}]++
	}
}

// reasonClass strips the value from a reason so that the same cause groups.
func reasonClass(s string) string {
	if i := strings.Index(s, `value "`); i >= 0 {
		if j := strings.Index(s[i+7:], `"`); j >= 0 {
			return s[:i+7] + "…" + s[i+7+j:]
		}
	}
	return s
}

func (r *runner) topReasons(n int) []Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Reason, 0, len(r.reasons))
	for k, c := range r.reasons {
		out = append(out, Reason{Step: k[0], Reason: k[1], Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// checkBudget fails the run when rejects exceed the error budget, given the
// totals so far. Mid-run the rate is judged once MinSample records were
// read; at the end always.
func (r *runner) checkBudget(read, rej int64, end bool) error {
	e := r.p.Errors
	if e.MaxRejects >= 0 && rej > e.MaxRejects {
		return &BudgetError{Rejected: rej, Read: read, Limit: fmt.Sprintf("max_rejects %d", e.MaxRejects)}
	}
	if e.MaxRejectRate >= 0 && read > 0 && (end || read >= e.MinSample) {
		if float64(rej)/float64(read) > e.MaxRejectRate {
			return &BudgetError{Rejected: rej, Read: read, Limit: fmt.Sprintf("max_reject_rate %g%%", e.MaxRejectRate*100)}
		}
	}
	return nil
}

// deadLetters stores rejects of task, at their lines of b.
func (r *runner) deadLetters(ctx context.Context, task string, b *record.Batch, rejects []record.Reject) error {
	if len(rejects) == 0 || r.opts.DryRun {
		return nil
	}
	red := r.p.Redactor
	dls := make([]state.DeadLetter, len(rejects))
	for i, rj := range rejects {
		dls[i] = state.DeadLetter{
			Pipeline: r.p.Name, RunID: r.opts.RunID, Task: red.Redact(task), Loc: red.Redact(b.Loc(rj.Line)),
			Step: rj.Step, Field: rj.Field, Error: r.p.Redactor.Redact(rj.Err),
			Record: []byte(r.p.Redactor.Redact(string(rj.Raw))),
		}
	}
	if r.opts.onRejects != nil {
		r.opts.onRejects(dls)
		return nil
	}
	if err := r.opts.Store.AddDeadLetters(ctx, dls); err != nil {
		return fmt.Errorf("state store: dead letters: %w", err)
	}
	failpoint.Hit("after-dead-letters") // dead letters stored, their batch not committed
	return nil
}

func (r *runner) progress(start time.Time) Progress {
	return Progress{
		Read: r.read.Load(), Written: r.written.Load(), Rejected: r.rejected.Load(), Filtered: r.filtered.Load(),
		BytesRead: r.bytesRead.Load(), BytesTotal: r.bytesTotal.Load(),
		TasksDone: int(r.tasksDone.Load()), Tasks: r.tasks,
		Elapsed: r.now().Sub(start),
	}
}

func sortedCheckpoints(m map[string]connector.Checkpoint) []connector.Checkpoint {
	list := make([]connector.Checkpoint, 0, len(m))
	for _, cp := range m {
		list = append(list, cp)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Task < list[j].Task })
	return list
}

func cursorJSON(m map[string]connector.Checkpoint) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(sortedCheckpoints(m))
	if err != nil {
		return ""
	}
	return string(b)
}
