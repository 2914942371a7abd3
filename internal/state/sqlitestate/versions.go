package sqlitestate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/backbone-etl/backbone/internal/state"
)

// SaveVersion implements state.Store.
func (s *Store) SaveVersion(ctx context.Context, v state.Version) error {
	if v.Pipeline == "" || v.Hash == "" {
		return errors.New("state store: save version: the version needs a pipeline and a hash")
	}
	if err := checkTimes(v.FirstSeen, v.LastSeen); err != nil {
		return fmt.Errorf("state store: save version: %w", err)
	}
	seen := v.LastSeen
	if seen.IsZero() {
		seen = now()
	}
	first := v.FirstSeen
	if first.IsZero() {
		first = seen
	}
	content := v.Content
	if content == nil {
		content = []byte{}
	}
	return s.writeTx(ctx, "save version", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO versions (pipeline, hash, content, first_seen, last_seen, status, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (pipeline, hash) DO UPDATE SET last_seen = excluded.last_seen`,
			v.Pipeline, v.Hash, content, formatTime(first), formatTime(seen), v.Status, v.Reason)
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

const versionColumns = `pipeline, hash, content, first_seen, last_seen, status, reason`

func scanVersion(sc interface{ Scan(...any) error }) (state.Version, error) {
	var (
		v           state.Version
		first, last sql.NullString
	)
	if err := sc.Scan(&v.Pipeline, &v.Hash, &v.Content, &first, &last, &v.Status, &v.Reason); err != nil {
		return v, err
	}
	var err error
	if v.FirstSeen, err = parseTime(first); err != nil {
		return v, err
	}
	v.LastSeen, err = parseTime(last)
	return v, err
}

// Versions implements state.Store.
func (s *Store) Versions(ctx context.Context, pipeline string) ([]state.Version, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+versionColumns+` FROM versions
		WHERE pipeline = ? ORDER BY first_seen DESC, hash DESC`, pipeline)
	if err != nil {
		return nil, s.wrap("list versions", err)
	}
	defer rows.Close()
	var vs []state.Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, s.wrap("list versions", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list versions", err)
	}
	return vs, nil
}

// Version implements state.Store.
func (s *Store) Version(ctx context.Context, pipeline, hash string) (state.Version, error) {
	v, err := scanVersion(s.r.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM versions
		WHERE pipeline = ? AND hash = ?`, pipeline, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Version{}, fmt.Errorf("state store: version %s of %q: %w", hash, pipeline, state.ErrNotFound)
	}
	if err != nil {
		return state.Version{}, s.wrap("read version", err)
	}
	return v, nil
}
