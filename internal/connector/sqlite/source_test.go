package sqlite

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

func TestSourceConfigErrors(t *testing.T) {
	tests := []struct{ Name, YAML, Want string }{
		{"neither table nor query", "path: a.db", "one of table and query"},
		{"both table and query", "path: a.db\ntable: t\nquery: select 1", "exclude each other"},
		{"no path", "table: t", "path must name"},
		{"incremental without cursor", "path: a.db\ntable: t\nmode: incremental\nkey: id", "needs a cursor"},
		{"incremental without key", "path: a.db\ntable: t\nmode: incremental\ncursor: ts", "needs a key"},
		{"cursor in full mode", "path: a.db\ntable: t\ncursor: ts", "only used in mode incremental"},
		{"unknown mode", "path: a.db\ntable: t\nmode: sometimes", `mode "sometimes"`},
		{"negative batch_rows", "path: a.db\ntable: t\nbatch_rows: -1", "batch_rows must be positive"},
		{"repeated key", "path: a.db\ntable: t\nmode: incremental\ncursor: ts\nkey: [id, id]", `"id" appears twice`},
	}
	kit.ConfigErrors(t, connector.KindSource, tests, func(t *testing.T, pe *connector.PosError) {
		if pe.Pos.Line == 0 {
			t.Errorf("error %q has no position", pe.Msg)
		}
	})
}

// typesTable creates a table with one column of each declared type.
func typesTable(t *testing.T, path string) {
	db := testDB(t, path)
	mustExec(t, db, `CREATE TABLE things (
		id INTEGER PRIMARY KEY, price NUMERIC(10,2), weight REAL, name VARCHAR(20), data BLOB,
		active BOOLEAN, seen_at DATETIME, born DATE, attrs JSON, note)`)
	mustExec(t, db, `INSERT INTO things VALUES
		(1, '12.50', 1.5, 'ana', x'0102', 1, '2024-01-02 03:04:05.123456789+02:00', '2000-02-29', '{"a":[1,2]}', 7),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(3, 3, 2, 'bo', x'', 0, '2024-01-02T03:04:05Z', '1999-12-31', '"s"', 'x')`)
}

func TestSourceFullDerivesSchemaAndConverts(t *testing.T) {
	env := sqlkittest.Env(t)
	typesTable(t, dbPath(env, "db.sqlite"))
	s := kit.Source(t, "path: db.sqlite\ntable: things")
	if _, ok := s.(connector.Schemer); ok {
		t.Error("a source without a declared schema implements Schemer")
	}
	tasks, err := s.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]connector.Task{{Key: "things@run1"}}, tasks); diff != "" {
		t.Fatalf("tasks (-want +got):\n%s", diff)
	}
	r, err := s.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSchema := record.MustSchema(
		record.Field{Name: "id", Type: record.Int}, record.Field{Name: "price", Type: record.Decimal},
		record.Field{Name: "weight", Type: record.Float}, record.Field{Name: "name", Type: record.String},
		record.Field{Name: "data", Type: record.Bytes}, record.Field{Name: "active", Type: record.Bool},
		record.Field{Name: "seen_at", Type: record.Timestamp}, record.Field{Name: "born", Type: record.Date},
		record.Field{Name: "attrs", Type: record.JSON}, record.Field{Name: "note", Type: record.Any},
	)
	if !r.Schema().Equal(wantSchema) {
		t.Errorf("schema %s, want %s", r.Schema(), wantSchema)
	}
	res := sqlkittest.Drain(t, r, -1)
	r.Close()
	born, _ := record.ParseDate("2000-02-29")
	born2, _ := record.ParseDate("1999-12-31")
	want := []record.Row{
		{int64(1), record.MustDec("12.5"), 1.5, "ana", []byte{1, 2}, true,
			time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 2*3600)), born,
			map[string]any{"a": []any{json.Number("1"), json.Number("2")}}, int64(7)},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(3), record.MustDec("3"), 2.0, "bo", []byte{}, false, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), born2, "s", "x"},
	}
	// NUMERIC affinity stores '12.50' as the REAL 12.5.
	if diff := cmp.Diff(want, res.Rows, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, res.Lines); diff != "" {
		t.Errorf("lines are the rowids (-want +got):\n%s", diff)
	}
	ts := res.Rows[0][6].(time.Time)
	if _, off := ts.Zone(); off != 7200 || ts.Nanosecond() != 123456789 {
		t.Errorf("timestamp %v lost its zone or precision", ts)
	}
}

func TestSourceRejectsValueThatDoesNotConvert(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, at TIMESTAMP)`)
	mustExec(t, db, `INSERT INTO t VALUES (1, 5, '2024-01-01'), (2, 'many', '2024-01-01'), (3, 6, 'yesterday'), (4, 7, NULL)`)
	s := kit.Source(t, "path: db.sqlite\ntable: t")
	res := sqlkittest.ReadAll(t, s, env, connector.Task{Key: "t"}, nil)
	if got := len(res.Rows); got != 2 {
		t.Errorf("%d rows, want 2", got)
	}
	type rej struct {
		Line             int64
		Step, Field, Raw string
	}
	var got []rej
	for _, r := range res.Rejects {
		got = append(got, rej{Line: r.Line, Step: r.Step, Field: r.Field, Raw: string(r.Raw)})
		if !strings.Contains(r.Err, r.Field) {
			t.Errorf("reject reason %q does not name the field %q", r.Err, r.Field)
		}
	}
	want := []rej{
		{Line: 2, Step: "source", Field: "qty", Raw: `{"id":2,"qty":"many","at":"2024-01-01"}`},
		{Line: 3, Step: "source", Field: "at", Raw: `{"id":3,"qty":6,"at":"yesterday"}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if !strings.Contains(res.Rejects[0].Err, `"many"`) {
		t.Errorf("reject %q does not name the value", res.Rejects[0].Err)
	}
}

func TestSourceQuery(t *testing.T) {
	env := sqlkittest.Env(t)
	typesTable(t, dbPath(env, "db.sqlite"))
	tests := []struct {
		Name, YAML, Schema string
		Want               []record.Row
	}{
		{
			Name:   "declared types pass through the subquery, expressions are any",
			YAML:   "query: SELECT id, seen_at, id * 2 AS twice FROM things WHERE id <> 2;",
			Schema: "id int, seen_at timestamp, twice any",
			Want: []record.Row{
				{int64(1), time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 2*3600)), int64(2)},
				{int64(3), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), int64(6)},
			},
		},
		{
			Name:   "declared schema converts expressions",
			YAML:   "query: SELECT id, 'x' || id AS label, price * 2 AS doubled FROM things WHERE id <> 2\nschema: {id: string, doubled: decimal}",
			Schema: "id string, doubled decimal",
			Want:   []record.Row{{"1", record.MustDec("25")}, {"3", record.MustDec("6")}},
		},
		{
			Name:   "keyed full read",
			YAML:   "query: SELECT id, name FROM things\nkey: name\nbatch_rows: 1",
			Schema: "id int, name string",
			Want:   []record.Row{{int64(2), nil}, {int64(1), "ana"}, {int64(3), "bo"}},
		},
	}
	kit.Reads(t, env, connector.Task{Key: "query"}, func(yaml string) string { return "path: db.sqlite\n" + yaml }, tests)
}

func TestSourceDeclaredSchemaIsKnownBeforeReading(t *testing.T) {
	s := kit.Source(t, "path: missing.db\ntable: t\nschema: {id: int, name: string}")
	sc, ok := s.(connector.Schemer)
	if !ok {
		t.Fatal("a source with a declared schema does not implement Schemer")
	}
	if got := sc.Schema().String(); got != "id int, name string" {
		t.Errorf("schema %q", got)
	}
}

func TestSourceMissingDatabaseIsUnavailable(t *testing.T) {
	env := sqlkittest.Env(t)
	s := kit.Source(t, "path: nothing-here.db\ntable: t")
	if _, err := s.Plan(context.Background(), env); !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Plan: %v, want ErrUnavailable", err)
	}
	if _, err := s.Open(context.Background(), env, connector.Task{Key: "t"}, nil); !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
}

func TestSourceMissingTableIsAnError(t *testing.T) {
	env := sqlkittest.Env(t)
	mustExec(t, testDB(t, dbPath(env, "db.sqlite")), "CREATE TABLE other (x)")
	s := kit.Source(t, "path: db.sqlite\ntable: orders")
	_, err := s.Open(context.Background(), env, connector.Task{Key: "orders"}, nil)
	if err == nil || !strings.Contains(err.Error(), `table "orders"`) || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("Open: %v, want an error naming the missing table", err)
	}
}

// seen checks that every id arrives exactly once over all runs.
type seen map[int64]int

func (s seen) add(t *testing.T, rows []record.Row) {
	t.Helper()
	for _, r := range rows {
		id := r[0].(int64)
		if s[id] > 0 {
			t.Errorf("id %d read twice", id)
		}
		s[id]++
	}
}

func TestSourceIncrementalTiesAcrossBatches(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE ev (id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL, v TEXT)`)
	mustExec(t, db, `CREATE INDEX ev_cursor ON ev (updated_at, id)`)
	insert := func(from, to int, ts string) {
		t.Helper()
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			if _, err := tx.Exec(`INSERT INTO ev VALUES (?, ?, ?)`, i, ts, fmt.Sprint("v", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	const ts = "2024-03-01 10:00:00.123456"
	insert(1, 10001, ts)
	s := kit.Source(t, "path: db.sqlite\ntable: ev\nmode: incremental\ncursor: updated_at\nkey: id\nbatch_rows: 100\nschema: {id: int, updated_at: timestamp}")
	got := seen{}

	// Run 1 stops after 37 batches (a crash); run 2 resumes from there.
	tasks, _ := s.Plan(context.Background(), env)
	r, err := s.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	part := sqlkittest.Drain(t, r, 37)
	r.Close()
	if len(part.Rows) != 3700 {
		t.Fatalf("first 37 batches hold %d rows", len(part.Rows))
	}
	got.add(t, part.Rows)
	rows, pos := sqlkittest.IncrementalRun(t, s, env, part.Pos)
	if len(rows) != 6300 {
		t.Errorf("resumed run read %d rows, want the remaining 6300", len(rows))
	}
	got.add(t, rows)

	// Rows with the same cursor value but higher keys, and later ones.
	insert(10001, 10251, ts)
	insert(10251, 10400, "2024-03-01 10:00:00.123457")
	rows, pos = sqlkittest.IncrementalRun(t, s, env, pos)
	if len(rows) != 399 {
		t.Errorf("run 3 read %d rows, want 399", len(rows))
	}
	got.add(t, rows)
	rows, _ = sqlkittest.IncrementalRun(t, s, env, pos)
	if len(rows) != 0 {
		t.Errorf("run 4 read %d rows with nothing new", len(rows))
	}
	if len(got) != 10399 {
		t.Errorf("%d distinct rows read, want 10399", len(got))
	}
	want := sqlkittest.MustTime(t, ts)
	for _, r := range part.Rows[:5] {
		if !r[1].(time.Time).Equal(want) {
			t.Errorf("timestamp %v, want %v", r[1], want)
		}
	}
}

func TestSourceIncrementalFractionalTimestamps(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE ev (id INTEGER PRIMARY KEY, changed DATETIME)`)
	runs := [][]string{
		{"2024-03-01 10:00:00", "2024-03-01 10:00:00.1", "2024-03-01 10:00:00.123", "2024-03-01 10:00:00.123456",
			"2024-03-01 10:00:00.123456789", "2024-03-01 10:00:00.123456789", "2024-03-01 10:00:00.12345679"},
		{"2024-03-01 10:00:00.12345679", "2024-03-01 10:00:00.2", "2024-03-01 10:00:00.200000001", "2024-03-01 10:00:01"},
		{"2024-03-01 10:00:01.000001", "2024-03-01 10:00:01.000001", "2024-03-01 10:00:01.5"},
	}
	s := kit.Source(t, "path: db.sqlite\ntable: ev\nmode: incremental\ncursor: changed\nkey: id\nbatch_rows: 2")
	got := seen{}
	id := int64(0)
	want := map[int64]time.Time{}
	var pos record.Position
	for i, texts := range runs {
		for _, ts := range texts {
			id++
			mustExec(t, db, `INSERT INTO ev VALUES (?, ?)`, id, ts)
			want[id] = sqlkittest.MustTime(t, ts)
		}
		var rows []record.Row
		rows, pos = sqlkittest.IncrementalRun(t, s, env, pos)
		if len(rows) != len(texts) {
			t.Errorf("run %d read %d rows, want %d", i+1, len(rows), len(texts))
		}
		got.add(t, rows)
		for _, r := range rows {
			if ts := r[1].(time.Time); !ts.Equal(want[r[0].(int64)]) {
				t.Errorf("id %d: timestamp %s, want %s", r[0], ts.Format(time.RFC3339Nano), want[r[0].(int64)].Format(time.RFC3339Nano))
			}
		}
	}
	if int64(len(got)) != id {
		t.Errorf("%d rows read, want %d", len(got), id)
	}
	var p posJSON
	if err := json.Unmarshal(pos, &p); err != nil {
		t.Fatal(err)
	}
	if p.Vals[0].S == nil || *p.Vals[0].S != "2024-03-01 10:00:01.5" {
		t.Errorf("position %s does not hold the raw stored cursor text", pos)
	}
}

func TestSourceIncrementalNullCursor(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE ev (id INTEGER PRIMARY KEY, seq INTEGER)`)
	mustExec(t, db, `INSERT INTO ev VALUES (1, NULL), (2, NULL), (3, NULL), (4, 1), (5, 2)`)
	s := kit.Source(t, "path: db.sqlite\ntable: ev\nmode: incremental\ncursor: seq\nkey: id\nbatch_rows: 2")
	got := seen{}
	rows, pos := sqlkittest.IncrementalRun(t, s, env, nil)
	got.add(t, rows)
	mustExec(t, db, `INSERT INTO ev VALUES (6, 3), (7, 3)`)
	rows, _ = sqlkittest.IncrementalRun(t, s, env, pos)
	got.add(t, rows)
	if len(got) != 7 {
		t.Errorf("read ids %v, want 1..7 once each", got)
	}
}

func TestSourceFullResumesWithinRun(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)`)
	mustExec(t, db, `CREATE TABLE nokey (name TEXT, n INTEGER) STRICT`)
	for i := 1; i <= 25; i++ {
		mustExec(t, db, `INSERT INTO t VALUES (?, ?)`, i*10, fmt.Sprint("n", i))
		mustExec(t, db, `INSERT INTO nokey VALUES (?, ?)`, fmt.Sprint("n", i), i*10)
	}
	tests := []struct{ name, yaml string }{
		{"table by rowid", "table: t"},
		{"table by key", "table: t\nkey: name"},
		{"query without key, by row count", "query: SELECT n AS id, name FROM nokey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := kit.Source(t, "path: db.sqlite\nbatch_rows: 4\n"+tc.yaml)
			first, rest := sqlkittest.ReadResumed(t, s, env, 3)
			got := seen{}
			got.add(t, first.Rows)
			got.add(t, rest.Rows)
			if len(first.Rows) != 12 || len(got) != 25 {
				t.Errorf("read %d then %d rows, %d distinct; want 12 then 13, 25 distinct", len(first.Rows), len(rest.Rows), len(got))
			}
		})
	}
}

func TestSourceRefusesPositionOfOtherOrdering(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)`)
	mustExec(t, db, `INSERT INTO t VALUES (1, 1, 1)`)
	s := kit.Source(t, "path: db.sqlite\ntable: t\nmode: incremental\ncursor: a\nkey: id")
	_, pos := sqlkittest.IncrementalRun(t, s, env, nil)
	other := kit.Source(t, "path: db.sqlite\ntable: t\nmode: incremental\ncursor: b\nkey: id")
	tests := []struct {
		Name string
		Pos  record.Position
		Want string
	}{
		{"other cursor", pos, "ordering columns (a, id)"},
		{"not json", record.Position("garbage"), "not a position of this source"},
		{"newer version", record.Position(`{"v":2}`), "version 2"},
	}
	sqlkittest.RefusedPositions(t, other, env, connector.Task{Key: "t"}, tests)
}

func TestPositionRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		vals []any
	}{
		{"integers", []any{int64(-5), int64(1 << 62)}},
		{"floats", []any{0.1, math.Copysign(0, -1), 1e308, math.Inf(-1), 5e-324}},
		{"text", []any{"2024-01-01 10:00:00.123456789", ""}},
		{"text that is not UTF-8", []any{"a\xffb"}},
		{"blobs", []any{[]byte{0, 1, 255}, []byte{}}},
		{"nulls", []any{nil, int64(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cols := make([]string, len(tc.vals))
			for i := range cols {
				cols[i] = fmt.Sprint("c", i)
			}
			pos, err := encodeKeyset(cols, tc.vals)
			if err != nil {
				t.Fatal(err)
			}
			r := &reader{order: cols}
			if err := r.decodePos(pos); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.vals, r.Last); diff != "" {
				t.Errorf("round trip of %s (-want +got):\n%s", pos, diff)
			}
			for i, v := range r.Last {
				if fmt.Sprintf("%T", v) != fmt.Sprintf("%T", tc.vals[i]) {
					t.Errorf("value %d: type %T, want %T", i, v, tc.vals[i])
				}
			}
		})
	}
}

func TestTypeFromDecl(t *testing.T) {
	tests := []struct {
		decl string
		want record.Type
	}{
		{"INTEGER", record.Int}, {"bigint", record.Int}, {"UNSIGNED BIG INT", record.Int},
		{"REAL", record.Float}, {"double precision", record.Float}, {"FLOAT", record.Float},
		{"TEXT", record.String}, {"VARCHAR(255)", record.String}, {"NCHAR(3)", record.String},
		{"NUMERIC", record.Decimal}, {"DECIMAL(10, 2)", record.Decimal}, {declDecimal, record.Decimal},
		{"BLOB", record.Bytes}, {"BOOLEAN", record.Bool}, {"DATETIME", record.Timestamp},
		{"TIMESTAMP", record.Timestamp}, {"DATE", record.Date}, {"JSON", record.JSON}, {declJSON, record.JSON},
		{"", record.Any}, {"MEDIUM INTEGER", record.Int}, {"LONGTEXT", record.String}, {"MONEY", record.String},
	}
	for _, tc := range tests {
		t.Run(tc.decl, func(t *testing.T) {
			if got := typeFromDecl(tc.decl); got != tc.want {
				t.Errorf("typeFromDecl(%q) = %s, want %s", tc.decl, got, tc.want)
			}
		})
	}
	for _, typ := range []record.Type{record.Int, record.Float, record.Decimal, record.Bool, record.Timestamp, record.Date, record.Bytes, record.JSON, record.String} {
		if got := typeFromDecl(declFromType(typ)); got != typ {
			t.Errorf("%s -> %q -> %s", typ, declFromType(typ), got)
		}
	}
}

func TestKeysetLevelsUseTheIndex(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE ev (id INTEGER PRIMARY KEY, updated_at TEXT, v TEXT)`)
	mustExec(t, db, `CREATE INDEX ev_cursor ON ev (updated_at, id)`)
	cols := []string{"updated_at", "id"}
	tests := []struct {
		name  string
		last  []any
		level int
		want  string
	}{
		{"tie on the cursor", []any{"t", int64(5)}, 1, "(updated_at=? AND id>?)"},
		{"after the cursor", []any{"t", int64(5)}, 0, "(updated_at>?)"},
		{"null cursor", []any{nil, int64(5)}, 1, "(updated_at=? AND id>?)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			where, args := keysetLevel(cols, tc.last, tc.level)
			rows, err := db.Query("EXPLAIN QUERY PLAN SELECT s.v FROM ev AS s WHERE "+where+" ORDER BY s.updated_at, s.id LIMIT 10", args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			got := strings.Join(plan, "; ")
			if !strings.Contains(got, "SEARCH s USING INDEX ev_cursor "+tc.want) || strings.Contains(got, "TEMP B-TREE") {
				t.Errorf("plan %q for %s: want an index range %s and no sort", got, where, tc.want)
			}
		})
	}
}

func TestSourceBatchLimits(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)`)
	for i := 1; i <= 10; i++ {
		body := strings.Repeat("x", 100)
		if i == 4 {
			body = strings.Repeat("y", 5000)
		}
		mustExec(t, db, `INSERT INTO t VALUES (?, ?)`, i, body)
	}
	env.Limits = record.Limits{BatchRows: 100, BatchBytes: 300, MaxRecordBytes: 1000}
	s := kit.Source(t, "path: db.sqlite\ntable: t")
	r, err := s.Open(context.Background(), env, connector.Task{Key: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := sqlkittest.Drain(t, r, -1)
	if len(res.Rows) != 9 || len(res.Rejects) != 1 || res.Rejects[0].Line != 4 || !strings.Contains(res.Rejects[0].Err, "exceeds the limit of 1000 bytes") {
		t.Errorf("rows %d, rejects %+v: want 9 rows and row 4 rejected as too big", len(res.Rows), res.Rejects)
	}
	if res.Batches < 4 {
		t.Errorf("%d batches: the byte limit of a batch was not applied", res.Batches)
	}
}

func TestSourceNextHonoursCancelledContext(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "db.sqlite"))
	mustExec(t, db, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO t VALUES (1), (2)`)
	for _, yaml := range []string{"table: t", "query: SELECT id FROM t"} {
		t.Run(yaml, func(t *testing.T) {
			r, err := kit.Source(t, "path: db.sqlite\nbatch_rows: 1\n"+yaml).Open(context.Background(), env, connector.Task{Key: "t"}, nil)
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
