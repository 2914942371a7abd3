package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The cursor tests run the binary several times over a PostgreSQL table read
// incrementally, so that every resume goes through a checkpoint committed
// with the rows in the target and read back by a new process.

// cursorPipeline reads schema.ev incrementally by (at, id) in batches of
// 1000 and loads it into PostgreSQL table sink.ev. It commits every batch
// (commit_interval: 0), so that a run killed at its Nth commit stops at a
// batch boundary the test chose.
func cursorPipeline(src, sink, mode, extra string) string {
	key := ""
	if mode == "upsert" {
		key = ", key: [id]"
	}
	return fmt.Sprintf(`name: cursor
source:
  type: postgres
  dsn: %q
  db_schema: %s
  table: ev
  mode: incremental
  cursor: at
  key: id
%s
settings: {batch_rows: 1000, commit_interval: 0}
sink: {type: postgres, dsn: %q, db_schema: %s, table: ev, mode: %s%s, create: true}
`, pgDSN, src, extra, pgDSN, sink, mode, key)
}

// cursorRun runs the pipeline of dir to its end and returns its history
// record.
func cursorRun(t *testing.T, dir string, env ...string) runRecord {
	t.Helper()
	if res := backbone(t, dir, env, "run", "pipeline.yaml"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.out)
	}
	runs := runHistory(t, filepath.Join(dir, ".backbone", "state.db"), "cursor")
	return runs[len(runs)-1]
}

// sameTable fails the test unless sink.ev holds exactly src.ev's rows.
func sameTable(t *testing.T, src, sink, columns string) {
	t.Helper()
	q := func(s string) string { return "SELECT " + columns + " FROM " + s + ".ev ORDER BY id" }
	want, got := sqlDigest(t, "pgx", pgDSN, q(src)), sqlDigest(t, "pgx", pgDSN, q(sink))
	if got != want || got.count != got.distinct {
		t.Fatalf("table %+v, want the source's %+v", got, want)
	}
}

// TestCursorTiesAndMicroseconds: 3000 rows share one timestamp across three
// batches, 1000 more are a microsecond apart in the opposite order of their
// keys. A run is killed after its second commit, inside the tie; the next
// run completes the load, and a third reads only rows added since (a new
// tie at the last cursor value with higher keys, and a row a microsecond
// later). The sink appends, so a row read twice would show.
func TestCursorTiesAndMicroseconds(t *testing.T) {
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	src, sink := pgSchema(t, db, "bb_cur_src"), pgSchema(t, db, "bb_cur_dst")
	pgExec(t, db,
		`CREATE TABLE `+src+`.ev (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text NOT NULL)`,
		`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00.123456+00', 'tie ' || i FROM generate_series(1, 3000) i`,
		`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00.123456+00' + (4001 - i) * interval '1 microsecond', 'µs ' || i
			FROM generate_series(3001, 4000) i`,
		`CREATE INDEX ON `+src+`.ev (at, id)`)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), cursorPipeline(src, sink, "append", ""))

	if res := backbone(t, dir, []string{"BACKBONE_FAILPOINT=after-commit:2"}, "run", "-q", "pipeline.yaml"); res.code == 0 {
		t.Fatalf("the run was not killed at its second commit:\n%s", res.out)
	}
	if n := countRows(t, db, sink+".ev", pgWaitForWriters); n != 2000 {
		t.Fatalf("%d rows committed before the kill, want 2000 (two batches, inside the tie)", n)
	}
	if r := cursorRun(t, dir); r.read != 2000 || r.written != 2000 {
		t.Fatalf("the resumed run read %d and wrote %d rows, want the other 2000", r.read, r.written)
	}
	sameTable(t, src, sink, "id, at, v")

	// New rows: ten more at the last cursor value (the row of key 3001)
	// with higher keys, one a microsecond after it, and one at an older
	// value, which incremental reading does not see (see lookback).
	pgExec(t, db,
		`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00.124456+00', 'new tie ' || i FROM generate_series(4001, 4010) i`,
		`INSERT INTO `+src+`.ev VALUES (4011, timestamptz '2026-11-01 10:00:00.124457+00', 'a µs later'),
			(4012, timestamptz '2026-11-01 10:00:00.123456+00', 'late')`)
	if r := cursorRun(t, dir); r.read != 11 || r.written != 11 {
		t.Fatalf("the third run read %d and wrote %d rows, want the 11 new ones after the cursor", r.read, r.written)
	}
	pgExec(t, db, `DELETE FROM `+src+`.ev WHERE id = 4012`)
	sameTable(t, src, sink, "id, at, v")
}

// TestCursorLookbackCatchesALateCommit: a transaction that began before a
// run commits after it a row whose cursor is older than the checkpoint.
// With lookback the next run reads it (re-reading the window, absorbed by
// upsert); without, it is missed, which is why lookback exists.
func TestCursorLookbackCatchesALateCommit(t *testing.T) {
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	for _, tc := range []struct {
		name, lookback string
		late           bool // the late row arrives
	}{
		{"with lookback", "  lookback: 10m", true},
		{"without lookback", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, sink := pgSchema(t, db, "bb_cur_src"), pgSchema(t, db, "bb_cur_dst")
			pgExec(t, db,
				`CREATE TABLE `+src+`.ev (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text NOT NULL)`,
				`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00+00' + i * interval '1 second', 'v' || i FROM generate_series(1, 2500) i`)
			// The late transaction takes its row's cursor value now, and
			// commits only after the first run.
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`INSERT INTO ` + src + `.ev VALUES (9999, timestamptz '2026-11-01 10:41:00.5+00', 'late')`); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipeline.yaml"), cursorPipeline(src, sink, "upsert", tc.lookback))
			if r := cursorRun(t, dir); r.read != 2500 {
				t.Fatalf("first run read %d, want 2500", r.read)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			pgExec(t, db, `INSERT INTO `+src+`.ev VALUES (2501, timestamptz '2026-11-01 10:41:41+00', 'new')`)
			r := cursorRun(t, dir)
			if !tc.late {
				if r.read != 1 {
					t.Fatalf("second run read %d rows, want the new one", r.read)
				}
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM ` + sink + `.ev WHERE id = 9999`).Scan(&n); err != nil || n != 0 {
					t.Fatalf("without lookback the late row was loaded (%d, %v): the test does not make a late commit", n, err)
				}
				return
			}
			// The window is the ten minutes up to the checkpoint's cursor,
			// bounds included: the 601 rows from 10:31:40 to 10:41:40, then
			// the late row and the new one.
			if r.read != 603 || r.written != 603 {
				t.Fatalf("second run read %d and wrote %d rows, want the 601 of the window, the late and the new one", r.read, r.written)
			}
			sameTable(t, src, sink, "id, at, v")
		})
	}
}

// TestCursorColumnAddedBetweenRuns: a column added to the source between
// runs stops the run under schema_drift: fail, naming the column; is left
// out under ignore_new; and is read under add_columns, into a target that
// has the column, or else the run fails naming it. No policy drops a row.
func TestCursorColumnAddedBetweenRuns(t *testing.T) {
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	for _, tc := range []struct {
		name, policy string
		alterSink    bool   // the target gets the column too
		wantErr      string // the second run fails with this
		columns      string // what the target then equals the source by
	}{
		{name: "fail", policy: "", wantErr: "added note (text)"},
		{name: "ignore_new", policy: "  schema_drift: ignore_new", columns: "id, at, v"},
		{name: "add_columns", policy: "  schema_drift: add_columns", alterSink: true, columns: "id, at, v, note"},
		{name: "add_columns without the column in the target", policy: "  schema_drift: add_columns", wantErr: "note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, sink := pgSchema(t, db, "bb_cur_src"), pgSchema(t, db, "bb_cur_dst")
			pgExec(t, db,
				`CREATE TABLE `+src+`.ev (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text NOT NULL)`,
				`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00+00' + i * interval '1 second', 'v' || i FROM generate_series(1, 1500) i`)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipeline.yaml"), cursorPipeline(src, sink, "upsert", tc.policy))
			cursorRun(t, dir)
			pgExec(t, db,
				`ALTER TABLE `+src+`.ev ADD COLUMN note text`,
				`INSERT INTO `+src+`.ev SELECT i, timestamptz '2026-11-01 10:00:00+00' + i * interval '1 second', 'v' || i, 'note ' || i FROM generate_series(1501, 1600) i`)
			if tc.alterSink {
				pgExec(t, db, `ALTER TABLE `+sink+`.ev ADD COLUMN note text`)
			}
			res := backbone(t, dir, nil, "run", "pipeline.yaml")
			if tc.wantErr != "" {
				if res.code == 0 || !strings.Contains(res.out, tc.wantErr) {
					t.Fatalf("exit %d, want a failure naming %q:\n%s", res.code, tc.wantErr, res.out)
				}
				runs := runHistory(t, filepath.Join(dir, ".backbone", "state.db"), "cursor")
				if last := runs[len(runs)-1]; last.status != "failed" || last.written != 0 {
					t.Fatalf("history: %+v, want a failed run that wrote nothing", last)
				}
				return
			}
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.out)
			}
			// Handled by the policy, and said: never a silent change.
			if !strings.Contains(res.out, "schema drift") || !strings.Contains(res.out, "note") {
				t.Errorf("the run does not report the new column:\n%s", res.out)
			}
			runs := runHistory(t, filepath.Join(dir, ".backbone", "state.db"), "cursor")
			if last := runs[len(runs)-1]; last.read != 100 || last.written != 100 {
				t.Fatalf("second run: %+v, want the 100 new rows", last)
			}
			sameTable(t, src, sink, tc.columns)
		})
	}
}
