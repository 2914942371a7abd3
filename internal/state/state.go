package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Store keeps a Backbone installation's checkpoints, run history and dead
// letters. Every method may be called from several goroutines at once, and
// several processes may share one store; each write is one short
// transaction. ctx bounds the call, including any wait for a lock held by
// another writer; a cancelled ctx returns an error wrapping ctx.Err().
//
// Times are stored to the microsecond and come back in UTC. Errors other
// than ErrNotFound mean the store could not be read or written (a full disk,
// a lock held for longer than the store's busy timeout, a damaged file) and
// are not the caller's fault.
type Store interface {
	// LoadCheckpoints returns the checkpoints of a pipeline by task key.
	// The engine calls it when it plans a run. A pipeline without
	// checkpoints gets an empty, non-nil map.
	LoadCheckpoints(ctx context.Context, pipeline string) (map[string]connector.Checkpoint, error)
	// SaveCheckpoints upserts checkpoints in one transaction: all of them are
	// stored or none is. A checkpoint replaces the stored one of the same
	// task; checkpoints of other tasks are left alone. Positions are opaque
	// bytes and round-trip exactly: nil stays nil and an empty position
	// stays empty.
	SaveCheckpoints(ctx context.Context, pipeline string, cps []connector.Checkpoint) error
	// ResetCheckpoints deletes a pipeline's checkpoints (a full reload); returns how many.
	ResetCheckpoints(ctx context.Context, pipeline string) (int, error)

	// StartRun inserts r with Status "running"; r.ID must be set by the
	// caller and be new (an existing ID is an error). StartRun sets r.Status
	// and, when zero, r.Start to now.
	StartRun(ctx context.Context, r *Run) error
	// FinishRun updates the stored run r.ID with r's End, Status, counts,
	// Error and CursorAfter; the other fields keep their stored values.
	// When r.End is zero it is set to now. ErrNotFound when no run has r.ID.
	FinishRun(ctx context.Context, r *Run) error
	// Runs lists runs matching f, newest Start first (ties: greater ID
	// first).
	Runs(ctx context.Context, f RunFilter) ([]Run, error)
	// Run returns the run id; ErrNotFound when absent.
	Run(ctx context.Context, id string) (Run, error)

	// AddDeadLetters stores dead letters; a dead letter with the same
	// (pipeline, task, loc, step) as a stored one replaces it instead of adding a
	// duplicate (a rerun after a crash re-rejects the same records).
	// A replaced dead letter keeps its ID and takes the new RunID, Field,
	// Error, Record and CreatedAt. AddDeadLetters sets each element's ID,
	// and CreatedAt to now when it is zero. All are stored or none is.
	AddDeadLetters(ctx context.Context, dls []DeadLetter) error
	// DeadLetters lists dead letters matching f, oldest (smallest ID) first.
	DeadLetters(ctx context.Context, f DLQFilter) ([]DeadLetter, error)
	// DeadLetter returns the dead letter id; ErrNotFound when absent.
	DeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	// DeleteDeadLetters deletes the dead letters ids and returns how many
	// existed. Unknown ids are not an error.
	DeleteDeadLetters(ctx context.Context, ids []int64) (int, error)
	// CountDeadLetters counts the dead letters matching f; f.Limit is ignored.
	CountDeadLetters(ctx context.Context, f DLQFilter) (int, error)

	// UpdateRun records the progress of a running run: its counts and
	// CursorAfter. A run that is no longer running is left alone (its
	// FinishRun won); ErrNotFound when the run is unknown.
	UpdateRun(ctx context.Context, r *Run) error

	// PruneRuns deletes the history of runs that ended before before, and
	// of runs that succeeded without reading anything and ended before
	// emptyBefore, keeping for each pipeline its newest run and its newest
	// successful run (freshness and catch-up need them). Running runs and
	// dead letters are never deleted. It returns the runs deleted.
	PruneRuns(ctx context.Context, before, emptyBefore time.Time) (int, error)

	// SaveVersion records a pipeline version that is about to run: a new
	// (pipeline, hash) is inserted with its content; a known one keeps its
	// content and status and only has LastSeen moved.
	SaveVersion(ctx context.Context, v Version) error
	// MarkVersion sets the status ("good" or "bad") and its reason.
	// ErrNotFound when the version was never saved.
	MarkVersion(ctx context.Context, pipeline, hash, status, reason string) error
	// Versions lists a pipeline's versions, most recently first seen first.
	Versions(ctx context.Context, pipeline string) ([]Version, error)
	// Version returns one version; ErrNotFound when unknown.
	Version(ctx context.Context, pipeline, hash string) (Version, error)

	// Close releases the store. Calls after Close fail.
	Close() error
}

// Run statuses.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Run triggers.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerRetry    = "retry"
	TriggerBackfill = "backfill"
	TriggerReplay   = "replay"
)

// Run is one run of a pipeline, as kept in the history.
type Run struct {
	ID, Pipeline, ConfigHash, Trigger string    // Trigger: "manual", "schedule", "retry", "backfill", "replay"
	LogicalTime, Start, End           time.Time // End zero while running
	Status                            string    // "running", "succeeded", "failed", "cancelled"
	Read, Written, Rejected, Filtered int64
	Error                             string
	CursorBefore, CursorAfter         string // JSON of checkpoints, for history
}

// Version statuses. A version is good once one of its runs succeeded and
// bad when the daemon judged it so (its first run breached the error budget
// or failed where the previous version succeeded).
const (
	VersionUnknown = ""
	VersionGood    = "good"
	VersionBad     = "bad"
)

// Version is one content of a pipeline file that ran.
type Version struct {
	Pipeline, Hash      string
	Content             []byte // the file with its secrets redacted
	FirstSeen, LastSeen time.Time
	Status, Reason      string
}

// RunFilter selects runs. Zero fields select everything; Limit <= 0 means
// no limit.
type RunFilter struct {
	Pipeline string
	Status   string
	Limit    int
}

// DeadLetter is a rejected record with why and where it was rejected.
// (Pipeline, Task, Loc, Step) identifies it: the same record rejected by the
// same step again replaces the stored one.
type DeadLetter struct {
	ID                                             int64
	Pipeline, RunID, Task, Loc, Step, Field, Error string // Loc: "orders.csv:42"
	Record                                         []byte // the original record
	CreatedAt                                      time.Time
}

// DLQFilter selects dead letters. Zero fields select everything; all set
// fields must match. Contains is a case-sensitive substring of the Error,
// Field, Loc or Record. IDs, when not empty, restricts to those IDs.
// Limit <= 0 means no limit.
type DLQFilter struct {
	Pipeline, RunID, Step, Contains string
	IDs                             []int64
	Limit                           int
}

// ErrNotFound is returned by Run and DeadLetter when the ID is absent, and by
// FinishRun when the run was never started.
var ErrNotFound = errors.New("not found")

// ErrVersion is wrapped by the error opening a store written by a newer
// Backbone; errors.As finds a *VersionError.
var ErrVersion = errors.New("state store written by a newer backbone")

// ErrCorrupt is wrapped by the error opening a file that is not a Backbone
// state store or is damaged; errors.As finds a *CorruptError. Such a store
// is refused, never taken for a first run: that would read every source
// again from its beginning.
var ErrCorrupt = errors.New("state store damaged or not a state store")

// VersionError reports a store whose schema is newer than this binary
// understands.
type VersionError struct {
	Path      string // file or DSN, without secrets
	Found     int    // schema version in the store
	Supported int    // highest schema version this binary understands
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("state store %s has schema version %d, this backbone understands up to %d; upgrade backbone",
		e.Path, e.Found, e.Supported)
}

// Is makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

// CorruptError reports a store refused because it is damaged or is not a
// Backbone state store.
type CorruptError struct {
	Path   string // file or DSN, without secrets
	Reason string // what is wrong, e.g. "not an SQLite database"
	Err    error  // the underlying error, if any
}

func (e *CorruptError) Error() string {
	s := "state store " + e.Path + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + "; refused rather than treated as a first run (restore it from a backup, or move it aside to start afresh)"
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Err }
