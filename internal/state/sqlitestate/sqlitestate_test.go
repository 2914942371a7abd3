package sqlitestate

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlstate"
	"github.com/backbone-etl/backbone/internal/state/statetest"
)

func TestStore(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestSchemaVersionIsTheLastMigration(t *testing.T) {
	statetest.CheckMigrations(t, migrations, SchemaVersion)
}

// rawDB opens path without this package, to inspect or damage a store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	// A file URI: the path may hold a '?'. Without mode=rw, as the file may
	// not exist yet.
	db, err := sql.Open("sqlite", strings.Replace(dsn(path, false), "mode=rw&", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := rawDB(t, path)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func meta(t *testing.T, path string) map[string]string {
	t.Helper()
	rows, err := rawDB(t, path).Query(`SELECT key, value FROM meta`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := make(map[string]string)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestOpenCreates(t *testing.T) {
	dir := t.TempDir()
	// Spaces and URI-significant characters in the path must not matter.
	path := filepath.Join(dir, "a b", "?x#y%20", "state.db")
	s := mustOpen(t, path)
	if err := s.SaveCheckpoints(t.Context(), "p", []connector.Checkpoint{{Task: "t", Pos: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the store is not at %s: %v", path, err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v, want 0600 (dead letters hold records)", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".new") || strings.Contains(e.Name(), ".new-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	m := meta(t, path)
	if m["schema_version"] != strconv.Itoa(SchemaVersion) {
		t.Errorf("schema_version %q, want %d", m["schema_version"], SchemaVersion)
	}
	if !strings.HasPrefix(m["created_by"], "backbone ") {
		t.Errorf("created_by %q, want backbone <version>", m["created_by"])
	}
	if _, err := time.Parse(timeLayout, m["created_at"]); err != nil {
		t.Errorf("created_at: %v", err)
	}
	var mode string
	if err := rawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
}

func TestOpenPragmas(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	defer s.Close()
	for name, db := range map[string]*sql.DB{"writer": s.w, "reader": s.r} {
		var busy, sync int
		if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if busy != busyTimeoutMS || sync != 1 {
			t.Errorf("%s: busy_timeout %d, synchronous %d; want %d, 1 (NORMAL)", name, busy, sync, busyTimeoutMS)
		}
	}
	if _, err := s.r.Exec(`DELETE FROM runs`); err == nil {
		t.Error("a reader connection could write")
	}
}

// TestReopenRoundTrip is the golden round trip: what one process stored, the
// next one reads back the same.
func TestReopenRoundTrip(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path)
	cps := []connector.Checkpoint{
		{Task: "a.csv", Pos: []byte{0, 1, 0, 0xff}},
		{Task: "b.csv", Done: true, Fingerprint: "size=3"},
		{Task: "c.csv", Pos: []byte{}},
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	runs := []state.Run{
		{ID: "r1", Pipeline: "orders", ConfigHash: "h1", Trigger: state.TriggerSchedule, LogicalTime: t0,
			Start: t0, End: t0.Add(time.Second), Status: state.StatusSucceeded,
			Read: 10, Written: 7, Rejected: 2, Filtered: 1, CursorBefore: "{}", CursorAfter: `{"a":1}`},
		{ID: "r2", Pipeline: "orders", ConfigHash: "h1", Trigger: state.TriggerRetry, Start: t0.Add(time.Hour),
			Status: state.StatusRunning, CursorBefore: `{"a":1}`},
	}
	dls := []state.DeadLetter{
		{Pipeline: "orders", RunID: "r1", Task: "a.csv", Loc: "a.csv:2", Step: "parse", Field: "qty",
			Error: `qty: "x" is not an int`, Record: []byte("1,x\x00"), CreatedAt: t0},
		{Pipeline: "orders", RunID: "r1", Task: "a.csv", Loc: "a.csv:3", Step: "validate",
			Error: "qty must be positive", Record: []byte("2,-1"), CreatedAt: t0.Add(time.Millisecond)},
	}
	if err := s.SaveCheckpoints(ctx, "orders", cps); err != nil {
		t.Fatal(err)
	}
	for i := range runs {
		r := runs[i]
		if err := s.StartRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if runs[i].Status != state.StatusRunning {
			r.Status, r.End = runs[i].Status, runs[i].End
			if err := s.FinishRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path)
	defer s.Close()
	gotCps, err := s.LoadCheckpoints(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	wantCps := map[string]connector.Checkpoint{}
	for _, cp := range cps {
		wantCps[cp.Task] = cp
	}
	if diff := cmp.Diff(wantCps, gotCps); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	gotRuns, err := s.Runs(ctx, state.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]state.Run{runs[1], runs[0]}, gotRuns); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	gotDls, err := s.DeadLetters(ctx, state.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dls, gotDls); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// writeStore creates a store at path holding enough dead letters to span
// many pages, and closes it.
func writeStore(t *testing.T, path string) {
	t.Helper()
	s := mustOpen(t, path)
	dls := make([]state.DeadLetter, 300)
	for i := range dls {
		dls[i] = state.DeadLetter{Pipeline: "p", Task: "t", Loc: "t:" + strconv.Itoa(i), Error: "e",
			Record: bytes.Repeat([]byte{byte(i)}, 1000)}
	}
	if err := s.AddDeadLetters(t.Context(), dls); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, path string)
		want    error
		wantMsg string
	}{
		{
			name: "garbage bytes",
			setup: func(t *testing.T, path string) {
				writeFile(t, path, bytes.Repeat([]byte("this is not a database\n"), 400))
			},
			want: state.ErrCorrupt, wantMsg: "not an SQLite database",
		},
		{
			name:  "empty file",
			setup: func(t *testing.T, path string) { writeFile(t, path, nil) },
			want:  state.ErrCorrupt, wantMsg: "empty",
		},
		{
			name: "only part of the header",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				truncate(t, path, 50)
			},
			want: state.ErrCorrupt, wantMsg: "truncated SQLite header",
		},
		{
			name: "truncated store",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				truncate(t, path, fi.Size()/2)
			},
			want: state.ErrCorrupt, wantMsg: "damaged",
		},
		{
			name: "overwritten pages",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for i := 4096; i < len(b)-4096; i += 4096 {
					copy(b[i:i+64], bytes.Repeat([]byte{0xa5}, 64))
				}
				writeFile(t, path, b)
			},
			want: state.ErrCorrupt, wantMsg: "damaged",
		},
		{
			name: "another application's database",
			setup: func(t *testing.T, path string) {
				rawExec(t, path, `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO users VALUES (1, 'bob')`)
			},
			want: state.ErrCorrupt, wantMsg: "not a backbone state store (no meta table; tables: users)",
		},
		{
			name:  "SQLite database without tables",
			setup: func(t *testing.T, path string) { rawExec(t, path, `PRAGMA user_version = 7`) },
			want:  state.ErrCorrupt, wantMsg: "not a backbone state store",
		},
		{
			name: "meta without schema_version",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				rawExec(t, path, `DELETE FROM meta WHERE key = 'schema_version'`)
			},
			want: state.ErrCorrupt, wantMsg: "meta has no schema_version",
		},
		{
			name: "invalid schema_version",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				rawExec(t, path, `UPDATE meta SET value = 'one' WHERE key = 'schema_version'`)
			},
			want: state.ErrCorrupt, wantMsg: `invalid schema_version "one"`,
		},
		{
			name: "missing table",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				rawExec(t, path, `DROP TABLE runs`)
			},
			want: state.ErrCorrupt, wantMsg: "table runs is missing",
		},
		{
			name: "newer schema version",
			setup: func(t *testing.T, path string) {
				writeStore(t, path)
				rawExec(t, path, `UPDATE meta SET value = '9' WHERE key = 'schema_version'`)
			},
			want: state.ErrVersion, wantMsg: "has schema version 9, this backbone understands up to " + strconv.Itoa(SchemaVersion) + "; upgrade backbone",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			c.setup(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			statetest.CheckRefused(t, err, path, c.want, c.wantMsg)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("the refused file is gone: %v", err)
			}
			if !bytes.Equal(before, after) {
				t.Error("Open changed the refused file")
			}
		})
	}
}

func TestVersionError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	writeStore(t, path)
	rawExec(t, path, `UPDATE meta SET value = '9' WHERE key = 'schema_version'`)
	_, err := Open(t.Context(), path)
	statetest.CheckVersionError(t, err, path, 9, SchemaVersion)
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(t.Context(), dir)
	if err == nil || errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Open of a directory: %v, want a plain error", err)
	}
}

// TestUpgrade adds a version 2 migration to check that an older store is
// migrated once, keeps its data, and is then refused by the older binary.
func TestUpgrade(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	writeStore(t, path)
	v2 := append(slices.Clone(migrations), sqlstate.Migration{
		To:     SchemaVersion + 1,
		Stmts:  []string{`CREATE TABLE pipeline_versions (pipeline TEXT NOT NULL, hash TEXT NOT NULL)`},
		Tables: []string{"pipeline_versions"},
	})

	// Several processes may upgrade at once: the migration must run once.
	statetest.Openers(t, 4, func(int) error {
		s, err := open(ctx, path, v2)
		if err == nil {
			err = s.Close()
		}
		return err
	})

	m := meta(t, path)
	if m["schema_version"] != strconv.Itoa(SchemaVersion+1) {
		t.Errorf("schema_version %q after the upgrade, want %d", m["schema_version"], SchemaVersion+1)
	}
	if _, err := rawDB(t, path).Exec(`INSERT INTO pipeline_versions VALUES ('p', 'h')`); err != nil {
		t.Errorf("new table: %v", err)
	}
	s, err := open(ctx, path, v2)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.CountDeadLetters(ctx, state.DLQFilter{})
	s.Close()
	if err != nil || n != 300 {
		t.Errorf("dead letters after the upgrade: %d, %v; want 300", n, err)
	}

	if _, err := Open(ctx, path); !errors.Is(err, state.ErrVersion) {
		t.Errorf("the version 1 binary opened a version 2 store: %v", err)
	}
}

// TestConcurrentCreate opens one missing store from several goroutines at
// once: all get the same store.
func TestConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "state.db")
	statetest.ConcurrentCreate(t, func(ctx context.Context) (state.Store, error) {
		return Open(ctx, path)
	})
}

const childEnv = "BACKBONE_SQLITESTATE_CHILD"

// TestChildProcess is the body of TestProcesses' child processes.
func TestChildProcess(t *testing.T) {
	arg := os.Getenv(childEnv)
	if arg == "" {
		t.Skip("run by TestProcesses")
	}
	path, worker, _ := strings.Cut(arg, "|")
	s := mustOpen(t, path)
	defer s.Close()
	if err := writeLoad(t.Context(), s, "proc-"+worker); err != nil {
		t.Fatal(err)
	}
}

const loadRounds = 30

// writeLoad does what a run does to the store, loadRounds times.
func writeLoad(ctx context.Context, s state.Store, who string) error {
	for i := range loadRounds {
		r := state.Run{ID: fmt.Sprintf("%s-%d", who, i), Pipeline: "p"}
		if err := s.StartRun(ctx, &r); err != nil {
			return err
		}
		if err := s.SaveCheckpoints(ctx, "p", []connector.Checkpoint{{Task: who, Pos: []byte{byte(i)}}}); err != nil {
			return err
		}
		dls := []state.DeadLetter{{Pipeline: "p", RunID: r.ID, Task: who, Loc: fmt.Sprintf("%s:%d", who, i), Error: "e"}}
		if err := s.AddDeadLetters(ctx, dls); err != nil {
			return err
		}
		if _, err := s.Runs(ctx, state.RunFilter{Pipeline: "p", Limit: 5}); err != nil {
			return err
		}
		r.Status = state.StatusSucceeded
		if err := s.FinishRun(ctx, &r); err != nil {
			return err
		}
	}
	return nil
}

// TestProcesses has several processes and several stores of one process
// write one file at once: none may fail with "database is locked" and no
// write may be lost.
func TestProcesses(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in a child")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	mustOpen(t, path).Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	const procs, local = 3, 2
	var wg sync.WaitGroup
	errs := make([]error, procs+local)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestChildProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", childEnv, path, i))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("child %d: %v\n%s", i, err, out)
			}
		})
	}
	for i := range local {
		wg.Go(func() {
			s, err := Open(ctx, path) // a store of its own, as another process would have
			if err != nil {
				errs[procs+i] = err
				return
			}
			errs[procs+i] = errors.Join(writeLoad(ctx, s, "local-"+strconv.Itoa(i)), s.Close())
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	s := mustOpen(t, path)
	defer s.Close()
	want := (procs + local) * loadRounds
	runs, err := s.Runs(ctx, state.RunFilter{Status: state.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != want {
		t.Errorf("%d succeeded runs, want %d", len(runs), want)
	}
	if n, err := s.CountDeadLetters(ctx, state.DLQFilter{}); err != nil || n != want {
		t.Errorf("%d dead letters (%v), want %d", n, err, want)
	}
	cps, err := s.LoadCheckpoints(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != procs+local {
		t.Errorf("%d checkpoints, want %d", len(cps), procs+local)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAddDeadLetters(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	statetest.BenchAddDeadLetters(b, s)
}

func BenchmarkSaveCheckpoints(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	statetest.BenchSaveCheckpoints(b, s)
}
