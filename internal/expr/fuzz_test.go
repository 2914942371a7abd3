package expr

import (
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
)

// FuzzCompile: no expression text makes Compile, or evaluating what
// compiled, panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`status != "cancelled"`, `qty * unit_price`, `qty * name`, `qyt > 1`, "qty > 0 &&\n  name * 2",
		`lookup("fx", name)?.rate ?? 1`, `lookup("two", qty, status).v.k`, `lookup(`, `$env["first name"]`,
		`$env`, `-unit_price`, `-(-(-payload.n))`, `round(unit_price, -2)`, `pad_left(qty, 99999999)`,
		`truncate_time(ordered_at, "week", "America/Chicago")`, `parse_time(name, "rfc3339", "Local")`,
		`let x = 1; x + qty`, `filter(payload.tags, # > 1)`, `1..3 | map(# * unit_price)`, `substr(name, -100, 2)`,
		`payload.n / 0`, `unit_price / 0`, `"é" + name`, `qty ?? nil`, `nil * nil`, `[1, 2][5]`, `{a: 1}.a`,
		`sha256(payload)`, `concat()`, `coalesce()`, "\x00", `"\u00`, `#`, `.`, `$env.qty`, `to_date("2024-13-01")`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e := env()
		e.Lookups = lookups(t)
		p, err := Compile(connector.Expr{Src: src, Pos: connector.Pos{Line: 3, Col: 9}}, e)
		if err != nil {
			if _, ok := err.(*connector.PosError); !ok {
				t.Fatalf("Compile(%q) error is a %T, want *connector.PosError", src, err)
			}
			return
		}
		ev := p.NewEvaluator()
		row := orderRow()
		v, err := ev.Eval(row)
		if err == nil {
			_ = ToRecord(v)
		}
		for i := range row {
			row[i] = nil
		}
		_, _ = ev.Eval(row)
	})
}
