package expr

import (
	"fmt"
	"math"
	"reflect"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/backbone-etl/backbone/internal/record"
)

// Decimals are record.Dec values, which expr knows nothing of. opPatcher
// replaces an arithmetic or comparison operator by a function call when one
// side is a decimal, or when a side's type is only known at run time (a
// json value, a lookup result) and may be one; the functions compute
// exactly on decimals and fall back to expr's own rules otherwise.
//
// expr.Operator is not used: it types the call it makes, so the checker
// never looks inside its operands again, and a misspelled field next to a
// decimal would go unreported.

var int64Type = reflect.TypeOf(int64(0))

type operator struct {
	fn    string
	arith bool // + - * /; comparisons otherwise
	run   func(st *evalState, a, b any) (any, error)
}

var operators = map[string]operator{
	"+":  {fn: "$add", arith: true, run: func(st *evalState, a, b any) (any, error) { return arith(st, '+', a, b) }},
	"-":  {fn: "$sub", arith: true, run: func(st *evalState, a, b any) (any, error) { return arith(st, '-', a, b) }},
	"*":  {fn: "$mul", arith: true, run: func(st *evalState, a, b any) (any, error) { return arith(st, '*', a, b) }},
	"/":  {fn: "$div", arith: true, run: func(st *evalState, a, b any) (any, error) { return arith(st, '/', a, b) }},
	"<":  {fn: "$lt", run: func(_ *evalState, a, b any) (any, error) { return compare("<", a, b) }},
	"<=": {fn: "$le", run: func(_ *evalState, a, b any) (any, error) { return compare("<=", a, b) }},
	">":  {fn: "$gt", run: func(_ *evalState, a, b any) (any, error) { return compare(">", a, b) }},
	">=": {fn: "$ge", run: func(_ *evalState, a, b any) (any, error) { return compare(">=", a, b) }},
	"==": {fn: "$eq", run: func(_ *evalState, a, b any) (any, error) { return equal(a, b), nil }},
	"!=": {fn: "$ne", run: func(_ *evalState, a, b any) (any, error) { return !equal(a, b), nil }},
}

// fastFuncs are the operator functions as expr calls them directly, by
// name: "$" + the name the checker knows (see directFunc).
var fastFuncs = func() map[string]directFunc {
	m := map[string]directFunc{}
	for _, o := range operators {
		run := o.run
		m["$"+o.fn] = directFunc{typ: binaryType, make: func(st *evalState) any {
			return func(a, b any) any {
				v, err := run(st, a, b)
				if err != nil {
					panic(err)
				}
				return v
			}
		}}
	}
	m["$$neg"] = directFunc{typ: reflect.TypeOf((func(any) any)(nil)), make: func(st *evalState) any {
		return func(a any) any {
			v, err := negate(st, a)
			if err != nil {
				panic(err)
			}
			return v
		}
	}}
	return m
}()

func unknown(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }

// numeric is a type a decimal can meet in an operator.
func numeric(t reflect.Type) bool { return unknown(t) || isNumber(t) }

// overloaded reports whether an operator on operands of types l and r is
// computed by our functions rather than by expr.
func overloaded(op string, l, r reflect.Type) bool {
	if l == decType || r == decType {
		return numeric(l) && numeric(r)
	}
	if unknown(l) && unknown(r) {
		return true
	}
	// One side unknown: it may be a decimal when the other is a number.
	return (unknown(l) && isNumber(r)) || (unknown(r) && isNumber(l))
}

type opPatcher struct{ applied bool }

func (p *opPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		o, ok := operators[n.Operator]
		if !ok || !overloaded(n.Operator, n.Left.Type(), n.Right.Type()) {
			return
		}
		// The call is left untyped, so the checker visits its operands.
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: o.fn}, Arguments: []ast.Node{n.Left, n.Right}})
		p.applied = true
	case *ast.UnaryNode:
		if n.Operator != "-" {
			return
		}
		if t := n.Node.Type(); t != decType && !unknown(t) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "$neg"}, Arguments: []ast.Node{n.Node}})
		p.applied = true
	}
}

// Reset and ShouldRepeat make the checker run the patcher until nothing
// changes: a * b + c is patched once a * b has a type.
func (p *opPatcher) Reset()             { p.applied = false }
func (p *opPatcher) ShouldRepeat() bool { return p.applied }

// opResult types an overloaded operator for the checker.
func opResult(sym string, arith bool) func(args []reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		l, r := args[0], args[1]
		if !numeric(l) || !numeric(r) {
			if !arith && (sym == "==" || sym == "!=") {
				return boolType, nil
			}
			return nil, fmt.Errorf("invalid operation: %s %s %s", typeName(l), sym, typeName(r))
		}
		switch {
		case !arith:
			return boolType, nil
		case unknown(l) || unknown(r):
			return nil, nil
		case l.Kind() == reflect.Float64 || r.Kind() == reflect.Float64 || l.Kind() == reflect.Float32 || r.Kind() == reflect.Float32:
			return floatType, nil
		case l == decType || r == decType:
			return decType, nil
		case sym == "/":
			return floatType, nil
		}
		return intType, nil
	}
}

func operatorOptions() []exprlang.Option {
	opts := []exprlang.Option{exprlang.Patch(&opPatcher{})}
	for sym, o := range operators {
		f := &builtin.Function{
			Name:     o.fn,
			Func:     func(args ...any) (any, error) { return o.run(nil, args[0], args[1]) },
			Validate: opResult(sym, o.arith),
		}
		opts = append(opts, func(c *conf.Config) { c.Functions[f.Name] = f })
	}
	neg := &builtin.Function{
		Name: "$neg",
		Func: func(args ...any) (any, error) { return negate(nil, args[0]) },
		Validate: func(args []reflect.Type) (reflect.Type, error) {
			if !numeric(args[0]) {
				return nil, fmt.Errorf("invalid operation: -%s", typeName(args[0]))
			}
			if unknown(args[0]) {
				return nil, nil
			}
			return args[0], nil
		},
	}
	return append(opts, func(c *conf.Config) { c.Functions[neg.Name] = neg })
}

// kindName names a runtime value's type for messages.
func kindName(v any) string {
	if v == nil {
		return "null"
	}
	return typeName(reflect.TypeOf(v))
}

// decOf returns an integer or decimal value as a decimal.
func decOf(v any) (record.Dec, bool) {
	switch x := v.(type) {
	case record.Dec:
		return x, true
	case int:
		return record.DecFromInt(int64(x)), true
	case int64:
		return record.DecFromInt(x), true
	case int32:
		return record.DecFromInt(int64(x)), true
	case int16:
		return record.DecFromInt(int64(x)), true
	case int8:
		return record.DecFromInt(int64(x)), true
	case uint8:
		return record.DecFromInt(int64(x)), true
	case uint16:
		return record.DecFromInt(int64(x)), true
	case uint32:
		return record.DecFromInt(int64(x)), true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return record.DecFromInt(int64(x)), true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return record.DecFromInt(int64(x)), true
		}
	}
	return record.Dec{}, false
}

func floatOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func isDec(v any) bool {
	_, ok := v.(record.Dec)
	return ok
}

// arith computes a op b: exactly when one side is a decimal and the other
// an integer or decimal, in float64 when the other is a float, and by expr's
// own rules otherwise. A decimal or float result is boxed by st.
func arith(st *evalState, op byte, a, b any) (any, error) {
	// The commonest case first: a decimal and a decimal or an integer.
	if x, ok := a.(record.Dec); ok {
		if y, ok := decOf(b); ok {
			return decArith(st, op, x, y)
		}
	} else if y, ok := b.(record.Dec); ok {
		if x, ok := decOf(a); ok {
			return decArith(st, op, x, y)
		}
	}
	if a == nil || b == nil {
		return nil, fmt.Errorf("invalid operation: %s %c %s", kindName(a), op, kindName(b))
	}
	if isDec(a) || isDec(b) {
		x, okA := decOf(a)
		y, okB := decOf(b)
		if okA && okB {
			return decArith(st, op, x, y)
		}
		fa, okA := toFloatOperand(a)
		fb, okB := toFloatOperand(b)
		if !okA || !okB {
			return nil, fmt.Errorf("invalid operation: %s %c %s", kindName(a), op, kindName(b))
		}
		switch op {
		case '+':
			return st.float(fa + fb), nil
		case '-':
			return st.float(fa - fb), nil
		case '*':
			return st.float(fa * fb), nil
		default:
			return st.float(fa / fb), nil
		}
	}
	return protect(func() any {
		switch op {
		case '+':
			return runtime.Add(a, b)
		case '-':
			return runtime.Subtract(a, b)
		case '*':
			return runtime.Multiply(a, b)
		default:
			return runtime.Divide(a, b)
		}
	})
}

// decArith computes x op y exactly.
func decArith(st *evalState, op byte, x, y record.Dec) (any, error) {
	switch op {
	case '+':
		return st.dec(x.Add(y)), nil
	case '-':
		return st.dec(x.Sub(y)), nil
	case '*':
		return st.dec(x.Mul(y)), nil
	}
	q, err := x.Div(y)
	if err != nil {
		return nil, err
	}
	return st.dec(q), nil
}

func toFloatOperand(v any) (float64, bool) {
	if f, ok := floatOf(v); ok {
		return f, true
	}
	if d, ok := v.(record.Dec); ok {
		return d.Float64(), true
	}
	return 0, false
}

// protect runs one of expr's runtime helpers, which panic on operands of
// the wrong type, and returns the panic as an error.
func protect(f func() any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return f(), nil
}

// cmpDec compares when a decimal is involved. A float is taken at its
// shortest decimal text, so that price == 0.3 holds for the decimal 0.3.
func cmpDec(a, b any) (int, bool, error) {
	if !isDec(a) && !isDec(b) {
		return 0, false, nil
	}
	x, okA := decOf(a)
	y, okB := decOf(b)
	if !okA {
		if f, ok := floatOf(a); ok {
			d, err := record.DecFromFloat(f)
			if err != nil {
				return 0, true, err
			}
			x, okA = d, true
		}
	}
	if !okB {
		if f, ok := floatOf(b); ok {
			d, err := record.DecFromFloat(f)
			if err != nil {
				return 0, true, err
			}
			y, okB = d, true
		}
	}
	if !okA || !okB {
		return 0, true, fmt.Errorf("cannot compare %s with %s", kindName(a), kindName(b))
	}
	return x.Cmp(y), true, nil
}

func compare(op string, a, b any) (any, error) {
	if a == nil || b == nil {
		return nil, fmt.Errorf("invalid operation: %s %s %s", kindName(a), op, kindName(b))
	}
	c, handled, err := cmpDec(a, b)
	if err != nil {
		return nil, err
	}
	if !handled {
		return protect(func() any {
			switch op {
			case "<":
				return runtime.Less(a, b)
			case "<=":
				return runtime.LessOrEqual(a, b)
			case ">":
				return runtime.More(a, b)
			default:
				return runtime.MoreOrEqual(a, b)
			}
		})
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// equal is == that never fails: a null equals only a null, and values of
// types that cannot be compared are unequal.
func equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if c, handled, err := cmpDec(a, b); handled {
		return err == nil && c == 0
	}
	out, err := protect(func() any { return runtime.Equal(a, b) })
	return err == nil && out == true
}

func negate(st *evalState, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("invalid operation: -null")
	case record.Dec:
		return st.dec(x.Neg()), nil
	}
	return protect(func() any { return runtime.Negate(v) })
}
