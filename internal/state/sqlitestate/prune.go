package sqlitestate

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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
