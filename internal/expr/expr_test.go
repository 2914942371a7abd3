package expr

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// orders is the schema most tests evaluate against.
var orders = record.MustSchema(
	record.Field{Name: "order_id", Type: record.Int},
	record.Field{Name: "qty", Type: record.Int},
	record.Field{Name: "unit_price", Type: record.Decimal},
	record.Field{Name: "name", Type: record.String},
	record.Field{Name: "status", Type: record.String},
	record.Field{Name: "score", Type: record.Float},
	record.Field{Name: "ordered_at", Type: record.Timestamp},
	record.Field{Name: "day", Type: record.Date},
	record.Field{Name: "active", Type: record.Bool},
	record.Field{Name: "payload", Type: record.JSON},
	record.Field{Name: "first name", Type: record.String},
)

var runTime = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func orderRow() record.Row {
	return record.Row{
		int64(7), int64(3), record.MustDec("19.99"), "Ada", "shipped", 0.5,
		time.Date(2024, 3, 10, 7, 30, 0, 0, time.UTC), record.LocalDate(19792), true,
		map[string]any{"n": json.Number("4"), "f": json.Number("1.5"), "tags": []any{"a", "b"}, "s": "x"},
		"Ada Lovelace",
	}
}

func env() Env { return Env{Schema: orders, RunTime: runTime} }

func mustCompile(t testing.TB, src string, e Env) *Program {
	t.Helper()
	p, err := Compile(connector.Expr{Src: src, Pos: connector.Pos{Line: 1, Col: 1}}, e)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func cmpOpts() cmp.Option {
	return cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 && a.Scale() == b.Scale() })
}

func TestEval(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		row      func(record.Row) // changes to orderRow()
		want     any              // after ToRecord
		wantType record.Type
	}{
		{name: "filter string", src: `status != "cancelled"`, want: true, wantType: record.Bool},
		{name: "int literal compare", src: `qty == 3 && qty > 2 && qty in [1, 3]`, want: true, wantType: record.Bool},
		{name: "int arithmetic", src: `qty * 2 + order_id`, want: int64(13), wantType: record.Int},
		{name: "division is float", src: `qty / 2`, want: 1.5, wantType: record.Float},
		{name: "int times decimal is exact", src: `qty * unit_price`, want: record.MustDec("59.97"), wantType: record.Decimal},
		{name: "decimal plus int keeps scale", src: `unit_price + 1`, want: record.MustDec("20.99"), wantType: record.Decimal},
		{name: "decimal divided", src: `unit_price / 4`, want: record.MustDec("4.9975"), wantType: record.Decimal},
		{name: "decimal times float is float", src: `unit_price * 0.5`, want: 9.995, wantType: record.Float},
		{name: "negated decimal", src: `-(qty * unit_price)`, want: record.MustDec("-59.97"), wantType: record.Decimal},
		{name: "decimal compare to float literal", src: `unit_price == 19.99 && unit_price > 19 && unit_price <= 20`, want: true, wantType: record.Bool},
		{name: "decimal compare to int field", src: `unit_price > qty`, want: true, wantType: record.Bool},
		{name: "decimal 1.50 equals 1.5", src: `to_decimal("1.50") == to_decimal("1.5")`, want: true, wantType: record.Bool},
		{name: "float field", src: `score * 100`, want: 50.0, wantType: record.Float},
		{name: "null equals nothing", src: `name == "Ada"`, row: func(r record.Row) { r[3] = nil }, want: false, wantType: record.Bool},
		{name: "null not equal", src: `status != "cancelled"`, row: func(r record.Row) { r[4] = nil }, want: true, wantType: record.Bool},
		{name: "null int equals", src: `qty == 3`, row: func(r record.Row) { r[1] = nil }, want: false, wantType: record.Bool},
		{name: "null decimal equals nil", src: `unit_price == nil`, row: func(r record.Row) { r[2] = nil }, want: true, wantType: record.Bool},
		{name: "null coalesced", src: `name ?? "anon"`, row: func(r record.Row) { r[3] = nil }, want: "anon"},
		{name: "bool field", src: `active && !(qty > 5)`, want: true, wantType: record.Bool},
		{name: "timestamp compare run_time", src: `ordered_at < run_time`, want: true, wantType: record.Bool},
		{name: "run_time", src: `run_time`, want: runTime, wantType: record.Timestamp},
		{name: "date field", src: `day`, want: record.LocalDate(19792), wantType: record.Date},
		{name: "json member", src: `payload.s`, want: "x", wantType: record.Any},
		{name: "json number is a number", src: `payload.n * 2 + payload.f`, want: 9.5, wantType: record.Any},
		{name: "json number times decimal", src: `payload.n * unit_price`, want: record.MustDec("79.96"), wantType: record.Any},
		{name: "json list", src: `payload.tags[1]`, want: "b", wantType: record.Any},
		{name: "field with a space", src: `$env["first name"]`, want: "Ada Lovelace", wantType: record.String},
		{name: "let", src: `let t = qty * unit_price; t > 50 ? "big" : "small"`, want: "big", wantType: record.String},
		{name: "predicate", src: `filter([1, 2, 3, 4], # >= qty)`, want: []any{int64(3), int64(4)}, wantType: record.JSON},
		{name: "split to json list", src: `split("a,b", ",")`, want: []any{"a", "b"}, wantType: record.JSON},
		{name: "ternary int", src: `qty > 1 ? 1 : 0`, want: int64(1), wantType: record.Int},
		{name: "duration is text", src: `run_time - ordered_at`, want: "1996h30m0s", wantType: record.String},
		{name: "string concat operator", src: `name + "!"`, want: "Ada!", wantType: record.String},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.src, env())
			row := orderRow()
			if tc.row != nil {
				tc.row(row)
			}
			got, err := p.NewEvaluator().Eval(row)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if diff := cmp.Diff(tc.want, ToRecord(got), cmpOpts()); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
			if tc.wantType != record.Any || p.Type() != record.Any {
				if tc.wantType != p.Type() && tc.wantType != record.Any {
					t.Errorf("Type() = %v, want %v", p.Type(), tc.wantType)
				}
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		row  func(record.Row)
		want string
	}{
		{name: "null times decimal", src: `qty * unit_price`, row: func(r record.Row) { r[1] = nil },
			want: "expression `qty * unit_price`: invalid operation: null * decimal (qty=null, unit_price=19.99)"},
		{name: "null int arithmetic", src: `qty + 1`, row: func(r record.Row) { r[1] = nil },
			want: "expression `qty + 1`: invalid operation: null + int (qty=null)"},
		{name: "null comparison", src: `qty > 1`, row: func(r record.Row) { r[1] = nil },
			want: "expression `qty > 1`: invalid operation: null > int (qty=null)"},
		{name: "null bool", src: `active && qty > 1`, row: func(r record.Row) { r[8] = nil },
			want: "expression `active && qty > 1`: a value is null where it cannot be (use ?? or coalesce to give a default) (qty=3, active=null)"},
		{name: "decimal division by zero", src: `unit_price / (qty - 3)`, want: "expression `unit_price / (qty - 3)`: division by zero (qty=3, unit_price=19.99)"},
		{name: "bad parse_time input", src: `parse_time(name, "2006-01-02")`,
			want: "expression `parse_time(name, \"2006-01-02\")`: parse_time: \"Ada\" does not match layout \"2006-01-02\" (name=\"Ada\")"},
		{name: "to_int of text", src: `to_int(name)`, want: "expression `to_int(name)`: to_int: \"Ada\" is not a number (name=\"Ada\")"},
		{name: "negative substr length", src: `substr(name, 0, qty - 5)`, want: "expression `substr(name, 0, qty - 5)`: substr: negative length -2 (qty=3, name=\"Ada\")"},
		{name: "round places out of range", src: `round(unit_price, qty * 10)`, want: "expression `round(unit_price, qty * 10)`: round: places 30 out of range (qty=3, unit_price=19.99)"},
		{name: "to_decimal of a bool", src: `to_decimal(active)`, want: "expression `to_decimal(active)`: to_decimal: cannot convert a bool (\"true\") (active=true)"},
		{name: "dynamic zone", src: `to_date(ordered_at, name)`, want: "expression `to_date(ordered_at, name)`: unknown time zone \"Ada\" (name=\"Ada\", ordered_at=2024-03-10T07:30:00Z)"},
		{name: "json text in arithmetic", src: `payload.s * 2`, want: "expression `payload.s * 2`: invalid operation: string * int (payload={\"f\":1.5,\"n\":4,\"s\":\"x\",\"tags\":[\"a\",\"b\"]})"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.src, env())
			row := orderRow()
			if tc.row != nil {
				tc.row(row)
			}
			got, err := p.NewEvaluator().Eval(row)
			if err == nil {
				t.Fatalf("Eval = %v, want error %q", got, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), tc.want)
			}
			var ee *Error
			if !errors.As(err, &ee) {
				t.Errorf("error is a %T, want *Error", err)
			}
			if IsFatal(err) {
				t.Errorf("IsFatal(%v) = true, want false: a record error", err)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	at := connector.Pos{File: "p.yaml", Line: 10, Col: 13}
	tests := []struct {
		name    string
		src     string
		pos     connector.Pos // of the expression; at when zero
		wantPos connector.Pos
		want    string // the message after "file:line:col: "
	}{
		{name: "misspelled field", src: `qyt > 1`, wantPos: pos(10, 13),
			want: "expression `qyt > 1`: unknown field \"qyt\" (did you mean \"qty\"?)"},
		{name: "misspelled field next to a decimal", src: `unit_price * qyt`, wantPos: pos(10, 26),
			want: "expression `unit_price * qyt`: unknown field \"qyt\" (did you mean \"qty\"?)"},
		{name: "unknown field without a near one", src: `zzzzzz == 1`, wantPos: pos(10, 13),
			want: "expression `zzzzzz == 1`: unknown field \"zzzzzz\" (fields: order_id, qty, unit_price, name, status, score, ordered_at, day, active, payload, first name)"},
		{name: "string times number", src: `qty * name`, wantPos: pos(10, 17),
			want: "expression `qty * name`: invalid operation: int * string"},
		{name: "decimal times string", src: `unit_price * name`, wantPos: pos(10, 24),
			want: "expression `unit_price * name`: invalid operation: decimal * string"},
		{name: "misspelled function", src: `lowr(name)`, wantPos: pos(10, 13),
			want: "expression `lowr(name)`: unknown function \"lowr\" (did you mean \"lower\"?)"},
		{name: "wrong argument type", src: `upper(qty)`, wantPos: pos(10, 13),
			want: "expression `upper(qty)`: upper: argument 1 is int, want string; usage: upper(s string) string"},
		{name: "wrong argument count", src: `substr(name)`, wantPos: pos(10, 13),
			want: "expression `substr(name)`: substr: wrong number of arguments (1); usage: substr(s string, start int[, length int]) string"},
		{name: "syntax", src: `qty >`, wantPos: pos(10, 17), want: "expression `qty >`: unexpected token EOF"},
		{name: "unknown zone", src: `to_date(ordered_at, "Mars/Olympus")`, wantPos: pos(10, 33),
			want: "expression `to_date(ordered_at, \"Mars/Olympus\")`: unknown time zone \"Mars/Olympus\""},
		{name: "unknown unit", src: `truncate_time(ordered_at, "fortnight")`, wantPos: pos(10, 39),
			want: "expression `truncate_time(ordered_at, \"fortnight\")`: truncate_time: unknown unit \"fortnight\" (want second, minute, hour, day, week, month or year)"},
		{name: "wall clock", src: `now()`, wantPos: pos(10, 13), want: "expression `now()`: unknown function \"now\""},
		{name: "bare $env", src: `len($env)`, wantPos: pos(10, 17), want: "expression `len($env)`: $env can only be used as $env[\"field name\"]"},
		{name: "empty", src: "  ", wantPos: pos(10, 13), want: "empty expression"},
		{
			name: "block second line", src: "qty > 0 &&\n  name * 2 > 1\n",
			wantPos: pos(11, 20), want: "expression `qty > 0 && name * 2 > 1`: invalid operation: string * int",
		},
		{
			name: "block third line unknown field", src: "qty > 0\n&& status != \"x\"\n&& naem == \"y\"\n",
			pos: connector.Pos{Line: 4, Col: 7}, wantPos: connector.Pos{File: "", Line: 6, Col: 10},
			want: "expression `qty > 0 && status != \"x\" && naem == \"y\"`: unknown field \"naem\" (did you mean \"name\"?)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := connector.Expr{Src: tc.src, Pos: at}
			if tc.pos.Line != 0 {
				e.Pos = tc.pos
			}
			_, err := Compile(e, env())
			var pe *connector.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("Compile error = %v (%T), want a *connector.PosError", err, err)
			}
			want := tc.wantPos
			if want.File == "" && tc.pos.Line == 0 {
				want.File = at.File
			}
			if pe.Pos != want {
				t.Errorf("position = %v, want %v", pe.Pos, want)
			}
			if pe.Msg != tc.want {
				t.Errorf("message:\n got %q\nwant %q", pe.Msg, tc.want)
			}
		})
	}
}

func pos(line, col int) connector.Pos { return connector.Pos{Line: line, Col: col} }

func TestDecimalExactness(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "a", Type: record.Decimal}, record.Field{Name: "b", Type: record.Decimal})
	row := record.Row{record.MustDec("0.1"), record.MustDec("0.2")}
	tests := []struct {
		src  string
		want any
	}{
		{`a + b`, record.MustDec("0.3")},
		{`a + b == 0.3`, true},
		{`a + b == to_decimal("0.3")`, true},
		{`0.1 + 0.2 == 0.3`, false}, // floats, for contrast
		{`a + b - to_decimal("0.3") == 0`, true},
		{`a * b`, record.MustDec("0.02")},
		{`(a + b) * 3`, record.MustDec("0.9")},
		{`round(to_decimal("2.345"), 2)`, record.MustDec("2.35")},
		{`round(to_decimal("-2.345"), 2)`, record.MustDec("-2.35")},
		{`round(to_decimal("1250"), -2)`, record.MustDec("1300")},
		{`floor(to_decimal("-2.5"))`, record.MustDec("-3")},
		{`ceil(to_decimal("2.1"))`, record.MustDec("3")},
		{`abs(-a)`, record.MustDec("0.1")},
		{`to_decimal(0.1) + to_decimal(0.2)`, record.MustDec("0.3")},
		{`a / 3`, record.MustDec("0.033333333333333333")},
		{`max(1, 2) * a`, record.MustDec("0.2")},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			p := mustCompile(t, tc.src, Env{Schema: s})
			got, err := p.NewEvaluator().Eval(row)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ToRecord(got), cmpOpts()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeFunctions(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	s := record.MustSchema(record.Field{Name: "t", Type: record.Timestamp}, record.Field{Name: "s", Type: record.String})
	utc := func(v string) time.Time {
		tt, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	tests := []struct {
		name string
		src  string
		t    string // value of field t, RFC 3339
		s    string
		want any
	}{
		// 2024-03-10 02:00 CST jumps to 03:00 CDT: the day is 23 hours long.
		{name: "day start before spring forward", src: `truncate_time(t, "day", "America/Chicago")`, t: "2024-03-10T12:00:00Z",
			want: time.Date(2024, 3, 10, 0, 0, 0, 0, chicago)},
		{name: "day is 23h on spring forward", src: `date_diff(add_duration(truncate_time(t, "day", "America/Chicago"), "24h"), truncate_time(t, "day", "America/Chicago"), "hour")`,
			t: "2024-03-10T12:00:00Z", want: int64(24)},
		{name: "next local midnight after spring forward", src: `format_time(add_duration(truncate_time(t, "day", "America/Chicago"), "23h"), "2006-01-02 15:04 MST", "America/Chicago")`,
			t: "2024-03-10T12:00:00Z", want: "2024-03-11 00:00 CDT"},
		// 2024-11-03 01:00-02:00 happens twice.
		{name: "hour in first 1am", src: `truncate_time(t, "hour", "America/Chicago")`, t: "2024-11-03T06:30:00Z", want: utc("2024-11-03T06:00:00Z")},
		{name: "hour in second 1am", src: `truncate_time(t, "hour", "America/Chicago")`, t: "2024-11-03T07:30:00Z", want: utc("2024-11-03T07:00:00Z")},
		{name: "day start on fall back", src: `truncate_time(t, "day", "America/Chicago")`, t: "2024-11-03T23:00:00Z", want: utc("2024-11-03T05:00:00Z")},
		{name: "week starts monday", src: `format_time(truncate_time(t, "week", "America/Chicago"), "2006-01-02 Mon", "America/Chicago")`, t: "2024-11-03T23:00:00Z", want: "2024-10-28 Mon"},
		{name: "month", src: `truncate_time(t, "month", "America/Chicago")`, t: "2024-11-01T03:00:00Z", want: time.Date(2024, 10, 1, 0, 0, 0, 0, chicago)},
		{name: "year", src: `truncate_time(t, "year")`, t: "2024-11-01T03:00:00Z", want: utc("2024-01-01T00:00:00Z")},
		{name: "minute", src: `truncate_time(t, "minute")`, t: "2024-11-01T03:04:05.5Z", want: utc("2024-11-01T03:04:00Z")},
		{name: "to_date in zone", src: `to_date(t, "America/Chicago")`, t: "2024-03-10T03:00:00Z", want: mustDate(t, "2024-03-09")},
		{name: "to_date default zone", src: `to_date(t)`, t: "2024-03-10T03:00:00Z", want: mustDate(t, "2024-03-10")},
		{name: "to_date of text", src: `to_date("2024-02-29")`, want: mustDate(t, "2024-02-29")},
		{name: "parse local time in gap", src: `parse_time(s, "2006-01-02 15:04", "America/Chicago")`, s: "2024-03-10 01:59",
			want: utc("2024-03-10T07:59:00Z")},
		{name: "parse local time after gap", src: `parse_time(s, "2006-01-02 15:04", "America/Chicago")`, s: "2024-03-10 03:00",
			want: utc("2024-03-10T08:00:00Z")},
		{name: "parse rfc3339", src: `parse_time(s, "rfc3339")`, s: "2024-03-10T03:00:00.25+01:00", want: utc("2024-03-10T02:00:00.25Z")},
		{name: "parse empty is null", src: `parse_time(s, "rfc3339")`, s: "", want: nil},
		{name: "format rfc3339 in zone", src: `format_time(t, "rfc3339", "America/Chicago")`, t: "2024-07-01T12:00:00Z", want: "2024-07-01T07:00:00-05:00"},
		{name: "format date", src: `format_time(to_date(t), "date")`, t: "2024-07-01T12:00:00Z", want: "2024-07-01"},
		{name: "add negative duration", src: `add_duration(t, "-90m")`, t: "2024-07-01T12:00:00Z", want: utc("2024-07-01T10:30:00Z")},
		{name: "add days", src: `add_duration(t, "2d")`, t: "2024-07-01T12:00:00Z", want: utc("2024-07-03T12:00:00Z")},
		{name: "date_diff days", src: `date_diff(t, run_time, "day")`, t: "2024-07-01T12:00:00Z", want: int64(30)},
		{name: "null in, null out", src: `truncate_time(nil, "day")`, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.src, Env{Schema: s, RunTime: runTime})
			var tv any
			if tc.t != "" {
				tv = utc(tc.t)
			}
			got, err := p.NewEvaluator().Eval(record.Row{tv, tc.s})
			if err != nil {
				t.Fatal(err)
			}
			if w, ok := tc.want.(time.Time); ok {
				g, ok := got.(time.Time)
				if !ok || !g.Equal(w) {
					t.Errorf("got %v, want %v", got, w)
				}
				return
			}
			if diff := cmp.Diff(tc.want, ToRecord(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func mustDate(t *testing.T, s string) record.LocalDate {
	d, err := record.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDefaultLocation(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	e := Env{Schema: record.MustSchema(record.Field{Name: "t", Type: record.Timestamp}), Location: chicago}
	p := mustCompile(t, `format_time(truncate_time(t, "day"), "2006-01-02T15:04:05Z07:00")`, e)
	got, err := p.NewEvaluator().Eval(record.Row{time.Date(2024, 3, 10, 3, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if got != "2024-03-09T00:00:00-06:00" {
		t.Errorf("got %v, want the Chicago day start", got)
	}
}

func TestRunTimeIsTheRunsTime(t *testing.T) {
	p := mustCompile(t, `run_time`, env())
	a, b := p.NewEvaluator(), p.NewEvaluator()
	for i := range 3 {
		for _, ev := range []*Evaluator{a, b} {
			got, err := ev.Eval(orderRow())
			if err != nil {
				t.Fatal(err)
			}
			if got != runTime {
				t.Fatalf("evaluation %d: run_time = %v, want %v", i, got, runTime)
			}
		}
	}
	// A field named run_time hides the variable.
	s := record.MustSchema(record.Field{Name: "run_time", Type: record.String})
	p = mustCompile(t, `run_time`, Env{Schema: s, RunTime: runTime})
	if got, _ := p.NewEvaluator().Eval(record.Row{"field"}); got != "field" {
		t.Errorf("run_time with a field of that name = %v, want the field", got)
	}
}

func TestStringAndNumberFunctions(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{`lower("ÀB")`, "àb"},
		{`upper(name)`, "ADA"},
		{`trim("  x ")`, "x"},
		{`lower(nil)`, nil},
		{`concat(name, "-", qty, "-", unit_price, nil, true)`, "Ada-3-19.99true"},
		{`substr("héllo", 1, 3)`, "éll"},
		{`substr("hello", -3)`, "llo"},
		{`substr("hello", 9)`, ""},
		{`replace("a-b-c", "-", "")`, "abc"},
		{`split("a,b", ",")[1]`, "b"},
		{`pad_left(qty, 4, "0")`, "0003"},
		{`pad_left("abcdef", 4, "0")`, "abcdef"},
		{`pad_left("x", 3)`, "  x"},
		{`to_string(unit_price)`, "19.99"},
		{`to_string(ordered_at)`, "2024-03-10T07:30:00Z"},
		{`to_string(nil)`, nil},
		{`coalesce(nil, "", name)`, "Ada"},
		{`coalesce(nil, nil)`, nil},
		{`round(2.5)`, 3.0},
		{`round(1.005, 2)`, 1.0},
		{`round(qty)`, int64(3)},
		{`floor(-1.5)`, -2.0},
		{`ceil(score)`, 1.0},
		{`abs(-qty)`, int64(3)},
		{`to_int("42")`, int64(42)},
		{`to_int("42.9")`, int64(42)},
		{`to_int(unit_price)`, int64(19)},
		{`to_int(true)`, int64(1)},
		{`to_float("1.5")`, 1.5},
		{`to_float(unit_price)`, 19.99},
		{`to_decimal("12.340")`, record.MustDec("12.340")},
		{`to_decimal(qty)`, record.MustDec("3")},
		{`sha256("abc")`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`sha256(qty) == sha256("3")`, true},
		{`len(name)`, int64(3)},
		{`abs(-2.5)`, 2.5},
		{`abs(to_decimal("-0.5"))`, record.MustDec("0.5")},
		{`floor(qty)`, int64(3)},
		{`ceil(-1.5)`, -1.0},
		{`to_float(qty) / 2`, 1.5},
		{`to_float(payload.f)`, 1.5},
		{`to_int(payload.n)`, int64(4)},
		{`to_decimal(payload.f)`, record.MustDec("1.5")},
		{`to_int("")`, nil},
		{`date_diff(run_time, ordered_at, "week")`, int64(11)},
		{`date_diff(run_time, ordered_at, "minute") > 100000`, true},
		{`name contains "d" && name startsWith "A" && name endsWith "a"`, true},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			p := mustCompile(t, tc.src, env())
			got, err := p.NewEvaluator().Eval(orderRow())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ToRecord(got), cmpOpts()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// failingTable answers every Get with an error, like a service that is down.
type failingTable struct{ *connector.Index }

func (failingTable) Get(context.Context, []any) (record.Row, bool, error) {
	return nil, false, errors.New("connection refused")
}

func lookups(t *testing.T) map[string]connector.Table {
	t.Helper()
	fxSchema := record.MustSchema(record.Field{Name: "currency", Type: record.String}, record.Field{Name: "rate", Type: record.Decimal})
	fx, err := connector.NewIndex(fxSchema, []string{"currency"})
	if err != nil {
		t.Fatal(err)
	}
	fx.Add(record.Row{"EUR", record.MustDec("1.10")})
	fx.Add(record.Row{"Ada", record.MustDec("2")})
	fx.Add(record.Row{"none", nil})
	two, err := connector.NewIndex(record.MustSchema(
		record.Field{Name: "a", Type: record.Int}, record.Field{Name: "b", Type: record.String}, record.Field{Name: "v", Type: record.JSON}), []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	two.Add(record.Row{int64(3), "shipped", map[string]any{"k": json.Number("5")}})
	return map[string]connector.Table{"fx": fx, "two": two, "down": failingTable{fx}}
}

func TestLookup(t *testing.T) {
	e := env()
	e.Lookups = lookups(t)
	tests := []struct {
		src  string
		row  func(record.Row)
		want any
	}{
		{src: `lookup("fx", name).rate * qty`, want: record.MustDec("6")},
		{src: `lookup("fx", "EUR").rate`, want: record.MustDec("1.10")},
		{src: `lookup("fx", "XXX")`, want: nil},
		{src: `lookup("fx", "XXX")?.rate ?? 1`, want: int64(1)},
		{src: `lookup("fx", name)`, row: func(r record.Row) { r[3] = nil }, want: nil},
		{src: `lookup("two", qty, status).v.k + 1`, want: int64(6)},
		{src: `lookup("two", 3, "shipped").a`, want: int64(3)},
		{src: `let n = "fx"; lookup(n, "EUR").rate > 1`, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			p := mustCompile(t, tc.src, e)
			row := orderRow()
			if tc.row != nil {
				tc.row(row)
			}
			got, err := p.NewEvaluator().Eval(row)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ToRecord(got), cmpOpts()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("service down is fatal", func(t *testing.T) {
		p := mustCompile(t, `lookup("down", name)?.rate`, e)
		_, err := p.NewEvaluator().Eval(orderRow())
		if !IsFatal(err) {
			t.Fatalf("Eval error = %v, want a fatal lookup error", err)
		}
		if !strings.Contains(err.Error(), `lookup "down": connection refused`) {
			t.Errorf("error %q does not name the lookup and cause", err)
		}
	})
	t.Run("dynamic name with a wrong key count is a record error", func(t *testing.T) {
		p := mustCompile(t, `lookup(status == "shipped" ? "two" : "fx", name)`, e)
		_, err := p.NewEvaluator().Eval(orderRow())
		if err == nil || IsFatal(err) || !strings.Contains(err.Error(), `lookup "two" takes 2 key value(s) (a, b), got 1`) {
			t.Errorf("Eval error = %v, want a record error about the key count", err)
		}
	})
	t.Run("context reaches the table", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		seen := &ctxTable{Index: e.Lookups["fx"].(*connector.Index)}
		e2 := e
		e2.Lookups = map[string]connector.Table{"fx": seen}
		p := mustCompile(t, `lookup("fx", "EUR")`, e2)
		if _, err := p.NewEvaluator().EvalContext(ctx, orderRow()); err != nil {
			t.Fatal(err)
		}
		if seen.err != context.Canceled {
			t.Errorf("table saw ctx.Err() = %v, want context.Canceled", seen.err)
		}
	})

	compileErrs := []struct {
		src  string
		want string
	}{
		{`lookup("fxx", name)`, "expression `lookup(\"fxx\", name)`: lookup \"fxx\" is not declared (did you mean \"fx\"?)"},
		{`lookup("customers", name)`, "expression `lookup(\"customers\", name)`: lookup \"customers\" is not declared (declared: down, fx, two)"},
		{`lookup("fx", name, qty)`, "expression `lookup(\"fx\", name, qty)`: lookup \"fx\" takes 1 key value(s) (currency), got 2"},
		{`lookup("fx", name).rat`, "expression `lookup(\"fx\", name).rat`: lookup \"fx\" has no field \"rat\" (did you mean \"rate\"?)"},
		{`lookup("fx")`, "expression `lookup(\"fx\")`: lookup: wrong number of arguments (1); usage: lookup(name string, key ...any) json"},
		{`lookup(qty, name)`, "expression `lookup(qty, name)`: lookup: argument 1 is int, want string; usage: lookup(name string, key ...any) json"},
	}
	for _, tc := range compileErrs {
		t.Run("compile "+tc.src, func(t *testing.T) {
			_, err := Compile(connector.Expr{Src: tc.src}, e)
			var pe *connector.PosError
			if !errors.As(err, &pe) || pe.Msg != tc.want {
				t.Errorf("Compile error:\n got %v\nwant %q", err, tc.want)
			}
		})
	}
}

type ctxTable struct {
	*connector.Index
	err error
}

func (c *ctxTable) Get(ctx context.Context, key []any) (record.Row, bool, error) {
	c.err = ctx.Err()
	return c.Index.Get(ctx, key)
}

func TestJSONValuesAreNotModified(t *testing.T) {
	row := orderRow()
	p := mustCompile(t, `payload.n + 1`, env())
	if _, err := p.NewEvaluator().Eval(row); err != nil {
		t.Fatal(err)
	}
	if n := row[9].(map[string]any)["n"]; n != json.Number("4") {
		t.Errorf("row's json value changed to %#v", n)
	}
}

func TestToRecord(t *testing.T) {
	tests := []struct {
		in   any
		want any
	}{
		{nil, nil},
		{int(5), int64(5)},
		{int32(5), int64(5)},
		{uint64(1 << 63), json.Number("9223372036854775808")},
		{float32(1.5), 1.5},
		{"s", "s"},
		{90 * time.Minute, "1h30m0s"},
		{[]string{"a"}, []any{"a"}},
		{map[string]any{"a": 1, "b": []any{2}}, map[string]any{"a": int64(1), "b": []any{int64(2)}}},
		{map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{[]int{1}, []any{int64(1)}},
		{record.MustDec("1.5"), record.MustDec("1.5")},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, ToRecord(tc.in), cmpOpts()); diff != "" {
			t.Errorf("ToRecord(%#v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// Every documented example must compile; fields it names are made up as
// values of type any.
func TestFunctionDocs(t *testing.T) {
	seen := map[string]bool{}
	unknownField := regexp.MustCompile(`unknown field "([^"]+)"`)
	for _, f := range Functions() {
		if f.Name == "" || f.Signature == "" || f.Doc == "" || f.Example == "" {
			t.Errorf("%q: incomplete doc %+v", f.Name, f)
		}
		if seen[f.Name] {
			t.Errorf("%q documented twice", f.Name)
		}
		seen[f.Name] = true
		if !strings.Contains(f.Signature, f.Name) {
			t.Errorf("%q: signature %q does not show the name", f.Name, f.Signature)
		}
		fields := []record.Field{}
		for range 10 {
			e := Env{Schema: record.MustSchema(fields...), Lookups: lookups(t)}
			_, err := Compile(connector.Expr{Src: f.Example}, e)
			if err == nil {
				break
			}
			m := unknownField.FindStringSubmatch(err.Error())
			if m == nil {
				t.Errorf("%s: example %q: %v", f.Name, f.Example, err)
				break
			}
			fields = append(fields, record.Field{Name: m[1], Type: record.Any})
		}
	}
}

func TestEvaluatorsInParallel(t *testing.T) {
	p := mustCompile(t, `qty * unit_price + to_decimal(order_id)`, env())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := p.NewEvaluator()
			for i := range 2000 {
				row := orderRow()
				row[0] = int64(g*10000 + i)
				got, err := ev.Eval(row)
				if err != nil {
					errs <- err
					return
				}
				want := record.MustDec("59.97").Add(record.DecFromInt(int64(g*10000 + i)))
				if got.(record.Dec).Cmp(want) != 0 {
					errs <- errors.New("wrong result " + got.(record.Dec).String())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFieldsNamedLikeFunctions(t *testing.T) {
	s := record.MustSchema(
		record.Field{Name: "floor", Type: record.Float},
		record.Field{Name: "lower", Type: record.String},
		record.Field{Name: "lookup", Type: record.String},
	)
	e := Env{Schema: s, Lookups: lookups(t)}
	row := record.Row{2.5, "EUR", "EUR"}
	tests := []struct {
		src  string
		want any
	}{
		{`floor(floor)`, 2.0},
		{`floor > 2`, true},
		{`lower(lower)`, "eur"},
		{`lookup("fx", lookup).rate`, record.MustDec("1.10")},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			got, err := mustCompile(t, tc.src, e).NewEvaluator().Eval(row)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ToRecord(got), cmpOpts()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Compile(connector.Expr{Src: `lookup("fxx", lookup)`}, e); err == nil || !strings.Contains(err.Error(), `lookup "fxx" is not declared`) {
		t.Errorf("undeclared lookup through an alias: error %v", err)
	}
}
