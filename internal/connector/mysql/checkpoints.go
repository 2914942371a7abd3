package mysql

import (
	"context"
	"fmt"
	"strconv"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
)

// The sink keeps the checkpoints of the pipelines that write into a
// database in that database, next to the rows, and updates them in the
// transaction that stages the rows:
//
//	backbone_meta(k VARCHAR(64) PRIMARY KEY, v VARCHAR(255))
//	    ('checkpoints_version', '1')
//	backbone_checkpoints(pipeline, task, pos, done, fingerprint, updated_at,
//	    PRIMARY KEY (pipeline, task))
//	backbone_swaps(tbl PRIMARY KEY, pipeline, created_at)
//	    a replace whose rows and checkpoints are committed and whose RENAME
//	    is still to do
//
// All are InnoDB, utf8mb4_bin (task keys compare byte for byte). A
// database whose checkpoints carry a newer version, or no version at all,
// is refused: it is never taken for a first run.
const swapsTable = "backbone_swaps"

const createMetaSQL = "CREATE TABLE IF NOT EXISTS backbone_meta (" +
	"k VARCHAR(64) NOT NULL PRIMARY KEY, " +
	"v VARCHAR(255) NOT NULL" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

const createCheckpointsSQL = "CREATE TABLE IF NOT EXISTS backbone_checkpoints (" +
	"pipeline VARCHAR(200) NOT NULL, " +
	"task VARCHAR(500) NOT NULL, " +
	"pos LONGBLOB NULL, " +
	"done BOOLEAN NOT NULL DEFAULT FALSE, " +
	"fingerprint VARCHAR(500) NOT NULL DEFAULT '', " +
	"updated_at DATETIME(6) NOT NULL, " +
	"PRIMARY KEY (pipeline, task)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

const createSwapsSQL = "CREATE TABLE IF NOT EXISTS backbone_swaps (" +
	"tbl VARCHAR(64) NOT NULL PRIMARY KEY, " +
	"pipeline VARCHAR(200) NOT NULL, " +
	"created_at DATETIME(6) NOT NULL" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

const upsertCheckpointSQL = "INSERT INTO backbone_checkpoints (pipeline, task, pos, done, fingerprint, updated_at) " +
	"VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE " +
	"pos = VALUES(pos), done = VALUES(done), fingerprint = VALUES(fingerprint), updated_at = VALUES(updated_at)"

// selectCheckpointForUpdateSQL reads a task's checkpoint for a guarded
// commit and locks its row until the commit.
const selectCheckpointForUpdateSQL = "SELECT pos, done FROM backbone_checkpoints WHERE pipeline = ? AND task = ? FOR UPDATE"

const markSwapSQL = "INSERT INTO backbone_swaps (tbl, pipeline, created_at) VALUES (?, ?, ?) " +
	"ON DUPLICATE KEY UPDATE pipeline = VALUES(pipeline), created_at = VALUES(created_at)"

// ensureCheckpointTables creates the checkpoint tables when missing and
// checks the version of existing ones. Each statement commits on its own
// (DDL does in MySQL); running it twice, or concurrently, is harmless.
func ensureCheckpointTables(ctx context.Context, q querier) error {
	tables, err := existingTables(ctx, q)
	if err != nil {
		return err
	}
	if tables[sqlkit.CheckpointsTable] {
		if err := checkVersion(ctx, q, tables); err != nil {
			return err
		}
	}
	for _, s := range []string{
		createMetaSQL,
		"INSERT IGNORE INTO backbone_meta (k, v) VALUES ('" + sqlkit.CheckpointsVersionKey + "', '" + strconv.Itoa(sqlkit.CheckpointsVersion) + "')",
		createCheckpointsSQL,
		createSwapsSQL,
	} {
		if _, err := q.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// existingTables reports which of the checkpoint tables exist.
func existingTables(ctx context.Context, q querier) (map[string]bool, error) {
	return sqlkit.TableSet(ctx, q, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?, ?)`, sqlkit.MetaTable, sqlkit.CheckpointsTable, swapsTable)
}

// checkVersion refuses checkpoints written by a newer backbone, or stored
// without a version.
func checkVersion(ctx context.Context, q querier, tables map[string]bool) error {
	return sqlkit.CheckVersion(ctx, q, tables, `SELECT v FROM backbone_meta WHERE k = ?`)
}

// loadCheckpoints reads the checkpoints of a pipeline. Missing tables mean
// none.
func loadCheckpoints(ctx context.Context, q querier, pipeline string) (map[string]connector.Checkpoint, error) {
	out := map[string]connector.Checkpoint{}
	tables, err := existingTables(ctx, q)
	if err != nil {
		return nil, err
	}
	if !tables[sqlkit.CheckpointsTable] {
		return out, nil
	}
	if err := checkVersion(ctx, q, tables); err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT task, pos, done, fingerprint FROM backbone_checkpoints WHERE pipeline = ?`, pipeline)
	if err != nil {
		return nil, err
	}
	return sqlkit.ScanCheckpoints(rows)
}

// Names of the tables a replace loads into and swaps out.
func newTableName(table string) string { return table + "__backbone_new" }
func oldTableName(table string) string { return table + "__backbone_old" }

// tableExists reports whether a table of the dsn's database exists.
func tableExists(ctx context.Context, q querier, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table).Scan(&n)
	return n > 0, err
}

// completeSwap finishes a replace of table whose rows and checkpoints were
// committed (its mark is in backbone_swaps) but whose RENAME did not run or
// did not finish. Every step is idempotent, so a crash anywhere inside it
// is completed by the next call:
//
//	mark present, new table present  -> RENAME t TO old, new TO t (atomic)
//	mark present, new table absent   -> the RENAME ran
//	then DROP old, then delete the mark.
//
// It runs at every sink Open and LoadCheckpoints, before any checkpoint is
// read or any new load begins, so the checkpoints the engine sees always
// describe the rows of the table.
func completeSwap(ctx context.Context, q querier, table string) error {
	tables, err := existingTables(ctx, q)
	if err != nil || !tables[swapsTable] {
		return err
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM backbone_swaps WHERE tbl = ?`, table).Scan(&n); err != nil || n == 0 {
		return err
	}
	newT, oldT := newTableName(table), oldTableName(table)
	hasNew, err := tableExists(ctx, q, newT)
	if err != nil {
		return err
	}
	if hasNew {
		if _, err := q.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(oldT)); err != nil {
			return err
		}
		hasT, err := tableExists(ctx, q, table)
		if err != nil {
			return err
		}
		rename := "RENAME TABLE " + quoteIdent(newT) + " TO " + quoteIdent(table)
		if hasT {
			rename = "RENAME TABLE " + quoteIdent(table) + " TO " + quoteIdent(oldT) + ", " + quoteIdent(newT) + " TO " + quoteIdent(table)
		}
		if _, err := q.ExecContext(ctx, rename); err != nil {
			return fmt.Errorf("swap in the replaced rows: %w", err)
		}
	}
	if _, err := q.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(oldT)); err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `DELETE FROM backbone_swaps WHERE tbl = ?`, table)
	return err
}
