package connector

import (
	"context"
	"testing"

	"github.com/backbone-etl/backbone/internal/record"
)

func TestIndexFindsKeysAcrossRepresentations(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Any}, record.Field{Name: "v", Type: record.String})
	ix, err := NewIndex(s, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	ix.Add(record.Row{int64(42), "int"})
	ix.Add(record.Row{"EUR", "text"})
	ix.Add(record.Row{"007", "padded"})
	ix.Add(record.Row{record.MustDec("1.50"), "dec"})
	tests := []struct {
		key  any
		want string
	}{
		{int64(42), "int"}, {"42", "int"}, {42.0, "int"}, {record.MustDec("42.00"), "int"},
		{"EUR", "text"}, {"007", "padded"}, {int64(7), ""}, {"1.5", "dec"}, {1.5, "dec"}, {record.MustDec("1.500"), "dec"},
		{int64(43), ""}, {"eur", ""},
	}
	for _, tc := range tests {
		r, ok, err := ix.Get(context.Background(), []any{tc.key})
		got := ""
		if ok {
			got = r[1].(string)
		}
		if err != nil || got != tc.want {
			t.Errorf("Get(%#v) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	if ix.Len() != 4 {
		t.Errorf("Len %d, want 4", ix.Len())
	}
	multi, _ := NewIndex(record.MustSchema(record.Field{Name: "a", Type: record.Int}, record.Field{Name: "b", Type: record.String}), []string{"a", "b"})
	multi.Add(record.Row{int64(1), "x"})
	if _, ok, _ := multi.Get(context.Background(), []any{"1", "x"}); !ok {
		t.Error("a two-column key given as text does not find the row")
	}
}
