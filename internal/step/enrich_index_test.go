package step

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// tableOnly hides what a table is: enrich reads it by Get, row by row.
type tableOnly struct{ connector.Table }

// refreshed answers from an index it may replace, as a preload refreshed
// on a schedule does; its Get is never called by enrich.
type refreshed struct {
	connector.Table
	ix *connector.Index
}

func (r refreshed) Preloaded() *connector.Index { return r.ix }

func (refreshed) Get(context.Context, []any) (record.Row, bool, error) {
	panic("Get of a Preloaded table")
}

// Enriching from a preloaded index (read field by field, in passes) gives
// what enriching from any table by Get gives: rows, rejects, filtered.
func TestEnrichIndexAsAnyTable(t *testing.T) {
	rows := orderRows()
	rows = append(rows, record.Row{int64(5), nil, int64(1), nil, nil, nil}, record.Row{int64(6), int64(7), int64(2), nil, "new", nil})
	for _, src := range []string{
		"- enrich: { lookup: customers, on: customer_id }",
		"- enrich: { lookup: customers, on: [customer_id], fields: [tier], prefix: cust_, missing: null }",
		"- enrich: { lookup: customers, on: customer_id, fields: [region], missing: drop }",
		"- enrich: { lookup: customers, on: customer_id, fields: [tier, region], missing: reject }",
	} {
		t.Run(src, func(t *testing.T) {
			var got [3]*record.Batch
			ix := customers(t).(*connector.Index)
			for i, table := range []connector.Table{tableOnly{customers(t)}, customers(t), refreshed{ix, ix}} {
				s, err := build(t, src)
				if err != nil {
					t.Fatal(err)
				}
				env := stepEnv(t)
				env.Lookups = map[string]connector.Table{"customers": table}
				in := record.MustSchema(orders.Fields()...)
				if _, err := s.Bind(in, env); err != nil {
					t.Fatal(err)
				}
				b := &record.Batch{Schema: in, Read: len(rows)}
				for j, r := range rows {
					b.Rows = append(b.Rows, append(record.Row(nil), r...))
					b.Lines = append(b.Lines, int64(j+1))
				}
				if err := s.Process(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				if len(b.Rows)+len(b.Rejects)+b.Filtered != len(rows) {
					t.Fatalf("conservation: %d + %d + %d != %d", len(b.Rows), len(b.Rejects), b.Filtered, len(rows))
				}
				got[i] = b
			}
			other := got[0]
			for _, index := range got[1:] {
				if diff := cmp.Diff(other.Rows, index.Rows, decCmp); diff != "" {
					t.Errorf("rows (-by Get +from the index):\n%s", diff)
				}
				if diff := cmp.Diff(other.Rejects, index.Rejects); diff != "" {
					t.Errorf("rejects (-by Get +from the index):\n%s", diff)
				}
				if diff := cmp.Diff(other.Lines, index.Lines); diff != "" {
					t.Errorf("lines (-by Get +from the index):\n%s", diff)
				}
				if index.Filtered != other.Filtered || index.Schema.String() != other.Schema.String() {
					t.Errorf("filtered %d, %d; schema %s, %s", index.Filtered, other.Filtered, index.Schema, other.Schema)
				}
			}
		})
	}
}

// A field the lookup was loaded without is never added as nulls: enrich
// refuses to bind, and lookup(…).field reads the row whole, which fails.
func TestStepsRefuseFieldsNotLoaded(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "customer_id", Type: record.Int},
		record.Field{Name: "region", Type: record.String}, record.Field{Name: "tier", Type: record.Int})
	ix, err := connector.NewIndex(s, []string{"customer_id"})
	if err != nil {
		t.Fatal(err)
	}
	ix.Only([]string{"region"})
	ix.Add(record.Row{int64(42), "eu", int64(1)})
	in := record.MustSchema(orders.Fields()...)
	for _, tc := range []struct{ src, want string }{
		{"- enrich: { lookup: customers, on: customer_id, fields: [region] }", ""},
		{"- enrich: { lookup: customers, on: customer_id, fields: [tier] }", `lookup "customers" was loaded without its field "tier"`},
		{`- map: { t: 'lookup("customers", customer_id)?.region' }`, ""},
		{`- map: { t: 'lookup("customers", customer_id)?.tier' }`, `without its field "tier"`},
	} {
		st, err := build(t, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		env := stepEnv(t)
		env.Lookups = map[string]connector.Table{"customers": ix}
		_, err = st.Bind(in, env)
		if err == nil {
			b := &record.Batch{Schema: in, Rows: []record.Row{{int64(1), int64(42), int64(2), nil, nil, nil}}}
			err = st.Process(context.Background(), b)
		}
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}
}

// swapping is a preloaded table whose index a refresh replaces.
type swapping struct {
	connector.Table
	ix **connector.Index
}

func (s swapping) Preloaded() *connector.Index { return *s.ix }

// Texts added from a preloaded index (read as combinations of their values)
// come from the index the table holds when the batch is processed, and a
// key the index lacks adds nulls.
func TestEnrichFollowsARefreshedIndex(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "customer_id", Type: record.Int},
		record.Field{Name: "region", Type: record.String}, record.Field{Name: "segment", Type: record.String})
	index := func(region, segment string) *connector.Index {
		ix, err := connector.NewIndex(s, []string{"customer_id"})
		if err != nil {
			t.Fatal(err)
		}
		ix.Add(record.Row{int64(42), region, segment})
		ix.Add(record.Row{int64(7), "us", "retail"})
		return ix
	}
	cur := index("eu", "retail")
	st, err := build(t, "- enrich: { lookup: customers, on: customer_id, fields: [segment, region], missing: null }")
	if err != nil {
		t.Fatal(err)
	}
	env := stepEnv(t)
	env.Lookups = map[string]connector.Table{"customers": swapping{cur, &cur}}
	if _, err := st.Bind(orders, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][2]string{{"retail", "eu"}, {"wholesale", "apac"}} {
		cur = index(want[1], want[0])
		b := &record.Batch{Schema: orders, Read: 3}
		for _, r := range orderRows()[:2] {
			b.Rows = append(b.Rows, append(record.Row(nil), r...))
		}
		b.Rows = append(b.Rows, order(9, 1000, 1, "1.00", "new"))
		if err := st.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		got := [][]any{b.Rows[0][6:], b.Rows[1][6:], b.Rows[2][6:]}
		if diff := cmp.Diff([][]any{{want[0], want[1]}, {"retail", "us"}, {nil, nil}}, got); diff != "" {
			t.Errorf("added fields (-want +got):\n%s", diff)
		}
	}
}
