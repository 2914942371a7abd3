package pgstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// SaveVersion implements state.Store.
func (s *Store) SaveVersion(ctx context.Context, v state.Version) error {
	if v.Pipeline == "" || v.Hash == "" {
		return errors.New("state store: save version: the version needs a pipeline and a hash")
	}
	if err := checkName("pipeline", v.Pipeline); err != nil {
		return fmt.Errorf("state store: save version: %w", err)
	}
	if err := sqlstate.CheckTimes(v.FirstSeen, v.LastSeen); err != nil {
		return fmt.Errorf("state store: save version: %w", err)
	}
	v = sqlstate.NewVersion(v)
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `
			INSERT INTO versions (pipeline, hash, content, first_seen, last_seen, status, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (pipeline, hash) DO UPDATE SET last_seen = excluded.last_seen`,
			v.Pipeline, message(v.Hash), v.Content, dbTime(v.FirstSeen), dbTime(v.LastSeen), message(v.Status), message(v.Reason))
		return err
	})
	if err != nil {
		return s.opErr("save version", err)
	}
	return nil
}

// MarkVersion implements state.Store.
func (s *Store) MarkVersion(ctx context.Context, pipeline, hash, status, reason string) error {
	if !textOK(pipeline) || !textOK(hash) {
		return fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	var n int64
	err := retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE versions SET status = $1, reason = $2 WHERE pipeline = $3 AND hash = $4`,
			message(status), message(reason), pipeline, hash)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.opErr("mark version", err)
	}
	if n == 0 {
		return fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	return nil
}

func scanVersion(row sqlstate.Scanner) (state.Version, error) {
	return sqlstate.ScanVersion(row, goTime)
}

// Versions implements state.Store.
func (s *Store) Versions(ctx context.Context, pipeline string) ([]state.Version, error) {
	if !textOK(pipeline) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sqlstate.VersionColumns+` FROM versions
		WHERE pipeline = $1 ORDER BY first_seen DESC, hash COLLATE "C" DESC`, pipeline)
	if err != nil {
		return nil, s.opErr("list versions", err)
	}
	defer rows.Close()
	vs, err := sqlstate.Collect(rows, scanVersion)
	if err != nil {
		return nil, s.opErr("list versions", err)
	}
	return vs, nil
}

// Version implements state.Store.
func (s *Store) Version(ctx context.Context, pipeline, hash string) (state.Version, error) {
	if !textOK(pipeline) || !textOK(hash) {
		return state.Version{}, fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT `+sqlstate.VersionColumns+` FROM versions
		WHERE pipeline = $1 AND hash = $2`, pipeline, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return state.Version{}, fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	if err != nil {
		return state.Version{}, s.opErr("read version", err)
	}
	return v, nil
}
