package payload

import (
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

var testSchema = record.MustSchema(
	record.Field{Name: "id", Type: record.Int},
	record.Field{Name: "amount", Type: record.Decimal},
	record.Field{Name: "at", Type: record.Timestamp},
	record.Field{Name: "tags", Type: record.JSON},
)

func TestDecodeJSON(t *testing.T) {
	dec, err := NewDecoder(FormatJSON, testSchema, "", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body   string
		field, wants string // field at fault and a part of the reason; "" for a row
		amount       string
	}{
		{name: "Exact", body: `{"id": 7, "amount": 12345678901234567890.125, "at": "2024-05-01T12:00:00Z", "tags": ["a"], "other": 1}`, amount: "12345678901234567890.125"},
		{name: "MissingIsNull", body: `{"id": 7}`},
		{name: "NotAnObject", body: `[1, 2]`, wants: "not a JSON object"},
		{name: "Null", body: `null`, wants: "not a JSON object"},
		{name: "Truncated", body: `{"id": 7`, wants: "not a JSON object"},
		{name: "TwoValues", body: `{"id": 7} {"id": 8}`, wants: "more than one"},
		{name: "BadInt", body: `{"id": "seven"}`, field: "id", wants: "id"},
		{name: "FractionalInt", body: `{"id": 7.5}`, field: "id", wants: "id"},
		{name: "InvalidUTF8", body: "{\"id\": 7, \"x\": \"\xff\"}", wants: "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := make(record.Row, testSchema.Len())
			field, reason := dec.Decode([]byte(tc.body), row)
			if tc.wants == "" {
				if reason != "" {
					t.Fatalf("rejected: %s", reason)
				}
				if row[0] != int64(7) {
					t.Errorf("id %v", row[0])
				}
				if tc.amount != "" && row[1].(record.Dec).String() != tc.amount {
					t.Errorf("amount %v, want %s", row[1], tc.amount)
				}
				return
			}
			if reason == "" || field != tc.field || !contains(reason, tc.wants) {
				t.Errorf("field %q reason %q; want field %q and a reason with %q", field, reason, tc.field, tc.wants)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestFill(t *testing.T) {
	dec, err := NewDecoder(FormatJSON, testSchema, "", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []Body{{Line: 10, Data: []byte(`{"id": 1}`)}, {Line: 11, Data: []byte(`{"id": "x"}`)}, {Line: 12, Data: []byte(`{"id": 3}`)}}
	for _, deferred := range []bool{false, true} {
		b := &record.Batch{Schema: testSchema}
		dec.Fill(b, bodies, deferred)
		if b.Bytes != 29 {
			t.Errorf("deferred=%v: %d bytes, want 29", deferred, b.Bytes)
		}
		if (b.Decode != nil) != deferred || (len(b.Rows) == 0) != deferred {
			t.Fatalf("deferred=%v: Decode set %v, %d rows", deferred, b.Decode != nil, len(b.Rows))
		}
		if deferred {
			b.Decode(b)
		}
		if len(b.Rows) != 2 || b.Rows[1][0] != int64(3) || len(b.Lines) != 2 || b.Lines[1] != 12 || string(b.Raw[0]) != `{"id": 1}` {
			t.Errorf("deferred=%v: rows %v, lines %v", deferred, b.Rows, b.Lines)
		}
		if len(b.Rejects) != 1 || b.Rejects[0].Line != 11 || b.Rejects[0].Field != "id" || b.Rejects[0].Step != "source" || string(b.Rejects[0].Raw) != `{"id": "x"}` {
			t.Errorf("deferred=%v: rejects %+v", deferred, b.Rejects)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	enc, err := NewEncoder(FormatJSON, testSchema, "")
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecoder(FormatJSON, testSchema, "", time.UTC)
	in := record.Row{int64(42), record.MustDec("-0.10"), time.Date(2024, 5, 1, 12, 0, 0, 123000, time.UTC), []any{"x"}}
	out := make(record.Row, testSchema.Len())
	if _, reason := dec.Decode(enc.Encode(nil, in), out); reason != "" {
		t.Fatal(reason)
	}
	if out[0] != in[0] || out[1].(record.Dec).Cmp(in[1].(record.Dec)) != 0 || !out[2].(time.Time).Equal(in[2].(time.Time)) {
		t.Errorf("round trip: %v, want %v", out, in)
	}
}

func TestRaw(t *testing.T) {
	dec, err := NewDecoder(FormatRaw, nil, "", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	row := make(record.Row, 1)
	body := []byte("not json at all")
	if _, reason := dec.Decode(body, row); reason != "" || string(row[0].([]byte)) != string(body) {
		t.Errorf("raw: %v %q", row, reason)
	}
	body[0] = 'N'
	if string(row[0].([]byte)) != "not json at all" {
		t.Error("the row shares the message's buffer")
	}
	if _, err := NewEncoder(FormatRaw, testSchema, ""); err == nil {
		t.Error("a raw encoder without a payload field was built")
	}
	if _, err := NewEncoder(FormatRaw, testSchema, "id"); err == nil {
		t.Error("a raw encoder of an int field was built")
	}
}

func TestIDs(t *testing.T) {
	b := &record.Batch{Schema: testSchema, Origin: "orders", Pos: record.Position("10"),
		Rows: []record.Row{{int64(1), nil, nil, nil}, {int64(2), nil, nil, nil}}, Lines: []int64{9, 10}}
	byOrigin, _ := NewIDs("p", testSchema, nil)
	byKey, _ := NewIDs("p", testSchema, []string{"id"})
	other, _ := NewIDs("q", testSchema, []string{"id"})
	if byOrigin.ID(b, 0) == byOrigin.ID(b, 1) || byKey.ID(b, 0) == byKey.ID(b, 1) {
		t.Error("two records share an id")
	}
	again := &record.Batch{Schema: testSchema, Origin: "orders", Pos: record.Position("10"),
		Rows: []record.Row{{int64(2), nil, nil, nil}}, Lines: []int64{10}}
	if byOrigin.ID(b, 1) != byOrigin.ID(again, 0) || byKey.ID(b, 1) != byKey.ID(again, 0) {
		t.Error("the same record written again has another id")
	}
	if other.ID(b, 0) == byKey.ID(b, 0) {
		t.Error("two pipelines share ids")
	}
	if _, err := NewIDs("p", testSchema, []string{"nope"}); err == nil {
		t.Error("a key field that does not exist was accepted")
	}
}
