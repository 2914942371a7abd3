package expr

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// sameAsVM evaluates row with ev and with an evaluator of the same program
// that runs the VM only, and fails unless both give the same value or the
// same error.
func sameAsVM(t *testing.T, p *Program, ev *Evaluator, row record.Row) {
	t.Helper()
	vmOnly := p.NewEvaluator()
	vmOnly.native = nil
	got, gerr := ev.Eval(row)
	want, werr := vmOnly.Eval(row)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%s over %v: error %v, the VM's %v", p.text, row, gerr, werr)
	}
	if gerr == nil && !cmp.Equal(ToRecord(got), ToRecord(want), cmpOpts(), cmpopts.EquateNaNs()) {
		t.Fatalf("%s over %v: %#v, the VM's %#v", p.text, row, got, want)
	}
}

// The expressions pipelines write most run natively, and give what the VM
// gives: values, nulls and errors.
func TestNativeMatchesVM(t *testing.T) {
	e := env()
	e.Lookups = lookups(t)
	for _, src := range []string{
		`status != "cancelled"`, `status == "shipped"`, `qty * unit_price`, `qty * unit_price * lookup("fx", name).rate`,
		`qty * 2 + order_id`, `qty > 2 && order_id != 7`, `qty < 1 || score >= 0.5`, `!active`, `not active`, `-qty`, `-unit_price`,
		`score * 100 + qty`, `qty / 2`, `qty % 2`, `unit_price - 1.5`, `unit_price / qty`, `unit_price / 0`, `qty > 1 ? "many" : "one"`,
		`qty in [1, 3]`, `status in ["shipped", "paid"]`, `lookup("fx", name)?.rate`, `lookup("fx", status).rate`, `nil`, `true`,
		`ordered_at < run_time`, `unit_price + unit_price - qty`, `qty * unit_price * unit_price`, `unit_price > 10 && unit_price <= 20.5`, `(qty + 1) * (order_id - 2)`, `qty == nil`, `+qty`,
		// operators over operators, whose results pass unboxed: typed on the left, the right, both, and mixed with floats
		`unit_price * 2 * score`, `(unit_price - qty) * (unit_price + 1)`, `qty * (unit_price * unit_price)`, `score * unit_price * qty`,
		`(qty + 1) * unit_price - unit_price * score`,
		// decimal fields of lookups read unboxed: found, missing, optional, null, a key of another kind, no index
		`unit_price * lookup("fx", name).rate`, `lookup("fx", name)?.rate * qty`, `qty * lookup("fx", status).rate`,
		`unit_price * lookup("fx", order_id).rate`, `qty * unit_price * lookup("down", name).rate`,
	} {
		t.Run(src, func(t *testing.T) {
			p := mustCompile(t, src, e)
			ev := p.NewEvaluator()
			if ev.native == nil {
				t.Fatalf("%s runs on the VM, not natively", src)
			}
			sameAsVM(t, p, ev, orderRow())
			for i := range orderRow() { // each field null in turn: the VM's errors
				row := orderRow()
				row[i] = nil
				sameAsVM(t, p, ev, row)
			}
			row := orderRow()
			row[1], row[3], row[4] = int64(0), "EUR", "cancelled"
			sameAsVM(t, p, ev, row)
			row[3] = "none" // its rate is null
			sameAsVM(t, p, ev, row)
		})
	}
}

// Expressions with nodes the native code does not cover run on the VM.
func TestNativeLeavesTheRestToTheVM(t *testing.T) {
	e := env()
	e.Lookups = lookups(t)
	for _, src := range []string{
		`lower(name) == "usd"`, `payload.n + 1`, `let x = qty; x * 2`, `lookup("fx", name)`, `qty ?? 0`, `[qty][0]`,
	} {
		p := mustCompile(t, src, e)
		ev := p.NewEvaluator()
		if ev.native != nil {
			t.Errorf("%s runs natively", src)
		}
		sameAsVM(t, p, ev, orderRow())
	}
}

// Decimal +, - and * of decimals and integers are computed by the native
// code itself, without the operator's general function: here that
// function fails, and the native results must not.
func TestNativeDecimalArithmeticSkipsTheOperatorFunctions(t *testing.T) {
	e := env()
	for _, src := range []string{`qty * unit_price`, `unit_price + unit_price - qty`, `qty * unit_price * unit_price`} {
		p := mustCompile(t, src, e)
		vars := make([]any, p.nvars)
		st := newEvalState()
		for _, c := range p.consts {
			vars[c.slot] = c.make(st)
			if _, ok := vars[c.slot].(func(a, b any) any); ok {
				vars[c.slot] = func(a, b any) any { panic("the operator's function was called") }
			}
		}
		nat := p.nativeOf(vars, st)
		if nat == nil {
			t.Fatalf("%s runs on the VM", src)
		}
		want, err := p.NewEvaluator().Eval(orderRow())
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", src, r)
				}
			}()
			if got := nat(orderRow(), context.Background()); !cmp.Equal(ToRecord(got), ToRecord(want), cmpOpts()) {
				t.Errorf("%s: %v, want %v", src, got, want)
			}
		}()
	}
}

func FuzzNativeMatchesVM(f *testing.F) {
	for _, s := range []string{
		`status != "cancelled"`, `qty * unit_price * lookup("fx", name).rate`, `qty > 2 && order_id != 7 || !active`,
		`qty > 1 ? unit_price : -score`, `qty % 0`, `order_id / qty - 3.5`, `status in ["a", "shipped"]`,
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, src string, null uint8) {
		e := env()
		e.Lookups = lookups(t)
		p, err := Compile(connector.Expr{Src: src, Pos: connector.Pos{Line: 1, Col: 1}}, e)
		if err != nil {
			return
		}
		ev := p.NewEvaluator()
		if ev.native == nil {
			return // the VM's alone (FuzzCompile)
		}
		row := orderRow()
		if i := int(null); i < len(row) {
			row[i] = nil
		}
		sameAsVM(t, p, ev, row)
	})
}
