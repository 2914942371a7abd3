package step

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

var mapSpec = connector.Spec{
	Name:    "map",
	Summary: "Set or replace fields with expressions.",
	Doc: "Each entry sets a field to the value of an expression over the record. Entries apply in the " +
		"order written and each sees the results of the ones above it. A new field is added after the " +
		"existing ones with the type of its expression (any when it is known only at run time, like a " +
		"value taken out of json); replacing a field may change its type. A record on which an " +
		"expression fails is rejected, naming the field, the expression, the reason and the values it read.",
	Shape:    connector.ShapeMap,
	ValueDoc: "A mapping of field names to expressions, applied in order.",
	Example: "- map:\n" +
		"    total: qty * unit_price\n" +
		"    total_usd: total * (lookup(\"fx\", currency)?.rate ?? 1)\n" +
		"    customer: upper(trim(customer))",
}

type mapStep struct {
	where
	entries exprMap

	name     string
	in, out  *record.Schema
	targets  []int         // index in out of each entry's field
	replaced []int         // the targets that are fields of in
	types    []record.Type // declared type of each entry's field
	progs    []*expr.Program
	evs      *evalPool
	loc      *time.Location
}

func newMap(p connector.Params) (connector.Step, error) {
	s := &mapStep{where: whereOf("map", p)}
	if err := p.Decode(&s.entries); err != nil {
		return nil, err
	}
	if len(s.entries) == 0 {
		return nil, s.errorf(s.pos, "no fields to set")
	}
	return s, nil
}

func (s *mapStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	fields := in.Fields()
	s.targets, s.replaced, s.types, s.progs = nil, nil, nil, nil
	for _, e := range s.entries {
		if e.Name == "" {
			return nil, s.errorf(e.NamePos, "a field needs a name")
		}
		// Fields are only appended or replaced in place, so every schema
		// seen on the way is a prefix of the final one by position: each
		// program can run over the final row.
		cur, err := in.Derive(fields...)
		if err != nil {
			return nil, s.errorf(e.NamePos, "%v", err)
		}
		prog, err := s.compile(e.Expr, exprEnv(cur, env))
		if err != nil {
			return nil, err
		}
		t := prog.Type()
		i, ok := cur.Index(e.Name)
		if ok {
			fields[i].Type = t
		} else {
			i = len(fields)
			fields = append(fields, record.Field{Name: e.Name, Type: t})
		}
		s.targets = append(s.targets, i)
		if i < in.Len() {
			s.replaced = append(s.replaced, i)
		}
		s.types = append(s.types, t)
		s.progs = append(s.progs, prog)
	}
	out, err := in.Derive(fields...)
	if err != nil {
		return nil, s.errorf(s.pos, "%v", err)
	}
	s.name, s.in, s.out, s.loc = label(env, "map"), in, out, location(env)
	s.evs = newEvalPool(s.progs)
	return out, nil
}

func (s *mapStep) Process(ctx context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	evs := s.evs.get()
	defer s.evs.put(evs)
	if len(s.replaced) == 0 {
		return s.processColumns(ctx, b, *evs)
	}
	return s.processRows(ctx, b, *evs)
}

// processRows is Process record by record: a record on which an entry
// fails gets back the fields the entries before replaced.
func (s *mapStep) processRows(ctx context.Context, b *record.Batch, evs []*expr.Evaluator) error {
	inW, outW := s.in.Len(), s.out.Len()
	saved := make([]any, len(s.replaced))
	w := newWidener(b, s.out)
	for i, row := range b.Rows {
		// A map that adds no field works in the row itself.
		nr := row
		if outW != inW {
			nr = w.widen(row, len(b.Rows)-i)
		}
		for k, t := range s.replaced {
			saved[k] = nr[t]
		}
		field, reason, err := s.apply(ctx, evs, nr)
		if err != nil {
			return err
		}
		if reason != "" {
			// Put the record back as it came (the fields added go with
			// the width), then reject it.
			for k, t := range s.replaced {
				nr[t] = saved[k]
			}
			b.Rows[i] = nr[:inW]
			b.RejectRow(i, s.name, field, reason)
			continue
		}
		b.Rows[i] = nr
	}
	clear(saved)
	if outW != inW {
		w.done(b)
	}
	b.Schema = s.out
	b.Compact()
	return nil
}

// processColumns is Process for a map that only adds fields: it
// evaluates one entry over the batch at a time (Evaluator.Column), and a
// record on which an entry fails is rejected as it came, without the
// fields the entries before added, and is not evaluated further. What it
// gives is what Process gives record by record, rejects in record order.
func (s *mapStep) processColumns(ctx context.Context, b *record.Batch, evs []*expr.Evaluator) error {
	inW := s.in.Len()
	w := newWidener(b, s.out)
	for i, row := range b.Rows {
		b.Rows[i] = w.widen(row, len(b.Rows)-i)
	}
	w.done(b)
	type reject struct {
		row           int
		field, reason string
	}
	var rejects []reject
	var out []bool // rows rejected so far, nil while none is
	for k, ev := range evs {
		at, t := s.targets[k], s.types[k]
		for i := 0; i < len(b.Rows); {
			if out != nil && out[i] {
				i++
				continue
			}
			end := i + 1 // the run of rows still in, from i
			for end < len(b.Rows) && (out == nil || !out[end]) {
				end++
			}
			for i < end {
				if i += ev.Column(ctx, b.Rows[i:end], at, t); i == end {
					break
				}
				field, reason, err := s.applyEntry(ctx, k, ev, b.Rows[i])
				if err != nil {
					return err
				}
				if reason != "" {
					if out == nil {
						out = make([]bool, len(b.Rows))
					}
					out[i] = true
					rejects = append(rejects, reject{i, field, reason})
					end = i + 1 // the run ends here
				}
				i++
			}
		}
	}
	if len(rejects) > 0 {
		sort.Slice(rejects, func(x, y int) bool { return rejects[x].row < rejects[y].row })
		for _, r := range rejects {
			b.Rows[r.row] = b.Rows[r.row][:inW]
			b.RejectRow(r.row, s.name, r.field, r.reason)
		}
	}
	b.Schema = s.out
	b.Compact()
	return nil
}

// apply evaluates the entries into nr, in order. It returns the field and
// the reason when the record is to be rejected.
func (s *mapStep) apply(ctx context.Context, evs []*expr.Evaluator, nr record.Row) (field, reason string, err error) {
	for k, ev := range evs {
		if field, reason, err := s.applyEntry(ctx, k, ev, nr); err != nil || reason != "" {
			return field, reason, err
		}
	}
	return "", "", nil
}

// applyEntry evaluates entry k into nr.
func (s *mapStep) applyEntry(ctx context.Context, k int, ev *expr.Evaluator, nr record.Row) (field, reason string, err error) {
	v, err := ev.EvalContext(ctx, nr)
	if err != nil {
		field := s.entries[k].Name
		if expr.IsFatal(err) {
			return "", "", fmt.Errorf("%s: field %q: %w", s.name, field, err)
		}
		return field, fmt.Sprintf("field %q: %v", field, err), nil
	}
	v = expr.ToRecord(v)
	if t := s.types[k]; v != nil && t != record.Any && record.TypeOf(v) != t {
		c, cerr := record.Convert(v, t, s.loc)
		if cerr != nil {
			field := s.entries[k].Name
			return field, fmt.Sprintf("field %q: expression `%s` gave %s, not a %s", field, s.progs[k], expr.ValueText(v), t), nil
		}
		v = c
	}
	nr[s.targets[k]] = v
	return "", "", nil
}
