package connector

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/backbone-etl/backbone/internal/record"
)

// The types below are used in components' config structs. They remember
// where they were written, so a component can point its errors at the line.

func nodePos(n ast.Node) Pos {
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return Pos{}
	}
	p := n.GetToken().Position
	return Pos{Line: p.Line, Col: p.Column}
}

func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.NullNode:
		return "", true
	case ast.ScalarNode:
		return fmt.Sprint(v.GetValue()), true
	}
	return "", false
}

// Expr is an expression as written, with its place.
type Expr struct {
	Src string
	Pos Pos
}

// UnmarshalYAML implements yaml.NodeUnmarshaler. Pos is the place of the
// expression's first character: after the quote of a quoted scalar, on the
// line after the indicator of a block scalar.
func (e *Expr) UnmarshalYAML(n ast.Node) error {
	x, err := exprFromNode(n)
	if err != nil {
		return err
	}
	*e = x
	return nil
}

func exprFromNode(n ast.Node) (Expr, error) {
	switch v := n.(type) {
	case *ast.LiteralNode:
		return literalExpr(v), nil
	case *ast.StringNode:
		p := nodePos(v)
		if t := v.GetToken(); t != nil && (t.Type == token.DoubleQuoteType || t.Type == token.SingleQuoteType) {
			p.Col++ // the position is the quote's
		}
		return Expr{Src: v.Value, Pos: p}, nil
	case *ast.NullNode:
		return Expr{Pos: nodePos(v)}, nil
	case ast.ScalarNode:
		// A number or a bool written as an expression: keep its text
		// ("1.50", not 1.5).
		src := fmt.Sprint(v.GetValue())
		if t := v.GetToken(); t != nil {
			src = t.Value
		}
		return Expr{Src: src, Pos: nodePos(v)}, nil
	}
	return Expr{}, &PosError{Pos: nodePos(n), Msg: fmt.Sprintf("want an expression, got a %s", n.Type())}
}

// literalExpr places a block scalar: its text starts on the line after the
// indicator, at the block's indentation. Every line of a literal block
// starts at that column.
func literalExpr(v *ast.LiteralNode) Expr {
	src := v.Value.Value
	p := nodePos(v) // the | or > indicator
	if v.Start != nil && v.Start.Position != nil {
		p = Pos{Line: v.Start.Position.Line, Col: v.Start.Position.Column}
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
	return Expr{Src: src, Pos: p}
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

// KV is one entry of a Map.
type KV struct {
	Key    string
	Value  string
	Pos    Pos // of the value
	KeyPos Pos
}

// Map is a YAML mapping of names to scalars, in the order written.
type Map []KV

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (m *Map) UnmarshalYAML(n ast.Node) error {
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	case *ast.NullNode:
		return nil
	default:
		return fmt.Errorf("want a mapping of names to values, got a %s", n.Type())
	}
	for _, mv := range values {
		k, _ := scalarText(mv.Key)
		val, ok := scalarText(mv.Value)
		if !ok {
			return fmt.Errorf("%s: value of %q must be a single value, not a %s", nodePos(mv.Value), k, mv.Value.Type())
		}
		*m = append(*m, KV{Key: k, Value: val, Pos: nodePos(mv.Value), KeyPos: nodePos(mv.Key)})
	}
	return nil
}

// List is a list of names; a single scalar is a list of one.
type List []string

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (l *List) UnmarshalYAML(n ast.Node) error {
	switch v := n.(type) {
	case *ast.SequenceNode:
		for _, e := range v.Values {
			s, ok := scalarText(e)
			if !ok {
				return fmt.Errorf("%s: want a name, got a %s", nodePos(e), e.Type())
			}
			*l = append(*l, s)
		}
		return nil
	case *ast.NullNode:
		return nil
	}
	s, ok := scalarText(n)
	if !ok {
		return fmt.Errorf("want a list of names, got a %s", n.Type())
	}
	*l = List{s}
	return nil
}

// SchemaDef is a `schema:` mapping of field names to types, in order.
type SchemaDef struct {
	Fields []record.Field
	Pos    Pos
}

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (s *SchemaDef) UnmarshalYAML(n ast.Node) error {
	var m Map
	if err := m.UnmarshalYAML(n); err != nil {
		return err
	}
	s.Pos = nodePos(n)
	for _, kv := range m {
		t, err := record.ParseType(kv.Value)
		if err != nil {
			return &PosError{Pos: kv.Pos, Msg: fmt.Sprintf("field %q: %v", kv.Key, err)}
		}
		s.Fields = append(s.Fields, record.Field{Name: kv.Key, Type: t})
	}
	if _, err := record.NewSchema(s.Fields...); err != nil {
		return &PosError{Pos: s.Pos, Msg: err.Error()}
	}
	return nil
}

// Schema builds the record schema, or nil when none was written.
func (s SchemaDef) Schema() *record.Schema {
	if len(s.Fields) == 0 {
		return nil
	}
	return record.MustSchema(s.Fields...)
}

// Duration is a time.Duration written as "90s", "5m", "1h30m" or "2d".
type Duration time.Duration

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	s, _ := scalarText(n)
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration accepts time.ParseDuration's forms plus days ("2d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err == nil {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 30s, 5m, 1h, 2d)", s)
	}
	return v, nil
}

// Size is a byte count written as "4096", "64KiB", "16MiB", "1GB".
type Size int64

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (z *Size) UnmarshalYAML(n ast.Node) error {
	s, _ := scalarText(n)
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*z = Size(v)
	return nil
}

// ParseSize parses a byte count with an optional unit (KB, KiB, MB, MiB, GB, GiB).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (like 4096, 64KiB, 16MiB)", s)
	}
	return v * mult, nil
}

// Ratio is a fraction written as "1%" or "0.01".
type Ratio float64

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (r *Ratio) UnmarshalYAML(n ast.Node) error {
	s, _ := scalarText(n)
	v, err := ParseRatio(s)
	if err != nil {
		return err
	}
	*r = Ratio(v)
	return nil
}

// ParseRatio parses "1%", "0.5%" or "0.01" into a fraction in [0, 1].
func ParseRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err == nil && pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is not a ratio (like 1%% or 0.01)", s)
	}
	return v, nil
}
