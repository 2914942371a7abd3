package sqlitestate

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// SchemaVersion is the schema version this package writes and the highest
// one it reads.
const SchemaVersion = 2

// A migration brings a store from version to-1 to version to. Migrations
// run in order inside one write transaction, which also records the new
// schema_version, so a crash leaves the store at the old or the new version,
// never in between. To add version 2: append {to: 2, stmts: ...} and raise
// SchemaVersion; never edit a released migration.
type migration struct {
	to     int
	stmts  []string
	tables []string // tables that exist once the migration ran
}

var migrations = []migration{{
	to: 1,
	stmts: []string{
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
	tables: []string{"meta", "checkpoints", "runs", "dead_letters"},
}, {
	to: 2,
	stmts: []string{
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
	tables: []string{"versions"},
}}

// latest is the version a store has once ms all ran.
func latest(ms []migration) int { return ms[len(ms)-1].to }

// migrate brings the store inside tx from version from to latest(ms).
// from is 0 for a new store.
func migrate(ctx context.Context, tx *sql.Tx, from int, ms []migration) error {
	for _, m := range ms {
		if m.to <= from {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", m.to, err)
			}
		}
	}
	now := formatTime(time.Now())
	if from == 0 {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO meta (key, value) VALUES ('created_by', ?), ('created_at', ?)`,
			createdBy(), now); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('migrated_at', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		strconv.Itoa(latest(ms)), now)
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

// requiredTables lists the tables a store at latest(ms) has.
func requiredTables(ms []migration) []string {
	var ts []string
	for _, m := range ms {
		ts = append(ts, m.tables...)
	}
	return ts
}

// createdBy names this binary in the meta table.
func createdBy() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "backbone " + v
}
