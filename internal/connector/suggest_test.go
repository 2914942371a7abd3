package connector

import "testing"

func TestClosest(t *testing.T) {
	tests := []struct {
		name  string
		cands []string
		want  string
	}{
		{"qyt", []string{"qty", "name"}, "qty"},
		{"custmer_id", []string{"customer_id", "order_id"}, "customer_id"},
		{"x", []string{"qty"}, ""},
		{"Status", []string{"status"}, "status"},
		{"stat", []string{"status", "qty"}, "status"},
		{"jsonlines", []string{"csv", "jsonl", "parquet"}, "jsonl"},
		{"pathh", []string{"path", "schema"}, "path"},
		{"zzzz", []string{"path", "schema"}, ""},
	}
	for _, tc := range tests {
		got, _ := Closest(tc.name, tc.cands)
		if got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
