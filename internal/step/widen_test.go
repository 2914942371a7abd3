package step

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// chain binds steps one after the other, as the engine does, and returns
// them with the schema flowing into the first.
func chain(t *testing.T, in *record.Schema, srcs ...string) []connector.Step {
	t.Helper()
	var steps []connector.Step
	schema := in
	for _, src := range srcs {
		s, out, err := bind(t, src, schema)
		if err != nil {
			t.Fatalf("Bind %q: %v", src, err)
		}
		steps = append(steps, s)
		schema = out
	}
	return steps
}

func runChain(t *testing.T, steps []connector.Step, b *record.Batch) {
	t.Helper()
	for _, s := range steps {
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatalf("Process: %v", err)
		}
	}
}

// rowsIn lays rows out the way a source may: one slab, each row followed
// by spare room. shared gives each row the capacity up to the end of the
// slab (the next rows' values), as a plain two-index slice does.
func rowsIn(rows []record.Row, width, room int, shared bool) []record.Row {
	slab := make([]any, len(rows)*room)
	out := make([]record.Row, len(rows))
	for i, r := range rows {
		if shared {
			out[i] = slab[i*room : i*room+width]
		} else {
			out[i] = slab[i*room : i*room+width : (i+1)*room]
		}
		copy(out[i], r)
		for j := width; j < room; j++ {
			slab[i*room+j] = "stale" // left by a step before, not the row's
		}
	}
	return out
}

func TestWidenRowsInPlaceOnlyWhenTheyOwnTheRoom(t *testing.T) {
	// A fresh schema: the chain's hint must not come from other tests.
	in := record.MustSchema(orders.Fields()...)
	steps := chain(t, in,
		"- map: { total: qty * unit_price }",
		"- enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: null }",
		`- map: { label: 'region ?? "none"' }`,
	)
	if got := in.RowCap(); got != 10 {
		t.Fatalf("RowCap of the source schema after binding = %d, want 10 (6 fields + 4 added)", got)
	}
	src := []record.Row{order(1, 42, 2, "1.50", "new"), order(2, 99, 1, "2.00", "paid"), order(3, 7, 3, "0.10", "paid")}
	want := []record.Row{
		append(append(record.Row(nil), src[0]...), record.MustDec("3.00"), "eu", int64(1), "eu"),
		append(append(record.Row(nil), src[1]...), record.MustDec("2.00"), nil, nil, "none"),
		append(append(record.Row(nil), src[2]...), record.MustDec("0.30"), "us", int64(2), "us"),
	}
	tests := []struct {
		name          string
		room          int
		shared, owned bool
		inPlace       bool
	}{
		{"owned room", 10, false, true, true},
		{"owned but too little room", 8, false, true, false},
		{"room not said to be owned", 10, false, false, false},
		{"room shared with the next row", 10, true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := rowsIn(src, 6, tc.room, tc.shared)
			first := rows
			b := &record.Batch{Schema: in, Rows: append([]record.Row(nil), rows...), Read: len(rows), OwnCap: tc.owned}
			runChain(t, steps, b)
			if diff := cmp.Diff(want, b.Rows, decCmp); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
			for i := range b.Rows {
				same := &b.Rows[i][0] == &first[i][0]
				if same != tc.inPlace {
					t.Errorf("row %d widened in place: %v, want %v", i, same, tc.inPlace)
				}
			}
			if !b.OwnCap {
				t.Error("widened rows do not say they own their room")
			}
		})
	}
}

// A record a map rejects after it was widened in place goes back to its
// fields, and the rows kept are right.
func TestWidenInPlaceRejectRestoresRow(t *testing.T) {
	in := record.MustSchema(orders.Fields()...)
	steps := chain(t, in, "- map: { total: qty * unit_price, qty: qty + 1 }")
	src := []record.Row{order(1, 42, 2, "1.50", "new"), order(2, 42, 1, "", "paid")}
	rows := rowsIn(src, 6, in.RowCap(), false)
	b := &record.Batch{Schema: in, Rows: rows, Read: 2, OwnCap: true}
	runChain(t, steps, b)
	if len(b.Rejects) != 1 || len(b.Rows) != 1 {
		t.Fatalf("rows %v, rejects %+v", b.Rows, b.Rejects)
	}
	if want := `"qty":1,"unit_price":null`; !strings.Contains(string(b.Rejects[0].Raw), want) {
		t.Errorf("rejected record %s, want it as it came (%s)", b.Rejects[0].Raw, want)
	}
	want := append(append(record.Row(nil), src[0]...), record.MustDec("3.00"))
	want[2] = int64(3)
	if diff := cmp.Diff(want, b.Rows[0], decCmp); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
