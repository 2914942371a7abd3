package pgstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// dbTime is t as stored: NULL for the zero time, else UTC to the
// microsecond (PostgreSQL would round; the contract truncates).
func dbTime(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.UTC().Truncate(time.Microsecond), Valid: true}
}

// goTime is a stored time in UTC, the zero time for NULL.
func goTime(t pgtype.Timestamptz) (time.Time, error) {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return time.Time{}, nil
	}
	return t.Time.UTC(), nil
}

// textOK reports whether s can be stored in a text column unchanged.
func textOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// message is s for a text column that holds a message: invalid UTF-8 and
// NUL bytes, which PostgreSQL's text refuses, become U+FFFD.
func message(s string) string {
	if textOK(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// checkName refuses a name PostgreSQL's text cannot hold unchanged: names
// identify what they name, so changing one is not an option.
func checkName(what, s string) error {
	if !textOK(s) {
		return fmt.Errorf("%s %q is not valid UTF-8 text", what, s)
	}
	return nil
}

// Serialization failures and deadlocks are retried a few times: every
// statement of this store can be run again.
const maxAttempts = 4

// retry runs fn until it succeeds, fails with an error other than a
// serialization failure or a deadlock, or has been tried maxAttempts times.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		var pe *pgconn.PgError
		if err == nil || attempt == maxAttempts || !errors.As(err, &pe) || (pe.Code != "40001" && pe.Code != "40P01") {
			return err
		}
		t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// opErr wraps an error of operation op, as a state.CorruptError when the
// database says the store is damaged (a table or column missing, corrupted
// data).
func (s *Store) opErr(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", "42703", "XX001", "XX002":
			return &state.CorruptError{Path: s.path, Reason: op + ": damaged", Err: scrub(err, s.secrets)}
		}
	}
	return s.wrap(op, err)
}

// LoadCheckpoints implements state.Store.
func (s *Store) LoadCheckpoints(ctx context.Context, pipeline string) (map[string]connector.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("load checkpoints", err)
	}
	if !textOK(pipeline) {
		return map[string]connector.Checkpoint{}, nil // no such pipeline can be stored
	}
	rows, err := s.pool.Query(ctx,
		`SELECT task, pos IS NULL, pos, done, fingerprint FROM checkpoints WHERE pipeline = $1`, pipeline)
	if err != nil {
		return nil, s.opErr("load checkpoints", err)
	}
	defer rows.Close()
	cps, err := sqlstate.ScanCheckpoints(rows)
	if err != nil {
		return nil, s.opErr("load checkpoints", err)
	}
	return cps, nil
}

// SaveCheckpoints implements state.Store.
func (s *Store) SaveCheckpoints(ctx context.Context, pipeline string, cps []connector.Checkpoint) error {
	if pipeline == "" {
		return errors.New("state store: save checkpoints: empty pipeline name")
	}
	if err := checkName("pipeline", pipeline); err != nil {
		return fmt.Errorf("state store: save checkpoints: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("save checkpoints", err)
	}
	if len(cps) == 0 {
		return nil
	}
	// One statement may not update a row twice: the later checkpoint of a
	// task wins.
	at := make(map[string]int, len(cps))
	var (
		tasks, poss, fps [][]byte
		dones            []bool
	)
	for _, cp := range cps {
		var pos []byte // nil: NULL
		if cp.Pos != nil {
			pos = []byte(cp.Pos)
			if len(pos) == 0 {
				pos = []byte{}
			}
		}
		if i, ok := at[cp.Task]; ok {
			poss[i], dones[i], fps[i] = pos, cp.Done, []byte(cp.Fingerprint)
			continue
		}
		at[cp.Task] = len(tasks)
		tasks, poss = append(tasks, []byte(cp.Task)), append(poss, pos)
		dones, fps = append(dones, cp.Done), append(fps, []byte(cp.Fingerprint))
	}
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO checkpoints (pipeline, task, pos, done, fingerprint, updated_at)
			SELECT $1, u.task, u.pos, u.done, u.fp, $6
			FROM unnest($2::bytea[], $3::bytea[], $4::boolean[], $5::bytea[]) AS u (task, pos, done, fp)
			ON CONFLICT (pipeline, task) DO UPDATE SET
				pos = excluded.pos, done = excluded.done,
				fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`,
			pipeline, tasks, poss, dones, fps, dbTime(sqlstate.Now()))
		return err
	})
	if err != nil {
		return s.opErr("save checkpoints", err)
	}
	return nil
}

// ResetCheckpoints implements state.Store.
func (s *Store) ResetCheckpoints(ctx context.Context, pipeline string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, s.wrap("reset checkpoints", err)
	}
	if !textOK(pipeline) {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM checkpoints WHERE pipeline = $1`, pipeline)
	if err != nil {
		return 0, s.opErr("reset checkpoints", err)
	}
	return int(tag.RowsAffected()), nil
}

// StartRun implements state.Store.
func (s *Store) StartRun(ctx context.Context, r *state.Run) error {
	if r.ID == "" || r.Pipeline == "" {
		return errors.New("state store: start run: the run needs an ID and a pipeline")
	}
	for _, n := range []struct{ what, s string }{{"run ID", r.ID}, {"pipeline", r.Pipeline}} {
		if err := checkName(n.what, n.s); err != nil {
			return fmt.Errorf("state store: start run: %w", err)
		}
	}
	if err := sqlstate.CheckTimes(r.LogicalTime, r.Start, r.End); err != nil {
		return fmt.Errorf("state store: start run %s: %w", r.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("start run "+r.ID, err)
	}
	start := r.Start
	if start.IsZero() {
		start = sqlstate.Now()
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO runs (id, pipeline, config_hash, triggered_by, logical_time, start_time, end_time,
			status, read_count, written_count, rejected_count, filtered_count, error, cursor_before, cursor_after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.ID, r.Pipeline, message(r.ConfigHash), message(r.Trigger), dbTime(r.LogicalTime), dbTime(start), dbTime(r.End),
		state.StatusRunning, r.Read, r.Written, r.Rejected, r.Filtered, message(r.Error),
		message(r.CursorBefore), message(r.CursorAfter))
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("state store %s: start run: a run %q exists already", s.path, r.ID)
		}
		return s.opErr("start run "+r.ID, err)
	}
	r.Status, r.Start = state.StatusRunning, start
	return nil
}

// FinishRun implements state.Store.
func (s *Store) FinishRun(ctx context.Context, r *state.Run) error {
	if r.ID == "" || r.Status == "" {
		return errors.New("state store: finish run: the run needs an ID and a status")
	}
	if err := sqlstate.CheckTimes(r.End); err != nil {
		return fmt.Errorf("state store: finish run %s: %w", r.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("finish run "+r.ID, err)
	}
	if !textOK(r.ID) {
		return fmt.Errorf("state store: finish run %q: %w", r.ID, state.ErrNotFound)
	}
	end := r.End
	if end.IsZero() {
		end = sqlstate.Now()
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE runs SET end_time = $1, status = $2, read_count = $3, written_count = $4,
			rejected_count = $5, filtered_count = $6, error = $7, cursor_after = $8
		WHERE id = $9`,
		dbTime(end), message(r.Status), r.Read, r.Written, r.Rejected, r.Filtered, message(r.Error),
		message(r.CursorAfter), r.ID)
	if err != nil {
		return s.opErr("finish run "+r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("state store: finish run %q: %w", r.ID, state.ErrNotFound)
	}
	r.End = end
	return nil
}

func scanRun(row sqlstate.Scanner) (state.Run, error) { return sqlstate.ScanRun(row, goTime) }

// mark is the placeholder of the n-th argument of a statement.
func mark(n int) string { return "$" + strconv.Itoa(n) }

// Runs implements state.Store.
func (s *Store) Runs(ctx context.Context, f state.RunFilter) ([]state.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("list runs", err)
	}
	if !textOK(f.Pipeline) || !textOK(f.Status) {
		return nil, nil
	}
	q, args := sqlstate.RunsQuery(f, mark)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.opErr("list runs", err)
	}
	defer rows.Close()
	runs, err := sqlstate.Collect(rows, scanRun)
	if err != nil {
		return nil, s.opErr("list runs", err)
	}
	return runs, nil
}

// Run implements state.Store.
func (s *Store) Run(ctx context.Context, id string) (state.Run, error) {
	if err := ctx.Err(); err != nil {
		return state.Run{}, s.wrap("read run "+id, err)
	}
	if !textOK(id) {
		return state.Run{}, fmt.Errorf("state store: run %q: %w", id, state.ErrNotFound)
	}
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+sqlstate.RunColumns+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return state.Run{}, fmt.Errorf("state store: run %q: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return state.Run{}, s.opErr("read run "+id, err)
	}
	return r, nil
}

// AddDeadLetters implements state.Store.
//
// All dead letters go in one INSERT … SELECT FROM unnest(…) ORDER BY
// ordinality, so new ones get IDs in the order given. One statement may not
// update a row twice, so dead letters of one key are merged first, the later
// one winning.
func (s *Store) AddDeadLetters(ctx context.Context, dls []state.DeadLetter) error {
	err := sqlstate.CheckDeadLetters(dls, func(d *state.DeadLetter) error {
		for _, n := range []struct{ what, s string }{{"pipeline", d.Pipeline}, {"run ID", d.RunID}, {"step", d.Step}} {
			if err := checkName(n.what, n.s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("add dead letters", err)
	}
	if len(dls) == 0 {
		return nil
	}
	at := sqlstate.Now()
	var (
		n                        = len(dls)
		index                    = make(map[sqlstate.DLKey]int, n)
		pipelines, runIDs, steps = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		fields, msgs             = make([]string, 0, n), make([]string, 0, n)
		tasks, locs, records     = make([][]byte, 0, n), make([][]byte, 0, n), make([][]byte, 0, n)
		created                  = make([]time.Time, 0, n)
	)
	for i := range dls {
		d := &dls[i]
		k := sqlstate.Key(d)
		rec := d.Record
		if rec == nil {
			rec = []byte{}
		}
		c := at
		if !d.CreatedAt.IsZero() {
			c = d.CreatedAt.UTC().Truncate(time.Microsecond)
		}
		if j, ok := index[k]; ok {
			runIDs[j], fields[j], msgs[j], records[j], created[j] = d.RunID, message(d.Field), message(d.Error), rec, c
			continue
		}
		index[k] = len(pipelines)
		pipelines, runIDs, steps = append(pipelines, d.Pipeline), append(runIDs, d.RunID), append(steps, d.Step)
		fields, msgs = append(fields, message(d.Field)), append(msgs, message(d.Error))
		tasks, locs, records = append(tasks, []byte(d.Task)), append(locs, []byte(d.Loc)), append(records, rec)
		created = append(created, c)
	}
	ids := make(map[sqlstate.DLKey]int64, len(index))
	err = retry(ctx, func() error {
		clear(ids)
		rows, err := s.pool.Query(ctx, `
			INSERT INTO dead_letters (pipeline, run_id, task, loc, step, field, error, record, created_at)
			SELECT u.pipeline, u.run_id, u.task, u.loc, u.step, u.field, u.error, u.record, u.created_at
			FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[],
				$8::bytea[], $9::timestamptz[])
				WITH ORDINALITY AS u (pipeline, run_id, task, loc, step, field, error, record, created_at, ord)
			ORDER BY u.ord
			ON CONFLICT (pipeline, task, loc, step) DO UPDATE SET
				run_id = excluded.run_id, field = excluded.field, error = excluded.error,
				record = excluded.record, created_at = excluded.created_at
			RETURNING id, pipeline, task, loc, step`,
			pipelines, runIDs, tasks, locs, steps, fields, msgs, records, created)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			id        int64
			p, st     string
			task, loc []byte
		)
		for rows.Next() {
			if err := rows.Scan(&id, &p, &task, &loc, &st); err != nil {
				return err
			}
			ids[sqlstate.DLKey{Pipeline: p, Task: string(task), Loc: string(loc), Step: st}] = id
		}
		return rows.Err()
	})
	if err != nil {
		return s.opErr("add dead letters", err)
	}
	sqlstate.Added(dls, ids, at)
	return nil
}

func scanDeadLetter(row sqlstate.Scanner) (state.DeadLetter, error) {
	return sqlstate.ScanDeadLetter(row, goTime)
}

// dlqWhere turns f into a WHERE clause and its arguments; ok is false when
// f can match nothing stored (a name that is not valid UTF-8 text).
func dlqWhere(f state.DLQFilter) (where string, args []any, ok bool) {
	var conds []string
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, c := range []struct{ col, v string }{{"pipeline", f.Pipeline}, {"run_id", f.RunID}, {"step", f.Step}} {
		if c.v == "" {
			continue
		}
		if !textOK(c.v) {
			return "", nil, false
		}
		conds = append(conds, c.col+" = "+arg(c.v))
	}
	if f.Contains != "" {
		// Byte-wise, case-sensitive substring search. The text columns
		// hold valid UTF-8 without NUL only, so they cannot contain a
		// needle that is not.
		b := arg([]byte(f.Contains))
		c := "position(" + b + " in loc) > 0 OR position(" + b + " in record) > 0"
		if textOK(f.Contains) {
			t := arg(f.Contains)
			c = "strpos(error, " + t + ") > 0 OR strpos(field, " + t + ") > 0 OR " + c
		}
		conds = append(conds, "("+c+")")
	}
	if len(f.IDs) > 0 {
		conds = append(conds, "id = ANY("+arg(f.IDs)+"::bigint[])")
	}
	return sqlstate.WhereClause(conds), args, true
}

// DeadLetters implements state.Store.
func (s *Store) DeadLetters(ctx context.Context, f state.DLQFilter) ([]state.DeadLetter, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("list dead letters", err)
	}
	where, args, ok := dlqWhere(f)
	if !ok {
		return nil, nil
	}
	q := `SELECT ` + sqlstate.DeadLetterColumns + ` FROM dead_letters` + where + ` ORDER BY id`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.opErr("list dead letters", err)
	}
	defer rows.Close()
	dls, err := sqlstate.Collect(rows, scanDeadLetter)
	if err != nil {
		return nil, s.opErr("list dead letters", err)
	}
	return dls, nil
}

// DeadLetter implements state.Store.
func (s *Store) DeadLetter(ctx context.Context, id int64) (state.DeadLetter, error) {
	op := "read dead letter " + strconv.FormatInt(id, 10)
	if err := ctx.Err(); err != nil {
		return state.DeadLetter{}, s.wrap(op, err)
	}
	d, err := scanDeadLetter(s.pool.QueryRow(ctx,
		`SELECT `+sqlstate.DeadLetterColumns+` FROM dead_letters WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return state.DeadLetter{}, fmt.Errorf("state store: dead letter %d: %w", id, state.ErrNotFound)
	}
	if err != nil {
		return state.DeadLetter{}, s.opErr(op, err)
	}
	return d, nil
}

// DeleteDeadLetters implements state.Store.
func (s *Store) DeleteDeadLetters(ctx context.Context, ids []int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, s.wrap("delete dead letters", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM dead_letters WHERE id = ANY($1::bigint[])`, ids)
	if err != nil {
		return 0, s.opErr("delete dead letters", err)
	}
	return int(tag.RowsAffected()), nil
}

// CountDeadLetters implements state.Store.
func (s *Store) CountDeadLetters(ctx context.Context, f state.DLQFilter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, s.wrap("count dead letters", err)
	}
	where, args, ok := dlqWhere(f)
	if !ok {
		return 0, nil
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`+where, args...).Scan(&n); err != nil {
		return 0, s.opErr("count dead letters", err)
	}
	return n, nil
}
