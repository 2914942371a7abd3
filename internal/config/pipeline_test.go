package config_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/record"
)

// builtinRegistry holds the built-in components, as `backbone` has them.
func builtinRegistry() *connector.Registry {
	r := connector.NewRegistry()
	builtin.Register(r)
	return r
}

// envOf is a LookupEnv over a map, so tests never read the process's
// environment.
func envOf(vars map[string]string) config.LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func load(t *testing.T, src string, vars map[string]string) (*config.Pipeline, error) {
	t.Helper()
	return config.Load("p.yaml", []byte(src), config.Options{Registry: builtinRegistry(), Env: envOf(vars)})
}

// errorLines returns each error of a failed Load as file:line:col: message.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("Load succeeded, want errors")
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is a %T (%v), want config.Errors", err, err)
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	if got := err.Error(); got != strings.Join(lines, "\n") {
		t.Errorf("Errors.Error() = %q, want the errors one per line", got)
	}
	return lines
}

const validPipeline = `
name: orders_enriched
description: Orders with their customer
schedule: "*/5 * * * *"
timezone: Europe/Paris
freshness: 15m
state: state/bb.db
source:
  type: csv
  path: data/*.csv
  schema: { id: int, customer_id: int, qty: int, price: decimal, status: string }
lookups:
  customers: { type: csv, path: customers.csv, key: id }
  regions:
    type: jsonl
    path: regions.jsonl
    key: [code]
steps:
  - filter: status != "cancelled"
  - map: { total: qty * price }
  - enrich: { lookup: customers, on: customer_id, missing: "null" }
  - filter: qty > 0
  - select: [id, total]
  - validate:
      - check: total >= 0
        message: negative total
  - dedupe: [id]
sink:
  type: jsonl
  path: out/orders.jsonl
errors:
  max_reject_rate: 1%
  max_rejects: 10
  min_sample: 50
settings:
  batch_rows: 500
  batch_bytes: 4MiB
  max_record_bytes: 1MB
  workers: 2
  tasks: 3
  commit_interval: 250ms
  commit_bytes: 1MiB
`

// summary is what a test compares of a loaded component.
type summary struct {
	Kind  connector.Kind
	Type  string
	Name  string
	Label string
	Pos   string
	Built bool
}

func summarize(c *config.Component) summary {
	built := c.Source != nil || c.Sink != nil || c.Lookup != nil || c.Step != nil
	return summary{Kind: c.Kind, Type: c.Type, Name: c.Name, Label: c.Label, Pos: c.Pos.String(), Built: built && c.Entry != nil && c.Params != nil}
}

func TestLoadValid(t *testing.T) {
	p, err := config.Load("pipelines/orders.yaml", []byte(validPipeline), config.Options{Registry: builtinRegistry(), Env: envOf(nil)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sum := sha256.Sum256([]byte(validPipeline))
	type top struct {
		File, Dir, Name, Description, Schedule, Timezone, State, Hash string
		Freshness                                                     time.Duration
		Errors                                                        config.ErrorPolicy
		Settings                                                      config.Settings
		Raw                                                           string
		Secrets                                                       int
	}
	got := top{
		File: p.File, Dir: p.Dir, Name: p.Name, Description: p.Description, Schedule: p.Schedule,
		Timezone: p.Timezone.String(), State: p.State, Hash: p.Hash, Freshness: p.Freshness,
		Errors: p.Errors, Settings: p.Settings, Raw: string(p.Raw), Secrets: p.Redactor.Len(),
	}
	want := top{
		File: "pipelines/orders.yaml", Dir: "pipelines", Name: "orders_enriched", Description: "Orders with their customer",
		Schedule: "*/5 * * * *", Timezone: "Europe/Paris", State: "state/bb.db", Hash: hex.EncodeToString(sum[:]),
		Freshness: 15 * time.Minute,
		Errors:    config.ErrorPolicy{MaxRejectRate: 0.01, MaxRejects: 10, MinSample: 50},
		Settings: config.Settings{
			Limits:  record.Limits{BatchRows: 500, BatchBytes: 4 << 20, MaxRecordBytes: 1000 * 1000},
			Workers: 2, Tasks: 3, CommitInterval: 250 * time.Millisecond, CommitBytes: 1 << 20,
		},
		Raw: validPipeline,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pipeline (-want +got):\n%s", diff)
	}

	var comps []summary
	comps = append(comps, summarize(p.Source))
	for _, c := range p.Lookups {
		comps = append(comps, summarize(c))
	}
	for _, c := range p.Steps {
		comps = append(comps, summarize(c))
	}
	comps = append(comps, summarize(p.Sink))
	const f = "pipelines/orders.yaml"
	wantComps := []summary{
		{Kind: connector.KindSource, Type: "csv", Label: "source", Pos: f + ":9:3", Built: true},
		{Kind: connector.KindLookup, Type: "csv", Name: "customers", Label: "lookup customers", Pos: f + ":13:14", Built: true},
		{Kind: connector.KindLookup, Type: "jsonl", Name: "regions", Label: "lookup regions", Pos: f + ":15:5", Built: true},
		{Kind: connector.KindStep, Type: "filter", Label: "filter[1]", Pos: f + ":19:5", Built: true},
		{Kind: connector.KindStep, Type: "map", Label: "map[2]", Pos: f + ":20:5", Built: true},
		{Kind: connector.KindStep, Type: "enrich", Label: "enrich[3]", Pos: f + ":21:5", Built: true},
		{Kind: connector.KindStep, Type: "filter", Label: "filter[4]", Pos: f + ":22:5", Built: true},
		{Kind: connector.KindStep, Type: "select", Label: "select[5]", Pos: f + ":23:5", Built: true},
		{Kind: connector.KindStep, Type: "validate", Label: "validate[6]", Pos: f + ":24:5", Built: true},
		{Kind: connector.KindStep, Type: "dedupe", Label: "dedupe[7]", Pos: f + ":27:5", Built: true},
		{Kind: connector.KindSink, Type: "jsonl", Label: "sink", Pos: f + ":29:3", Built: true},
	}
	if diff := cmp.Diff(wantComps, comps); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	// A component's params see its fields without `type:`.
	if pos := p.Source.Params.FieldPos("path"); pos.String() != f+":10:9" {
		t.Errorf("source FieldPos(path) = %s, want %s:10:9", pos, f)
	}
}

func TestLoadDefaults(t *testing.T) {
	tests := []struct {
		file string
		name string
		dir  string
	}{
		{file: "orders.yaml", name: "orders", dir: "."},
		{file: "jobs/nightly.pipeline.yaml", name: "nightly", dir: "jobs"},
		{file: "/abs/x.yml", name: "x", dir: "/abs"},
	}
	const src = "source: {type: csv, path: a.csv}\nsink: {type: stdout}\n"
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := config.Load(tt.file, []byte(src), config.Options{Registry: builtinRegistry(), Env: envOf(nil)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.name || p.Dir != tt.dir {
				t.Errorf("Name, Dir = %q, %q; want %q, %q", p.Name, p.Dir, tt.name, tt.dir)
			}
			if p.Timezone != time.UTC || p.Freshness != 0 || p.State != "" || p.Schedule != "" {
				t.Errorf("Timezone %v, Freshness %v, State %q, Schedule %q: want UTC and unset", p.Timezone, p.Freshness, p.State, p.Schedule)
			}
			wantErrors := config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1, MinSample: 1000}
			if diff := cmp.Diff(wantErrors, p.Errors); diff != "" {
				t.Errorf("Errors (-want +got):\n%s", diff)
			}
			wantSettings := config.Settings{Limits: record.DefaultLimits, CommitInterval: config.DefaultCommitInterval, CommitBytes: config.DefaultCommitBytes}
			if diff := cmp.Diff(wantSettings, p.Settings); diff != "" {
				t.Errorf("Settings (-want +got):\n%s", diff)
			}
			if p.Lookups != nil || p.Steps != nil || p.Source == nil || p.Sink == nil {
				t.Errorf("Lookups %v, Steps %v, Source %v, Sink %v", p.Lookups, p.Steps, p.Source, p.Sink)
			}
		})
	}
}

func TestLoadErrorPolicy(t *testing.T) {
	tests := []struct {
		in   string
		rate float64
	}{
		{in: `"1%"`, rate: 0.01},
		{in: `1%`, rate: 0.01},
		{in: `0.5%`, rate: 0.005},
		{in: `0.01`, rate: 0.01},
		{in: `100%`, rate: 1},
		{in: `0`, rate: 0},
		{in: `1`, rate: 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			src := "source: {type: csv, path: a.csv}\nsink: {type: stdout}\nerrors:\n  max_reject_rate: " + tt.in + "\n"
			p, err := load(t, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Errors.MaxRejectRate != tt.rate {
				t.Errorf("MaxRejectRate = %v, want %v", p.Errors.MaxRejectRate, tt.rate)
			}
		})
	}
}

func TestLoadSettingsSizes(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{in: "4MiB", want: 4 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "1GB", want: 1000 * 1000 * 1000},
		{in: "2KB", want: 2000},
		{in: "16 MiB", want: 16 << 20},
		{in: "4096", want: 4096},
		{in: "10B", want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			src := "source: {type: csv, path: a.csv}\nsink: {type: stdout}\nsettings:\n  batch_bytes: " + tt.in + "\n  max_record_bytes: " + tt.in + "\n"
			p, err := load(t, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Settings.Limits.BatchBytes != tt.want || p.Settings.Limits.MaxRecordBytes != tt.want {
				t.Errorf("BatchBytes, MaxRecordBytes = %d, %d; want %d", p.Settings.Limits.BatchBytes, p.Settings.Limits.MaxRecordBytes, tt.want)
			}
		})
	}
}

func TestLoadBatchRowsAtLeastOne(t *testing.T) {
	p, err := load(t, "source: {type: csv, path: a.csv}\nsink: {type: stdout}\nsettings:\n  batch_rows: 0\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Settings.Limits.BatchRows != 1 {
		t.Errorf("BatchRows = %d, want 1", p.Settings.Limits.BatchRows)
	}
}

// A pipeline that sets no batch_rows gets its sink's batch size, and one
// that sets it keeps its own.
func TestLoadBatchRowsOfTheSink(t *testing.T) {
	for _, tt := range []struct {
		sink, settings string
		want           int
	}{
		{"{type: jsonl, path: out.jsonl}", "", record.DefaultLimits.BatchRows},
		{"{type: postgres, dsn: 'postgres://h/db', table: t}", "", record.DefaultLimits.BatchRows},
		{"{type: postgres, dsn: 'postgres://h/db', table: t, mode: upsert, key: [id]}", "", 4096},
		{"{type: mysql, dsn: 'u@tcp(h)/db', table: t}", "", 4096},
		{"{type: postgres, dsn: 'postgres://h/db', table: t}", "settings: {batch_rows: 500}\n", 500},
		{"{type: jsonl, path: out.jsonl}", "settings: {batch_rows: 8192}\n", 8192},
	} {
		p, err := load(t, "source: {type: csv, path: a.csv}\nsink: "+tt.sink+"\n"+tt.settings, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Settings.Limits.BatchRows; got != tt.want {
			t.Errorf("sink %s, %q: BatchRows = %d, want %d", tt.sink, tt.settings, got, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	const sources = "csv, http, jsonl, mysql, nats, parquet, postgres, rabbitmq, sqlite"
	const sinks = "csv, http, jsonl, mysql, nats, parquet, postgres, rabbitmq, sqlite, stdout"
	const steps = "cast, dedupe, drop, enrich, filter, map, rename, select, validate"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "yaml syntax",
			src:  "source:\n  type: csv\n  path: [a\nsink: {type: stdout}\n",
			want: []string{`p.yaml:4:1: YAML syntax: ',' or ']' must be specified`},
		},
		{
			name: "unterminated quote",
			src:  "source:\n  type: \"csv\n",
			want: []string{`p.yaml:2:9: YAML syntax: could not find end character of double-quoted text`},
		},
		{
			name: "empty file",
			src:  "",
			want: []string{`p.yaml:1:1: empty pipeline file: it needs at least source and sink`},
		},
		{
			name: "only comments",
			src:  "# nothing yet\n\n",
			want: []string{`p.yaml:1:1: empty pipeline file: it needs at least source and sink`},
		},
		{
			name: "top level is a list",
			src:  "- source\n- sink\n",
			want: []string{`p.yaml:1:1: a pipeline is a mapping (source:, steps:, sink:), not a list`},
		},
		{
			name: "top level is a scalar",
			src:  "hello\n",
			want: []string{`p.yaml:1:1: a pipeline is a mapping (source:, steps:, sink:), not a single value`},
		},
		{
			name: "two documents",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\n---\nname: x\n",
			want: []string{`p.yaml:3:1: a pipeline file holds one document; found 2`},
		},
		{
			name: "scalar then a second document",
			src:  "0\n---",
			want: []string{
				`p.yaml:1:1: a pipeline is a mapping (source:, steps:, sink:), not a single value`,
				`p.yaml:2:1: a pipeline file holds one document; found 2`,
			},
		},
		{
			name: "unknown top-level field",
			src:  "source:\n  type: csv\n  path: a.csv\nsink:\n  type: stdout\nsorce: x\n",
			want: []string{`p.yaml:6:1: pipeline: unknown field "sorce" (did you mean "source"?)`},
		},
		{
			name: "misspelt source is also missing",
			src:  "sorce:\n  type: csv\n  path: a.csv\nsink:\n  type: stdout\n",
			want: []string{
				`p.yaml:1:1: pipeline: unknown field "sorce" (did you mean "source"?)`,
				`p.yaml:1:1: pipeline: missing required field "source"`,
			},
		},
		{
			name: "unknown field far from any",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nxyzzy: 1\n",
			want: []string{`p.yaml:3:1: pipeline: unknown field "xyzzy"`},
		},
		{
			name: "unknown source type",
			src:  "source:\n  type: cvs\n  path: a.csv\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:2:9: unknown source type "cvs" (did you mean "csv"?); known: ` + sources},
		},
		{
			name: "unknown sink type without suggestion",
			src:  "source:\n  type: csv\n  path: a.csv\nsink:\n  type: kafka\n",
			want: []string{`p.yaml:5:9: unknown sink type "kafka"; known: ` + sinks},
		},
		{
			name: "missing type",
			src:  "source:\n  path: a.csv\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:2:3: source: missing type (one of ` + sources + `)`},
		},
		{
			name: "unknown field in a component",
			src:  "source:\n  type: csv\n  pathh: a.csv\nsink:\n  type: stdout\n",
			want: []string{
				`p.yaml:2:3: source: missing required field "path"`,
				`p.yaml:3:3: source: unknown field "pathh" (did you mean "path"?)`,
			},
		},
		{
			name: "missing required field",
			src:  "source:\n  type: csv\n  header: false\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:2:3: source: missing required field "path"`},
		},
		{
			name: "list where a string is wanted",
			src:  "source:\n  type: csv\n  path: [a.csv, b.csv]\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:3:9: source.path: want a single value, got a list`},
		},
		{
			name: "mapping where a string is wanted",
			src:  "source:\n  type: csv\n  path:\n    a: b\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:4:5: source.path: want a single value, got a mapping`},
		},
		{
			name: "text for an int",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsettings:\n  batch_rows: abc\n",
			want: []string{`p.yaml:4:15: pipeline.settings.batch_rows: want an integer, got "abc"`},
		},
		{
			name: "negative int",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsettings:\n  workers: -2\n",
			want: []string{`p.yaml:4:12: want a non-negative integer, got "-2"`},
		},
		{
			name: "text for a bool",
			src:  "source:\n  type: csv\n  path: a.csv\n  header: maybe\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:4:11: source.header: want true or false, got "maybe"`},
		},
		{
			name: "bad enum value",
			src:  "source:\n  type: csv\n  path: a.csv\n  compression: zip\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:4:16: source.compression: "zip" is not one of auto, none, gzip (did you mean "gzip"?)`},
		},
		{
			name: "bad enum value in a step",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - enrich: { lookup: c, on: id, missing: skip }\n",
			want: []string{`p.yaml:4:43: enrich[1].missing: "skip" is not one of reject, null, drop`},
		},
		{
			name: "unknown step",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - fliter: x > 1\n",
			want: []string{`p.yaml:4:5: unknown step "fliter" (did you mean "filter"?); known: ` + steps},
		},
		{
			name: "filter given a mapping",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - filter: { x: 1 }\n",
			want: []string{`p.yaml:4:13: filter[1]: want an expression, got a mapping`},
		},
		{
			name: "select given a mapping",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - filter: x > 1\n  - select:\n      a: b\n",
			want: []string{`p.yaml:6:7: select[2]: want a list of names, got a mapping`},
		},
		{
			name: "map given a list",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - map: [a, b]\n",
			want: []string{`p.yaml:4:10: map[1]: want a mapping (name: value), got a list`},
		},
		{
			name: "step with two keys",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - filter: x\n    map: {a: b}\n",
			want: []string{`p.yaml:4:5: step 1: want one key naming the step (one of ` + steps + `)`},
		},
		{
			name: "step that is a scalar",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - filter: x\n  - 42\n",
			want: []string{`p.yaml:5:5: step 2: want one key naming the step (one of ` + steps + `)`},
		},
		{
			name: "validate item with an unknown field",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - validate:\n      - check: x > 0\n        mesage: bad\n",
			want: []string{`p.yaml:6:9: validate[1]: unknown field "mesage" (did you mean "message"?)`},
		},
		{
			name: "duplicate key",
			src:  "source:\n  type: csv\n  path: a.csv\n  path: b.csv\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:4:3: YAML syntax: mapping key "path" already defined at [3:3]`},
		},
		{
			name: "bad duration",
			src:  "source:\n  type: csv\n  path: a.csv\n  min_age: 5 minutes\nsink:\n  type: stdout\n",
			want: []string{`p.yaml:4:12: source.min_age: "5 minutes" is not a duration (like 30s, 5m, 1h, 2d)`},
		},
		{
			name: "bad top-level duration",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nfreshness: soon\n",
			want: []string{`p.yaml:3:12: pipeline.freshness: "soon" is not a duration (like 30s, 5m, 1h, 2d)`},
		},
		{
			name: "bad ratio",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nerrors:\n  max_reject_rate: 150%\n",
			want: []string{`p.yaml:4:20: errors.max_reject_rate: "150%" is not a ratio (like 1% or 0.01)`},
		},
		{
			name: "ratio that is a word",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nerrors:\n  max_reject_rate: few\n",
			want: []string{`p.yaml:4:20: errors.max_reject_rate: "few" is not a ratio (like 1% or 0.01)`},
		},
		{
			name: "bad size",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsettings:\n  batch_bytes: 1XB\n",
			want: []string{`p.yaml:4:16: pipeline.settings.batch_bytes: "1XB" is not a size (like 4096, 64KiB, 16MiB)`},
		},
		{
			name: "invalid name",
			src:  "name: my pipeline!\nsource: {type: csv, path: a}\nsink: {type: stdout}\n",
			want: []string{`p.yaml:1:7: name "my pipeline!": use letters, digits, '_', '-' and '.' only`},
		},
		{
			name: "invalid lookup name",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nlookups:\n  my lookup: {type: csv, path: c.csv, key: id}\n",
			want: []string{`p.yaml:4:3: lookup name "my lookup": use letters, digits and '_'`},
		},
		{
			name: "unknown time zone",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\ntimezone: Mars/Base\n",
			want: []string{`p.yaml:3:11: unknown time zone "Mars/Base"`},
		},
		{
			name: "source and sink of the wrong shape",
			src:  "source: [a]\nsink: stdout\nsteps: {filter: x}\nlookups: [a]\n",
			want: []string{
				`p.yaml:1:9: source: want a mapping with a type, got a list`,
				`p.yaml:2:7: sink: want a mapping with a type, got a single value`,
				`p.yaml:3:8: steps: want a list (- filter: ...), got a mapping`,
				`p.yaml:4:10: pipeline.lookups: want a mapping, got a list`,
			},
		},
		{
			name: "empty source and sink",
			src:  "source:\nsink:\nname: x\n",
			want: []string{
				`p.yaml:1:8: source: want a mapping with a type, got nothing`,
				`p.yaml:2:6: sink: want a mapping with a type, got nothing`,
			},
		},
		{
			name: "missing source and sink",
			src:  "name: x\n",
			want: []string{
				`p.yaml:1:1: pipeline: missing required field "source"`,
				`p.yaml:1:1: pipeline: missing required field "sink"`,
			},
		},
		{
			name: "secret_env not a list",
			src:  "source: {type: csv, path: a}\nsink: {type: stdout}\nsecret_env: {A: 1}\n",
			want: []string{`p.yaml:3:13: pipeline.secret_env: want a list, got a mapping`},
		},
		{
			name: "several errors come out together in line order",
			src: `sorce: 1
source:
  type: csv
  pathh: a
steps:
  - fliter: x
  - filter: {a: 1}
sink:
  type: stdot
settings:
  batch_rows: abc
errors:
  max_reject_rate: 2
`,
			want: []string{
				`p.yaml:1:1: pipeline: unknown field "sorce" (did you mean "source"?)`,
				`p.yaml:3:3: source: missing required field "path"`,
				`p.yaml:4:3: source: unknown field "pathh" (did you mean "path"?)`,
				`p.yaml:6:5: unknown step "fliter" (did you mean "filter"?); known: ` + steps,
				`p.yaml:7:13: filter[2]: want an expression, got a mapping`,
				`p.yaml:9:9: unknown sink type "stdot" (did you mean "stdout"?); known: ` + sinks,
				`p.yaml:11:15: pipeline.settings.batch_rows: want an integer, got "abc"`,
				`p.yaml:13:20: errors.max_reject_rate: "2" is not a ratio (like 1% or 0.01)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := load(t, tt.src, nil)
			if p != nil {
				t.Errorf("Load returned a pipeline with its errors")
			}
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadFactoryErrors checks that an error a component's factory gives
// keeps its place in the file.
func TestLoadFactoryErrors(t *testing.T) {
	src := "source: {type: csv, path: a}\nsink: {type: stdout}\nsteps:\n  - filter: x\n  - probe: {n: 7, s: fail}\n"
	_, err := config.Load("p.yaml", []byte(src), config.Options{Registry: probeRegistry(), Env: envOf(nil)})
	want := []string{`p.yaml:5:22: probe refuses s "fail"`}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLoadWithoutRegistry(t *testing.T) {
	// Without a registry only the pipeline's own fields are checked.
	src := "source: [a]\nsink: {type: whatever}\nsettings:\n  batch_rows: 7\n"
	_, err := config.Load("p.yaml", []byte(src), config.Options{Env: envOf(nil)})
	want := []string{`p.yaml:1:9: pipeline.source: want a mapping, got a list`}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	p, err := config.Load("p.yaml", []byte("source: {type: x}\nsink: {type: y}\nsettings:\n  batch_rows: 7\n"), config.Options{Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != nil || p.Sink != nil || p.Settings.Limits.BatchRows != 7 {
		t.Errorf("Source %v, Sink %v, BatchRows %d", p.Source, p.Sink, p.Settings.Limits.BatchRows)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daily.yaml")
	if err := os.WriteFile(path, []byte(validPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.LoadFile(path, config.Options{Registry: builtinRegistry(), Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if p.File != path || p.Dir != dir || p.Name != "orders_enriched" || len(p.Steps) != 7 {
		t.Errorf("File %q, Dir %q, Name %q, %d steps", p.File, p.Dir, p.Name, len(p.Steps))
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("source:\n  type: cvs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.LoadFile(bad, config.Options{Registry: builtinRegistry(), Env: envOf(nil)})
	lines := errorLines(t, err)
	for _, l := range lines {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("error %q does not start with the file name", l)
		}
	}
	if len(lines) != 2 {
		t.Errorf("errors = %q, want the sink missing and the source type unknown", lines)
	}

	_, err = config.LoadFile(filepath.Join(dir, "missing.yaml"), config.Options{Registry: builtinRegistry()})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want a not-exist error", err)
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		t.Errorf("an I/O error came back as config.Errors")
	}
}

func TestErrorsSort(t *testing.T) {
	errs := config.Errors{
		{Pos: connector.Pos{File: "b.yaml", Line: 1, Col: 1}, Msg: "b1"},
		{Pos: connector.Pos{File: "a.yaml", Line: 10, Col: 2}, Msg: "a10.2"},
		{Pos: connector.Pos{File: "a.yaml", Line: 2, Col: 5}, Msg: "a2.5"},
		{Pos: connector.Pos{File: "a.yaml", Line: 2, Col: 1}, Msg: "a2.1 first"},
		{Pos: connector.Pos{File: "a.yaml", Line: 2, Col: 1}, Msg: "a2.1 second"},
	}
	errs.Sort()
	want := "a.yaml:2:1: a2.1 first\na.yaml:2:1: a2.1 second\na.yaml:2:5: a2.5\na.yaml:10:2: a10.2\nb.yaml:1:1: b1"
	if got := errs.Error(); got != want {
		t.Errorf("sorted errors:\n%s\nwant\n%s", got, want)
	}
}

func TestErrorsRedacted(t *testing.T) {
	var r config.Redactor
	r.Add("s3cr3t")
	errs := config.Errors{{Pos: connector.Pos{File: "p.yaml", Line: 3, Col: 4}, Msg: `bad value "s3cr3t"`}}
	if got, want := errs.Redacted(&r), `p.yaml:3:4: bad value "[redacted]"`; got != want {
		t.Errorf("Redacted = %q, want %q", got, want)
	}
	if got := errs.Redacted(nil); !strings.Contains(got, "s3cr3t") {
		t.Errorf("Redacted(nil) = %q, want the text unchanged", got)
	}
}

func TestDidYouMean(t *testing.T) {
	candidates := []string{"csv", "jsonl", "parquet", "sqlite", "stdout"}
	tests := []struct {
		in   string
		want string
	}{
		{in: "cvs", want: ` (did you mean "csv"?)`},
		{in: "CSV", want: ` (did you mean "csv"?)`},
		{in: "stdot", want: ` (did you mean "stdout"?)`},
		{in: "parket", want: ` (did you mean "parquet"?)`},
		{in: "jsonlines", want: ` (did you mean "jsonl"?)`},
		{in: "sqlite3", want: ` (did you mean "sqlite"?)`},
		{in: "kafka", want: ``},
		{in: "postgres", want: ``},
		{in: "", want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := config.DidYouMean(tt.in, candidates); got != tt.want {
				t.Errorf("DidYouMean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := config.DidYouMean("x", nil); got != "" {
		t.Errorf("DidYouMean with no candidates = %q", got)
	}
}

// probeRegistry is the built-in registry plus a "probe" source and step
// that keep what they decoded, so tests can see the YAML types of values.
func probeRegistry() *connector.Registry {
	r := builtinRegistry()
	fields := []connector.FieldSpec{
		{Name: "n", Type: connector.TInt},
		{Name: "s", Type: connector.TString},
		{Name: "v", Type: connector.TString},
		{Name: "password", Type: connector.TString, Secret: true},
	}
	r.AddSource(connector.Spec{Name: "probe", Summary: "test source", Fields: fields}, func(p connector.Params) (connector.Source, error) {
		return newProbe(p)
	})
	r.AddStep(connector.Spec{Name: "probe", Summary: "test step", Fields: fields}, func(p connector.Params) (connector.Step, error) {
		return newProbe(p)
	})
	return r
}

// newProbe decodes its params; s: fail makes it refuse them with a message
// that echoes s and v.
func newProbe(p connector.Params) (*probe, error) {
	var cfg probeConfig
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.S == "fail" {
		msg := fmt.Sprintf("probe refuses s %q", cfg.S)
		if cfg.V != nil {
			msg += fmt.Sprintf(" with v %v", cfg.V)
		}
		return nil, connector.Errorf(p.FieldPos("s"), "%s", msg)
	}
	return &probe{cfg: cfg}, nil
}

type probeConfig struct {
	N        any    `yaml:"n"`
	S        string `yaml:"s"`
	V        any    `yaml:"v"`
	Password string `yaml:"password"`
}

type probe struct{ cfg probeConfig }

func (*probe) Plan(context.Context, *connector.Env) ([]connector.Task, error) { return nil, nil }
func (*probe) Open(context.Context, *connector.Env, connector.Task, record.Position) (connector.Reader, error) {
	return nil, errors.New("probe: no data")
}
func (*probe) Bind(in *record.Schema, _ *connector.StepEnv) (*record.Schema, error) { return in, nil }
func (*probe) Process(context.Context, *record.Batch) error                         { return nil }

func loadProbe(t *testing.T, body string, vars map[string]string) (*config.Pipeline, error) {
	t.Helper()
	src := "source:\n  type: probe\n" + body + "sink: {type: stdout}\n"
	return config.Load("p.yaml", []byte(src), config.Options{Registry: probeRegistry(), Env: envOf(vars)})
}

func probeOf(t *testing.T, p *config.Pipeline) probeConfig {
	t.Helper()
	pr, ok := p.Source.Source.(*probe)
	if !ok {
		t.Fatalf("source is a %T, want the probe", p.Source.Source)
	}
	return pr.cfg
}

func TestInterpolation(t *testing.T) {
	vars := map[string]string{
		"N":      "500",
		"NAME":   "nightly",
		"EMPTY":  "",
		"DIR":    "/data/in",
		"COLON":  "a: b",
		"LINES":  "a.csv\nsink: {type: csv}",
		"FLOW":   "{type: csv}",
		"LIST":   "[1, 2]",
		"DASH":   "- x",
		"BOOL":   "true",
		"SPACES": "  padded  ",
		"HASH":   "x # not a comment",
	}
	tests := []struct {
		name string
		body string   // under source:, after type: probe
		s    string   // the probe's s
		v    any      // the probe's v, as decoded into any
		n    any      // the probe's n, as decoded into any
		errs []string // when Load fails
	}{
		{name: "variable", body: "  s: ${DIR}\n", s: "/data/in"},
		{name: "inside text", body: "  s: ${DIR}/orders-${N}.csv\n", s: "/data/in/orders-500.csv"},
		{name: "two in a row", body: "  s: ${N}${N}\n", s: "500500"},
		{name: "default unused", body: "  s: ${DIR:-/tmp}\n", s: "/data/in"},
		{name: "default of unset", body: "  s: ${UNSET:-/tmp/x}\n", s: "/tmp/x"},
		{name: "default of empty", body: "  s: ${EMPTY:-fallback}\n", s: "fallback"},
		{name: "empty default", body: "  s: a${UNSET:-}b\n", s: "ab"},
		{name: "empty without default", body: "  s: a${EMPTY}b\n", s: "ab"},
		{name: "default with a colon", body: "  s: \"${UNSET:-http://x:80}\"\n", s: "http://x:80"},
		{name: "escape", body: "  s: $${DIR} costs $5\n", s: "${DIR} costs $5"},
		{name: "escape then variable", body: "  s: $${N}=${N}\n", s: "${N}=500"},
		{name: "quoted", body: "  s: \"${DIR}\"\n", s: "/data/in"},
		{name: "single quoted", body: "  s: '${DIR}'\n", s: "/data/in"},
		{name: "block scalar", body: "  s: |\n    dir ${DIR}\n", s: "dir /data/in\n"},
		{name: "plain scalar is re-typed as an int", body: "  n: ${N}\n", n: uint64(500)},
		{name: "plain scalar is re-typed as a bool", body: "  v: ${BOOL}\n", v: true},
		{name: "quoted scalar stays a string", body: "  n: \"${N}\"\n", n: "500"},
		{name: "single quoted scalar stays a string", body: "  v: '${BOOL}'\n", v: "true"},
		{name: "text around a number stays a string", body: "  v: x${N}\n", v: "x500"},
		{name: "colon cannot make a mapping", body: "  v: ${COLON}\n", v: "a: b"},
		{name: "newline cannot make a key", body: "  v: ${LINES}\n", v: "a.csv\nsink: {type: csv}"},
		{name: "braces cannot make a mapping", body: "  v: ${FLOW}\n", v: "{type: csv}"},
		{name: "brackets cannot make a list", body: "  v: ${LIST}\n", v: "[1, 2]"},
		{name: "dash cannot make a list", body: "  v: ${DASH}\n", v: "- x"},
		{name: "hash is not a comment", body: "  v: ${HASH}\n", v: "x # not a comment"},
		{name: "spaces kept", body: "  s: ${SPACES}\n", s: "  padded  "},
		{
			name: "unset without default",
			body: "  s: ${UNSET}\n",
			errs: []string{`p.yaml:3:6: environment variable UNSET is not set (write ${UNSET:-default} for a default)`},
		},
		{
			name: "unset in a quoted value",
			body: "  s: \"x ${UNSET}\"\n",
			errs: []string{`p.yaml:3:6: environment variable UNSET is not set (write ${UNSET:-default} for a default)`},
		},
		{
			name: "unset in a block scalar",
			body: "  s: >\n    x\n    ${UNSET}\n",
			errs: []string{`p.yaml:3:6: environment variable UNSET is not set (write ${UNSET:-default} for a default)`},
		},
		{
			name: "invalid name",
			body: "  s: ${1BAD}\n",
			errs: []string{`p.yaml:3:6: invalid environment variable name "1BAD" in ${1BAD}`},
		},
		{
			name: "name with a dash",
			body: "  s: ${A-B}\n",
			errs: []string{`p.yaml:3:6: invalid environment variable name "A-B" in ${A-B}`},
		},
		{
			name: "empty name",
			body: "  s: ${}\n",
			errs: []string{`p.yaml:3:6: invalid environment variable name "" in ${}`},
		},
		{
			name: "unterminated",
			body: "  s: ${DIR\n",
			errs: []string{`p.yaml:3:6: unterminated ${ in "${DIR"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := loadProbe(t, tt.body, vars)
			if tt.errs != nil {
				if diff := cmp.Diff(tt.errs, errorLines(t, err)); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			cfg := probeOf(t, p)
			want := probeConfig{S: tt.s, V: tt.v, N: tt.n}
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
			if p.Sink.Type != "stdout" {
				t.Errorf("a value changed the sink into %q", p.Sink.Type)
			}
		})
	}
}

func TestInterpolationTopLevel(t *testing.T) {
	src := `name: ${NAME}
description: "${DESC:-none} and $${LITERAL}"
source:
  type: csv
  path: ${DIR}/a.csv
sink:
  type: stdout
errors:
  max_reject_rate: ${RATE:-2%}
settings:
  batch_rows: ${N}
  batch_bytes: ${SIZE}
`
	p, err := load(t, src, map[string]string{"NAME": "nightly", "DIR": "/d", "N": "500", "SIZE": "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "nightly" || p.Description != "none and ${LITERAL}" || p.Settings.Limits.BatchRows != 500 ||
		p.Settings.Limits.BatchBytes != 1<<20 || p.Errors.MaxRejectRate != 0.02 {
		t.Errorf("Name %q, Description %q, BatchRows %d, BatchBytes %d, MaxRejectRate %v",
			p.Name, p.Description, p.Settings.Limits.BatchRows, p.Settings.Limits.BatchBytes, p.Errors.MaxRejectRate)
	}
	if got := p.Source.Params.FieldPos("path").String(); got != "p.yaml:5:9" {
		t.Errorf("path is at %s after interpolation, want p.yaml:5:9", got)
	}
	// The raw file is kept as written, variables unexpanded.
	if !strings.Contains(string(p.Raw), "${DIR}/a.csv") {
		t.Errorf("Raw lost the file's text")
	}
}

func TestInterpolationErrorsAll(t *testing.T) {
	// Every unset variable is reported, each at its place.
	src := "name: ${A}\nsource:\n  type: csv\n  path: ${B}\nsink:\n  type: ${C:-stdout}\ndescription: ${D}\n"
	want := []string{
		`p.yaml:1:7: environment variable A is not set (write ${A:-default} for a default)`,
		`p.yaml:1:7: name "": use letters, digits, '_', '-' and '.' only`,
		`p.yaml:4:9: environment variable B is not set (write ${B:-default} for a default)`,
		`p.yaml:4:9: path is required`,
		`p.yaml:7:14: environment variable D is not set (write ${D:-default} for a default)`,
	}
	_, err := load(t, src, nil)
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestSecrets(t *testing.T) {
	const secret = "hunter2-xyzzy"
	tests := []struct {
		name    string
		src     string
		vars    map[string]string
		secret  string // must appear in no message; secret when empty
		wantErr bool   // Load fails, with the secret nowhere in its messages
	}{
		{
			name:    "secret_env value echoed as an unknown type",
			src:     "secret_env: [MY_VALUE]\nsource:\n  type: ${MY_VALUE}\n  path: a\nsink: {type: stdout}\n",
			vars:    map[string]string{"MY_VALUE": secret},
			wantErr: true,
		},
		{
			name:    "secret_env as one name",
			src:     "secret_env: MY_VALUE\nsource:\n  type: csv\n  path: a\n  header: ${MY_VALUE}\nsink: {type: stdout}\n",
			vars:    map[string]string{"MY_VALUE": secret},
			wantErr: true,
		},
		{
			name:    "PASSWORD in the name",
			src:     "source:\n  type: csv\n  path: a\n  compression: ${DB_PASSWORD}\nsink: {type: stdout}\n",
			vars:    map[string]string{"DB_PASSWORD": secret},
			wantErr: true,
		},
		{
			name:    "TOKEN in the name, lower case",
			src:     "source:\n  type: csv\n  path: a\nsink: {type: stdout}\nsettings:\n  batch_rows: ${api_token}\n",
			vars:    map[string]string{"api_token": secret},
			wantErr: true,
		},
		{
			name:    "SECRET in the name",
			src:     "source:\n  type: csv\n  path: a\nsink: {type: stdout}\ntimezone: ${APP_SECRET}\n",
			vars:    map[string]string{"APP_SECRET": secret},
			wantErr: true,
		},
		{
			name:    "DSN in the name",
			src:     "source:\n  type: csv\n  path: a\nsink: {type: stdout}\nname: ${WAREHOUSE_DSN}\n",
			vars:    map[string]string{"WAREHOUSE_DSN": "postgres://u:" + secret + "@db/x"},
			wantErr: true,
		},
		{
			name:    "secret in a default",
			src:     "source:\n  type: csv\n  path: a\nsink: {type: stdout}\nerrors:\n  max_reject_rate: ${MY_TOKEN:-" + secret + "}\n",
			wantErr: true,
		},
		{
			name:    "secret with quotes and backslashes",
			src:     "secret_env: [K]\nsource:\n  type: \"${K}\"\n  path: a\nsink: {type: stdout}\n",
			vars:    map[string]string{"K": `a"b\c` + secret},
			secret:  `a\"b\\c`,
			wantErr: true,
		},
		{
			name:    "secret with a newline",
			src:     "secret_env: [K]\nsource:\n  type: csv\n  path: a\n  compression: ${K}\nsink: {type: stdout}\n",
			vars:    map[string]string{"K": "line1\n" + secret},
			secret:  `line1\n`,
			wantErr: true,
		},
		{
			name:    "secret field of a component echoed by its factory",
			src:     "source:\n  type: probe\n  password: " + secret + "\n  s: fail\n  v: " + secret + "\nsink: {type: stdout}\n",
			wantErr: true,
		},
		{
			name:    "secret echoed by another component",
			src:     "secret_env: [K]\nsource:\n  type: probe\n  s: \"${K}\"\nsink: {type: stdout}\nsteps:\n  - probe: {s: fail, v: the-secret-value}\n",
			vars:    map[string]string{"K": "the-secret-value"},
			secret:  "the-secret-value",
			wantErr: true,
		},
		{
			name: "valid pipeline keeps its secrets known",
			src:  "source:\n  type: probe\n  s: ${MY_PASSWORD}\nsink: {type: stdout}\n",
			vars: map[string]string{"MY_PASSWORD": secret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := config.Load("p.yaml", []byte(tt.src), config.Options{Registry: probeRegistry(), Env: envOf(tt.vars)})
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if got := p.Redactor.Redact("dsn=" + secret); got != "dsn=[redacted]" {
					t.Errorf("Redact = %q, want the secret replaced", got)
				}
				return
			}
			hidden := tt.secret
			if hidden == "" {
				hidden = secret
			}
			lines := errorLines(t, err)
			redacted := false
			for _, l := range lines {
				if strings.Contains(l, hidden) {
					t.Errorf("error %q shows the secret", l)
				}
				redacted = redacted || strings.Contains(l, "[redacted]")
			}
			if !redacted {
				t.Errorf("errors %q: want one showing [redacted] where the secret was", lines)
			}
		})
	}
}

func TestPlainVariablesAreNotSecrets(t *testing.T) {
	src := "source:\n  type: probe\n  s: ${DIR}\nsink: {type: stdout}\nsettings:\n  batch_rows: ${N}\n"
	p, err := config.Load("p.yaml", []byte(src), config.Options{Registry: probeRegistry(), Env: envOf(map[string]string{"DIR": "/data/orders", "N": "100"})})
	if err != nil {
		t.Fatal(err)
	}
	if p.Redactor.Len() != 0 {
		t.Errorf("Redactor knows %d secrets, want none", p.Redactor.Len())
	}
}

func TestRedactor(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{name: "nothing known", in: "a b c", want: "a b c"},
		{name: "replaced everywhere", secrets: []string{"s3cret"}, in: "s3cret and s3cret", want: "[redacted] and [redacted]"},
		{name: "longest first", secrets: []string{"abc", "abcdef"}, in: "x abcdef y abc", want: "x [redacted] y [redacted]"},
		{name: "longest first whatever the order", secrets: []string{"abcdef", "abc"}, in: "abcdefabc", want: "[redacted][redacted]"},
		{name: "short values ignored", secrets: []string{"ab", "x", ""}, in: "ab x", want: "ab x"},
		{name: "three bytes count", secrets: []string{"abc"}, in: "abc", want: "[redacted]"},
		{name: "quoted form", secrets: []string{"p\"w\\d"}, in: `got "p\"w\\d"`, want: `got "[redacted]"`},
		{name: "quoted form of a newline", secrets: []string{"a\nbcd"}, in: `value "a\nbcd" and a` + "\nbcd", want: `value "[redacted]" and [redacted]`},
		{name: "duplicates once", secrets: []string{"dup", "dup"}, in: "dup", want: "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r config.Redactor
			for _, s := range tt.secrets {
				r.Add(s)
			}
			if got := r.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var nilR *config.Redactor
	if nilR.Redact("x") != "x" || nilR.Len() != 0 {
		t.Errorf("a nil Redactor must pass text through")
	}
	var r config.Redactor
	r.Add("dup")
	r.Add("dup")
	r.Add("no")
	if r.Len() != 1 {
		t.Errorf("Len = %d, want 1", r.Len())
	}
}

func ExampleLoad() {
	r := connector.NewRegistry()
	builtin.Register(r)
	src := []byte("source:\n  type: cvs\n  path: in.csv\nsink:\n  type: stdout\nsettings:\n  batch_rows: many\n")
	_, err := config.Load("orders.yaml", src, config.Options{Registry: r, Env: func(string) (string, bool) { return "", false }})
	fmt.Println(err)
	// Output:
	// orders.yaml:2:9: unknown source type "cvs" (did you mean "csv"?); known: csv, http, jsonl, mysql, nats, parquet, postgres, rabbitmq, sqlite
	// orders.yaml:7:15: pipeline.settings.batch_rows: want an integer, got "many"
}
