package sqlstate

import (
	"errors"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// DeadLetterColumns are the columns of dead_letters, in the order
// ScanDeadLetter reads them.
const DeadLetterColumns = `id, pipeline, run_id, task, loc, step, field, error, record, created_at`

// ScanDeadLetter scans a row of DeadLetterColumns; T and toTime are as
// for ScanRun.
func ScanDeadLetter[T any](row Scanner, toTime func(T) (time.Time, error)) (state.DeadLetter, error) {
	var (
		d         state.DeadLetter
		task, loc []byte
		created   T
	)
	err := row.Scan(&d.ID, &d.Pipeline, &d.RunID, &task, &loc, &d.Step, &d.Field, &d.Error, &d.Record, &created)
	if err != nil {
		return d, err
	}
	d.Task, d.Loc = string(task), string(loc)
	d.CreatedAt, err = toTime(created)
	return d, err
}

// DLKey identifies a dead letter: adding one with the key of a stored one
// replaces it.
type DLKey struct{ Pipeline, Task, Loc, Step string }

// Key is the key of d.
func Key(d *state.DeadLetter) DLKey { return DLKey{d.Pipeline, d.Task, d.Loc, d.Step} }

// CheckDeadLetters refuses dead letters a store does not take: one
// without a pipeline, with a time CheckTimes refuses, or that check, when
// not nil, refuses.
func CheckDeadLetters(dls []state.DeadLetter, check func(d *state.DeadLetter) error) error {
	for i := range dls {
		d := &dls[i]
		if d.Pipeline == "" {
			return errors.New("state store: add dead letters: a dead letter without a pipeline")
		}
		err := CheckTimes(d.CreatedAt)
		if err == nil && check != nil {
			err = check(d)
		}
		if err != nil {
			return fmt.Errorf("state store: add dead letters: %s: %w", d.Loc, err)
		}
	}
	return nil
}

// Added sets the ID of each dead letter from ids, by key, and its
// CreatedAt to at when zero: what AddDeadLetters does once committed, so
// that a failed call leaves dls as it was.
func Added(dls []state.DeadLetter, ids map[DLKey]int64, at time.Time) {
	for i := range dls {
		d := &dls[i]
		d.ID = ids[Key(d)]
		if d.CreatedAt.IsZero() {
			d.CreatedAt = at
		}
	}
}
