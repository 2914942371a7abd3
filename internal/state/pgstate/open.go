package pgstate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// applicationName is set on the store's connections unless the DSN sets
// one, so that pg_stat_activity tells them apart.
const applicationName = "backbone-state"

// Store is a state.Store in a PostgreSQL schema, shared by every process
// that opens the same DSN. Each method is one statement, hence one short
// transaction, through a pool of connections whose search_path is pinned to
// the store's schema.
type Store struct {
	path    string   // the DSN with passwords masked, for messages
	schema  string   // the schema holding the tables
	secrets []string // passwords to mask in errors
	pool    *pgxpool.Pool
}

var _ state.Store = (*Store)(nil)

// Open opens the state store at dsn, a PostgreSQL URL
// ("postgres://user:password@host:5432/db?schema=backbone") or
// keyword/value string. The URL's schema parameter names the schema holding
// the store; Open creates the schema when it is missing. Without it the
// store lives in the connection's current schema (usually public). Pool
// parameters of pgxpool (pool_max_conns, …) are honoured.
//
// An empty schema becomes a new store. A schema holding other tables but no
// meta table, or a damaged store, is refused with an error wrapping
// state.ErrCorrupt, and one written by a newer Backbone with an error
// wrapping state.ErrVersion; a refused schema is left untouched. A store of
// an older version is migrated, once however many processes open it at the
// same time. An unreachable server gives an error wrapping
// connector.ErrUnavailable. No error holds a password. ctx bounds opening.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, migrations)
}

// open opens the store at dsn with the schema of migrations ms (tests add
// migrations to exercise upgrades).
func open(ctx context.Context, dsn string, ms []sqlstate.Migration) (*Store, error) {
	info, err := parseDSN(dsn)
	if err != nil {
		return nil, scrub(err, info.secrets)
	}
	s := &Store{path: info.display, secrets: info.secrets}
	cfg, err := pgxpool.ParseConfig(info.conn)
	if err != nil {
		return nil, s.fail(err)
	}
	if cfg.ConnConfig.Password != "" {
		s.secrets = append(s.secrets, cfg.ConnConfig.Password)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}

	if s.schema, err = s.prepare(ctx, cfg.ConnConfig.Copy(), info.schema, ms); err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = quoteIdent(s.schema)
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.fail(err)
	}
	return s, nil
}

// Path returns the DSN the store was opened with, passwords masked.
func (s *Store) Path() string { return s.path }

// Schema returns the schema holding the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close closes the store's connections. Calls after Close fail.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// fail wraps an error of opening: passwords masked, an unreachable server
// marked connector.ErrUnavailable.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("state store %s: %w", s.path, scrub(err, s.secrets))
	if unreachable(err) {
		return connector.Unavailable(err)
	}
	return err
}

// wrap wraps an error of operation op.
func (s *Store) wrap(op string, err error) error {
	return fmt.Errorf("state store %s: %s: %w", s.path, op, scrub(err, s.secrets))
}

// unreachable reports whether err means the server could not be reached or
// would not take a connection now, as opposed to one that refused this
// client (a wrong password, an unknown database) or a cancelled ctx.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "53300", // too many connections
			pe.Code == "57P01", // admin shutdown
			pe.Code == "57P02", // crash shutdown
			pe.Code == "57P03": // cannot connect now (starting up)
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// lockKey is the advisory lock of the store in schema: every Open of it
// takes the lock for its whole check, so checks and migrations of several
// processes run one after the other.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("backbone state store\x00" + schema))
	return int64(h.Sum64())
}

// prepare connects once with cc, finds or creates the store's schema, and
// checks (creating or migrating) the store in one transaction that holds
// the store's advisory lock. It returns the schema.
func (s *Store) prepare(ctx context.Context, cc *pgx.ConnConfig, schema string, ms []sqlstate.Migration) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return "", s.fail(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var enc string
	if err := conn.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return "", s.fail(err)
	}
	if enc != "UTF8" && enc != "SQL_ASCII" {
		return "", fmt.Errorf("state store %s: the database's encoding is %s; the state store needs UTF8", s.path, enc)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", s.fail(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if schema == "" {
		var cur *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
			return "", s.fail(err)
		}
		if cur == nil {
			return "", fmt.Errorf("state store %s: the search_path names no existing schema; name one with ?schema=NAME", s.path)
		}
		schema = *cur
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
		return "", s.fail(err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return "", s.fail(err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+quoteIdent(schema)); err != nil {
			return "", s.fail(fmt.Errorf("create schema %s: %w", quoteIdent(schema), err))
		}
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, quoteIdent(schema)); err != nil {
		return "", s.fail(err)
	}
	if err := s.check(ctx, tx, schema, ms); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", s.fail(err)
	}
	return schema, nil
}

// check verifies, inside tx, that schema holds a Backbone state store of a
// version this binary understands, creating one in an empty schema and
// migrating an older one.
func (s *Store) check(ctx context.Context, tx pgx.Tx, schema string, ms []sqlstate.Migration) error {
	corrupt := func(reason string, err error) error {
		return &state.CorruptError{Path: s.path, Reason: "schema " + schema + ": " + reason, Err: scrub(err, s.secrets)}
	}
	tables, err := tablesIn(ctx, tx, schema)
	if err != nil {
		return s.fail(err)
	}
	if !slices.Contains(tables, "meta") {
		if len(tables) > 0 {
			return corrupt("not a backbone state store (no meta table; tables: "+strings.Join(tables, ", ")+
				"); give the store a schema of its own with ?schema=NAME", nil)
		}
		if err := migrate(ctx, tx, 0, ms); err != nil {
			return s.fail(err)
		}
	} else {
		v, reason, err := schemaVersion(ctx, tx)
		if reason != "" {
			return corrupt(reason, nil)
		}
		if err != nil {
			// An error about the meta table's shape (no such column, a
			// value of another type) means another application's table;
			// any other (a lost connection) is just an error.
			var (
				pe *pgconn.PgError
				se pgx.ScanArgError
			)
			if (errors.As(err, &pe) && strings.HasPrefix(pe.Code, "42")) || errors.As(err, &se) {
				return corrupt("not a backbone state store (meta is not Backbone's)", err)
			}
			return s.fail(err)
		}
		if v > sqlstate.Latest(ms) {
			return &state.VersionError{Path: s.path, Found: v, Supported: sqlstate.Latest(ms)}
		}
		if v < sqlstate.Latest(ms) {
			if err := migrate(ctx, tx, v, ms); err != nil {
				return s.fail(err)
			}
		}
	}
	if tables, err = tablesIn(ctx, tx, schema); err != nil {
		return s.fail(err)
	}
	for _, t := range sqlstate.RequiredTables(ms) {
		if !slices.Contains(tables, t) {
			return corrupt("damaged: table "+t+" is missing", nil)
		}
	}
	return nil
}

// tablesIn lists the tables, views and foreign tables of schema by name.
func tablesIn(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		ORDER BY c.relname COLLATE "C"`, schema)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// schemaVersion reads meta.schema_version. A meta table without a valid
// schema_version gives a reason for refusing the store, an error reading it
// an error.
func schemaVersion(ctx context.Context, tx pgx.Tx) (v int, reason string, err error) {
	var text string
	err = tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "meta has no schema_version", nil
	}
	if err != nil {
		return 0, "", err
	}
	v, err = strconv.Atoi(text)
	if err != nil || v < 1 {
		return 0, fmt.Sprintf("meta has an invalid schema_version %q", text), nil
	}
	return v, "", nil
}
