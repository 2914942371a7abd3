package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestSinkConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field, want string
	}{
		{"no table", "dsn: " + testDSN, "table", "table must name"},
		{"bad dsn", "dsn: 'host=127.0.0.1 port=notaport password=secret-pw'\ntable: t", "dsn", "dsn:"},
		{"upsert without key", "dsn: " + testDSN + "\ntable: t\nmode: upsert", "mode", "needs a key"},
		{"unknown mode", "dsn: " + testDSN + "\ntable: t\nmode: merge", "mode", `mode "merge"`},
		{"reserved table", "dsn: " + testDSN + "\ntable: backbone_checkpoints", "table", "reserved"},
		{"reserved suffix", "dsn: " + testDSN + "\ntable: t__backbone_new", "table", "reserved"},
		{"key without upsert", "dsn: " + testDSN + "\ntable: t\nkey: id", "key", "only used in mode upsert"},
		{"replace name too long", "dsn: " + testDSN + "\ntable: " + strings.Repeat("x", 50) + "\nmode: replace", "table", "at most 49 bytes"},
	}
	e, _ := testRegistry().Get(connector.KindSink, "postgres")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params(t, tc.yaml)
			_, err := e.Sink(p)
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
				t.Fatalf("error %v, want a *PosError containing %q", err, tc.want)
			}
			if pe.Pos != p.FieldPos(tc.field) {
				t.Errorf("error at %v, want at field %s", pe.Pos, tc.field)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

var allTypes = record.MustSchema(
	record.Field{Name: "id", Type: record.Int}, record.Field{Name: "price", Type: record.Decimal},
	record.Field{Name: "weight", Type: record.Float}, record.Field{Name: "name", Type: record.String},
	record.Field{Name: "data", Type: record.Bytes}, record.Field{Name: "active", Type: record.Bool},
	record.Field{Name: "at", Type: record.Timestamp}, record.Field{Name: "day", Type: record.Date},
	record.Field{Name: "attrs", Type: record.JSON},
)

func allTypesRows() []record.Row {
	day, _ := record.ParseDate("2024-02-29")
	return []record.Row{
		{int64(1), record.MustDec("12.50"), 1.25, "tab\tnew\nline\\", []byte{0, 1, '\\', '\n'}, true,
			time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.FixedZone("", -5*3600)), day,
			map[string]any{"a": []any{int64(1), "x"}}},
		{int64(2), record.MustDec("-123456789012345678901234567890.000000001"), 0.1, "", []byte{}, false,
			time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), record.LocalDate(-800000), "just a string"},
		{int64(3), nil, nil, nil, nil, nil, nil, nil, nil},
	}
}

// wantAllTypes is allTypesRows as PostgreSQL prints them.
var wantAllTypes = [][]any{
	{"1", "12.50", "1.25", "tab\tnew\nline\\", `\x00015c0a`, "t", "2024-01-02 08:04:05.12+00", "2024-02-29", `{"a": [1, "x"]}`},
	{"2", "-123456789012345678901234567890.000000001", "0.1", "", `\x`, "f", "0044-03-15 12:00:00+00 BC", "0222-09-04 BC", `"just a string"`},
	{"3", nil, nil, nil, nil, nil, nil, nil, nil},
}

func TestSinkCreateAppendStoresExactValues(t *testing.T) {
	for _, format := range []string{"binary", "text"} {
		t.Run(format, func(t *testing.T) {
			p := newPG(t)
			env := testEnv(t)
			schema := allTypes
			if format == "text" {
				// A date written to a text column has no binary writing: the
				// COPY goes as text.
				p.exec("CREATE TABLE things (id bigint, price numeric, weight double precision, name text, " +
					"data bytea, active boolean, at timestamptz, day text, attrs jsonb)")
			}
			w := openWriter(t, env, buildSink(t, p.yaml("table: things\ncreate: true")), schema)
			if got := w.(*writer).binary; got != (format == "binary") {
				t.Fatalf("binary COPY %v, want %v", got, format == "binary")
			}
			if diff := cmp.Diff(connector.WriterInfo{Transactional: true, StageBatches: 32}, w.Info()); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			write(t, w, schema, allTypesRows())
			commit(t, w)
			got := p.rows("SELECT id, price, weight, name, data, active, at, day, attrs FROM things ORDER BY id")
			if diff := cmp.Diff(wantAllTypes, got); diff != "" {
				t.Errorf("stored values (-want +got):\n%s", diff)
			}
			if format == "binary" {
				types := p.rows(`SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'things'::regclass AND attnum > 0 ORDER BY attnum`)
				want := [][]any{{"id", "bigint"}, {"price", "numeric"}, {"weight", "double precision"}, {"name", "text"}, {"data", "bytea"},
					{"active", "boolean"}, {"at", "timestamp with time zone"}, {"day", "date"}, {"attrs", "jsonb"}}
				if diff := cmp.Diff(want, types); diff != "" {
					t.Errorf("created columns (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSinkThenSourceRoundTrip(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	w := openWriter(t, env, buildSink(t, p.yaml("table: things\ncreate: true")), allTypes)
	rows := allTypesRows()
	write(t, w, allTypes, rows)
	commit(t, w)
	res := readAll(t, buildSource(t, p.yaml("table: things\nkey: id")), env, connector.Task{Key: "things@run1"}, nil)
	// Timestamps come back in UTC; JSON decoded with json.Number.
	rows[0][6] = rows[0][6].(time.Time).UTC()
	rows[0][8] = map[string]any{"a": []any{json.Number("1"), "x"}}
	if diff := cmp.Diff(rows, res.Rows, cmp.Comparer(func(a, b record.Dec) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestSinkWritesToExistingColumnTypes(t *testing.T) {
	p := newPG(t)
	p.exec(`CREATE TABLE t (id integer PRIMARY KEY, small smallint, f4 real, code char(4), wall timestamp, d date, u uuid, j json, n numeric(6,2), x bigint DEFAULT 7)`)
	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "small", Type: record.Int},
		record.Field{Name: "f4", Type: record.Float}, record.Field{Name: "code", Type: record.String},
		record.Field{Name: "wall", Type: record.Timestamp}, record.Field{Name: "d", Type: record.Timestamp},
		record.Field{Name: "u", Type: record.String}, record.Field{Name: "j", Type: record.String}, record.Field{Name: "n", Type: record.Int})
	env := testEnv(t)
	env.Location = time.FixedZone("", 2*3600)
	w := openWriter(t, env, buildSink(t, p.yaml("table: t")), schema)
	if !w.(*writer).binary {
		t.Error("every column has a binary writing, but the COPY is text")
	}
	at := time.Date(2024, 1, 1, 23, 30, 0, 999, time.UTC) // 01:30 the next day at +02; 999ns round to 1µs
	write(t, w, schema, []record.Row{{int64(1), int64(-2), 1.5, "ab", at, at, "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}", `{"k": 1}`, int64(12)}})
	n, refused := writeJudged(t, w, &record.Batch{Schema: schema, Rows: []record.Row{
		{int64(2), int64(40000), nil, nil, nil, nil, nil, nil, nil},
		{int64(3), nil, nil, nil, nil, nil, "not-a-uuid", nil, nil},
		{int64(4), nil, nil, nil, nil, nil, nil, "{not json", nil},
		{int64(5), nil, nil, "toolong", nil, nil, nil, nil, nil},
		{int64(6), nil, nil, nil, nil, nil, nil, nil, int64(123456)},
		{int64(7), nil, nil, nil, nil, nil, nil, nil, nil},
	}})
	want := []string{"out of range for type smallint", "invalid input syntax for type uuid", "invalid input syntax for type json",
		"value too long for type character(4)", "numeric field overflow"}
	if n != 1 || len(refused) != len(want) {
		t.Fatalf("Write: n=%d refused %v, want rows 0-4 refused", n, refused)
	}
	for i, why := range want {
		if !strings.Contains(refused[i], why) {
			t.Errorf("refused row %d: %q, want %q", i, refused[i], why)
		}
	}
	commit(t, w)
	got := p.rows("SELECT id, small, f4, code, wall, d, u, j, n, x FROM t ORDER BY id")
	wantRows := [][]any{
		{"1", "-2", "1.5", "ab  ", "2024-01-02 01:30:00.000001", "2024-01-02", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"k": 1}`, "12.00", "7"},
		{"7", nil, nil, nil, nil, nil, nil, nil, nil, "7"},
	}
	if diff := cmp.Diff(wantRows, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestSinkMissingTableAndColumns(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE few (id bigint, name text)")
	tests := []struct {
		name, yaml, want string
	}{
		{"missing table", "table: nope", `.nope": table does not exist (set create: true`},
		{"missing columns", "table: few", "no column for field(s) price, weight"},
		{"upsert without unique key", "table: few\nmode: upsert\nkey: id", "PRIMARY KEY or a UNIQUE index on exactly (id)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildSink(t, p.yaml(tc.yaml)).Open(context.Background(), testEnv(t), allTypes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want %q", err, tc.want)
			}
		})
	}
}

var kv = record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "n", Type: record.Int}, record.Field{Name: "v", Type: record.String})

func TestSinkUpsert(t *testing.T) {
	p := newPG(t)
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv\nmode: upsert\nkey: [k, n]\ncreate: true")), kv)
	write(t, w, kv, []record.Row{{"a", int64(1), "one"}, {"b", int64(1), "two"}})
	commit(t, w)
	// The same key twice in a batch: the last row wins.
	write(t, w, kv, []record.Row{{"a", int64(1), "uno"}, {"a", int64(2), "new"}, {"a", int64(2), "newer"}, {"a", int64(1), "eins"}})
	commit(t, w)
	want := [][]any{{"a", "1", "eins"}, {"a", "2", "newer"}, {"b", "1", "two"}}
	if diff := cmp.Diff(want, p.rows("SELECT k, n, v FROM kv ORDER BY k, n")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	// A NULL key is refused without asking the database.
	n, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{nil, int64(1), "x"}, {"c", int64(1), "y"}}})
	var be *connector.BatchError
	if n != 1 || !errors.As(err, &be) || len(be.Rows) != 1 || be.Rows[0].Index != 0 || !strings.Contains(be.Rows[0].Err.Error(), `key field "k" is null`) {
		t.Errorf("Write with a NULL key: n=%d err=%v, want row 0 refused", n, err)
	}
	commit(t, w)
	if got := p.one("SELECT count(*) FROM kv"); got != "4" {
		t.Errorf("%v rows, want 4", got)
	}
}

func TestSinkUpsertOnlyKeyColumns(t *testing.T) {
	p := newPG(t)
	keys := record.MustSchema(record.Field{Name: "k", Type: record.String})
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: ks\nmode: upsert\nkey: k\ncreate: true")), keys)
	write(t, w, keys, []record.Row{{"a"}, {"a"}, {"b"}})
	write(t, w, keys, []record.Row{{"b"}, {"c"}})
	commit(t, w)
	if got := p.rows("SELECT k FROM ks ORDER BY k"); !cmp.Equal(got, [][]any{{"a"}, {"b"}, {"c"}}) {
		t.Errorf("rows %v", got)
	}
}

func TestSinkReplace(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
		rows   []record.Row
		want   [][]any
	}{
		{"committed", true, []record.Row{{"x", int64(9), "new"}, {"y", int64(8), "newer"}}, [][]any{{"8", "y", "newer"}, {"9", "x", "new"}}},
		{"closed without commit keeps the old rows", false, []record.Row{{"x", int64(9), "new"}}, [][]any{{"1", "old", "kept"}}},
		{"no rows empties the table", true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			p.exec(`CREATE ROLE ` + p.app + `_reader; CREATE TABLE kv (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n integer UNIQUE CHECK (n > 0), k text, v text DEFAULT 'd');
				CREATE INDEX kv_v ON kv (v) WHERE v <> 'd'; COMMENT ON TABLE kv IS 'the kv table';
				CREATE TABLE parent (n integer PRIMARY KEY); INSERT INTO parent VALUES (1), (8), (9);
				ALTER TABLE kv ADD CONSTRAINT kv_parent FOREIGN KEY (n) REFERENCES parent (n);
				GRANT SELECT ON kv TO ` + p.app + `_reader;
				INSERT INTO kv (n, k, v) VALUES (1, 'old', 'kept')`)
			t.Cleanup(func() { p.exec("DROP TABLE kv; DROP ROLE " + p.app + "_reader") })
			indexesBefore := p.rows("SELECT indexname, regexp_replace(indexdef, ' ON .* USING', ' USING') FROM pg_indexes WHERE tablename = 'kv' ORDER BY 1")
			env := testEnv(t)
			w := openWriter(t, env, buildSink(t, p.yaml("table: kv\nmode: replace")), kv)
			if diff := cmp.Diff(connector.WriterInfo{Transactional: true, Once: true}, w.Info()); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			if tc.rows != nil {
				write(t, w, kv, tc.rows)
			}
			// Readers see the old rows until the commit.
			if got := p.one("SELECT count(*) FROM kv"); got != "1" {
				t.Errorf("%v rows visible before the commit, want 1", got)
			}
			if tc.commit {
				commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p")})
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.rows("SELECT n, k, v FROM kv ORDER BY n")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(indexesBefore, p.rows("SELECT indexname, regexp_replace(indexdef, ' ON .* USING', ' USING') FROM pg_indexes WHERE tablename = 'kv' ORDER BY 1")); diff != "" {
				t.Errorf("indexes (-before +after):\n%s", diff)
			}
			checks := map[string]string{
				"the comment":      "SELECT obj_description('kv'::regclass, 'pg_class')",
				"the grant":        "SELECT has_table_privilege('" + p.app + "_reader', 'kv', 'SELECT')::text",
				"the foreign key":  "SELECT count(*) FROM pg_constraint WHERE conrelid = 'kv'::regclass AND contype = 'f' AND conname = 'kv_parent'",
				"the identity":     "SELECT pg_get_serial_sequence('kv', 'id')",
				"no leftover":      "SELECT count(*) FROM pg_class WHERE relname LIKE '%backbone_new%'",
				"the check":        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'kv'::regclass AND contype = 'c'",
				"the next id goes": "SELECT nextval(pg_get_serial_sequence('kv', 'id')) > 1",
			}
			want := map[string]string{"the comment": "the kv table", "the grant": "true", "the foreign key": "1",
				"the identity": p.schema + ".kv_id_seq", "no leftover": "0", "the check": "1", "the next id goes": "t"}
			for what, q := range checks {
				if got := p.one(q); got != want[what] {
					t.Errorf("%s: %v, want %v", what, got, want[what])
				}
			}
		})
	}
}

func TestSinkReplaceRefusesDependents(t *testing.T) {
	tests := []struct {
		name, setup, want string
	}{
		{"view", "CREATE VIEW kv_view AS SELECT * FROM kv", "a view depends on it"},
		{"foreign key to it", "CREATE TABLE child (k text REFERENCES kv (k))", "a foreign key points at it: child_k_fkey"},
		{"trigger", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER kv_t BEFORE INSERT ON kv FOR EACH ROW EXECUTE FUNCTION f()", "it has triggers: kv_t"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			p.exec("CREATE TABLE kv (k text PRIMARY KEY, n bigint, v text); " + tc.setup)
			_, err := buildSink(t, p.yaml("table: kv\nmode: replace")).Open(context.Background(), testEnv(t), kv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSinkReplaceCreatesTheTable(t *testing.T) {
	p := newPG(t)
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: fresh\nmode: replace\ncreate: true")), kv)
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	if got := p.one("SELECT to_regclass('fresh') IS NULL"); got != "t" {
		t.Error("the table appeared before the commit")
	}
	commit(t, w)
	if got := p.rows("SELECT k, n, v FROM fresh"); !cmp.Equal(got, [][]any{{"a", "1", "x"}}) {
		t.Errorf("rows %v", got)
	}
}

func TestSinkCheckpointMovesWithRows(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	loader := s.(connector.CheckpointLoader)
	load := func() map[string]connector.Checkpoint {
		t.Helper()
		cps, err := loader.LoadCheckpoints(context.Background(), env)
		if err != nil {
			t.Fatalf("LoadCheckpoints: %v", err)
		}
		return cps
	}
	if got := load(); len(got) != 0 {
		t.Fatalf("checkpoints before any write: %v", got)
	}
	cp1 := connector.Checkpoint{Task: "t", Pos: record.Position(`{"v":1}`)}

	// Staged, then closed without Commit: neither rows nor checkpoint.
	w, err := s.Open(context.Background(), env, kv)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := p.one("SELECT count(*) FROM kv"); got != "0" {
		t.Errorf("%v rows after Close without Commit", got)
	}
	if got := load(); len(got) != 0 {
		t.Errorf("checkpoints after Close without Commit: %v", got)
	}

	// Committed: both.
	w = openWriter(t, env, s, kv)
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}, {"b", int64(2), "y"}})
	commit(t, w, cp1)
	if got := p.one("SELECT count(*) FROM kv"); got != "2" {
		t.Errorf("%v rows after Commit, want 2", got)
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}

	// A failed Commit leaves the previous checkpoint and rows.
	write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("later")}}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if diff := cmp.Diff(map[string]connector.Checkpoint{"t": cp1}, load()); diff != "" {
		t.Errorf("checkpoints after a failed Commit (-want +got):\n%s", diff)
	}
	if got := p.one("SELECT count(*) FROM kv"); got != "2" {
		t.Errorf("%v rows after a failed Commit, want 2", got)
	}
	// The writer goes on after the failure: the rows staged before it are
	// staged again.
	write(t, w, kv, []record.Row{{"d", int64(4), "w"}})
	commit(t, w)
	if got := p.one("SELECT string_agg(k, '' ORDER BY k) FROM kv"); got != "abcd" {
		t.Errorf("keys %v, want abcd", got)
	}
}

func TestLoadCheckpointsRoundTrip(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	w := openWriter(t, env, s, kv)
	cps := []connector.Checkpoint{
		{Task: "a.csv", Pos: record.Position{0, 1, 2, 255}, Done: true, Fingerprint: "123:456"},
		{Task: "orders", Pos: record.Position(`{"v":1,"cols":["ts","id"]}`)},
		{Task: "empty"},
		{Task: "ünïcode ✓", Pos: record.Position{}},
	}
	commit(t, w, cps...)
	commit(t, w, connector.Checkpoint{Task: "orders", Pos: record.Position("moved")})
	other := *env
	other.Pipeline = "someone_else"
	wo := openWriter(t, &other, s, kv)
	commit(t, wo, connector.Checkpoint{Task: "a.csv", Pos: record.Position("theirs")})

	got, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]connector.Checkpoint{
		"a.csv":     cps[0],
		"orders":    {Task: "orders", Pos: record.Position("moved")},
		"empty":     {Task: "empty"},
		"ünïcode ✓": cps[3],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
}

func TestCheckpointsOfUnknownVersionAreRefused(t *testing.T) {
	tests := []struct {
		name, setup, want string
	}{
		{"newer", "UPDATE backbone_meta SET value = '2'", "newer backbone (version 2"},
		{"no version", "DELETE FROM backbone_meta", "without its version"},
		{"no meta table", "DROP TABLE backbone_meta", "without its version"},
		{"garbage", "UPDATE backbone_meta SET value = 'x'", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			env := testEnv(t)
			s := buildSink(t, p.yaml("table: kv\ncreate: true"))
			w, err := s.Open(context.Background(), env, kv)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, w, connector.Checkpoint{Task: "t"})
			w.Close()
			p.exec(tc.setup)
			if _, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadCheckpoints: %v, want an error containing %q", err, tc.want)
			}
			if _, err := s.Open(context.Background(), env, kv); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
			if err := s.(*pgSink).Check(context.Background(), env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %v, want an error containing %q", err, tc.want)
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
		{"append", "CREATE TABLE kv (k varchar(5) NOT NULL, n integer CHECK (n >= 0), v text UNIQUE)", "append"},
		{"upsert", "CREATE TABLE kv (k varchar(5) PRIMARY KEY, n integer CHECK (n >= 0), v text UNIQUE)", "upsert\nkey: k"},
		{"replace", "CREATE TABLE kv (k varchar(5) NOT NULL, n integer CHECK (n >= 0), v text UNIQUE)", "replace"},
	}
	// Poison rows among 10000: a value too long, a unique violation, a
	// check violation, a NULL in a NOT NULL column.
	poisoned := map[int]string{
		0:    "value too long for type character varying(5)",
		37:   `duplicate key value violates unique constraint "kv_v_key"`,
		5000: "value too long for type character varying(5)",
		5001: `violates check constraint "kv_n_check"`,
		9998: `null value in column "k"`,
		9999: `duplicate key value violates unique constraint "kv_v_key"`,
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			poison := maps.Clone(poisoned)
			p := newPG(t)
			p.exec(tc.table)
			env := testEnv(t)
			w := openWriter(t, env, buildSink(t, p.yaml("table: kv\nmode: "+tc.mode)), kv)
			rows := make([]record.Row, 10000)
			for i := range rows {
				rows[i] = record.Row{fmt.Sprintf("k%d", i), int64(i), fmt.Sprint("v", i)}
			}
			for i, why := range poison {
				switch {
				case strings.Contains(why, "too long"):
					rows[i][0] = "k-too-long"
				case strings.Contains(why, "unique"):
					rows[i][2] = "v1" // the value of row 1
				case strings.Contains(why, "check"):
					rows[i][1] = int64(-1)
				default:
					rows[i][0] = nil
				}
			}
			if tc.mode != "append" && tc.mode != "replace" {
				// A NULL key is refused before the database sees it.
				poison[9998] = `key field "k" is null`
			}
			n, got := writeJudged(t, w, &record.Batch{Schema: kv, Rows: rows})
			if len(got) != len(poison) {
				t.Errorf("refused rows %v, want %v", got, poison)
			}
			for i, why := range poison {
				if !strings.Contains(got[i], why) || !strings.Contains(got[i], `table "kv"`) {
					t.Errorf("row %d: error %q, want it to contain %q and the table", i, got[i], why)
				}
			}
			if n != 10000-len(poison) {
				t.Errorf("n = %d, want %d", n, 10000-len(poison))
			}
			commit(t, w)
			if got := p.one("SELECT count(*) FROM kv"); got != fmt.Sprint(n) {
				t.Errorf("%v rows stored, want %d", got, n)
			}
			if got := p.one("SELECT count(*) FROM kv WHERE k IN ('k1', 'k36', 'k38', 'k4999', 'k5002', 'k9997')"); got != "6" {
				t.Errorf("%v of the rows around the poison stored, want 6", got)
			}
		})
	}
}

func TestSplitRefused(t *testing.T) {
	// Two spans of one batch: rows [10, 14) and [0, 6), ten rows in all.
	e := &encoded{}
	spans := []span{{enc: e, lo: 10, hi: 14}, {enc: e, lo: 0, hi: 6}}
	type rng [2]int
	ranges := func(sps []span) []rng {
		var out []rng
		for _, sp := range sps {
			out = append(out, rng{sp.lo, sp.hi})
		}
		return out
	}
	tests := []struct {
		name          string
		spans         []span
		where         string
		before, after []rng
		bad           rng // {0, 0}: none
	}{
		{"line in the first span", spans, "COPY kv, line 2, column k: \"x\"", []rng{{10, 11}}, []rng{{12, 14}, {0, 6}}, rng{11, 12}},
		{"line in the second span", spans, "COPY kv, line 6", []rng{{10, 14}, {0, 1}}, []rng{{2, 6}}, rng{1, 2}},
		{"first line", spans, "COPY kv, line 1", nil, []rng{{11, 14}, {0, 6}}, rng{10, 11}},
		{"last line", spans, "COPY kv, line 10", []rng{{10, 14}, {0, 5}}, nil, rng{5, 6}},
		{"line out of range: halves", spans, "COPY kv, line 11", []rng{{10, 14}, {0, 1}}, []rng{{1, 6}}, rng{}},
		{"no line (an INSERT's refusal): halves", spans, "", []rng{{10, 14}, {0, 1}}, []rng{{1, 6}}, rng{}},
		{"a single row is the refused one", []span{{enc: e, lo: 3, hi: 4}}, "", nil, nil, rng{3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := &pgconn.PgError{Code: "22001", Where: tc.where}
			before, bad, after := splitRefused(tc.spans, err)
			if diff := cmp.Diff(tc.before, ranges(before)); diff != "" {
				t.Errorf("before (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.after, ranges(after)); diff != "" {
				t.Errorf("after (-want +got):\n%s", diff)
			}
			if got := (rng{bad.lo, bad.hi}); got != tc.bad || (bad.enc == nil) != (tc.bad == rng{}) {
				t.Errorf("refused %v (enc %v), want %v", got, bad.enc != nil, tc.bad)
			}
		})
	}
}

func TestSinkConnectionLossIsTransientAndLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		retryWrite bool
	}{{"append", false}, {"append", true}, {"upsert\nkey: k", false}, {"upsert\nkey: k", true}} {
		mode, retryWrite := tc.mode, tc.retryWrite
		t.Run(fmt.Sprintf("%s retry write %v", strings.Split(mode, "\n")[0], retryWrite), func(t *testing.T) {
			p := newPG(t)
			p.noLeaks()
			env := testEnv(t)
			s := buildSink(t, p.yaml("table: kv\ncreate: true\nmode: "+mode))
			w, err := s.Open(context.Background(), env, kv)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ctx := context.Background()
			write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
			commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("1")})

			// Killed between Write and Commit: the Commit fails as
			// transient; its retry stages the rows again and commits them.
			batch2 := &record.Batch{Schema: kv, Rows: []record.Row{{"b", int64(2), "y"}, {"c", int64(3), "z"}}}
			if n, err := w.Write(ctx, batch2); n != 2 || err != nil {
				t.Fatalf("Write: %d %v", n, err)
			}
			if n := p.terminate(); n != 1 {
				t.Fatalf("terminated %d sessions, want 1", n)
			}
			cps := []connector.Checkpoint{{Task: "t", Pos: record.Position("2")}}
			if err := w.Commit(ctx, cps); !errors.Is(err, connector.ErrTransient) {
				t.Fatalf("Commit after the session was killed: %v, want ErrTransient", err)
			}
			if retryWrite {
				// A caller may also retry the Write of the batch: its rows
				// are staged once.
				for range 2 {
					if n, err := w.Write(ctx, batch2); n != 2 || err != nil {
						t.Fatalf("Write again: %d %v", n, err)
					}
				}
			}
			// The killed session's transaction may take a moment to end on
			// the server: until then the writer answers transient, and the
			// engine would retry, as this does.
			err = w.Commit(ctx, cps)
			for i := 0; i < 100 && errors.Is(err, connector.ErrTransient); i++ {
				time.Sleep(20 * time.Millisecond)
				err = w.Commit(ctx, cps)
			}
			if err != nil {
				t.Fatalf("Commit again: %v", err)
			}

			// Killed after a Commit: the next Write fails as transient and
			// its retry succeeds.
			p.terminate()
			batch := &record.Batch{Schema: kv, Rows: []record.Row{{"d", int64(4), "w"}}}
			if _, err := w.Write(ctx, batch); !errors.Is(err, connector.ErrTransient) {
				t.Fatalf("Write after the session was killed: %v, want ErrTransient", err)
			}
			if n, err := w.Write(ctx, batch); n != 1 || err != nil {
				t.Fatalf("Write again: %d %v", n, err)
			}
			commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("3")})

			if diff := cmp.Diff([][]any{{"a", "1", "x"}, {"b", "2", "y"}, {"c", "3", "z"}, {"d", "4", "w"}}, p.rows("SELECT k, n, v FROM kv ORDER BY k")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			got, err := s.(connector.CheckpointLoader).LoadCheckpoints(ctx, env)
			if err != nil || string(got["t"].Pos) != "3" {
				t.Errorf("checkpoint %q (%v), want 3", got["t"].Pos, err)
			}
			w.Close()
		})
	}
}

func TestSinkReplaceNeverSwapsInLostRows(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE kv (k text, n bigint, v text); INSERT INTO kv VALUES ('old', 1, 'kept')")
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv\nmode: replace")), kv)
	ctx := context.Background()
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	settle(t, w) // accepted, and held only by the transaction
	p.terminate()
	// The rows are gone with the session: this is not a retry-able error,
	// and no later Commit swaps in a partial table.
	_, err := w.Write(ctx, &record.Batch{Schema: kv, Rows: []record.Row{{"b", int64(2), "y"}}})
	if err == nil { // streamed: the loss shows by Settle
		_, err = w.(connector.Settler).Settle(ctx)
	}
	if err == nil || errors.Is(err, connector.ErrTransient) || !strings.Contains(err.Error(), "run must start again") {
		t.Fatalf("Write and Settle after the session was killed: %v, want a permanent error", err)
	}
	if err := w.Commit(ctx, nil); err == nil {
		t.Fatal("Commit after lost rows succeeded")
	}
	if diff := cmp.Diff([][]any{{"old", "1", "kept"}}, p.rows("SELECT k, n, v FROM kv")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestSinkSettlesALostCommit(t *testing.T) {
	// The answer to COMMIT is lost, but the server committed: the retried
	// Commit must not stage the rows a second time.
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	w := openWriter(t, env, s, kv)
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	ww := w.(*writer)
	commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("1")})
	// Make the writer believe the commit's answer was lost.
	ww.unknownXid, ww.spans = ww.xid, []span{{enc: ww.encode(&record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}}}), lo: 0, hi: 1}}
	commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("1")})
	if got := p.one("SELECT count(*) FROM kv"); got != "1" {
		t.Errorf("%v rows, want 1: a committed transaction was staged again", got)
	}
	// And when the server rolled it back, the rows are staged again.
	write(t, w, kv, []record.Row{{"b", int64(2), "y"}})
	settle(t, w)
	xid := ww.xid
	if err := exec(context.Background(), ww.conn, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	ww.inTx, ww.unknownXid = false, xid
	commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("2")})
	if got := p.one("SELECT string_agg(k, '' ORDER BY k) FROM kv"); got != "ab" {
		t.Errorf("keys %v, want ab", got)
	}
	// A server that crashed before it logged anything of the transaction
	// knows its ID as one "in the future": it never committed, and its
	// rows are staged again.
	write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
	settle(t, w)
	if err := exec(context.Background(), ww.conn, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	ww.inTx, ww.unknownXid = false, "999999999999"
	commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("3")})
	if got := p.one("SELECT string_agg(k, '' ORDER BY k) FROM kv"); got != "abc" {
		t.Errorf("keys %v, want abc", got)
	}
}

func TestSinkCheck(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE kv (k text PRIMARY KEY, n bigint, v text)")
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "table: kv\nmode: upsert\nkey: k", ""},
		{"missing table", "table: nope", "table does not exist"},
		{"missing table with create", "table: nope\ncreate: true", ""},
		{"missing key column", "table: kv\nmode: upsert\nkey: id", `no column for key field "id"`},
		{"key not unique", "table: kv\nmode: upsert\nkey: [k, n]", "UNIQUE index on exactly (k, n)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := buildSink(t, p.yaml(tc.yaml)).(*pgSink).Check(context.Background(), testEnv(t))
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
		})
	}
	if got := p.one("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'backbone%'"); got != "0" {
		t.Errorf("Check created %v tables", got)
	}
}

func TestSinkTimestampWithoutZone(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE t (id bigint, wall timestamp, at timestamptz)")
	for _, format := range []string{"binary", "text"} {
		t.Run(format, func(t *testing.T) {
			p.exec("TRUNCATE t")
			schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "wall", Type: record.Timestamp}, record.Field{Name: "at", Type: record.Timestamp})
			if format == "text" {
				schema = record.MustSchema(record.Field{Name: "id", Type: record.Any}, record.Field{Name: "wall", Type: record.Timestamp}, record.Field{Name: "at", Type: record.Timestamp})
			}
			env := testEnv(t)
			env.Location = time.FixedZone("", -3*3600)
			w := openWriter(t, env, buildSink(t, p.yaml("table: t")), schema)
			at := time.Date(2024, 1, 1, 1, 0, 0, 1500, time.UTC)
			write(t, w, schema, []record.Row{{int64(1), at, at}})
			commit(t, w)
			want := [][]any{{"2023-12-31 22:00:00.000002", "2024-01-01 01:00:00.000002+00"}}
			if diff := cmp.Diff(want, p.rows("SELECT wall, at FROM t")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSinkUnreachableIsUnavailable(t *testing.T) {
	s := buildSink(t, "dsn: 'postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2'\ntable: t")
	_, err := s.Open(context.Background(), testEnv(t), kv)
	if !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("Open: %v, want ErrUnavailable without the password", err)
	}
	if _, err := s.(connector.CheckpointLoader).LoadCheckpoints(context.Background(), testEnv(t)); !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("LoadCheckpoints: %v, want ErrUnavailable", err)
	}
}

func TestSinkWriteCancelled(t *testing.T) {
	p := newPG(t)
	p.noLeaks()
	w, err := buildSink(t, p.yaml("table: kv\ncreate: true")).Open(context.Background(), testEnv(t), kv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rows := []record.Row{{"a", int64(1), "x"}}
	if _, err := w.Write(ctx, &record.Batch{Schema: kv, Rows: rows}); !errors.Is(err, context.Canceled) || errors.Is(err, connector.ErrTransient) {
		t.Errorf("Write with a cancelled context: %v", err)
	}
	write(t, w, kv, rows)
	commit(t, w)
	if got := p.one("SELECT count(*) FROM kv"); got != "1" {
		t.Errorf("%v rows, want 1", got)
	}
	w.Close()
}

func TestClassify(t *testing.T) {
	pgErr := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	tests := []struct {
		name               string
		err                error
		transient, rowErr  bool
		unchangedByWrapper bool
	}{
		{"admin shutdown", pgErr("57P01"), true, false, false},
		{"connection failure", pgErr("08006"), true, false, false},
		{"deadlock", pgErr("40P01"), true, false, false},
		{"serialization", pgErr("40001"), true, false, false},
		{"too many connections", pgErr("53300"), true, false, false},
		{"value too long", pgErr("22001"), false, true, false},
		{"unique violation", pgErr("23505"), false, true, false},
		{"check violation", pgErr("23514"), false, true, false},
		{"index row too big", pgErr("54000"), false, true, false},
		{"undefined column", pgErr("42703"), false, false, false},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, false, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, true, false, false},
		{"cancelled", context.Canceled, false, false, true},
		{"already unavailable", connector.Unavailable(errors.New("down")), false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, nil)
			if errors.Is(got, connector.ErrTransient) != tc.transient {
				t.Errorf("transient = %v, want %v", errors.Is(got, connector.ErrTransient), tc.transient)
			}
			if rowError(tc.err) != tc.rowErr {
				t.Errorf("rowError = %v, want %v", rowError(tc.err), tc.rowErr)
			}
			if tc.unchangedByWrapper && got != tc.err {
				t.Errorf("classify changed %v into %v", tc.err, got)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ dsn, msg, want string }{
		{"postgres://u:s3cret@h/db", "cannot parse postgres://u:s3cret@h/db", "cannot parse postgres://u:xxxxx@h/db"},
		{"host=h password=s3cret port=x", "bad port in host=h password=s3cret", "bad port in host=h password=xxxxx"},
		{"host=h password='s3 cret' port=x", "with s3 cret", "with xxxxx"},
	}
	for _, tc := range tests {
		if got := redactDSN(tc.dsn, tc.msg); got != tc.want {
			t.Errorf("redactDSN(%q, %q) = %q, want %q", tc.dsn, tc.msg, got, tc.want)
		}
	}
}

// Batches streamed into one COPY (or, with a small cap, into several, each
// behind a savepoint) are judged at Settle: the rows the table refuses are
// reported by batch and index, the rows around them are stored once.
func TestSinkStreamFindsTheBadRows(t *testing.T) {
	for _, streamCap := range []int{streamBytes, 30000} {
		t.Run(fmt.Sprint("cap ", streamCap), func(t *testing.T) {
			p := newPG(t)
			p.exec("CREATE TABLE kv (k varchar(5) NOT NULL, n integer CHECK (n >= 0), v text UNIQUE)")
			env := testEnv(t)
			w := openWriter(t, env, buildSink(t, p.yaml("table: kv\nmode: append")), kv)
			w.(*writer).streamCap = streamCap
			poison := map[int]string{
				0:    "value too long for type character varying(5)",
				2499: `violates check constraint "kv_n_check"`,
				2500: `duplicate key value violates unique constraint "kv_v_key"`,
				2501: `violates check constraint "kv_n_check"`,
				9999: "value too long for type character varying(5)",
			}
			var batches []*record.Batch
			got := map[int]string{}
			for part := range 4 {
				before := len(got)
				rows := make([]record.Row, 2500)
				for j := range rows {
					i := part*2500 + j
					rows[j] = record.Row{fmt.Sprintf("k%d", i), int64(i), fmt.Sprint("v", i)}
					switch {
					case strings.Contains(poison[i], "too long"):
						rows[j][0] = "k-too-long"
					case strings.Contains(poison[i], "check"):
						rows[j][1] = int64(-1)
					case strings.Contains(poison[i], "unique"):
						rows[j][2] = "v1"
					}
				}
				b := &record.Batch{Schema: kv, Rows: rows}
				if err := w.(connector.Preparer).Prepare(b); err != nil {
					t.Fatal(err)
				}
				// A value too long is refused at once, the others by Settle.
				n, err := w.Write(context.Background(), b)
				var be *connector.BatchError
				if errors.As(err, &be) {
					for _, re := range be.Rows {
						got[part*2500+re.Index] = re.Err.Error()
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if n != len(rows)-len(got)+before {
					t.Fatalf("Write: %d rows on their way, want %d", n, len(rows)-len(got)+before)
				}
				batches = append(batches, b)
			}
			refused, err := w.(connector.Settler).Settle(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, rf := range refused {
				part := slices.Index(batches, rf.Batch)
				if part < 0 {
					t.Fatalf("rows refused of a batch not written: %v", rf.Rows)
				}
				for _, re := range rf.Rows {
					got[part*2500+re.Index] = re.Err.Error()
				}
			}
			if len(got) != len(poison) {
				t.Errorf("refused rows %v, want %v", got, poison)
			}
			for i, why := range poison {
				if !strings.Contains(got[i], why) || !strings.Contains(got[i], `table "kv"`) {
					t.Errorf("row %d: error %q, want it to contain %q and the table", i, got[i], why)
				}
			}
			if again, err := w.(connector.Settler).Settle(context.Background()); err != nil || len(again) != 0 {
				t.Errorf("Settle again: %v, %v: want nothing", again, err)
			}
			commit(t, w)
			if got := p.one("SELECT count(*) FROM kv"); got != fmt.Sprint(10000-len(poison)) {
				t.Errorf("%v rows stored, want %d", got, 10000-len(poison))
			}
			if got := p.one("SELECT count(DISTINCT k) FROM kv WHERE k IN ('k1', 'k2498', 'k2502', 'k7500', 'k9998')"); got != "5" {
				t.Errorf("%v of the rows around the poison stored, want 5", got)
			}
		})
	}
}

// Many small batches in one stream, with refused rows close together: each
// refusal undoes the statement and the rows around it are sent again, in
// statements that may themselves be refused part way through their rows.
// Every other row is stored once.
func TestSinkStreamRefusalsCloseTogether(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE kv (k text, n integer, v text UNIQUE)")
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv")), kv)
	const batches, per = 200, 50
	// Refused by the server alone: a value of v taken by row 1.
	bad := map[int]bool{2: true, 3: true, 120: true, 121: true, 400: true, 2500: true, 2551: true, 7777: true, 9999: true}
	want := 0
	for i := range batches * per {
		if !bad[i] {
			want += i
		}
	}
	parts := make([][]record.Row, batches)
	for part := range parts {
		rows := make([]record.Row, per)
		for j := range rows {
			i := part*per + j
			rows[j] = record.Row{fmt.Sprint("k", i), int64(i), fmt.Sprint("v", i)}
			if bad[i] {
				rows[j][2] = "v1"
			}
		}
		parts[part] = rows
	}
	got := map[int]bool{}
	for i := range writeSettled(t, w, parts) {
		got[i] = true
	}
	if !maps.Equal(got, bad) {
		t.Errorf("refused rows %v, want %v", got, bad)
	}
	commit(t, w)
	if got := p.one("SELECT count(*) || ' ' || count(DISTINCT n) || ' ' || sum(n) FROM kv"); got != fmt.Sprintf("%d %d %d", batches*per-len(bad), batches*per-len(bad), want) {
		t.Errorf("count, distinct and sum of the rows stored: %v", got)
	}
}

// An upsert streams many batches into the stage and moves them into the
// table with one statement: a key repeated within a batch or across them
// keeps its last row, and rows the INSERT refuses (a NULL in a NOT NULL
// column, which names no row) are found among the others, in both COPY
// formats. (A row that a later row of its key replaces in the same stream
// never reaches the table, and is not judged.)
func TestSinkUpsertStreamKeepsTheLastRowOfAKey(t *testing.T) {
	for _, tc := range []struct {
		format, n string
		within    bool // keys repeat within batches too
	}{{"binary", "integer", false}, {"binary", "integer", true}, {"text", "text", false}} {
		t.Run(fmt.Sprintf("%s repeats within batches %v", tc.format, tc.within), func(t *testing.T) {
			p := newPG(t)
			p.exec("CREATE TABLE kv (k text PRIMARY KEY, n " + tc.n + ", v text NOT NULL)")
			w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv\nmode: upsert\nkey: k")), kv)
			if got := w.(*writer).binary; got != (tc.format == "binary") {
				t.Fatalf("binary COPY: %v, want it for %s", got, tc.format)
			}
			const batches, per = 60, 40
			want := map[string]string{} // key: the n of its last row
			bad := map[int]bool{}
			parts := make([][]record.Row, batches)
			for part := range parts {
				rows := make([]record.Row, per)
				for j := range rows {
					i := part*per + j
					k := fmt.Sprint("k", i%41) // 40 keys of a batch differ
					if tc.within {
						k = fmt.Sprint("k", (i*7919)%37)
					}
					rows[j] = record.Row{k, int64(i), fmt.Sprint("v", i)}
					if i%797 == 13 {
						// A key of its own: a later row of its key would
						// take its place before the table sees it.
						rows[j][0], rows[j][2] = fmt.Sprint("bad", i), nil
						bad[i] = true
						continue
					}
					want[k] = fmt.Sprint(i)
				}
				parts[part] = rows
			}
			got := map[int]bool{}
			for i, msg := range writeSettled(t, w, parts) {
				if !strings.Contains(msg, `null value in column "v"`) {
					t.Errorf("row %d: %v", i, msg)
				}
				got[i] = true
			}
			if !maps.Equal(got, bad) {
				t.Errorf("refused rows %v, want %v", got, bad)
			}
			if !tc.within && !w.(*writer).repeats {
				t.Error("keys repeated across batches only, and the upsert never met them")
			}
			commit(t, w)
			stored := map[string]string{}
			for _, r := range p.rows("SELECT k, n::text FROM kv") {
				stored[r[0].(string)] = r[1].(string)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// A string longer than its varchar(n) or char(n) column is refused before
// the server sees it, with the server's words; what is past n and only
// spaces is cut off by the server, as it would be from any client.
func TestSinkRefusesValuesTooLongAtOnce(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE kv (k varchar(3), n integer, v char(2))")
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv")), kv)
	n, refused := writeJudged(t, w, &record.Batch{Schema: kv, Rows: []record.Row{
		{"abcd", int64(0), "x"}, {"äöü", int64(1), "é "}, {"ab  ", int64(2), "xy   "}, {"äöüß", int64(3), nil}, {"a", int64(4), "xyz"},
	}})
	if n != 2 || len(refused) != 3 {
		t.Fatalf("n=%d refused %v, want rows 0, 3 and 4 refused", n, refused)
	}
	for i, want := range map[int]string{0: `value too long for type character varying(3) (column "k")`,
		3: `value too long for type character varying(3) (column "k")`, 4: `value too long for type character(2) (column "v")`} {
		if !strings.Contains(refused[i], want) {
			t.Errorf("row %d: %q, want %q", i, refused[i], want)
		}
	}
	commit(t, w)
	if diff := cmp.Diff([][]any{{"äöü", "1", "é "}, {"ab ", "2", "xy"}}, p.rows("SELECT k, n, v FROM kv ORDER BY n")); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestLimitTooLong(t *testing.T) {
	l := limit{chars: 3}
	for s, want := range map[string]bool{"": false, "abc": false, "abcd": true, "äöü": false, "äöüß": true,
		"abc ": false, "abc   ": false, "abc  x": true, "ab\tcd": true, "日本語": false, "日本語 ": false, "日本語の": true} {
		if got := l.tooLong(s); got != want {
			t.Errorf("tooLong(%q) = %v, want %v", s, got, want)
		}
	}
}

// A Commit with refused rows that Settle did not return fails: they would
// be lost without a dead letter.
func TestSinkCommitWithoutSettleKeepsNoRefusal(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE kv (k text, n integer, v text UNIQUE)")
	w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv")), kv)
	if _, err := w.Write(context.Background(), &record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}, {"b", int64(2), "x"}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not taken by Settle") {
		t.Fatalf("Commit: %v, want the refused rows named", err)
	}
	if got := p.one("SELECT count(*) FROM kv"); got != "0" {
		t.Errorf("%v rows stored, want 0", got)
	}
}

// settle settles w and fails the test on any refused row.
func settle(t *testing.T, w connector.Writer) {
	t.Helper()
	if refused, err := w.(connector.Settler).Settle(context.Background()); err != nil || len(refused) > 0 {
		t.Fatalf("Settle: %v, refused %v", err, refused)
	}
}

// writeJudged writes rows and settles the writer: the rows written, and the
// error of each row refused, at Write or at Settle, by index.
// writeSettled writes parts as batches of kv, then settles: the rows
// refused, numbered over all parts, with their errors.
func writeSettled(t *testing.T, w connector.Writer, parts [][]record.Row) map[int]string {
	t.Helper()
	first := map[*record.Batch]int{}
	n := 0
	for _, rows := range parts {
		b := &record.Batch{Schema: kv, Rows: rows}
		if got, err := w.Write(context.Background(), b); got != len(rows) || err != nil {
			t.Fatalf("Write: %d, %v", got, err)
		}
		first[b] = n
		n += len(rows)
	}
	refused, err := w.(connector.Settler).Settle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, rf := range refused {
		at, ok := first[rf.Batch]
		if !ok {
			t.Fatalf("rows refused of a batch never written: %v", rf.Rows)
		}
		for _, re := range rf.Rows {
			if _, twice := got[at+re.Index]; twice {
				t.Errorf("row %d refused twice", at+re.Index)
			}
			got[at+re.Index] = re.Err.Error()
		}
	}
	return got
}

func writeJudged(t *testing.T, w connector.Writer, b *record.Batch) (int, map[int]string) {
	t.Helper()
	n, err := w.Write(context.Background(), b)
	got := map[int]string{}
	var be *connector.BatchError
	if errors.As(err, &be) {
		for _, re := range be.Rows {
			got[re.Index] = re.Err.Error()
		}
	} else if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if s, ok := w.(connector.Settler); ok {
		refused, err := s.Settle(context.Background())
		if err != nil {
			t.Fatalf("Settle: %v", err)
		}
		for _, rf := range refused {
			if rf.Batch != b {
				t.Fatalf("rows refused of another batch: %v", rf.Rows)
			}
			for _, re := range rf.Rows {
				got[re.Index] = re.Err.Error()
				n--
			}
		}
	}
	return n, got
}

// The transaction of a lost connection stays "in progress" until the
// server notices the loss: settling it waits for its end (committed or
// rolled back) and takes the answer; one that does not end within
// settleWait is a transient failure, for the engine to retry later.
func TestSinkSettleWaitsForALostTransaction(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	for _, end := range []string{"COMMIT", "ROLLBACK", ""} {
		name := "then " + strings.ToLower(end)
		if end == "" {
			name = "never ends"
		}
		t.Run(name, func(t *testing.T) {
			w := openWriter(t, env, s, kv).(*writer)
			defer w.Close()
			write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
			other, err := s.(*pgSink).srv.connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer closeConn(other)
			if err := exec(context.Background(), other, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			rows, err := query(context.Background(), other, "SELECT txid_current()")
			if err != nil || len(rows) != 1 {
				t.Fatalf("txid_current: %v", err)
			}
			// The writer's connection is lost with a COMMIT unanswered: the
			// next transaction settles it first, on a new connection.
			w.abortStream()
			w.dropConn()
			w.unknownXid, w.unknownCps = text(rows[0][0]), []connector.Checkpoint{{Task: "t"}}
			if end != "" {
				ended := make(chan struct{})
				defer func() { <-ended }() // before other closes
				time.AfterFunc(150*time.Millisecond, func() {
					defer close(ended)
					_ = exec(context.Background(), other, end)
				})
			} else {
				defer func(wait time.Duration) { settleWait = wait }(settleWait)
				settleWait = 200 * time.Millisecond
			}
			err = w.begin(context.Background())
			switch end {
			case "COMMIT":
				if err != nil || w.unknownXid != "" || len(w.settledCps) != 1 {
					t.Fatalf("settle: %v (unknown %q, settled %v), want the commit found", err, w.unknownXid, w.settledCps)
				}
			case "ROLLBACK":
				if err != nil || w.unknownXid != "" || len(w.settledCps) != 0 {
					t.Fatalf("settle: %v (unknown %q, settled %v), want the rollback found", err, w.unknownXid, w.settledCps)
				}
			default:
				if !errors.Is(err, connector.ErrTransient) || w.unknownXid == "" {
					t.Fatalf("settle: %v, want a transient failure with the transaction still unknown", err)
				}
			}
		})
	}
}
