package file

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestCSVSourceRead(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		yaml     string // after "type: csv\npath: in.csv"
		file     string // written as in.csv (or in.csv.gz when gzipped)
		gzipped  bool
		maxRec   int
		schema   string
		rows     []record.Row
		lines    []int64
		raw      []string
		rejects  []record.Reject
		skipRaws bool
	}{
		{
			name:   "typed with header",
			yaml:   "schema: { id: int, price: decimal, at: timestamp, ok: bool }",
			file:   "id,price,at,ok\n1,9.99,2024-01-02T03:04:05.123456789Z,true\n2,-0.50,2024-01-02 03:04:05,no\n",
			schema: "id int, price decimal, at timestamp, ok bool",
			rows: []record.Row{
				{int64(1), dec("9.99"), ts("2024-01-02T03:04:05.123456789Z"), true},
				{int64(2), dec("-0.50"), ts("2024-01-02T03:04:05Z"), false},
			},
			lines: []int64{2, 3},
			raw:   []string{"1,9.99,2024-01-02T03:04:05.123456789Z,true", "2,-0.50,2024-01-02 03:04:05,no"},
		},
		{
			name:   "columns by name, extra ignored",
			yaml:   "schema: { b: string, a: int }",
			file:   "a,x,b\n1,ignored,one\n",
			schema: "b string, a int",
			rows:   []record.Row{{"one", int64(1)}},
			lines:  []int64{2},
		},
		{
			name:   "no schema: strings, unquoted empty is null, quoted empty is not",
			file:   "a,b,c\n,\"\",x\n",
			schema: "a string, b string, c string",
			rows:   []record.Row{{nil, "", "x"}},
			lines:  []int64{2},
		},
		{
			name:   "null text",
			yaml:   `null_text: "NULL"` + "\nschema: { a: string, b: int }",
			file:   "a,b\nNULL,NULL\n\"NULL\",\n",
			schema: "a string, b int",
			rows:   []record.Row{{nil, nil}, {"NULL", nil}},
			lines:  []int64{2, 3},
		},
		{
			name:   "no header: by position",
			yaml:   "header: false\nschema: { a: int, b: string }",
			file:   "1,x\n2,y\n",
			schema: "a int, b string",
			rows:   []record.Row{{int64(1), "x"}, {int64(2), "y"}},
			lines:  []int64{1, 2},
		},
		{
			name:   "bom and crlf",
			yaml:   "schema: { a: int, b: string }",
			file:   "\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n2,z\r\n",
			schema: "a int, b string",
			rows:   []record.Row{{int64(1), "x\r\ny"}, {int64(2), "z"}},
			lines:  []int64{2, 4},
		},
		{
			name:   "semicolon delimiter and other quote",
			yaml:   "delimiter: ';'\nquote: \"'\"\nschema: { a: string, b: string }",
			file:   "a;b\n'x;y';'it''s'\n",
			schema: "a string, b string",
			rows:   []record.Row{{"x;y", "it's"}},
			lines:  []int64{2},
		},
		{
			name:    "gzip by suffix",
			yaml:    "schema: { a: int }",
			file:    "a\n1\n2\n",
			gzipped: true,
			schema:  "a int",
			rows:    []record.Row{{int64(1)}, {int64(2)}},
			lines:   []int64{2, 3},
		},
		{
			name:   "timezone for timestamps without zone",
			yaml:   "timezone: Europe/Paris\nschema: { at: timestamp }",
			file:   "at\n2024-07-01 12:00:00\n2024-07-01T12:00:00Z\n",
			schema: "at timestamp",
			rows:   []record.Row{{time.Date(2024, 7, 1, 12, 0, 0, 0, paris)}, {ts("2024-07-01T12:00:00Z")}},
			lines:  []int64{2, 3},
		},
		{name: "header only", yaml: "schema: { a: int }", file: "a\n", schema: "a int"},
		{name: "empty file", yaml: "schema: { a: int }", file: "", schema: "a int"},
		{name: "empty file without schema", file: "", schema: ""},
		{
			name:   "unbalanced quote",
			yaml:   "schema: { a: int, b: string }",
			file:   "a,b\n1,ok\n2,\"never closed\n3,x\n",
			schema: "a int, b string",
			rows:   []record.Row{{int64(1), "ok"}},
			lines:  []int64{2},
			rejects: []record.Reject{{Line: 3, Step: "source", Raw: []byte("2,\"never closed\n3,x"),
				Err: "unbalanced quote: field 2 opens a quote at line 3 that is not closed before the end of the file"}},
		},
		{
			name:   "invalid utf-8",
			yaml:   "schema: { a: int, b: string }",
			file:   "a,b\n1,\xff\xfe\n2,fine\n",
			schema: "a int, b string",
			rows:   []record.Row{{int64(2), "fine"}},
			lines:  []int64{3},
			rejects: []record.Reject{{Line: 2, Step: "source", Field: "b", Raw: []byte("1,\xff\xfe"),
				Err: "field \"b\": value \"\uFFFD\" is not a valid string: invalid UTF-8"}},
		},
		{
			name:   "wrong column count",
			yaml:   "schema: { a: int, b: string }",
			file:   "a,b\n1\n2,x,extra\n3,y\n",
			schema: "a int, b string",
			rows:   []record.Row{{int64(3), "y"}},
			lines:  []int64{4},
			rejects: []record.Reject{
				{Line: 2, Step: "source", Raw: []byte("1"), Err: "expected 2 fields, got 1"},
				{Line: 3, Step: "source", Raw: []byte("2,x,extra"), Err: "expected 2 fields, got 3"},
			},
		},
		{
			name:   "conversion reject names field, value and reason",
			yaml:   "schema: { id: int, qty: int, price: decimal }",
			file:   "id,qty,price\n1,many,2.5\n2,3,1,5\n3,4,abc\n",
			schema: "id int, qty int, price decimal",
			rejects: []record.Reject{
				{Line: 2, Step: "source", Field: "qty", Raw: []byte("1,many,2.5"), Err: `field "qty": value "many" is not a valid int: not an integer`},
				{Line: 3, Step: "source", Raw: []byte("2,3,1,5"), Err: "expected 3 fields, got 4"},
				{Line: 4, Step: "source", Field: "price", Raw: []byte("3,4,abc"), Err: `field "price": value "abc" is not a valid decimal: not a decimal number`},
			},
		},
		{
			name:   "record over the cap",
			yaml:   "schema: { a: int, b: string }",
			file:   "a,b\n1," + strings.Repeat("x", 2000) + "\n2,small\n",
			maxRec: 1024,
			schema: "a int, b string",
			rows:   []record.Row{{int64(2), "small"}},
			lines:  []int64{3},
			rejects: []record.Reject{{Line: 2, Step: "source", Raw: []byte("1," + strings.Repeat("x", 1024)),
				Err: "record exceeds 1024 bytes"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			if tc.maxRec > 0 {
				env.Limits.MaxRecordBytes = tc.maxRec
			}
			name, content := "in.csv", tc.file
			if tc.gzipped {
				name, content = "in.csv.gz", gz(t, tc.file)
			}
			writeFile(t, env, name, content)
			src := newSource(t, "type: csv\npath: "+name+"\n"+tc.yaml)
			tasks, res := planAll(t, src, env)
			if len(tasks) != 1 {
				t.Fatalf("%d tasks, want 1", len(tasks))
			}
			got := res[0]
			if got.Schema != tc.schema {
				t.Errorf("schema %q, want %q", got.Schema, tc.schema)
			}
			if diff := cmp.Diff(tc.rows, got.Rows, cmpOpts...); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.lines, got.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if tc.raw != nil {
				if diff := cmp.Diff(tc.raw, got.Raw); diff != "" {
					t.Errorf("raw (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.rejects, got.Rejects); diff != "" {
				t.Errorf("rejects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCSVSourceOpenErrors(t *testing.T) {
	tests := []struct {
		name, yaml, file, want string
		unavailable            bool
	}{
		{name: "missing columns", yaml: "schema: { a: int, b: int, c: int }", file: "a,x\n1,2\n", want: "csv: in.csv: the header has no column b, c (columns: a, x)"},
		{name: "duplicate header without schema", file: "a,a\n", want: `field "a" appears twice`},
		{name: "malformed header", yaml: "schema: { a: int }", file: "\"a\n", want: "in.csv:1: the header is malformed: unbalanced quote"},
		{name: "corrupt position", yaml: "schema: { a: int }", file: "a\n1\n", want: "is not one of this source's positions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			writeFile(t, env, "in.csv", tc.file)
			src := newSource(t, "type: csv\npath: in.csv\n"+tc.yaml)
			var pos record.Position
			if tc.name == "corrupt position" {
				pos = record.Position("garbage")
			}
			_, err := src.Open(context.Background(), env, connector.Task{Key: "in.csv"}, pos)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("missing file is unavailable", func(t *testing.T) {
		env := testEnv(t)
		src := newSource(t, "type: csv\npath: in.csv")
		_, err := src.Open(context.Background(), env, connector.Task{Key: "in.csv"}, nil)
		if !errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

func TestCSVSourceConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{name: "no header no schema", yaml: "path: a.csv\nheader: false", want: "needs a schema"},
		{name: "bad glob", yaml: "path: 'data/[.csv'", want: "not a valid glob"},
		{name: "long delimiter", yaml: "path: a.csv\ndelimiter: ';;'", want: "delimiter must be one ASCII character"},
		{name: "same quote and delimiter", yaml: "path: a.csv\ndelimiter: '\"'", want: "quote and delimiter must differ"},
		{name: "bad compression", yaml: "path: a.csv\ncompression: zip", want: "compression must be one of auto, none, gzip"},
		{name: "bad timezone", yaml: "path: a.csv\ntimezone: Mars/Olympus", want: `unknown timezone "Mars/Olympus"`},
		{name: "no path", yaml: "header: true", want: "path is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newCSVSource(params(t, tc.yaml))
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *PosError containing %q", err, tc.want)
			}
			if pe.Pos.Line == 0 {
				t.Errorf("error has no position: %v", err)
			}
		})
	}
}

func TestCSVSourcePlan(t *testing.T) {
	env := testEnv(t)
	writeFile(t, env, "data/orders/b.csv", "a\n1\n")
	writeFile(t, env, "data/orders/a.csv", "a\n1\n2\n")
	writeFile(t, env, "data/orders/c.txt", "no")
	young := writeFile(t, env, "data/orders/young.csv", "a\n")
	if err := os.Chtimes(young, runTime.Add(-10*time.Second), runTime.Add(-10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(env.Dir, "data/orders/dir.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	aInfo, err := os.Stat(filepath.Join(env.Dir, "data/orders/a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "glob, sorted, directories left out", yaml: "path: data/orders/*.csv", want: []string{"data/orders/a.csv", "data/orders/b.csv", "data/orders/young.csv"}},
		{name: "min_age leaves a young file out", yaml: "path: data/orders/*.csv\nmin_age: 1m", want: []string{"data/orders/a.csv", "data/orders/b.csv"}},
		{name: "missing directory", yaml: "path: nowhere/*.csv"},
	}
	t.Run("a missing file named without wildcards is unavailable", func(t *testing.T) {
		_, err := newSource(t, "type: csv\npath: data/orders/none.csv").Plan(context.Background(), env)
		if !errors.Is(err, connector.ErrUnavailable) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err %v, want unavailable and not-exist", err)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, "type: csv\n"+tc.yaml)
			tasks, err := src.Plan(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, task := range tasks {
				keys = append(keys, task.Key)
				if !task.Final || task.Size <= 0 || task.Fingerprint == "" {
					t.Errorf("task %+v: want final, sized, fingerprinted", task)
				}
			}
			if diff := cmp.Diff(tc.want, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("task of a file", func(t *testing.T) {
		tasks, err := newSource(t, "type: csv\npath: data/orders/a.csv").Plan(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		want := []connector.Task{{Key: "data/orders/a.csv", Size: 6, Final: true,
			Fingerprint: "6-" + itoa(aInfo.ModTime().UnixNano())}}
		if diff := cmp.Diff(want, tasks); diff != "" {
			t.Errorf("tasks (-want +got):\n%s", diff)
		}
	})
	t.Run("absolute path keeps absolute keys", func(t *testing.T) {
		abs := filepath.Join(env.Dir, "data/orders/a.csv")
		tasks, err := newSource(t, "type: csv\npath: "+abs).Plan(context.Background(), env)
		if err != nil || len(tasks) != 1 || tasks[0].Key != abs {
			t.Fatalf("tasks %+v, err %v", tasks, err)
		}
		res := readTask(t, newSource(t, "type: csv\npath: "+abs), env, tasks[0], nil)
		if len(res.Rows) != 2 {
			t.Fatalf("read %d rows", len(res.Rows))
		}
	})
	t.Run("unreadable match is unavailable", func(t *testing.T) {
		loopEnv := testEnv(t)
		loop := filepath.Join(loopEnv.Dir, "loop.csv")
		if err := os.Symlink(loop, loop); err != nil {
			t.Skip("no symlinks:", err)
		}
		_, err := newSource(t, "type: csv\npath: '*.csv'").Plan(context.Background(), loopEnv)
		if !errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestCSVSourceResume reads a file in small batches, then reopens it at
// every batch's position: the rest must be exactly the rows after it.
func TestCSVSourceResume(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,text\n")
	for i := 0; i < 50; i++ {
		switch i % 5 {
		case 0:
			b.WriteString(itoa(int64(i)) + ",\"multi\nline\"\n")
		case 1:
			b.WriteString("bad,row\n")
		case 2:
			b.WriteString("\n")
			b.WriteString(itoa(int64(i)) + ",after blank\n")
		default:
			b.WriteString(itoa(int64(i)) + ",plain\n")
		}
	}
	for _, gzipped := range []bool{false, true} {
		name := "plain"
		if gzipped {
			name = "gzip"
		}
		t.Run(name, func(t *testing.T) {
			env := testEnv(t)
			env.Limits.BatchRows = 3
			file, content := "in.csv", b.String()
			if gzipped {
				file, content = "in.csv.gz", gz(t, content)
			}
			writeFile(t, env, file, content)
			src := newSource(t, "type: csv\npath: "+file+"\nschema: { id: int, text: string }")
			task := connector.Task{Key: file}
			full := readTask(t, src, env, task, nil)
			if len(full.Rows)+len(full.Rejects) != 50 {
				t.Fatalf("read %d rows and %d rejects, want 50 records", len(full.Rows), len(full.Rejects))
			}
			rowsBefore, rejectsBefore := 0, 0
			r, err := src.Open(context.Background(), env, task, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for {
				batch, err := r.Next(context.Background())
				if err != nil {
					break
				}
				rowsBefore += len(batch.Rows)
				rejectsBefore += len(batch.Rejects)
				rest := readTask(t, src, env, task, batch.Pos)
				if diff := cmp.Diff(full.Rows[rowsBefore:], rest.Rows, append(cmpOpts, cmpopts.EquateEmpty())...); diff != "" {
					t.Fatalf("after %d rows, resumed rows differ (-want +got):\n%s", rowsBefore, diff)
				}
				if diff := cmp.Diff(full.Lines[rowsBefore:], rest.Lines, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("after %d rows, resumed lines differ (-want +got):\n%s", rowsBefore, diff)
				}
				if diff := cmp.Diff(full.Rejects[rejectsBefore:], rest.Rejects, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("after %d rejects, resumed rejects differ (-want +got):\n%s", rejectsBefore, diff)
				}
			}
			if rowsBefore != len(full.Rows) {
				t.Fatalf("second read saw %d rows, first %d", rowsBefore, len(full.Rows))
			}
		})
	}
}

// TestCSVSourceHugeLine streams a single 100 MB line to disk: it must be
// rejected without the reader ever holding it.
func TestCSVSourceHugeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MB")
	}
	env := testEnv(t)
	path := filepath.Join(env.Dir, "huge.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("a,b\n1,")
	chunk := []byte(strings.Repeat("x", 1<<20))
	for i := 0; i < 100; i++ {
		w.Write(chunk)
	}
	w.WriteString("\n2,ok\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, "type: csv\npath: huge.csv\nschema: { a: int, b: string }")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := readTask(t, src, env, connector.Task{Key: "huge.csv"}, nil)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got >= 32<<20 {
		t.Errorf("allocated %d MiB reading a 100 MiB line", got>>20)
	}
	if len(res.Rejects) != 1 || res.Rejects[0].Err != "record exceeds 16777216 bytes" || res.Rejects[0].Line != 2 {
		t.Fatalf("rejects %+v", res.Rejects)
	}
	if len(res.Rejects[0].Raw) > rawPrefix {
		t.Errorf("reject keeps %d bytes", len(res.Rejects[0].Raw))
	}
	if diff := cmp.Diff([]record.Row{{int64(2), "ok"}}, res.Rows); diff != "" {
		t.Errorf("rows after the huge line (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{3}, res.Lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestCSVSourceBatchBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("v\n")
	for i := 0; i < 100; i++ {
		b.WriteString("123456789\n")
	}
	tests := []struct {
		name        string
		rows, bytes int
		wantMax     int // records per batch
		wantBatches int
	}{
		{name: "rows", rows: 7, bytes: 1 << 20, wantMax: 7, wantBatches: 15},
		{name: "bytes", rows: 1000, bytes: 64, wantMax: 8, wantBatches: 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			env.Limits.BatchRows, env.Limits.BatchBytes = tc.rows, tc.bytes
			writeFile(t, env, "in.csv", b.String())
			r, err := newSource(t, "type: csv\npath: in.csv").Open(context.Background(), env, connector.Task{Key: "in.csv"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			batches, total := 0, 0
			for {
				batch, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if batch.Read > tc.wantMax {
					t.Errorf("batch of %d records, want at most %d", batch.Read, tc.wantMax)
				}
				batches++
				total += batch.Read
			}
			if total != 100 || batches != tc.wantBatches {
				t.Errorf("%d records in %d batches, want 100 in %d", total, batches, tc.wantBatches)
			}
		})
	}
}

func TestCSVSourceSeveralFiles(t *testing.T) {
	env := testEnv(t)
	writeFile(t, env, "in/2.csv", "n\n3\n")
	writeFile(t, env, "in/1.csv", "n\n1\n2\n")
	writeFile(t, env, "in/3.csv.gz", gz(t, "n\n4\n"))
	tasks, res := planAll(t, newSource(t, "type: csv\npath: in/*.csv*\nschema: { n: int }"), env)
	var keys []string
	var rows []record.Row
	for i, task := range tasks {
		keys = append(keys, task.Key)
		rows = append(rows, res[i].Rows...)
	}
	if diff := cmp.Diff([]string{"in/1.csv", "in/2.csv", "in/3.csv.gz"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]record.Row{{int64(1)}, {int64(2)}, {int64(3)}, {int64(4)}}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}
