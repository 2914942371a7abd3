package sqlkit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeysetWhere(t *testing.T) {
	cols := []string{"s.a", "s.b"}
	tests := []struct {
		name     string
		params   []string
		last     []any
		want     string
		wantArgs []any
	}{
		{"values", nil, []any{int64(1), "x"}, "(s.a > ?) OR (s.a = ? AND s.b > ?)", []any{int64(1), int64(1), "x"}},
		{"null sorts first", nil, []any{nil, "x"}, "(s.a IS NOT NULL) OR (s.a IS NULL AND s.b > ?)", []any{"x"}},
		{"own parameters", []string{"CAST(? AS DECIMAL(9,2))", "?"}, []any{"1.50", nil}, "(s.a > CAST(? AS DECIMAL(9,2))) OR (s.a = CAST(? AS DECIMAL(9,2)) AND s.b IS NOT NULL)", []any{"1.50", "1.50"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			where, args := KeysetWhere(cols, tc.params, tc.last)
			if where != tc.want {
				t.Errorf("where %q, want %q", where, tc.want)
			}
			if diff := cmp.Diff(tc.wantArgs, args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInsertRows(t *testing.T) {
	quote := func(s string) string { return `"` + s + `"` }
	in := NewInsert(quote, "t", []string{"a", "b"}, " ON CONFLICT DO NOTHING")
	want := `INSERT INTO "t" ("a", "b") VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING`
	for range 2 { // built, then remembered
		if got := in.Rows(3); got != want {
			t.Errorf("Rows(3) = %q, want %q", got, want)
		}
	}
	for n := 1; n <= 100; n++ { // past the bound, the statements are built again
		if got := in.Rows(n); strings.Count(got, "(?, ?)") != n {
			t.Errorf("Rows(%d) = %q, want %d tuples", n, got, n)
		}
	}
}

func TestSplitIsolatesRefusedRows(t *testing.T) {
	refused := map[int]bool{0: true, 5: true, 6: true, 9: true}
	var statements int
	var got []int
	err := Split(0, 10, func(lo, hi int) (error, error) {
		statements++
		for i := lo; i < hi; i++ {
			if refused[i] {
				return fmt.Errorf("row %d refused", i), nil
			}
		}
		return nil, nil
	}, func(i int, err error) {
		if want := fmt.Sprintf("row %d refused", i); err.Error() != want {
			t.Errorf("row %d: error %v, want %q", i, err, want)
		}
		got = append(got, i)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{0, 5, 6, 9}) {
		t.Errorf("refused rows %v, want [0 5 6 9]", got)
	}
	if statements > 20 {
		t.Errorf("%d statements for 10 rows", statements)
	}

	fatal := errors.New("connection lost")
	err = Split(0, 10, func(lo, hi int) (error, error) {
		if hi-lo < 10 {
			return nil, fatal
		}
		return errors.New("refused"), nil
	}, func(int, error) { t.Error("a row was refused after a failure") })
	if !errors.Is(err, fatal) {
		t.Errorf("Split: %v, want the failure", err)
	}
}
