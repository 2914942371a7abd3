package pgstate

import (
	"context"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// pruneRunsSQL deletes what PruneRuns describes; see the SQLite store.
const pruneRunsSQL = `DELETE FROM runs
WHERE end_time IS NOT NULL
  AND (end_time < $1 OR (status = 'succeeded' AND read_count = 0 AND end_time < $2))
  AND id NOT IN (
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs) AS a WHERE n = 1
    UNION ALL
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY pipeline ORDER BY start_time DESC, id DESC) AS n FROM runs WHERE status = 'succeeded') AS b WHERE n = 1
  )`

// PruneRuns implements state.Store.
func (s *Store) PruneRuns(ctx context.Context, before, emptyBefore time.Time) (int, error) {
	if err := checkTimes(before, emptyBefore); err != nil {
		return 0, fmt.Errorf("state store: prune runs: %w", err)
	}
	var n int64
	err := retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, pruneRunsSQL, dbTime(before), dbTime(emptyBefore))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.opErr("prune runs", err)
	}
	return int(n), nil
}

// UpdateRun implements state.Store.
func (s *Store) UpdateRun(ctx context.Context, r *state.Run) error {
	if !textOK(r.ID) {
		return fmt.Errorf("state store: run %q: %w", r.ID, state.ErrNotFound)
	}
	var found bool
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			WITH u AS (
				UPDATE runs SET read_count = $1, written_count = $2, rejected_count = $3, filtered_count = $4, cursor_after = $5
				WHERE id = $6 AND status = 'running' RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM runs WHERE id = $6)`,
			r.Read, r.Written, r.Rejected, r.Filtered, message(r.CursorAfter), r.ID).Scan(&found)
	})
	if err != nil {
		return s.opErr("update run "+r.ID, err)
	}
	if !found {
		return fmt.Errorf("state store: run %q: %w", r.ID, state.ErrNotFound)
	}
	return nil
}
