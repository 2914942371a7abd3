package mysql

import (
	"context"
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
	const dsn = "dsn: 'root@tcp(127.0.0.1:3306)/test'\n"
	tests := []struct{ Name, YAML, Want string }{
		{"no table", dsn, "table must name"},
		{"bad url dsn", "dsn: 'postgres://u:s3cret@h/db'\ntable: t", "want mysql://"},
		{"upsert without key", dsn + "table: t\nmode: upsert", "needs a key"},
		{"unknown mode", dsn + "table: t\nmode: merge", `mode "merge"`},
		{"reserved table", dsn + "table: backbone_checkpoints", "reserved"},
		{"key without upsert", dsn + "table: t\nkey: id", "only used in mode upsert"},
		{"replace of a long name", dsn + "table: " + strings.Repeat("x", 51) + "\nmode: replace", "at most 50 characters"},
		{"statement_rows", dsn + "table: t\nstatement_rows: 0", "statement_rows must be positive"},
	}
	kit.ConfigErrors(t, connector.KindSink, tests, func(t *testing.T, pe *connector.PosError) {
		if strings.Contains(pe.Msg, "s3cret") {
			t.Errorf("error %q shows the password", pe.Msg)
		}
	})
}

var allTypes = record.MustSchema(
	record.Field{Name: "id", Type: record.Int}, record.Field{Name: "price", Type: record.Decimal},
	record.Field{Name: "weight", Type: record.Float}, record.Field{Name: "name", Type: record.String},
	record.Field{Name: "data", Type: record.Bytes}, record.Field{Name: "active", Type: record.Bool},
	record.Field{Name: "at", Type: record.Timestamp}, record.Field{Name: "day", Type: record.Date},
	record.Field{Name: "attrs", Type: record.JSON},
)

func allTypesRows(t *testing.T) []record.Row {
	return []record.Row{
		{int64(1), record.MustDec("12.50"), 1.25, "ana ☃", []byte{0, 1}, true,
			time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", -5*3600)), sqlkittest.MustDate(t, "2024-02-29"),
			map[string]any{"a": []any{int64(1), "x"}}},
		{int64(2), record.MustDec("12345678901234567890123456789.000000000000000000000000000001"), nil, "", []byte{}, false,
			time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), nil, "just a string"},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil},
	}
}

func TestSinkCreateAppendStoresExactValues(t *testing.T) {
	db := newTestDB(t)
	env := sqlkittest.Env(t)
	w := kit.Writer(t, env, db.yaml("table: things\ncreate: true"), allTypes)
	if diff := cmp.Diff(connector.WriterInfo{Transactional: true}, w.Info()); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
	sqlkittest.Write(t, w, allTypes, allTypesRows(t))
	sqlkittest.Commit(t, w)
	want := [][]any{
		{"1", "12.500000000000000000000000000000", "1.25", "ana ☃", "0001", "1", "2024-01-02 08:04:05.123456", "2024-02-29", `{"a":[1,"x"]}`},
		{"2", "12345678901234567890123456789.000000000000000000000000000001", nil, "", "", "0", "2024-01-02 03:04:05.000000", nil, `"just a string"`},
		{"3", nil, nil, nil, nil, nil, nil, nil, nil},
	}
	got := db.rows(`SELECT id, price, weight, name, HEX(data), active, at, day, attrs FROM things ORDER BY id`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored values (-want +got):\n%s", diff)
	}
	decls := db.rows(`SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'things' ORDER BY ORDINAL_POSITION`)
	wantDecls := [][]any{{"id", "bigint(20)"}, {"price", "decimal(65,30)"}, {"weight", "double"}, {"name", "longtext"}, {"data", "longblob"},
		{"active", "tinyint(1)"}, {"at", "datetime(6)"}, {"day", "date"}, {"attrs", "longtext"}}
	if diff := cmp.Diff(wantDecls, decls); diff != "" {
		t.Errorf("declared types (-want +got):\n%s", diff)
	}
}

func TestSinkThenSourceRoundTrip(t *testing.T) {
	db := newTestDB(t)
	env := sqlkittest.Env(t)
	w := kit.Writer(t, env, db.yaml("table: things\ncreate: true"), allTypes)
	rows := allTypesRows(t)
	sqlkittest.Write(t, w, allTypes, rows)
	sqlkittest.Commit(t, w)
	res := sqlkittest.ReadAll(t, kit.Source(t, db.yaml("table: things")), env, connector.Task{Key: "things"}, nil)
	// JSON comes back decoded with json.Number; timestamps in UTC with
	// microseconds; everything else as written.
	rows[0][8] = map[string]any{"a": []any{json.Number("1"), "x"}}
	rows[0][6] = time.Date(2024, 1, 2, 8, 4, 5, 123456000, time.UTC)
	if diff := cmp.Diff(rows, res.Rows, bytesEqual); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if !res.Rows[1][1].(record.Dec).Equal(rows[1][1].(record.Dec)) {
		t.Errorf("decimal %s, want %s", res.Rows[1][1], rows[1][1])
	}
}

func TestSinkTimestampColumns(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, local_at DATETIME(6), utc_at TIMESTAMP(6) NULL, day DATE)`)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	env := sqlkittest.Env(t)
	env.Location = ny
	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "local_at", Type: record.Timestamp},
		record.Field{Name: "utc_at", Type: record.Timestamp}, record.Field{Name: "day", Type: record.Timestamp})
	at := time.Date(2024, 7, 1, 13, 0, 0, 1000, time.UTC) // 09:00:00.000001 in New York
	w := kit.Writer(t, env, db.yaml("table: ev"), schema)
	sqlkittest.Write(t, w, schema, []record.Row{{int64(1), at, at, at}})
	sqlkittest.Commit(t, w)
	want := [][]any{{"2024-07-01 09:00:00.000001", "2024-07-01 13:00:00.000001", "2024-07-01"}}
	if diff := cmp.Diff(want, db.rows(`SELECT local_at, utc_at, day FROM ev`)); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	res := sqlkittest.ReadAll(t, kit.Source(t, db.yaml("table: ev")), env, connector.Task{Key: "ev"}, nil)
	for i := 1; i <= 2; i++ {
		if got := res.Rows[0][i].(time.Time); !got.Equal(at) {
			t.Errorf("field %d read back as %v, want %v", i, got, at)
		}
	}
}

func TestSinkMissingTableAndColumns(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE things (id INT, name TEXT)")
	tests := []struct{ name, yaml, want string }{
		{"missing table", "table: orders", `table "orders": table does not exist (set create: true`},
		{"missing columns", "table: things", "no column for field(s) price, weight, data, active, at, day, attrs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kit.Sink(t, db.yaml(tc.yaml)).Open(context.Background(), sqlkittest.Env(t), allTypes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSinkUnreachableServerIsUnavailable(t *testing.T) {
	s := kit.Sink(t, "dsn: 'mysql://root:s3cret@127.0.0.1:1/test?timeout=1s'\ntable: t")
	_, err := s.Open(context.Background(), sqlkittest.Env(t), kv)
	if !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open: %v, want ErrUnavailable without the password", err)
	}
	_, err = s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), sqlkittest.Env(t))
	if !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("LoadCheckpoints: %v, want ErrUnavailable without the password", err)
	}
}

var kv = record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "n", Type: record.Int}, record.Field{Name: "v", Type: record.String})

func TestSinkUpsert(t *testing.T) {
	db := newTestDB(t)
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\nmode: upsert\nkey: [k, n]\ncreate: true"), kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "one"}, {"b", int64(1), "two"}, {"A", int64(1), "case"}})
	sqlkittest.Commit(t, w)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "uno"}, {"a", int64(2), "new"}, {"a", int64(2), "newer"}})
	sqlkittest.Commit(t, w)
	want := [][]any{{"A", "1", "case"}, {"a", "1", "uno"}, {"a", "2", "newer"}, {"b", "1", "two"}}
	if diff := cmp.Diff(want, db.rows("SELECT k, n, v FROM kv ORDER BY k, n")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{nil, int64(1), "x"}, {"c", int64(1), "y"}}})
	var be *connector.BatchError
	if n != 1 || !errors.As(err, &be) || len(be.Rows) != 1 || be.Rows[0].Index != 0 || !strings.Contains(be.Rows[0].Err.Error(), `key field "k" is null`) {
		t.Errorf("Write with a NULL key: n=%d err=%v, want row 0 refused", n, err)
	}
	sqlkittest.Commit(t, w)
	if got := db.rows("SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kv' ORDER BY ORDINAL_POSITION"); !cmp.Equal(got,
		[][]any{{"k", "varchar(255)", "PRI"}, {"n", "bigint(20)", "PRI"}, {"v", "longtext", ""}}) {
		t.Errorf("created columns %v", got)
	}
}

func TestSinkUpsertNeedsUniqueKey(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE kv (k VARCHAR(10), n INT, v TEXT, UNIQUE KEY (k, n))")
	_, err := kit.Sink(t, db.yaml("table: kv\nmode: upsert\nkey: k")).Open(context.Background(), sqlkittest.Env(t), kv)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE index on exactly (k)") {
		t.Errorf("Open: %v, want an error about the missing unique index", err)
	}
	if _, err := kit.Sink(t, db.yaml("table: kv\nmode: upsert\nkey: [n, k]")).Open(context.Background(), sqlkittest.Env(t), kv); err != nil {
		t.Errorf("Open with the index's columns in another order: %v", err)
	}
}

func TestSinkReplace(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
		rows   []record.Row
		want   [][]any
	}{
		{"committed", true, []record.Row{{"x", int64(9), "new"}, {"y", int64(8), "newer"}}, [][]any{{"x", "9", "new"}, {"y", "8", "newer"}}},
		{"closed without commit keeps the old rows", false, []record.Row{{"x", int64(9), "new"}}, [][]any{{"old", "1", "kept"}}},
		{"no rows empties the table", true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			db.exec("CREATE TABLE kv (k VARCHAR(10), n INT CHECK (n > 0), v TEXT, KEY kv_n (n))")
			db.exec("INSERT INTO kv VALUES ('old', 1, 'kept')")
			s := kit.Sink(t, db.yaml("table: kv\nmode: replace"))
			w, err := s.Open(context.Background(), sqlkittest.Env(t), kv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(connector.WriterInfo{Transactional: true, Once: true}, w.Info()); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			for i, r := range tc.rows { // one Write per row: each is loaded on its own
				sqlkittest.Write(t, w, kv, tc.rows[i:i+1])
				_ = r
			}
			if got := db.rows("SELECT k FROM kv"); len(got) != 1 || got[0][0] != "old" {
				t.Errorf("readers see %v before the commit, want the old rows", got)
			}
			if tc.commit {
				sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p")})
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, db.rows("SELECT k, n, v FROM kv ORDER BY k")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if got := db.count("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kv' AND INDEX_NAME = 'kv_n'"); got != 1 {
				t.Error("replace dropped the table's index")
			}
			if got := db.rows("SHOW TABLES"); len(got) != 4 { // kv and the three backbone_ tables
				t.Errorf("tables left: %v", got)
			}
			cps, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), sqlkittest.Env(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.commit != (len(cps) == 1) {
				t.Errorf("checkpoints %v after commit=%v", cps, tc.commit)
			}
		})
	}
}

func TestSinkReplaceSwapCompletesAfterCrash(t *testing.T) {
	tests := []struct {
		name      string
		crashAt   string // where the process dies
		wantRows  [][]any
		wantCheck bool
	}{
		// Rows and checkpoint committed with the swap mark, RENAME not run:
		// the next start completes the swap before it reads checkpoints.
		{"after the commit, before the rename", "swap", [][]any{{"x", "9", "new"}}, true},
		// The checkpoint transaction never committed: the load is dropped.
		{"before the commit", "commit", [][]any{{"old", "1", "kept"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			db.exec("CREATE TABLE kv (k VARCHAR(10), n INT, v TEXT)")
			db.exec("INSERT INTO kv VALUES ('old', 1, 'kept')")
			s := kit.Sink(t, db.yaml("table: kv\nmode: replace"))
			cw, err := s.Open(context.Background(), sqlkittest.Env(t), kv)
			if err != nil {
				t.Fatal(err)
			}
			w := cw.(*writer)
			sqlkittest.Write(t, w, kv, []record.Row{{"x", int64(9), "new"}})
			crash := errors.New("crash")
			if tc.crashAt == "swap" {
				w.beforeSw = func() error { return crash }
				if err := w.Commit(context.Background(), []connector.Checkpoint{{Task: "t", Pos: record.Position("p")}}); !errors.Is(err, crash) {
					t.Fatalf("Commit: %v", err)
				}
			}
			// The process dies: no Close, its connection just goes away.
			w.conn.Close()
			w.db.Close()
			if got := db.rows("SELECT k FROM kv"); len(got) != 1 || got[0][0] != "old" {
				t.Errorf("before the restart the table holds %v", got)
			}
			cps, err := kit.Sink(t, db.yaml("table: kv\nmode: replace")).(connector.CheckpointLoader).LoadCheckpoints(context.Background(), sqlkittest.Env(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantCheck != (len(cps) == 1) {
				t.Errorf("checkpoints after the restart: %v", cps)
			}
			if diff := cmp.Diff(tc.wantRows, db.rows("SELECT k, n, v FROM kv")); diff != "" {
				t.Errorf("rows after the restart (-want +got):\n%s", diff)
			}
			// A new run's Open drops a leftover load table and starts afresh.
			w2 := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\nmode: replace"), kv)
			sqlkittest.Write(t, w2, kv, []record.Row{{"z", int64(3), "third"}})
			sqlkittest.Commit(t, w2, connector.Checkpoint{Task: "t", Pos: record.Position("q")})
			if diff := cmp.Diff([][]any{{"z", "3", "third"}}, db.rows("SELECT k, n, v FROM kv")); diff != "" {
				t.Errorf("rows after the next run (-want +got):\n%s", diff)
			}
			if got := db.count("SELECT COUNT(*) FROM backbone_swaps"); got != 0 {
				t.Errorf("%d swap marks left", got)
			}
		})
	}
}

func TestSinkCheckpointMovesWithRows(t *testing.T) {
	db := newTestDB(t)
	env := sqlkittest.Env(t)
	s := kit.Sink(t, db.yaml("table: kv\ncreate: true"))
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
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 0 {
		t.Errorf("%d rows after Close without Commit", got)
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
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 0 {
		t.Errorf("%d rows visible before Commit", got)
	}
	sqlkittest.Commit(t, w, cp1)
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 2 {
		t.Errorf("%d rows after Commit, want 2", got)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}

	// A Commit cancelled before it ran leaves the previous checkpoint and rows.
	sqlkittest.Write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("later")}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: %v", err)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints after a failed Commit (-want +got):\n%s", diff)
	}
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 2 {
		t.Errorf("%d rows after a failed Commit, want 2", got)
	}
	// The staged row was lost with the transaction: Commit refuses until
	// it is written again, and then goes on.
	if err := w.Commit(context.Background(), []connector.Checkpoint{{Task: "t", Pos: record.Position("later")}}); err == nil || errors.Is(err, connector.ErrTransient) {
		t.Errorf("Commit after lost rows: %v, want a permanent error", err)
	}
	sqlkittest.Write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
	sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("later")})
	if diff := cmp.Diff([][]any{{"a"}, {"b"}, {"c"}}, db.rows("SELECT k FROM kv ORDER BY k")); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestLoadCheckpointsRoundTrip(t *testing.T) {
	db := newTestDB(t)
	sqlkittest.CheckpointsRoundTrip(t, kit.Sink(t, db.yaml("table: kv\ncreate: true")), sqlkittest.Env(t), kv, []connector.Checkpoint{
		{Task: "a.csv", Pos: record.Position{0, 1, 2, 255}, Done: true, Fingerprint: "123:456"},
		{Task: "orders", Pos: record.Position(`{"v":1,"cols":["ts","id"]}`)},
		{Task: "empty"},
		{Task: "Orders"}, // task keys compare byte for byte
	})
}

func TestCheckpointsOfUnknownVersionAreRefused(t *testing.T) {
	tests := []struct {
		name, setup, want string
	}{
		{"newer", "UPDATE backbone_meta SET v = '2'", "newer backbone (version 2"},
		{"no version", "DELETE FROM backbone_meta", "without its version"},
		{"garbage", "UPDATE backbone_meta SET v = 'x'", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			s := kit.Sink(t, db.yaml("table: kv\ncreate: true"))
			w, err := s.Open(context.Background(), sqlkittest.Env(t), kv)
			if err != nil {
				t.Fatal(err)
			}
			sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t"})
			w.Close()
			db.exec(tc.setup)
			if _, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), sqlkittest.Env(t)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadCheckpoints: %v, want an error containing %q", err, tc.want)
			}
			if _, err := s.Open(context.Background(), sqlkittest.Env(t), kv); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSinkBatchErrorFindsExactlyTheBadRows(t *testing.T) {
	const table = `CREATE TABLE kv (k VARCHAR(12) NOT NULL, n INT CHECK (n >= 0), v VARCHAR(10), d DECIMAL(8,2), UNIQUE KEY (k))`
	schema := record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "n", Type: record.Int},
		record.Field{Name: "v", Type: record.String}, record.Field{Name: "d", Type: record.Decimal})
	type poison struct {
		row    int
		reason string // in the row's error
		apply  func(r record.Row)
	}
	poisons := []poison{
		{0, "CONSTRAINT", func(r record.Row) { r[1] = int64(-1) }},
		{37, "Data too long", func(r record.Row) { r[2] = "eleven chars" }},
		{500, "null", func(r record.Row) { r[0] = nil }}, // the server's NOT NULL, or upsert's own check of the key
		{501, "Duplicate entry", func(r record.Row) { r[0] = "k7" }},
		{4999, "Out of range", func(r record.Row) { r[3] = record.MustDec("12345678.9") }},
		{5000, "digits after the point", func(r record.Row) { r[3] = record.MustDec("1.234") }},
		{9998, "Data too long", func(r record.Row) { r[2] = "ünïcödé-long" }},
		{9999, "Out of range", func(r record.Row) { r[1] = int64(1) << 40 }},
	}
	tests := []struct{ name, mode string }{
		{"append", "append"},
		{"upsert", "upsert\nkey: k"},
		{"replace", "replace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			db.exec(table)
			w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\nmode: "+tc.mode), schema)
			rows := make([]record.Row, 10000)
			for i := range rows {
				rows[i] = record.Row{fmt.Sprint("k", i), int64(i), fmt.Sprint("v", i%1000), record.MustDec("1.50")}
			}
			for _, p := range poisons {
				p.apply(rows[p.row])
			}
			if tc.name == "upsert" { // a repeated key updates
				rows[501][0] = fmt.Sprint("k", 501)
			}
			n, err := w.Write(context.Background(), &record.Batch{Schema: schema, Rows: rows})
			var be *connector.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Write: %v, want a *BatchError", err)
			}
			var want, got []string
			for _, p := range poisons {
				if tc.name == "upsert" && p.row == 501 {
					continue
				}
				want = append(want, fmt.Sprint(p.row, " ", p.reason))
			}
			for _, re := range be.Rows {
				msg := re.Err.Error()
				reason := "?"
				for _, p := range poisons {
					if p.row == re.Index && strings.Contains(msg, p.reason) {
						reason = p.reason
					}
				}
				got = append(got, fmt.Sprint(re.Index, " ", reason))
				if !strings.Contains(msg, `table "kv"`) {
					t.Errorf("row %d: error %q does not name the table", re.Index, msg)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("refused rows (-want +got):\n%s", diff)
			}
			if n != len(rows)-len(want) {
				t.Errorf("n = %d, want %d", n, len(rows)-len(want))
			}
			sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("1")})
			if got := db.count("SELECT COUNT(*) FROM kv"); got != n {
				t.Errorf("%d rows stored, want %d", got, n)
			}
			if got := db.rows("SELECT v, d FROM kv WHERE k = 'k1'"); !cmp.Equal(got, [][]any{{"v1", "1.50"}}) {
				t.Errorf("row k1 stored as %v", got)
			}
		})
	}
}

func TestSinkDecimalIsNeverRounded(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE m (id INT PRIMARY KEY, amount DECIMAL(10,2))`)
	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "amount", Type: record.Decimal})
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: m"), schema)
	n, err := w.Write(context.Background(), &record.Batch{Schema: schema, Rows: []record.Row{
		{int64(1), record.MustDec("1.5")},
		{int64(2), record.MustDec("1.2300")}, // trailing zeros: exact at scale 2
		{int64(3), record.MustDec("1.235")},  // would round
		{int64(4), record.MustDec("-0.01")},
	}})
	var be *connector.BatchError
	if n != 3 || !errors.As(err, &be) || len(be.Rows) != 1 || be.Rows[0].Index != 2 ||
		!strings.Contains(be.Rows[0].Err.Error(), `field "amount": value 1.235 has 3 digits after the point; column decimal(10,2) keeps 2`) {
		t.Fatalf("Write: n=%d err=%v", n, err)
	}
	sqlkittest.Commit(t, w)
	if diff := cmp.Diff([][]any{{"1", "1.50"}, {"2", "1.23"}, {"4", "-0.01"}}, db.rows("SELECT id, amount FROM m ORDER BY id")); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

func TestSinkRefusesUnstorableValue(t *testing.T) {
	db := newTestDB(t)
	kit.RefusesUnstorable(t, sqlkittest.Env(t), db.yaml("table: t\ncreate: true"))
}

// writerConn returns the id of the one connection of the writer.
func writerConn(t *testing.T, db *testDB) int64 {
	t.Helper()
	ids := db.conns()
	if len(ids) != 1 {
		t.Fatalf("connections to the test database: %v, want the writer's one", ids)
	}
	return ids[0]
}

// A connection killed between Write and Commit is a transient failure: the
// next Write and Commit store exactly the batch, once.
func TestSinkKilledConnectionIsTransient(t *testing.T) {
	for _, mode := range []string{"append", "upsert\nkey: k", "replace"} {
		t.Run(strings.Fields(mode)[0], func(t *testing.T) {
			db := newTestDB(t)
			w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true\nmode: "+mode), kv)
			batch := []record.Row{{"a", int64(1), "x"}, {"b", int64(2), "y"}}
			sqlkittest.Write(t, w, kv, batch)
			db.exec(fmt.Sprintf("KILL CONNECTION %d", writerConn(t, db)))
			cp := connector.Checkpoint{Task: "t", Pos: record.Position("p1")}
			err := w.Commit(context.Background(), []connector.Checkpoint{cp})
			if !errors.Is(err, connector.ErrTransient) {
				t.Fatalf("Commit after the connection was killed: %v, want ErrTransient", err)
			}
			if strings.HasPrefix(mode, "replace") {
				// The rows are in the load table already: a retried Commit does it.
				sqlkittest.Commit(t, w, cp)
			} else {
				sqlkittest.Write(t, w, kv, batch) // the engine writes the batch again
				sqlkittest.Commit(t, w, cp)
			}
			if diff := cmp.Diff([][]any{{"a", "1", "x"}, {"b", "2", "y"}}, db.rows("SELECT k, n, v FROM kv ORDER BY k")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if got := db.rows("SELECT task, pos FROM backbone_checkpoints"); !cmp.Equal(got, [][]any{{"t", "p1"}}) {
				t.Errorf("checkpoints %v", got)
			}
		})
	}
}

// A connection killed during a Write rolls the batch back; the engine's
// retry of the Write stores it once.
func TestSinkKilledDuringWriteIsRetriedWhole(t *testing.T) {
	db := newTestDB(t)
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true"), kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p1")})
	db.exec(fmt.Sprintf("KILL CONNECTION %d", writerConn(t, db)))
	batch := []record.Row{{"b", int64(2), "y"}, {"c", int64(3), "z"}}
	_, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: batch})
	if !errors.Is(err, connector.ErrTransient) {
		t.Fatalf("Write on a killed connection: %v, want ErrTransient", err)
	}
	var be *connector.BatchError
	if errors.As(err, &be) {
		t.Fatalf("an outage came back as refused rows: %v", err)
	}
	sqlkittest.Write(t, w, kv, batch)
	sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p2")})
	if diff := cmp.Diff([][]any{{"a"}, {"b"}, {"c"}}, db.rows("SELECT k FROM kv ORDER BY k")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// While the server cannot be reached no row is refused: every failure is
// transient, and the writer recovers when the server is back.
func TestSinkOutageIsTransientNeverARefusedRow(t *testing.T) {
	db := newTestDB(t)
	p := newProxy(t, serverAddr)
	w := kit.Writer(t, sqlkittest.Env(t), "dsn: '"+p.dsn(db.name)+"?timeout=2s'\ntable: kv\ncreate: true", kv)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p0")})
	p.stop()
	for i := 0; i < 3; i++ {
		_, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{"b", int64(2), "y"}}})
		var be *connector.BatchError
		if !errors.Is(err, connector.ErrTransient) || errors.As(err, &be) {
			t.Fatalf("Write %d during the outage: %v, want ErrTransient", i, err)
		}
	}
	p.start()
	sqlkittest.Write(t, w, kv, []record.Row{{"b", int64(2), "y"}})
	sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p")})
	if diff := cmp.Diff([][]any{{"a"}, {"b"}}, db.rows("SELECT k FROM kv ORDER BY k")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestSinkWriteHonoursCancelledContext(t *testing.T) {
	db := newTestDB(t)
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true"), kv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.Write(ctx, &record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, connector.ErrTransient) {
		t.Errorf("Write with a cancelled context: %v", err)
	}
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Commit(t, w)
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 1 {
		t.Errorf("%d rows", got)
	}
}

func TestSinkStatementsStayUnderMaxAllowedPacket(t *testing.T) {
	db := newTestDB(t)
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true"), kv).(*writer)
	w.maxBytes = 10000 // as if max_allowed_packet were 20000
	rows := make([]record.Row, 50)
	for i := range rows {
		rows[i] = record.Row{fmt.Sprint("k", i), int64(i), strings.Repeat("x", 3000)}
	}
	rows[7][2] = strings.Repeat("y", 20000)
	n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: rows})
	var be *connector.BatchError
	if n != 49 || !errors.As(err, &be) || be.Rows[0].Index != 7 || !strings.Contains(be.Rows[0].Err.Error(), "max_allowed_packet") {
		t.Fatalf("Write: n=%d err=%v", n, err)
	}
	sqlkittest.Commit(t, w)
	if got := db.count("SELECT COUNT(*) FROM kv"); got != 49 {
		t.Errorf("%d rows", got)
	}
}
