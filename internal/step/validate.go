package step

import (
	"context"
	"fmt"
	"sort"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

var validateSpec = connector.Spec{
	Name:    "validate",
	Summary: "Reject the records that fail a check.",
	Doc: "Each check is a condition (an expression of type bool) that a good record satisfies. The checks " +
		"run in order; the first that does not hold rejects the record with its message and the values " +
		"the check read. A check that cannot be evaluated (a null compared with a number) rejects the " +
		"record too, with the reason. Records that pass every check go on unchanged.",
	// A list of objects: ShapeList with Fields describing each element.
	Shape:    connector.ShapeList,
	ValueDoc: "A list of checks, each a mapping with the fields below.",
	Fields: []connector.FieldSpec{
		{Name: "check", Type: connector.TExpr, Required: true, Doc: "A condition every good record satisfies."},
		{Name: "message", Type: connector.TString, Doc: "The reason given in the reject; by default the check itself."},
		{Name: "field", Type: connector.TString, Doc: "The field the reject is about; by default the one field the check reads, if it reads one."},
	},
	Example: "- validate:\n" +
		"    - { check: \"qty > 0\", message: \"qty must be positive\" }\n" +
		"    - check: ordered_at <= run_time\n" +
		"      message: order from the future\n" +
		"      field: ordered_at",
}

type rule struct {
	Check   exprValue `yaml:"check"`
	Message string    `yaml:"message"`
	Field   name      `yaml:"field"`
}

type validateStep struct {
	where
	rules []rule

	name   string
	in     *record.Schema
	progs  []*expr.Program
	fields []string // the field named in each check's rejects
	evs    *evalPool
}

func newValidate(p connector.Params) (connector.Step, error) {
	s := &validateStep{where: whereOf("validate", p)}
	if err := p.Decode(&s.rules); err != nil {
		return nil, err
	}
	if len(s.rules) == 0 {
		return nil, s.errorf(s.pos, "no checks")
	}
	for i, r := range s.rules {
		if r.Check.Src == "" {
			return nil, s.errorf(r.Check.Pos, "check %d has no `check:` expression", i+1)
		}
	}
	return s, nil
}

func (s *validateStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	s.progs, s.fields = nil, nil
	for _, r := range s.rules {
		prog, err := s.compile(r.Check.Expr, exprEnv(in, env))
		if err != nil {
			return nil, err
		}
		if !isBoolish(prog) {
			return nil, s.errorf(r.Check.Pos, "the check `%s` is of type %s, want bool", prog, prog.Type())
		}
		field := r.Field.Name
		if field != "" {
			if _, err := s.fieldIndex(in, r.Field); err != nil {
				return nil, err
			}
		} else if read := prog.Fields(); len(read) == 1 {
			field = read[0]
		}
		s.progs = append(s.progs, prog)
		s.fields = append(s.fields, field)
	}
	s.name, s.in = label(env, "validate"), in
	s.evs = newEvalPool(s.progs)
	return in, nil
}

func (s *validateStep) Process(ctx context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	evs := s.evs.get()
	defer s.evs.put(evs)
	// Each check is evaluated natively over runs of the records no check
	// before rejected; a record it fails on, or that gives no bool, takes
	// the record's own path. Rejects go out in record order.
	type reject struct {
		row          int
		field, error string
	}
	var rejects []reject
	n := len(b.Rows)
	out := make([]bool, n)   // rejected by a check before
	holds := make([]bool, n) // the check's value
	for k, ev := range *evs {
		failed := func(i int, msg string) {
			out[i] = true
			rejects = append(rejects, reject{i, s.fields[k], msg})
		}
		for i := 0; i < n; {
			if out[i] {
				i++
				continue
			}
			end := i + 1 // the run of records still in, from i
			for end < n && !out[end] {
				end++
			}
			for i < end {
				m := ev.Conditions(ctx, b.Rows[i:end], holds[i:end])
				for j := i; j < i+m; j++ {
					if !holds[j] {
						failed(j, s.failure(k, b.Rows[j]))
					}
				}
				if i += m; i == end {
					break
				}
				v, err := ev.EvalContext(ctx, b.Rows[i])
				switch {
				case err != nil && expr.IsFatal(err):
					return fmt.Errorf("%s: %w", s.name, err)
				case err != nil:
					failed(i, s.message(k)+": "+err.Error())
				case v != true:
					failed(i, s.failure(k, b.Rows[i]))
				}
				i++
			}
		}
	}
	sort.Slice(rejects, func(x, y int) bool { return rejects[x].row < rejects[y].row })
	for _, r := range rejects {
		b.RejectRow(r.row, s.name, r.field, r.error)
	}
	b.Compact()
	return nil
}

// failure is the reason a record fails check k: its message and the
// values the check read.
func (s *validateStep) failure(k int, row record.Row) string {
	msg := s.message(k)
	if in := s.progs[k].Inputs(row); in != "" {
		msg += " (" + in + ")"
	}
	return msg
}

func (s *validateStep) message(k int) string {
	if m := s.rules[k].Message; m != "" {
		return m
	}
	return fmt.Sprintf("check `%s` failed", s.progs[k])
}
