package step

import (
	"context"
	"fmt"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

var filterSpec = connector.Spec{
	Name:    "filter",
	Summary: "Keep the records for which a condition holds.",
	Doc: "The condition is an expression of type bool over the record's fields. Records for which it is " +
		"false are dropped and counted as filtered. A record on which the condition cannot be evaluated " +
		"(a null in arithmetic, a bad input to a function) or gives null is rejected with the reason, " +
		"never dropped silently: write `?? false` to drop those too.",
	Shape:    connector.ShapeExpr,
	ValueDoc: "An expression of type bool.",
	Example:  `- filter: status != "cancelled" && qty > 0`,
}

type filterStep struct {
	where
	cond exprValue

	name string
	in   *record.Schema
	prog *expr.Program
	evs  *evalPool
}

func newFilter(p connector.Params) (connector.Step, error) {
	s := &filterStep{where: whereOf("filter", p)}
	if err := p.Decode(&s.cond); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *filterStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	prog, err := s.compile(s.cond.Expr, exprEnv(in, env))
	if err != nil {
		return nil, err
	}
	if !isBoolish(prog) {
		return nil, s.errorf(s.cond.Pos, "the condition `%s` is of type %s, want bool", prog, prog.Type())
	}
	s.name, s.in, s.prog = label(env, "filter"), in, prog
	s.evs = newEvalPool([]*expr.Program{prog})
	return in, nil
}

func (s *filterStep) Process(ctx context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	evs := s.evs.get()
	defer s.evs.put(evs)
	ev := (*evs)[0]
	// The condition is evaluated natively over runs of rows; a row it
	// fails on, or that gives no bool, takes the record's own path.
	holds := make([]bool, len(b.Rows))
	for i := 0; i < len(b.Rows); i++ {
		if i += ev.Conditions(ctx, b.Rows[i:], holds[i:]); i == len(b.Rows) {
			break
		}
		row := b.Rows[i]
		v, err := ev.EvalContext(ctx, row)
		if err != nil {
			if expr.IsFatal(err) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			b.RejectRow(i, s.name, "", err.Error())
			holds[i] = true // rejected, not dropped
			continue
		}
		switch v {
		case true:
			holds[i] = true
		case false:
		default:
			b.RejectRow(i, s.name, "", fmt.Sprintf("the condition `%s` gave %s, not true or false (%s)", s.prog, expr.ValueText(v), s.prog.Inputs(row)))
			holds[i] = true // rejected, not dropped
		}
	}
	for i, h := range holds {
		if !h {
			b.Drop(i)
		}
	}
	b.Compact()
	return nil
}
