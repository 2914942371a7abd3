package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

const testDSN = "postgres://u:secret-pw@127.0.0.1:5432/db"

func TestSourceConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field, want string
	}{
		{"no dsn", "table: t", "", "dsn is empty"},
		{"bad dsn", "dsn: 'postgres://u:secret-pw@127.0.0.1:99999999/db'\ntable: t", "dsn", "dsn:"},
		{"no table or query", "dsn: " + testDSN, "", "one of table and query"},
		{"both table and query", "dsn: " + testDSN + "\ntable: t\nquery: select 1", "query", "exclude each other"},
		{"incremental without cursor", "dsn: " + testDSN + "\ntable: t\nmode: incremental\nkey: id", "mode", "needs a cursor"},
		{"incremental without key", "dsn: " + testDSN + "\ntable: t\nmode: incremental\ncursor: at", "mode", "needs a key"},
		{"cursor in full mode", "dsn: " + testDSN + "\ntable: t\ncursor: at", "cursor", "only used in mode incremental"},
		{"lookback in full mode", "dsn: " + testDSN + "\ntable: t\nlookback: 1h", "lookback", "only used in mode incremental"},
		{"unknown mode", "dsn: " + testDSN + "\ntable: t\nmode: sometimes", "mode", `mode "sometimes"`},
		{"unknown drift policy", "dsn: " + testDSN + "\ntable: t\nschema_drift: shrug", "schema_drift", `schema_drift "shrug"`},
		{"key twice", "dsn: " + testDSN + "\ntable: t\nkey: [a, a]", "key", `"a" appears twice`},
		{"parallel zero", "dsn: " + testDSN + "\ntable: t\nparallel: 0", "parallel", "parallel must be between"},
		{"empty db_schema", "dsn: " + testDSN + "\ntable: t\ndb_schema: ''", "db_schema", "db_schema must name"},
	}
	e, _ := testRegistry().Get(connector.KindSource, "postgres")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params(t, tc.yaml)
			_, err := e.Source(p)
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
				t.Fatalf("error %v, want a *PosError containing %q", err, tc.want)
			}
			if tc.field != "" && pe.Pos != p.FieldPos(tc.field) {
				t.Errorf("error at %v, want at field %s (%v)", pe.Pos, tc.field, p.FieldPos(tc.field))
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestSourceUnreachableIsUnavailable(t *testing.T) {
	s := buildSource(t, "dsn: 'postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2'\ntable: t")
	_, err := s.Plan(context.Background(), testEnv(t))
	if !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Plan: %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("error %q shows the password", err)
	}
	if err := Ping(context.Background(), "postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2"); !errors.Is(err, connector.ErrUnavailable) || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("Ping: %v, want ErrUnavailable without the password", err)
	}
}

const typesTable = `CREATE TABLE things (
	id bigint PRIMARY KEY, small smallint, mid integer, price numeric(20,4), big numeric, ratio double precision, f4 real,
	name varchar(20), code char(3), note text, active boolean, at timestamptz, wall timestamp, day date,
	data bytea, doc json, docb jsonb, uid uuid, span interval, tags text[])`

const typesRows = `INSERT INTO things VALUES
	(1, -3, 70000, 12.5, 123456789012345678901234567890.000000001, 1.25, 0.5, 'ana', 'ab', 'tab	and \ back', true,
	 '2024-01-02 03:04:05.123456+02', '2024-01-02 03:04:05.000001', '2024-02-29', '\x0001ff', '{"a": [1, "x"]}', '{"b": 2.50}',
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours', '{x,y}'),
	(2, NULL, NULL, -0.0001, 0, NULL, NULL, '', NULL, NULL, false, '0044-03-15 12:00:00+00 BC', NULL, NULL, '', 'null', '[]', NULL, NULL, NULL)`

func TestSourceTypes(t *testing.T) {
	p := newPG(t)
	p.exec(typesTable + "; " + typesRows)
	bc := time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC) // 44 BC
	day, _ := record.ParseDate("2024-02-29")
	want := []record.Row{
		{int64(1), int64(-3), int64(70000), record.MustDec("12.5000"), record.MustDec("123456789012345678901234567890.000000001"), 1.25, 0.5,
			"ana", "ab ", "tab\tand \\ back", true, time.Date(2024, 1, 2, 1, 4, 5, 123456000, time.UTC),
			time.Date(2024, 1, 2, 3, 4, 5, 1000, time.UTC), day, []byte{0, 1, 0xff},
			map[string]any{"a": []any{json.Number("1"), "x"}}, map[string]any{"b": json.Number("2.50")},
			"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "P1DT2H", "{x,y}"},
		{int64(2), nil, nil, record.MustDec("-0.0001"), record.MustDec("0"), nil, nil, "", nil, nil, false, bc, nil, nil, []byte{}, nil, []any{}, nil, nil, nil},
	}
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred decode %v", deferred), func(t *testing.T) {
			env := testEnv(t)
			env.DeferDecode = deferred
			s := buildSource(t, p.yaml("table: things"))
			tasks, err := s.Plan(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if len(tasks) != 1 || tasks[0].Key != "things@run1" {
				t.Fatalf("tasks %+v, want one task things@run1", tasks)
			}
			r, err := s.Open(context.Background(), env, tasks[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			wantSchema := "id int, small int, mid int, price decimal, big decimal, ratio float, f4 float, name string, code string, note string, " +
				"active bool, at timestamp, wall timestamp, day date, data bytes, doc json, docb json, uid string, span string, tags string"
			if got := r.Schema().String(); got != wantSchema {
				t.Errorf("schema\n got %s\nwant %s", got, wantSchema)
			}
			res := drain(t, r, -1)
			if diff := cmp.Diff(want, res.Rows, cmp.Comparer(func(a, b record.Dec) bool { return a.String() == b.String() })); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{1, 2}, res.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceTimestampWithoutZoneInPipelineZone(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE t (id int PRIMARY KEY, wall timestamp); INSERT INTO t VALUES (1, '2024-07-01 12:00:00.5')")
	env := testEnv(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no zone database")
	}
	env.Location = paris
	res := readAll(t, buildSource(t, p.yaml("table: t")), env, connector.Task{Key: "t@run1"}, nil)
	got := res.Rows[0][1].(time.Time)
	if want := time.Date(2024, 7, 1, 12, 0, 0, 500000000, paris); !got.Equal(want) || got.Location() != paris {
		t.Errorf("wall clock read as %v, want %v", got, want)
	}
}

func TestSourceDeclaredSchemaConverts(t *testing.T) {
	p := newPG(t)
	p.exec(typesTable + "; " + typesRows)
	s := buildSource(t, p.yaml("table: things\nschema: {id: string, price: float, at: string, doc: string, mid: int, note: json}"))
	sc, ok := s.(connector.Schemer)
	if !ok || sc.Schema().String() != "id string, price float, at string, doc string, mid int, note json" {
		t.Fatalf("a source with a declared schema: Schemer %v", ok)
	}
	res := readAll(t, s, testEnv(t), connector.Task{Key: "things@run1"}, nil)
	// Row 1's note is not JSON: it is rejected, naming the field and the value.
	if len(res.Rows) != 1 || len(res.Rejects) != 1 {
		t.Fatalf("%d rows and %d rejects, want 1 and 1", len(res.Rows), len(res.Rejects))
	}
	want := record.Row{"2", -0.0001, "-0043-03-15T12:00:00Z", `null`, nil, nil}
	if diff := cmp.Diff(want, res.Rows[0]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	rj := res.Rejects[0]
	if rj.Field != "note" || !strings.Contains(rj.Err, `field "note"`) || !strings.Contains(rj.Err, "tab") || rj.Line != 1 || !strings.Contains(string(rj.Raw), `"id":"1"`) {
		t.Errorf("reject %+v (raw %s)", rj, rj.Raw)
	}
}

func TestSourceRejectsValuesWithoutARecordValue(t *testing.T) {
	p := newPG(t)
	p.exec(`CREATE TABLE t (id int PRIMARY KEY, n numeric, at timestamptz, d date);
		INSERT INTO t VALUES (1, 'NaN', now(), now()), (2, 1, 'infinity', now()), (3, 1, now(), '-infinity'), (4, 2.5, '2024-01-01', '2024-01-01')`)
	res := readAll(t, buildSource(t, p.yaml("table: t")), testEnv(t), connector.Task{Key: "t@run1"}, nil)
	if len(res.Rows) != 1 || res.Rows[0][0] != int64(4) {
		t.Fatalf("rows %v, want only row 4", res.Rows)
	}
	var got []string
	for _, rj := range res.Rejects {
		got = append(got, fmt.Sprintf("%d %s", rj.Line, rj.Field))
	}
	if diff := cmp.Diff([]string{"1 n", "2 at", "3 d"}, got); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if !strings.Contains(res.Rejects[0].Err, `value "NaN"`) {
		t.Errorf("reject error %q does not name the value", res.Rejects[0].Err)
	}
}

// seq makes n rows (id, at) where at is the same for all rows.
func fillTies(p *pg, n int) {
	p.exec(fmt.Sprintf(`CREATE TABLE ev (id bigint NOT NULL, at timestamptz NOT NULL, v text, PRIMARY KEY (id));
		CREATE INDEX ev_cursor ON ev (at, id);
		INSERT INTO ev SELECT i, '2024-05-01 10:00:00.123456+00', 'v' || i FROM generate_series(1, %d) i`, n))
}

func ids(rows []record.Row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r[0].(int64)
	}
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestSourceIncrementalTiesAcrossBatches(t *testing.T) {
	p := newPG(t)
	fillTies(p, 10000)
	env := testEnv(t)
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 100"))
	tasks, err := s.Plan(context.Background(), env)
	if err != nil || len(tasks) != 1 || tasks[0].Key != "ev" {
		t.Fatalf("Plan: %v %+v, want one task ev", err, tasks)
	}
	// Read in three goes, resuming each time from the last position: the
	// first read goes through the table as stored, and its last position
	// is the last row in (cursor, key) order, whose values the rows all
	// share but for the key.
	got, pos := readInGoes(t, s, env, tasks[0], nil)
	slices.Sort(got)
	if diff := cmp.Diff(seq(1, 10000), got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	var pj posJSON
	if err := json.Unmarshal(pos, &pj); err != nil {
		t.Fatal(err)
	}
	wantLast := []posVal{{Type: "timestamp with time zone", V: ptr("2024-05-01 10:00:00.123456+00")}, {Type: "bigint", V: ptr("10000")}}
	if diff := cmp.Diff(wantLast, pj.Last); diff != "" {
		t.Errorf("position values (-want +got):\n%s", diff)
	}
	// Nothing new: the next run reads nothing.
	if res := readAll(t, s, env, tasks[0], pos); len(res.Rows) != 0 {
		t.Errorf("a run without new rows read %d rows", len(res.Rows))
	}
	// A new row with the same cursor value and a higher key is read.
	p.exec("INSERT INTO ev VALUES (10001, '2024-05-01 10:00:00.123456+00', 'late tie')")
	res := readAll(t, s, env, tasks[0], pos)
	if !cmp.Equal(ids(res.Rows), []int64{10001}) {
		t.Errorf("after a new tie: ids %v, want [10001]", ids(res.Rows))
	}
	// Ties across batches of a read in order: many rows with one new cursor
	// value, read 100 at a time in three goes, are read in key order.
	p.exec(`INSERT INTO ev SELECT i, '2024-05-02 10:00:00.5+00', 'tie' FROM generate_series(20000, 11001, -1) i`)
	got, _ = readInGoes(t, s, env, tasks[0], res.Pos)
	if diff := cmp.Diff(seq(11001, 20000), got); diff != "" {
		t.Errorf("ids read in order (-want +got):\n%s", diff)
	}
}

// readInGoes reads task from pos in three goes of 7 batches, 33 batches
// and the rest, each resuming from the position the one before ended at.
func readInGoes(t *testing.T, s connector.Source, env *connector.Env, task connector.Task, pos record.Position) ([]int64, record.Position) {
	t.Helper()
	var got []int64
	for _, batches := range []int{7, 33, -1} {
		r, err := s.Open(context.Background(), env, task, pos)
		if err != nil {
			t.Fatal(err)
		}
		res := drain(t, r, batches)
		r.Close()
		got = append(got, ids(res.Rows)...)
		if res.Pos != nil {
			pos = res.Pos
		}
		if batches > 0 && res.Batches != batches {
			t.Fatalf("read %d batches, want %d", res.Batches, batches)
		}
	}
	return got, pos
}

func ptr(s string) *string { return &s }

func TestSourceIncrementalMicroseconds(t *testing.T) {
	p := newPG(t)
	// Rows a microsecond apart, the key against the cursor's order.
	p.exec(`CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz NOT NULL);
		INSERT INTO ev SELECT 1000 - i, '2024-05-01 10:00:00+00'::timestamptz + i * interval '1 microsecond' FROM generate_series(1, 500) i`)
	env := testEnv(t)
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 7"))
	var got []time.Time
	var pos record.Position
	for {
		r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
		if err != nil {
			t.Fatal(err)
		}
		res := drain(t, r, 1) // one batch per reader: every batch resumes from a position
		r.Close()
		if res.Batches == 0 {
			break
		}
		for _, row := range res.Rows {
			got = append(got, row[1].(time.Time))
		}
		pos = res.Pos
	}
	if len(got) != 500 {
		t.Fatalf("read %d rows, want 500", len(got))
	}
	for i, at := range got {
		if want := time.Date(2024, 5, 1, 10, 0, 0, (i+1)*1000, time.UTC); !at.Equal(want) {
			t.Fatalf("row %d at %v, want %v", i, at, want)
		}
	}
}

func TestSourceIncrementalNullCursor(t *testing.T) {
	p := newPG(t)
	// The first read (in physical order) takes the one row there is; the
	// rows added then are read in order.
	p.exec(`CREATE TABLE ev (id bigint, at timestamptz); INSERT INTO ev VALUES (0, '2023-12-31')`)
	env := testEnv(t)
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 1"))
	pos := readAll(t, s, env, connector.Task{Key: "ev"}, nil).Pos
	p.exec(`INSERT INTO ev VALUES (1, '2024-01-01'), (2, NULL), (3, '2024-01-02'), (4, NULL), (5, '2024-01-01'), (NULL, '2024-01-03'), (NULL, NULL)`)
	var got []any
	for {
		r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, pos)
		if err != nil {
			t.Fatal(err)
		}
		res := drain(t, r, 1)
		r.Close()
		if res.Batches == 0 {
			break
		}
		got = append(got, res.Rows[0][0])
		pos = res.Pos
	}
	// Order by (at, id), NULLs last: each row exactly once.
	want := []any{int64(1), int64(5), int64(3), nil, int64(2), int64(4), nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestSourceLookbackPicksUpLateCommits(t *testing.T) {
	tests := []struct {
		name     string
		lookback string
		want     []int64
	}{
		{"without lookback the late row is missed", "", []int64{4}},
		{"lookback re-reads its window", "lookback: 10m", []int64{2, 9, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			p.exec(`CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz NOT NULL);
				INSERT INTO ev VALUES (1, '2024-05-01 09:00:00+00'), (2, '2024-05-01 09:55:00+00'), (3, '2024-05-01 10:00:00+00')`)
			s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\n"+tc.lookback))
			env := testEnv(t)
			first := readAll(t, s, env, connector.Task{Key: "ev"}, nil)
			if diff := cmp.Diff([]int64{1, 2, 3}, ids(first.Rows)); diff != "" {
				t.Fatalf("first run (-want +got):\n%s", diff)
			}
			// A transaction that started earlier commits a row with an older
			// cursor value; a new row arrives too.
			p.exec(`INSERT INTO ev VALUES (9, '2024-05-01 09:58:00+00'), (4, '2024-05-01 10:05:00+00')`)
			env2 := testEnv(t)
			env2.RunID = "run2"
			second := readAll(t, s, env2, connector.Task{Key: "ev"}, first.Pos)
			if diff := cmp.Diff(tc.want, ids(second.Rows)); diff != "" {
				t.Errorf("second run (-want +got):\n%s", diff)
			}
			// Within a run, a resumed read does not look back.
			if again := readAll(t, s, env2, connector.Task{Key: "ev"}, second.Pos); len(again.Rows) != 0 {
				t.Errorf("resumed within the run: read %v again", ids(again.Rows))
			}
		})
	}
}

func TestSourceLookbackNeedsATimeCursor(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE ev (id bigint PRIMARY KEY, n bigint NOT NULL)")
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: n\nkey: id\nlookback: 1h"))
	_, err := s.Plan(context.Background(), testEnv(t))
	if err == nil || !strings.Contains(err.Error(), "lookback needs a timestamp or date cursor") {
		t.Errorf("Plan: %v", err)
	}
}

func TestSourceSchemaDrift(t *testing.T) {
	tests := []struct {
		name      string
		policy    string
		change    string
		wantErr   string
		wantSchem string
		wantRow   record.Row
	}{
		{"added column fails by default", "", "ALTER TABLE ev ADD COLUMN note text", "added note (text)", "", nil},
		{"added column read with add_columns", "add_columns", "ALTER TABLE ev ADD COLUMN note text DEFAULT 'n'", "",
			"id int, at timestamp, v string, note string", record.Row{int64(3), nil, nil, "n"}},
		{"added column left out with ignore_new", "ignore_new", "ALTER TABLE ev ADD COLUMN note text DEFAULT 'n'", "",
			"id int, at timestamp, v string", record.Row{int64(3), nil, nil}},
		{"removed column always fails", "add_columns", "ALTER TABLE ev DROP COLUMN v", "removed v (text)", "", nil},
		{"retyped column always fails", "ignore_new", "ALTER TABLE ev ALTER COLUMN v TYPE integer USING length(v)", "type of v from text to integer changed", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			p.exec(`CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz, v text);
				INSERT INTO ev VALUES (1, NULL, 'a'), (2, NULL, 'b')`)
			yaml := "table: ev\nmode: incremental\ncursor: id\nkey: id"
			if tc.policy != "" {
				yaml += "\nschema_drift: " + tc.policy
			}
			s := buildSource(t, p.yaml(yaml))
			env := testEnv(t)
			first := readAll(t, s, env, connector.Task{Key: "ev"}, nil)
			p.exec(tc.change)
			p.exec("INSERT INTO ev (id) VALUES (3)")
			r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, first.Pos)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Schema().String(); got != tc.wantSchem {
				t.Errorf("schema %q, want %q", got, tc.wantSchem)
			}
			res := drain(t, r, -1)
			if diff := cmp.Diff([]record.Row{tc.wantRow}, res.Rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceFullModeSplitsKeyRanges(t *testing.T) {
	p := newPG(t)
	p.exec(`CREATE TABLE big (id integer PRIMARY KEY, v text);
		INSERT INTO big SELECT i, 'v' || i FROM generate_series(-50, 1000) i; ANALYZE big`)
	s := buildSource(t, p.yaml("table: big\nparallel: 3\nbatch_rows: 50"))
	env := testEnv(t)
	tasks, err := s.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, tk := range tasks {
		keys = append(keys, tk.Key)
	}
	want := []string{"big@run1#1/3:-50..300", "big@run1#2/3:301..651", "big@run1#3/3:652..1000"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("tasks (-want +got):\n%s", diff)
	}
	// Read the ranges concurrently; the second stops after two batches and
	// resumes from its own position.
	got := make([][]int64, len(tasks))
	var wg sync.WaitGroup
	for i, tk := range tasks {
		wg.Go(func() {
			r, err := s.Open(context.Background(), env, tk, nil)
			if err != nil {
				t.Error(err)
				return
			}
			max := -1
			if i == 1 {
				max = 2
			}
			res := drain(t, r, max)
			r.Close()
			got[i] = ids(res.Rows)
			if i == 1 {
				got[i] = append(got[i], ids(readAll(t, s, env, tk, res.Pos).Rows)...)
			}
		})
	}
	wg.Wait()
	var all []int64
	for _, g := range got {
		all = append(all, g...)
	}
	if diff := cmp.Diff(seq(-50, 1000), all); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestSplitRange(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int64
		n      int
		want   [][2]int64
	}{
		{"even", 1, 10, 2, [][2]int64{{1, 5}, {6, 10}}},
		{"fewer values than ranges", 5, 6, 4, [][2]int64{{5, 5}, {6, 6}}},
		{"one value", 7, 7, 3, [][2]int64{{7, 7}}},
		{"whole int64", -1 << 63, 1<<63 - 1, 2, [][2]int64{{-1 << 63, -1}, {0, 1<<63 - 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, splitRange(tc.lo, tc.hi, tc.n)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceQueryUnorderedResumesByCount(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE t (n int); INSERT INTO t SELECT i FROM generate_series(1, 25) i")
	s := buildSource(t, p.yaml("query: SELECT n, n * 2 AS twice FROM t ORDER BY n\nbatch_rows: 10"))
	env := testEnv(t)
	r, err := s.Open(context.Background(), env, connector.Task{Key: "query@run1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := drain(t, r, 1)
	r.Close()
	rest := readAll(t, s, env, connector.Task{Key: "query@run1"}, first.Pos)
	all := append(first.Rows, rest.Rows...)
	if len(all) != 25 || all[24][1] != int64(50) || all[10][0] != int64(11) {
		t.Errorf("rows %v", all)
	}
	if diff := cmp.Diff(seq(11, 25), rest.Lines); diff != "" {
		t.Errorf("lines of the resumed read (-want +got):\n%s", diff)
	}
}

func TestSourceCheck(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz)")
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "table: ev\nmode: incremental\ncursor: at\nkey: id", ""},
		{"missing table", "table: nope", "does not exist"},
		{"missing cursor", "table: ev\nmode: incremental\ncursor: updated\nkey: id", "no column updated"},
		{"missing declared field", "table: ev\nschema: {id: int, name: string}", "no column name"},
		{"bad query", "query: SELECT nope FROM ev", "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := buildSource(t, p.yaml(tc.yaml)).(checker).Check(context.Background(), testEnv(t))
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSourceCancellationAndNoLeaks(t *testing.T) {
	p := newPG(t)
	fillTies(p, 20000)
	p.noLeaks()
	s := buildSource(t, p.yaml("table: ev\nmode: incremental\ncursor: at\nkey: id\nbatch_rows: 100"))
	env := testEnv(t)
	r, err := s.Open(context.Background(), env, connector.Task{Key: "ev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := drain(t, r, 2); len(res.Rows) != 200 {
		t.Fatalf("read %d rows", len(res.Rows))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	// A reader closed in the middle of its stream.
	r, err = s.Open(context.Background(), env, connector.Task{Key: "ev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, r, 1)
	r.Close()
	// A reader closed before reading.
	r, err = s.Open(context.Background(), env, connector.Task{Key: "ev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestSourceNextAfterEOF(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	r, err := buildSource(t, p.yaml("table: t")).Open(context.Background(), testEnv(t), connector.Task{Key: "t@run1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	drain(t, r, -1)
	for range 2 {
		if _, err := r.Next(context.Background()); err != io.EOF {
			t.Errorf("Next after the end: %v, want io.EOF", err)
		}
	}
}

func TestSourceRefusesAForeignPosition(t *testing.T) {
	p := newPG(t)
	p.exec("CREATE TABLE t (id int PRIMARY KEY, at timestamptz)")
	s := buildSource(t, p.yaml("table: t\nmode: incremental\ncursor: at\nkey: id"))
	tests := []struct {
		name, pos, want string
	}{
		{"not JSON", "42", "not a position of this source"},
		{"newer version", `{"v":2}`, "version 2"},
		{"other ordering", `{"v":1,"order":["id"],"last":[{"type":"integer","v":"1"}]}`, "ordering columns (id)"},
		{"retyped cursor", `{"v":1,"order":["at","id"],"last":[{"type":"date","v":"2024-01-01"},{"type":"integer","v":"1"}]}`, `"at" changed type`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Open(context.Background(), testEnv(t), connector.Task{Key: "t"}, record.Position(tc.pos))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want %q", err, tc.want)
			}
		})
	}
}

// checker is what `backbone validate --connect` will ask components for.
type checker interface {
	Check(ctx context.Context, env *connector.Env) error
}

func TestEveryComponentChecks(t *testing.T) {
	conn := "dsn: " + testDSN + "\ntable: t\n"
	components := map[string]any{
		"source":                  buildSource(t, conn),
		"source with a schema":    buildSource(t, conn+"schema: {id: int}"),
		"sink":                    buildSink(t, conn),
		"lookup":                  buildLookup(t, conn+"key: id"),
		"lookup with a schema":    buildLookup(t, conn+"key: id\nschema: {id: int}"),
		"lookup in query mode":    buildLookup(t, conn+"key: id\ncache: {mode: query}"),
		"source in a key range":   buildSource(t, conn+"key: id\nparallel: 4"),
		"sink in mode replace":    buildSink(t, conn+"mode: replace"),
		"sink in mode upsert":     buildSink(t, conn+"mode: upsert\nkey: id"),
		"incremental source":      buildSource(t, conn+"mode: incremental\ncursor: at\nkey: id"),
		"source of a query":       buildSource(t, "dsn: "+testDSN+"\nquery: SELECT 1 AS one"),
		"lookup of a query":       buildLookup(t, "dsn: "+testDSN+"\nquery: SELECT 1 AS one\nkey: one"),
		"sink creating its table": buildSink(t, conn+"create: true"),
	}
	for name, c := range components {
		if _, ok := c.(checker); !ok {
			t.Errorf("%s (%T) has no Check method", name, c)
		}
	}
}
