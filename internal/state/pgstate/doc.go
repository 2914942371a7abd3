// Package pgstate is the state.Store in a PostgreSQL schema, for a team or
// several Backbone processes sharing one store (state: postgres://…),
// through pgx's connection pool.
//
//	s, err := pgstate.Open(ctx, "postgres://backbone:secret@db:5432/ops?schema=backbone")
//	if err != nil {
//		return err // wraps state.ErrCorrupt, state.ErrVersion or connector.ErrUnavailable
//	}
//	defer s.Close()
//	n, err := s.CountDeadLetters(ctx, state.DLQFilter{Pipeline: "orders"})
//
// # Where the store lives
//
// The DSN is pgx's: a URL or a keyword/value string, with pgxpool's pool_*
// parameters. The URL's query parameter schema=NAME, which Backbone strips
// before connecting, names the schema holding the store, so that several
// installations (and tests) share one database; Open creates it when
// missing. Without it the store lives in the connection's current schema
// (usually public). Either way the pool's search_path is pinned to that one
// schema, and the tables are meta, checkpoints, runs, dead_letters and
// leases.
//
// # Opening
//
// Open checks the store in one transaction holding a transaction-level
// advisory lock keyed on the schema, so the checks and migrations of several
// processes opening at once run one after the other and a migration runs
// once. An empty schema gets the current schema version. A schema with a
// meta table must hold a valid schema_version and the tables of that
// version; one of an older version is migrated by the table of migrations
// in schema.go, inside the same transaction; one of a newer version is
// refused with a *state.VersionError. A schema holding other tables but no
// meta table (another application's, a wrong DSN) or a damaged store is
// refused with a *state.CorruptError, never taken for a first run: that
// would read every source again from its beginning. A refused schema is
// left untouched. The database must be UTF8 (or SQL_ASCII).
//
// # Invariants
//
//   - Every method is one statement, hence one short transaction:
//     SaveCheckpoints and AddDeadLetters store everything or nothing, and,
//     as they write many rows, retry a few times when PostgreSQL aborts
//     them for a deadlock or serialization failure.
//   - Times are timestamptz, truncated to the microsecond (PostgreSQL would
//     round) and read back in UTC. Times outside the years 1 to 9999 are
//     refused, as by the SQLite store.
//   - Values that connectors choose and that Backbone compares or hands
//     back — task keys, positions, fingerprints, locations, records — are
//     bytea and round-trip byte for byte. Names (pipeline, run ID, step,
//     lease name and holder) are text and must be valid UTF-8 without NUL:
//     a write with another name is refused, a lookup finds nothing.
//     Messages (a dead letter's field and error, a run's error, config hash,
//     trigger, status and cursors) are text with invalid UTF-8 and NUL
//     replaced by U+FFFD.
//   - A dead letter's ID comes from an identity column, is never reused,
//     and is kept when the dead letter is added again; several dead letters
//     of one (pipeline, task, loc, step) in one call are stored once, the
//     later one winning (PostgreSQL refuses to update one row twice in one
//     statement, so they are merged first).
//   - No error and no Path holds a password: DSNs are shown masked, and the
//     DSN's passwords are masked in every error's text. An unreachable
//     server at Open wraps connector.ErrUnavailable (exit code 3).
//
// # Leases
//
// TryLease, RenewLease and ReleaseLease (not yet in state.Store) let several
// processes sharing the store agree on who does a piece of work — the
// scheduler firing a pipeline's trigger, say — without another coordinator.
// A lease has a name, a holder and an expiry judged by the database's
// clock, so the processes' clocks do not matter. Each acquisition returns a
// fencing token drawn from one sequence, greater than every token handed
// out before, also across releases: work guarded by a lease should carry
// its token, so that a holder that lost its lease without noticing (a long
// pause, a partition) is recognised by its smaller token.
//
//	tok, ok, err := s.TryLease(ctx, "schedule/orders", holderID, 30*time.Second)
//	if err != nil || !ok {
//		return err // someone else fires this trigger
//	}
//	defer s.ReleaseLease(context.WithoutCancel(ctx), "schedule/orders", holderID, tok)
//	// every 10s: if errors.Is(s.RenewLease(ctx, …, tok, 30*time.Second), pgstate.ErrLeaseLost) { stop }
package pgstate
