package connector

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/record"
)

// addToChunk sets the loaded fields of r in ch as a loader would: typed
// where it can, texts in a buffer that is overwritten after the call.
func addToChunk(ix *Index, ch *Chunk, r record.Row) {
	for i, v := range r {
		if !ix.Loaded(i) {
			continue
		}
		switch x := v.(type) {
		case int64:
			ch.Int(i, x)
		case string:
			// The text given is good for the call only, as a loader's is.
			scratch := []byte(x)
			ch.Text(i, unsafe.String(unsafe.SliceData(scratch), len(scratch)))
			for k := range scratch {
				scratch[k] = '#'
			}
		default:
			ch.Value(i, v)
		}
	}
	ch.EndRow()
}

// TestIndexChunksMatchAdd adds the same rows to one index by Add and to
// another by chunks of random sizes, and compares everything they answer:
// keys in and out of order, repeated keys, text and integer keys, keys of
// two fields, nulls, fields of few and of many texts, values of mixed
// types, and fields left out by Only.
func TestIndexChunksMatchAdd(t *testing.T) {
	tests := []struct {
		name   string
		fields []record.Field
		keys   []string
		only   []string
		row    func(rng *rand.Rand, i int) record.Row
	}{
		{
			name:   "integer keys in order, few texts",
			fields: []record.Field{{Name: "id", Type: record.Int}, {Name: "name", Type: record.String}, {Name: "region", Type: record.String}, {Name: "tier", Type: record.String}},
			keys:   []string{"id"},
			row: func(rng *rand.Rand, i int) record.Row {
				return record.Row{int64(i + 1), fmt.Sprint("Customer ", i), []string{"emea", "amer", "apac"}[rng.IntN(3)], []string{"gold", "silver"}[rng.IntN(2)]}
			},
		},
		{
			name:   "integer keys out of order and repeated, nulls",
			fields: []record.Field{{Name: "id", Type: record.Int}, {Name: "n", Type: record.Int}, {Name: "s", Type: record.String}},
			keys:   []string{"id"},
			row: func(rng *rand.Rand, i int) record.Row {
				r := record.Row{int64(rng.IntN(3000)), int64(rng.IntN(1000)), fmt.Sprint(rng.IntN(50))}
				if rng.IntN(7) == 0 {
					r[1] = nil
				}
				if rng.IntN(5) == 0 {
					r[2] = nil
				}
				return r
			},
		},
		{
			name:   "text keys, a field growing past its dictionary",
			fields: []record.Field{{Name: "code", Type: record.String}, {Name: "label", Type: record.String}, {Name: "rate", Type: record.Decimal}},
			keys:   []string{"code"},
			row: func(rng *rand.Rand, i int) record.Row {
				label := fmt.Sprint("l", rng.IntN(40))
				if i > 2000 {
					label = fmt.Sprint("many ", i)
				}
				return record.Row{fmt.Sprint("c", rng.IntN(5000)), label, record.MustDec(fmt.Sprintf("%d.%02d", rng.IntN(100), rng.IntN(100)))}
			},
		},
		{
			name:   "two key fields, mixed and typed values",
			fields: []record.Field{{Name: "a", Type: record.Int}, {Name: "b", Type: record.String}, {Name: "v", Type: record.Any}, {Name: "at", Type: record.Timestamp}},
			keys:   []string{"a", "b"},
			row: func(rng *rand.Rand, i int) record.Row {
				var v any
				switch rng.IntN(4) {
				case 0:
					v = int64(i)
				case 1:
					v = fmt.Sprint(i)
				case 2:
					v = float64(i) / 4
				}
				return record.Row{int64(rng.IntN(40)), fmt.Sprint(rng.IntN(40)), v, time.Unix(int64(i), 0).UTC()}
			},
		},
		{
			name:   "fields left out, a field null at first",
			fields: []record.Field{{Name: "id", Type: record.Int}, {Name: "skipped", Type: record.String}, {Name: "late", Type: record.Int}, {Name: "kept", Type: record.String}},
			keys:   []string{"id"},
			only:   []string{"late", "kept"},
			row: func(rng *rand.Rand, i int) record.Row {
				var late any
				if i > 1500 && rng.IntN(3) > 0 {
					late = int64(i * 3)
				}
				return record.Row{int64(i), "x", late, []string{"p", "q"}[i%2]}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			schema := record.MustSchema(tc.fields...)
			byAdd, _ := NewIndex(schema, tc.keys)
			byChunk, _ := NewIndex(schema, tc.keys)
			if tc.only != nil {
				byAdd.Only(tc.only)
				byChunk.Only(tc.only)
			}
			var rows []record.Row
			for i := range 5000 {
				rows = append(rows, tc.row(rng, i))
			}
			for _, r := range rows {
				byAdd.Add(r)
			}
			for at := 0; at < len(rows); {
				n := min(1+rng.IntN(900), len(rows)-at)
				ch := byChunk.NewChunk(n)
				for _, r := range rows[at : at+n] {
					addToChunk(byChunk, ch, r)
				}
				byChunk.AddChunk(ch)
				if at == 0 {
					byChunk.Grow(len(rows))
				}
				at += n
			}
			if byAdd.Len() != byChunk.Len() {
				t.Fatalf("Len: %d by Add, %d by chunks", byAdd.Len(), byChunk.Len())
			}
			keys := make([][]any, 0, len(rows))
			for _, r := range rows {
				var k []any
				for _, name := range tc.keys {
					i, _ := schema.Index(name)
					k = append(k, r[i])
				}
				keys = append(keys, k)
			}
			keys = append(keys, []any{"absent"}, []any{int64(-5)})
			for _, k := range keys {
				if len(k) != len(tc.keys) {
					continue
				}
				pa, oka, _ := byAdd.Pos(k)
				pc, okc, _ := byChunk.Pos(k)
				if oka != okc || pa != pc {
					t.Fatalf("Pos(%v): %d, %v by Add; %d, %v by chunks", k, pa, oka, pc, okc)
				}
				if !oka {
					continue
				}
				for i := range schema.Len() {
					a, c := byAdd.Field(pa, i), byChunk.Field(pc, i)
					if !reflect.DeepEqual(a, c) {
						t.Fatalf("key %v field %d: %#v by Add, %#v by chunks", k, i, a, c)
					}
				}
			}
		})
	}
}

// TestChunkRowMustSetEachField: a loader that skips a field in a row would
// shift every later value of the column; the chunk refuses the row.
func TestChunkRowMustSetEachField(t *testing.T) {
	ix, _ := NewIndex(record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "v", Type: record.String}), []string{"id"})
	ch := ix.NewChunk(4)
	ch.Int(0, 1)
	defer func() {
		if recover() == nil {
			t.Error("EndRow after one of two fields did not panic")
		}
	}()
	ch.EndRow()
}

// TestIndexAddKeepsManyTextsWithoutCopies: a field of unique texts (a name)
// keeps each text as it comes; copying each one would cost an allocation
// per row added.
func TestIndexAddKeepsManyTextsWithoutCopies(t *testing.T) {
	ix, _ := NewIndex(record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "name", Type: record.String}), []string{"id"})
	rows := make([]record.Row, 5000) // values boxed before they are measured
	for i := range rows {
		rows[i] = record.Row{int64(i), fmt.Sprint("Customer ", i)}
	}
	for _, r := range rows[:2000] { // past the dictionary: the texts are kept one by one
		ix.Add(r)
	}
	ix.Grow(len(rows))
	i := 2000
	allocs := testing.AllocsPerRun(2000, func() {
		ix.Add(rows[i])
		i++
	})
	if allocs >= 0.5 {
		t.Errorf("%.2f allocations per row added, want none", allocs)
	}
}
