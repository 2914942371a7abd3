package step

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

var selectSpec = connector.Spec{
	Name:    "select",
	Summary: "Keep only the named fields, in the order named.",
	Doc: "The record keeps the listed fields, in the order of the list, and loses the others. " +
		"Naming a field that does not flow into the step is a configuration error.",
	Shape:    connector.ShapeList,
	ValueDoc: "A list of field names.",
	Example:  "- select: [order_id, customer_id, total]",
}

var dropSpec = connector.Spec{
	Name:     "drop",
	Summary:  "Remove the named fields.",
	Doc:      "The record loses the listed fields and keeps the others in their order. Naming a field that does not flow into the step is a configuration error.",
	Shape:    connector.ShapeList,
	ValueDoc: "A list of field names.",
	Example:  "- drop: [internal_note, raw_payload]",
}

var renameSpec = connector.Spec{
	Name:     "rename",
	Summary:  "Rename fields.",
	Doc:      "Each entry renames a field, keeping its place, type and values. A new name may not be one that another field keeps.",
	Shape:    connector.ShapeMap,
	ValueDoc: "A mapping of current names to new names.",
	Example:  "- rename: { cust_id: customer_id, amt: amount }",
}

var castSpec = connector.Spec{
	Name:    "cast",
	Summary: "Convert fields to other types.",
	Doc: "Each entry converts a field to a type (string, int, float, decimal, bool, timestamp, date, " +
		"bytes, json). Text is parsed as a CSV reader would parse it; timestamps written without a zone " +
		"are read in the pipeline's zone. A value that does not convert rejects the record, naming the " +
		"field, the value and the reason.",
	Shape:    connector.ShapeMap,
	ValueDoc: "A mapping of field names to types.",
	Example:  "- cast: { qty: int, unit_price: decimal, ordered_at: timestamp }",
}

// ---- select and drop

type projectStep struct {
	where
	names nameList
	keep  bool // select; drop otherwise

	name string
	in   *record.Schema
	out  *record.Schema
	idx  []int // input index of each output field
}

func newSelect(p connector.Params) (connector.Step, error) { return newProject(p, "select", true) }
func newDrop(p connector.Params) (connector.Step, error)   { return newProject(p, "drop", false) }

func newProject(p connector.Params, kind string, keep bool) (connector.Step, error) {
	s := &projectStep{where: whereOf(kind, p), keep: keep}
	if err := p.Decode(&s.names); err != nil {
		return nil, err
	}
	if len(s.names) == 0 {
		return nil, s.errorf(s.pos, "no fields named")
	}
	return s, nil
}

func (s *projectStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	named := map[int]bool{}
	var idx []int
	for _, n := range s.names {
		i, err := s.fieldIndex(in, n)
		if err != nil {
			return nil, err
		}
		if named[i] {
			return nil, s.errorf(n.Pos, "field %q is named twice", n.Name)
		}
		named[i] = true
		idx = append(idx, i)
	}
	if !s.keep {
		idx = idx[:0]
		for i := 0; i < in.Len(); i++ {
			if !named[i] {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil, s.errorf(s.pos, "every field would be dropped")
		}
	}
	fields := make([]record.Field, len(idx))
	for k, i := range idx {
		fields[k] = in.Field(i)
	}
	s.name, s.in, s.idx = label(env, s.kind), in, idx
	out, err := in.Derive(fields...)
	if err != nil {
		return nil, s.errorf(s.pos, "%v", err)
	}
	s.out = out
	return s.out, nil
}

func (s *projectStep) Process(_ context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	if s.out.Equal(s.in) {
		b.Schema = s.out
		return nil
	}
	// The kept values move to the front of each row's own storage: a
	// projection never needs more room than the row has.
	var buf [16]any
	tmp := buf[:0]
	if len(s.idx) > len(buf) {
		tmp = make([]any, 0, len(s.idx))
	}
	for r, row := range b.Rows {
		tmp = tmp[:0]
		for _, i := range s.idx {
			tmp = append(tmp, row[i])
		}
		copy(row, tmp)
		clear(row[len(tmp):]) // release what was dropped
		b.Rows[r] = row[:len(tmp)]
	}
	clear(tmp)
	b.Schema = s.out
	return nil
}

// ---- rename

type renameStep struct {
	where
	pairs pairs

	name string
	in   *record.Schema
	out  *record.Schema
}

func newRename(p connector.Params) (connector.Step, error) {
	s := &renameStep{where: whereOf("rename", p)}
	if err := p.Decode(&s.pairs); err != nil {
		return nil, err
	}
	if len(s.pairs) == 0 {
		return nil, s.errorf(s.pos, "no fields to rename")
	}
	return s, nil
}

func (s *renameStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	fields := in.Fields()
	renamed := map[int]pair{}
	for _, p := range s.pairs {
		i, err := s.fieldIndex(in, name{Name: p.Key, Pos: p.KeyPos})
		if err != nil {
			return nil, err
		}
		if p.Value == "" {
			return nil, s.errorf(p.ValuePos, "field %q needs a new name", p.Key)
		}
		fields[i].Name = p.Value
		renamed[i] = p
	}
	seen := map[string]int{}
	for i, f := range fields {
		if j, dup := seen[f.Name]; dup {
			p, ok := renamed[i]
			if !ok {
				p = renamed[j]
			}
			return nil, s.errorf(p.ValuePos, "renaming %q to %q clashes with another field named %q", p.Key, p.Value, f.Name)
		}
		seen[f.Name] = i
	}
	s.name, s.in = label(env, "rename"), in
	out, err := in.Derive(fields...)
	if err != nil {
		return nil, s.errorf(s.pos, "%v", err)
	}
	s.out = out
	return s.out, nil
}

func (s *renameStep) Process(_ context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	b.Schema = s.out
	return nil
}

// ---- cast

type castStep struct {
	where
	pairs pairs

	name  string
	in    *record.Schema
	out   *record.Schema
	idx   []int
	types []record.Type
	loc   *time.Location
}

func newCast(p connector.Params) (connector.Step, error) {
	s := &castStep{where: whereOf("cast", p)}
	if err := p.Decode(&s.pairs); err != nil {
		return nil, err
	}
	if len(s.pairs) == 0 {
		return nil, s.errorf(s.pos, "no fields to convert")
	}
	return s, nil
}

func (s *castStep) Bind(in *record.Schema, env *connector.StepEnv) (*record.Schema, error) {
	fields := in.Fields()
	s.idx, s.types = nil, nil
	for _, p := range s.pairs {
		i, err := s.fieldIndex(in, name{Name: p.Key, Pos: p.KeyPos})
		if err != nil {
			return nil, err
		}
		t, err := record.ParseType(p.Value)
		if err != nil {
			return nil, s.errorf(p.ValuePos, "field %q: %v", p.Key, err)
		}
		if t == record.Any {
			return nil, s.errorf(p.ValuePos, "field %q: cannot cast to any", p.Key)
		}
		fields[i].Type = t
		s.idx = append(s.idx, i)
		s.types = append(s.types, t)
	}
	s.name, s.in, s.loc = label(env, "cast"), in, location(env)
	out, err := in.Derive(fields...)
	if err != nil {
		return nil, s.errorf(s.pos, "%v", err)
	}
	s.out = out
	return s.out, nil
}

func (s *castStep) Process(_ context.Context, b *record.Batch) error {
	if err := sameSchema(s.name, b, s.in); err != nil {
		return err
	}
	var buf [8]any
	vals := buf[:0]
	if len(s.idx) > len(buf) {
		vals = make([]any, 0, len(s.idx))
	}
rows:
	for r, row := range b.Rows {
		vals = vals[:0]
		for k, i := range s.idx {
			v, err := record.Convert(row[i], s.types[k], s.loc)
			if err != nil {
				field := s.in.Field(i).Name
				b.RejectRow(r, s.name, field, castError(field, row[i], s.types[k], err))
				continue rows
			}
			vals = append(vals, v)
		}
		// Converted only once every field converted: a rejected record
		// keeps its values as they came.
		for k, i := range s.idx {
			row[i] = vals[k]
		}
	}
	b.Schema = s.out
	b.Compact()
	return nil
}

func castError(field string, v any, t record.Type, err error) string {
	var ce *record.ConvError
	if errors.As(err, &ce) {
		c := *ce
		c.Field = field
		return c.Error()
	}
	return fmt.Sprintf("field %q: value %s is not a valid %s: %v", field, expr.ValueText(v), t, err)
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: a field name with its
// place.
func (n *name) UnmarshalYAML(node ast.Node) error {
	if _, ok := node.(ast.ScalarNode); !ok {
		return &connector.PosError{Pos: nodePos(node), Msg: fmt.Sprintf("want a field name, got a %s", node.Type())}
	}
	n.Name, n.Pos = scalarText(node), nodePos(node)
	return nil
}
