package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

// ValidateOptions tune Validate.
type ValidateOptions struct {
	// Connect opens every lookup (loads its file, connects to its service)
	// instead of trusting the schema it declares, so that a lookup that
	// cannot be read is reported.
	Connect bool
}

// Validation is what Validate learnt besides errors.
type Validation struct {
	// Checked is false when the source declares no schema and has nothing
	// to read one from yet (no file matches): the steps were not checked.
	Checked bool
	// Output is the schema that reaches the sink, when Checked.
	Output *record.Schema
}

// Validate is Check gone deep, for `backbone validate`: every step is bound
// to the schema flowing into it, and every problem is reported at once —
// each expression of a map and each check of a validate on its own, a field
// read after a select, drop or rename removed it (naming that step), a
// filter or check that no record can pass (and the steps it makes
// unreachable), and a sink key the output lacks. Lookups that declare their
// schema are not opened unless opts.Connect, so a pipeline is validated
// without its services. Nothing is written.
//
// The error is config.Errors for mistakes in the file, sorted by place;
// other errors (wrapping connector.ErrUnavailable) are inputs it could not
// read.
func Validate(ctx context.Context, p *config.Pipeline, opts ValidateOptions) (*Validation, error) {
	r, err := newRunner(p, Options{DryRun: true})
	if err != nil {
		return nil, err
	}
	errs, err := r.validateLookups(ctx, opts.Connect)
	defer r.closeLookups()
	if err != nil {
		return nil, err
	}
	v := &Validation{}
	schema, err := r.sourceSchema(ctx)
	if err != nil {
		return nil, err
	}
	if schema != nil {
		v.Checked = true
		var serrs config.Errors
		v.Output, serrs = r.lint(schema)
		errs = append(errs, serrs...)
	}
	if len(errs) > 0 {
		errs.Sort()
		return v, errs
	}
	return v, nil
}

// validateLookups gives every lookup a table: an empty one of its declared
// schema and key when it declares them (and !open), else the lookup opened.
func (r *runner) validateLookups(ctx context.Context, open bool) (config.Errors, error) {
	r.tables = map[string]connector.Table{}
	var errs config.Errors
	for _, lk := range r.p.Lookups {
		if !open {
			sc, ok := lk.Lookup.(connector.Schemer)
			keys := LookupKeys(lk)
			if ok && sc.Schema() != nil && len(keys) > 0 {
				ix, err := connector.NewIndex(sc.Schema(), keys)
				if err != nil {
					errs = append(errs, connector.Errorf(lk.Params.FieldPos("key"), "%s: %v", lk.Label, err))
					continue
				}
				r.tables[lk.Name] = ix
				continue
			}
		}
		t, err := lk.Lookup.Open(ctx, r.env)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", lk.Name, err)
		}
		r.tables[lk.Name] = t
	}
	return errs, nil
}

// removal is how a field left the record: the step and, for a rename, its
// new name.
type removal struct {
	label, to string
	line      int
}

// deadEnd is the first step that no record passes.
type deadEnd struct {
	at    int // index of the step
	pos   connector.Pos
	label string
	why   string
}

// lint binds every step, reporting every problem instead of the first one
// of each step, and returns the schema reaching the sink.
func (r *runner) lint(in *record.Schema) (*record.Schema, config.Errors) {
	var errs config.Errors
	schema := in
	removed := map[string]removal{}
	failed := false
	var dead *deadEnd
	for i, c := range r.p.Steps {
		senv := &connector.StepEnv{Env: r.env, Name: c.Label, Lookups: r.tables}
		out, serrs := r.lintStep(c, schema, senv)
		for _, e := range serrs {
			errs = append(errs, r.explainRemoved(e, c, removed))
		}
		if len(serrs) > 0 {
			failed = true
		}
		if out == nil {
			continue // the next step sees what this one saw
		}
		for k, f := range schema.Fields() {
			if _, kept := out.Index(f.Name); kept {
				continue
			}
			rm := removal{label: c.Label, line: c.Pos.Line}
			if c.Type == "rename" && out.Len() == schema.Len() {
				rm.to = out.Field(k).Name
			}
			removed[f.Name] = rm
		}
		for _, name := range out.Names() {
			delete(removed, name) // set again: readable again
		}
		if dead == nil && len(serrs) == 0 {
			if pos, why := r.passesNothing(c, schema); why != "" {
				dead = &deadEnd{at: i, pos: pos, label: c.Label, why: why}
			}
		}
		schema = out
	}
	if dead != nil {
		var next []string
		for _, c := range r.p.Steps[dead.at+1:] {
			next = append(next, c.Label)
		}
		next = append(next, "the sink")
		verb := "are"
		if len(next) == 1 {
			verb = "is"
		}
		errs = append(errs, connector.Errorf(dead.pos, "%s: %s; %s %s unreachable", dead.label, dead.why, joinAnd(next), verb))
	}
	if !failed {
		var kerrs config.Errors
		if errors.As(checkSinkKeys(r.p, schema), &kerrs) {
			errs = append(errs, kerrs...)
		}
	}
	return schema, errs
}

// lintStep binds one step. The entries of a map and the checks of a
// validate are bound one by one, each as a step of its own, so that every
// bad expression is reported, not only the first. out is nil when the
// step's output is unknown.
func (r *runner) lintStep(c *config.Component, in *record.Schema, senv *connector.StepEnv) (*record.Schema, []*connector.PosError) {
	var parts []connector.Params
	if np, ok := c.Params.(*connector.NodeParams); ok && c.Entry != nil && c.Entry.Step != nil {
		parts = splitParams(c.Type, np)
	}
	if len(parts) < 2 {
		out, err := c.Step.Bind(in, senv)
		if err != nil {
			return nil, []*connector.PosError{r.posError(c, err)}
		}
		return out, nil
	}
	var errs []*connector.PosError
	schema := in
	for _, part := range parts {
		st, err := c.Entry.Step(part)
		if err == nil {
			var out *record.Schema
			if out, err = st.Bind(schema, senv); err == nil {
				schema = out
				continue
			}
		}
		errs = append(errs, r.posError(c, err))
		if c.Type == "map" {
			// The field is still set, to something unknown: the steps
			// after it are checked as if it were there.
			schema = withAnyField(schema, scalarKey(part))
		}
	}
	return schema, errs
}

// splitParams splits a map into its entries and a validate into its
// checks, each the Params of a step of one entry. nil for other steps.
func splitParams(kind string, np *connector.NodeParams) []connector.Params {
	var parts []connector.Params
	switch kind {
	case "map":
		m, ok := np.Node.(*ast.MappingNode)
		if !ok {
			return nil
		}
		for _, mv := range m.Values {
			one := &ast.MappingNode{BaseNode: m.BaseNode, Start: m.Start, End: m.End, IsFlowStyle: m.IsFlowStyle, Values: []*ast.MappingValueNode{mv}}
			parts = append(parts, &connector.NodeParams{Node: one, File: np.File})
		}
	case "validate":
		s, ok := np.Node.(*ast.SequenceNode)
		if !ok {
			return nil
		}
		for _, v := range s.Values {
			one := &ast.SequenceNode{BaseNode: s.BaseNode, Start: s.Start, End: s.End, IsFlowStyle: s.IsFlowStyle, Values: []ast.Node{v}}
			parts = append(parts, &connector.NodeParams{Node: one, File: np.File})
		}
	}
	return parts
}

// scalarKey is the field a one-entry map sets.
func scalarKey(p connector.Params) string {
	np, ok := p.(*connector.NodeParams)
	if !ok {
		return ""
	}
	m, ok := np.Node.(*ast.MappingNode)
	if !ok || len(m.Values) != 1 {
		return ""
	}
	switch k := m.Values[0].Key.(type) {
	case *ast.StringNode:
		return k.Value
	default:
		if tk := k.GetToken(); tk != nil {
			return tk.Value
		}
	}
	return ""
}

func withAnyField(s *record.Schema, name string) *record.Schema {
	if name == "" {
		return s
	}
	fields := s.Fields()
	if i, ok := s.Index(name); ok {
		fields[i].Type = record.Any
	} else {
		fields = append(fields, record.Field{Name: name, Type: record.Any})
	}
	out, err := record.NewSchema(fields...)
	if err != nil {
		return s
	}
	return out
}

// posError places a step's error in the pipeline file.
func (r *runner) posError(c *config.Component, err error) *connector.PosError {
	var pe *connector.PosError
	if errors.As(err, &pe) {
		cp := *pe
		if cp.Pos.File == "" {
			cp.Pos.File = r.p.File
		}
		return &cp
	}
	return &connector.PosError{Pos: c.Pos, Msg: c.Label + ": " + err.Error()}
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// explainRemoved adds to an unknown field's message the step that removed
// the field upstream: that step, not a typo, is why it cannot be read.
func (r *runner) explainRemoved(e *connector.PosError, c *config.Component, removed map[string]removal) *connector.PosError {
	m := unknownFieldRE.FindStringSubmatch(e.Msg)
	if m == nil {
		return e
	}
	rm, ok := removed[m[1]]
	if !ok {
		return e
	}
	cp := *e
	if rm.to != "" {
		cp.Msg += fmt.Sprintf("; %s (line %d) renamed it to %q before %s", rm.label, rm.line, rm.to, c.Label)
	} else {
		cp.Msg += fmt.Sprintf("; %s (line %d) removed it before %s, which cannot read it", rm.label, rm.line, c.Label)
	}
	return &cp
}

// varyingRE finds what makes an expression differ between records or runs
// without reading a field: the run's time and lookups.
var varyingRE = regexp.MustCompile(`\brun_time\b|\blookup\s*\(`)

// passesNothing reports a filter whose condition, or a validate with a
// check, that reads no field and cannot hold: no record gets past the step.
func (r *runner) passesNothing(c *config.Component, in *record.Schema) (connector.Pos, string) {
	var conds []connector.Expr
	switch c.Type {
	case "filter":
		var e connector.Expr
		if c.Params.Decode(&e) != nil {
			return connector.Pos{}, ""
		}
		conds = []connector.Expr{e}
	case "validate":
		var rules []struct {
			Check connector.Expr `yaml:"check"`
		}
		if c.Params.Decode(&rules) != nil {
			return connector.Pos{}, ""
		}
		for _, rl := range rules {
			conds = append(conds, rl.Check)
		}
	default:
		return connector.Pos{}, ""
	}
	for _, e := range conds {
		if varyingRE.MatchString(e.Src) {
			continue
		}
		prog, err := expr.Compile(e, expr.Env{Schema: in, Location: r.env.Location, RunTime: r.env.RunTime})
		if err != nil || len(prog.Fields()) > 0 {
			continue
		}
		v, err := prog.NewEvaluator().Eval(nil)
		if err == nil && v == true {
			continue
		}
		pos := e.Pos
		if pos.File == "" {
			pos.File = r.p.File
		}
		what := "the condition"
		if c.Type == "validate" {
			what = "the check"
		}
		switch {
		case err != nil:
			return pos, fmt.Sprintf("%s `%s` fails whatever the record: every record is rejected", what, prog)
		case v == false && c.Type == "filter":
			return pos, fmt.Sprintf("%s `%s` is always false: every record is dropped", what, prog)
		case v == false:
			return pos, fmt.Sprintf("%s `%s` is always false: every record is rejected", what, prog)
		}
		return pos, fmt.Sprintf("%s `%s` is always %s, never true: every record is rejected", what, prog, expr.ValueText(v))
	}
	return connector.Pos{}, ""
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// SinkKeys are the fields the sink writes by (upsert): those of a
// KeyedSink, else its `key:` as written. nil when it has none.
func SinkKeys(p *config.Pipeline) []string {
	if p.Sink == nil {
		return nil
	}
	if ks, ok := p.Sink.Sink.(KeyedSink); ok {
		return ks.KeyFields()
	}
	return listParam(p.Sink, "key")
}

// LookupKeys are a lookup's key fields as written (`key:`); nil when its
// spec has no key field.
func LookupKeys(c *config.Component) []string { return listParam(c, "key") }

// listParam reads a list field of a component's configuration (one name or
// a list) when its spec declares it.
func listParam(c *config.Component, name string) []string {
	if c == nil || c.Params == nil || c.Entry == nil {
		return nil
	}
	if f, ok := c.Entry.Spec.Field(name); !ok || f.Type != connector.TList {
		return nil
	}
	var m map[string]any
	if c.Params.Decode(&m) != nil {
		return nil
	}
	switch v := m[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case nil:
		return nil
	default:
		return []string{fmt.Sprint(v)}
	}
}
