package connector

import (
	"fmt"
	"sort"
)

// Kind is the role of a component in a pipeline.
type Kind string

// The kinds of components.
const (
	KindSource Kind = "source"
	KindStep   Kind = "step"
	KindLookup Kind = "lookup"
	KindSink   Kind = "sink"
)

// FieldType is the type of a configuration field, as the config checker and
// the docs know it.
type FieldType string

// Configuration field types.
const (
	TString   FieldType = "string"
	TInt      FieldType = "int"
	TBool     FieldType = "bool"
	TDuration FieldType = "duration" // "5m", "1h30m"
	TSize     FieldType = "size"     // "16MiB", "4096"
	TEnum     FieldType = "enum"     // one of FieldSpec.Enum
	TList     FieldType = "list"     // a list of strings, or one string
	TMap      FieldType = "map"      // a mapping of names to strings, order kept
	TSchema   FieldType = "schema"   // a mapping of field names to types
	TExpr     FieldType = "expr"     // an expression
	TObject   FieldType = "object"   // a nested mapping checked by Fields
	TObjects  FieldType = "objects"  // a list of mappings checked by Fields
)

// FieldSpec documents and checks one configuration field.
type FieldSpec struct {
	Name     string
	Type     FieldType
	Required bool
	Default  string   // as written in YAML; "" for none
	Enum     []string // the allowed values of a TEnum
	Secret   bool     // never printed: redacted in errors, logs and history
	Doc      string
	Fields   []FieldSpec // of a TObject or TObjects
}

// Shape is how a component's configuration is written.
type Shape string

// Shapes of a configuration.
const (
	ShapeObject Shape = ""     // a mapping checked against Fields (sources, sinks, lookups, most steps)
	ShapeExpr   Shape = "expr" // one expression: `filter: qty > 0`
	ShapeList   Shape = "list" // a list of names: `select: [a, b]`
	ShapeMap    Shape = "map"  // a mapping of names to values: `map: {total: a * b}`
)

// Spec describes a component: how its configuration is written, what each
// field means, and an example. The same value checks configuration, renders
// `backbone docs` and feeds the JSON Schema.
type Spec struct {
	Kind    Kind
	Name    string // the `type:` of sources, sinks and lookups; the key of a step
	Summary string // one line
	Doc     string // paragraphs
	Shape   Shape
	Fields  []FieldSpec // for ShapeObject
	// ValueDoc documents a step's value when Shape is not ShapeObject.
	ValueDoc string
	Example  string // YAML as it appears in a pipeline
	// BatchRows, for a sink, is the batch size it writes fastest with the
	// configuration p, which a pipeline that sets no settings.batch_rows
	// gets; nil or 0 means the default (record.DefaultLimits).
	BatchRows func(p Params) int
}

// Field returns the spec of a field by name.
func (s *Spec) Field(name string) (FieldSpec, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return FieldSpec{}, false
}

// Factories build a component from its checked configuration. They must not
// do I/O: that belongs to Open/Plan, so that `validate` stays offline.
type (
	SourceFactory func(p Params) (Source, error)
	SinkFactory   func(p Params) (Sink, error)
	LookupFactory func(p Params) (Lookup, error)
	StepFactory   func(p Params) (Step, error)
)

// Params is a component's configuration as written, already checked against
// its Spec: known fields, their types, required ones, enums.
type Params interface {
	// Decode fills dst, a pointer to the component's config struct (yaml
	// tags), from the configuration. Fields not written keep the values dst
	// had: a factory sets its spec's defaults in the struct before Decode.
	Decode(dst any) error
	// Pos is the place of the component in the pipeline file.
	Pos() Pos
	// FieldPos is the place of a field's value, or Pos() when absent.
	FieldPos(name string) Pos
}

// Entry is a registered component.
type Entry struct {
	Spec   Spec
	Source SourceFactory
	Sink   SinkFactory
	Lookup LookupFactory
	Step   StepFactory
}

// Registry holds the components a pipeline can name. Components are added
// explicitly (builtin.Register); there is no global registry.
type Registry struct {
	entries map[Kind]map[string]*Entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{entries: map[Kind]map[string]*Entry{}}
}

func (r *Registry) add(e *Entry) {
	m := r.entries[e.Spec.Kind]
	if m == nil {
		m = map[string]*Entry{}
		r.entries[e.Spec.Kind] = m
	}
	if _, dup := m[e.Spec.Name]; dup {
		panic(fmt.Sprintf("connector: %s %q registered twice", e.Spec.Kind, e.Spec.Name))
	}
	m[e.Spec.Name] = e
}

// AddSource registers a source.
func (r *Registry) AddSource(s Spec, f SourceFactory) {
	s.Kind = KindSource
	r.add(&Entry{Spec: s, Source: f})
}

// AddSink registers a sink.
func (r *Registry) AddSink(s Spec, f SinkFactory) {
	s.Kind = KindSink
	r.add(&Entry{Spec: s, Sink: f})
}

// AddLookup registers a lookup.
func (r *Registry) AddLookup(s Spec, f LookupFactory) {
	s.Kind = KindLookup
	r.add(&Entry{Spec: s, Lookup: f})
}

// AddStep registers a step.
func (r *Registry) AddStep(s Spec, f StepFactory) {
	s.Kind = KindStep
	r.add(&Entry{Spec: s, Step: f})
}

// Get returns a component by kind and name.
func (r *Registry) Get(k Kind, name string) (*Entry, bool) {
	e, ok := r.entries[k][name]
	return e, ok
}

// Names lists the names of one kind, sorted.
func (r *Registry) Names(k Kind) []string {
	names := make([]string, 0, len(r.entries[k]))
	for n := range r.entries[k] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pos is a place in a pipeline file. Line and Col start at 1; zero means
// unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.File == "":
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// PosError is a configuration error at a place in the pipeline file.
type PosError struct {
	Pos Pos
	Msg string
}

func (e *PosError) Error() string {
	if e.Pos.Line == 0 && e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Errorf returns a *PosError at p.
func Errorf(p Pos, format string, args ...any) *PosError {
	return &PosError{Pos: p, Msg: fmt.Sprintf(format, args...)}
}
