package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Pipeline is one checked pipeline file.
type Pipeline struct {
	File        string // as given
	Dir         string // directory of File: relative paths resolve here
	Name        string
	Description string
	Schedule    string
	Timezone    *time.Location // zone of timestamps written without one; UTC by default
	Freshness   time.Duration
	State       string // state store location; "" means the default
	Hash        string // sha256 of the file's bytes

	Source  *Component
	Lookups []*Component // in the order written
	Steps   []*Component
	Sink    *Component

	Errors   ErrorPolicy
	Settings Settings
	Runs     Runs
	Tests    []*Test // inline fixtures of `backbone test`

	// Redactor knows every secret of this pipeline: values of fields marked
	// secret and of secret environment variables.
	Redactor *Redactor
	// Raw is the file as read, for run history and versions. Never print it
	// without Redactor.Redact.
	Raw []byte
}

// Component is a source, lookup, step or sink as configured.
type Component struct {
	Kind   connector.Kind
	Type   string // "csv", "filter", ...
	Name   string // a lookup's name
	Label  string // "source", "lookup customers", "filter[1]", "sink"
	Pos    connector.Pos
	Entry  *connector.Entry
	Params connector.Params

	Source connector.Source
	Sink   connector.Sink
	Lookup connector.Lookup
	Step   connector.Step
}

// ErrorPolicy is the error budget of a run.
type ErrorPolicy struct {
	// MaxRejectRate fails the run when rejected/read exceeds it; <0: unset.
	MaxRejectRate float64
	// MaxRejects fails the run when more records than this are rejected;
	// <0: unset.
	MaxRejects int64
	// MinSample is how many records must be read before the rate is judged
	// mid-run; the rate is always judged at the end of the input.
	MinSample int64
}

// Settings tune the engine for one pipeline.
// Runs is how `serve` schedules and retries a pipeline.
type Runs struct {
	CatchUp         string // "skip", "once" or "all"
	OnBadVersion    string // "keep" or "rollback"
	Timeout         time.Duration
	Retries         int
	Backoff         time.Duration
	MaxBackoff      time.Duration
	QuarantineAfter int
	Concurrency     int
	SchedulePos     connector.Pos // where `schedule` is written, for errors found later
}

// DefaultRuns are the values of Runs that a pipeline does not set.
var DefaultRuns = Runs{CatchUp: "once", OnBadVersion: "keep", Timeout: time.Hour, Retries: 3,
	Backoff: 10 * time.Second, MaxBackoff: 5 * time.Minute, QuarantineAfter: 5, Concurrency: 1}

type Settings struct {
	Limits  record.Limits
	Workers int // step workers per task; 0: one per core
	Tasks   int // tasks read at once; 0: one per core
	// A sink that stages again what a lost transaction held (see
	// connector.WriterInfo.StageBatches) commits once CommitInterval has
	// passed or CommitBytes of input were written since its last commit,
	// instead of after every batch.
	CommitInterval time.Duration
	CommitBytes    int64
}

// Commit defaults: rows wait a second at most for their commit, and at most
// 2 MiB of input is kept for staging again (measured here: larger keeps
// more memory live, and the collector then costs more than the commits
// saved).
const (
	DefaultCommitInterval = time.Second
	DefaultCommitBytes    = 2 << 20
)

// TopFields documents the top level of a pipeline file; Load checks
// against it and `backbone docs` renders it.
var TopFields = []connector.FieldSpec{
	{Name: "name", Type: connector.TString, Doc: "Pipeline name: the key of its checkpoints, runs and dead letters. Default: the file name without extension."},
	{Name: "description", Type: connector.TString, Doc: "Free text shown in listings."},
	{Name: "schedule", Type: connector.TString, Doc: `When ` + "`serve`" + ` runs the pipeline: a cron expression ("*/5 * * * *") or "every 30s".`},
	{Name: "timezone", Type: connector.TString, Default: "UTC", Doc: "Zone of the schedule and of timestamps written without a zone."},
	{Name: "freshness", Type: connector.TDuration, Doc: "Alert when no run has succeeded for this long, or a run has made no progress for this long (`serve`)."},
	{Name: "catch_up", Type: connector.TEnum, Enum: []string{"skip", "once", "all"}, Default: "once", Doc: "Schedules missed while `serve` was down: skip them, run the latest once, or run each in order."},
	{Name: "on_bad_version", Type: connector.TEnum, Enum: []string{"keep", "rollback"}, Default: "keep", Doc: "A new version whose first run breaches the error budget, or fails where the previous version succeeded, is marked bad and alerted; `rollback` also restores the previous good version, which runs again from the same checkpoint."},
	{Name: "runs", Type: connector.TObject, Doc: "How `serve` runs the pipeline.", Fields: runsFields},
	{Name: "state", Type: connector.TString, Default: ".backbone/state.db", Doc: "State store: a SQLite file path (relative to the working directory), or a PostgreSQL DSN (postgres://user:password@host/db?schema=backbone) that several processes share. Its password is a secret."},
	{Name: "secret_env", Type: connector.TList, Doc: "Environment variables whose values are secrets, beyond those whose names contain PASSWORD, SECRET, TOKEN, API_KEY, CREDENTIAL or DSN. Secrets are never printed."},
	{Name: "source", Type: connector.TObject, Required: true, Doc: "Where records come from: `type:` names a source component."},
	{Name: "lookups", Type: connector.TMap, Doc: "Named reference data used by `enrich` and `lookup()`: each value has a `type:` naming a lookup component."},
	{Name: "steps", Type: connector.TObjects, Doc: "Transformations in order; each item has one key naming a step."},
	{Name: "sink", Type: connector.TObject, Required: true, Doc: "Where records go: `type:` names a sink component."},
	{Name: "errors", Type: connector.TObject, Doc: "The error budget.", Fields: errorFields},
	{Name: "settings", Type: connector.TObject, Doc: "Engine tuning.", Fields: settingsFields},
	{Name: "tests", Type: connector.TObjects, Doc: "Fixtures for `backbone test`: records in, records and rejects expected out. They may also live in PIPELINE.test.yaml beside the file.", Fields: TestFields},
}

var runsFields = []connector.FieldSpec{
	{Name: "timeout", Type: connector.TDuration, Default: "1h", Doc: "A run still going after this long is stopped and counted as failed."},
	{Name: "retries", Type: connector.TInt, Default: "3", Doc: "A failed scheduled run is retried this many times, with exponential backoff and jitter."},
	{Name: "backoff", Type: connector.TDuration, Default: "10s", Doc: "Wait before the first retry; doubled for each next one."},
	{Name: "max_backoff", Type: connector.TDuration, Default: "5m", Doc: "Longest wait between retries."},
	{Name: "quarantine_after", Type: connector.TInt, Default: "5", Doc: "Consecutive failed runs (after their retries) that pause the pipeline until an operator resumes it. 0: never."},
	{Name: "concurrency", Type: connector.TInt, Default: "1", Doc: "Runs of this pipeline at once. 1 never overlaps runs, which incremental sources need."},
}

var errorFields = []connector.FieldSpec{
	{Name: "max_reject_rate", Type: connector.TString, Doc: `Fail the run when rejected/read exceeds this ratio ("1%" or 0.01). Judged before any checkpoint moves past the data.`},
	{Name: "max_rejects", Type: connector.TInt, Doc: "Fail the run when more records than this are rejected."},
	{Name: "min_sample", Type: connector.TInt, Default: "1000", Doc: "Records read before the reject rate is judged mid-run (it is always judged at the end)."},
	{Name: "dead_letter", Type: connector.TEnum, Enum: []string{"state"}, Default: "state", Doc: "Where rejected records go."},
}

var settingsFields = []connector.FieldSpec{
	{Name: "batch_rows", Type: connector.TInt, Default: "1024", Doc: "Records per batch at most. Unset, a sink that writes larger batches faster gets its own size (4096 for mysql and a postgres upsert): smaller batches stay in the CPU's caches while the steps run."},
	{Name: "batch_bytes", Type: connector.TSize, Default: "4MiB", Doc: "Input bytes per batch at most."},
	{Name: "max_record_bytes", Type: connector.TSize, Default: "16MiB", Doc: "A larger record is rejected, never buffered whole."},
	{Name: "workers", Type: connector.TInt, Default: "0", Doc: "Step workers per task; 0 means one per core."},
	{Name: "tasks", Type: connector.TInt, Default: "0", Doc: "Tasks read at once; 0 means one per core."},
	{Name: "commit_interval", Type: connector.TDuration, Default: "1s", Doc: "A sink that stages again what a lost transaction held (PostgreSQL, in modes append and upsert) commits rows and checkpoints together at most this long after the first row it staged, instead of after every batch: fewer, larger transactions. A crash loses nothing and loads nothing twice: the next run reads what was not committed. 0 commits every batch."},
	{Name: "commit_bytes", Type: connector.TSize, Default: "2MiB", Doc: "Input staged since the last commit that makes such a sink commit before commit_interval has passed; it bounds the memory kept for staging again."},
}

// Options tune Load.
type Options struct {
	Registry *connector.Registry
	Env      LookupEnv // os.LookupEnv when nil
}

// LoadFile reads and checks one pipeline file. The error, when not nil, is
// Errors (every problem, each at file:line:col) or an I/O error.
func LoadFile(path string, opts Options) (*Pipeline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, raw, opts)
}

// Load checks a pipeline file's content. The error is Errors when the
// content is at fault.
func Load(path string, raw []byte, opts Options) (*Pipeline, error) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	sum := sha256.Sum256(raw)
	p := &Pipeline{
		File:     path,
		Dir:      filepath.Dir(path),
		Hash:     hex.EncodeToString(sum[:]),
		Redactor: &Redactor{},
		Raw:      raw,
		Timezone: time.UTC,
		Errors:   ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1, MinSample: 1000},
		Settings: Settings{Limits: record.DefaultLimits, CommitInterval: DefaultCommitInterval, CommitBytes: DefaultCommitBytes},
		Runs:     DefaultRuns,
	}
	c := &collector{file: path, red: p.Redactor}
	f, err := parser.ParseBytes(raw, 0)
	if err != nil {
		c.add(connector.Pos{Line: 1, Col: 1}, yamlError(err))
		return nil, c.errs
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		c.at(connector.Pos{Line: 1, Col: 1}, "empty pipeline file: it needs at least source and sink")
		return nil, c.errs
	}
	if len(f.Docs) > 1 {
		c.at(posOf(f.Docs[1]), "a pipeline file holds one document; found %d", len(f.Docs))
	}
	top, ok := f.Docs[0].Body.(*ast.MappingNode)
	if !ok {
		if mv, isMV := f.Docs[0].Body.(*ast.MappingValueNode); isMV {
			top = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
		} else {
			c.at(posOf(f.Docs[0].Body), "a pipeline is a mapping (source:, steps:, sink:), not %s", kindName(f.Docs[0].Body))
			c.errs.Sort() // after the error about a second document
			return nil, c.errs
		}
	}
	in := &interpolator{env: opts.Env, secretEnv: map[string]bool{}, redactor: p.Redactor, c: c}
	if n := field(top, "secret_env"); n != nil {
		var names connector.List
		_ = names.UnmarshalYAML(n) // checkObject reports a secret_env that is not a list
		for _, name := range names {
			in.secretEnv[name] = true
		}
	}
	in.walk(top)

	topFields := TopFields
	if opts.Registry != nil {
		// Their builders check the shape of these, with better messages.
		topFields = withoutShape(TopFields, "source", "sink", "steps")
	}
	checkObject(c, top, topFields, "pipeline")
	p.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	p.Name = strings.TrimSuffix(p.Name, ".pipeline")
	batchRowsSet := false
	for _, mv := range top.Values {
		key := keyOf(mv)
		v := mv.Value
		switch key {
		case "name":
			p.Name = scalar(v)
			if !validName(p.Name) {
				c.at(posOf(v), "name %q: use letters, digits, '_', '-' and '.' only", p.Name)
			}
		case "description":
			p.Description = scalar(v)
		case "schedule":
			p.Schedule = scalar(v)
			p.Runs.SchedulePos = posOf(v)
		case "catch_up":
			p.Runs.CatchUp = scalar(v)
		case "on_bad_version":
			p.Runs.OnBadVersion = scalar(v)
		case "runs":
			loadRuns(c, v, &p.Runs)
		case "timezone":
			loc, err := time.LoadLocation(scalar(v))
			if err != nil {
				c.at(posOf(v), "unknown time zone %q", scalar(v))
			} else {
				p.Timezone = loc
			}
		case "freshness":
			p.Freshness, _ = connector.ParseDuration(scalar(v)) // checkObject reports a bad one
		case "state":
			p.State = scalar(v)
			if u, err := url.Parse(p.State); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					p.Redactor.Add(pw)
				}
			}
		case "errors":
			loadErrors(c, v, &p.Errors)
		case "settings":
			batchRowsSet = loadSettings(c, v, &p.Settings)
		case "tests":
			p.Tests = loadTests(c, v)
		}
	}
	if reg := opts.Registry; reg != nil {
		if n := field(top, "source"); n != nil {
			p.Source = buildComponent(c, reg, connector.KindSource, n, "source", "")
		}
		if n := field(top, "lookups"); n != nil {
			if m, ok := asMapping(n); ok {
				for _, mv := range m.Values {
					name := keyOf(mv)
					if !validName(name) {
						c.at(posOf(mv.Key), "lookup name %q: use letters, digits and '_'", name)
					}
					if lk := buildComponent(c, reg, connector.KindLookup, mv.Value, "lookup "+name, name); lk != nil {
						p.Lookups = append(p.Lookups, lk)
					}
				}
			}
		}
		if n := field(top, "steps"); n != nil {
			p.Steps = buildSteps(c, reg, n)
		}
		if n := field(top, "sink"); n != nil {
			p.Sink = buildComponent(c, reg, connector.KindSink, n, "sink", "")
		}
	}
	if len(c.errs) > 0 {
		c.errs.Sort()
		for _, e := range c.errs {
			e.Msg = p.Redactor.Redact(e.Msg)
		}
		return nil, c.errs
	}
	if sink := p.Sink; !batchRowsSet && sink != nil && sink.Entry.Spec.BatchRows != nil {
		if n := sink.Entry.Spec.BatchRows(sink.Params); n > 0 {
			p.Settings.Limits.BatchRows = n
		}
	}
	p.Settings.Limits.BatchRows = max(p.Settings.Limits.BatchRows, 1)
	return p, nil
}

// withoutShape returns a copy of fields where the named ones have no type,
// so checkObject checks only that they are known and present.
func withoutShape(fields []connector.FieldSpec, names ...string) []connector.FieldSpec {
	out := append([]connector.FieldSpec(nil), fields...)
	for i := range out {
		if slices.Contains(names, out[i].Name) {
			out[i].Type = ""
		}
	}
	return out
}

func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		pos := connector.Pos{Line: 1, Col: 1}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			pos = connector.Pos{Line: tk.Position.Line, Col: tk.Position.Column}
		}
		return &connector.PosError{Pos: pos, Msg: "YAML syntax: " + ye.GetMessage()}
	}
	return fmt.Errorf("YAML syntax: %v", err)
}

func loadErrors(c *collector, n ast.Node, e *ErrorPolicy) {
	m, ok := asMapping(n)
	if !ok {
		return
	}
	for _, mv := range m.Values {
		v := mv.Value
		switch keyOf(mv) {
		case "max_reject_rate":
			r, err := connector.ParseRatio(scalar(v))
			if err != nil {
				c.at(posOf(v), "errors.max_reject_rate: %v", err)
			}
			e.MaxRejectRate = r
		case "max_rejects":
			e.MaxRejects = intValue(c, v)
		case "min_sample":
			e.MinSample = intValue(c, v)
		}
	}
}

func loadRuns(c *collector, n ast.Node, r *Runs) {
	m, ok := asMapping(n)
	if !ok {
		return
	}
	for _, mv := range m.Values {
		v := mv.Value
		switch keyOf(mv) {
		case "timeout":
			r.Timeout, _ = connector.ParseDuration(scalar(v))
		case "retries":
			r.Retries = int(intValue(c, v))
		case "backoff":
			r.Backoff, _ = connector.ParseDuration(scalar(v))
		case "max_backoff":
			r.MaxBackoff, _ = connector.ParseDuration(scalar(v))
		case "quarantine_after":
			r.QuarantineAfter = int(intValue(c, v))
		case "concurrency":
			r.Concurrency = int(intValue(c, v))
			if r.Concurrency < 1 {
				c.at(posOf(v), "runs.concurrency: want at least 1, got %q", scalar(v))
			}
		}
	}
}

// loadSettings reads the settings block; it tells whether it sets
// batch_rows.
func loadSettings(c *collector, n ast.Node, s *Settings) (batchRows bool) {
	m, ok := asMapping(n)
	if !ok {
		return false
	}
	for _, mv := range m.Values {
		v := mv.Value
		switch keyOf(mv) {
		case "batch_rows":
			s.Limits.BatchRows = int(intValue(c, v))
			batchRows = true
		case "batch_bytes":
			s.Limits.BatchBytes = int(sizeValue(v))
		case "max_record_bytes":
			s.Limits.MaxRecordBytes = int(sizeValue(v))
		case "workers":
			s.Workers = int(intValue(c, v))
		case "tasks":
			s.Tasks = int(intValue(c, v))
		case "commit_interval":
			s.CommitInterval, _ = connector.ParseDuration(scalar(v))
		case "commit_bytes":
			s.CommitBytes = sizeValue(v)
		}
	}
	return batchRows
}

// intValue reads an int that checkValue already checked for syntax.
func intValue(c *collector, v ast.Node) int64 {
	n, err := strconv.ParseInt(scalar(v), 10, 64)
	if err == nil && n < 0 {
		c.at(posOf(v), "want a non-negative integer, got %q", scalar(v))
	}
	return n
}

// sizeValue reads a size that checkValue already checked.
func sizeValue(v ast.Node) int64 {
	n, _ := connector.ParseSize(scalar(v))
	return n
}

// buildComponent checks a source, sink or lookup mapping against the spec
// of its type and builds it.
func buildComponent(c *collector, reg *connector.Registry, kind connector.Kind, n ast.Node, label, name string) *Component {
	m, ok := asMapping(n)
	if !ok {
		c.at(posOf(n), "%s: want a mapping with a type, got %s", label, kindName(n))
		return nil
	}
	tn := field(m, "type")
	if tn == nil {
		c.at(posOf(m), "%s: missing type (one of %s)", label, strings.Join(reg.Names(kind), ", "))
		return nil
	}
	typ := scalar(tn)
	entry, ok := reg.Get(kind, typ)
	if !ok {
		c.at(posOf(tn), "unknown %s type %q%s; known: %s", kind, typ, DidYouMean(typ, reg.Names(kind)), strings.Join(reg.Names(kind), ", "))
		return nil
	}
	withType := append([]connector.FieldSpec{{Name: "type", Type: connector.TString}}, entry.Spec.Fields...)
	before := len(c.errs)
	checkObject(c, m, withType, label)
	collectSecrets(c, m, entry.Spec.Fields)
	// Params see the mapping without `type:`, exactly as the spec describes.
	body := &ast.MappingNode{BaseNode: m.BaseNode, Start: m.Start, End: m.End, IsFlowStyle: m.IsFlowStyle}
	for _, mv := range m.Values {
		if keyOf(mv) != "type" {
			body.Values = append(body.Values, mv)
		}
	}
	comp := &Component{Kind: kind, Type: typ, Name: name, Label: label, Pos: c.pos(posOf(m)), Entry: entry}
	comp.Params = &connector.NodeParams{Node: body, File: c.file}
	if len(c.errs) > before {
		return comp
	}
	var err error
	switch kind {
	case connector.KindSource:
		comp.Source, err = entry.Source(comp.Params)
	case connector.KindSink:
		comp.Sink, err = entry.Sink(comp.Params)
	case connector.KindLookup:
		comp.Lookup, err = entry.Lookup(comp.Params)
	}
	c.add(posOf(m), err)
	return comp
}

func buildSteps(c *collector, reg *connector.Registry, n ast.Node) []*Component {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		if _, isNull := n.(*ast.NullNode); isNull {
			return nil
		}
		c.at(posOf(n), "steps: want a list (- filter: ...), got %s", kindName(n))
		return nil
	}
	var steps []*Component
	for i, item := range seq.Values {
		m, ok := asMapping(item)
		if !ok || len(m.Values) != 1 {
			c.at(posOf(item), "step %d: want one key naming the step (one of %s)", i+1, strings.Join(reg.Names(connector.KindStep), ", "))
			continue
		}
		mv := m.Values[0]
		typ := keyOf(mv)
		label := fmt.Sprintf("%s[%d]", typ, i+1)
		entry, ok := reg.Get(connector.KindStep, typ)
		if !ok {
			c.at(posOf(mv.Key), "unknown step %q%s; known: %s", typ, DidYouMean(typ, reg.Names(connector.KindStep)), strings.Join(reg.Names(connector.KindStep), ", "))
			continue
		}
		before := len(c.errs)
		checkShape(c, mv.Value, &entry.Spec, label)
		comp := &Component{Kind: connector.KindStep, Type: typ, Label: label, Pos: c.pos(posOf(mv.Key)), Entry: entry}
		comp.Params = &connector.NodeParams{Node: mv.Value, File: c.file}
		steps = append(steps, comp)
		if len(c.errs) > before {
			continue
		}
		var err error
		comp.Step, err = entry.Step(comp.Params)
		c.add(posOf(mv.Value), err)
	}
	return steps
}

func checkShape(c *collector, n ast.Node, spec *connector.Spec, label string) {
	switch spec.Shape {
	case connector.ShapeExpr:
		if !isScalar(n) {
			c.at(posOf(n), "%s: want an expression, got %s", label, kindName(n))
		}
	case connector.ShapeList:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for _, e := range seq.Values {
				if len(spec.Fields) > 0 { // a list of objects
					checkObject(c, e, spec.Fields, label)
				} else if !isScalar(e) {
					c.at(posOf(e), "%s: want a list of names, got %s", label, kindName(e))
				}
			}
		} else if !isScalar(n) {
			c.at(posOf(n), "%s: want a list of names, got %s", label, kindName(n))
		}
	case connector.ShapeMap:
		if _, ok := asMapping(n); !ok {
			c.at(posOf(n), "%s: want a mapping (name: value), got %s", label, kindName(n))
		}
	default:
		if seq, ok := n.(*ast.SequenceNode); ok {
			if key, has := spec.Field("key"); has && key.Type == connector.TList && allScalars(seq) {
				return // shorthand: `dedupe: [a, b]` is `dedupe: {key: [a, b]}`
			}
			for _, e := range seq.Values {
				if m, ok := asMapping(e); ok {
					checkObject(c, m, spec.Fields, label)
				} else {
					c.at(posOf(e), "%s: want a mapping, got %s", label, kindName(e))
				}
			}
			return
		}
		m, ok := asMapping(n)
		if !ok {
			c.at(posOf(n), "%s: want a mapping, got %s", label, kindName(n))
			return
		}
		checkObject(c, m, spec.Fields, label)
	}
}

// checkObject checks a mapping against field specs: unknown keys (with a
// suggestion), required keys, duplicate keys and the kind of each value.
func checkObject(c *collector, n ast.Node, fields []connector.FieldSpec, label string) {
	m, ok := asMapping(n)
	if !ok {
		c.at(posOf(n), "%s: want a mapping, got %s", label, kindName(n))
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	seen := map[string]bool{}
	for _, mv := range m.Values {
		key := keyOf(mv)
		if seen[key] {
			c.at(posOf(mv.Key), "%s: %q is set twice", label, key)
		}
		seen[key] = true
		var fs *connector.FieldSpec
		for i := range fields {
			if fields[i].Name == key {
				fs = &fields[i]
			}
		}
		if fs == nil {
			c.at(posOf(mv.Key), "%s: unknown field %q%s", label, key, DidYouMean(key, names))
			continue
		}
		checkValue(c, mv.Value, fs, label)
	}
	for _, f := range fields {
		if f.Required && !seen[f.Name] {
			c.at(posOf(m), "%s: missing required field %q", label, f.Name)
		}
	}
}

func checkValue(c *collector, v ast.Node, fs *connector.FieldSpec, label string) {
	where := label + "." + fs.Name
	p := posOf(v)
	switch fs.Type {
	case connector.TString, connector.TExpr:
		if !isScalar(v) {
			c.at(p, "%s: want a single value, got %s", where, kindName(v))
		}
	case connector.TInt:
		if _, err := strconv.ParseInt(scalar(v), 10, 64); err != nil || !isScalar(v) {
			c.at(p, "%s: want an integer, got %q", where, scalar(v))
		}
	case connector.TBool:
		if _, err := record.ParseBool(scalar(v)); err != nil || !isScalar(v) {
			c.at(p, "%s: want true or false, got %q", where, scalar(v))
		}
	case connector.TDuration:
		if _, err := connector.ParseDuration(scalar(v)); err != nil {
			c.at(p, "%s: %v", where, err)
		}
	case connector.TSize:
		if _, err := connector.ParseSize(scalar(v)); err != nil {
			c.at(p, "%s: %v", where, err)
		}
	case connector.TEnum:
		s := scalar(v)
		if _, null := v.(*ast.NullNode); null {
			s = "null" // `missing: null` is YAML's null, and means the word
		}
		found := false
		for _, e := range fs.Enum {
			found = found || e == s
		}
		if !found {
			c.at(p, "%s: %q is not one of %s%s", where, s, strings.Join(fs.Enum, ", "), DidYouMean(s, fs.Enum))
		}
	case connector.TList:
		if seq, ok := v.(*ast.SequenceNode); ok {
			for _, e := range seq.Values {
				if !isScalar(e) {
					c.at(posOf(e), "%s: want a list of values, got %s", where, kindName(e))
				}
			}
		} else if !isScalar(v) {
			c.at(p, "%s: want a list, got %s", where, kindName(v))
		}
	case connector.TMap, connector.TSchema:
		if _, ok := asMapping(v); !ok {
			if _, null := v.(*ast.NullNode); !null {
				c.at(p, "%s: want a mapping, got %s", where, kindName(v))
			}
		}
	case connector.TObject:
		if len(fs.Fields) > 0 {
			checkObject(c, v, fs.Fields, where)
		} else if _, ok := asMapping(v); !ok {
			c.at(p, "%s: want a mapping, got %s", where, kindName(v))
		}
	case connector.TObjects:
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			if _, null := v.(*ast.NullNode); !null {
				c.at(p, "%s: want a list, got %s", where, kindName(v))
			}
			return
		}
		if len(fs.Fields) > 0 {
			for _, e := range seq.Values {
				checkObject(c, e, fs.Fields, where)
			}
		}
	}
}

// collectSecrets adds the literal values of secret fields to the redactor.
func collectSecrets(c *collector, m *ast.MappingNode, fields []connector.FieldSpec) {
	for _, mv := range m.Values {
		for _, f := range fields {
			if f.Secret && f.Name == keyOf(mv) {
				c.red.Add(scalar(mv.Value))
			}
		}
	}
}

func (c *collector) pos(p connector.Pos) connector.Pos {
	p.File = c.file
	return p
}

func field(m *ast.MappingNode, key string) ast.Node {
	for _, mv := range m.Values {
		if keyOf(mv) == key {
			return mv.Value
		}
	}
	return nil
}

func asMapping(n ast.Node) (*ast.MappingNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v, true
	case *ast.MappingValueNode:
		return &ast.MappingNode{BaseNode: v.BaseNode, Start: v.Start, Values: []*ast.MappingValueNode{v}}, true
	case *ast.TagNode:
		return asMapping(v.Value)
	case *ast.AnchorNode:
		return asMapping(v.Value)
	}
	return nil, false
}

func keyOf(mv *ast.MappingValueNode) string { return scalar(mv.Key) }

func allScalars(seq *ast.SequenceNode) bool {
	for _, e := range seq.Values {
		if !isScalar(e) {
			return false
		}
	}
	return true
}

func isScalar(n ast.Node) bool {
	_, ok := n.(ast.ScalarNode)
	return ok
}

func scalar(n ast.Node) string {
	switch v := n.(type) {
	case nil:
		return ""
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value
		}
		return ""
	case *ast.NullNode:
		return ""
	case *ast.MappingKeyNode:
		return scalar(v.Value)
	case ast.ScalarNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value
		}
		return fmt.Sprint(v.GetValue())
	}
	return ""
}

func kindName(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a single value"
}

func posOf(n ast.Node) connector.Pos {
	if n == nil {
		return connector.Pos{}
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil {
		return posOf(mv.Key)
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
		return posOf(m.Values[0].Key)
	}
	if d, ok := n.(*ast.DocumentNode); ok { // its GetToken is its Body's, even a nil one
		if d.Start != nil && d.Start.Position != nil {
			return connector.Pos{Line: d.Start.Position.Line, Col: d.Start.Position.Column}
		}
		if d.Body == nil {
			return connector.Pos{}
		}
		return posOf(d.Body)
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return connector.Pos{}
	}
	return connector.Pos{Line: tk.Position.Line, Col: tk.Position.Column}
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}
