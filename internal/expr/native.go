package expr

import (
	"context"
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// A native expression is the checked tree compiled to Go closures, one per
// node, which the Evaluator runs instead of the VM: no stack, no opcode
// dispatch, fields read straight from the row. It covers what pipelines
// write most (fields, literals, comparisons, arithmetic, and, or, not,
// a ? b : c, the operator and lookup-field functions) and gives the VM's
// results, calling the same runtime functions; an expression with any
// other node runs on the VM. When a closure fails (a null in arithmetic, a
// bool expected), the VM runs the record again, so that errors are the
// VM's, word for word.
type native func(row record.Row, ctx context.Context) any

// nativeOf compiles the tree for one evaluator, whose VM variables hold the
// functions made for it; nil when some node is not covered.
func (p *Program) nativeOf(vars []any, st *evalState) native {
	c := nativeCompiler{p: p, vars: vars, st: st}
	return c.compile(p.prog.Node())
}

type nativeCompiler struct {
	p    *Program
	vars []any
	st   *evalState // the evaluator's, shared with its VM functions
}

func (c *nativeCompiler) compile(n ast.Node) native {
	switch n := n.(type) {
	case *ast.NilNode:
		return literalOf(nil)
	case *ast.BoolNode:
		return literalOf(n.Value)
	case *ast.StringNode:
		return literalOf(n.Value)
	case *ast.ConstantNode:
		return literalOf(n.Value)
	case *ast.IntegerNode:
		t := n.Type()
		switch {
		case t == nil, t.Kind() == reflect.Int:
			return literalOf(n.Value)
		case t.Kind() == reflect.Int64:
			return literalOf(int64(n.Value))
		case t.Kind() == reflect.Float64:
			return literalOf(float64(n.Value))
		}
		return nil
	case *ast.FloatNode:
		if t := n.Type(); t != nil && t.Kind() == reflect.Float32 {
			return nil
		}
		return literalOf(n.Value)
	case *ast.IdentifierNode:
		return c.identifier(n.Value)
	case *ast.UnaryNode:
		return c.unary(n)
	case *ast.BinaryNode:
		return c.binary(n)
	case *ast.ConditionalNode:
		cond, yes, no := c.compile(n.Cond), c.compile(n.Exp1), c.compile(n.Exp2)
		if cond == nil || yes == nil || no == nil {
			return nil
		}
		return func(row record.Row, ctx context.Context) any {
			if cond(row, ctx).(bool) {
				return yes(row, ctx)
			}
			return no(row, ctx)
		}
	case *ast.CallNode:
		return c.call(n)
	case *ast.ChainNode: // what is left of a?.b once lookupFields made it a call
		x := c.compile(n.Node)
		if x == nil {
			return nil
		}
		return func(row record.Row, ctx context.Context) any { // a typed nil becomes nil, as the VM does
			if v := x(row, ctx); !runtime.IsNil(v) {
				return v
			}
			return nil
		}
	}
	return nil
}

func literalOf(v any) native {
	return func(record.Row, context.Context) any { return v }
}

// identifier reads a name as link() bound it: a field of the row, run_time,
// the context, or a function made for the evaluator.
func (c *nativeCompiler) identifier(name string) native {
	slot, ok := c.p.slots[name]
	if !ok {
		return nil // not a name link() bound (a variable of the expression's own)
	}
	for _, l := range c.p.loads {
		if l.slot != slot {
			continue
		}
		i := l.field
		if l.json {
			return func(row record.Row, _ context.Context) any { return jsonForExpr(row[i]) }
		}
		return func(row record.Row, _ context.Context) any { return row[i] }
	}
	switch slot {
	case c.p.rtSlot:
		return literalOf(c.p.runTime)
	case c.p.ctxSlot:
		return func(_ record.Row, ctx context.Context) any { return ctx }
	}
	return literalOf(c.vars[slot])
}

func (c *nativeCompiler) unary(n *ast.UnaryNode) native {
	x := c.compile(n.Node)
	if x == nil {
		return nil
	}
	switch n.Operator {
	case "!", "not":
		return func(row record.Row, ctx context.Context) any { return !x(row, ctx).(bool) }
	case "+":
		return x
	case "-":
		return func(row record.Row, ctx context.Context) any { return runtime.Negate(x(row, ctx)) }
	}
	return nil
}

// binaryOps are the other operators the VM runs through a runtime
// function (== and != are binary's own).
var binaryOps = map[string]func(a, b any) any{
	"<":  func(a, b any) any { return runtime.Less(a, b) },
	">":  func(a, b any) any { return runtime.More(a, b) },
	"<=": func(a, b any) any { return runtime.LessOrEqual(a, b) },
	">=": func(a, b any) any { return runtime.MoreOrEqual(a, b) },
	"+":  runtime.Add,
	"-":  runtime.Subtract,
	"*":  runtime.Multiply,
	"/":  func(a, b any) any { return runtime.Divide(a, b) },
	"%":  func(a, b any) any { return runtime.Modulo(a, b) },
	"in": func(a, b any) any { return runtime.In(a, b) },
}

func (c *nativeCompiler) binary(n *ast.BinaryNode) native {
	l, r := c.compile(n.Left), c.compile(n.Right)
	if l == nil || r == nil {
		return nil
	}
	switch n.Operator {
	case "and", "&&": // as the VM: the left value when it is false
		return func(row record.Row, ctx context.Context) any {
			if v := l(row, ctx); !v.(bool) {
				return v
			}
			return r(row, ctx)
		}
	case "or", "||":
		return func(row record.Row, ctx context.Context) any {
			if v := l(row, ctx); v.(bool) {
				return v
			}
			return r(row, ctx)
		}
	case "==": // the commonest, without an indirect call
		return func(row record.Row, ctx context.Context) any { return runtime.Equal(l(row, ctx), r(row, ctx)) }
	case "!=":
		return func(row record.Row, ctx context.Context) any { return !runtime.Equal(l(row, ctx), r(row, ctx)) }
	}
	op, ok := binaryOps[n.Operator]
	if !ok {
		return nil
	}
	return func(row record.Row, ctx context.Context) any { return op(l(row, ctx), r(row, ctx)) }
}

// call covers the calls of functions held in variables: the operators of
// decimals and the lookup fields (see direct.go). Functions of the
// expression language's own table run on the VM.
func (c *nativeCompiler) call(n *ast.CallNode) native {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	slot, ok := c.p.slots[id.Value]
	if !ok || slot == c.p.rtSlot || slot == c.p.ctxSlot {
		return nil
	}
	if isDecOp(n) {
		// An operator over decimals it reads or computes unboxed.
		if dn := c.decimal(n); dn != nil {
			st := c.st
			return func(row record.Row, ctx context.Context) any {
				d, v, _ := dn(row, ctx)
				return st.box(d, v)
			}
		}
	}
	args := make([]native, len(n.Arguments))
	for i, a := range n.Arguments {
		if args[i] = c.compile(a); args[i] == nil {
			return nil
		}
	}
	switch f := c.vars[slot].(type) {
	case func(a, b any) any:
		if len(args) != 2 {
			return nil
		}
		a, b := args[0], args[1]
		if op, ok := decOps[id.Value]; ok {
			st := c.st
			return func(row record.Row, ctx context.Context) any {
				d, v, ok := decPair(op, f, a(row, ctx), b(row, ctx))
				if !ok {
					return v
				}
				return st.dec(d)
			}
		}
		return func(row record.Row, ctx context.Context) any { return f(a(row, ctx), b(row, ctx)) }
	case func(a any) any:
		if len(args) != 1 {
			return nil
		}
		a := args[0]
		return func(row record.Row, ctx context.Context) any { return f(a(row, ctx)) }
	}
	return nil
}

// decOps are the operator functions decimal computes without their
// general rules, for a decimal and a decimal or an int64, by the names the
// compiled program calls them (see fastFuncs).
var decOps = map[string]func(x, y record.Dec) record.Dec{
	"$" + operators["+"].fn: record.Dec.Add,
	"$" + operators["-"].fn: record.Dec.Sub,
	"$" + operators["*"].fn: record.Dec.Mul,
}

// isDecOp reports whether n calls one of decOps.
func isDecOp(n ast.Node) bool {
	call, ok := n.(*ast.CallNode)
	if !ok || len(call.Arguments) != 2 {
		return false
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return false
	}
	_, ok = decOps[id.Value]
	return ok
}

// decNative is a decimal computed or read natively. When ok, d is its
// value and v is nil or d already boxed; otherwise v is the value, of
// another type: an operator whose operand is one takes that operand
// unboxed.
type decNative func(row record.Row, ctx context.Context) (d record.Dec, v any, ok bool)

// decOperand compiles an operand of a decOps operator that gives a decimal
// unboxed: another such operator, a decimal field of the row, or a decimal
// field of a lookup's row. nil for any other node.
func (c *nativeCompiler) decOperand(n ast.Node) decNative {
	if d := c.decimal(n); d != nil {
		return d
	}
	if n.Type() != decType {
		return nil
	}
	switch n := n.(type) {
	case *ast.IdentifierNode:
		slot, ok := c.p.slots[n.Value]
		if !ok {
			return nil
		}
		for _, l := range c.p.loads {
			if l.slot == slot && !l.json {
				i := l.field
				return func(row record.Row, _ context.Context) (record.Dec, any, bool) {
					v := row[i]
					d, ok := v.(record.Dec)
					return d, v, ok
				}
			}
		}
	case *ast.CallNode:
		return c.lookupDec(n)
	}
	return nil
}

// lookupDec compiles the read of a decimal field of a lookup's row (see
// lookupField): from a preloaded index, the decimal is read from its
// column where the call would box it. Anything else (no index, no row, a
// null, a key of the wrong kind) takes the call itself.
func (c *nativeCompiler) lookupDec(n *ast.CallNode) decNative {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || len(n.Arguments) != 2 {
		return nil
	}
	l := c.p.direct[id.Value].field
	if l == nil || l.json {
		return nil
	}
	key, call := c.compile(n.Arguments[1]), c.call(n)
	if key == nil || call == nil {
		return nil
	}
	return func(row record.Row, ctx context.Context) (record.Dec, any, bool) {
		if ix := connector.IndexOf(l.table); ix != nil {
			if k := key(row, ctx); k != nil {
				if p, found := ix.PosOf(k); found {
					if d, ok := ix.DecAt(p, l.field); ok {
						return d, nil, true
					}
				}
			}
		}
		v := call(row, ctx)
		d, ok := v.(record.Dec)
		return d, v, ok
	}
}

// decimal compiles a call of a decOps operator: it computes the operator
// when the operands are a decimal and a decimal or an int64, as arith does
// (see decArith), and leaves other operands to the operator's function. It
// returns nil for any other node.
func (c *nativeCompiler) decimal(n ast.Node) decNative {
	if !isDecOp(n) {
		return nil
	}
	call := n.(*ast.CallNode)
	id := call.Callee.(*ast.IdentifierNode)
	op := decOps[id.Value]
	slot, found := c.p.slots[id.Value]
	if !found {
		return nil
	}
	f, ok := c.vars[slot].(func(a, b any) any)
	if !ok {
		return nil
	}
	ad, bd := c.decOperand(call.Arguments[0]), c.decOperand(call.Arguments[1])
	var a, b native
	if ad == nil {
		if a = c.compile(call.Arguments[0]); a == nil {
			return nil
		}
	}
	if bd == nil {
		if b = c.compile(call.Arguments[1]); b == nil {
			return nil
		}
	}
	st := c.st
	switch {
	case ad == nil && bd == nil:
		return func(row record.Row, ctx context.Context) (record.Dec, any, bool) {
			return decPair(op, f, a(row, ctx), b(row, ctx))
		}
	case bd == nil:
		return func(row record.Row, ctx context.Context) (record.Dec, any, bool) {
			x, av, ok := ad(row, ctx)
			bv := b(row, ctx)
			if ok {
				switch y := bv.(type) {
				case record.Dec:
					return op(x, y), nil, true
				case int64:
					return op(x, record.DecFromInt(y)), nil, true
				}
				av = st.box(x, av)
			}
			return decPair(op, f, av, bv)
		}
	case ad == nil:
		return func(row record.Row, ctx context.Context) (record.Dec, any, bool) {
			av := a(row, ctx)
			y, bv, ok := bd(row, ctx)
			if ok {
				switch x := av.(type) {
				case record.Dec:
					return op(x, y), nil, true
				case int64:
					return op(record.DecFromInt(x), y), nil, true
				}
				bv = st.box(y, bv)
			}
			return decPair(op, f, av, bv)
		}
	}
	return func(row record.Row, ctx context.Context) (record.Dec, any, bool) {
		x, av, xok := ad(row, ctx)
		y, bv, yok := bd(row, ctx)
		if xok && yok {
			return op(x, y), nil, true
		}
		if xok {
			av = st.box(x, av)
		}
		if yok {
			bv = st.box(y, bv)
		}
		return decPair(op, f, av, bv)
	}
}

// decPair computes op over a decimal and a decimal or an int64, and calls
// the operator's function f for other operands.
func decPair(op func(x, y record.Dec) record.Dec, f func(a, b any) any, av, bv any) (record.Dec, any, bool) {
	switch x := av.(type) {
	case record.Dec:
		switch y := bv.(type) {
		case record.Dec:
			return op(x, y), nil, true
		case int64:
			return op(x, record.DecFromInt(y)), nil, true
		}
	case int64:
		if y, ok := bv.(record.Dec); ok {
			return op(record.DecFromInt(x), y), nil, true
		}
	}
	return record.Dec{}, f(av, bv), false
}

// runNative evaluates the native expression; ok is false when it failed,
// for the VM to run the record again.
func (ev *Evaluator) runNative(ctx context.Context, row record.Row) (out any, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return ev.native(row, ctx), true
}
