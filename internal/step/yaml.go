package step

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"

	"github.com/backbone-etl/backbone/internal/connector"
)

// The types here decode step configurations like connector.Expr, Map and
// List do, but keep the exact place of every expression and name, so that
// an error inside a block scalar (`check: |`) or a quoted expression points
// at the right line and column.

// exprValue is an expression as written, with the place of its first
// character.
type exprValue struct{ connector.Expr }

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (e *exprValue) UnmarshalYAML(n ast.Node) error { return e.Expr.UnmarshalYAML(n) }

func nodePos(n ast.Node) connector.Pos {
	if n == nil {
		return connector.Pos{}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return connector.Pos{}
	}
	return connector.Pos{Line: tk.Position.Line, Col: tk.Position.Column}
}

// exprEntry is one `name: expression` of a map step.
type exprEntry struct {
	Name    string
	NamePos connector.Pos
	Expr    connector.Expr
}

// exprMap is a mapping of names to expressions, in the order written.
type exprMap []exprEntry

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (m *exprMap) UnmarshalYAML(n ast.Node) error {
	values, err := mappingValues(n)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, mv := range values {
		name := scalarText(mv.Key)
		if seen[name] {
			return &connector.PosError{Pos: nodePos(mv.Key), Msg: fmt.Sprintf("%q appears twice", name)}
		}
		seen[name] = true
		var x connector.Expr
		if err := x.UnmarshalYAML(mv.Value); err != nil {
			return err
		}
		*m = append(*m, exprEntry{Name: name, NamePos: nodePos(mv.Key), Expr: x})
	}
	return nil
}

func mappingValues(n ast.Node) ([]*ast.MappingValueNode, error) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, nil
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, nil
	case *ast.NullNode:
		return nil, nil
	}
	return nil, &connector.PosError{Pos: nodePos(n), Msg: fmt.Sprintf("want a mapping, got a %s", n.Type())}
}

func scalarText(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		return v.Value.Value
	case *ast.NullNode:
		return ""
	case ast.ScalarNode:
		if t := v.GetToken(); t != nil {
			return t.Value
		}
		return fmt.Sprint(v.GetValue())
	}
	return ""
}

// name is a field name with its place.
type name struct {
	Name string
	Pos  connector.Pos
}

// nameList is a list of names; a single name is a list of one.
type nameList []name

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (l *nameList) UnmarshalYAML(n ast.Node) error {
	switch v := n.(type) {
	case *ast.SequenceNode:
		for _, e := range v.Values {
			if _, ok := e.(ast.ScalarNode); !ok {
				return &connector.PosError{Pos: nodePos(e), Msg: fmt.Sprintf("want a field name, got a %s", e.Type())}
			}
			*l = append(*l, name{Name: scalarText(e), Pos: nodePos(e)})
		}
		return nil
	case *ast.NullNode:
		return nil
	case ast.ScalarNode:
		*l = nameList{{Name: scalarText(v), Pos: nodePos(v)}}
		return nil
	}
	return &connector.PosError{Pos: nodePos(n), Msg: fmt.Sprintf("want a list of field names, got a %s", n.Type())}
}

// Names returns the names alone.
func (l nameList) Names() []string {
	out := make([]string, len(l))
	for i, n := range l {
		out[i] = n.Name
	}
	return out
}

// pair is one `key: value` of a mapping of names to names (rename) or to
// types (cast).
type pair struct {
	Key, Value       string
	KeyPos, ValuePos connector.Pos
}

// pairs is a mapping of names to scalars, in the order written.
type pairs []pair

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (ps *pairs) UnmarshalYAML(n ast.Node) error {
	values, err := mappingValues(n)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, mv := range values {
		k := scalarText(mv.Key)
		if seen[k] {
			return &connector.PosError{Pos: nodePos(mv.Key), Msg: fmt.Sprintf("%q appears twice", k)}
		}
		seen[k] = true
		if _, ok := mv.Value.(ast.ScalarNode); !ok {
			return &connector.PosError{Pos: nodePos(mv.Value), Msg: fmt.Sprintf("value of %q must be a single value, not a %s", k, mv.Value.Type())}
		}
		*ps = append(*ps, pair{Key: k, Value: scalarText(mv.Value), KeyPos: nodePos(mv.Key), ValuePos: nodePos(mv.Value)})
	}
	return nil
}

// withFile sets the file of a position decoded from a node (the node knows
// lines, not files).
func withFile(p connector.Pos, file string) connector.Pos {
	if p.File == "" {
		p.File = file
	}
	return p
}
