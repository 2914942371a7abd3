package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// Env is what a run gives every component: who is running, when, where
// relative paths resolve, and the limits to respect. It is built once per
// run by the engine and read-only afterwards.
type Env struct {
	Pipeline string         // pipeline name
	RunID    string         // unique id of this run
	RunTime  time.Time      // the run's logical time; never read the wall clock inside a run
	Dir      string         // directory of the pipeline file; relative paths resolve here
	StateDir string         // directory of the state store (for component-private state)
	Limits   record.Limits  // batch and record size limits
	Location *time.Location // zone for timestamps written without one
	Logger   *slog.Logger
	DryRun   bool // nothing may be written to any sink or checkpoint
	// DeferDecode lets a reader return batches whose conversion is left to
	// Batch.Decode, which the engine runs on its workers in parallel.
	DeferDecode bool
}

// Path resolves p against Env.Dir unless it is absolute.
func (e *Env) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || e == nil || e.Dir == "" {
		return p
	}
	return filepath.Join(e.Dir, p)
}

// Task is the unit of reading, checkpointing and retry: a file, a byte range,
// a key range of a table, a stream partition. The local runner and a cluster
// run the same tasks.
type Task struct {
	// Key names the task stably across runs; checkpoints are stored under
	// it. A file's key is its path relative to the pipeline.
	Key string
	// Size is how much the task will read (bytes, rows), 0 when unknown.
	// It feeds progress and ETA only.
	Size int64
	// Final tasks are finished for good once read to their end (a file):
	// later runs skip them. A cursor over a table is not final: the next run
	// resumes it from its checkpoint.
	Final bool
	// Fingerprint changes when the input behind Key changes (size and
	// modification time of a file); a Final task whose fingerprint changed is
	// read again. Empty when the source has none.
	Fingerprint string
}

// Checkpoint is a task's highest contiguous acknowledged position.
type Checkpoint struct {
	Task        string          `json:"task"`
	Pos         record.Position `json:"pos,omitempty"`
	Done        bool            `json:"done,omitempty"`        // a Final task read to its end
	Fingerprint string          `json:"fingerprint,omitempty"` // Task.Fingerprint when Done was set

	// Guard, in the checkpoints the engine gives a transactional Writer's
	// Commit, asks the sink to store this checkpoint only if the one it
	// holds still equals Base (Pos and Done; Base nil: it holds none for
	// the task), in the commit's transaction, and otherwise to fail the
	// commit with an error wrapping ErrCheckpointConflict: another process
	// (a second daemon, a paused one that lost its lease, a manual run)
	// committed the task meanwhile, and committing on top of it would load
	// its rows twice. Base is what the sink held when this run read its
	// checkpoints, or what this run last committed.
	Guard bool        `json:"-"`
	Base  *Checkpoint `json:"-"`
}

// ErrCheckpointConflict is the failure of a commit whose checkpoint moved
// in the sink since the run read it. Nothing of the commit is stored; the
// run fails, and the next one starts from the sink's checkpoint.
var ErrCheckpointConflict = errors.New("checkpoint conflict: another process committed this task meanwhile")

// SameCheckpoint reports whether a stored checkpoint (pos, done) is base:
// nil base matches no stored row (exists false).
func SameCheckpoint(base *Checkpoint, exists bool, pos []byte, done bool) bool {
	if base == nil {
		return !exists
	}
	return exists && done == base.Done && string(pos) == string(base.Pos)
}

// Source reads records. The engine calls Plan once per run, then Open for
// each task not yet done, possibly concurrently for different tasks.
type Source interface {
	// Plan lists this run's tasks. ctx bounds listing (files, table
	// statistics). An error fails the run before anything is read; wrap an
	// unreachable file or service in ErrUnavailable.
	Plan(ctx context.Context, env *Env) ([]Task, error)
	// Open starts reading task t just after pos (nil: from its beginning).
	// pos is a Position this source put into a Batch earlier.
	Open(ctx context.Context, env *Env, t Task, pos record.Position) (Reader, error)
}

// Schemer is implemented by sources and lookups whose schema is known from
// their configuration alone, before anything is read. Expressions are
// type-checked against it at validate time.
type Schemer interface {
	Schema() *record.Schema
}

// Reader reads one task in order. It is used by one goroutine.
type Reader interface {
	// Schema is the schema of every batch this reader returns. It is known
	// once Open returned.
	Schema() *record.Schema
	// Next returns the next batch: its rows, the records it rejected
	// (malformed text, a value that does not convert, a record over the size
	// cap) and the position after its last record. It returns io.EOF after
	// the last batch. Any other error ends the task; it is retried when it
	// wraps ErrTransient. ctx cancellation makes Next return promptly.
	Next(ctx context.Context) (*record.Batch, error)
	// Close releases files and connections. It is called once, always.
	Close() error
}

// Acker is implemented by the readers of a message broker (a stream, a
// queue), whose messages must be acknowledged to the broker only once the
// sink holds them.
//
// Ack is called by the engine, from the goroutine that writes, right after
// each successful Commit that covers batches of this reader, with the
// position of the last of them: it acknowledges every message of the
// batches the reader returned up to and including that position. It runs
// concurrently with Next, never after Close: the engine closes an Acker
// only when the run's sink is done with it. ctx bounds the
// acknowledgement. The rows are committed whatever Ack returns: an error
// means the broker will deliver those messages again (at least once),
// which the source's positions or the sink's keys make harmless; the
// engine logs it and the run goes on.
//
// An Acker's reader is unbounded: Next never returns io.EOF by itself; it
// returns batches as messages arrive, cut by size or by a short linger, and
// waits while none come. The engine calls its Next with a context that is
// cancelled at the run's soft stop, when Next returns the context's error;
// the batches it returned before are still written, committed and
// acknowledged. Messages it received and did not return are the broker's
// again at Close.
type Acker interface {
	Ack(ctx context.Context, pos record.Position) error
}

// Unbounded is implemented by a Source whose input never ends by itself (a
// broker's queue or stream). Its run is continuous: `backbone run` goes on
// until Ctrl-C, and `serve` starts it when the pipeline loads and again
// after it stops, with no timeout; freshness is the time since its last
// written record.
type Unbounded interface {
	Unbounded() bool
}

// IsUnbounded reports whether s is an Unbounded source that says so.
func IsUnbounded(s Source) bool {
	u, ok := s.(Unbounded)
	return ok && u.Unbounded()
}

// Sink writes records. Open is called once per run with the schema of the
// rows that will arrive.
type Sink interface {
	Open(ctx context.Context, env *Env, schema *record.Schema) (Writer, error)
}

// Writer stages and commits rows. It is used by one goroutine.
type Writer interface {
	// Write stages the rows of b, in order. Like io.Writer, err is non-nil
	// iff n < b.Len(). A *BatchError names rows the sink refused for their
	// own sake (a constraint, a value too long); all other rows are staged
	// and n counts them. Any other error means nothing since the last Commit
	// is staged any more; it wraps ErrTransient when a retry may succeed.
	Write(ctx context.Context, b *record.Batch) (n int, err error)
	// Commit makes every staged row durable. cps are the checkpoints the
	// staged rows reach: a transactional writer stores them in the same
	// transaction, so rows and checkpoints move together or not at all.
	Commit(ctx context.Context, cps []Checkpoint) error
	// Close abandons whatever was staged and not committed (a file sink
	// removes its temporary file) and releases resources.
	Close() error
	// Info tells the engine how to drive this writer.
	Info() WriterInfo
}

// WriterInfo describes a writer's delivery guarantees.
type WriterInfo struct {
	// Transactional writers store checkpoints with their rows (Commit) and
	// give them back (CheckpointLoader); they may be committed after every
	// batch. A crash at any instant neither loses nor duplicates a row.
	Transactional bool
	// Once writers make their whole output appear at one Commit at the end
	// of the run (a file renamed into place). The engine calls Commit once.
	Once bool
	// StageBatches, above 1, is how many batches the engine may write
	// before it commits (within the pipeline's commit_interval and
	// commit_bytes): the writer keeps the rows written since its last
	// Commit and writes them again in the new transaction when one is lost.
	StageBatches int
}

// Preparer is implemented by writers that can do part of their work on
// several goroutines ahead of Write, such as encoding rows. The engine calls
// Prepare concurrently for different batches, after the batch's last step
// and before its Write, which then finds the result in b.Prepared. Write
// must still accept a batch that was not prepared.
type Preparer interface {
	Prepare(b *record.Batch) error
}

// Settler is implemented by writers whose Write may return before the
// database has judged the rows: a writer that keeps one statement open
// across batches and streams them into it, so that the database never
// waits for the next statement. Settle waits until every row written so
// far is judged and returns the rows refused since the last Settle, by the
// batch they came in. The engine calls it before every Commit, and counts
// the rows it returns as rejected, not written: they go to the dead letters
// before the commit that moves the checkpoint past them. A Commit with
// rows refused and not yet returned by Settle fails.
type Settler interface {
	Settle(ctx context.Context) ([]Refusal, error)
}

// Refusal is the rows of one batch a Settler's database refused.
type Refusal struct {
	Batch *record.Batch // as passed to Write
	Rows  []RowError
}

// CheckpointLoader is implemented by sinks that store checkpoints with
// their rows. The engine prefers them over the state store's copy.
type CheckpointLoader interface {
	LoadCheckpoints(ctx context.Context, env *Env) (map[string]Checkpoint, error)
}

// RowError is one row a sink refused.
type RowError struct {
	Index int // index in the batch's Rows
	Err   error
}

// BatchError reports rows a sink refused for their own sake; the other rows
// of the batch were staged.
type BatchError struct {
	Rows []RowError
}

func (e *BatchError) Error() string {
	if len(e.Rows) == 1 {
		return fmt.Sprintf("1 row refused: %v", e.Rows[0].Err)
	}
	return fmt.Sprintf("%d rows refused; first: %v", len(e.Rows), e.Rows[0].Err)
}

// Lookup is a source of reference data read by key (enrichment).
type Lookup interface {
	// Open loads (preload) or connects; ctx bounds loading.
	Open(ctx context.Context, env *Env) (Table, error)
}

// Table answers lookups. Get is called from several goroutines at once.
type Table interface {
	// Schema is the schema of the rows Get returns.
	Schema() *record.Schema
	// Keys are the key fields, in the order Get takes their values.
	Keys() []string
	// Get returns the row for a key. ok is false when there is none; err is
	// for a lookup that could not be answered (a service down). Get must not
	// keep key after it returns, and callers must not change the row.
	Get(ctx context.Context, key []any) (row record.Row, ok bool, err error)
	// Close releases the table.
	Close() error
}

// BatchTable is implemented by tables that answer many keys together faster
// than one at a time: one request for many keys, concurrent requests. The
// enrich step calls GetBatch once per batch instead of Get for each record.
type BatchTable interface {
	Table
	// GetBatch answers keys[i] into out[i] as Get would; a nil keys[i] (a
	// null key) is left unanswered. out has len(keys) entries. It is called
	// from several goroutines at once, must not keep keys, and returns once
	// every key is answered or ctx is done (the keys left then carry ctx's
	// error).
	GetBatch(ctx context.Context, keys [][]any, out []Answer)
}

// Answer is a table's answer to one key of GetBatch.
type Answer struct {
	Row record.Row
	OK  bool
	Err error
}

// CacheStats is implemented by a Table that caches answers: how many Gets
// its cache answered and how many it did not, since the table was opened.
// The daemon exports the ratio as a metric.
type CacheStats interface {
	CacheStats() (hits, misses int64)
}

// Step transforms batches. Bind is called once per run; Process is then
// called for every batch, from several goroutines at once unless the step is
// Ordered.
type Step interface {
	// Bind compiles the step against the schema flowing in and returns the
	// schema flowing out. An error here is a configuration error: wrap it in
	// a *PosError to point at the pipeline file.
	Bind(in *record.Schema, env *StepEnv) (*record.Schema, error)
	// Process transforms b in place: it may replace b.Schema and the values
	// of b.Rows, and moves records out with b.Drop and b.RejectRow (then
	// b.Compact). An error fails the run (not one record: those are rejects).
	Process(ctx context.Context, b *record.Batch) error
}

// Ordered is implemented by steps that must see batches one at a time in
// source order (dedupe keeps the first record of a key). The engine runs an
// ordered step, and every step after it, in one goroutine.
type Ordered interface {
	Ordered() bool
}

// StepEnv is what a step can use when it binds.
type StepEnv struct {
	*Env
	Name    string           // the step's label in rejects and metrics: "map[2]"
	Lookups map[string]Table // opened lookups by name
}

// ErrUnavailable marks an error caused by a file or a service that cannot
// be reached (exit code 3).
var ErrUnavailable = errors.New("unavailable")

// ErrTransient marks an error after which a retry may succeed.
var ErrTransient = errors.New("transient")

// ErrReject marks an error of one record rather than of the run: a lookup
// whose service is down answers with it under a policy of rejecting the
// records it cannot enrich, and the step that asked rejects the record
// (with this error as the reason) instead of failing the run.
var ErrReject = errors.New("record rejected")

// Reject wraps err so that errors.Is(err, ErrReject) holds.
func Reject(err error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, mark: ErrReject}
}

// Unavailable wraps err so that errors.Is(err, ErrUnavailable) holds.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, mark: ErrUnavailable}
}

// Transient wraps err so that errors.Is(err, ErrTransient) holds.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, mark: ErrTransient}
}

type markedError struct {
	err  error
	mark error
}

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.mark} }

// Replayer is implemented by sources that can parse their own record text
// again, for `dlq replay`. raw holds records as the source put them into
// Reject.Raw; task is the Task.Key they came from. The returned batch has
// one row or one reject per raw record, with Lines[i] (and Reject.Line) set
// to the record's index in raw. Sources without it are replayed from JSON.
type Replayer interface {
	Replay(ctx context.Context, env *Env, task string, raw [][]byte) (*record.Batch, error)
}

// Checker is implemented by components that can verify, without reading or
// writing data, that their service is reachable and that the tables and
// columns they name exist (`backbone validate --connect`).
type Checker interface {
	Check(ctx context.Context, env *Env) error
}
