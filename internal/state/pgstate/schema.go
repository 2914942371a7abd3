package pgstate

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the schema version this package writes and the highest
// one it reads.
const SchemaVersion = 2

// A migration brings a store from version to-1 to version to. Open runs
// the migrations a store lacks in one transaction that holds the store's
// advisory lock and also records the new schema_version: a crash leaves the
// store at the old or the new version, never in between, and of several
// processes opening an old store at once exactly one migrates it. To add
// version 2: append {to: 2, stmts: ...} and raise SchemaVersion; never edit
// a released migration.
type migration struct {
	to     int
	stmts  []string
	tables []string // tables that exist once the migration ran
}

// Values that connectors choose and Backbone compares or hands back — task
// keys, positions, fingerprints, locations, records — are bytea: they round
// trip byte for byte, where text would refuse invalid UTF-8 and NUL. Names
// (pipeline, run ID, step) and messages are text.
var migrations = []migration{{
	to: 1,
	stmts: []string{
		`CREATE TABLE meta (
			key   text PRIMARY KEY,
			value text NOT NULL
		)`,
		`CREATE TABLE checkpoints (
			pipeline    text NOT NULL,
			task        bytea NOT NULL,
			pos         bytea,
			done        boolean NOT NULL DEFAULT false,
			fingerprint bytea NOT NULL DEFAULT '',
			updated_at  timestamptz NOT NULL,
			PRIMARY KEY (pipeline, task)
		)`,
		// COLLATE "C": ties on start_time are broken by the bytes of the ID,
		// as in the SQLite store, whatever the database's collation.
		`CREATE TABLE runs (
			id             text COLLATE "C" PRIMARY KEY,
			pipeline       text NOT NULL,
			config_hash    text NOT NULL DEFAULT '',
			triggered_by   text NOT NULL DEFAULT '',
			logical_time   timestamptz,
			start_time     timestamptz NOT NULL,
			end_time       timestamptz,
			status         text NOT NULL,
			read_count     bigint NOT NULL DEFAULT 0,
			written_count  bigint NOT NULL DEFAULT 0,
			rejected_count bigint NOT NULL DEFAULT 0,
			filtered_count bigint NOT NULL DEFAULT 0,
			error          text NOT NULL DEFAULT '',
			cursor_before  text NOT NULL DEFAULT '',
			cursor_after   text NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX runs_by_start ON runs (start_time DESC, id DESC)`,
		`CREATE INDEX runs_by_pipeline ON runs (pipeline, start_time DESC, id DESC)`,
		// An identity column draws from a sequence: an ID is never reused
		// after a delete, so an ID shown by "dlq list" cannot later name
		// another record.
		`CREATE TABLE dead_letters (
			id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			pipeline   text NOT NULL,
			run_id     text NOT NULL DEFAULT '',
			task       bytea NOT NULL DEFAULT '',
			loc        bytea NOT NULL DEFAULT '',
			step       text NOT NULL DEFAULT '',
			field      text NOT NULL DEFAULT '',
			error      text NOT NULL DEFAULT '',
			record     bytea NOT NULL DEFAULT '',
			created_at timestamptz NOT NULL
		)`,
		`CREATE UNIQUE INDEX dead_letters_key ON dead_letters (pipeline, task, loc, step)`,
		`CREATE INDEX dead_letters_by_run ON dead_letters (run_id)`,
		// Leases for schedulers of several processes; tokens come from one
		// sequence, so a token is never handed out twice, even after the
		// lease's row is deleted by a release.
		`CREATE TABLE leases (
			name        text PRIMARY KEY,
			holder      text NOT NULL,
			token       bigint NOT NULL,
			acquired_at timestamptz NOT NULL,
			expires_at  timestamptz NOT NULL
		)`,
		`CREATE SEQUENCE lease_tokens`,
	},
	tables: []string{"meta", "checkpoints", "runs", "dead_letters", "leases"},
}, {
	to: 2,
	stmts: []string{
		`CREATE TABLE versions (
			pipeline   text NOT NULL,
			hash       text NOT NULL,
			content    bytea NOT NULL,
			first_seen timestamptz NOT NULL,
			last_seen  timestamptz NOT NULL,
			status     text NOT NULL DEFAULT '',
			reason     text NOT NULL DEFAULT '',
			PRIMARY KEY (pipeline, hash)
		)`,
	},
	tables: []string{"versions"},
}}

// latest is the version a store has once ms all ran.
func latest(ms []migration) int { return ms[len(ms)-1].to }

// migrate brings the store inside tx from version from to latest(ms).
// from is 0 for a new store. The caller holds the store's advisory lock.
func migrate(ctx context.Context, tx pgx.Tx, from int, ms []migration) error {
	for _, m := range ms {
		if m.to <= from {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", m.to, err)
			}
		}
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if from == 0 {
		if _, err := tx.Exec(ctx,
			`INSERT INTO meta (key, value) VALUES ('created_by', $1), ('created_at', $2)`,
			createdBy(), now); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO meta (key, value) VALUES ('schema_version', $1), ('migrated_at', $2)
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
