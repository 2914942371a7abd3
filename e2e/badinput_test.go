package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const badInputPipeline = `name: bad
source:
  type: csv
  path: in/*.csv
  schema: {id: int, name: string, amount: decimal}
steps:
  - map: {double: amount * 2}
sink: {type: jsonl, path: out/rows.jsonl}
`

// TestBadInput runs pipelines over broken input: each case gets its clear
// message and exit code, the good rows still load and nothing is lost
// (read = written + rejected + filtered, and every reject is a dead letter).
func TestBadInput(t *testing.T) {
	type tc struct {
		name     string
		files    map[string]string // relative path → content
		pipeline string            // default badInputPipeline
		args     []string          // default run pipeline.yaml
		code     int
		output   []string // substrings of the output
		written  int      // rows in out/rows.jsonl (-1: no file expected)
		rejected int
	}
	cases := []tc{
		{name: "empty file", files: map[string]string{"in/a.csv": ""}, code: 0, output: []string{"read 0"}, written: 0},
		{name: "header only", files: map[string]string{"in/a.csv": "id,name,amount\n"}, code: 0, output: []string{"read 0"}, written: 0},
		{name: "unbalanced quote", files: map[string]string{"in/a.csv": "id,name,amount\n1,ok,1.5\n2,\"broken,2.5\n"},
			code: 0, output: []string{"read 2", "written 1", "rejected 1", "unbalanced quote"}, written: 1, rejected: 1},
		{name: "invalid UTF-8", files: map[string]string{"in/a.csv": "id,name,amount\n1,ok,1.5\n2,caf\xe9,2.5\n3,fine,3\n"},
			code: 0, output: []string{"read 3", "written 2", "rejected 1", "invalid UTF-8"}, written: 2, rejected: 1},
		{name: "wrong column count", files: map[string]string{"in/a.csv": "id,name,amount\n1,ok,1.5\n2,short\n3,long,3,extra\n4,fine,4\n"},
			code: 0, output: []string{"read 4", "written 2", "rejected 2", "expected 3 fields, got 2"}, written: 2, rejected: 2},
		{name: "value that does not convert", files: map[string]string{"in/a.csv": "id,name,amount\nx,ok,1.5\n2,ok,1,5\n3,ok,three\n4,ok,4\n"},
			code: 0, output: []string{"written 1", "rejected 3", `field "id": value "…" is not a valid int`}, written: 1, rejected: 3},
		{name: "no input file yet", files: map[string]string{}, code: 0, output: []string{"read 0"}, written: -1},
		{name: "missing input file", pipeline: strings.Replace(badInputPipeline, "in/*.csv", "in/exact.csv", 1),
			code: 3, output: []string{"in/exact.csv"}, written: -1},
		{name: "missing lookup file", pipeline: badInputPipeline + "lookups:\n  c: {type: csv, path: nowhere.csv, key: id}\n",
			files: map[string]string{"in/a.csv": "id,name,amount\n1,ok,1\n"}, code: 3, output: []string{"nowhere.csv"}, written: -1},
		{name: "missing pipeline file", args: []string{"run", "nope.yaml"}, code: 3, output: []string{"nope.yaml"}, written: -1},
		{name: "YAML syntax error", pipeline: "source: {type: csv\nsink: [\n", code: 2, output: []string{"pipeline.yaml:", "YAML syntax"}, written: -1},
		{name: "unknown component", pipeline: strings.Replace(badInputPipeline, "type: jsonl", "type: jsonlines", 1),
			code: 2, output: []string{`pipeline.yaml:8:14: unknown sink type "jsonlines" (did you mean "jsonl"?)`}, written: -1},
		{name: "unknown field", pipeline: strings.Replace(badInputPipeline, "path: in/", "paht: in/", 1),
			code: 2, output: []string{`pipeline.yaml:4:3: source: unknown field "paht" (did you mean "path"?)`}, written: -1},
		{name: "expression type error", pipeline: strings.Replace(badInputPipeline, "amount * 2", "name * 2", 1),
			files: map[string]string{"in/a.csv": "id,name,amount\n1,ok,1\n"},
			code:  2, output: []string{"pipeline.yaml:7:24: expression `name * 2`: invalid operation: string * int"}, written: -1},
		{name: "unknown command flag", args: []string{"run", "--frobnicate", "pipeline.yaml"}, code: 2, output: []string{"unknown flag: --frobnicate"}, written: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := c.pipeline
			if p == "" {
				p = badInputPipeline
			}
			write(t, filepath.Join(dir, "pipeline.yaml"), p)
			for name, content := range c.files {
				write(t, filepath.Join(dir, name), content)
			}
			args := c.args
			if args == nil {
				args = []string{"run", "pipeline.yaml"}
			}
			res := backbone(t, dir, nil, args...)
			if res.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", res.code, c.code, res.out)
			}
			for _, want := range c.output {
				if !contains(res.out, want) {
					t.Errorf("output lacks %q:\n%s", want, res.out)
				}
			}
			if strings.Contains(res.out, "panic") || strings.Contains(res.out, "goroutine ") {
				t.Fatalf("a panic:\n%s", res.out)
			}
			checkOutput(t, dir, c.written, c.rejected)
		})
	}
}

// checkOutput counts the rows of out/rows.jsonl and the dead letters.
func checkOutput(t *testing.T, dir string, written, rejected int) {
	t.Helper()
	out := filepath.Join(dir, "out", "rows.jsonl")
	n, err := countLines(out)
	switch {
	case written < 0:
		if err == nil {
			t.Fatalf("%s exists after a failed run", out)
		}
		return
	case err != nil:
		t.Fatalf("no output: %v", err)
	case n != written:
		t.Fatalf("%d rows written, want %d", n, written)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "out"))
	for _, e := range entries {
		if e.Name() != "rows.jsonl" {
			t.Fatalf("stray file %s next to the output (a temporary file left behind?)", e.Name())
		}
	}
	if rejected == 0 {
		return
	}
	if got := deadLettersOf(t, filepath.Join(dir, ".backbone", "state.db"), "bad"); got != rejected {
		t.Fatalf("%d dead letters, want %d", got, rejected)
	}
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHugeLineIsRejectedWithoutBufferingIt streams a 100 MB single line
// between two good rows: the line is one reject, the good rows load, and
// the process never holds the line in memory.
func TestHugeLineIsRejectedWithoutBufferingIt(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), badInputPipeline)
	path := filepath.Join(dir, "in", "a.csv")
	write(t, path, "")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,name,amount\n1,first,1.5\n2,")
	chunk := strings.Repeat("x", 1<<20)
	for i := 0; i < 100; i++ {
		w.WriteString(chunk)
	}
	w.WriteString(",2\n3,last,3\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res := backbone(t, dir, nil, "run", "pipeline.yaml")
	rss := res.rss
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.out)
	}
	for _, want := range []string{"read 3", "written 2", "rejected 1", "exceeds"} {
		if !contains(res.out, want) {
			t.Errorf("output lacks %q:\n%s", want, res.out)
		}
	}
	checkOutput(t, dir, 2, 1)
	if rss > 80<<20 {
		t.Fatalf("peak RSS %d MiB for a 100 MB line: it was buffered", rss>>20)
	}
	t.Logf("peak RSS %d MiB", rss>>20)
}

// contains reports whether out holds want, with runs of spaces collapsed in
// both (the summary aligns its columns).
func contains(out, want string) bool {
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	return strings.Contains(squash(out), squash(want))
}

// TestSecretsAreNeverPrinted puts a secret into a path that errors echo:
// neither the output, nor the run history, nor the dead letters show it.
func TestSecretsAreNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-Value-42"
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), `name: secrets
secret_env: [SHARED_KEY]
source:
  type: csv
  path: in/${SHARED_KEY}.csv
  schema: {id: int, note: string}
steps:
  - validate:
      - {check: "id > 0", message: "bad id"}
sink: {type: jsonl, path: out/rows.jsonl}
`)
	env := []string{"SHARED_KEY=" + secret}
	res := backbone(t, dir, env, "run", "pipeline.yaml")
	if res.code != 3 || strings.Contains(res.out, secret) || !strings.Contains(res.out, "[redacted]") {
		t.Fatalf("exit %d, output must name the missing file with the secret redacted:\n%s", res.code, res.out)
	}
	// A record holding the secret is dead-lettered: redacted there too.
	write(t, filepath.Join(dir, "in", secret+".csv"), "id,note\n-1,"+secret+"\n2,fine\n")
	res = backbone(t, dir, env, "run", "pipeline.yaml")
	if res.code != 0 || strings.Contains(res.out, secret) {
		t.Fatalf("exit %d:\n%s", res.code, res.out)
	}
	for _, args := range [][]string{{"runs"}, {"dlq", "list"}, {"dlq", "show", "1"}, {"validate", "pipeline.yaml"}} {
		res := backbone(t, dir, env, args...)
		if strings.Contains(res.out, secret) {
			t.Fatalf("backbone %v prints the secret:\n%s", args, res.out)
		}
	}
	if res := backbone(t, dir, env, "dlq", "show", "1"); !strings.Contains(res.out, "[redacted]") {
		t.Fatalf("the dead letter should show the record with the secret redacted:\n%s", res.out)
	}
}
