package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestSinkConfigErrors(t *testing.T) {
	tests := []struct{ Name, YAML, Want string }{
		{"no table", "path: a.db", "table must name"},
		{"no path", "table: t", "path must name"},
		{"upsert without key", "path: a.db\ntable: t\nmode: upsert", "needs a key"},
		{"unknown mode", "path: a.db\ntable: t\nmode: merge", `mode "merge"`},
		{"reserved table", "path: a.db\ntable: backbone_checkpoints", "reserved"},
		{"key without upsert", "path: a.db\ntable: t\nkey: id", "only used in mode upsert"},
	}
	kit.ConfigErrors(t, connector.KindSink, tests, nil)
}

var allTypes = record.MustSchema(
	record.Field{Name: "id", Type: record.Int}, record.Field{Name: "price", Type: record.Decimal},
	record.Field{Name: "weight", Type: record.Float}, record.Field{Name: "name", Type: record.String},
	record.Field{Name: "data", Type: record.Bytes}, record.Field{Name: "active", Type: record.Bool},
	record.Field{Name: "at", Type: record.Timestamp}, record.Field{Name: "day", Type: record.Date},
	record.Field{Name: "attrs", Type: record.JSON},
)

func allTypesRows(t *testing.T) []record.Row {
	day, _ := record.ParseDate("2024-02-29")
	return []record.Row{
		{int64(1), record.MustDec("12.50"), 1.25, "ana", []byte{0, 1}, true,
			time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.FixedZone("", -5*3600)), day,
			map[string]any{"a": []any{int64(1), "x"}}},
		{int64(2), record.MustDec("123456789012345678901234567890.000000001"), nil, "", nil, false,
			time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), nil, "just a string"},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil},
	}
}

// stored returns the rows of a query as the database stores them.
func stored(t *testing.T, path, q string) [][]any {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, true, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSinkCreateAppendStoresExactValues(t *testing.T) {
	env := sqlkittest.Env(t)
	path := dbPath(env, "out.db")
	w := kit.Writer(t, env, "path: out.db\ntable: things\ncreate: true", allTypes)
	if diff := cmp.Diff(connector.WriterInfo{Transactional: true}, w.Info()); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
	sqlkittest.Write(t, w, allTypes, allTypesRows(t))
	sqlkittest.Commit(t, w)
	want := [][]any{
		{int64(1), "12.50", 1.25, "ana", []byte{0, 1}, int64(1), "2024-01-02T03:04:05.120000000-05:00", "2024-02-29", `{"a":[1,"x"]}`},
		{int64(2), "123456789012345678901234567890.000000001", nil, "", nil, int64(0), "2024-01-02T03:04:05.000000000Z", nil, `"just a string"`},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil},
	}
	got := stored(t, path, `SELECT id, price, weight, name, data, active, +at, +day, attrs FROM things ORDER BY id`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored values (-want +got):\n%s", diff)
	}
	decls := stored(t, path, `SELECT name, type FROM pragma_table_info('things')`)
	wantDecls := [][]any{{"id", "INTEGER"}, {"price", declDecimal}, {"weight", "REAL"}, {"name", "TEXT"}, {"data", "BLOB"},
		{"active", "BOOLEAN"}, {"at", "TIMESTAMP"}, {"day", "DATE"}, {"attrs", declJSON}}
	if diff := cmp.Diff(wantDecls, decls); diff != "" {
		t.Errorf("declared types (-want +got):\n%s", diff)
	}
}

func TestSinkThenSourceRoundTrip(t *testing.T) {
	env := sqlkittest.Env(t)
	w := kit.Writer(t, env, "path: out.db\ntable: things\ncreate: true", allTypes)
	rows := allTypesRows(t)
	sqlkittest.Write(t, w, allTypes, rows)
	sqlkittest.Commit(t, w)
	res := sqlkittest.ReadAll(t, kit.Source(t, "path: out.db\ntable: things"), env, connector.Task{Key: "things"}, nil)
	// JSON comes back decoded with json.Number; everything else as written.
	rows[0][8] = map[string]any{"a": []any{json.Number("1"), "x"}}
	if diff := cmp.Diff(rows, res.Rows); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestSinkMissingTable(t *testing.T) {
	env := sqlkittest.Env(t)
	mustExec(t, testDB(t, dbPath(env, "out.db")), "CREATE TABLE other (x)")
	_, err := kit.Sink(t, "path: out.db\ntable: orders").Open(context.Background(), env, allTypes)
	if err == nil || !strings.Contains(err.Error(), `table "orders"`) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open: %v, want an error naming the missing table", err)
	}
	_, err = kit.Sink(t, "path: other.db\ntable: orders").Open(context.Background(), env, allTypes)
	if !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Open of a missing database without create: %v, want ErrUnavailable", err)
	}
}

func TestSinkMissingColumn(t *testing.T) {
	env := sqlkittest.Env(t)
	mustExec(t, testDB(t, dbPath(env, "out.db")), "CREATE TABLE things (id INTEGER, name TEXT)")
	_, err := kit.Sink(t, "path: out.db\ntable: things").Open(context.Background(), env, allTypes)
	if err == nil || !strings.Contains(err.Error(), "no column for field(s) price, weight") {
		t.Errorf("Open: %v, want an error naming the missing columns", err)
	}
}

var kv = record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "n", Type: record.Int}, record.Field{Name: "v", Type: record.String})

func TestSinkUpsert(t *testing.T) {
	env := sqlkittest.Env(t)
	path := dbPath(env, "out.db")
	w := kit.Writer(t, env, "path: out.db\ntable: kv\nmode: upsert\nkey: [k, n]\ncreate: true", kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "one"}, {"b", int64(1), "two"}})
	sqlkittest.Commit(t, w)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "uno"}, {"a", int64(2), "new"}, {"a", int64(2), "newer"}})
	sqlkittest.Commit(t, w)
	want := [][]any{{"a", int64(1), "uno"}, {"a", int64(2), "newer"}, {"b", int64(1), "two"}}
	if diff := cmp.Diff(want, stored(t, path, "SELECT k, n, v FROM kv ORDER BY k, n")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	// A NULL key is refused: the created key columns are NOT NULL.
	n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{nil, int64(1), "x"}, {"c", int64(1), "y"}}})
	var be *connector.BatchError
	if n != 1 || !errors.As(err, &be) || len(be.Rows) != 1 || be.Rows[0].Index != 0 {
		t.Errorf("Write with a NULL key: n=%d err=%v, want row 0 refused", n, err)
	}
}

func TestSinkUpsertNeedsUniqueKey(t *testing.T) {
	env := sqlkittest.Env(t)
	mustExec(t, testDB(t, dbPath(env, "out.db")), "CREATE TABLE kv (k TEXT, n INTEGER, v TEXT)")
	_, err := kit.Sink(t, "path: out.db\ntable: kv\nmode: upsert\nkey: k").Open(context.Background(), env, kv)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE index on exactly (k)") {
		t.Errorf("Open: %v, want an error about the missing unique index", err)
	}
}

func TestSinkReplace(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
		rows   []record.Row
		want   [][]any
	}{
		{"committed", true, []record.Row{{"x", int64(9), "new"}}, [][]any{{"x", int64(9), "new"}}},
		{"closed without commit keeps the old rows", false, []record.Row{{"x", int64(9), "new"}}, [][]any{{"old", int64(1), "kept"}}},
		{"no rows empties the table", true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := sqlkittest.Env(t)
			path := dbPath(env, "out.db")
			db := testDB(t, path)
			mustExec(t, db, "CREATE TABLE kv (k TEXT, n INTEGER CHECK (n > 0), v TEXT)")
			mustExec(t, db, "CREATE INDEX kv_n ON kv (n)")
			mustExec(t, db, "INSERT INTO kv VALUES ('old', 1, 'kept')")
			w := kit.Writer(t, env, "path: out.db\ntable: kv\nmode: replace", kv)
			if diff := cmp.Diff(connector.WriterInfo{Transactional: true, Once: true}, w.Info()); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			if tc.rows != nil {
				sqlkittest.Write(t, w, kv, tc.rows)
			}
			if tc.commit {
				sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p")})
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, stored(t, path, "SELECT k, n, v FROM kv")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if got := stored(t, path, "SELECT count(*) FROM sqlite_master WHERE name = 'kv_n'"); got[0][0] != int64(1) {
				t.Error("replace dropped the table's index")
			}
		})
	}
}

func TestSinkCheckpointMovesWithRows(t *testing.T) {
	env := sqlkittest.Env(t)
	path := dbPath(env, "out.db")
	s := kit.Sink(t, "path: out.db\ntable: kv\ncreate: true")
	load := func() map[string]connector.Checkpoint { return sqlkittest.Checkpoints(t, s, env) }
	if got := load(); len(got) != 0 {
		t.Fatalf("checkpoints before any write: %v", got)
	}
	cp1 := connector.Checkpoint{Task: "t", Pos: record.Position(`{"v":1}`)}

	// Staged, then closed without Commit: neither rows nor checkpoint.
	w, err := s.Open(context.Background(), env, kv)
	if err != nil {
		t.Fatal(err)
	}
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, path, "SELECT count(*) FROM kv"); got[0][0] != int64(0) {
		t.Errorf("%v rows after Close without Commit", got[0][0])
	}
	if got := load(); len(got) != 0 {
		t.Errorf("checkpoints after Close without Commit: %v", got)
	}

	// Committed: both.
	w, err = s.Open(context.Background(), env, kv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}, {"b", int64(2), "y"}})
	sqlkittest.Commit(t, w, cp1)
	if got := stored(t, path, "SELECT count(*) FROM kv"); got[0][0] != int64(2) {
		t.Errorf("%v rows after Commit, want 2", got[0][0])
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}

	// A failed Commit leaves the previous checkpoint and rows.
	sqlkittest.Write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("later")}}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints after a failed Commit (-want +got):\n%s", diff)
	}
	if got := stored(t, path, "SELECT count(*) FROM kv"); got[0][0] != int64(2) {
		t.Errorf("%v rows after a failed Commit, want 2", got[0][0])
	}
	// The writer goes on after the failure.
	sqlkittest.Write(t, w, kv, []record.Row{{"d", int64(4), "w"}})
	sqlkittest.Commit(t, w)
	if got := stored(t, path, "SELECT group_concat(k, '') FROM (SELECT k FROM kv ORDER BY k)"); got[0][0] != "abd" {
		t.Errorf("keys %v, want abd", got[0][0])
	}
}

func TestLoadCheckpointsRoundTrip(t *testing.T) {
	sqlkittest.CheckpointsRoundTrip(t, kit.Sink(t, "path: out.db\ntable: kv\ncreate: true"), sqlkittest.Env(t), kv, []connector.Checkpoint{
		{Task: "a.csv", Pos: record.Position{0, 1, 2, 255}, Done: true, Fingerprint: "123:456"},
		{Task: "orders", Pos: record.Position(`{"v":1,"cols":["ts","id"]}`)},
		{Task: "empty"},
	})
}

func TestCheckpointsOfUnknownVersionAreRefused(t *testing.T) {
	tests := []struct {
		name, setup, want string
	}{
		{"newer", "UPDATE backbone_meta SET value = '2'", "newer backbone (version 2"},
		{"no version", "DELETE FROM backbone_meta", "without its version"},
		{"garbage", "UPDATE backbone_meta SET value = 'x'", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := sqlkittest.Env(t)
			s := kit.Sink(t, "path: out.db\ntable: kv\ncreate: true")
			w, err := s.Open(context.Background(), env, kv)
			if err != nil {
				t.Fatal(err)
			}
			sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t"})
			w.Close()
			mustExec(t, testDB(t, dbPath(env, "out.db")), tc.setup)
			if _, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadCheckpoints: %v, want an error containing %q", err, tc.want)
			}
			if _, err := s.Open(context.Background(), env, kv); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSinkBatchErrorFindsExactlyTheBadRows(t *testing.T) {
	tests := []struct {
		name  string
		table string
		mode  string
	}{
		{"not null and check", "CREATE TABLE kv (k TEXT NOT NULL, n INTEGER CHECK (n >= 0), v TEXT)", "append"},
		{"conflict clause FAIL keeps no partial statement", "CREATE TABLE kv (k TEXT NOT NULL ON CONFLICT FAIL, n INTEGER CHECK (n >= 0), v TEXT)", "append"},
		{"unique in append mode", "CREATE TABLE kv (k TEXT NOT NULL, n INTEGER CHECK (n >= 0), v TEXT UNIQUE)", "append"},
		{"upsert", "CREATE TABLE kv (k TEXT NOT NULL PRIMARY KEY, n INTEGER CHECK (n >= 0), v TEXT)", "upsert\nkey: k"},
		{"strict type", "CREATE TABLE kv (k TEXT NOT NULL, n INTEGER CHECK (n >= 0), v INTEGER) STRICT", "append"},
	}
	bad := map[int]bool{0: true, 37: true, 500: true, 501: true, 998: true, 999: true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := sqlkittest.Env(t)
			path := dbPath(env, "out.db")
			mustExec(t, testDB(t, path), tc.table)
			w := kit.Writer(t, env, "path: out.db\ntable: kv\nmode: "+tc.mode, kv)
			rows := make([]record.Row, 1000)
			for i := range rows {
				v := any(fmt.Sprint(i))
				if tc.name == "strict type" {
					v = int64(i)
				}
				rows[i] = record.Row{fmt.Sprint("k", i), int64(i), v}
			}
			var wantIdx []int
			for i := range rows {
				if !bad[i] {
					continue
				}
				wantIdx = append(wantIdx, i)
				switch {
				case tc.name == "strict type":
					rows[i][2] = "not a number"
				case tc.name == "unique in append mode":
					rows[i][2] = "dup"
				case i%2 == 0:
					rows[i][0] = nil // NOT NULL
				default:
					rows[i][1] = int64(-1) // CHECK
				}
			}
			if tc.name == "unique in append mode" {
				wantIdx = wantIdx[1:] // the first "dup" is stored
			}
			n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: rows})
			var be *connector.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Write: %v, want a *BatchError", err)
			}
			var gotIdx []int
			for _, re := range be.Rows {
				gotIdx = append(gotIdx, re.Index)
				if re.Err == nil || !strings.Contains(re.Err.Error(), "kv") {
					t.Errorf("row %d: error %v does not name the table", re.Index, re.Err)
				}
			}
			if diff := cmp.Diff(wantIdx, gotIdx); diff != "" {
				t.Errorf("refused rows (-want +got):\n%s", diff)
			}
			if n != 1000-len(wantIdx) {
				t.Errorf("n = %d, want %d", n, 1000-len(wantIdx))
			}
			sqlkittest.Commit(t, w)
			if got := stored(t, path, "SELECT count(*) FROM kv"); got[0][0] != int64(n) {
				t.Errorf("%v rows stored, want %d", got[0][0], n)
			}
		})
	}
}

func TestSinkLockedDatabaseIsTransient(t *testing.T) {
	env := sqlkittest.Env(t)
	path := dbPath(env, "out.db")
	w := kit.Writer(t, env, "path: out.db\ntable: kv\ncreate: true\nbusy_timeout: 20ms", kv)
	other := testDB(t, path)
	other.SetMaxOpenConns(1)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}}})
	if !errors.Is(err, connector.ErrTransient) {
		t.Errorf("Write while another connection holds the write lock: %v, want ErrTransient", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Commit(t, w)
	if got := stored(t, path, "SELECT count(*) FROM kv"); got[0][0] != int64(1) {
		t.Errorf("%v rows after the lock was released, want 1", got[0][0])
	}
}

func TestSinkRefusesUnstorableValue(t *testing.T) {
	kit.RefusesUnstorable(t, sqlkittest.Env(t), "path: out.db\ntable: t\ncreate: true")
}

func TestAppendTimestampMatchesFormat(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", -9*3600-30*60), time.FixedZone("X", 5*3600+45*60), time.FixedZone("odd", 3600+17)}
	times := []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 1, 2, 3, 4, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC),
	}
	for _, tm := range times {
		for _, z := range zones {
			in := tm.In(z)
			if got, want := string(appendTimestamp(nil, in)), in.Format(timestampLayout); got != want {
				t.Errorf("appendTimestamp(%v) = %q, want %q", in, got, want)
			}
			d := record.LocalDateOf(in)
			if got, want := string(appendDate(nil, d)), d.String(); got != want {
				t.Errorf("appendDate(%v) = %q, want %q", d, got, want)
			}
		}
	}
}

func TestSinkUsesWAL(t *testing.T) {
	env := sqlkittest.Env(t)
	w := kit.Writer(t, env, "path: out.db\ntable: kv\ncreate: true", kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Commit(t, w)
	if got := stored(t, dbPath(env, "out.db"), "PRAGMA journal_mode"); got[0][0] != "wal" {
		t.Errorf("journal_mode %v, want wal", got[0][0])
	}
}

func TestSinkUpsertSingleIntKeyIsTheRowid(t *testing.T) {
	env := sqlkittest.Env(t)
	path := dbPath(env, "out.db")
	w := kit.Writer(t, env, "path: out.db\ntable: kv\nmode: upsert\nkey: n\ncreate: true", kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(7), "x"}, {"b", int64(7), "y"}, {"c", int64(8), "z"}})
	n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{"d", nil, "null key"}}})
	var be *connector.BatchError
	if n != 0 || !errors.As(err, &be) || !strings.Contains(be.Rows[0].Err.Error(), `key field "n" is null`) {
		t.Errorf("Write with a null key: n=%d err=%v", n, err)
	}
	sqlkittest.Commit(t, w)
	if diff := cmp.Diff([][]any{{"b", int64(7), "y"}, {"c", int64(8), "z"}}, stored(t, path, "SELECT k, n, v FROM kv ORDER BY rowid")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if got := stored(t, path, "SELECT pk FROM pragma_table_info('kv') WHERE name = 'n'"); got[0][0] != int64(1) {
		t.Errorf("key column n is not the primary key: pk=%v", got[0][0])
	}
}
