package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var orders = record.MustSchema(
	record.Field{Name: "order_id", Type: record.Int},
	record.Field{Name: "customer_id", Type: record.Int},
	record.Field{Name: "qty", Type: record.Int},
	record.Field{Name: "unit_price", Type: record.Decimal},
	record.Field{Name: "status", Type: record.String},
	record.Field{Name: "ordered_at", Type: record.Timestamp},
)

var runTime = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func order(id, customer, qty int64, price, status string) record.Row {
	var p any
	if price != "" {
		p = record.MustDec(price)
	}
	var st any
	if status != "" {
		st = status
	}
	return record.Row{id, customer, qty, p, st, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
}

func orderRows() []record.Row {
	return []record.Row{
		order(1, 42, 2, "10.50", "shipped"),
		order(2, 7, 1, "0.10", "cancelled"),
		order(3, 42, 0, "3.00", "new"),
		order(4, 99, 5, "", "shipped"),
	}
}

// customers is a preloaded lookup keyed by customer_id.
func customers(t testing.TB) connector.Table {
	t.Helper()
	s := record.MustSchema(
		record.Field{Name: "customer_id", Type: record.Int},
		record.Field{Name: "region", Type: record.String},
		record.Field{Name: "tier", Type: record.Int},
	)
	ix, err := connector.NewIndex(s, []string{"customer_id"})
	if err != nil {
		t.Fatal(err)
	}
	ix.Add(record.Row{int64(42), "eu", int64(1)})
	ix.Add(record.Row{int64(7), "us", int64(2)})
	return ix
}

// downTable is a lookup whose service does not answer.
type downTable struct{ connector.Table }

func (downTable) Get(context.Context, []any) (record.Row, bool, error) {
	return nil, false, errors.New("dial tcp: connection refused")
}

func stepEnv(t testing.TB) *connector.StepEnv {
	return &connector.StepEnv{
		Env:     &connector.Env{Pipeline: "p", RunTime: runTime, Location: time.UTC},
		Name:    "step[1]",
		Lookups: map[string]connector.Table{"customers": customers(t), "down": downTable{customers(t)}},
	}
}

// build makes a step from its YAML as written under `steps:` ("- filter:
// qty > 0"), through the registry, handing the factory the step's value as
// the config package does.
func build(t testing.TB, src string) (connector.Step, error) {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	body := p.(*connector.NodeParams).Node
	if seq, ok := body.(*ast.SequenceNode); ok {
		body = seq.Values[0]
	}
	var mv *ast.MappingValueNode
	switch n := body.(type) {
	case *ast.MappingNode:
		mv = n.Values[0]
	case *ast.MappingValueNode:
		mv = n
	default:
		t.Fatalf("%q is not a step", src)
	}
	kind := mv.Key.GetToken().Value
	r := connector.NewRegistry()
	Register(r)
	e, ok := r.Get(connector.KindStep, kind)
	if !ok {
		t.Fatalf("no step %q", kind)
	}
	return e.Step(&connector.NodeParams{Node: mv.Value, File: "p.yaml"})
}

func bind(t testing.TB, src string, in *record.Schema) (connector.Step, *record.Schema, error) {
	t.Helper()
	s, err := build(t, src)
	if err != nil {
		return nil, nil, err
	}
	out, err := s.Bind(in, stepEnv(t))
	return s, out, err
}

type reject struct{ Step, Field, Err string }

type result struct {
	Schema   string
	Rows     []record.Row
	Lines    []int64
	Rejects  []reject
	Filtered int
}

// process runs rows through a step as one batch and checks that no record
// went missing.
func process(t *testing.T, s connector.Step, in *record.Schema, rows []record.Row) result {
	t.Helper()
	b := &record.Batch{Schema: in, Read: len(rows)}
	for i, r := range rows {
		b.Rows = append(b.Rows, append(record.Row(nil), r...))
		b.Lines = append(b.Lines, int64(i+1))
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatalf("Process: %v", err)
	}
	if got := len(b.Rows) + len(b.Rejects) + b.Filtered; got != len(rows) {
		t.Fatalf("conservation: %d rows + %d rejects + %d filtered = %d, want %d", len(b.Rows), len(b.Rejects), b.Filtered, got, len(rows))
	}
	for _, r := range b.Rows {
		if len(r) != b.Schema.Len() {
			t.Fatalf("row %v has %d values, schema %d", r, len(r), b.Schema.Len())
		}
	}
	res := result{Schema: b.Schema.String(), Rows: b.Rows, Lines: b.Lines, Filtered: b.Filtered}
	if len(res.Rows) == 0 {
		res.Rows, res.Lines = nil, nil
	}
	for _, r := range b.Rejects {
		if len(r.Raw) == 0 || !json.Valid(r.Raw) {
			t.Errorf("reject %+v: raw %q is not the record as JSON", r, r.Raw)
		}
		res.Rejects = append(res.Rejects, reject{Step: r.Step, Field: r.Field, Err: r.Err})
	}
	return res
}

var decCmp = cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 && a.Scale() == b.Scale() })

type stepCase struct {
	name string
	yaml string
	in   *record.Schema // orders when nil
	rows []record.Row   // orderRows() when nil
	want result
}

func runCases(t *testing.T, cases []stepCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in == nil {
				in = orders
			}
			rows := tc.rows
			if rows == nil {
				rows = orderRows()
			}
			s, out, err := bind(t, tc.yaml, in)
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			got := process(t, s, in, rows)
			if got.Schema != out.String() {
				t.Errorf("batch schema %q, Bind said %q", got.Schema, out)
			}
			if tc.want.Lines == nil {
				got.Lines = nil
			}
			if diff := cmp.Diff(tc.want, got, decCmp); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

const ordersSchema = "order_id int, customer_id int, qty int, unit_price decimal, status string, ordered_at timestamp"

func TestFilter(t *testing.T) {
	rows := orderRows()
	runCases(t, []stepCase{
		{
			name: "keeps what holds",
			yaml: `- filter: status != "cancelled"`,
			want: result{Schema: ordersSchema, Rows: []record.Row{rows[0], rows[2], rows[3]}, Lines: []int64{1, 3, 4}, Filtered: 1},
		},
		{
			name: "null status is not cancelled",
			yaml: `- filter: status != "cancelled"`,
			rows: []record.Row{order(9, 1, 1, "1", "")},
			want: result{Schema: ordersSchema, Rows: []record.Row{order(9, 1, 1, "1", "")}},
		},
		{
			name: "decimal condition; null price rejects",
			yaml: "- filter: qty * unit_price > 5",
			want: result{
				Schema: ordersSchema, Rows: []record.Row{rows[0]}, Filtered: 2,
				Rejects: []reject{{Step: "step[1]", Err: "expression `qty * unit_price > 5`: invalid operation: int * null (qty=5, unit_price=null)"}},
			},
		},
		{
			name: "null result rejects",
			yaml: "- filter: 'status == \"new\" ? nil : true'",
			want: result{
				Schema: ordersSchema, Rows: []record.Row{rows[0], rows[1], rows[3]},
				Rejects: []reject{{Step: "step[1]", Err: "the condition `status == \"new\" ? nil : true` gave null, not true or false (status=\"new\")"}},
			},
		},
		{
			name: "quoted block scalar",
			yaml: "- filter: |\n    qty > 0 &&\n      status in [\"shipped\", \"new\"]\n",
			want: result{Schema: ordersSchema, Rows: []record.Row{rows[0], rows[3]}, Filtered: 2},
		},
	})
}

// A filter evaluates its condition over runs of records: records it fails
// on, or that give null, are rejected where they stand, in order, and the
// records around them are kept or dropped as the condition says.
func TestFilterOverRunsOfRecords(t *testing.T) {
	s, _, err := bind(t, "- filter: 'qty * unit_price > 5 && (status == \"new\" ? nil : status != \"cancelled\")'", orders)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	b := &record.Batch{Schema: orders}
	var kept, rejected []int64
	filtered := 0
	for i := range 1000 {
		price := fmt.Sprintf("%d.50", rng.IntN(6))
		if rng.IntN(15) == 0 {
			price = ""
		}
		status := []string{"shipped", "new", "cancelled", "paid", "paid"}[rng.IntN(5)]
		qty := int64(rng.IntN(3))
		b.Rows = append(b.Rows, order(int64(i), 1, qty, price, status))
		b.Lines = append(b.Lines, int64(i+1))
		b.Read++
		switch {
		case price == "": // int * null
			rejected = append(rejected, int64(i+1))
		case record.MustDec(price).Mul(record.DecFromInt(qty)).Cmp(record.DecFromInt(5)) <= 0:
			filtered++ // false && anything is false
		case status == "new": // true && null
			rejected = append(rejected, int64(i+1))
		case status == "cancelled":
			filtered++
		default:
			kept = append(kept, int64(i+1))
		}
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var lines []int64
	for _, r := range b.Rejects {
		lines = append(lines, r.Line)
	}
	if diff := cmp.Diff(kept, b.Lines); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rejected, lines); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
	if b.Filtered != filtered || len(b.Rows) != len(kept) {
		t.Errorf("filtered %d, want %d; %d rows, want %d", b.Filtered, filtered, len(b.Rows), len(kept))
	}
}

func TestMap(t *testing.T) {
	rows := orderRows()
	dec := record.MustDec
	runCases(t, []stepCase{
		{
			name: "new decimal field; null input rejects naming the field",
			yaml: "- map: { total: qty * unit_price }",
			want: result{
				Schema: ordersSchema + ", total decimal",
				Rows: []record.Row{
					append(append(record.Row(nil), rows[0]...), dec("21.00")),
					append(append(record.Row(nil), rows[1]...), dec("0.10")),
					append(append(record.Row(nil), rows[2]...), dec("0.00")),
				},
				Rejects: []reject{{Step: "step[1]", Field: "total",
					Err: "field \"total\": expression `qty * unit_price`: invalid operation: int * null (qty=5, unit_price=null)"}},
			},
		},
		{
			name: "later entries see earlier ones; replace changes the type",
			yaml: "- map:\n    total: qty * coalesce(unit_price, to_decimal(0))\n    status: upper(status)\n    qty: to_string(qty)\n    big: total > 10\n",
			rows: rows[:2],
			want: result{
				Schema: "order_id int, customer_id int, qty string, unit_price decimal, status string, ordered_at timestamp, total decimal, big bool",
				Rows: []record.Row{
					{int64(1), int64(42), "2", dec("10.50"), "SHIPPED", rows[0][5], dec("21.00"), true},
					{int64(2), int64(7), "1", dec("0.10"), "CANCELLED", rows[1][5], dec("0.10"), false},
				},
			},
		},
		{
			name: "ints come back as int64, json as any",
			yaml: "- map:\n    n: qty + 1\n    day: to_date(ordered_at)\n    tags: split(\"a,b\", \",\")\n",
			rows: rows[:1],
			want: result{
				Schema: ordersSchema + ", n int, day date, tags json",
				Rows:   []record.Row{append(append(record.Row(nil), rows[0]...), int64(3), record.LocalDate(19844), []any{"a", "b"})},
			},
		},
		{
			name: "lookup in an expression: the lookup field's type",
			yaml: "- map:\n    region: lookup(\"customers\", customer_id)?.region ?? \"unknown\"\n",
			rows: rows[2:],
			want: result{
				Schema: ordersSchema + ", region string",
				Rows: []record.Row{
					append(append(record.Row(nil), rows[2]...), "eu"),
					append(append(record.Row(nil), rows[3]...), "unknown"),
				},
			},
		},
	})
}

// TestMapRejectsTheRecordAsItCame: a record that an entry rejects leaves
// the map as it came, whatever the entries before that one set, and the
// records around it get every entry.
func TestMapRejectsTheRecordAsItCame(t *testing.T) {
	s, _, err := bind(t, "- map:\n    status: upper(status)\n    total: qty * unit_price\n    qty: qty + 1\n", orders)
	if err != nil {
		t.Fatal(err)
	}
	rows := orderRows() // the fourth has no unit_price
	b := &record.Batch{Schema: orders, Read: len(rows)}
	for _, r := range append(rows, rows...) {
		b.Rows = append(b.Rows, append(record.Row(nil), r...))
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Rows) != 6 || len(b.Rejects) != 2 {
		t.Fatalf("%d rows and %d rejects, want 6 and 2", len(b.Rows), len(b.Rejects))
	}
	want := string(record.RowJSON(orders, rows[3]))
	for _, rj := range b.Rejects {
		if string(rj.Raw) != want || rj.Field != "total" {
			t.Errorf("reject of %q: %s, want the record as it came: %s", rj.Field, rj.Raw, want)
		}
	}
	for i, r := range b.Rows {
		src := rows[[]int{0, 1, 2, 0, 1, 2}[i]]
		if r[4] != strings.ToUpper(src[4].(string)) || r[2] != src[2].(int64)+1 || r[6] == nil {
			t.Errorf("row %d: %v, want every entry applied to %v", i, r, src)
		}
	}
}

// A map evaluates an entry over the batch at a time: it gives what
// evaluating record by record gives (values, rejects in record order, each
// record rejected as it came, the fields replaced given back), whichever
// entries fail on which records, natively or on the VM.
func TestMapOverTheBatchMatchesRecordByRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rows []record.Row
	for i := range 300 {
		price := fmt.Sprintf("%d.%02d", rng.IntN(50), rng.IntN(100))
		status := []string{"shipped", "new", "cancelled"}[rng.IntN(3)]
		if rng.IntN(10) == 0 {
			price = ""
		}
		if rng.IntN(12) == 0 {
			status = ""
		}
		rows = append(rows, order(int64(i), int64(rng.IntN(5)), int64(rng.IntN(4)), price, status))
	}
	for _, src := range []string{
		"- map: { total: qty * unit_price }",
		"- map:\n    total: qty * unit_price\n    loud: upper(status)\n    each: total / qty\n    tag: status + \"!\"\n",
		"- map:\n    tag: status + \"!\"\n    total: qty * unit_price + 1\n    big: 'total > 10 ? \"big\" : nil'\n",
		"- map:\n    n: order_id % (qty + 0)\n    m: n * 2\n",
		// replacing fields, of the same type and of another
		"- map:\n    status: upper(status)\n    qty: qty * 2\n    unit_price: unit_price * qty\n    tag: status + \"!\"\n",
		"- map:\n    qty: to_string(qty)\n    unit_price: 'unit_price > 20 ? unit_price : nil'\n    status: status + qty\n",
	} {
		t.Run(src, func(t *testing.T) {
			s, _, err := bind(t, src, orders)
			if err != nil {
				t.Fatal(err)
			}
			batch := func(rows []record.Row, first int) *record.Batch {
				b := &record.Batch{Schema: orders, Read: len(rows)}
				for i, r := range rows {
					b.Rows = append(b.Rows, append(record.Row(nil), r...))
					b.Lines = append(b.Lines, int64(first+i+1))
				}
				return b
			}
			whole := batch(rows, 0)
			if err := s.Process(context.Background(), whole); err != nil {
				t.Fatal(err)
			}
			each := &record.Batch{}
			for i, r := range rows {
				b := batch([]record.Row{r}, i)
				if err := s.Process(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				each.Rows, each.Lines = append(each.Rows, b.Rows...), append(each.Lines, b.Lines...)
				each.Rejects = append(each.Rejects, b.Rejects...)
			}
			if len(each.Rejects) == 0 && strings.Contains(src, "tag") {
				t.Fatal("no record rejected: the case tests nothing")
			}
			if diff := cmp.Diff(each.Rows, whole.Rows, decCmp); diff != "" {
				t.Errorf("rows (-record by record +the batch):\n%s", diff)
			}
			if diff := cmp.Diff(each.Rejects, whole.Rejects); diff != "" {
				t.Errorf("rejects (-record by record +the batch):\n%s", diff)
			}
			if diff := cmp.Diff(each.Lines, whole.Lines); diff != "" {
				t.Errorf("lines (-record by record +the batch):\n%s", diff)
			}
		})
	}
}

func TestSchemaSteps(t *testing.T) {
	rows := orderRows()[:2]
	runCases(t, []stepCase{
		{
			name: "select reorders",
			yaml: "- select: [status, order_id]",
			rows: rows,
			want: result{Schema: "status string, order_id int", Rows: []record.Row{{"shipped", int64(1)}, {"cancelled", int64(2)}}},
		},
		{
			name: "select one as a scalar",
			yaml: "- select: qty",
			rows: rows,
			want: result{Schema: "qty int", Rows: []record.Row{{int64(2)}, {int64(1)}}},
		},
		{
			name: "drop",
			yaml: "- drop: [ordered_at, unit_price, customer_id]",
			rows: rows,
			want: result{Schema: "order_id int, qty int, status string", Rows: []record.Row{{int64(1), int64(2), "shipped"}, {int64(2), int64(1), "cancelled"}}},
		},
		{
			name: "rename, including a swap",
			yaml: "- rename: { status: state, qty: customer_id, customer_id: qty }",
			rows: rows,
			want: result{Schema: "order_id int, qty int, customer_id int, unit_price decimal, state string, ordered_at timestamp", Rows: rows},
		},
	})
}

func TestCast(t *testing.T) {
	in := record.MustSchema(
		record.Field{Name: "id", Type: record.String},
		record.Field{Name: "qty", Type: record.String},
		record.Field{Name: "price", Type: record.String},
		record.Field{Name: "at", Type: record.String},
	)
	runCases(t, []stepCase{
		{
			name: "converts or rejects naming field, value and reason",
			yaml: "- cast: { qty: int, price: decimal, at: timestamp }",
			in:   in,
			rows: []record.Row{
				{"a", "3", "1.50", "2024-05-01 10:00:00"},
				{"b", "three", "1.50", "2024-05-01"},
				{"c", "4", "1.5.0", "2024-05-01"},
				{"d", nil, nil, nil},
			},
			want: result{
				Schema: "id string, qty int, price decimal, at timestamp",
				Rows: []record.Row{
					{"a", int64(3), record.MustDec("1.50"), time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
					{"d", nil, nil, nil},
				},
				Lines: []int64{1, 4},
				Rejects: []reject{
					{Step: "step[1]", Field: "qty", Err: `field "qty": value "three" is not a valid int: not an integer`},
					{Step: "step[1]", Field: "price", Err: `field "price": value "1.5.0" is not a valid decimal: not a decimal number`},
				},
			},
		},
		{
			name: "int to string",
			yaml: "- cast: { qty: string }",
			rows: orderRows()[:1],
			want: result{
				Schema: "order_id int, customer_id int, qty string, unit_price decimal, status string, ordered_at timestamp",
				Rows:   []record.Row{{int64(1), int64(42), "2", record.MustDec("10.50"), "shipped", orderRows()[0][5]}},
			},
		},
	})
}

func TestValidate(t *testing.T) {
	rows := orderRows()
	runCases(t, []stepCase{
		{
			name: "first failing check wins",
			yaml: "- validate:\n" +
				"    - { check: \"qty > 0\", message: \"qty must be positive\" }\n" +
				"    - check: unit_price != nil\n" +
				"      message: price is missing\n" +
				"      field: unit_price\n" +
				"    - check: status != \"cancelled\" || qty < 2\n",
			want: result{
				Schema: ordersSchema,
				Rows:   []record.Row{rows[0], rows[1]},
				Rejects: []reject{
					{Step: "step[1]", Field: "qty", Err: "qty must be positive (qty=0)"},
					{Step: "step[1]", Field: "unit_price", Err: "price is missing (unit_price=null)"},
				},
			},
		},
		{
			name: "a check that fails to evaluate rejects with the reason",
			yaml: "- validate: [ { check: \"unit_price > 1\" } ]",
			rows: rows[3:],
			want: result{
				Schema: ordersSchema,
				Rejects: []reject{{Step: "step[1]", Field: "unit_price",
					Err: "check `unit_price > 1` failed: expression `unit_price > 1`: invalid operation: null > int (unit_price=null)"}},
			},
		},
	})
}

// Validate evaluates each check over runs of the records the checks before
// left: every record is rejected by its first failing check, with that
// check's reason, the rejects in record order, and the others kept.
func TestValidateOverRunsOfRecords(t *testing.T) {
	s, _, err := bind(t, "- validate:\n"+
		"    - { check: \"qty > 0\", message: \"qty must be positive\" }\n"+
		"    - { check: \"unit_price < 4\", message: \"too dear\", field: unit_price }\n"+
		"    - { check: 'status == \"new\" ? nil : status != \"cancelled\"', message: \"cancelled\" }\n", orders)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	b := &record.Batch{Schema: orders}
	var kept []int64
	var want []string
	for i := range 1000 {
		price := fmt.Sprintf("%d.50", rng.IntN(5))
		if rng.IntN(12) == 0 {
			price = ""
		}
		status := []string{"shipped", "new", "cancelled", "paid", "paid", "paid"}[rng.IntN(6)]
		qty := int64(rng.IntN(8))
		b.Rows = append(b.Rows, order(int64(i), 1, qty, price, status))
		b.Lines = append(b.Lines, int64(i+1))
		b.Read++
		line := fmt.Sprintf("%d ", i+1)
		switch {
		case qty == 0:
			want = append(want, line+"qty: qty must be positive (qty=0)")
		case price == "":
			want = append(want, line+"unit_price: too dear: expression `unit_price < 4`: invalid operation: null < int (unit_price=null)")
		case record.MustDec(price).Cmp(record.DecFromInt(4)) >= 0:
			want = append(want, line+"unit_price: too dear (unit_price="+price+")")
		case status == "new":
			want = append(want, line+"status: cancelled (status=\"new\")")
		case status == "cancelled":
			want = append(want, line+"status: cancelled (status=\"cancelled\")")
		default:
			kept = append(kept, int64(i+1))
		}
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range b.Rejects {
		got = append(got, fmt.Sprintf("%d %s: %s", r.Line, r.Field, r.Err))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(kept, b.Lines); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}

func TestEnrich(t *testing.T) {
	rows := orderRows()
	with := func(r record.Row, extra ...any) record.Row { return append(append(record.Row(nil), r...), extra...) }
	runCases(t, []stepCase{
		{
			name: "missing rejects by default",
			yaml: "- enrich: { lookup: customers, on: customer_id }",
			want: result{
				Schema:  ordersSchema + ", region string, tier int",
				Rows:    []record.Row{with(rows[0], "eu", int64(1)), with(rows[1], "us", int64(2)), with(rows[2], "eu", int64(1))},
				Rejects: []reject{{Step: "step[1]", Field: "customer_id", Err: "no customers row for customer_id=99"}},
			},
		},
		{
			name: "missing null, chosen fields with a prefix",
			yaml: "- enrich: { lookup: customers, on: [customer_id], fields: [tier], prefix: cust_, missing: null }",
			rows: rows[2:],
			want: result{
				Schema: ordersSchema + ", cust_tier int",
				Rows:   []record.Row{with(rows[2], int64(1)), with(rows[3], nil)},
			},
		},
		{
			name: "missing drop; null key is missing",
			yaml: "- enrich:\n    lookup: customers\n    on: customer_id\n    fields: [region]\n    missing: drop\n",
			rows: []record.Row{rows[0], rows[3], {int64(5), nil, int64(1), nil, nil, nil}},
			want: result{Schema: ordersSchema + ", region string", Rows: []record.Row{with(rows[0], "eu")}, Filtered: 2},
		},
	})

	t.Run("a lookup that cannot answer fails the run", func(t *testing.T) {
		s, _, err := bind(t, "- enrich: { lookup: down, on: customer_id }", orders)
		if err != nil {
			t.Fatal(err)
		}
		b := &record.Batch{Schema: orders, Rows: orderRows()}
		err = s.Process(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), `step[1]: lookup "down": dial tcp: connection refused`) {
			t.Fatalf("Process error = %v, want the lookup failure", err)
		}
		if len(b.Rejects) != 0 {
			t.Errorf("records were rejected (%v) instead of failing the run", b.Rejects)
		}
	})
}

func TestDedupe(t *testing.T) {
	rows := []record.Row{
		order(1, 42, 2, "10.50", "a"),
		order(1, 42, 3, "10.5", "b"),
		order(2, 42, 2, "10.50", "c"),
		order(1, 43, 2, "10.50", "d"),
		{int64(3), nil, int64(1), nil, "e", nil},
		{int64(3), nil, int64(1), nil, "f", nil},
	}
	runCases(t, []stepCase{
		{
			name: "first of each key",
			yaml: "- dedupe: { key: [order_id, customer_id] }",
			rows: rows,
			want: result{Schema: ordersSchema, Rows: []record.Row{rows[0], rows[2], rows[3], rows[4]}, Lines: []int64{1, 3, 4, 5}, Filtered: 2},
		},
		{
			name: "shorthand list",
			yaml: "- dedupe: [order_id, customer_id]",
			rows: rows,
			want: result{Schema: ordersSchema, Rows: []record.Row{rows[0], rows[2], rows[3], rows[4]}, Filtered: 2},
		},
		{
			name: "decimals compare by value",
			yaml: "- dedupe: { key: unit_price }",
			rows: rows,
			want: result{Schema: ordersSchema, Rows: []record.Row{rows[0], rows[4]}, Filtered: 4},
		},
		{
			name: "text null is not null",
			yaml: "- dedupe: { key: status }",
			rows: []record.Row{order(1, 1, 1, "1", "null"), order(2, 1, 1, "1", "")},
			want: result{Schema: ordersSchema, Rows: []record.Row{order(1, 1, 1, "1", "null"), order(2, 1, 1, "1", "")}},
		},
	})

	t.Run("keys are remembered across batches, forgotten by a new run", func(t *testing.T) {
		s, _, err := bind(t, "- dedupe: { key: order_id }", orders)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := s.(connector.Ordered); !ok || !o.Ordered() {
			t.Fatal("dedupe is not Ordered")
		}
		if got := process(t, s, orders, orderRows()[:2]); got.Filtered != 0 {
			t.Fatalf("first batch filtered %d", got.Filtered)
		}
		if got := process(t, s, orders, orderRows()); got.Filtered != 2 || len(got.Rows) != 2 {
			t.Fatalf("second batch: %d rows, %d filtered; want 2 and 2", len(got.Rows), got.Filtered)
		}
		if _, err := s.Bind(orders, stepEnv(t)); err != nil {
			t.Fatal(err)
		}
		if got := process(t, s, orders, orderRows()); got.Filtered != 0 {
			t.Fatalf("after a new Bind: filtered %d, want 0", got.Filtered)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"filter unknown field", `- filter: qyt > 1`, "p.yaml:1:11: expression `qyt > 1`: unknown field \"qyt\" (did you mean \"qty\"?)"},
		{"filter quoted", `- filter: "qty > 0 && staus == 'x'"`, "p.yaml:1:23: expression `qty > 0 && staus == 'x'`: unknown field \"staus\" (did you mean \"status\"?)"},
		{"filter block second line", "- filter: |\n    qty > 0 &&\n      naem == \"x\"\n", "p.yaml:3:7: expression `qty > 0 && naem == \"x\"`: unknown field \"naem\" (fields: order_id, customer_id, qty, unit_price, status, ordered_at)"},
		{"filter folded block", "- filter: >-\n      status != \"x\" && qty * status > 1\n", "p.yaml:2:28: expression `status != \"x\" && qty * status > 1`: invalid operation: int * string"},
		{"filter not bool", `- filter: qty + 1`, "p.yaml:1:11: filter: the condition `qty + 1` is of type int, want bool"},
		{"filter string times number", `- filter: status * 2 > 1`, "p.yaml:1:18: expression `status * 2 > 1`: invalid operation: string * int"},
		{"map bad expression", "- map:\n    total: qty * unit_prce\n", "p.yaml:2:18: expression `qty * unit_prce`: unknown field \"unit_prce\" (did you mean \"unit_price\"?)"},
		{"map later entry sees earlier", "- map:\n    a: qty\n    b: a * status\n", "p.yaml:3:10: expression `a * status`: invalid operation: int * string"},
		{"map undeclared lookup", "- map: { r: 'lookup(\"customer\", customer_id).region' }", "p.yaml:1:21: expression `lookup(\"customer\", customer_id).region`: lookup \"customer\" is not declared (did you mean \"customers\"?)"},
		{"select unknown", "- select: [order_id, stauts]", "p.yaml:1:22: select: unknown field \"stauts\" (did you mean \"status\"?)"},
		{"select twice", "- select: [qty, qty]", "p.yaml:1:17: select: field \"qty\" is named twice"},
		{"drop all", "- drop: [order_id, customer_id, qty, unit_price, status, ordered_at]", "p.yaml:1:9: drop: every field would be dropped"},
		{"drop unknown", "- drop:\n    - nope\n", "p.yaml:2:7: drop: unknown field \"nope\" (fields: order_id, customer_id, qty, unit_price, status, ordered_at)"},
		{"rename unknown", "- rename: { stat: state }", "p.yaml:1:13: rename: unknown field \"stat\" (did you mean \"status\"?)"},
		{"rename clash", "- rename: { status: qty }", "p.yaml:1:21: rename: renaming \"status\" to \"qty\" clashes with another field named \"qty\""},
		{"cast unknown type", "- cast: { qty: integr }", "p.yaml:1:16: cast: field \"qty\": unknown type \"integr\" (want one of string, int, float, decimal, bool, timestamp, date, bytes, json)"},
		{"validate block check", "- validate:\n    - check: |\n        qty > 0 &&\n          naem == 1\n      message: x\n", "p.yaml:4:11: expression `qty > 0 && naem == 1`: unknown field \"naem\" (fields: order_id, customer_id, qty, unit_price, status, ordered_at)"},
		{"validate not bool", "- validate:\n    - check: qty\n", "p.yaml:2:14: validate: the check `qty` is of type int, want bool"},
		{"validate unknown field", "- validate: [ { check: \"qty > 0\", field: qyt } ]", "p.yaml:1:42: validate: unknown field \"qyt\" (did you mean \"qty\"?)"},
		{"enrich undeclared", "- enrich: { lookup: custmers, on: customer_id }", "p.yaml:1:21: enrich: lookup \"custmers\" is not declared (did you mean \"customers\"? declared: customers, down)"},
		{"enrich key count", "- enrich: { lookup: customers, on: [customer_id, qty] }", "p.yaml:1:36: enrich: lookup \"customers\" is keyed by customer_id (1 field(s)); on names 2"},
		{"enrich unknown on", "- enrich: { lookup: customers, on: cust_id }", "p.yaml:1:36: enrich: unknown field \"cust_id\" (fields: order_id, customer_id, qty, unit_price, status, ordered_at)"},
		{"enrich unknown table field", "- enrich: { lookup: customers, on: customer_id, fields: [regin] }", "p.yaml:1:58: enrich: lookup \"customers\" has no field \"regin\" (did you mean \"region\"?)"},
		{"enrich clash", "- enrich: { lookup: customers, on: customer_id, fields: [customer_id] }", "p.yaml:1:58: enrich: field \"customer_id\" already flows into the step; set a prefix (or select fewer fields)"},
		{"enrich missing enum", "- enrich: { lookup: customers, on: customer_id, missing: skip }", "p.yaml:1:58: enrich: missing: \"skip\" is not one of reject, null, drop"},
		{"dedupe unknown", "- dedupe: { key: [order_idd] }", "p.yaml:1:19: dedupe: unknown field \"order_idd\" (did you mean \"order_id\"?)"},
		{"map empty", "- map: {}", "p.yaml:1:8: map: no fields to set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := bind(t, tc.yaml, orders)
			var pe *connector.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *connector.PosError", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// Process is called from several goroutines at once: every goroutine gets
// its own evaluators, and results do not mix.
func TestConcurrentProcess(t *testing.T) {
	steps := []string{
		"- filter: qty * unit_price >= to_decimal(0)",
		"- map: { total: qty * unit_price, label: 'concat(status, \"-\", order_id)' }",
		"- validate: [ { check: \"qty < 1000000\" } ]",
		"- enrich: { lookup: customers, on: customer_id, missing: null }",
	}
	for _, src := range steps {
		t.Run(src, func(t *testing.T) {
			s, out, err := bind(t, src, orders)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for round := range 50 {
						b := &record.Batch{Schema: orders}
						for i := range 64 {
							id := int64(g*100000 + round*100 + i)
							b.Rows = append(b.Rows, order(id, 42, id%7+1, "2.50", "shipped"))
						}
						if err := s.Process(context.Background(), b); err != nil {
							errs <- err
							return
						}
						if len(b.Rows) != 64 || !b.Schema.Equal(out) {
							errs <- fmt.Errorf("goroutine %d: %d rows, schema %s", g, len(b.Rows), b.Schema)
							return
						}
						for i, r := range b.Rows {
							if r[0] != int64(g*100000+round*100+i) {
								errs <- fmt.Errorf("goroutine %d got row %v", g, r[0])
								return
							}
							if strings.HasPrefix(src, "- map") {
								want := record.DecFromInt(r[2].(int64)).Mul(record.MustDec("2.50"))
								if r[6].(record.Dec).Cmp(want) != 0 {
									errs <- fmt.Errorf("row %v: total %v, want %v", r[0], r[6], want)
									return
								}
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	r := connector.NewRegistry()
	Register(r)
	want := []string{"cast", "dedupe", "drop", "enrich", "filter", "map", "rename", "select", "validate"}
	if diff := cmp.Diff(want, r.Names(connector.KindStep)); diff != "" {
		t.Fatalf("registered steps (-want +got):\n%s", diff)
	}
	for _, n := range want {
		e, _ := r.Get(connector.KindStep, n)
		sp := e.Spec
		if sp.Summary == "" || sp.Doc == "" || sp.Example == "" {
			t.Errorf("%s: spec lacks summary, doc or example", n)
		}
		if sp.Shape == connector.ShapeObject && len(sp.Fields) == 0 {
			t.Errorf("%s: object shape without fields", n)
		}
		if sp.Shape != connector.ShapeObject && sp.ValueDoc == "" {
			t.Errorf("%s: no ValueDoc", n)
		}
		// The example is a valid step that binds against the fields it names.
		in := orders
		extra := map[string][]record.Field{
			"map":    {{Name: "currency", Type: record.String}, {Name: "customer", Type: record.String}},
			"select": {{Name: "total", Type: record.Decimal}},
			"drop":   {{Name: "internal_note", Type: record.String}, {Name: "raw_payload", Type: record.JSON}},
		}
		if f, ok := extra[n]; ok {
			in = record.MustSchema(append(orders.Fields(), f...)...)
		}
		if n == "rename" {
			in = record.MustSchema(record.Field{Name: "cust_id", Type: record.Int}, record.Field{Name: "amt", Type: record.String})
		}
		env := stepEnv(t)
		fx, _ := connector.NewIndex(record.MustSchema(record.Field{Name: "currency", Type: record.String}, record.Field{Name: "rate", Type: record.Decimal}), []string{"currency"})
		env.Lookups["fx"] = fx
		s, err := build(t, sp.Example)
		if err != nil {
			t.Errorf("%s: example does not build: %v", n, err)
			continue
		}
		if _, err := s.Bind(in, env); err != nil {
			t.Errorf("%s: example does not bind: %v", n, err)
		}
	}
}

// A factory takes the step's value alone, as ParamsFromYAML gives it.
func TestFactoriesTakeTheValue(t *testing.T) {
	r := connector.NewRegistry()
	Register(r)
	tests := []struct {
		kind, value string
		want        string // schema out
	}{
		{"filter", `status != "cancelled"`, ordersSchema},
		{"map", "{ total: qty * unit_price }", ordersSchema + ", total decimal"},
		{"select", "[order_id]", "order_id int"},
		{"enrich", "{ lookup: customers, on: customer_id, fields: region }", ordersSchema + ", region string"},
		{"dedupe", "{ key: order_id }", ordersSchema},
	}
	for _, tc := range tests {
		p, err := connector.ParamsFromYAML(tc.value)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := r.Get(connector.KindStep, tc.kind)
		s, err := e.Step(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		out, err := s.Bind(orders, stepEnv(t))
		if err != nil {
			t.Fatalf("%s: Bind: %v", tc.kind, err)
		}
		if out.String() != tc.want {
			t.Errorf("%s: schema %q, want %q", tc.kind, out, tc.want)
		}
	}
	p, _ := connector.ParamsFromYAML("|\n  qty > 0 &&\n    qyt < 5\n")
	e, _ := r.Get(connector.KindStep, "filter")
	s, err := e.Step(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bind(orders, stepEnv(t)); err == nil || !strings.HasPrefix(err.Error(), "3:5: ") {
		t.Errorf("block expression error %v, want it at 3:5", err)
	}
}
