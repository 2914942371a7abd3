package sqlitestate

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// PruneRuns implements state.Store.
func (s *Store) PruneRuns(ctx context.Context, before, emptyBefore time.Time) (int, error) {
	if err := sqlstate.CheckTimes(before, emptyBefore); err != nil {
		return 0, fmt.Errorf("state store: prune runs: %w", err)
	}
	var n int64
	err := s.writeTx(ctx, "prune runs", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlstate.PruneRunsSQL("?", "?"), formatTime(before), formatTime(emptyBefore))
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
