package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
		p, found, _ := ix.Pos([]any{tc.key})
		if q, ok := ix.PosOf(tc.key); ok != found || ok && q != p {
			t.Errorf("PosOf(%#v) = %d, %v; Pos gives %d, %v", tc.key, q, ok, p, found)
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

func TestIndexIntegerKeysDenseAndSparse(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "v", Type: record.String})
	tests := []struct {
		name string
		keys []int64
		miss []int64
	}{
		{"dense from 1", seq(1, 500), []int64{0, 501, -1, math.MinInt64, math.MaxInt64}},
		{"dense around zero", seq(-250, 250), []int64{-251, 251}},
		{"dense, not in key order", shuffled(seq(1, 500)), []int64{0, 501}},
		{"dense with gaps", append(seq(1, 200), seq(300, 500)...), []int64{0, 201, 250, 299, 501}},
		{"in order from the second row", append([]int64{1000}, seq(1, 500)...), []int64{0, 501, 999, 1001}},
		{"sparse", []int64{1, 1 << 40, -(1 << 40), 77, 1_000_003}, []int64{2, 1<<40 + 1}},
		{"sparse, many", spaced(200, 1000), []int64{1, 999, 1001}},
		{"extremes", append(seq(1, 100), math.MinInt64, math.MaxInt64), []int64{0, math.MinInt64 + 1, math.MaxInt64 - 1}},
		{"dense near the top", seq(math.MaxInt64-199, math.MaxInt64), []int64{math.MaxInt64 - 200, math.MinInt64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := NewIndex(s, []string{"k"})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.keys {
				ix.Add(record.Row{k, fmt.Sprint("v", k)})
			}
			ctx := context.Background()
			for _, k := range tc.keys {
				r, ok, err := ix.Get(ctx, []any{k})
				if err != nil || !ok || r[0] != k || r[1] != fmt.Sprint("v", k) {
					t.Fatalf("Get(%d) = %v, %v, %v", k, r, ok, err)
				}
			}
			for _, k := range tc.miss {
				if r, ok, err := ix.Get(ctx, []any{k}); ok || err != nil {
					t.Errorf("Get(%d) = %v, %v, %v; want no row", k, r, ok, err)
				}
			}
			if ix.Len() != len(tc.keys) {
				t.Errorf("Len %d, want %d", ix.Len(), len(tc.keys))
			}
		})
	}
}

func seq(lo, hi int64) []int64 {
	var out []int64
	for k := lo; ; k++ {
		out = append(out, k)
		if k == hi {
			return out
		}
	}
}

func shuffled(keys []int64) []int64 {
	out := append([]int64(nil), keys...)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func spaced(n int, step int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) * step
	}
	return out
}

// A key added again replaces its row for later lookups, and a row handed
// out before stays as it was, also when the index grows after a Get.
func TestIndexReplaceKeepsRowsHandedOut(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "v", Type: record.String})
	ix, _ := NewIndex(s, []string{"k"})
	ctx := context.Background()
	for k := int64(0); k < 100; k++ {
		ix.Add(record.Row{k, "first"})
	}
	before, ok, _ := ix.Get(ctx, []any{int64(7)})
	if !ok {
		t.Fatal("no row for 7")
	}
	for k := int64(0); k < 3000; k++ { // past the first chunk, which grows
		ix.Add(record.Row{k, fmt.Sprint("second ", k)})
	}
	after, ok, _ := ix.Get(ctx, []any{int64(7)})
	if !ok || after[1] != "second 7" {
		t.Errorf("after a second Add: %v, %v; want the second row", after, ok)
	}
	if before[1] != "first" {
		t.Errorf("the row handed out before became %v", before)
	}
	if r, ok, _ := ix.Get(ctx, []any{int64(2999)}); !ok || r[1] != "second 2999" {
		t.Errorf("a key added after a Get: %v, %v", r, ok)
	}
	if ix.Len() != 3000 {
		t.Errorf("Len %d, want 3000", ix.Len())
	}
}

// Values come back equal to what was added, whatever their type, also when
// the index stores a repeated text once; rows of another length than the
// schema's come back as they were.
func TestIndexKeepsValues(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "v", Type: record.Any})
	ix, _ := NewIndex(s, []string{"k"})
	when := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	vals := []any{nil, "emea", int64(5), int64(1 << 40), 2.5, record.MustDec("19.99"), when, record.LocalDate(19000),
		true, []byte("raw"), map[string]any{"a": "b"}, []any{"x"}, json.Number("12")}
	for i, v := range vals {
		ix.Add(record.Row{fmt.Sprint("k", i), v})
	}
	for i := 0; i < 2000; i++ { // a field with many distinct texts
		ix.Add(record.Row{fmt.Sprint("n", i), fmt.Sprint("name ", i)})
	}
	ix.Add(record.Row{"short"})
	ix.Add(record.Row{"long", "x", "extra"})
	ctx := context.Background()
	for i, v := range vals {
		r, ok, _ := ix.Get(ctx, []any{fmt.Sprint("k", i)})
		if !ok || !reflect.DeepEqual(r[1], v) {
			t.Errorf("value %d: got %#v, want %#v", i, r, v)
		}
	}
	for i := 0; i < 2000; i += 199 {
		if r, ok, _ := ix.Get(ctx, []any{fmt.Sprint("n", i)}); !ok || r[1] != fmt.Sprint("name ", i) {
			t.Errorf("n%d: %v, %v", i, r, ok)
		}
	}
	if r, ok, _ := ix.Get(ctx, []any{"short"}); !ok || len(r) != 1 {
		t.Errorf("short row: %v, %v", r, ok)
	}
	if r, ok, _ := ix.Get(ctx, []any{"long"}); !ok || !reflect.DeepEqual(r, record.Row{"long", "x", "extra"}) {
		t.Errorf("long row: %v, %v", r, ok)
	}
}

// Get runs concurrently once the index is built, the dense table being made
// by whichever Get comes first.
func TestIndexConcurrentGet(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "v", Type: record.Int})
	ix, _ := NewIndex(s, []string{"k"})
	for k := int64(0); k < 5000; k++ {
		ix.Add(record.Row{k, k * 2})
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for k := int64(0); k < 5000; k += 7 {
				r, ok, err := ix.Get(context.Background(), []any{k})
				if err != nil || !ok || r[1] != k*2 {
					t.Errorf("Get(%d) = %v, %v, %v", k, r, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A field's values come back as they were added whatever the order of
// nulls, texts short and long, few and many, and values of several types.
func TestIndexColumnsOfMixedValues(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name string
		vals []any
	}{
		{"nulls, then a long text", []any{nil, nil, long, "a", nil, "a"}},
		{"nulls, then many texts", append([]any{nil, nil}, texts(3000)...)},
		{"ints, then a text", []any{int64(1), nil, int64(300), "x", int64(5)}},
		{"texts, then an int", []any{"a", "b", nil, int64(7), "a"}},
		{"decimals and nulls", []any{nil, record.MustDec("1.5"), nil, record.MustDec("-2")}},
		{"only nulls", []any{nil, nil, nil}},
		{"floats then decimals", []any{1.5, record.MustDec("2.5"), 3.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "v", Type: record.Any})
			ix, _ := NewIndex(s, []string{"k"})
			for i, v := range tc.vals {
				ix.Add(record.Row{int64(i), v})
			}
			for i, v := range tc.vals {
				r, ok, err := ix.Get(context.Background(), []any{int64(i)})
				if err != nil || !ok || !reflect.DeepEqual(r[1], v) {
					t.Fatalf("value %d: got %#v, %v, %v; want %#v", i, r, ok, err, v)
				}
				p, ok, _ := ix.Pos([]any{int64(i)})
				if got := ix.Field(p, 1); !ok || !reflect.DeepEqual(got, v) {
					t.Fatalf("Field at %d: %#v, want %#v", i, got, v)
				}
			}
		})
	}
}

func texts(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint("name ", i)
	}
	return out
}

// Reading a value from the index allocates nothing; Get allocates its row.
func TestIndexReadsWithoutAllocating(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "region", Type: record.String},
		record.Field{Name: "name", Type: record.String}, record.Field{Name: "price", Type: record.Decimal})
	ix, _ := NewIndex(s, []string{"k"})
	for i := int64(1); i <= 5000; i++ {
		ix.Add(record.Row{i, []string{"emea", "apac"}[i%2], fmt.Sprint("name ", i), record.DecFromInt(i)})
	}
	key := []any{int64(4242)}
	var got [3]any
	allocs := testing.AllocsPerRun(100, func() {
		p, ok, _ := ix.Pos(key)
		if !ok {
			t.Fatal("no row")
		}
		got[0], got[1], got[2] = ix.Field(p, 1), ix.Field(p, 2), ix.Field(p, 3)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read, want 0", allocs)
	}
	if got[0] != "emea" || got[1] != "name 4242" || got[2].(record.Dec).Cmp(record.DecFromInt(4242)) != 0 {
		t.Errorf("read %v", got)
	}
}

// Fill reads a field for many positions as Field does, skipping negative
// positions, whatever the column holds.
func TestIndexFill(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "region", Type: record.String},
		record.Field{Name: "maybe", Type: record.String}, record.Field{Name: "n", Type: record.Int})
	for _, odd := range []bool{false, true} {
		ix, _ := NewIndex(s, []string{"k"})
		for i := int64(0); i < 100; i++ {
			var maybe any
			if i%3 == 0 {
				maybe = "x"
			}
			ix.Add(record.Row{i, []string{"emea", "apac", "amer"}[i%3], maybe, i * 10})
		}
		if odd {
			ix.Add(record.Row{int64(100), "short"})
		}
		pos := []int32{5, -1, 0, 99}
		if odd {
			pos = append(pos, 100)
		}
		for field := 0; field < s.Len(); field++ {
			rows := make([]record.Row, len(pos))
			for i := range rows {
				rows[i] = record.Row{"untouched", "untouched"}
			}
			ix.Fill(field, pos, rows, 1)
			for i, p := range pos {
				want := any("untouched")
				if p >= 0 {
					want = ix.Field(int(p), field)
				}
				if !reflect.DeepEqual(rows[i][1], want) || rows[i][0] != "untouched" {
					t.Errorf("odd rows %v, field %d, position %d: %v, want %v", odd, field, p, rows[i], want)
				}
			}
		}
	}
}

// A few text keys are found by comparing them, many by the map: both find
// every key, the row a repeated key added last, and no absent key, also
// after more rows are added.
// Combos number the combinations of fields of few texts, each giving what
// Field gives, and there are none for fields of other kinds, with nulls or
// left out, nor past combosMax combinations.
func TestIndexCombos(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "k", Type: record.Int}, record.Field{Name: "region", Type: record.String},
		record.Field{Name: "tier", Type: record.String}, record.Field{Name: "maybe", Type: record.String},
		record.Field{Name: "n", Type: record.Int}, record.Field{Name: "many", Type: record.String}, record.Field{Name: "left", Type: record.String})
	ix, _ := NewIndex(s, []string{"k"})
	ix.Only([]string{"region", "tier", "maybe", "n", "many"})
	for i := int64(0); i < 1000; i++ {
		var maybe any
		if i%3 == 0 {
			maybe = "x"
		}
		ix.Add(record.Row{i, []string{"emea", "apac", "amer"}[i%3], []string{"gold", "silver", "bronze", "none"}[i%4], maybe, i,
			fmt.Sprint("m", i%300), "left out"})
	}
	for _, tt := range []struct {
		fields []int
		combos int
	}{{[]int{1}, 3}, {[]int{2}, 4}, {[]int{1, 2}, 12}, {[]int{2, 1}, 12}, {[]int{1, 2, 1}, 12}} {
		fields := tt.fields
		cb := ix.Combos(fields)
		if cb == nil {
			t.Fatalf("fields %v: no combinations", fields)
		}
		if len(cb.Values) != tt.combos {
			t.Errorf("fields %v: %d combinations, want %d", fields, len(cb.Values), tt.combos)
		}
		for p := range 1000 {
			for k, f := range fields {
				if got, want := cb.Values[cb.Codes[p]][k], ix.Field(p, f); got != want {
					t.Fatalf("fields %v, position %d, field %d: %v, want %v", fields, p, f, got, want)
				}
			}
		}
	}
	for _, fields := range [][]int{{3}, {4}, {1, 4}, {6}, {}} { // nulls, ints, left out, none
		if ix.Combos(fields) != nil {
			t.Errorf("fields %v: combinations", fields)
		}
	}
	if ix.Combos([]int{5}) != nil || ix.Combos([]int{5, 2}) != nil { // 300 texts; 300 × 4 values, 1000 combinations
		t.Error("combinations past combosMax")
	}
}

func TestIndexTextKeysFewAndMany(t *testing.T) {
	schema := record.MustSchema(record.Field{Name: "code", Type: record.String}, record.Field{Name: "n", Type: record.Int})
	ix, err := NewIndex(schema, []string{"code"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(n int) {
		t.Helper()
		for i := range n {
			p, ok, err := ix.Pos([]any{fmt.Sprintf("k%d", i)})
			if err != nil || !ok || ix.Field(p, 1) != int64(i*10) {
				t.Fatalf("%d keys: k%d: position %d, found %v, err %v", n, i, p, ok, err)
			}
		}
		for _, absent := range []string{"", "k", fmt.Sprintf("k%d", n), "K0"} {
			if _, ok, _ := ix.Pos([]any{absent}); ok {
				t.Fatalf("%d keys: %q found", n, absent)
			}
		}
		if d := ix.dense.Load(); n <= fewMax && d.slots == nil {
			t.Fatalf("%d keys: no multiplier places them", n)
		}
	}
	ix.Add(record.Row{"k0", int64(-1)})
	for n := 1; n <= fewMax+2; n++ {
		ix.Add(record.Row{fmt.Sprintf("k%d", n-1), int64((n - 1) * 10)}) // k0 again: replaces -1
		check(n)
	}

	// Keys of at most 7 bytes are compared as numbers, longer ones as
	// texts: a key that only adds zero bytes, or differs in its 8th, is
	// another key.
	for _, keys := range [][]string{{"", "a", "USD", "abcdefg"}, {"", "a", "USD", "abcdefgh"}} {
		ix, err := NewIndex(schema, []string{"code"})
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			ix.Add(record.Row{k, int64(i)})
		}
		for i, k := range keys {
			if p, ok, _ := ix.Pos([]any{k}); !ok || ix.Field(p, 1) != int64(i) {
				t.Errorf("keys %q: %q at %d (found %v)", keys, k, p, ok)
			}
		}
		for _, absent := range []string{"a\x00", "\x00", "US", "USDX", "abcdef", "abcdefgx", "abcdefghi", "b"} {
			if slices.Contains(keys, absent) {
				continue
			}
			if _, ok, _ := ix.Pos([]any{absent}); ok {
				t.Errorf("keys %q: %q found", keys, absent)
			}
		}
	}
}

// Grow leaves every row in place and findable, whether it asks for more
// room than the index holds or less.
func TestIndexGrow(t *testing.T) {
	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "name", Type: record.String},
		record.Field{Name: "tier", Type: record.String}, record.Field{Name: "amount", Type: record.Decimal})
	for _, hint := range []int{0, 10, 5000} {
		ix, err := NewIndex(schema, []string{"id"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3000 {
			ix.Add(record.Row{int64(i), fmt.Sprintf("name %d", i), []string{"gold", "silver"}[i%2], record.DecFromInt(int64(i))})
			if i == 99 {
				ix.Grow(hint)
			}
		}
		for _, i := range []int{0, 99, 100, 1500, 2999} {
			row, ok, err := ix.Get(context.Background(), []any{int64(i)})
			if err != nil || !ok || row[1] != fmt.Sprintf("name %d", i) || row[2] != []string{"gold", "silver"}[i%2] || row[3].(record.Dec).Cmp(record.DecFromInt(int64(i))) != 0 {
				t.Fatalf("hint %d: row %d = %v (%v, %v)", hint, i, row, ok, err)
			}
		}
	}
}

func TestIndexOnlyKeepsKeysAndTheFieldsRead(t *testing.T) {
	s := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "name", Type: record.String},
		record.Field{Name: "region", Type: record.String}, record.Field{Name: "score", Type: record.Int})
	ix, err := NewIndex(s, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	ix.Only([]string{"region", "nosuch"})
	for i := range 500 {
		ix.Add(record.Row{int64(i), fmt.Sprint("customer ", i), []string{"emea", "apac"}[i%2], int64(i * 3)})
	}
	for i, want := range []bool{true, false, true, false} {
		if ix.Loaded(i) != want {
			t.Errorf("Loaded(%s) = %v, want %v", s.Field(i).Name, ix.Loaded(i), want)
		}
	}
	p, ok, err := ix.Pos([]any{int64(7)})
	if !ok || err != nil {
		t.Fatalf("Pos(7) = %v, %v", ok, err)
	}
	if got := []any{ix.Field(p, 0), ix.Field(p, 1), ix.Field(p, 2), ix.Field(p, 3)}; !reflect.DeepEqual(got, []any{int64(7), nil, "apac", nil}) {
		t.Errorf("fields of 7: %#v", got)
	}
	// A whole row would hold nulls that are not the data's: Get refuses.
	if _, _, err := ix.Get(context.Background(), []any{int64(7)}); err == nil || !strings.Contains(err.Error(), `without its field "name"`) {
		t.Errorf("Get on a partly loaded index: %v", err)
	}
}
