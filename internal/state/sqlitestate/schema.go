package sqlitestate

import (
	"context"
	"database/sql"

	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// SchemaVersion is the schema version this package writes and the highest
// one it reads.
const SchemaVersion = 2

var migrations = []sqlstate.Migration{{
	To: 1,
	Stmts: []string{
		`CREATE TABLE meta (
			key   TEXT PRIMARY KEY,
			value TEXT NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE checkpoints (
			pipeline    TEXT NOT NULL,
			task        TEXT NOT NULL,
			pos         BLOB,
			done        INTEGER NOT NULL DEFAULT 0,
			fingerprint TEXT NOT NULL DEFAULT '',
			updated_at  TEXT NOT NULL,
			PRIMARY KEY (pipeline, task)
		) WITHOUT ROWID`,
		`CREATE TABLE runs (
			id             TEXT PRIMARY KEY,
			pipeline       TEXT NOT NULL,
			config_hash    TEXT NOT NULL DEFAULT '',
			triggered_by   TEXT NOT NULL DEFAULT '',
			logical_time   TEXT,
			start_time     TEXT NOT NULL,
			end_time       TEXT,
			status         TEXT NOT NULL,
			read_count     INTEGER NOT NULL DEFAULT 0,
			written_count  INTEGER NOT NULL DEFAULT 0,
			rejected_count INTEGER NOT NULL DEFAULT 0,
			filtered_count INTEGER NOT NULL DEFAULT 0,
			error          TEXT NOT NULL DEFAULT '',
			cursor_before  TEXT NOT NULL DEFAULT '',
			cursor_after   TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX runs_by_start ON runs (start_time DESC, id DESC)`,
		`CREATE INDEX runs_by_pipeline ON runs (pipeline, start_time DESC, id DESC)`,
		// AUTOINCREMENT: an ID is never reused after a delete, so an ID
		// shown by "dlq list" cannot later name another record.
		`CREATE TABLE dead_letters (
			id         INTEGER PRIMARY KEY AUTOINCREMENT,
			pipeline   TEXT NOT NULL,
			run_id     TEXT NOT NULL DEFAULT '',
			task       TEXT NOT NULL DEFAULT '',
			loc        TEXT NOT NULL DEFAULT '',
			step       TEXT NOT NULL DEFAULT '',
			field      TEXT NOT NULL DEFAULT '',
			error      TEXT NOT NULL DEFAULT '',
			record     BLOB NOT NULL DEFAULT x'',
			created_at TEXT NOT NULL
		)`,
		`CREATE UNIQUE INDEX dead_letters_key ON dead_letters (pipeline, task, loc, step)`,
		`CREATE INDEX dead_letters_by_run ON dead_letters (run_id)`,
	},
	Tables: []string{"meta", "checkpoints", "runs", "dead_letters"},
}, {
	To: 2,
	Stmts: []string{
		`CREATE TABLE versions (
			pipeline   TEXT NOT NULL,
			hash       TEXT NOT NULL,
			content    BLOB NOT NULL,
			first_seen TEXT NOT NULL,
			last_seen  TEXT NOT NULL,
			status     TEXT NOT NULL DEFAULT '',
			reason     TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (pipeline, hash)
		) WITHOUT ROWID`,
	},
	Tables: []string{"versions"},
}}

// migrate brings the store inside tx, a write transaction, from version
// from to the latest of ms. from is 0 for a new store.
func migrate(ctx context.Context, tx *sql.Tx, from int, ms []sqlstate.Migration) error {
	return sqlstate.Migrate(ctx, func(ctx context.Context, stmt string, args ...any) error {
		_, err := tx.ExecContext(ctx, stmt, args...)
		return err
	}, mark, from, ms)
}
