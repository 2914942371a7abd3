package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/config"
)

const withTests = `
source: {type: csv, path: in.csv, schema: {id: int, price: decimal}}
sink: {type: jsonl, path: out.jsonl}
tests:
  - name: doubles
    time: 2026-11-02T08:00:00Z
    input:
      - {id: 1, price: 0.10, note: "x", at: 2026-11-01T10:00:00Z}
      - {id: 2, price: null, tags: [a, b]}
    lookups:
      customers:
        - {id: 1, region: emea}
    output:
      - {id: 1}
    rejects:
      - {step: validate, message: positive, input: 2}
  - rejects: []
`

func TestInlineTests(t *testing.T) {
	p, err := load(t, withTests, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tests) != 2 {
		t.Fatalf("%d tests, want 2", len(p.Tests))
	}
	a, b := p.Tests[0], p.Tests[1]
	if a.Name != "doubles" || b.Name != "test 2" {
		t.Errorf("names %q, %q", a.Name, b.Name)
	}
	if !a.Time.Equal(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("time %v", a.Time)
	}
	if !a.CheckOutput || !a.CheckRejects || b.CheckOutput || !b.CheckRejects || len(b.Rejects) != 0 {
		t.Errorf("checks: a %v/%v, b %v/%v", a.CheckOutput, a.CheckRejects, b.CheckOutput, b.CheckRejects)
	}
	var got [][2]any
	for _, r := range a.Input {
		for _, v := range r.Fields {
			got = append(got, [2]any{v.Name, v.V})
		}
	}
	want := [][2]any{
		{"id", json.Number("1")}, {"price", json.Number("0.10")}, {"note", "x"}, {"at", "2026-11-01T10:00:00Z"},
		{"id", json.Number("2")}, {"price", nil}, {"tags", []any{"a", "b"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("input values (-want +got):\n%s", d)
	}
	if len(a.Lookups) != 1 || a.Lookups[0].Name != "customers" || len(a.Lookups[0].Rows) != 1 {
		t.Errorf("lookups %+v", a.Lookups)
	}
	wantRej := config.ExpectedReject{Step: "validate", Message: "positive", Input: 2}
	gotRej := a.Rejects[0]
	gotRej.Pos = wantRej.Pos
	if gotRej != wantRej {
		t.Errorf("reject %+v, want %+v", gotRej, wantRej)
	}
	if a.Input[1].Pos.Line != 9 || a.Input[1].Pos.File != "p.yaml" {
		t.Errorf("second input record at %v, want p.yaml:9", a.Input[1].Pos)
	}
}

func TestTestErrors(t *testing.T) {
	src := `
source: {type: csv, path: in.csv}
sink: {type: jsonl, path: out.jsonl}
tests:
  - name: a
    tme: 2026-01-01
    input: [{id: 1}, 3]
    output: [{id: 1}]
  - name: a
    time: yesterday
    lookups: {c: {id: 1}}
    rejects: [{message: x, input: 0}]
  - input: []
`
	_, err := load(t, src, nil)
	want := []string{
		`p.yaml:6:5: pipeline.tests: unknown field "tme" (did you mean "time"?)`,
		`p.yaml:7:22: input record 2: want a mapping of field to value, got a single value`,
		`p.yaml:9:5: test "a": a test of this name is at line 5`,
		`p.yaml:10:11: a: time: "yesterday" is not an RFC 3339 time (2026-11-02T08:00:00Z) or a date`,
		`p.yaml:11:18: lookup c rows: want a list of records, got a mapping`,
		`p.yaml:12:15: pipeline.tests.rejects: missing required field "step"`,
		`p.yaml:12:35: rejects: input is the position of a record in input:, from 1`,
		`p.yaml:13:5: test 3: checks nothing: give output:, rejects:, or both`,
	}
	if d := cmp.Diff(want, errorLines(t, err)); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}

func TestLoadTestFile(t *testing.T) {
	dir := t.TempDir()
	if got := config.TestFileName(filepath.Join(dir, "orders.yaml")); got != filepath.Join(dir, "orders.test.yaml") {
		t.Errorf("TestFileName = %s", got)
	}
	path := filepath.Join(dir, "orders.test.yaml")
	if err := os.WriteFile(path, []byte("tests:\n  - name: from ${WHO}\n    output: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := config.LoadTestFile(path, config.Options{Env: envOf(map[string]string{"WHO": "env"})})
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) != 1 || tests[0].Name != "from env" || !tests[0].CheckOutput || tests[0].File != path {
		t.Errorf("tests %+v", tests)
	}
	if err := os.WriteFile(path, []byte("test:\n  - output: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.LoadTestFile(path, config.Options{Env: envOf(nil)})
	want := []string{
		path + `:1:1: test file: unknown field "test" (did you mean "tests"?)`,
		path + `:1:1: test file: missing required field "tests"`,
	}
	if d := cmp.Diff(want, errorLines(t, err)); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}
