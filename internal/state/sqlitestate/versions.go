package sqlitestate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// SaveVersion implements state.Store.
func (s *Store) SaveVersion(ctx context.Context, v state.Version) error {
	if v.Pipeline == "" || v.Hash == "" {
		return errors.New("state store: save version: the version needs a pipeline and a hash")
	}
	if err := sqlstate.CheckTimes(v.FirstSeen, v.LastSeen); err != nil {
		return fmt.Errorf("state store: save version: %w", err)
	}
	v = sqlstate.NewVersion(v)
	return s.writeTx(ctx, "save version", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO versions (pipeline, hash, content, first_seen, last_seen, status, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (pipeline, hash) DO UPDATE SET last_seen = excluded.last_seen`,
			v.Pipeline, v.Hash, v.Content, formatTime(v.FirstSeen), formatTime(v.LastSeen), v.Status, v.Reason)
		return err
	})
}

// MarkVersion implements state.Store.
func (s *Store) MarkVersion(ctx context.Context, pipeline, hash, status, reason string) error {
	return s.writeTx(ctx, "mark version", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE versions SET status = ?, reason = ? WHERE pipeline = ? AND hash = ?`,
			status, reason, pipeline, hash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
		}
		return nil
	})
}

func scanVersion(row sqlstate.Scanner) (state.Version, error) {
	return sqlstate.ScanVersion(row, parseTime)
}

// Versions implements state.Store.
func (s *Store) Versions(ctx context.Context, pipeline string) ([]state.Version, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstate.VersionColumns+` FROM versions
		WHERE pipeline = ? ORDER BY first_seen DESC, hash DESC`, pipeline)
	if err != nil {
		return nil, s.wrap("list versions", err)
	}
	defer rows.Close()
	vs, err := sqlstate.Collect(rows, scanVersion)
	if err != nil {
		return nil, s.wrap("list versions", err)
	}
	return vs, nil
}

// Version implements state.Store.
func (s *Store) Version(ctx context.Context, pipeline, hash string) (state.Version, error) {
	v, err := scanVersion(s.r.QueryRowContext(ctx, `SELECT `+sqlstate.VersionColumns+` FROM versions
		WHERE pipeline = ? AND hash = ?`, pipeline, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Version{}, fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	if err != nil {
		return state.Version{}, s.wrap("read version", err)
	}
	return v, nil
}
