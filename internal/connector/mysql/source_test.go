package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

var bytesEqual = cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })

func TestSourceConfigErrors(t *testing.T) {
	const dsn = "dsn: 'root@tcp(127.0.0.1:3306)/test'\n"
	tests := []struct{ Name, YAML, Want string }{
		{"neither table nor query", dsn, "one of table and query"},
		{"both table and query", dsn + "table: t\nquery: select 1", "exclude each other"},
		{"bad dsn", "dsn: 'root:s3cret@tcp(127.0.0.1:3306'\ntable: t", "not a valid MySQL DSN"},
		{"incremental without cursor", dsn + "table: t\nmode: incremental\nkey: id", "needs a cursor"},
		{"incremental without key", dsn + "table: t\nmode: incremental\ncursor: ts", "needs a key"},
		{"cursor in full mode", dsn + "table: t\ncursor: ts", "only used in mode incremental"},
		{"lookback in full mode", dsn + "table: t\nlookback: 5m", "only used in mode incremental"},
		{"unknown mode", dsn + "table: t\nmode: sometimes", `mode "sometimes"`},
		{"unknown drift policy", dsn + "table: t\nschema_drift: whatever", `schema_drift "whatever"`},
		{"negative batch_rows", dsn + "table: t\nbatch_rows: -1", "batch_rows must be positive"},
		{"repeated key", dsn + "table: t\nmode: incremental\ncursor: ts\nkey: [id, id]", `"id" appears twice`},
	}
	kit.ConfigErrors(t, connector.KindSource, tests, func(t *testing.T, pe *connector.PosError) {
		if pe.Pos.Line == 0 {
			t.Errorf("error %q has no position", pe.Msg)
		}
		if strings.Contains(pe.Msg, "s3cret") {
			t.Errorf("error %q shows the password", pe.Msg)
		}
	})
}

// typesTable creates a table with one column of each kind of type.
func typesTable(db *testDB) {
	db.exec(`CREATE TABLE things (
		id BIGINT PRIMARY KEY, price DECIMAL(12,2), big DECIMAL(40,10), weight DOUBLE, ratio FLOAT,
		name VARCHAR(20), data VARBINARY(10), active BOOLEAN, flag BIT(1), bits BIT(12),
		seen_at DATETIME(6), stamp TIMESTAMP(6) NULL, born DATE, attrs JSON, at_time TIME(3),
		u BIGINT UNSIGNED, color ENUM('red','blue'), small TINYINT)`)
	db.exec(`INSERT INTO things VALUES
		(1, 12.50, '123456789012345678901234567890.0000000001', 1.5, 0.25, 'ana', x'0102', TRUE, b'1', b'101',
		 '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.654321', '2000-02-29', '{"a":[1,2]}', '12:34:56.789',
		 18446744073709551615, 'blue', -5),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(3, 3, -1, -2, 2, 'bo', x'', FALSE, b'0', b'0', '1999-12-31 23:59:59', '1970-01-01 00:00:01', '1999-12-31', '"s"', '-01:00:00',
		 7, 'red', 127)`)
}

func TestSourceFullDerivesSchemaAndConverts(t *testing.T) {
	db := newTestDB(t)
	typesTable(db)
	env := sqlkittest.Env(t)
	s := kit.Source(t, db.yaml("table: things"))
	if _, ok := s.(connector.Schemer); ok {
		t.Error("a source without a declared schema implements Schemer")
	}
	tasks, err := s.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Key != "things@run1" || tasks[0].Final {
		t.Fatalf("tasks %+v, want one task things@run1", tasks)
	}
	r, err := s.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSchema := "id int, price decimal, big decimal, weight float, ratio float, name string, data bytes, active bool, flag bool, bits int, " +
		"seen_at timestamp, stamp timestamp, born date, attrs json, at_time string, u int, color string, small int"
	if got := r.Schema().String(); got != wantSchema {
		t.Errorf("schema\n got %s\nwant %s", got, wantSchema)
	}
	res := sqlkittest.Drain(t, r, -1)
	r.Close()
	want := []record.Row{
		{int64(1), record.MustDec("12.50"), record.MustDec("123456789012345678901234567890.0000000001"), 1.5, 0.25, "ana", []byte{1, 2}, true, true, int64(5),
			time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 654321000, time.UTC), sqlkittest.MustDate(t, "2000-02-29"),
			map[string]any{"a": []any{json.Number("1"), json.Number("2")}}, "12:34:56.789", nil, "blue", int64(-5)},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(3), record.MustDec("3.00"), record.MustDec("-1.0000000000"), -2.0, 2.0, "bo", []byte{}, false, false, int64(0),
			time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC), sqlkittest.MustDate(t, "1999-12-31"),
			"s", "-01:00:00.000", int64(7), "red", int64(127)},
	}
	// Row 1's BIGINT UNSIGNED is above the int range: the record is rejected.
	if len(res.Rejects) != 1 || res.Rejects[0].Field != "u" || !strings.Contains(res.Rejects[0].Err, "18446744073709551615") || res.Rejects[0].Line != 1 {
		t.Fatalf("rejects %+v, want row 1 rejected for field u", res.Rejects)
	}
	if diff := cmp.Diff(want[1:], res.Rows, bytesEqual); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 3}, res.Lines); diff != "" {
		t.Errorf("lines are the primary key (-want +got):\n%s", diff)
	}
	// With the unsigned column read as a decimal, row 1 converts exactly.
	s = kit.Source(t, db.yaml("table: things\nschema: {id: int, big: decimal, u: decimal, seen_at: timestamp, attrs: json, active: bool}"))
	res = sqlkittest.ReadAll(t, s, env, connector.Task{Key: "things"}, nil)
	if len(res.Rows) != 3 || len(res.Rejects) != 0 {
		t.Fatalf("declared schema: %d rows, rejects %+v", len(res.Rows), res.Rejects)
	}
	got := res.Rows[0]
	if d := got[2].(record.Dec); d.String() != "18446744073709551615" {
		t.Errorf("unsigned as decimal: %s", d)
	}
	if diff := cmp.Diff(want[0][2], got[1]); diff != "" {
		t.Errorf("decimal(40,10) (-want +got):\n%s", diff)
	}
}

func TestSourceDatetimeInPipelineZone(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, local_at DATETIME(6), utc_at TIMESTAMP(6) NULL)`)
	db.exec(`INSERT INTO ev VALUES (1, '2024-07-01 09:00:00.000001', '2024-07-01 09:00:00.000001')`)
	env := sqlkittest.Env(t)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	env.Location = ny
	res := sqlkittest.ReadAll(t, kit.Source(t, db.yaml("table: ev")), env, connector.Task{Key: "ev"}, nil)
	local, utc := res.Rows[0][1].(time.Time), res.Rows[0][2].(time.Time)
	if want := time.Date(2024, 7, 1, 9, 0, 0, 1000, ny); !local.Equal(want) || local.Location() != ny {
		t.Errorf("DATETIME read as %v, want the wall clock in the pipeline's zone %v", local, want)
	}
	if want := time.Date(2024, 7, 1, 9, 0, 0, 1000, time.UTC); !utc.Equal(want) {
		t.Errorf("TIMESTAMP read as %v, want the instant %v", utc, want)
	}
}

func TestSourceRejectsValueThatDoesNotConvert(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE t (id INT PRIMARY KEY, qty VARCHAR(10), at DATETIME, b VARBINARY(4))`)
	db.exec(`SET SESSION sql_mode = ''`) // lets the test store a zero date
	db.exec(`INSERT INTO t VALUES (1, '5', '2024-01-01', 'ok'), (2, 'many', '2024-01-01', 'ok'), (3, '6', '0000-00-00', 'ok'), (4, '7', NULL, x'ff')`)
	s := kit.Source(t, db.yaml("table: t\nschema: {id: int, qty: int, at: timestamp, b: string}"))
	res := sqlkittest.ReadAll(t, s, sqlkittest.Env(t), connector.Task{Key: "t"}, nil)
	if got := len(res.Rows); got != 1 {
		t.Errorf("%d rows, want 1", got)
	}
	type rej struct {
		Line        int64
		Step, Field string
		Raw         string
	}
	var got []rej
	for _, r := range res.Rejects {
		got = append(got, rej{Line: r.Line, Step: r.Step, Field: r.Field, Raw: string(r.Raw)})
		if !strings.Contains(r.Err, r.Field) {
			t.Errorf("reject reason %q does not name the field %q", r.Err, r.Field)
		}
	}
	want := []rej{
		{Line: 2, Step: "source", Field: "qty", Raw: `{"id":2,"qty":"many","at":"2024-01-01T00:00:00Z","b":"b2s="}`},
		{Line: 3, Step: "source", Field: "at", Raw: `{"id":3,"qty":"6","at":"0001-01-01T00:00:00Z","b":"b2s="}`},
		{Line: 4, Step: "source", Field: "b", Raw: `{"id":4,"qty":"7","at":null,"b":"/w=="}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	for i, sub := range []string{`"many"`, "zero date", "UTF-8"} {
		if !strings.Contains(res.Rejects[i].Err, sub) {
			t.Errorf("reject %q does not say %q", res.Rejects[i].Err, sub)
		}
	}
}

func TestSourceQuery(t *testing.T) {
	db := newTestDB(t)
	typesTable(db)
	env := sqlkittest.Env(t)
	tests := []struct {
		Name, YAML, Schema string
		Want               []record.Row
	}{
		{
			Name:   "driver types; no TINYINT(1) nor MariaDB JSON",
			YAML:   "query: SELECT id, seen_at, active, attrs, id * 2 AS twice FROM things WHERE id <> 2;",
			Schema: "id int, seen_at timestamp, active int, attrs string, twice int",
			Want: []record.Row{
				{int64(1), time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), int64(1), `{"a":[1,2]}`, int64(2)},
				{int64(3), time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), int64(0), `"s"`, int64(6)},
			},
		},
		{
			Name:   "declared schema converts",
			YAML:   "query: SELECT id, CONCAT('x', id) AS label, price * 2 AS doubled, active, attrs FROM things WHERE id <> 2\nschema: {id: string, doubled: decimal, active: bool, attrs: json}",
			Schema: "id string, doubled decimal, active bool, attrs json",
			Want: []record.Row{
				{"1", record.MustDec("25.00"), true, map[string]any{"a": []any{json.Number("1"), json.Number("2")}}},
				{"3", record.MustDec("6.00"), false, "s"},
			},
		},
		{
			Name:   "keyed full read",
			YAML:   "query: SELECT id, name FROM things\nkey: name\nbatch_rows: 1",
			Schema: "id int, name string",
			Want:   []record.Row{{int64(2), nil}, {int64(1), "ana"}, {int64(3), "bo"}},
		},
	}
	kit.Reads(t, env, connector.Task{Key: "query"}, db.yaml, tests)
}

func TestSourceUnreachableServerIsUnavailable(t *testing.T) {
	s := kit.Source(t, "dsn: 'root:s3cret@tcp(127.0.0.1:1)/test?timeout=1s'\ntable: t")
	env := sqlkittest.Env(t)
	_, err := s.Plan(context.Background(), env)
	if !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Plan: %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
	if _, err := s.Open(context.Background(), env, connector.Task{Key: "t"}, nil); !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
}

func TestSourceMissingTable(t *testing.T) {
	db := newTestDB(t)
	s := kit.Source(t, db.yaml("table: orders"))
	if _, err := s.Plan(context.Background(), sqlkittest.Env(t)); err == nil || !strings.Contains(err.Error(), `table "orders" does not exist`) {
		t.Errorf("Plan: %v, want an error naming the missing table", err)
	}
	if _, err := s.Open(context.Background(), sqlkittest.Env(t), connector.Task{Key: "orders"}, nil); err == nil || !strings.Contains(err.Error(), `table "orders" does not exist`) {
		t.Errorf("Open: %v, want an error naming the missing table", err)
	}
}

// seen counts how often each id arrived.
type seen map[int64]int

func (s seen) add(rows []record.Row) {
	for _, r := range rows {
		s[r[0].(int64)]++
	}
}

func (s seen) twice() []int64 {
	var ids []int64
	for id, n := range s {
		if n > 1 {
			ids = append(ids, id)
		}
	}
	return ids
}

func insertSeq(t *testing.T, db *testDB, from, to int, ts string) {
	t.Helper()
	db.exec(`INSERT INTO ev (id, updated_at, v) SELECT seq, ?, CONCAT('v', seq) FROM seq_`+fmt.Sprint(from)+`_to_`+fmt.Sprint(to-1), ts)
}

func TestSourceIncrementalTiesAcrossBatches(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, v VARCHAR(20), KEY ev_cursor (updated_at, id))`)
	const ts = "2024-03-01 10:00:00.123456"
	insertSeq(t, db, 1, 10001, ts)
	env := sqlkittest.Env(t)
	s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: updated_at\nkey: id\nbatch_rows: 100"))
	got := seen{}

	// Run 1 stops after 37 batches (a crash); run 2 resumes from there.
	tasks, _ := s.Plan(context.Background(), env)
	if tasks[0].Key != "ev" {
		t.Errorf("task key %q, want ev (no run id: the checkpoint carries over runs)", tasks[0].Key)
	}
	r, err := s.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	part := sqlkittest.Drain(t, r, 37)
	r.Close()
	if len(part.Rows) != 3700 || part.Batches != 37 {
		t.Fatalf("first 37 batches hold %d rows", len(part.Rows))
	}
	got.add(part.Rows)
	env.RunID = "run2"
	rows, pos := sqlkittest.IncrementalRun(t, s, env, part.Pos)
	if len(rows) != 6300 {
		t.Errorf("resumed run read %d rows, want the remaining 6300", len(rows))
	}
	got.add(rows)

	// Rows with the same cursor value but higher keys, and later ones.
	insertSeq(t, db, 10001, 10251, ts)
	insertSeq(t, db, 10251, 10400, "2024-03-01 10:00:00.123457")
	env.RunID = "run3"
	rows, pos = sqlkittest.IncrementalRun(t, s, env, pos)
	if len(rows) != 399 {
		t.Errorf("run 3 read %d rows, want 399", len(rows))
	}
	got.add(rows)
	env.RunID = "run4"
	rows, _ = sqlkittest.IncrementalRun(t, s, env, pos)
	if len(rows) != 0 {
		t.Errorf("run 4 read %d rows with nothing new", len(rows))
	}
	if len(got) != 10399 || len(got.twice()) > 0 {
		t.Errorf("%d distinct rows read, %d twice; want 10399 once each", len(got), len(got.twice()))
	}
	want := sqlkittest.MustTime(t, ts)
	for _, r := range part.Rows[:5] {
		if !r[1].(time.Time).Equal(want) {
			t.Errorf("timestamp %v, want %v", r[1], want)
		}
	}
}

func TestSourceIncrementalMicroseconds(t *testing.T) {
	tests := []struct{ name, decl string }{
		{"datetime", "DATETIME(6)"},
		{"timestamp", "TIMESTAMP(6) NULL"},
	}
	runs := [][]string{
		{"2024-03-01 10:00:00", "2024-03-01 10:00:00.000001", "2024-03-01 10:00:00.1", "2024-03-01 10:00:00.123456",
			"2024-03-01 10:00:00.123456", "2024-03-01 10:00:00.123457"},
		{"2024-03-01 10:00:00.123457", "2024-03-01 10:00:00.999999", "2024-03-01 10:00:01"},
		{"2024-03-01 10:00:01.000001", "2024-03-01 10:00:01.000001", "2024-03-01 10:00:01.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, changed ` + tc.decl + `, KEY (changed, id))`)
			s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: changed\nkey: id\nbatch_rows: 2"))
			env := sqlkittest.Env(t)
			got := seen{}
			id := int64(0)
			want := map[int64]time.Time{}
			var pos record.Position
			for i, texts := range runs {
				for _, ts := range texts {
					id++
					db.exec(`INSERT INTO ev VALUES (?, ?)`, id, ts)
					want[id] = sqlkittest.MustTime(t, ts)
				}
				env.RunID = fmt.Sprint("run", i)
				var rows []record.Row
				rows, pos = sqlkittest.IncrementalRun(t, s, env, pos)
				if len(rows) != len(texts) {
					t.Errorf("run %d read %d rows, want %d", i+1, len(rows), len(texts))
				}
				got.add(rows)
				for _, r := range rows {
					if ts := r[1].(time.Time); !ts.Equal(want[r[0].(int64)]) {
						t.Errorf("id %d: timestamp %s, want %s", r[0], ts.Format(time.RFC3339Nano), want[r[0].(int64)].Format(time.RFC3339Nano))
					}
				}
			}
			if int64(len(got)) != id || len(got.twice()) > 0 {
				t.Errorf("%d rows read (%d twice), want %d once each", len(got), len(got.twice()), id)
			}
			var p posJSON
			if err := json.Unmarshal(pos, &p); err != nil {
				t.Fatal(err)
			}
			if p.Vals[0].T == nil || *p.Vals[0].T != "2024-03-01T10:00:01.5Z" {
				t.Errorf("position %s does not hold the last cursor exactly", pos)
			}
		})
	}
}

func TestSourceIncrementalDecimalCursorIsExact(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, seq DECIMAL(40,20), KEY (seq, id))`)
	// Values a double cannot tell apart.
	vals := []string{"1.00000000000000000001", "1.00000000000000000002", "1.00000000000000000002", "12345678901234567890.00000000000000000001", "12345678901234567890.00000000000000000002"}
	for i, v := range vals {
		db.exec(`INSERT INTO ev VALUES (?, ?)`, i+1, v)
	}
	s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: seq\nkey: id\nbatch_rows: 1"))
	rows, pos := sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), nil)
	if len(rows) != len(vals) {
		t.Fatalf("read %d rows, want %d:\n%s", len(rows), len(vals), fmtRows(rows))
	}
	for i, r := range rows {
		if d := r[1].(record.Dec); !d.Equal(record.MustDec(vals[i])) {
			t.Errorf("row %d: %s, want %s", i, d, vals[i])
		}
	}
	db.exec(`INSERT INTO ev VALUES (6, '12345678901234567890.00000000000000000003')`)
	rows, _ = sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), pos)
	if len(rows) != 1 || rows[0][0] != int64(6) {
		t.Errorf("second run read %v, want only id 6", rows)
	}
}

func TestSourceIncrementalNullCursor(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, seq INT NULL, KEY (seq, id))`)
	db.exec(`INSERT INTO ev VALUES (1, NULL), (2, NULL), (3, NULL), (4, 1), (5, 2)`)
	s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: seq\nkey: id\nbatch_rows: 2"))
	got := seen{}
	rows, pos := sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), nil)
	got.add(rows)
	db.exec(`INSERT INTO ev VALUES (6, 3), (7, 3)`)
	rows, _ = sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), pos)
	got.add(rows)
	if len(got) != 7 || len(got.twice()) > 0 {
		t.Errorf("read ids %v, want 1..7 once each", got)
	}
}

func TestSourceLookbackPicksUpLateRow(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, KEY (updated_at, id))`)
	db.exec(`INSERT INTO ev VALUES (1, '2024-03-01 10:00:00'), (2, '2024-03-01 10:01:00'), (3, '2024-03-01 10:10:00')`)
	tests := []struct {
		name     string
		lookback string
		want     []int64 // ids of run 2
	}{
		// Run 2 starts at 10:10 - 5m = 10:05: the late row (10:06) and the
		// last row of run 1 (10:10) are in the window.
		{"with lookback", "lookback: 5m\n", []int64{4, 3, 5}},
		{"without lookback", "", []int64{5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db.exec(`DELETE FROM ev WHERE id > 3`)
			s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: updated_at\nkey: id\nbatch_rows: 2\n"+tc.lookback))
			env := sqlkittest.Env(t)
			rows, pos := sqlkittest.IncrementalRun(t, s, env, nil)
			if len(rows) != 3 {
				t.Fatalf("run 1 read %d rows", len(rows))
			}
			// Committed late: its cursor is older than the last one read.
			db.exec(`INSERT INTO ev VALUES (4, '2024-03-01 10:06:00'), (5, '2024-03-01 10:11:00')`)

			// A retry within run 1 resumes exactly, without the window.
			r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
			if err != nil {
				t.Fatal(err)
			}
			retry := sqlkittest.Drain(t, r, -1)
			r.Close()
			if len(retry.Rows) != 1 || retry.Rows[0][0] != int64(5) {
				t.Errorf("retry within the run read %s, want only id 5", fmtRows(retry.Rows))
			}

			env.RunID = "run2"
			rows, pos = sqlkittest.IncrementalRun(t, s, env, pos)
			var ids []int64
			for _, r := range rows {
				ids = append(ids, r[0].(int64))
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("run 2 ids (-want +got):\n%s", diff)
			}
			env.RunID = "run3"
			rows, _ = sqlkittest.IncrementalRun(t, s, env, pos)
			if tc.lookback != "" && len(rows) != 3 { // 10:06, 10:10 and 10:11 are within 5m of 10:11
				t.Errorf("run 3 read %s, want the window's two rows again", fmtRows(rows))
			}
		})
	}
}

func TestSourceLookbackNeedsTemporalCursor(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY)`)
	db.exec(`INSERT INTO ev VALUES (1)`)
	s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: id\nkey: id\nlookback: 1h"))
	_, pos := sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), nil)
	env := sqlkittest.Env(t)
	env.RunID = "run2"
	_, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
	if err == nil || !strings.Contains(err.Error(), "lookback needs a DATE, DATETIME or TIMESTAMP") {
		t.Errorf("Open: %v, want an error about the cursor's type", err)
	}
}

func TestSourceSchemaDrift(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		change string
		want   string // error, or the schema of run 2
		rows   []record.Row
	}{
		{"new column fails by default", "fail", "ALTER TABLE ev ADD COLUMN note VARCHAR(10) DEFAULT 'n'", "new column(s) note (string)", nil},
		{"new column added", "add_columns", "ALTER TABLE ev ADD COLUMN note VARCHAR(10) DEFAULT 'n'", "id int, v string, note string",
			[]record.Row{{int64(3), "c", "n"}}},
		{"new column ignored", "ignore_new", "ALTER TABLE ev ADD COLUMN note VARCHAR(10) DEFAULT 'n'", "id int, v string",
			[]record.Row{{int64(3), "c"}}},
		{"removed column always fails", "add_columns", "ALTER TABLE ev DROP COLUMN v", "removed column(s) v (string)", nil},
		{"changed type always fails", "ignore_new", "ALTER TABLE ev MODIFY v DECIMAL(10,2)", "changed type(s) v (string -> decimal)", nil},
		{"wider type of the same kind is no drift", "fail", "ALTER TABLE ev MODIFY v TEXT", "id int, v string", []record.Row{{int64(3), "c"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, v VARCHAR(10))`)
			db.exec(`INSERT INTO ev VALUES (1, '1'), (2, '2')`)
			s := kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: id\nkey: id\nschema_drift: "+tc.policy))
			_, pos := sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), nil)
			db.exec(tc.change)
			if tc.rows != nil {
				db.exec(`INSERT INTO ev (id) VALUES (3)`)
				db.exec(`UPDATE ev SET v = 'c' WHERE id = 3`)
			}
			env := sqlkittest.Env(t)
			env.RunID = "run2"
			r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
			if tc.rows == nil {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "schema drift") {
					t.Fatalf("Open: %v, want a schema drift error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Schema().String(); got != tc.want {
				t.Errorf("schema %q, want %q", got, tc.want)
			}
			res := sqlkittest.Drain(t, r, -1)
			if diff := cmp.Diff(tc.rows, res.Rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			// The next run compares with the schema of this one.
			var p posJSON
			if err := json.Unmarshal(res.Pos, &p); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range p.Schema {
				names = append(names, f.N+" "+f.T)
			}
			if got := strings.Join(names, ", "); got != tc.want {
				t.Errorf("position schema %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSourceFullResumesWithinRun(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10))`)
	db.exec(`CREATE TABLE nokey (name VARCHAR(10), n INT)`)
	for i := 1; i <= 25; i++ {
		db.exec(`INSERT INTO t VALUES (?, ?)`, i*10, fmt.Sprint("n", i))
		db.exec(`INSERT INTO nokey VALUES (?, ?)`, fmt.Sprint("n", i), i*10)
	}
	tests := []struct{ name, yaml string }{
		{"table by primary key", "table: t"},
		{"table by key", "table: t\nkey: name"},
		{"query without key, by row count", "query: SELECT n AS id, name FROM nokey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := kit.Source(t, db.yaml("batch_rows: 4\n"+tc.yaml))
			env := sqlkittest.Env(t)
			first, rest := sqlkittest.ReadResumed(t, s, env, 3)
			got := seen{}
			got.add(first.Rows)
			got.add(rest.Rows)
			if len(first.Rows) != 12 || len(got) != 25 || len(got.twice()) > 0 {
				t.Errorf("read %d then %d rows, %d distinct; want 12 then 13, 25 distinct", len(first.Rows), len(rest.Rows), len(got))
			}
		})
	}
}

func TestSourceRefusesPositionOfOtherOrdering(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT)`)
	db.exec(`INSERT INTO t VALUES (1, 1, 1)`)
	s := kit.Source(t, db.yaml("table: t\nmode: incremental\ncursor: a\nkey: id"))
	_, pos := sqlkittest.IncrementalRun(t, s, sqlkittest.Env(t), nil)
	other := kit.Source(t, db.yaml("table: t\nmode: incremental\ncursor: b\nkey: id"))
	tests := []struct {
		Name string
		Pos  record.Position
		Want string
	}{
		{"other cursor", pos, "ordering columns (a, id)"},
		{"not json", record.Position("garbage"), "not a position of this source"},
		{"newer version", record.Position(`{"v":2}`), "version 2"},
	}
	sqlkittest.RefusedPositions(t, other, sqlkittest.Env(t), connector.Task{Key: "t"}, tests)
}

func TestPositionValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		col  column
		v    any
		want any // as it binds back
	}{
		{"int", column{kind: kInt}, int64(-5), int64(-5)},
		{"unsigned", column{kind: kUint}, uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"float", column{kind: kFloat}, 0.1, 0.1},
		{"tiny float", column{kind: kFloat}, 5e-324, 5e-324},
		{"decimal", column{kind: kDecimal}, []byte("-12.3400000000000000000001"), []byte("-12.3400000000000000000001")},
		{"text", column{kind: kString}, []byte("2024-01-01 été"), []byte("2024-01-01 été")},
		{"text not UTF-8", column{kind: kString}, []byte("a\xffb"), []byte("a\xffb")},
		{"bytes", column{kind: kBytes}, []byte{0, 1, 255}, []byte{0, 1, 255}},
		{"empty bytes", column{kind: kBytes}, []byte{}, []byte{}},
		{"timestamp", column{kind: kDateTime}, time.Date(2024, 3, 1, 10, 0, 0, 123456000, time.UTC), time.Date(2024, 3, 1, 10, 0, 0, 123456000, time.UTC)},
		{"null", column{kind: kInt}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(encodeVal(tc.col, tc.v))
			if err != nil {
				t.Fatal(err)
			}
			var pv posVal
			if err := json.Unmarshal(b, &pv); err != nil {
				t.Fatal(err)
			}
			got, err := pv.value()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, bytesEqual); diff != "" {
				t.Errorf("round trip of %s (-want +got):\n%s", b, diff)
			}
			if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", tc.want) {
				t.Errorf("type %T, want %T", got, tc.want)
			}
		})
	}
}

// handlerReads runs q on the test's connection and returns how many index
// entries the server read for it (Handler_read_next).
func handlerReads(t *testing.T, db *testDB, q string, args ...any) int {
	t.Helper()
	db.exec("FLUSH STATUS")
	rows, err := db.admin.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	var name string
	var reads int
	if err := db.admin.QueryRow("SHOW SESSION STATUS LIKE 'Handler_read_next'").Scan(&name, &reads); err != nil {
		t.Fatal(err)
	}
	return reads
}

// The keyset condition must be an index range: a batch deep inside a long
// tie reads about one batch of index entries, not everything before it.
func TestKeysetConditionIsAnIndexRange(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE ev (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, v VARCHAR(20), KEY ev_cursor (updated_at, id))`)
	insertSeq(t, db, 1, 20001, "2024-03-01 10:00:00.5")
	db.exec(`ANALYZE TABLE ev`)
	cols := []column{{name: "updated_at", kind: kDateTime}, {name: "id", kind: kInt}}
	last := []any{sqlkittest.MustTime(t, "2024-03-01 10:00:00.5"), int64(15000)}
	where, args := keysetWhere(cols, last)
	if want := "(s.`updated_at` > ?) OR (s.`updated_at` = ? AND s.`id` > ?)"; where != want {
		t.Errorf("where %q, want %q", where, want)
	}
	q := "SELECT s.`id` FROM `ev` AS s WHERE " + where + " ORDER BY s.`updated_at`, s.`id` LIMIT 100"
	if n := handlerReads(t, db, q, args...); n > 200 {
		t.Errorf("the keyset query read %d index entries for a batch of 100", n)
	}
	// Why not a row value: MariaDB reads the index from its start.
	rowValue := "SELECT s.`id` FROM `ev` AS s WHERE (s.`updated_at`, s.`id`) > (?, ?) ORDER BY s.`updated_at`, s.`id` LIMIT 100"
	if n := handlerReads(t, db, rowValue, last...); n < 15000 {
		t.Logf("row-value comparison now reads %d entries: MariaDB may use it as a range", n)
	}
	plan := db.rows("EXPLAIN " + strings.Replace(strings.Replace(q, "?", "'2024-03-01 10:00:00.5'", 2), "?", "15000", 1))
	if got := fmt.Sprint(plan[0]); !strings.Contains(got, "range") || strings.Contains(got, "filesort") {
		t.Errorf("plan %v: want a range on ev_cursor without a filesort", got)
	}
}

func TestSourceNextHonoursCancelledContext(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE t (id INT PRIMARY KEY)`)
	db.exec(`INSERT INTO t VALUES (1), (2)`)
	for _, yaml := range []string{"table: t", "query: SELECT id FROM t"} {
		t.Run(yaml, func(t *testing.T) {
			r, err := kit.Source(t, db.yaml("batch_rows: 1\n"+yaml)).Open(context.Background(), sqlkittest.Env(t), connector.Task{Key: "t"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Next with a cancelled context: %v", err)
			}
		})
	}
}

func TestSourceBatchLimits(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE t (id INT PRIMARY KEY, body TEXT)`)
	for i := 1; i <= 10; i++ {
		body := strings.Repeat("x", 100)
		if i == 4 {
			body = strings.Repeat("y", 5000)
		}
		db.exec(`INSERT INTO t VALUES (?, ?)`, i, body)
	}
	env := sqlkittest.Env(t)
	env.Limits = record.Limits{BatchRows: 100, BatchBytes: 300, MaxRecordBytes: 1000}
	res := sqlkittest.ReadAll(t, kit.Source(t, db.yaml("table: t")), env, connector.Task{Key: "t"}, nil)
	if len(res.Rows) != 9 || len(res.Rejects) != 1 || res.Rejects[0].Line != 4 || !strings.Contains(res.Rejects[0].Err, "exceeds the limit of 1000 bytes") {
		t.Errorf("rows %d, rejects %+v: want 9 rows and row 4 rejected as too big", len(res.Rows), res.Rejects)
	}
	if res.Batches < 4 {
		t.Errorf("%d batches: the byte limit of a batch was not applied", res.Batches)
	}
}
