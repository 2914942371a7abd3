package sqlkit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/backbone-etl/backbone/internal/connector"
)

// A sink keeps the checkpoints of the pipelines that write into a
// database in that database: rows of backbone_checkpoints, whose format
// is the version stored in backbone_meta under CheckpointsVersionKey.
// Each connector writes its own DDL; the names and the version are these.
const (
	CheckpointsVersion    = 1
	CheckpointsVersionKey = "checkpoints_version"
	MetaTable             = "backbone_meta"
	CheckpointsTable      = "backbone_checkpoints"
)

// Querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// TableSet runs query, which selects table names, and returns the set of
// them: which of the tables asked for exist.
func TableSet(ctx context.Context, q Querier, query string, args ...any) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tables := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		tables[name] = true
	}
	return tables, rows.Err()
}

var errNoVersion = errors.New("table backbone_checkpoints exists without its version in backbone_meta: refusing checkpoints of unknown format")

// CheckVersion refuses checkpoints written by a newer backbone, or stored
// without a version. tables is the set of existing tables (TableSet);
// versionSQL selects the value of the backbone_meta row whose key is its
// one parameter.
func CheckVersion(ctx context.Context, q Querier, tables map[string]bool, versionSQL string) error {
	if !tables[MetaTable] {
		return errNoVersion
	}
	var v string
	err := q.QueryRowContext(ctx, versionSQL, CheckpointsVersionKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoVersion
	}
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return fmt.Errorf("backbone_meta: checkpoints version %q is not a number: refusing checkpoints of unknown format", v)
	case n > CheckpointsVersion:
		return fmt.Errorf("checkpoints were written by a newer backbone (version %d; this one reads version %d)", n, CheckpointsVersion)
	case n < 1:
		return fmt.Errorf("backbone_meta: checkpoints version %d is not valid", n)
	}
	return nil
}

// ScanCheckpoints reads rows of (task, pos, done, fingerprint) into
// checkpoints by task, and closes rows. done is any integer (a MySQL
// BOOLEAN, a SQLite 0 or 1); a NULL pos is no position.
func ScanCheckpoints(rows *sql.Rows) (map[string]connector.Checkpoint, error) {
	defer rows.Close()
	out := map[string]connector.Checkpoint{}
	for rows.Next() {
		var cp connector.Checkpoint
		var pos []byte
		var done int64
		if err := rows.Scan(&cp.Task, &pos, &done, &cp.Fingerprint); err != nil {
			return nil, err
		}
		if pos != nil {
			cp.Pos = pos
		}
		cp.Done = done != 0
		out[cp.Task] = cp
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
