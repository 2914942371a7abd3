package expr

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/backbone-etl/backbone/internal/connector"
)

// UsesLookups records in u the lookup fields an expression reads, from its
// text alone, before any lookup is loaded: lookup("fx", currency).rate reads
// the field rate of fx (so does ?.rate, or ["rate"]); a lookup's row used
// otherwise (kept in a variable, returned whole, a field named by an
// expression) reads it whole; a lookup named by anything but a literal, or
// an expression that does not parse, may read any lookup whole. The answer
// may be too large, never too small.
func UsesLookups(e connector.Expr, u *connector.LookupUses) {
	tree, err := parser.Parse(e.Src)
	if err != nil {
		u.All() // its compile error fails the run anyway
		return
	}
	v := &usesVisitor{fields: map[*ast.CallNode]string{}}
	ast.Walk(&tree.Node, v)
	for _, call := range v.calls {
		name, ok := literal(firstArg(call))
		switch {
		case !ok:
			u.All()
		case v.fields[call] != "":
			u.Field(name, v.fields[call])
		default:
			u.Whole(name)
		}
	}
}

type usesVisitor struct {
	calls  []*ast.CallNode          // of lookup
	fields map[*ast.CallNode]string // the calls whose row is read for one field, named
}

func (v *usesVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "lookup" {
			v.calls = append(v.calls, n)
		}
	case *ast.MemberNode:
		if call, ok := n.Node.(*ast.CallNode); ok {
			if prop, ok := literal(n.Property); ok && prop != "" {
				v.fields[call] = prop
			}
		}
	}
}

func firstArg(call *ast.CallNode) ast.Node {
	if len(call.Arguments) == 0 {
		return nil
	}
	return call.Arguments[0]
}
