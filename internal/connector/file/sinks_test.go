package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func newSink(t testing.TB, yaml string) connector.Sink {
	t.Helper()
	e, ok := registry().Get(connector.KindSink, typeOf(t, yaml))
	if !ok {
		t.Fatalf("no sink for %q", yaml)
	}
	s, err := e.Sink(params(t, yaml))
	if err != nil {
		t.Fatalf("sink %q: %v", yaml, err)
	}
	return s
}

// sampleSchema and sampleRows hold every type with its edge cases.
var sampleSchema = record.MustSchema(
	record.Field{Name: "id", Type: record.Int},
	record.Field{Name: "name", Type: record.String},
	record.Field{Name: "price", Type: record.Decimal},
	record.Field{Name: "at", Type: record.Timestamp},
	record.Field{Name: "ok", Type: record.Bool},
	record.Field{Name: "day", Type: record.Date},
	record.Field{Name: "ratio", Type: record.Float},
)

func sampleRows() []record.Row {
	return []record.Row{
		{int64(1), "plain", dec("12.340"), ts("2024-01-02T03:04:05.123456789Z"), true, record.LocalDate(19724), 0.25},
		{int64(-2), "comma, \"quote\"\nnewline", dec("-98765432109876543210.000000001"), ts("1999-12-31T23:59:59+02:00"), false, record.LocalDate(0), -1e-9},
		{int64(3), "", nil, nil, nil, nil, nil},
	}
}

// dirFiles lists the names in a directory.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func writeAll(t testing.TB, w connector.Writer, schema *record.Schema, rows []record.Row) {
	t.Helper()
	b := &record.Batch{Schema: schema, Rows: rows}
	n, err := w.Write(context.Background(), b)
	if err != nil || n != len(rows) {
		t.Fatalf("write: n=%d err=%v", n, err)
	}
}

func TestTextSinks(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		final string // relative to the pipeline dir
		want  string
		gzip  bool
	}{
		{
			name:  "csv",
			yaml:  "type: csv\npath: out/{date}/orders-{run_id}.csv",
			final: "out/2024-05-17/orders-run1.csv",
			want: "id,name,price,at,ok,day,ratio\n" +
				"1,plain,12.340,2024-01-02T03:04:05.123456789Z,true,2024-01-02,0.25\n" +
				"-2,\"comma, \"\"quote\"\"\nnewline\",-98765432109876543210.000000001,1999-12-31T23:59:59+02:00,false,1970-01-01,-1e-09\n" +
				"3,\"\",,,,,\n",
		},
		{
			name:  "csv without header, semicolons, gzip",
			yaml:  "type: csv\npath: out.csv.gz\nheader: false\ndelimiter: ';'",
			final: "out.csv.gz",
			gzip:  true,
			want: "1;plain;12.340;2024-01-02T03:04:05.123456789Z;true;2024-01-02;0.25\n" +
				"-2;\"comma, \"\"quote\"\"\nnewline\";-98765432109876543210.000000001;1999-12-31T23:59:59+02:00;false;1970-01-01;-1e-09\n" +
				"3;\"\";;;;;\n",
		},
		{
			name:  "jsonl",
			yaml:  "type: jsonl\npath: out.jsonl",
			final: "out.jsonl",
			want: `{"id":1,"name":"plain","price":12.340,"at":"2024-01-02T03:04:05.123456789Z","ok":true,"day":"2024-01-02","ratio":0.25}` + "\n" +
				`{"id":-2,"name":"comma, \"quote\"\nnewline","price":-98765432109876543210.000000001,"at":"1999-12-31T23:59:59+02:00","ok":false,"day":"1970-01-01","ratio":-1e-09}` + "\n" +
				`{"id":3,"name":"","price":null,"at":null,"ok":null,"day":null,"ratio":null}` + "\n",
		},
		{
			name:  "jsonl gzip by option",
			yaml:  "type: jsonl\npath: out.jsonl\ncompression: gzip",
			final: "out.jsonl",
			gzip:  true,
			want: `{"id":1,"name":"plain","price":12.340,"at":"2024-01-02T03:04:05.123456789Z","ok":true,"day":"2024-01-02","ratio":0.25}` + "\n" +
				`{"id":-2,"name":"comma, \"quote\"\nnewline","price":-98765432109876543210.000000001,"at":"1999-12-31T23:59:59+02:00","ok":false,"day":"1970-01-01","ratio":-1e-09}` + "\n" +
				`{"id":3,"name":"","price":null,"at":null,"ok":null,"day":null,"ratio":null}` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			w, err := newSink(t, tc.yaml).Open(context.Background(), env, sampleSchema)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if info := w.Info(); !info.Once || info.Transactional {
				t.Errorf("info %+v, want Once", info)
			}
			writeAll(t, w, sampleSchema, sampleRows()[:2])
			writeAll(t, w, sampleSchema, sampleRows()[2:])
			final := filepath.Join(env.Dir, tc.final)
			if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("final file exists before commit: %v", err)
			}
			if got := dirFiles(t, filepath.Dir(final)); len(got) != 1 || !strings.HasPrefix(got[0], ".") || !strings.Contains(got[0], ".tmp-run1") {
				t.Fatalf("before commit the directory holds %v, want one hidden temporary file", got)
			}
			if err := w.Commit(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if got := dirFiles(t, filepath.Dir(final)); len(got) != 1 || got[0] != filepath.Base(final) {
				t.Fatalf("after commit the directory holds %v", got)
			}
			data, err := os.ReadFile(final)
			if err != nil {
				t.Fatal(err)
			}
			if tc.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if data, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, string(data)); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			if err := w.Close(); err != nil {
				t.Errorf("close after commit: %v", err)
			}
			if _, err := os.Stat(final); err != nil {
				t.Errorf("close after commit removed the file: %v", err)
			}
		})
	}
}

func TestFileSinksCloseWithoutCommit(t *testing.T) {
	for _, yaml := range []string{"type: csv\npath: out/a.csv", "type: jsonl\npath: out/a.jsonl", "type: parquet\npath: out/a.parquet"} {
		t.Run(typeOf(t, yaml), func(t *testing.T) {
			env := testEnv(t)
			w, err := newSink(t, yaml).Open(context.Background(), env, sampleSchema)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, sampleSchema, sampleRows())
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := dirFiles(t, filepath.Join(env.Dir, "out")); len(got) != 0 {
				t.Fatalf("close without commit left %v", got)
			}
		})
	}
}

func TestFileSinksDryRun(t *testing.T) {
	env := testEnv(t)
	env.DryRun = true
	w, err := newSink(t, "type: csv\npath: out/a.csv").Open(context.Background(), env, sampleSchema)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, sampleSchema, sampleRows())
	if err := w.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := dirFiles(t, env.Dir); len(got) != 0 {
		t.Fatalf("dry run wrote %v", got)
	}
}

func TestStdoutSink(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{name: "jsonl", yaml: "type: stdout", want: `{"id":1,"name":"plain","price":12.340,"at":"2024-01-02T03:04:05.123456789Z","ok":true,"day":"2024-01-02","ratio":0.25}` + "\n"},
		{name: "csv", yaml: "type: stdout\nformat: csv", want: "id,name,price,at,ok,day,ratio\n1,plain,12.340,2024-01-02T03:04:05.123456789Z,true,2024-01-02,0.25\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := newSink(t, tc.yaml).(*stdoutSink)
			s.out = &out
			w, err := s.Open(context.Background(), testEnv(t), sampleSchema)
			if err != nil {
				t.Fatal(err)
			}
			if info := w.Info(); info.Once || info.Transactional {
				t.Errorf("info %+v, want neither Once nor Transactional", info)
			}
			writeAll(t, w, sampleSchema, sampleRows()[:1])
			if out.Len() != 0 {
				t.Errorf("printed before commit: %q", out.String())
			}
			if err := w.Commit(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			writeAll(t, w, sampleSchema, sampleRows()[1:])
			w.Close()
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("close without commit printed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSinkConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{name: "csv no path", yaml: "type: csv", want: "path is required"},
		{name: "csv quote delimiter", yaml: "type: csv\npath: a\ndelimiter: '\"'", want: "cannot be the quote"},
		{name: "jsonl compression", yaml: "type: jsonl\npath: a\ncompression: lz4", want: "compression must be one of"},
		{name: "stdout format", yaml: "type: stdout\nformat: xml", want: "format must be one of jsonl, csv"},
		{name: "parquet no path", yaml: "type: parquet", want: "path is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := registry().Get(connector.KindSink, typeOf(t, tc.yaml))
			_, err := e.Sink(params(t, tc.yaml))
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *PosError containing %q", err, tc.want)
			}
		})
	}
}

// TestCSVSinkRoundTrip reads back what the csv sink wrote.
func TestCSVSinkRoundTrip(t *testing.T) {
	env := testEnv(t)
	w, err := newSink(t, "type: csv\npath: out.csv").Open(context.Background(), env, sampleSchema)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, sampleSchema, sampleRows())
	if err := w.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	src := newSource(t, "type: csv\npath: out.csv\nschema: { id: int, name: string, price: decimal, at: timestamp, ok: bool, day: date, ratio: float }")
	got := readTask(t, src, env, connector.Task{Key: "out.csv"}, nil)
	if len(got.Rejects) > 0 {
		t.Fatalf("rejects: %+v", got.Rejects)
	}
	if diff := cmp.Diff(sampleRows(), got.Rows, cmpOpts...); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// The text sinks write a value as record.FormatText does, timestamps of
// zones whose offset has seconds included.
func TestAppendTextMatchesFormatText(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no zone data:", err)
	}
	for _, v := range []any{
		"text", int64(-42), int64(math.MinInt64), 1.5, true, []byte("raw"), record.MustDec("19.990"), record.MustDec("-0.5"),
		record.MustDec("42"), record.MustDec("123456789012345678901234.5678"), record.MustDec("0.000001"),
		time.Date(2024, 3, 10, 7, 30, 0, 1500, time.UTC),
		time.Date(1900, 1, 1, 12, 0, 0, 0, ams), // +00:19:32 local mean time
	} {
		if got, want := string(appendText(nil, v)), record.FormatText(v); got != want {
			t.Errorf("appendText(%#v) = %q, want %q", v, got, want)
		}
	}
}

// A JSONL row holds every field under its own name, in schema order,
// whatever the length of the names (short ones are written 16 bytes at a
// time) and however full the buffer the row is appended to.
func TestJSONLRowKeysOfEveryLength(t *testing.T) {
	var fields []record.Field
	var row record.Row
	var want strings.Builder
	for n := 1; n <= 24; n++ {
		name := strings.Repeat(string(rune('a'+n%26)), n)
		fields = append(fields, record.Field{Name: name, Type: record.Int})
		row = append(row, int64(n*1000-n))
		if n > 1 {
			want.WriteByte(',')
		} else {
			want.WriteByte('{')
		}
		want.WriteString(`"` + name + `":` + strconv.Itoa(n*1000-n))
	}
	want.WriteString("}\n")
	j := newJSONLRowFormat(record.MustSchema(fields...))
	for room := 0; room < 40; room++ {
		dst := make([]byte, 3, 3+room)
		copy(dst, "abc")
		if got := string(j.row(dst, row)); got != "abc"+want.String() {
			t.Fatalf("room %d: got %q, want %q", room, got, "abc"+want.String())
		}
	}
}
