package step

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

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
func (e *exprValue) UnmarshalYAML(n ast.Node) error {
	x, err := exprFromNode(n)
	if err != nil {
		return err
	}
	e.Expr = x
	return nil
}

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

func exprFromNode(n ast.Node) (connector.Expr, error) {
	switch v := n.(type) {
	case *ast.LiteralNode:
		return literalExpr(v), nil
	case *ast.StringNode:
		p := nodePos(v)
		if t := v.GetToken(); t != nil && (t.Type == token.DoubleQuoteType || t.Type == token.SingleQuoteType) {
			p.Col++ // the position is the quote's
		}
		return connector.Expr{Src: v.Value, Pos: p}, nil
	case *ast.NullNode:
		return connector.Expr{Pos: nodePos(v)}, nil
	case ast.ScalarNode:
		// A number or a bool written as an expression: keep its text
		// ("1.50", not 1.5).
		src := fmt.Sprint(v.GetValue())
		if t := v.GetToken(); t != nil {
			src = t.Value
		}
		return connector.Expr{Src: src, Pos: nodePos(v)}, nil
	}
	return connector.Expr{}, &connector.PosError{Pos: nodePos(n), Msg: fmt.Sprintf("want an expression, got a %s", n.Type())}
}

// literalExpr places a block scalar: its text starts on the line after the
// indicator, at the block's indentation. Every line of a literal block
// starts at that column.
func literalExpr(v *ast.LiteralNode) connector.Expr {
	src := v.Value.Value
	p := nodePos(v) // the | or > indicator
	if v.Start != nil && v.Start.Position != nil {
		p = connector.Pos{Line: v.Start.Position.Line, Col: v.Start.Position.Column}
	}
	p.Line++
	origin := ""
	if t := v.Value.GetToken(); t != nil {
		origin = t.Origin
	}
	// The block's indentation is what the first non-blank line of the file
	// has more than the same line of the value.
	o := firstNonBlank(origin)
	s := firstNonBlank(src)
	indent := leading(o) - leading(s)
	if indent < 0 {
		indent = 0
	}
	p.Col = indent + 1
	return connector.Expr{Src: src, Pos: p}
}

func firstNonBlank(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			return line
		}
	}
	return ""
}

func leading(s string) int {
	return utf8.RuneCountInString(s) - utf8.RuneCountInString(strings.TrimLeft(s, " "))
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
		x, err := exprFromNode(mv.Value)
		if err != nil {
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
