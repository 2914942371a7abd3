package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// TestFields documents one item of `tests:`, inline in a pipeline or in a
// PIPELINE.test.yaml beside it. Load checks fixtures against it as strictly
// as the rest of the file, and `backbone docs` renders it.
var TestFields = []connector.FieldSpec{
	{Name: "name", Type: connector.TString, Doc: "What the test checks, shown in results. Default: test N."},
	{Name: "time", Type: connector.TString, Doc: "The run's logical time (`run_time`), RFC 3339 or a date. Default: now; set it when an expression reads run_time."},
	{Name: "input", Type: connector.TObjects, Doc: "The records the source gives, each a mapping of field to value. Values are converted to the source's declared schema (without one, its types are taken from the values); a value that does not convert is a source reject, as in a run."},
	{Name: "lookups", Type: connector.TMap, Doc: "Rows of lookups by lookup name, each a list of mappings of field to value. A lookup not named has no rows. No lookup is ever opened: a test never touches a real service."},
	{Name: "output", Type: connector.TObjects, Doc: "The records expected at the sink. Only the fields written are compared; records are matched by the sink's key when it has one and every record names it, else in order. Without `output:` the output is not checked; `output: []` expects none."},
	{Name: "rejects", Type: connector.TObjects, Fields: expectedRejectFields, Doc: "The rejects expected; every reject must be expected. Without `rejects:` they are not checked; `rejects: []` expects none."},
}

var expectedRejectFields = []connector.FieldSpec{
	{Name: "step", Type: connector.TString, Required: true, Doc: `The step that rejects: its label ("validate[4]"), its kind ("validate"), "source" or "sink".`},
	{Name: "message", Type: connector.TString, Doc: "A part of the reason."},
	{Name: "field", Type: connector.TString, Doc: "The field the reject is about."},
	{Name: "input", Type: connector.TInt, Doc: "The position of the rejected record in `input`, from 1."},
}

// Test is one fixture: input records, lookup rows and the logical time in;
// the expected output records and rejects out.
type Test struct {
	Name    string
	File    string
	Pos     connector.Pos // the test's place
	Time    time.Time     // zero: now
	Input   []Record
	Lookups []LookupRows
	Output  []Record
	Rejects []ExpectedReject
	// CheckOutput and CheckRejects are false when the test does not name
	// output: or rejects:, which are then not compared.
	CheckOutput, CheckRejects bool
}

// Record is a record as written in a fixture, its fields in order.
type Record struct {
	Pos    connector.Pos
	Fields []Value
}

// Get returns the value of a field and whether the record names it.
func (r Record) Get(name string) (any, bool) {
	for _, v := range r.Fields {
		if v.Name == name {
			return v.V, true
		}
	}
	return nil, false
}

// Value is one field of a fixture record. Numbers are json.Number (their
// text, so decimals stay exact), other scalars string, bool or nil, and
// mappings and lists the decoded tree.
type Value struct {
	Name string
	Pos  connector.Pos
	V    any
}

// LookupRows are the rows a test gives a lookup.
type LookupRows struct {
	Name string
	Pos  connector.Pos
	Rows []Record
}

// ExpectedReject is a reject a test expects.
type ExpectedReject struct {
	Pos     connector.Pos
	Step    string
	Message string // a substring of the reason
	Field   string
	Input   int // position in Input from 1; 0: any
}

// TestFileName is the fixture file beside a pipeline: orders.yaml has
// orders.test.yaml.
func TestFileName(pipelinePath string) string {
	ext := ""
	for _, e := range []string{".yaml", ".yml"} {
		if strings.HasSuffix(pipelinePath, e) {
			ext = e
		}
	}
	return strings.TrimSuffix(pipelinePath, ext) + ".test" + ext
}

// LoadTestFile reads a fixture file: a mapping whose one key, tests:, holds
// the same list as a pipeline's inline tests:. The error is Errors when the
// content is at fault.
func LoadTestFile(path string, opts Options) ([]*Test, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	c := &collector{file: path, red: &Redactor{}}
	f, err := parser.ParseBytes(raw, 0)
	if err != nil {
		c.add(connector.Pos{Line: 1, Col: 1}, yamlError(err))
		return nil, c.errs
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		c.at(connector.Pos{Line: 1, Col: 1}, "a test file holds one mapping with tests:")
		return nil, c.errs
	}
	top, ok := asMapping(f.Docs[0].Body)
	if !ok {
		c.at(posOf(f.Docs[0].Body), "a test file is a mapping with tests:, not %s", kindName(f.Docs[0].Body))
		return nil, c.errs
	}
	in := &interpolator{env: opts.Env, secretEnv: map[string]bool{}, redactor: c.red, c: c}
	in.walk(top)
	spec := []connector.FieldSpec{{Name: "tests", Type: connector.TObjects, Required: true, Fields: TestFields}}
	checkObject(c, top, spec, "test file")
	var tests []*Test
	if n := field(top, "tests"); n != nil && len(c.errs) == 0 {
		tests = loadTests(c, n)
	}
	if len(c.errs) > 0 {
		c.errs.Sort()
		return nil, c.errs
	}
	return tests, nil
}

// loadTests reads the items of tests:, already checked against TestFields.
func loadTests(c *collector, n ast.Node) []*Test {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil
	}
	var tests []*Test
	names := map[string]connector.Pos{}
	for i, item := range seq.Values {
		m, ok := asMapping(item)
		if !ok {
			continue // checkObject reported it
		}
		t := &Test{Name: fmt.Sprintf("test %d", i+1), File: c.file, Pos: c.pos(posOf(m))}
		for _, mv := range m.Values {
			v := mv.Value
			switch keyOf(mv) {
			case "name":
				t.Name = scalar(v)
			case "time":
				at, err := parseTestTime(scalar(v))
				if err != nil {
					c.at(posOf(v), "%s: time: %v", t.Name, err)
				}
				t.Time = at
			case "input":
				t.Input = loadRecords(c, v, "input record", false)
			case "lookups":
				lm, _ := asMapping(v)
				if lm == nil {
					break
				}
				for _, lv := range lm.Values {
					t.Lookups = append(t.Lookups, LookupRows{Name: keyOf(lv), Pos: c.pos(posOf(lv.Key)),
						Rows: loadRecords(c, lv.Value, "lookup "+keyOf(lv)+" row", true)})
				}
			case "output":
				t.CheckOutput = true
				t.Output = loadRecords(c, v, "output record", false)
			case "rejects":
				t.CheckRejects = true
				t.Rejects = loadRejects(c, v)
			}
		}
		if p, dup := names[t.Name]; dup {
			c.at(posOf(m), "test %q: a test of this name is at line %d", t.Name, p.Line)
		}
		names[t.Name] = t.Pos
		if !t.CheckOutput && !t.CheckRejects {
			c.at(posOf(m), "%s: checks nothing: give output:, rejects:, or both", t.Name)
		}
		tests = append(tests, t)
	}
	return tests
}

func parseTestTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-11-02T08:00:00Z) or a date", s)
}

// loadRecords reads a list of mappings of field to value.
// Lists under input: and output: were checked against TestFields; the
// rows of a lookup were not, and their shape is reported here.
func loadRecords(c *collector, n ast.Node, what string, checkList bool) []Record {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		if _, null := n.(*ast.NullNode); !null && checkList {
			c.at(posOf(n), "%ss: want a list of records, got %s", what, kindName(n))
		}
		return nil
	}
	recs := make([]Record, 0, len(seq.Values))
	for i, e := range seq.Values {
		m, ok := asMapping(e)
		if !ok {
			c.at(posOf(e), "%s %d: want a mapping of field to value, got %s", what, i+1, kindName(e))
			continue
		}
		r := Record{Pos: c.pos(posOf(m))}
		seen := map[string]bool{}
		for _, mv := range m.Values {
			name := keyOf(mv)
			if seen[name] {
				c.at(posOf(mv.Key), "%s %d: %q is set twice", what, i+1, name)
			}
			seen[name] = true
			v, err := fixtureValue(mv.Value)
			if err != nil {
				c.at(posOf(mv.Value), "%s %d: field %q: %v", what, i+1, name, err)
				continue
			}
			r.Fields = append(r.Fields, Value{Name: name, Pos: c.pos(posOf(mv.Value)), V: v})
		}
		recs = append(recs, r)
	}
	return recs
}

func loadRejects(c *collector, n ast.Node) []ExpectedReject {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil
	}
	var out []ExpectedReject
	for _, e := range seq.Values {
		m, ok := asMapping(e)
		if !ok {
			continue // checkObject reported it
		}
		r := ExpectedReject{Pos: c.pos(posOf(m))}
		for _, mv := range m.Values {
			switch keyOf(mv) {
			case "step":
				r.Step = scalar(mv.Value)
			case "message":
				r.Message = scalar(mv.Value)
			case "field":
				r.Field = scalar(mv.Value)
			case "input":
				r.Input = int(intValue(c, mv.Value))
				if r.Input < 1 {
					c.at(posOf(mv.Value), "rejects: input is the position of a record in input:, from 1")
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// fixtureValue turns a YAML value into a Go value: numbers keep their text
// (json.Number) so that 0.1 is exactly the decimal 0.1.
func fixtureValue(n ast.Node) (any, error) {
	switch v := n.(type) {
	case *ast.NullNode:
		return nil, nil
	case *ast.BoolNode:
		return v.Value, nil
	case *ast.IntegerNode, *ast.FloatNode:
		text := scalar(v)
		if _, err := strconv.ParseFloat(text, 64); err == nil {
			return json.Number(text), nil
		}
		return v.(ast.ScalarNode).GetValue(), nil
	case *ast.StringNode:
		return v.Value, nil
	case *ast.LiteralNode:
		return scalar(v), nil
	case *ast.TagNode:
		return fixtureValue(v.Value)
	case *ast.AnchorNode:
		return fixtureValue(v.Value)
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		var out any
		if err := yaml.NodeToValue(n, &out); err != nil {
			return nil, fmt.Errorf("cannot read the value: %v", err)
		}
		return out, nil
	case ast.ScalarNode:
		return v.GetValue(), nil
	}
	return nil, fmt.Errorf("want a value, got %s", kindName(n))
}

// TypeOfValue is the record type a fixture value suggests when no schema
// declares one: json.Number an int or a float, text a string.
func TypeOfValue(v any) record.Type {
	switch x := v.(type) {
	case nil:
		return record.Any
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return record.Int
		}
		return record.Float
	case string:
		return record.String
	case bool:
		return record.Bool
	}
	return record.JSON
}
