package step

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// tableOnly hides what a table is: enrich reads it by Get, row by row.
type tableOnly struct{ connector.Table }

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
			var got [2]*record.Batch
			for i, table := range []connector.Table{customers(t), tableOnly{customers(t)}} {
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
			index, other := got[0], got[1]
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
		})
	}
}
