package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
)

// The sink keeps the checkpoints of the pipelines that write into a
// database in that database, next to the rows, and updates them in the
// transaction that stages the rows:
//
//	backbone_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
//	    ('checkpoints_version', '1')
//	backbone_checkpoints(pipeline TEXT, task TEXT, pos BLOB, done INTEGER,
//	    fingerprint TEXT, updated_at TEXT, PRIMARY KEY (pipeline, task))
//
// A database whose checkpoints carry a newer version, or no version at all,
// is refused: it is never taken for a first run.
const createMetaSQL = `CREATE TABLE IF NOT EXISTS backbone_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
)`

const createCheckpointsSQL = `CREATE TABLE IF NOT EXISTS backbone_checkpoints (
	pipeline    TEXT NOT NULL,
	task        TEXT NOT NULL,
	pos         BLOB,
	done        INTEGER NOT NULL DEFAULT 0,
	fingerprint TEXT NOT NULL DEFAULT '',
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (pipeline, task)
)`

const upsertCheckpointSQL = `INSERT INTO backbone_checkpoints (pipeline, task, pos, done, fingerprint, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (pipeline, task) DO UPDATE SET
	pos = excluded.pos, done = excluded.done, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`

// insertNewCheckpointSQL stores the first checkpoint of a task, and
// changes nothing when the task has one: a guarded checkpoint without base.
const insertNewCheckpointSQL = `INSERT INTO backbone_checkpoints (pipeline, task, pos, done, fingerprint, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (pipeline, task) DO NOTHING`

// casCheckpointSQL moves a task's checkpoint only from its base (pos,
// done): a guarded checkpoint with base.
const casCheckpointSQL = `UPDATE backbone_checkpoints SET pos = ?, done = ?, fingerprint = ?, updated_at = ?
WHERE pipeline = ? AND task = ? AND coalesce(pos, x'') = coalesce(?, x'') AND done = ?`

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier = sqlkit.Querier

// ensureCheckpointTables creates the checkpoint tables when missing and
// checks the version of existing ones. It runs in its own transaction.
func ensureCheckpointTables(ctx context.Context, c *sql.Conn) (err error) {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // the first error is the one to report
			return
		}
		_, err = c.ExecContext(ctx, "COMMIT")
	}()
	tables, err := existingTables(ctx, c)
	if err != nil {
		return err
	}
	if tables[sqlkit.CheckpointsTable] {
		if err := checkVersion(ctx, c, tables); err != nil {
			return err
		}
	}
	for _, q := range []string{
		createMetaSQL,
		`INSERT OR IGNORE INTO backbone_meta (key, value) VALUES ('` + sqlkit.CheckpointsVersionKey + `', '` + strconv.Itoa(sqlkit.CheckpointsVersion) + `')`,
		createCheckpointsSQL,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// existingTables reports which of the checkpoint tables exist.
func existingTables(ctx context.Context, q querier) (map[string]bool, error) {
	return sqlkit.TableSet(ctx, q, `SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)`, sqlkit.MetaTable, sqlkit.CheckpointsTable)
}

// checkVersion refuses checkpoints written by a newer backbone, or stored
// without a version.
func checkVersion(ctx context.Context, q querier, tables map[string]bool) error {
	return sqlkit.CheckVersion(ctx, q, tables, `SELECT value FROM backbone_meta WHERE key = ?`)
}

// loadCheckpoints reads the checkpoints of a pipeline from the database at
// path. A missing file or missing tables mean none.
func loadCheckpoints(ctx context.Context, path, pipeline string, busy time.Duration) (map[string]connector.Checkpoint, error) {
	out := map[string]connector.Checkpoint{}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	db, err := openReadOnly(ctx, path, busy)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tables, err := existingTables(ctx, db)
	if err != nil {
		return nil, classify(err)
	}
	if !tables[sqlkit.CheckpointsTable] {
		return out, nil
	}
	if err := checkVersion(ctx, db, tables); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT task, pos, done, fingerprint FROM backbone_checkpoints WHERE pipeline = ?`, pipeline)
	if err != nil {
		return nil, classify(err)
	}
	cps, err := sqlkit.ScanCheckpoints(rows)
	if err != nil {
		return nil, classify(err)
	}
	return cps, nil
}
