package sqlstate

import (
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// RunColumns are the columns of runs, in the order ScanRun reads them.
const RunColumns = `id, pipeline, config_hash, triggered_by, logical_time, start_time, end_time,
	status, read_count, written_count, rejected_count, filtered_count, error, cursor_before, cursor_after`

// ScanRun scans a row of RunColumns. T is what the store scans a time
// column into; toTime turns it into the time in UTC, the zero time for
// NULL.
func ScanRun[T any](row Scanner, toTime func(T) (time.Time, error)) (state.Run, error) {
	var (
		r                   state.Run
		logical, start, end T
	)
	err := row.Scan(&r.ID, &r.Pipeline, &r.ConfigHash, &r.Trigger, &logical, &start, &end,
		&r.Status, &r.Read, &r.Written, &r.Rejected, &r.Filtered, &r.Error, &r.CursorBefore, &r.CursorAfter)
	if err != nil {
		return r, err
	}
	if r.LogicalTime, err = toTime(logical); err != nil {
		return r, err
	}
	if r.Start, err = toTime(start); err != nil {
		return r, err
	}
	r.End, err = toTime(end)
	return r, err
}

// RunsQuery is the query of Runs for f and its arguments; mark(n) is the
// placeholder of the n-th argument.
func RunsQuery(f state.RunFilter, mark func(n int) string) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Pipeline != "" {
		args = append(args, f.Pipeline)
		where = append(where, "pipeline = "+mark(len(args)))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		where = append(where, "status = "+mark(len(args)))
	}
	q := `SELECT ` + RunColumns + ` FROM runs` + WhereClause(where) + ` ORDER BY start_time DESC, id DESC`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT ` + mark(len(args))
	}
	return q, args
}

// PruneRunsSQL deletes what state.Store.PruneRuns describes; before and
// emptyBefore are the placeholders of its two times. The newest run and
// the newest successful run of each pipeline are kept (ties broken by ID,
// as Runs orders them).
func PruneRunsSQL(before, emptyBefore string) string {
	return `DELETE FROM runs
WHERE end_time IS NOT NULL
  AND (end_time < ` + before + ` OR (status = 'succeeded' AND read_count = 0 AND end_time < ` + emptyBefore + `))
  AND id NOT IN (
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs) AS a WHERE n = 1
    UNION ALL
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs WHERE status = 'succeeded') AS b WHERE n = 1
  )`
}
