package api

import (
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// Pipeline is a pipeline as the overview shows it.
type Pipeline struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file"`
	Schedule    string `json:"schedule,omitempty"`
	// Status is one of healthy, running, late, failing, retrying, paused,
	// quarantined, stuck or idle (never run).
	Status              string     `json:"status"`
	Paused              bool       `json:"paused"`
	Quarantined         bool       `json:"quarantined"`
	Running             int        `json:"running"`
	NextRun             *time.Time `json:"next_run,omitempty"`
	LastRun             *Run       `json:"last_run,omitempty"`
	LastSuccess         *time.Time `json:"last_success,omitempty"`
	FreshnessSLOSeconds float64    `json:"freshness_slo_seconds,omitempty"`
	FreshnessAgeSeconds *float64   `json:"freshness_age_seconds,omitempty"`
	Late                bool       `json:"late"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Version             string     `json:"version"`
	RejectRate          float64    `json:"reject_rate"`
	Recent              []Run      `json:"recent,omitempty"` // newest first, at most 20
	Problem             string     `json:"problem,omitempty"`
}

// PipelineDetail is one pipeline with its configuration and position.
type PipelineDetail struct {
	Pipeline
	YAML        string            `json:"yaml"` // secrets redacted
	Checkpoints map[string]string `json:"checkpoints"`
	OnBadVer    string            `json:"on_bad_version"`
	CatchUp     string            `json:"catch_up"`
}

// Run is one run of the history.
type Run struct {
	ID           string     `json:"id"`
	Pipeline     string     `json:"pipeline"`
	Trigger      string     `json:"trigger"`
	Status       string     `json:"status"`
	Version      string     `json:"version"`
	LogicalTime  *time.Time `json:"logical_time,omitempty"`
	Start        time.Time  `json:"start"`
	End          *time.Time `json:"end,omitempty"`
	DurationSecs float64    `json:"duration_seconds"`
	Read         int64      `json:"read"`
	Written      int64      `json:"written"`
	Rejected     int64      `json:"rejected"`
	Filtered     int64      `json:"filtered"`
	Error        string     `json:"error,omitempty"`
	CursorBefore string     `json:"cursor_before,omitempty"`
	CursorAfter  string     `json:"cursor_after,omitempty"`
}

// RunOf converts a run of the history.
func RunOf(r state.Run, now time.Time) Run {
	out := Run{ID: r.ID, Pipeline: r.Pipeline, Trigger: r.Trigger, Status: r.Status, Version: r.ConfigHash,
		Start: r.Start, Read: r.Read, Written: r.Written, Rejected: r.Rejected, Filtered: r.Filtered,
		Error: r.Error, CursorBefore: r.CursorBefore, CursorAfter: r.CursorAfter}
	if !r.LogicalTime.IsZero() {
		lt := r.LogicalTime
		out.LogicalTime = &lt
	}
	end := now
	if !r.End.IsZero() {
		e := r.End
		out.End, end = &e, e
	}
	if !r.Start.IsZero() {
		out.DurationSecs = end.Sub(r.Start).Seconds()
	}
	return out
}

// RunDetail is one run with its rejects by step.
type RunDetail struct {
	Run
	RejectsByStep map[string]int64 `json:"rejects_by_step"`
	DeadLetters   int              `json:"dead_letters"`
	RowsPerSecond float64          `json:"rows_per_second"`
}

// Version is one version of a pipeline file.
type Version struct {
	Hash      string    `json:"hash"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Current   bool      `json:"current"`
	Content   string    `json:"content,omitempty"` // only when one version is asked for
}

// VersionOf converts a stored version.
func VersionOf(v state.Version, current string, withContent bool) Version {
	out := Version{Hash: v.Hash, FirstSeen: v.FirstSeen, LastSeen: v.LastSeen, Status: v.Status,
		Reason: v.Reason, Current: v.Hash == current}
	if withContent {
		out.Content = string(v.Content)
	}
	return out
}

// DeadLetter is one rejected record.
type DeadLetter struct {
	ID        int64     `json:"id"`
	Pipeline  string    `json:"pipeline"`
	RunID     string    `json:"run_id"`
	Task      string    `json:"task"`
	Loc       string    `json:"loc"`
	Step      string    `json:"step"`
	Field     string    `json:"field,omitempty"`
	Error     string    `json:"error"`
	Record    string    `json:"record"`
	CreatedAt time.Time `json:"created_at"`
}

// DeadLetterOf converts a stored dead letter.
func DeadLetterOf(d state.DeadLetter) DeadLetter {
	return DeadLetter{ID: d.ID, Pipeline: d.Pipeline, RunID: d.RunID, Task: d.Task, Loc: d.Loc, Step: d.Step,
		Field: d.Field, Error: d.Error, Record: string(d.Record), CreatedAt: d.CreatedAt}
}

// DeadLetterPage is a filtered list of dead letters.
type DeadLetterPage struct {
	Total int          `json:"total"`
	Items []DeadLetter `json:"items"`
}

// Selection names dead letters to replay or purge: IDs, or a filter. An
// empty selection is refused, so a click can never purge everything.
type Selection struct {
	IDs      []int64 `json:"ids,omitempty"`
	Pipeline string  `json:"pipeline,omitempty"`
	RunID    string  `json:"run_id,omitempty"`
	Step     string  `json:"step,omitempty"`
	Contains string  `json:"contains,omitempty"`
}

// Filter is the selection as a store filter.
func (s Selection) Filter() state.DLQFilter {
	return state.DLQFilter{IDs: s.IDs, Pipeline: s.Pipeline, RunID: s.RunID, Step: s.Step, Contains: s.Contains}
}

// Empty reports whether the selection names nothing.
func (s Selection) Empty() bool {
	return len(s.IDs) == 0 && s.Pipeline == "" && s.RunID == "" && s.Step == "" && s.Contains == ""
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	RunID    string `json:"run_id"`
	Selected int    `json:"selected"`
	Written  int64  `json:"written"`
	Rejected int64  `json:"rejected"`
	Removed  int    `json:"removed"` // dead letters deleted because they now load
}

// Triggered is the answer to run-now and backfill.
type Triggered struct {
	Pipeline     string      `json:"pipeline"`
	LogicalTimes []time.Time `json:"logical_times"`
	Queued       bool        `json:"queued"`
}

// BackfillRequest asks for the runs of every logical time of the schedule
// in [From, To].
type BackfillRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Readiness is the daemon's readiness.
type Readiness struct {
	Ready    bool     `json:"ready"`
	Degraded bool     `json:"degraded"`
	Problems []string `json:"problems,omitempty"`
}

// Identity is the caller's token: its name and what it may do.
type Identity struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
