package expr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// rejectingTable answers every Get with an error its policy turns into a
// rejected record.
type rejectingTable struct{ *connector.Index }

func (rejectingTable) Get(context.Context, []any) (record.Row, bool, error) {
	return nil, false, fmt.Errorf("timed out: %w", connector.ErrReject)
}

// preloaded answers from an index it holds, as a refreshed preload does:
// lookups read the index, never its Get.
type preloaded struct{ ix *connector.Index }

func (p preloaded) Schema() *record.Schema      { return p.ix.Schema() }
func (p preloaded) Keys() []string              { return p.ix.Keys() }
func (p preloaded) Close() error                { return nil }
func (p preloaded) Preloaded() *connector.Index { return p.ix }
func (preloaded) Get(context.Context, []any) (record.Row, bool, error) {
	panic("Get of a Preloaded table")
}

func directLookups(t *testing.T) map[string]connector.Table {
	m := lookups(t)
	fx := m["fx"].(*connector.Index)
	fx.Add(record.Row{"SHORT"}) // a row without its rate
	js, err := connector.NewIndex(record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "v", Type: record.JSON}), []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	js.Add(record.Row{"Ada", map[string]any{"n": json.Number("4")}})
	m["js"] = js
	m["slow"] = rejectingTable{fx}
	m["pre"] = preloaded{fx}
	return m
}

// Reading a literal field of a lookup's row is compiled into a direct call;
// with the lookup's name known only when the expression runs, the same
// expression goes through lookup() and its row's object. Both give the same
// values and the same errors.
func TestLookupFieldDirectAsGeneral(t *testing.T) {
	e := env()
	e.Lookups = directLookups(t)
	tests := []struct {
		src string // %s is the lookup's name
		row func(record.Row)
	}{
		{src: `lookup(%s, name).rate`},
		{src: `lookup(%s, name).rate * qty`},
		{src: `lookup(%s, name)["rate"]`},
		{src: `lookup(%s, "XXX").rate`},
		{src: `lookup(%s, "XXX")?.rate`},
		{src: `lookup(%s, "XXX")?.rate ?? 1`},
		{src: `lookup(%s, name).rate`, row: func(r record.Row) { r[3] = nil }},
		{src: `lookup(%s, name)?.rate`, row: func(r record.Row) { r[3] = nil }},
		{src: `lookup(%s, "SHORT").rate`},
		{src: `lookup(%s, "SHORT").rate * 2`},
		{src: `lookup(%s, name).v.n + 1`},
		{src: `lookup(%s, "none")?.v?.n`},
		{src: `-lookup(%s, name).rate`},
	}
	tables := []string{"fx", "js", "down", "slow", "pre"}
	for _, tc := range tests {
		for _, table := range tables {
			direct := fmt.Sprintf(tc.src, `"`+table+`"`)
			general := fmt.Sprintf("let n = %q; ", table) + fmt.Sprintf(tc.src, "n")
			if strings.Contains(direct, ".v") != (table == "js") {
				continue // a field the table does not have: a compile error
			}
			t.Run(direct, func(t *testing.T) {
				pd, pg := mustCompile(t, direct, e), mustCompile(t, general, e)
				if len(pd.direct) != 1 || len(pg.direct) != 0 {
					t.Fatalf("direct calls: %d and %d, want 1 and 0", len(pd.direct), len(pg.direct))
				}
				row := orderRow()
				if tc.row != nil {
					tc.row(row)
				}
				vd, errD := pd.NewEvaluator().Eval(row)
				vg, errG := pg.NewEvaluator().Eval(row)
				if diff := cmp.Diff(ToRecord(vg), ToRecord(vd), cmpOpts()); diff != "" {
					t.Errorf("value (-general +direct):\n%s", diff)
				}
				if (errD == nil) != (errG == nil) {
					t.Fatalf("errors: direct %v, general %v", errD, errG)
				}
				if errD == nil {
					return
				}
				var ed, eg *Error
				if !errors.As(errD, &ed) || !errors.As(errG, &eg) {
					t.Fatalf("errors are not *Error: %T, %T", errD, errG)
				}
				if ed.Msg != eg.Msg || ed.Inputs != eg.Inputs {
					t.Errorf("error: direct %q (%s), general %q (%s)", ed.Msg, ed.Inputs, eg.Msg, eg.Inputs)
				}
				if IsFatal(errD) != IsFatal(errG) || errors.Is(errD, connector.ErrReject) != errors.Is(errG, connector.ErrReject) {
					t.Errorf("fatal: direct %v, general %v", IsFatal(errD), IsFatal(errG))
				}
				if table == "down" && tc.row == nil && !IsFatal(errD) {
					t.Errorf("a lookup that cannot be answered is not fatal: %v", errD)
				}
			})
		}
	}
}

// The direct call passes the evaluation's context to the table, and, with
// the decimal operators, evaluates without allocating.
func TestLookupFieldDirectContextAndAllocations(t *testing.T) {
	e := env()
	seen := &ctxTable{Index: lookups(t)["fx"].(*connector.Index)}
	e.Lookups = map[string]connector.Table{"fx": seen}
	p := mustCompile(t, `lookup("fx", name).rate * qty * unit_price`, e)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ev := p.NewEvaluator()
	row := orderRow()
	if _, err := ev.EvalContext(ctx, row); err != nil {
		t.Fatal(err)
	}
	if seen.err != context.Canceled {
		t.Errorf("table saw ctx.Err() = %v, want context.Canceled", seen.err)
	}
	e.Lookups = lookups(t)
	p = mustCompile(t, `lookup("fx", name).rate * qty * unit_price`, e)
	ev = p.NewEvaluator()
	var v any
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		if v, err = ev.Eval(row); err != nil {
			t.Fatal(err)
		}
	})
	if want := record.MustDec("119.94"); v.(record.Dec).Cmp(want) != 0 {
		t.Errorf("value %v, want %v", v, want)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per evaluation, want 0", allocs)
	}
}

// Results boxed in an evaluator's memory stay what they were while the
// evaluator goes on: each is its own value.
func TestDirectResultsKeepTheirValues(t *testing.T) {
	p := mustCompile(t, `qty * unit_price + 0.5 * qty`, env())
	ev := p.NewEvaluator()
	row := orderRow()
	var got []any
	for i := range 1000 {
		row[1] = int64(i) // qty
		v, err := ev.Eval(row)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	for i, v := range got {
		want := float64(i)*19.99 + 0.5*float64(i)
		if f, ok := v.(float64); !ok || f-want > 1e-9 || want-f > 1e-9 {
			t.Fatalf("result %d = %v, want %v", i, v, want)
		}
	}
}

// A literal field of a lookup row has its table's type, and so has what is
// computed from it: a sink can then write the result natively.
func TestLookupFieldType(t *testing.T) {
	e := env()
	e.Lookups = directLookups(t)
	tests := []struct {
		src  string
		want record.Type
	}{
		{`lookup("fx", name).rate`, record.Decimal},
		{`qty * unit_price * lookup("fx", name).rate`, record.Decimal},
		{`lookup("pre", name).rate * 2`, record.Decimal},
		{`lookup("fx", name).currency + "!"`, record.String},
		{`lookup("fx", name)?.rate`, record.Decimal},
		{`lookup("js", name).v`, record.Any}, // json: of no static type, as a json field
		{`lookup("js", name).v.n + 1`, record.Any},
		{`lookup("fx", name)["rate"]`, record.Decimal},
		{`let n = "fx"; lookup(n, name).rate`, record.Any}, // the table known only when it runs
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			p := mustCompile(t, tc.src, e)
			if p.Type() != tc.want {
				t.Errorf("type %v, want %v", p.Type(), tc.want)
			}
			if _, err := p.NewEvaluator().Eval(orderRow()); err != nil {
				t.Errorf("Eval: %v", err)
			}
		})
	}
}
