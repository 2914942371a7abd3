package sqlitestate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
)

// busyTimeoutMS is how long a statement waits for a lock held by another
// connection or process before failing with "database is locked".
const busyTimeoutMS = 5000

// Store is a state.Store in one SQLite file.
//
// Writes go through a pool of one connection, so writers of one process
// queue in database/sql instead of spinning on SQLite's busy handler, and
// every write transaction starts with BEGIN IMMEDIATE, so a writer of another
// process waits for the lock (up to the busy timeout) rather than failing on
// a lock upgrade. Reads use their own pool of query-only connections and, in
// WAL mode, never wait for writers.
type Store struct {
	path string  // as given to Open, for messages
	w    *sql.DB // one connection, for writes
	r    *sql.DB // query-only connections, for reads
}

var _ state.Store = (*Store)(nil)

// Open opens the state store in the SQLite file at path, creating the file
// and its parent directories when the file does not exist. An existing file
// must be a Backbone state store: an empty file, a file that is not SQLite,
// a damaged one or another application's database is refused with an error
// wrapping state.ErrCorrupt, and one written by a newer Backbone with an
// error wrapping state.ErrVersion. A store of an older schema version is
// migrated. ctx bounds opening, including the integrity check.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, migrations)
}

// open opens the store at path with the schema of migrations ms (tests add
// migrations to exercise upgrades).
func open(ctx context.Context, path string, ms []sqlstate.Migration) (*Store, error) {
	if path == "" {
		return nil, errors.New("state store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := create(ctx, abs, ms); err != nil {
			return nil, fmt.Errorf("state store %s: create: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("state store %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("state store %s: is a directory", path)
	}
	if err := checkHeader(abs, path); err != nil {
		return nil, err
	}
	s := &Store{path: path}
	if s.w, err = sql.Open("sqlite", dsn(abs, false)); err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	if s.r, err = sql.Open("sqlite", dsn(abs, true)); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.check(ctx, ms); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// dsn is the modernc.org/sqlite data source name of the file abs. mode=rw:
// a file that vanished after Open checked it is an error, not a new store.
func dsn(abs string, readOnly bool) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/x -> /C:/x
	}
	u := url.URL{Scheme: "file", Path: p}
	q := "mode=rw&_txlock=immediate" +
		"&_pragma=busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")" +
		"&_pragma=synchronous(NORMAL)"
	if readOnly {
		q += "&_pragma=query_only(1)"
	}
	return u.String() + "?" + q
}

// create makes a new store at abs atomically: the schema is written to a
// temporary file which is then linked into place. A crash therefore never
// leaves an empty or half-initialised file at abs, which is why Open can
// refuse an empty file instead of taking it for a first run. When another
// process creates abs first, its store is used.
func create(ctx context.Context, abs string, ms []sqlstate.Migration) (err error) {
	dir := filepath.Dir(abs)
	f, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".*.new")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		return err
	}
	defer func() {
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}()

	// The new file is not in place yet: SQLite need not sync each step of
	// making it, one sync before the link below makes it durable.
	db, err := sql.Open("sqlite", strings.Replace(dsn(tmp, false), "synchronous(NORMAL)", "synchronous(OFF)", 1))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	err = func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := migrate(ctx, tx, 0, ms); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		// journal_mode=WAL is persistent: it is recorded in the file.
		_, err = db.ExecContext(ctx, `PRAGMA journal_mode=WAL`)
		return err
	}()
	if err = errors.Join(err, db.Close()); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}

	if err := os.Link(tmp, abs); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process created it first
		}
		// No hard links on this file system: rename, unless the store
		// appeared meanwhile.
		if _, serr := os.Lstat(abs); serr == nil {
			return nil
		}
		if err := os.Rename(tmp, abs); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

// syncFile makes the content of the file at path durable.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// syncDir makes a new directory entry durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not supported everywhere
		d.Close()
	}
}

const sqliteMagic = "SQLite format 3\x00"

// checkHeader refuses a file that cannot be an SQLite database before SQLite
// is given a chance to write to it.
func checkHeader(abs, path string) error {
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("state store %s: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, 100) // the SQLite header is 100 bytes
	n, err := io.ReadFull(f, hdr)
	switch {
	case n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return &state.CorruptError{Path: path, Reason: "the file is empty (truncated?)"}
	case n < len(sqliteMagic) || string(hdr[:len(sqliteMagic)]) != sqliteMagic:
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("state store %s: %w", path, err)
		}
		return &state.CorruptError{Path: path, Reason: "not an SQLite database"}
	case err != nil:
		return &state.CorruptError{Path: path, Reason: "truncated SQLite header", Err: err}
	}
	return nil
}

// check verifies that the opened file is an intact Backbone state store of
// a version this binary understands, migrating an older one, and turns on
// WAL mode.
func (s *Store) check(ctx context.Context, ms []sqlstate.Migration) error {
	corrupt := func(reason string, err error) error {
		return &state.CorruptError{Path: s.path, Reason: reason, Err: err}
	}
	fail := func(err error) error {
		if isCorrupt(err) {
			return corrupt("damaged", err)
		}
		return fmt.Errorf("state store %s: %w", s.path, err)
	}

	problems, err := s.quickCheck(ctx)
	if err != nil {
		return fail(err)
	}
	if len(problems) > 0 {
		const show = 3
		reason := "damaged: integrity check failed: " + strings.Join(problems[:min(show, len(problems))], "; ")
		if len(problems) > show {
			reason += fmt.Sprintf(" (and %d more)", len(problems)-show)
		}
		return corrupt(reason, nil)
	}

	tables, err := s.tables(ctx)
	if err != nil {
		return fail(err)
	}
	if !slices.Contains(tables, "meta") {
		if len(tables) == 0 {
			return corrupt("not a backbone state store (an SQLite database without tables)", nil)
		}
		return corrupt("not a backbone state store (no meta table; tables: "+strings.Join(tables, ", ")+")", nil)
	}
	v, err := schemaVersion(ctx, s.r)
	if err != nil {
		if isCorrupt(err) || errors.Is(err, state.ErrCorrupt) {
			return fail(err)
		}
		return corrupt("not a backbone state store", err)
	}
	if v > sqlstate.Latest(ms) {
		return &state.VersionError{Path: s.path, Found: v, Supported: sqlstate.Latest(ms)}
	}
	if v < sqlstate.Latest(ms) {
		if err := s.upgrade(ctx, ms); err != nil {
			return err
		}
	}
	// Read the tables again, after the version: another process may have
	// migrated the store since the first look.
	if tables, err = tablesOf(ctx, s.w); err != nil {
		return fail(err)
	}
	for _, t := range sqlstate.RequiredTables(ms) {
		if !slices.Contains(tables, t) {
			return corrupt("damaged: table "+t+" is missing", nil)
		}
	}
	// A no-op on stores this package created; it converts a store copied
	// from a file system where WAL was turned off. Where WAL is not
	// supported (some network file systems) SQLite keeps the old mode,
	// which is slower but still correct.
	if _, err := s.w.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		return fail(err)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check and returns the problems it reports.
func (s *Store) quickCheck(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `PRAGMA quick_check(10)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return nil, err
		}
		if msg == "ok" {
			continue
		}
		// One row may hold several lines, headed "*** in database main ***".
		for line := range strings.SplitSeq(msg, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "***") {
				problems = append(problems, line)
			}
		}
	}
	return problems, rows.Err()
}

func (s *Store) tables(ctx context.Context) ([]string, error) { return tablesOf(ctx, s.r) }

func tablesOf(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx,
		`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ts []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion reads meta.schema_version.
func schemaVersion(ctx context.Context, q queryer) (int, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("meta has no schema_version")
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("meta has an invalid schema_version %q", s)
	}
	return v, nil
}

// upgrade migrates an older store. The version is read again inside the
// write transaction: another process may have migrated it meanwhile.
func (s *Store) upgrade(ctx context.Context, ms []sqlstate.Migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state store %s: migrate: %w", s.path, err)
	}
	defer tx.Rollback()
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("state store %s: migrate: %w", s.path, err)
	}
	if v > sqlstate.Latest(ms) {
		return &state.VersionError{Path: s.path, Found: v, Supported: sqlstate.Latest(ms)}
	}
	if v == sqlstate.Latest(ms) {
		return nil
	}
	if err := migrate(ctx, tx, v, ms); err != nil {
		return fmt.Errorf("state store %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state store %s: migrate: %w", s.path, err)
	}
	return nil
}

// isCorrupt reports whether err is SQLite's "damaged" or "not a database".
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// wrap names the store and the operation in err, and marks a damaged file
// with state.ErrCorrupt.
func (s *Store) wrap(op string, err error) error {
	if isCorrupt(err) {
		return &state.CorruptError{Path: s.path, Reason: op + ": damaged", Err: err}
	}
	return fmt.Errorf("state store %s: %s: %w", s.path, op, err)
}
