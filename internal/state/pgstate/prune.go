package pgstate

import (
	"context"
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
	err := retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, sqlstate.PruneRunsSQL("$1", "$2"), dbTime(before), dbTime(emptyBefore))
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
