package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parquet-go/parquet-go"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// writeParquet writes rows through the parquet sink and commits.
func writeParquet(t testing.TB, env *connector.Env, path string, schema *record.Schema, batches ...[]record.Row) {
	t.Helper()
	w, err := newSink(t, "type: parquet\npath: "+path+"\nrow_group_rows: 3").Open(context.Background(), env, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, rows := range batches {
		writeAll(t, w, schema, rows)
	}
	if err := w.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestParquetRoundTrip reads a CSV file, writes it to parquet and reads
// that back: decimals stay exact and timestamps keep their nanoseconds.
func TestParquetRoundTrip(t *testing.T) {
	env := testEnv(t)
	writeFile(t, env, "in.csv", "id,name,price,at,ok,day,ratio,doc\n"+
		"1,plain,12.340,2024-01-02T03:04:05.123456789Z,true,2024-01-02,0.25,\"{\"\"a\"\":[1,2.50]}\"\n"+
		"2,\"x,y\",-98765432109876543210.000000001,1999-12-31T23:59:59.000000001+02:00,false,1970-01-01,-1e-9,null\n"+
		"3,,,,,,,\n"+
		"4,\"\",0,2262-04-11T23:47:16.854775807Z,true,1600-01-01,1e300,[]\n")
	schemaYAML := "{ id: int, name: string, price: decimal, at: timestamp, ok: bool, day: date, ratio: float, doc: json }"
	csvRows := readTask(t, newSource(t, "type: csv\npath: in.csv\nschema: "+schemaYAML), env, connector.Task{Key: "in.csv"}, nil)
	if len(csvRows.Rejects) > 0 || len(csvRows.Rows) != 4 {
		t.Fatalf("csv: %d rows, rejects %+v", len(csvRows.Rows), csvRows.Rejects)
	}
	schema := newSource(t, "type: csv\npath: in.csv\nschema: "+schemaYAML).(connector.Schemer).Schema()
	writeParquet(t, env, "out/{date}.parquet", schema, csvRows.Rows[:3], csvRows.Rows[3:])

	src := newSource(t, "type: parquet\npath: out/*.parquet")
	tasks, res := planAll(t, src, env)
	if len(tasks) != 1 || tasks[0].Key != "out/2024-05-17.parquet" {
		t.Fatalf("tasks %+v", tasks)
	}
	got := res[0]
	if got.Schema != schema.String() {
		t.Errorf("schema %q, want %q", got.Schema, schema)
	}
	if len(got.Rejects) > 0 {
		t.Fatalf("rejects %+v", got.Rejects)
	}
	exact := append([]cmp.Option{}, cmpOpts...)
	if diff := cmp.Diff(csvRows.Rows, got.Rows, exact...); diff != "" {
		t.Errorf("round trip (-csv +parquet):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, got.Lines); diff != "" {
		t.Errorf("row numbers (-want +got):\n%s", diff)
	}
	if d := got.Rows[0][2].(record.Dec); d.String() != "12.340" {
		t.Errorf("decimal lost its scale: %s", d)
	}
	if ns := got.Rows[1][3].(time.Time).Nanosecond(); ns != 1 {
		t.Errorf("timestamp lost its nanoseconds: %d", ns)
	}

	t.Run("schema picks and converts columns", func(t *testing.T) {
		src := newSource(t, "type: parquet\npath: out/*.parquet\nschema: { price: string, id: decimal }")
		got := readTask(t, src, env, tasks[0], nil)
		want := []record.Row{{"12.340", dec("1")}, {"-98765432109876543210.000000001", dec("2")}, {nil, dec("3")}, {"0", dec("4")}}
		if diff := cmp.Diff(want, got.Rows, cmpOpts...); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("a value that does not convert is a reject", func(t *testing.T) {
		src := newSource(t, "type: parquet\npath: out/*.parquet\nschema: { name: int }")
		got := readTask(t, src, env, tasks[0], nil)
		if len(got.Rejects) != 2 || got.Rejects[0].Line != 1 || got.Rejects[0].Field != "name" ||
			got.Rejects[0].Err != `field "name": value "plain" is not a valid int: not an integer` || string(got.Rejects[0].Raw) != `{"name":"plain"}` {
			t.Errorf("rejects %+v", got.Rejects)
		}
		if diff := cmp.Diff([]record.Row{{nil}, {nil}}, got.Rows); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("missing column", func(t *testing.T) {
		src := newSource(t, "type: parquet\npath: out/*.parquet\nschema: { nope: int }")
		_, err := src.Open(context.Background(), env, tasks[0], nil)
		if err == nil || !strings.Contains(err.Error(), "no column nope (columns: id, name, price, at, ok, day, ratio, doc)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("resume from every position", func(t *testing.T) {
		env2 := *env
		env2.Limits.BatchRows = 1
		r, err := src.Open(context.Background(), &env2, tasks[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		seen := 0
		for {
			b, err := r.Next(context.Background())
			if err != nil {
				break
			}
			seen += len(b.Rows)
			rest := readTask(t, src, &env2, tasks[0], b.Pos)
			if diff := cmp.Diff(got.Rows[seen:], rest.Rows, append(cmpOpts, cmpopts.EquateEmpty())...); diff != "" {
				t.Fatalf("after %d rows (-want +got):\n%s", seen, diff)
			}
		}
		if seen != 4 {
			t.Fatalf("read %d rows in batches of one", seen)
		}
	})
}

// A row the file cannot store is refused, the others written, whether the
// engine prepared the batch on a worker (Prepare) or Write converts it.
func TestParquetSinkRefusesRows(t *testing.T) {
	for _, prepared := range []bool{false, true} {
		t.Run(fmt.Sprint("prepared ", prepared), func(t *testing.T) {
			env := testEnv(t)
			schema := record.MustSchema(record.Field{Name: "at", Type: record.Timestamp}, record.Field{Name: "n", Type: record.Int})
			w, err := newSink(t, "type: parquet\npath: out.parquet").Open(context.Background(), env, schema)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			b := &record.Batch{Schema: schema, Rows: []record.Row{
				{ts("2024-01-01T00:00:00Z"), int64(1)},
				{ts("3000-01-01T00:00:00Z"), int64(2)},
				{nil, "not a number"},
				{nil, int64(4)},
			}}
			if prepared {
				if err := w.(connector.Preparer).Prepare(b); err != nil || b.Prepared == nil {
					t.Fatalf("Prepare: %v, %v", b.Prepared, err)
				}
			}
			n, err := w.Write(context.Background(), b)
			var be *connector.BatchError
			if !errors.As(err, &be) || n != 2 {
				t.Fatalf("n=%d err=%v, want 2 written and a *BatchError", n, err)
			}
			var idx []int
			for _, re := range be.Rows {
				idx = append(idx, re.Index)
			}
			if diff := cmp.Diff([]int{1, 2}, idx); diff != "" {
				t.Errorf("refused rows (-want +got):\n%s", diff)
			}
			if !strings.Contains(be.Rows[0].Err.Error(), `field "at": timestamp 3000-01-01T00:00:00Z is outside the range`) {
				t.Errorf("error %v", be.Rows[0].Err)
			}
			if err := w.Commit(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			got := readTask(t, newSource(t, "type: parquet\npath: out.parquet"), env, connector.Task{Key: "out.parquet"}, nil)
			if diff := cmp.Diff([]record.Row{{ts("2024-01-01T00:00:00Z"), int64(1)}, {nil, int64(4)}}, got.Rows, cmpOpts...); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// extRow is a file written by another program: no backbone metadata,
// logical types of its own.
type extRow struct {
	ID    int32     `parquet:"id"`
	Price int64     `parquet:"price,decimal(2:18)"`
	Small int32     `parquet:"small,decimal(3:9)"`
	At    time.Time `parquet:"at,timestamp(millisecond)"`
	Day   int32     `parquet:"day,date"`
	Name  string    `parquet:"name"`
	Blob  []byte    `parquet:"blob"`
	F     float32   `parquet:"f"`
	OK    bool      `parquet:"ok"`
	Opt   *string   `parquet:"opt,optional"`
}

func TestParquetSourceForeignFile(t *testing.T) {
	env := testEnv(t)
	hello := "hello"
	rows := []extRow{
		{ID: 1, Price: -12345, Small: 5, At: time.UnixMilli(1700000000123).UTC(), Day: 19782, Name: "a", Blob: []byte{0, 1}, F: 1.5, OK: true, Opt: &hello},
		{ID: 2, Price: 7, Small: -1, At: time.UnixMilli(0).UTC(), Day: 0, Name: "b", Blob: []byte{}, F: -2, OK: false},
	}
	f, err := os.Create(filepath.Join(env.Dir, "ext.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewGenericWriter[extRow](f)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := readTask(t, newSource(t, "type: parquet\npath: ext.parquet"), env, connector.Task{Key: "ext.parquet"}, nil)
	if want := "id int, price decimal, small decimal, at timestamp, day date, name string, blob bytes, f float, ok bool, opt string"; got.Schema != want {
		t.Errorf("schema %q, want %q", got.Schema, want)
	}
	want := []record.Row{
		{int64(1), dec("-123.45"), dec("0.005"), ts("2023-11-14T22:13:20.123Z"), record.LocalDate(19782), "a", []byte{0, 1}, 1.5, true, "hello"},
		{int64(2), dec("0.07"), dec("-0.001"), ts("1970-01-01T00:00:00Z"), record.LocalDate(0), "b", []byte{}, -2.0, false, nil},
	}
	if diff := cmp.Diff(want, got.Rows, cmpOpts...); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParquetSourceCorruptFile(t *testing.T) {
	env := testEnv(t)
	writeFile(t, env, "bad.parquet", "PAR1 this is not a parquet file PAR1")
	_, err := newSource(t, "type: parquet\npath: bad.parquet").Open(context.Background(), env, connector.Task{Key: "bad.parquet"}, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.parquet") {
		t.Fatalf("err = %v", err)
	}
}

func TestSchemaMeta(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "a", Type: record.Decimal}, record.Field{Name: "b", Type: record.JSON})
	got, err := parseSchemaMeta(encodeSchemaMeta(s))
	if err != nil || !got.Equal(s) {
		t.Fatalf("got %v, %v", got, err)
	}
	var raw []map[string]string
	if err := json.Unmarshal([]byte(encodeSchemaMeta(s)), &raw); err != nil || raw[0]["type"] != "decimal" {
		t.Fatalf("meta %s", encodeSchemaMeta(s))
	}
}
