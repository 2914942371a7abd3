// Package sqlitestate is the state.Store in one SQLite file
// (.backbone/state.db by default), through modernc.org/sqlite: no cgo.
//
//	s, err := sqlitestate.Open(ctx, ".backbone/state.db")
//	if err != nil {
//		return err // wraps state.ErrCorrupt or state.ErrVersion when refused
//	}
//	defer s.Close()
//	n, err := s.CountDeadLetters(ctx, state.DLQFilter{Pipeline: "orders"})
//
// Open creates the file, and its directory, only when no file exists. The
// schema is written to a temporary file that is then linked into place, so a
// crash never leaves an empty or half-made store behind; an existing file is
// therefore always checked, never initialised: its header must be SQLite's,
// PRAGMA quick_check must pass, a meta table must hold a schema_version, and
// the tables of that version must exist. A store of an older version is
// migrated in one transaction by the table of migrations in schema.go; one of
// a newer version is refused. A refused file is left untouched.
//
// Concurrency: the file is in WAL mode, so readers never wait for writers.
// Every connection has busy_timeout 5000 and synchronous=NORMAL (a commit
// survives a crash of the process; a power loss may lose the last commits but
// cannot damage the file). Writes go through a pool of one connection and
// start with BEGIN IMMEDIATE: writers of one process queue in database/sql,
// writers of other processes wait up to the busy timeout for the lock, and
// no transaction fails halfway on a lock upgrade. Reads use a separate pool
// of query-only connections.
//
// Times are stored as fixed-width UTC text to the microsecond
// ("2024-05-01T12:00:00.123456Z"), which sorts in time order and reads well
// in the sqlite3 shell.
package sqlitestate
