package pgstate

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// SchemaVersion is the schema version this package writes and the highest
// one it reads.
const SchemaVersion = 2

// Values that connectors choose and Backbone compares or hands back — task
// keys, positions, fingerprints, locations, records — are bytea: they round
// trip byte for byte, where text would refuse invalid UTF-8 and NUL. Names
// (pipeline, run ID, step) and messages are text.
var migrations = []sqlstate.Migration{{
	To: 1,
	Stmts: []string{
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
	Tables: []string{"meta", "checkpoints", "runs", "dead_letters", "leases"},
}, {
	To: 2,
	Stmts: []string{
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
	Tables: []string{"versions"},
}}

// migrate brings the store inside tx from version from to the latest of
// ms. from is 0 for a new store. The caller holds the store's advisory
// lock, so of several processes opening an old store at once exactly one
// migrates it.
func migrate(ctx context.Context, tx pgx.Tx, from int, ms []sqlstate.Migration) error {
	return sqlstate.Migrate(ctx, func(ctx context.Context, stmt string, args ...any) error {
		_, err := tx.Exec(ctx, stmt, args...)
		return err
	}, mark, from, ms)
}
