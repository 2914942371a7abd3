package file

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestJSONLSourceRead(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // after "type: jsonl\npath: <file>"
		file    string
		gzipped bool
		maxRec  int
		rows    []record.Row
		lines   []int64
		rejects []record.Reject
	}{
		{
			name: "typed and exact",
			yaml: "schema: { id: int, amount: decimal, ratio: float, ok: bool, at: timestamp, tags: json, name: string }",
			file: `{"id": 9223372036854775807, "amount": 12345678901234567890.123456789, "ratio": 0.5, "ok": true, "at": "2024-01-02T03:04:05.123456789Z", "tags": {"a": [1, 2.5]}, "name": "caf\u00e9 \"x\""}` + "\n",
			rows: []record.Row{{
				int64(9223372036854775807), dec("12345678901234567890.123456789"), 0.5, true, ts("2024-01-02T03:04:05.123456789Z"),
				map[string]any{"a": []any{json.Number("1"), json.Number("2.5")}}, `café "x"`,
			}},
			lines: []int64{1},
		},
		{
			name:  "missing key is null, unknown keys ignored, later duplicate wins",
			yaml:  "schema: { a: int, b: string }",
			file:  `{"x": {"deep": [1, {"y": null}]}, "a": 1, "a": 2}` + "\n",
			rows:  []record.Row{{int64(2), nil}},
			lines: []int64{1},
		},
		{
			name:  "blank lines skipped, crlf, bom",
			yaml:  "schema: { a: int }",
			file:  "\xEF\xBB\xBF{\"a\":1}\r\n\r\n   \n{\"a\":2}",
			rows:  []record.Row{{int64(1)}, {int64(2)}},
			lines: []int64{1, 4},
		},
		{
			name:    "gzip",
			yaml:    "schema: { a: int }",
			file:    "{\"a\":1}\n{\"a\":2}\n",
			gzipped: true,
			rows:    []record.Row{{int64(1)}, {int64(2)}},
			lines:   []int64{1, 2},
		},
		{
			name:  "strings convert to the field type",
			yaml:  "schema: { n: int, d: decimal, s: string, raw: bytes }",
			file:  `{"n": "42", "d": "1.10", "s": 7, "raw": "aGk="}` + "\n",
			rows:  []record.Row{{int64(42), dec("1.10"), "7", []byte("hi")}},
			lines: []int64{1},
		},
		{
			name:  "rejects",
			yaml:  "schema: { a: int, s: string }",
			file:  "[1,2]\n{\"a\": 1,}\n{\"a\": 1} x\n{\"s\": \"\xff\"}\n{\"a\": 1.5}\n\"str\"\n{\"a\": 3}\n",
			rows:  []record.Row{{int64(3), nil}},
			lines: []int64{7},
			rejects: []record.Reject{
				{Line: 1, Step: "source", Raw: []byte("[1,2]"), Err: "not a JSON object"},
				{Line: 2, Step: "source", Raw: []byte(`{"a": 1,}`), Err: "invalid JSON: want a key (a string) in an object at column 9"},
				{Line: 3, Step: "source", Raw: []byte(`{"a": 1} x`), Err: "invalid JSON: unexpected 'x' after the value at column 10"},
				{Line: 4, Step: "source", Raw: []byte("{\"s\": \"\xff\"}"), Err: "invalid JSON: invalid UTF-8 in a string at column 8"},
				{Line: 5, Step: "source", Field: "a", Raw: []byte(`{"a": 1.5}`), Err: `field "a": value "1.5" is not a valid int: not an integer`},
				{Line: 6, Step: "source", Raw: []byte(`"str"`), Err: "not a JSON object"},
			},
		},
		{
			name:    "record over the cap",
			yaml:    "schema: { a: string }",
			file:    `{"a": "` + strings.Repeat("x", 3000) + "\"}\n{\"a\": \"ok\"}\n",
			maxRec:  1024,
			rows:    []record.Row{{"ok"}},
			lines:   []int64{2},
			rejects: []record.Reject{{Line: 1, Step: "source", Raw: []byte(`{"a": "` + strings.Repeat("x", 1026-7)), Err: "record exceeds 1024 bytes"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			if tc.maxRec > 0 {
				env.Limits.MaxRecordBytes = tc.maxRec
			}
			name, content := "in.jsonl", tc.file
			if tc.gzipped {
				name, content = "in.jsonl.gz", gz(t, tc.file)
			}
			writeFile(t, env, name, content)
			_, res := planAll(t, newSource(t, "type: jsonl\npath: "+name+"\n"+tc.yaml), env)
			if len(res) != 1 {
				t.Fatalf("%d tasks", len(res))
			}
			got := res[0]
			if diff := cmp.Diff(tc.rows, got.Rows, cmpOpts...); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.lines, got.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.rejects, got.Rejects); diff != "" {
				t.Errorf("rejects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONLSourceCap(t *testing.T) {
	// A record a little over a small cap that is still shorter than the
	// kept prefix must not panic slicing the prefix.
	env := testEnv(t)
	env.Limits.MaxRecordBytes = 16
	writeFile(t, env, "in.jsonl", `{"a": "0123456789abcdef"}`+"\n")
	_, res := planAll(t, newSource(t, "type: jsonl\npath: in.jsonl\nschema: { a: string }"), env)
	if len(res[0].Rejects) != 1 || res[0].Rejects[0].Err != "record exceeds 16 bytes" {
		t.Fatalf("rejects %+v", res[0].Rejects)
	}
}

func TestJSONLSourceResume(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		switch i % 4 {
		case 0:
			b.WriteString("\n")
		case 1:
			b.WriteString("not json\n")
		}
		b.WriteString(`{"i": ` + itoa(int64(i)) + "}\n")
	}
	for _, gzipped := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gzipped], func(t *testing.T) {
			env := testEnv(t)
			env.Limits.BatchRows = 3
			file, content := "in.jsonl", b.String()
			if gzipped {
				file, content = "in.jsonl.gz", gz(t, content)
			}
			writeFile(t, env, file, content)
			src := newSource(t, "type: jsonl\npath: "+file+"\nschema: { i: int }")
			task := connector.Task{Key: file}
			full := readTask(t, src, env, task, nil)
			if len(full.Rows) != 40 || len(full.Rejects) != 10 {
				t.Fatalf("%d rows %d rejects", len(full.Rows), len(full.Rejects))
			}
			rows, rejects := 0, 0
			r, err := src.Open(t.Context(), env, task, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for {
				batch, err := r.Next(t.Context())
				if err != nil {
					break
				}
				rows += len(batch.Rows)
				rejects += len(batch.Rejects)
				rest := readTask(t, src, env, task, batch.Pos)
				if diff := cmp.Diff(full.Rows[rows:], rest.Rows, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("after %d rows (-want +got):\n%s", rows, diff)
				}
				if diff := cmp.Diff(full.Lines[rows:], rest.Lines, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("lines after %d rows (-want +got):\n%s", rows, diff)
				}
				if diff := cmp.Diff(full.Rejects[rejects:], rest.Rejects, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("rejects after %d rejects (-want +got):\n%s", rejects, diff)
				}
			}
		})
	}
}

func TestJSONLSourceConfig(t *testing.T) {
	_, err := newJSONLSource(params(t, "path: a.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "jsonl needs a schema") {
		t.Fatalf("err = %v", err)
	}
	s, err := newJSONLSource(params(t, "path: a.jsonl\nschema: { a: int }"))
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := s.(connector.Schemer)
	if !ok || sc.Schema().String() != "a int" {
		t.Fatalf("jsonl source does not report its schema")
	}
}

// FuzzJSONLDecode checks the object decoder against encoding/json: it
// never panics, accepts what encoding/json accepts (valid UTF-8), rejects
// what it rejects, and decodes the same values.
func FuzzJSONLDecode(f *testing.F) {
	for _, s := range []string{
		`{"a": 1, "b": "x", "c": null}`,
		`{"a": {"n": [1, 2.5e-3, true, false, null]}, "zz": "\u00e9\ud83d\ude00\ud800"}`,
		`{"a": "esc \" \\ \/ \b \f \n \r \t"}`,
		`[1]`, `{"a":}`, `{"a": 01}`, `{"a": 1.}`, `{"a": -}`, `{"a": "\x"}`, `{} {}`, `  {}  `, `{"a":1,}`,
		"{\"a\": \"\x01\"}", `{"b": 1e400}`, `{"c": -0.0E+1}`, `{"a": tru}`,
	} {
		f.Add(s)
	}
	schema := record.MustSchema(record.Field{Name: "a", Type: record.JSON}, record.Field{Name: "b", Type: record.JSON}, record.Field{Name: "c", Type: record.JSON})
	f.Fuzz(func(t *testing.T, line string) {
		d := newObjectDecoder(schema, time.UTC)
		row := make(record.Row, 3)
		_, reason := d.decode(line, row, newBoxer(4))
		var want map[string]any
		jd := json.NewDecoder(strings.NewReader(line))
		jd.UseNumber()
		jerr := jd.Decode(&want)
		if jerr == nil && (!json.Valid([]byte(line)) || want == nil) {
			jerr = errInvalid // trailing data, or "null" decoded into a nil map
		}
		switch {
		case !utf8.ValidString(line) || strings.Contains(reason, "nesting deeper"):
			return
		case jerr != nil && reason == "":
			t.Fatalf("%q: encoding/json: %v, decoder accepted it", line, jerr)
		case jerr == nil && reason != "":
			t.Fatalf("%q: encoding/json accepts it, decoder: %s", line, reason)
		case jerr != nil:
			return
		}
		for i, k := range []string{"a", "b", "c"} {
			if diff := cmp.Diff(want[k], row[i]); diff != "" {
				t.Fatalf("%q key %s (-encoding/json +decoder):\n%s", line, k, diff)
			}
		}
	})
}

var errInvalid = errors.New("not one JSON object")
