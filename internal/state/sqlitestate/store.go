package sqlitestate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// timeLayout stores times as fixed-width UTC text to the microsecond: it
// sorts in time order, reads well in the sqlite3 shell, and keeps the
// precision PostgreSQL keeps.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// formatTime returns t for a TEXT column, nil (NULL) for the zero time.
func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond).Format(timeLayout)
}

func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid stored time %q", s.String)
	}
	return t.UTC(), nil
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return err
		}
		return s.wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// LoadCheckpoints implements state.Store.
func (s *Store) LoadCheckpoints(ctx context.Context, pipeline string) (map[string]connector.Checkpoint, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT task, pos IS NULL, pos, done, fingerprint FROM checkpoints WHERE pipeline = ?`, pipeline)
	if err != nil {
		return nil, s.wrap("load checkpoints", err)
	}
	defer rows.Close()
	cps, err := sqlstate.ScanCheckpoints(rows)
	if err != nil {
		return nil, s.wrap("load checkpoints", err)
	}
	return cps, nil
}

// SaveCheckpoints implements state.Store.
func (s *Store) SaveCheckpoints(ctx context.Context, pipeline string, cps []connector.Checkpoint) error {
	if pipeline == "" {
		return errors.New("state store: save checkpoints: empty pipeline name")
	}
	if len(cps) == 0 {
		return ctx.Err()
	}
	at := formatTime(sqlstate.Now())
	return s.writeTx(ctx, "save checkpoints", func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO checkpoints (pipeline, task, pos, done, fingerprint, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (pipeline, task) DO UPDATE SET
				pos = excluded.pos, done = excluded.done,
				fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, cp := range cps {
			var pos any // NULL for a nil position
			if cp.Pos != nil {
				pos = []byte(cp.Pos)
			}
			if _, err := stmt.ExecContext(ctx, pipeline, cp.Task, pos, cp.Done, cp.Fingerprint, at); err != nil {
				return fmt.Errorf("task %q: %w", cp.Task, err)
			}
		}
		return nil
	})
}

// ResetCheckpoints implements state.Store.
func (s *Store) ResetCheckpoints(ctx context.Context, pipeline string) (int, error) {
	var n int64
	err := s.writeTx(ctx, "reset checkpoints", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM checkpoints WHERE pipeline = ?`, pipeline)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// StartRun implements state.Store.
func (s *Store) StartRun(ctx context.Context, r *state.Run) error {
	if r.ID == "" || r.Pipeline == "" {
		return errors.New("state store: start run: the run needs an ID and a pipeline")
	}
	if err := sqlstate.CheckTimes(r.LogicalTime, r.Start, r.End); err != nil {
		return fmt.Errorf("state store: start run %s: %w", r.ID, err)
	}
	r.Status = state.StatusRunning
	if r.Start.IsZero() {
		r.Start = sqlstate.Now()
	}
	return s.writeTx(ctx, "start run "+r.ID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO runs (id, pipeline, config_hash, triggered_by, logical_time, start_time, end_time,
				status, read_count, written_count, rejected_count, filtered_count, error, cursor_before, cursor_after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Pipeline, r.ConfigHash, r.Trigger, formatTime(r.LogicalTime), formatTime(r.Start), formatTime(r.End),
			r.Status, r.Read, r.Written, r.Rejected, r.Filtered, r.Error, r.CursorBefore, r.CursorAfter)
		return err
	})
}

// FinishRun implements state.Store.
func (s *Store) FinishRun(ctx context.Context, r *state.Run) error {
	if r.ID == "" || r.Status == "" {
		return errors.New("state store: finish run: the run needs an ID and a status")
	}
	if err := sqlstate.CheckTimes(r.End); err != nil {
		return fmt.Errorf("state store: finish run %s: %w", r.ID, err)
	}
	if r.End.IsZero() {
		r.End = sqlstate.Now()
	}
	return s.writeTx(ctx, "finish run "+r.ID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE runs SET end_time = ?, status = ?, read_count = ?, written_count = ?,
				rejected_count = ?, filtered_count = ?, error = ?, cursor_after = ?
			WHERE id = ?`,
			formatTime(r.End), r.Status, r.Read, r.Written, r.Rejected, r.Filtered, r.Error, r.CursorAfter, r.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("state store: finish run %q: %w", r.ID, state.ErrNotFound)
		}
		return nil
	})
}

func scanRun(row sqlstate.Scanner) (state.Run, error) { return sqlstate.ScanRun(row, parseTime) }

// mark is the placeholder of an argument of a statement.
func mark(int) string { return "?" }

// Runs implements state.Store.
func (s *Store) Runs(ctx context.Context, f state.RunFilter) ([]state.Run, error) {
	q, args := sqlstate.RunsQuery(f, mark)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("list runs", err)
	}
	defer rows.Close()
	runs, err := sqlstate.Collect(rows, scanRun)
	if err != nil {
		return nil, s.wrap("list runs", err)
	}
	return runs, nil
}

// Run implements state.Store.
func (s *Store) Run(ctx context.Context, id string) (state.Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+sqlstate.RunColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Run{}, fmt.Errorf("state store: run %q: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return state.Run{}, s.wrap("read run "+id, err)
	}
	return r, nil
}

// AddDeadLetters implements state.Store.
func (s *Store) AddDeadLetters(ctx context.Context, dls []state.DeadLetter) error {
	if err := sqlstate.CheckDeadLetters(dls, nil); err != nil {
		return err
	}
	if len(dls) == 0 {
		return ctx.Err()
	}
	at := sqlstate.Now()
	created := formatTime(at)
	var ids map[sqlstate.DLKey]int64
	err := s.writeTx(ctx, "add dead letters", func(tx *sql.Tx) error {
		ids = make(map[sqlstate.DLKey]int64, len(dls))
		args := make([]any, 0, dlChunk*dlArgs)
		var full *sql.Stmt
		for lo := 0; lo < len(dls); lo += dlChunk {
			chunk := dls[lo:min(lo+dlChunk, len(dls))]
			args = args[:0]
			for i := range chunk {
				d := &chunk[i]
				rec, c := d.Record, created
				if rec == nil {
					rec = []byte{}
				}
				if !d.CreatedAt.IsZero() {
					c = formatTime(d.CreatedAt)
				}
				args = append(args, d.Pipeline, d.RunID, d.Task, d.Loc, d.Step, d.Field, d.Error, rec, c)
			}
			var (
				rows *sql.Rows
				err  error
			)
			if len(chunk) == dlChunk {
				if full == nil {
					if full, err = tx.PrepareContext(ctx, insertDeadLetters(dlChunk)); err != nil {
						return err
					}
					defer full.Close()
				}
				rows, err = full.QueryContext(ctx, args...)
			} else {
				rows, err = tx.QueryContext(ctx, insertDeadLetters(len(chunk)), args...)
			}
			if err != nil {
				return err
			}
			if err := scanIDs(rows, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sqlstate.Added(dls, ids, at)
	return nil
}

// Dead letters are inserted dlChunk rows per statement: one statement per
// row spends most of its time in the driver, not in SQLite.
const (
	dlChunk = 100
	dlArgs  = 9 // parameters per row, far below SQLite's limit of 32766 per statement
)

// insertDeadLetters is the upsert of n dead letters. RETURNING gives the key
// with the ID because SQLite does not promise to return rows in VALUES order.
func insertDeadLetters(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO dead_letters (pipeline, run_id, task, loc, step, field, error, record, created_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	b.WriteString(`
		ON CONFLICT (pipeline, task, loc, step) DO UPDATE SET
			run_id = excluded.run_id, field = excluded.field, error = excluded.error,
			record = excluded.record, created_at = excluded.created_at
		RETURNING id, pipeline, task, loc, step`)
	return b.String()
}

func scanIDs(rows *sql.Rows, ids map[sqlstate.DLKey]int64) error {
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			k  sqlstate.DLKey
		)
		if err := rows.Scan(&id, &k.Pipeline, &k.Task, &k.Loc, &k.Step); err != nil {
			return err
		}
		ids[k] = id
	}
	return rows.Err()
}

func scanDeadLetter(row sqlstate.Scanner) (state.DeadLetter, error) {
	return sqlstate.ScanDeadLetter(row, parseTime)
}

// dlqWhere turns f into a WHERE clause and its arguments.
func dlqWhere(f state.DLQFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Pipeline != "" {
		where, args = append(where, "pipeline = ?"), append(args, f.Pipeline)
	}
	if f.RunID != "" {
		where, args = append(where, "run_id = ?"), append(args, f.RunID)
	}
	if f.Step != "" {
		where, args = append(where, "step = ?"), append(args, f.Step)
	}
	if f.Contains != "" {
		// instr on two BLOBs compares bytes: a record may hold any bytes.
		where = append(where, "(instr(error, ?) > 0 OR instr(field, ?) > 0 OR instr(loc, ?) > 0 OR instr(record, ?) > 0)")
		args = append(args, f.Contains, f.Contains, f.Contains, []byte(f.Contains))
	}
	if len(f.IDs) > 0 {
		where, args = append(where, "id IN (SELECT value FROM json_each(?))"), append(args, idsJSON(f.IDs))
	}
	return sqlstate.WhereClause(where), args
}

// idsJSON encodes ids as a JSON array: one bound parameter however many ids
// there are, where "IN (?, ?, …)" would hit SQLite's limit on parameters.
func idsJSON(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// DeadLetters implements state.Store.
func (s *Store) DeadLetters(ctx context.Context, f state.DLQFilter) ([]state.DeadLetter, error) {
	where, args := dlqWhere(f)
	q := `SELECT ` + sqlstate.DeadLetterColumns + ` FROM dead_letters` + where + ` ORDER BY id`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("list dead letters", err)
	}
	defer rows.Close()
	dls, err := sqlstate.Collect(rows, scanDeadLetter)
	if err != nil {
		return nil, s.wrap("list dead letters", err)
	}
	return dls, nil
}

// DeadLetter implements state.Store.
func (s *Store) DeadLetter(ctx context.Context, id int64) (state.DeadLetter, error) {
	d, err := scanDeadLetter(s.r.QueryRowContext(ctx,
		`SELECT `+sqlstate.DeadLetterColumns+` FROM dead_letters WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return state.DeadLetter{}, fmt.Errorf("state store: dead letter %d: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return state.DeadLetter{}, s.wrap("read dead letter "+strconv.FormatInt(id, 10), err)
	}
	return d, nil
}

// DeleteDeadLetters implements state.Store.
func (s *Store) DeleteDeadLetters(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, ctx.Err()
	}
	var n int64
	err := s.writeTx(ctx, "delete dead letters", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CountDeadLetters implements state.Store.
func (s *Store) CountDeadLetters(ctx context.Context, f state.DLQFilter) (int, error) {
	where, args := dlqWhere(f)
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM dead_letters`+where, args...).Scan(&n); err != nil {
		return 0, s.wrap("count dead letters", err)
	}
	return n, nil
}
