package cli

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `backbone test --junit` writes what it printed as JUnit XML, and exits 1
// when a test failed.
func TestTestJUnit(t *testing.T) {
	dir := t.TempDir()
	pipeline := `
source: {type: csv, path: in.csv, schema: {id: int, qty: int}}
steps:
  - map: {double: qty * 2}
sink: {type: jsonl, path: out.jsonl}
tests:
  - name: doubles
    input: [{id: 1, qty: 2}]
    output: [{id: 1, double: 4}]
  - name: wrong
    input: [{id: 1, qty: 2}]
    output: [{id: 1, double: 5}]
`
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(dir, "junit.xml")
	var out, errOut bytes.Buffer
	env := func(string) (string, bool) { return "", false }
	code := Main(context.Background(), context.Background(), []string{"test", path, "--junit", junit}, IO{Out: &out, Err: &errOut, Env: env})
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitFailed, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "ok   "+path+": doubles") || !strings.Contains(out.String(), "double: expected 5, got 4") {
		t.Errorf("output:\n%s", out.String())
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if doc.Tests != 2 || doc.Failures != 1 || len(doc.Suites) != 1 || doc.Suites[0].Cases[1].Name != "wrong" || doc.Suites[0].Cases[1].Failure == nil {
		t.Errorf("JUnit %+v\n%s", doc, data)
	}
}
