package sqlitestate

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// pruneRunsSQL deletes what PruneRuns describes. The newest run and the
// newest successful run of each pipeline are kept (ties broken by ID, as
// Runs orders them).
const pruneRunsSQL = `DELETE FROM runs
WHERE end_time IS NOT NULL
  AND (end_time < ? OR (status = 'succeeded' AND read_count = 0 AND end_time < ?))
  AND id NOT IN (
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs) WHERE n = 1
    UNION ALL
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs WHERE status = 'succeeded') WHERE n = 1
  )`

// PruneRuns implements state.Store.
func (s *Store) PruneRuns(ctx context.Context, before, emptyBefore time.Time) (int, error) {
	if err := checkTimes(before, emptyBefore); err != nil {
		return 0, fmt.Errorf("state store: prune runs: %w", err)
	}
	var n int64
	err := s.writeTx(ctx, "prune runs", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, pruneRunsSQL, formatTime(before), formatTime(emptyBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// UpdateRun implements state.Store.
func (s *Store) UpdateRun(ctx context.Context, r *state.Run) error {
	return s.writeTx(ctx, "update run "+r.ID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE runs SET read_count = ?, written_count = ?, rejected_count = ?, filtered_count = ?, cursor_after = ?
			WHERE id = ? AND status = 'running'`,
			r.Read, r.Written, r.Rejected, r.Filtered, r.CursorAfter, r.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, r.ID).Scan(&one); err == sql.ErrNoRows {
			return fmt.Errorf("state store: run %q: %w", r.ID, state.ErrNotFound)
		}
		return nil
	})
}
