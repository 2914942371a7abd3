package expr

import (
	"context"
	"reflect"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Direct functions are Go functions of a signature expr calls without an
// argument slice (func(any, any) any: OpCallTyped), held in VM variables
// and made for each Evaluator, so that they may use its memory: results
// are boxed in its slabs instead of one allocation each, and lookup keys
// are passed in its buffer. They fail by panicking with an error, which the
// VM returns as it returns a function's error.

// directFunc is a direct function: its type, for the compiler, and how to
// make it for one evaluator.
type directFunc struct {
	typ   reflect.Type
	make  func(st *evalState) any
	field *lookupField // the lookup field the function reads, if it reads one
}

var binaryType = reflect.TypeOf((func(any, any) any)(nil))

// evalState is an Evaluator's own memory for its direct functions. Like the
// Evaluator, it belongs to one goroutine.
type evalState struct {
	decs   record.Slab[record.Dec]
	floats record.Slab[float64]
	key    [1]any // the key of a single-key lookup
}

func newEvalState() *evalState {
	return &evalState{decs: record.NewSlab[record.Dec](256), floats: record.NewSlab[float64](256)}
}

// dec boxes a decimal result; a nil state boxes as Go does.
func (st *evalState) dec(d record.Dec) any {
	if st == nil {
		return d
	}
	return st.decs.Box(d)
}

// box is the value of a decNative's result: v when it holds one, d boxed
// otherwise.
func (st *evalState) box(d record.Dec, v any) any {
	if v != nil {
		return v
	}
	return st.dec(d)
}

// float boxes a float result; a nil state boxes as Go does.
func (st *evalState) float(f float64) any {
	if st == nil {
		return f
	}
	return st.floats.Box(f)
}

// lookupField is one place where an expression reads a field of a lookup's
// row, lookup("fx", currency).rate: the compiled code calls it directly
// with the context and the key, and it returns the field's value without
// building the row's object. It behaves as the call and the member access
// it replaces: null for a null key or no row when the access is optional
// (?.), the error of reading a field of null otherwise; a lookup that
// cannot be answered fails as lookup() does.
type lookupField struct {
	name     string // the lookup
	table    connector.Table
	field    int    // in the table's schema
	prop     string // the field's name
	json     bool   // a json or any field: its numbers made numbers, as lookup() does
	optional bool
}

func (l *lookupField) make(st *evalState) any {
	return func(ctxv, key any) any {
		if key == nil {
			return l.miss()
		}
		var v any
		if ix := connector.IndexOf(l.table); ix != nil {
			// A preloaded index gives the field without making the row.
			p, found := ix.PosOf(key)
			if !found {
				return l.miss()
			}
			v = ix.Field(p, l.field)
		} else {
			ctx, _ := ctxv.(context.Context)
			if ctx == nil {
				ctx = context.Background()
			}
			st.key[0] = key
			row, found, err := l.table.Get(ctx, st.key[:]) // Get does not keep the key
			st.key[0] = nil
			if err != nil {
				panic(&LookupError{Name: l.name, Err: err})
			}
			if !found {
				return l.miss()
			}
			if l.field < len(row) {
				v = row[l.field]
			}
		}
		if l.json {
			v = jsonForExpr(v)
		}
		return v
	}
}

// miss is the value, or the failure, of reading the field of no row.
func (l *lookupField) miss() any {
	if l.optional {
		return nil
	}
	return runtime.Fetch(nil, l.prop) // panics as reading a field of null does
}

// lookupFields replaces each read of a literal field of a lookup() row with
// a single literal key, lookup("fx", currency).rate, by a call of a
// lookupField. Places it cannot prove right (an undeclared lookup, an
// unknown field, a wrong number of keys) are left for staticCheck to report.
//
// The checker typed the member access from lookup()'s result, a map: its
// fields are of no known type, and neither is what is computed from them,
// so that total_usd: qty * unit_price * lookup("fx", currency).rate would
// be stored as any (and a sink could not write it natively). Compile
// therefore builds such an expression twice: the first build finds the
// lookup fields and their types (results); the second (early) patches the
// tree before it is checked again, with each function declared as
// returning its field's type, so that the types flow on; once checked, the
// functions are declared binaryType again, which the VM calls directly.
type lookupFields struct {
	lookups map[string]connector.Table
	taken   func(name string) bool // names the expression's variables use
	funcs   map[string]directFunc  // the functions made, by variable name
	results map[string]types.Type  // a function's declared type, when its field's type is known
	early   bool                   // patching before the check: callees typed by results
	callees []*ast.IdentifierNode  // the callees patched early
}

// typedFunc is the type of a lookup field's function as the checker sees
// it: a binary function returning a value of type t.
func typedFunc(t record.Type) types.Type {
	anyType := reflect.TypeFor[any]()
	ft := reflect.FuncOf([]reflect.Type{anyType, anyType}, []reflect.Type{typeOfField(t).Nature().Type}, false)
	return types.TypeOf(reflect.Zero(ft).Interface())
}

// retype declares the callees patched early binary functions again, once
// the checker has typed what they return.
func (v *lookupFields) retype() {
	for _, id := range v.callees {
		id.SetType(binaryType)
	}
}

func (v *lookupFields) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	call, ok := m.Node.(*ast.CallNode)
	if !ok || len(call.Arguments) != 3 {
		return
	}
	callee, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || strings.TrimPrefix(callee.Value, "$fn_") != "lookup" {
		return
	}
	if ctx, ok := call.Arguments[0].(*ast.IdentifierNode); !ok || ctx.Value != ctxName {
		return
	}
	name, ok := literal(call.Arguments[1])
	if !ok {
		return
	}
	t := v.lookups[name]
	if t == nil || len(t.Keys()) != 1 {
		return
	}
	prop, ok := literal(m.Property)
	if !ok {
		return
	}
	s := t.Schema()
	i, ok := s.Index(prop)
	if !ok {
		return
	}
	if ix := connector.IndexOf(t); ix != nil && !ix.Loaded(i) {
		return // left to lookup(), which fails: the field was not loaded
	}
	typ := s.Field(i).Type
	l := &lookupField{name: name, table: t, field: i, prop: prop, optional: m.Optional,
		json: typ == record.JSON || typ == record.Any}
	fn := "$lookup_field_" + strconv.Itoa(len(v.funcs))
	for v.taken(fn) {
		fn += "_"
	}
	if v.funcs == nil {
		v.funcs = map[string]directFunc{}
	}
	if v.results == nil {
		v.results = map[string]types.Type{}
	}
	id := &ast.IdentifierNode{Value: fn}
	id.SetLocation(callee.Location())
	id.SetType(binaryType)
	if v.early {
		declared, ok := v.results[fn]
		if !ok { // not the function the first build found here: leave it
			return
		}
		id.SetType(declared.Nature().Type)
		v.callees = append(v.callees, id)
	} else if typeOfField(typ) != types.Any {
		v.results[fn] = typedFunc(typ)
	}
	v.funcs[fn] = directFunc{typ: binaryType, make: l.make, field: l}
	nat := *m.Nature()
	ast.Patch(node, &ast.CallNode{Callee: id, Arguments: []ast.Node{call.Arguments[0], call.Arguments[2]}})
	(*node).SetNature(nat) // what reads the result sees the member's type
}
