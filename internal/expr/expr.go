package expr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Env is what an expression is compiled against: the schema of the records
// flowing into the step, the lookups a pipeline declared, and the run's
// logical time and default zone.
type Env struct {
	Schema   *record.Schema
	Lookups  map[string]connector.Table
	RunTime  time.Time
	Location *time.Location // zone of time functions called without one; UTC when nil
}

// RunTimeName is the variable holding Env.RunTime. A field of the same name
// hides it.
const RunTimeName = "run_time"

// ctxName is the hidden variable through which lookup() receives the
// context of the evaluation. The compiler adds it as lookup's first argument.
const ctxName = "$backbone_ctx"

// Program is a compiled, type-checked expression. It is immutable and safe
// to share between goroutines; evaluate it through an Evaluator per
// goroutine.
type Program struct {
	src     connector.Expr
	text    string // compact source, for messages
	prog    *vm.Program
	typ     record.Type
	loads   []load                // field values copied into the VM's variables per record
	consts  []constant            // values set once per evaluator
	direct  map[string]directFunc // lookup fields called directly, by variable name
	width   int                   // the smallest row length loads need
	nvars   int
	slots   map[string]int // VM variable of each name the code loads
	rtSlot  int            // variable holding run_time, -1 when unused
	ctxSlot int            // variable holding the context, -1 when unused
	runTime time.Time
}

// constant is a direct function in a VM variable, made per evaluator.
type constant struct {
	slot int
	make func(st *evalState) any
}

type load struct {
	name  string
	slot  int  // VM variable
	field int  // index in the row
	json  bool // a json or any field: json.Number is turned into a number
}

// Source returns the expression as written.
func (p *Program) Source() connector.Expr { return p.src }

// Type is the record type of the expression's result, Any when it cannot be
// known before running (a json value taken apart, a lookup result).
func (p *Program) Type() record.Type { return p.typ }

// String renders the expression compactly, as messages quote it.
func (p *Program) String() string { return p.text }

// Compile parses and type-checks e against env and prepares it for fast
// evaluation. Errors are *connector.PosError pointing at the offending
// place inside the expression in the pipeline file.
func Compile(e connector.Expr, env Env) (prog *Program, err error) {
	text := compact(e.Src)
	if strings.TrimSpace(e.Src) == "" {
		return nil, connector.Errorf(e.Pos, "empty expression")
	}
	if env.Schema == nil {
		env.Schema = record.MustSchema()
	}
	fenv := &funcEnv{loc: env.Location, lookups: env.Lookups}
	if fenv.loc == nil {
		fenv.loc = time.UTC
	}

	vars := types.Map{}
	for _, f := range env.Schema.Fields() {
		vars[f.Name] = typeOfField(f.Type)
	}
	if _, ok := vars[RunTimeName]; !ok {
		vars[RunTimeName] = types.TypeOf(time.Time{})
	}
	vars[ctxName] = types.Any

	// A field may have a function's name ("floor", "lower"): the name then
	// reads the field, and a call of it calls the function under an alias.
	aliases := map[string]string{}
	for _, f := range funcDefs {
		if _, isField := vars[f.Name]; isField {
			aliases[f.Name] = "$fn_" + f.Name
		}
	}
	opts := []exprlang.Option{
		exprlang.Env(vars),
		exprlang.DisableBuiltin("now"), // the run's time is run_time; never the wall clock
		exprlang.DisableBuiltin("date"),
		exprlang.DisableBuiltin("timezone"),
		exprlang.Patch(&envPatcher{aliases: aliases}),
	}
	opts = append(opts, functionOptions(fenv, aliases)...)
	opts = append(opts, operatorOptions()...)

	defer func() {
		if r := recover(); r != nil { // expr must not take the run down
			prog, err = nil, connector.Errorf(e.Pos, "expression `%s`: cannot compile: %v", text, r)
		}
	}()
	fields := &lookupFields{lookups: env.Lookups, taken: func(n string) bool { _, ok := vars[n]; return ok }}
	vp, cerr := build(e.Src, opts, fields)
	if cerr != nil {
		return nil, compileError(e, text, cerr, env)
	}
	if len(fields.results) > 0 { // again, with the lookup fields' types known (see lookupFields)
		for name, t := range fields.results {
			vars[name] = t
		}
		results := fields.results
		fields = &lookupFields{lookups: env.Lookups, results: results, early: true,
			taken: func(n string) bool { _, ok := vars[n]; _, ours := results[n]; return ok && !ours }}
		if vp, cerr = build(e.Src, opts, fields); cerr != nil {
			return nil, compileError(e, text, cerr, env)
		}
	}
	if ferr := staticCheck(vp.Node(), env); ferr != nil {
		return nil, compileError(e, text, ferr, env)
	}

	p := &Program{src: e, text: text, prog: vp, rtSlot: -1, ctxSlot: -1, runTime: env.RunTime, direct: fields.funcs}
	p.typ = recordTypeOf(vp.Node().Type())
	p.link(env.Schema)
	return p, nil
}

// build is expr.Compile with one more step: after the patchers ran, the
// tree is checked again from scratch. The checker does not look inside a
// call it typed in an earlier pass, so without this a misspelled field in an
// operand of an overloaded operator would go unreported. Once optimized,
// the tree's operators and lookup fields become direct calls.
func build(src string, opts []exprlang.Option, fields *lookupFields) (*vm.Program, error) {
	config := conf.CreateNew()
	for _, op := range opts {
		op(config)
	}
	for name := range config.Disabled {
		delete(config.Builtins, name)
	}
	config.Check()
	tree, err := checker.ParseCheck(src, config)
	if err != nil {
		return nil, err
	}
	if fields.early {
		ast.Walk(&tree.Node, fields)
	}
	ast.Walk(&tree.Node, untype{})
	if _, err := checker.Check(tree, config); err != nil {
		return nil, err
	}
	if err := optimizer.Optimize(&tree.Node, config); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fe.Bind(tree.Source)
		}
		return nil, err
	}
	if fields.early {
		fields.retype()
	} else {
		ast.Walk(&tree.Node, fields)
	}
	ast.Walk(&tree.Node, fastCalls{})
	return compiler.Compile(tree, config)
}

// fastCalls makes the calls of overloaded operators direct calls of Go
// functions held in VM variables (see fastFuncs): expr then calls them
// without building an argument slice per evaluation.
type fastCalls struct{}

func (fastCalls) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	f, ok := fastFuncs["$"+id.Value]
	if !ok {
		return
	}
	callee := &ast.IdentifierNode{Value: "$" + id.Value}
	callee.SetLocation(id.Location())
	callee.SetType(f.typ)
	call.Callee = callee
}

// untype forgets the types the checker recorded.
type untype struct{}

func (untype) Visit(n *ast.Node) { (*n).SetNature(nature.Nature{}) }

// link rewrites the bytecode so that names load from VM variables that the
// Evaluator fills from the row, instead of from a map per record, and so
// that == never asserts a type (a null field compares unequal, it does not
// fail).
func (p *Program) link(s *record.Schema) {
	code, args := p.prog.Bytecode, p.prog.Arguments
	base := 0
	for i, op := range code {
		if op == vm.OpStore || op == vm.OpLoadVar {
			base = max(base, args[i]+1)
		}
	}
	slots := map[string]int{}
	for i, op := range code {
		switch op {
		case vm.OpEqualInt, vm.OpEqualString:
			code[i] = vm.OpEqual
		case vm.OpLoadFast:
			name, _ := p.prog.Constants[args[i]].(string)
			slot, ok := slots[name]
			if !ok {
				slot = base + len(slots)
				slots[name] = slot
				if f, isDirect := p.direct[name]; isDirect { // a name no field has
					p.consts = append(p.consts, constant{slot: slot, make: f.make})
				} else if fi, isField := s.Index(name); isField {
					t := s.Field(fi).Type
					p.loads = append(p.loads, load{name: name, slot: slot, field: fi, json: t == record.JSON || t == record.Any})
					p.width = max(p.width, fi+1)
				} else if name == RunTimeName {
					p.rtSlot = slot
				} else if name == ctxName {
					p.ctxSlot = slot
				} else if f, ok := fastFuncs[name]; ok {
					p.consts = append(p.consts, constant{slot: slot, make: f.make})
				}
			}
			code[i], args[i] = vm.OpLoadVar, slot
		}
	}
	p.nvars = base + len(slots)
	p.slots = slots
	sort.Slice(p.loads, func(i, j int) bool { return p.loads[i].field < p.loads[j].field })
}

// Evaluator evaluates one Program for one goroutine, reusing its virtual
// machine between records.
type Evaluator struct {
	p      *Program
	vm     vm.VM
	native native // nil when the VM runs the expression
}

// NewEvaluator returns an evaluator for use by one goroutine.
func (p *Program) NewEvaluator() *Evaluator {
	ev := &Evaluator{p: p}
	ev.vm.Variables = make([]any, p.nvars)
	if p.rtSlot >= 0 {
		ev.vm.Variables[p.rtSlot] = p.runTime
	}
	st := newEvalState()
	for _, c := range p.consts {
		ev.vm.Variables[c.slot] = c.make(st)
	}
	if p.ctxSlot >= 0 {
		ev.vm.Variables[p.ctxSlot] = context.Background()
	}
	ev.native = p.nativeOf(ev.vm.Variables, st)
	return ev
}

// Eval evaluates the expression over row, whose schema is the one the
// program was compiled against. The result is in the expression's own
// representation (int, not int64): convert it with ToRecord. An error is
// about this record (a null in arithmetic, a bad parse_time input) unless
// IsFatal says otherwise.
func (ev *Evaluator) Eval(row record.Row) (any, error) {
	return ev.EvalContext(context.Background(), row)
}

// EvalContext is Eval with a context bounding the lookups the expression
// makes.
func (ev *Evaluator) EvalContext(ctx context.Context, row record.Row) (any, error) {
	p := ev.p
	if len(row) < p.width {
		return nil, &Error{Expr: p.text, Msg: fmt.Sprintf("the row has %d values, fewer than its schema", len(row))}
	}
	if ev.native != nil {
		if out, ok := ev.runNative(ctx, row); ok {
			return out, nil
		}
	}
	vars := ev.vm.Variables
	for _, l := range p.loads {
		v := row[l.field]
		if l.json {
			v = jsonForExpr(v)
		}
		vars[l.slot] = v
	}
	if p.ctxSlot >= 0 {
		vars[p.ctxSlot] = ctx
	}
	out, err := ev.vm.Run(p.prog, nil)
	if err != nil {
		e := runtimeError(p.text, err)
		e.Inputs = p.Inputs(row)
		return nil, e
	}
	return out, nil
}

// Column evaluates the expression over rows in turn and stores each value,
// as ToRecord gives it, at row[at], while the evaluation runs natively and
// gives null or a value of type t (any value when t is Any). It returns
// the number of rows set: the row after them failed, or gave a value of
// another type, and is left for EvalContext (which gives the error) and
// the caller. The rows share one recovery from the native code's panics,
// where EvalContext takes one per row.
func (ev *Evaluator) Column(ctx context.Context, rows []record.Row, at int, t record.Type) (n int) {
	if ev.native == nil {
		return 0
	}
	defer func() {
		_ = recover() // rows[n] failed: n stays as it is, for the caller
	}()
	width := ev.p.width
	for n < len(rows) {
		row := rows[n]
		if len(row) < width {
			return n
		}
		v := ev.native(row, ctx)
		if !ofType(v, t) {
			if v = ToRecord(v); v != nil && t != record.Any && record.TypeOf(v) != t {
				return n
			}
		}
		row[at] = v
		n++
	}
	return n
}

// Conditions evaluates the expression over rows in turn and stores each
// value in holds, while the evaluation runs natively and gives a bool. It
// returns the number of rows evaluated: the row after them failed, or gave
// something else, and is left for EvalContext (which gives the error) and
// the caller. Like Column, the rows share one recovery.
func (ev *Evaluator) Conditions(ctx context.Context, rows []record.Row, holds []bool) (n int) {
	if ev.native == nil {
		return 0
	}
	defer func() {
		_ = recover() // rows[n] failed: n stays as it is, for the caller
	}()
	width := ev.p.width
	holds = holds[:len(rows)]
	for n < len(rows) {
		row := rows[n]
		if len(row) < width {
			return n
		}
		v, ok := ev.native(row, ctx).(bool)
		if !ok {
			return n
		}
		holds[n] = v
		n++
	}
	return n
}

// ofType reports, for the commonest types, that v is already a record value
// of type t (or null): what ToRecord and TypeOf would tell, sooner.
func ofType(v any, t record.Type) bool {
	var ok bool
	switch t {
	case record.Decimal:
		_, ok = v.(record.Dec)
	case record.Int:
		_, ok = v.(int64)
	case record.String:
		_, ok = v.(string)
	case record.Bool:
		_, ok = v.(bool)
	case record.Float:
		_, ok = v.(float64)
	case record.Timestamp:
		_, ok = v.(time.Time)
	}
	return ok || v == nil
}

// Fields names the fields the expression reads, in schema order.
func (p *Program) Fields() []string {
	names := make([]string, 0, len(p.loads))
	for _, l := range p.loads {
		names = append(names, l.name)
	}
	return names
}

// Inputs renders the values of row that the expression reads, for messages:
// "qty=null, unit_price=19.99".
func (p *Program) Inputs(row record.Row) string {
	var b strings.Builder
	for i, l := range p.loads {
		if l.field >= len(row) {
			break
		}
		if i == 6 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.name)
		b.WriteByte('=')
		b.WriteString(ValueText(row[l.field]))
	}
	return b.String()
}

// ValueText renders a value for a message: text quoted, null as null,
// everything else as a CSV file would hold it; long values are cut.
func ValueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(cut(x))
	case []byte:
		return strconv.Quote(cut(string(x)))
	}
	return cut(record.FormatText(v))
}

func cut(s string) string {
	if len(s) <= 64 {
		return s
	}
	i := 61
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// Error is an expression that failed on one record.
type Error struct {
	Expr   string // the expression, compactly
	Msg    string
	Inputs string // the values the expression read: "qty=null, unit_price=19.99"
	Err    error  // the cause, when there is one
}

func (e *Error) Error() string {
	s := "expression `" + e.Expr + "`: " + e.Msg
	if e.Inputs != "" {
		s += " (" + e.Inputs + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// LookupError is a lookup that could not be answered (a service down): it
// fails the run rather than rejecting the record.
type LookupError struct {
	Name string
	Err  error
}

func (e *LookupError) Error() string { return fmt.Sprintf("lookup %q: %v", e.Name, e.Err) }

// Unwrap returns the cause.
func (e *LookupError) Unwrap() error { return e.Err }

// IsFatal reports whether an evaluation error must fail the run instead of
// rejecting the record: a lookup that could not be answered, unless the
// lookup marked it connector.ErrReject (its policy rejects such records).
func IsFatal(err error) bool {
	var le *LookupError
	return errors.As(err, &le) && !errors.Is(err, connector.ErrReject)
}

func runtimeError(text string, err error) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		cause := fe.Prev
		var le *LookupError
		if errors.As(cause, &le) {
			return &Error{Expr: text, Msg: le.Error(), Err: le}
		}
		return &Error{Expr: text, Msg: cleanMessage(fe.Message), Err: cause}
	}
	return &Error{Expr: text, Msg: cleanMessage(err.Error()), Err: err}
}

// compact renders an expression on one line for messages.
func compact(src string) string {
	s := strings.Join(strings.Fields(src), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}

var (
	decType      = reflect.TypeOf(record.Dec{})
	dateType     = reflect.TypeOf(record.LocalDate(0))
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	bytesType    = reflect.TypeOf([]byte(nil))
	stringType   = reflect.TypeOf("")
	intType      = reflect.TypeOf(0)
	floatType    = reflect.TypeOf(0.0)
	boolType     = reflect.TypeOf(false)
	stringsType  = reflect.TypeOf([]string(nil))
)

func typeOfField(t record.Type) types.Type {
	switch t {
	case record.String:
		return types.String
	case record.Int:
		return types.Int64
	case record.Float:
		return types.Float64
	case record.Decimal:
		return types.TypeOf(record.Dec{})
	case record.Bool:
		return types.Bool
	case record.Timestamp:
		return types.TypeOf(time.Time{})
	case record.Date:
		return types.TypeOf(record.LocalDate(0))
	case record.Bytes:
		return types.TypeOf([]byte(nil))
	}
	return types.Any
}

// recordTypeOf maps the Go type of a result to the record type it is stored
// as (see ToRecord).
func recordTypeOf(t reflect.Type) record.Type {
	if t == nil {
		return record.Any
	}
	switch t {
	case decType:
		return record.Decimal
	case dateType:
		return record.Date
	case timeType:
		return record.Timestamp
	case durationType:
		return record.String
	case bytesType:
		return record.Bytes
	}
	switch t.Kind() {
	case reflect.String:
		return record.String
	case reflect.Bool:
		return record.Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return record.Int
	case reflect.Float32, reflect.Float64:
		return record.Float
	case reflect.Map, reflect.Slice, reflect.Array:
		return record.JSON
	}
	return record.Any
}

// typeName names a Go type the way pipeline files name types.
func typeName(t reflect.Type) string {
	if t == nil {
		return "any"
	}
	switch t {
	case decType:
		return "decimal"
	case dateType:
		return "date"
	case timeType:
		return "timestamp"
	case durationType:
		return "duration"
	case bytesType:
		return "bytes"
	case stringsType:
		return "list"
	}
	switch t.Kind() {
	case reflect.Interface:
		return "any"
	case reflect.Map:
		return "json"
	case reflect.Slice, reflect.Array:
		return "list"
	}
	return recordTypeOf(t).String()
}

// envPatcher turns $env.name and $env["name"] into plain names, so that a
// field whose name is not an identifier ("first name") can be read, calls
// functions whose name a field took by their alias, and passes the
// evaluation context to lookup().
type envPatcher struct {
	aliases map[string]string
}

func (p *envPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || id.Value != "$env" {
			return
		}
		if s, ok := n.Property.(*ast.StringNode); ok && !n.Optional {
			ident := &ast.IdentifierNode{Value: s.Value}
			ast.Patch(node, ident)
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		if alias, ok := p.aliases[id.Value]; ok {
			callee := &ast.IdentifierNode{Value: alias}
			ast.Patch(&n.Callee, callee)
			id = callee
		}
		if id.Value != "lookup" && id.Value != p.aliases["lookup"] {
			return
		}
		if len(n.Arguments) > 0 {
			if first, ok := n.Arguments[0].(*ast.IdentifierNode); ok && first.Value == ctxName {
				return
			}
		}
		ctx := &ast.IdentifierNode{Value: ctxName}
		ctx.SetLocation(n.Location())
		n.Arguments = append([]ast.Node{ctx}, n.Arguments...)
	}
}

// Option hook used to add functions with a Validate step, which
// expr.Function does not offer.
func withFunction(f *funcDef, name string, env *funcEnv) exprlang.Option {
	return func(c *conf.Config) {
		c.Functions[name] = f.builtin(name, env)
	}
}
