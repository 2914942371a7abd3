package pgstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
	"github.com/backbone-etl/backbone/internal/state/statetest"
)

// baseDSN is the test server: PostgreSQL on this machine, trust auth.
const baseDSN = "postgres://postgres@127.0.0.1:5432/test"

var (
	serverOnce sync.Once
	serverErr  error
)

// needServer skips t when the test server cannot be reached, or fails it
// when CI=true.
func needServer(t testing.TB) {
	t.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, baseDSN)
		if err == nil {
			err = errors.Join(c.Ping(ctx), c.Close(ctx))
		}
		serverErr = err
	})
	if serverErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable (CI=true, so this fails): %v", baseDSN, serverErr)
		}
		t.Skipf("PostgreSQL at %s is unreachable: %v", baseDSN, serverErr)
	}
}

// admin is a connection to the test server for setting up and inspecting
// stores, closed at cleanup.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	needServer(t)
	c, err := pgx.Connect(context.Background(), baseDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// newSchema returns the name of a schema that does not exist yet and is
// dropped, with everything in it, at cleanup.
func newSchema(t testing.TB) string {
	t.Helper()
	needServer(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "pgstate_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, baseDSN)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(name)+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func schemaDSN(schema string) string { return baseDSN + "?schema=" + url.QueryEscape(schema) }

// mustOpen opens the store in schema, closed at cleanup.
func mustOpen(t testing.TB, schema string) *Store {
	t.Helper()
	s, err := Open(context.Background(), schemaDSN(schema))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exec runs stmts on the admin connection with search_path set to schema.
func exec(t testing.TB, schema string, stmts ...string) {
	t.Helper()
	c := admin(t)
	ctx := context.Background()
	if _, err := c.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quoteIdent(schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SET search_path TO `+quoteIdent(schema)); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// snapshot describes everything in schema: its tables and their rows.
func snapshot(t testing.TB, schema string) map[string]string {
	t.Helper()
	c := admin(t)
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	snap := map[string]string{}
	for _, tb := range tables {
		var content string
		q := `SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text FROM ` +
			quoteIdent(schema) + `.` + quoteIdent(tb) + ` x`
		if err := c.QueryRow(ctx, q).Scan(&content); err != nil {
			t.Fatal(err)
		}
		snap[tb] = content
	}
	return snap
}

func meta(t testing.TB, schema string) map[string]string {
	t.Helper()
	rows, err := admin(t).Query(context.Background(), `SELECT key, value FROM `+quoteIdent(schema)+`.meta`)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var k, v string
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { m[k] = v; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStore(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		schema := newSchema(t)
		s, err := Open(t.Context(), schemaDSN(schema))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestSchemaVersionIsTheLastMigration(t *testing.T) {
	statetest.CheckMigrations(t, migrations, SchemaVersion)
}

func TestOpenCreates(t *testing.T) {
	schema := newSchema(t)
	s := mustOpen(t, schema)
	if s.Schema() != schema {
		t.Errorf("Schema() = %q, want %q", s.Schema(), schema)
	}
	m := meta(t, schema)
	if m["schema_version"] != strconv.Itoa(SchemaVersion) || !strings.HasPrefix(m["created_by"], "backbone ") {
		t.Errorf("meta = %v", m)
	}
	var tables []string
	for tb := range snapshot(t, schema) {
		tables = append(tables, tb)
	}
	slices.Sort(tables)
	want := slices.Sorted(slices.Values(sqlstate.RequiredTables(migrations)))
	if diff := cmp.Diff(want, tables); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	// Opening again finds the store as it is.
	before := snapshot(t, schema)
	mustOpen(t, schema)
	if diff := cmp.Diff(before, snapshot(t, schema)); diff != "" {
		t.Errorf("a second Open changed the store (-before +after):\n%s", diff)
	}
}

// TestOpenDefaultSchema opens a DSN without the schema parameter: the store
// goes to the connection's current schema, here set by search_path.
func TestOpenDefaultSchema(t *testing.T) {
	schema := newSchema(t)
	exec(t, schema)
	ctx := t.Context()
	s, err := Open(ctx, baseDSN+"?search_path="+url.QueryEscape(quoteIdent(schema)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schema() != schema {
		t.Errorf("Schema() = %q, want %q", s.Schema(), schema)
	}
	if err := s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: "a"}}); err != nil {
		t.Fatal(err)
	}
	if m := meta(t, schema); m["schema_version"] != strconv.Itoa(SchemaVersion) {
		t.Errorf("meta = %v", m)
	}

	missing := newSchema(t)
	_, err = Open(ctx, baseDSN+"?search_path="+url.QueryEscape(quoteIdent(missing)))
	if err == nil || !strings.Contains(err.Error(), "names no existing schema") {
		t.Errorf("Open with a search_path of no schema: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, schema string)
		want    error
		wantMsg string
	}{
		{
			name: "another application's tables",
			setup: func(t *testing.T, schema string) {
				exec(t, schema, `CREATE TABLE users (id int PRIMARY KEY, name text)`, `INSERT INTO users VALUES (1, 'bob')`,
					`CREATE VIEW active_users AS SELECT * FROM users`)
			},
			want: state.ErrCorrupt, wantMsg: "not a backbone state store (no meta table; tables: active_users, users)",
		},
		{
			name: "another application's meta table",
			setup: func(t *testing.T, schema string) {
				exec(t, schema, `CREATE TABLE meta (id int PRIMARY KEY, note text)`, `INSERT INTO meta VALUES (1, 'x')`)
			},
			want: state.ErrCorrupt, wantMsg: "meta is not Backbone's",
		},
		{
			name: "meta without schema_version",
			setup: func(t *testing.T, schema string) {
				mustOpen(t, schema).Close()
				exec(t, schema, `DELETE FROM meta WHERE key = 'schema_version'`)
			},
			want: state.ErrCorrupt, wantMsg: "meta has no schema_version",
		},
		{
			name: "invalid schema_version",
			setup: func(t *testing.T, schema string) {
				mustOpen(t, schema).Close()
				exec(t, schema, `UPDATE meta SET value = 'one' WHERE key = 'schema_version'`)
			},
			want: state.ErrCorrupt, wantMsg: `invalid schema_version "one"`,
		},
		{
			name: "missing table",
			setup: func(t *testing.T, schema string) {
				mustOpen(t, schema).Close()
				exec(t, schema, `DROP TABLE runs`)
			},
			want: state.ErrCorrupt, wantMsg: "damaged: table runs is missing",
		},
		{
			name: "newer schema version",
			setup: func(t *testing.T, schema string) {
				mustOpen(t, schema).Close()
				exec(t, schema, `UPDATE meta SET value = '9' WHERE key = 'schema_version'`)
			},
			want: state.ErrVersion, wantMsg: "has schema version 9, this backbone understands up to " + strconv.Itoa(SchemaVersion) + "; upgrade backbone",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			schema := newSchema(t)
			c.setup(t, schema)
			before := snapshot(t, schema)
			dsn := schemaDSN(schema)
			s, err := Open(t.Context(), dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			statetest.CheckRefused(t, err, dsn, c.want, c.wantMsg)
			if diff := cmp.Diff(before, snapshot(t, schema)); diff != "" {
				t.Errorf("Open changed the refused schema (-before +after):\n%s", diff)
			}
		})
	}
}

func TestVersionError(t *testing.T) {
	schema := newSchema(t)
	mustOpen(t, schema).Close()
	exec(t, schema, `UPDATE meta SET value = '7' WHERE key = 'schema_version'`)
	dsn := schemaDSN(schema)
	_, err := Open(t.Context(), dsn)
	statetest.CheckVersionError(t, err, dsn, 7, SchemaVersion)
}

// TestUpgrade adds a version 2 migration and opens a version 1 store from
// several goroutines at once: the migration runs once (a second run would
// fail on CREATE TABLE), the data is kept, and the version 1 code then
// refuses the store.
func TestUpgrade(t *testing.T) {
	ctx := t.Context()
	schema := newSchema(t)
	s := mustOpen(t, schema)
	dls := make([]state.DeadLetter, 50)
	for i := range dls {
		dls[i] = state.DeadLetter{Pipeline: "p", Task: "t", Loc: "t:" + strconv.Itoa(i), Error: "e"}
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	s.Close()

	v2 := append(slices.Clone(migrations), sqlstate.Migration{
		To: SchemaVersion + 1,
		Stmts: []string{
			`CREATE TABLE pipeline_versions (pipeline text NOT NULL, hash text NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS upgrade_runs (at timestamptz NOT NULL DEFAULT now())`,
			`INSERT INTO upgrade_runs DEFAULT VALUES`,
		},
		Tables: []string{"pipeline_versions", "upgrade_runs"},
	})
	statetest.Openers(t, 6, func(int) error {
		s, err := open(ctx, schemaDSN(schema), v2)
		if err == nil {
			err = s.Close()
		}
		return err
	})
	if m := meta(t, schema); m["schema_version"] != strconv.Itoa(SchemaVersion+1) {
		t.Errorf("schema_version %q after the upgrade, want %d", m["schema_version"], SchemaVersion+1)
	}
	var runs int
	if err := admin(t).QueryRow(ctx, `SELECT count(*) FROM `+quoteIdent(schema)+`.upgrade_runs`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("the migration ran %d times, want once", runs)
	}
	s, err := open(ctx, schemaDSN(schema), v2)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.CountDeadLetters(ctx, state.DLQFilter{})
	s.Close()
	if err != nil || n != len(dls) {
		t.Errorf("dead letters after the upgrade: %d, %v; want %d", n, err, len(dls))
	}
	if _, err := Open(ctx, schemaDSN(schema)); !errors.Is(err, state.ErrVersion) {
		t.Errorf("the version 1 code opened a version 2 store: %v", err)
	}
}

// TestConcurrentCreate opens one missing schema from several goroutines at
// once: the schema and the store are created once and all get the same
// store.
func TestConcurrentCreate(t *testing.T) {
	schema := newSchema(t)
	statetest.ConcurrentCreate(t, func(ctx context.Context) (state.Store, error) {
		return Open(ctx, schemaDSN(schema))
	})
}

// TestCloseLeavesNoGoroutines opens, uses and closes stores: the pool's
// goroutines end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	schema := newSchema(t)
	ctx := t.Context()
	mustOpen(t, schema).Close() // creates the store; warms pgx up
	before := runtime.NumGoroutine()
	for range 3 {
		s, err := Open(ctx, schemaDSN(schema))
		if err != nil {
			t.Fatal(err)
		}
		err = s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: "a"}})
		if _, lerr := s.LoadCheckpoints(ctx, "p"); err == nil {
			err = lerr
		}
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The pool's goroutines are told to end by Close; give the scheduler
	// a moment to run them out (one may still be between its last line and
	// its exit), but no more than a second.
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after closing the stores:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestOpenCancelled(t *testing.T) {
	needServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Open(ctx, schemaDSN(newSchema(t)))
	if !errors.Is(err, context.Canceled) || errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Open with a cancelled context: %v, want context.Canceled and not ErrUnavailable", err)
	}
}

const secret = "S3cr3t-pw_9f2"

// TestErrorsHideSecrets opens DSNs holding a password in every place a DSN
// can hold one, against no server, a bad DSN and the real server: no error
// and no Path may contain the password.
func TestErrorsHideSecrets(t *testing.T) {
	cases := []struct {
		name        string
		dsn         string
		server      bool // needs the test server
		unavailable bool // the error must wrap connector.ErrUnavailable
		wantMsg     string
	}{
		{name: "no server, password in the URL", dsn: "postgres://postgres:" + secret + "@127.0.0.1:1/test?schema=s",
			unavailable: true, wantMsg: "postgres://postgres:xxxxx@127.0.0.1:1/test?schema=s"},
		{name: "no server, escaped password", dsn: "postgres://postgres:" + url.PathEscape(secret+"@/") + "@127.0.0.1:1/test",
			unavailable: true, wantMsg: "postgres://postgres:xxxxx@127.0.0.1:1/test"},
		{name: "no server, password in the query", dsn: "postgres://postgres@127.0.0.1:1/test?password=" + secret,
			unavailable: true, wantMsg: "password=xxxxx"},
		{name: "no server, keyword/value", dsn: "host=127.0.0.1 port=1 user=postgres dbname=test password=" + secret,
			unavailable: true, wantMsg: "password=xxxxx"},
		{name: "no server, quoted keyword/value", dsn: "host=127.0.0.1 port=1 user=postgres password='" + secret + " x'",
			unavailable: true, wantMsg: "password=xxxxx"},
		{name: "invalid port", dsn: "postgres://postgres:" + secret + "@127.0.0.1:port/test", wantMsg: "not a valid URL"},
		{name: "invalid pool parameter", dsn: "postgres://postgres:" + secret + "@127.0.0.1:5432/test?pool_max_conns=many",
			wantMsg: "pool_max_conns"},
		{name: "invalid schema parameter", dsn: "postgres://postgres:" + secret + "@127.0.0.1:5432/test?schema=",
			wantMsg: "schema: empty name"},
		{name: "unknown role", dsn: "postgres://pgstate_nobody:" + secret + "@127.0.0.1:5432/test", server: true,
			wantMsg: "pgstate_nobody"},
		{name: "unknown database", dsn: "postgres://postgres:" + secret + "@127.0.0.1:5432/pgstate_nodb", server: true,
			wantMsg: "pgstate_nodb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.server {
				needServer(t)
			}
			s, err := Open(t.Context(), c.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, url.PathEscape(secret+"@/")) {
				t.Errorf("the error shows the password: %s", msg)
			}
			if !strings.Contains(msg, c.wantMsg) {
				t.Errorf("Open: %q, want it to say %q", msg, c.wantMsg)
			}
			if got := errors.Is(err, connector.ErrUnavailable); got != c.unavailable {
				t.Errorf("Open: %v; wraps ErrUnavailable %v, want %v", err, got, c.unavailable)
			}
		})
	}

	// The test server trusts any password: the store opens, and neither
	// its Path nor the errors of its methods show the password.
	t.Run("wrong password accepted", func(t *testing.T) {
		schema := newSchema(t)
		dsn := "postgres://postgres:" + secret + "@127.0.0.1:5432/test?schema=" + schema
		s, err := Open(t.Context(), dsn)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
			t.Skipf("the server refused the password: %v", err)
		}
		if want := "postgres://postgres:xxxxx@127.0.0.1:5432/test?schema=" + schema; s.Path() != want {
			t.Errorf("Path() = %q, want %q", s.Path(), want)
		}
		s.Close()
		_, err = s.LoadCheckpoints(t.Context(), "p")
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("LoadCheckpoints after Close: %v", err)
		}
	})
}

func TestParseDSN(t *testing.T) {
	cases := []struct {
		name    string
		dsn     string
		want    dsnInfo
		wantErr string
	}{
		{
			name: "schema stripped",
			dsn:  "postgres://u:pw@h:5432/db?sslmode=disable&schema=backbone",
			want: dsnInfo{conn: "postgres://u:pw@h:5432/db?sslmode=disable", schema: "backbone",
				display: "postgres://u:xxxxx@h:5432/db?schema=backbone&sslmode=disable", secrets: []string{"pw"}},
		},
		{
			name: "no schema",
			dsn:  "postgresql://u@h/db",
			want: dsnInfo{conn: "postgresql://u@h/db", display: "postgresql://u@h/db"},
		},
		{
			name: "password in the query",
			dsn:  "postgres://h/db?password=pw&sslpassword=k",
			want: dsnInfo{conn: "postgres://h/db?password=pw&sslpassword=k",
				display: "postgres://h/db?password=xxxxx&sslpassword=xxxxx", secrets: []string{"pw", "k"}},
		},
		{
			name: "schema with odd characters",
			dsn:  "postgres://h/db?schema=" + url.QueryEscape(`My "Schema"`),
			want: dsnInfo{conn: "postgres://h/db", schema: `My "Schema"`,
				display: "postgres://h/db?schema=My+%22Schema%22"},
		},
		{
			name: "keyword/value",
			dsn:  "host=h password='a b\\'c' user=u",
			want: dsnInfo{conn: "host=h password='a b\\'c' user=u", display: "host=h password=xxxxx user=u",
				secrets: []string{"a b'c"}},
		},
		{name: "empty", dsn: "", wantErr: "empty PostgreSQL DSN"},
		{name: "schema twice", dsn: "postgres://h/db?schema=a&schema=b", wantErr: "given 2 times"},
		{name: "schema too long", dsn: "postgres://h/db?schema=" + strings.Repeat("s", 64), wantErr: "longer than 63 bytes"},
		{name: "schema not UTF-8", dsn: "postgres://h/db?schema=%FF", wantErr: "not valid UTF-8"},
		{name: "bad query", dsn: "postgres://u:pw@h/db?schema=%zz", wantErr: "query is not valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseDSN(c.dsn)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("parseDSN: %v, want an error saying %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), ":pw@") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(dsnInfo{})); diff != "" {
				t.Errorf("parseDSN (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	base := errors.New("dial postgres://u:p%40ss@h and p@ss again")
	err := scrub(base, []string{"p@ss"})
	if want := "dial postgres://u:xxxxx@h and xxxxx again"; err.Error() != want {
		t.Errorf("scrub = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, base) {
		t.Error("the scrubbed error does not wrap the original")
	}
	if got := scrub(base, []string{"absent", ""}); got != base {
		t.Errorf("scrub without a match = %v, want the error itself", got)
	}
}

// TestBytesAndNames stores values PostgreSQL's text cannot hold: task keys,
// positions, fingerprints and locations round-trip exactly; messages are
// made valid; names are refused.
func TestBytesAndNames(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	odd := "a\x00b\xff\xfe"
	cps := []connector.Checkpoint{{Task: odd, Pos: []byte{0}, Fingerprint: "fp\x00\xff"}, {Task: "plain", Pos: []byte{}}}
	if err := s.SaveCheckpoints(ctx, "p", cps); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadCheckpoints(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{odd: cps[0], "plain": cps[1]}, got); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}

	dls := []state.DeadLetter{{Pipeline: "p", Task: odd, Loc: odd + ":1", Step: "parse", Field: "f\xff",
		Error: "bad \x00 value \xff", Record: []byte(odd), CreatedAt: time.Date(2024, 5, 1, 0, 0, 0, 999, time.UTC)}}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	d, err := s.DeadLetter(ctx, dls[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := dls[0]
	want.Field, want.Error = "f\uFFFD", "bad \uFFFD value \uFFFD"
	want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("dead letter (-want +got):\n%s", diff)
	}
	// Searching bytes that text cannot hold finds them in loc and record.
	if n, err := s.CountDeadLetters(ctx, state.DLQFilter{Contains: "\x00b\xff"}); err != nil || n != 1 {
		t.Errorf("CountDeadLetters(Contains odd bytes) = %d, %v; want 1", n, err)
	}
	// Adding it again replaces it.
	again := []state.DeadLetter{dls[0]}
	again[0].Error = "again"
	if err := s.AddDeadLetters(ctx, again); err != nil || again[0].ID != dls[0].ID {
		t.Errorf("re-adding: ID %d, %v; want ID %d", again[0].ID, err, dls[0].ID)
	}

	refused := []struct {
		name string
		call func() error
	}{
		{"SaveCheckpoints", func() error { return s.SaveCheckpoints(ctx, "p\xff", cps) }},
		{"StartRun", func() error { return s.StartRun(ctx, &state.Run{ID: "r\x00", Pipeline: "p"}) }},
		{"AddDeadLetters", func() error {
			return s.AddDeadLetters(ctx, []state.DeadLetter{{Pipeline: "p", Step: "s\xff", Loc: "x"}})
		}},
	}
	for _, c := range refused {
		if err := c.call(); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s with an invalid name: %v, want a refusal", c.name, err)
		}
	}
	// Looking such names up finds nothing, without an error.
	if cps, err := s.LoadCheckpoints(ctx, "p\xff"); err != nil || len(cps) != 0 {
		t.Errorf("LoadCheckpoints(invalid) = %v, %v", cps, err)
	}
	if _, err := s.Run(ctx, "r\x00"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Run(invalid) = %v, want ErrNotFound", err)
	}
	if n, err := s.CountDeadLetters(ctx, state.DLQFilter{Step: "s\xff"}); err != nil || n != 0 {
		t.Errorf("CountDeadLetters(invalid step) = %d, %v", n, err)
	}
}

// TestDamagedAfterOpen drops a table under an open store: its methods
// report the store damaged.
func TestDamagedAfterOpen(t *testing.T) {
	schema := newSchema(t)
	s := mustOpen(t, schema)
	exec(t, schema, `DROP TABLE checkpoints`)
	_, err := s.LoadCheckpoints(t.Context(), "p")
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), "load checkpoints: damaged") {
		t.Errorf("LoadCheckpoints without its table: %v, want an error wrapping ErrCorrupt", err)
	}
}

// TestManyDeadLetters adds more dead letters in one call than a VALUES list
// could bind, with duplicates spread through them.
func TestManyDeadLetters(t *testing.T) {
	s := mustOpen(t, newSchema(t))
	ctx := t.Context()
	const n = 20000
	dls := make([]state.DeadLetter, n)
	for i := range dls {
		dls[i] = state.DeadLetter{Pipeline: "p", Task: "t", Loc: "t:" + strconv.Itoa(i%(n/2)), Error: strconv.Itoa(i)}
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CountDeadLetters(ctx, state.DLQFilter{}); err != nil || c != n/2 {
		t.Errorf("CountDeadLetters = %d, %v; want %d", c, err, n/2)
	}
	for i := range n / 2 {
		if dls[i].ID != dls[i+n/2].ID {
			t.Fatalf("dead letters %d and %d share a key but got IDs %d and %d", i, i+n/2, dls[i].ID, dls[i+n/2].ID)
		}
		if i > 0 && dls[i].ID <= dls[i-1].ID {
			t.Fatalf("IDs not increasing: %d after %d", dls[i].ID, dls[i-1].ID)
		}
	}
	d, err := s.DeadLetter(ctx, dls[0].ID)
	if err != nil || d.Error != strconv.Itoa(n/2) {
		t.Errorf("dead letter t:0 = %+v, %v; want the later one's error %d", d, err, n/2)
	}
}

func BenchmarkAddDeadLetters(b *testing.B) {
	statetest.BenchAddDeadLetters(b, mustOpen(b, newSchema(b)))
}

func BenchmarkSaveCheckpoints(b *testing.B) {
	statetest.BenchSaveCheckpoints(b, mustOpen(b, newSchema(b)))
}
