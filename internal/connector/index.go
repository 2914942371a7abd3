package connector

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/backbone-etl/backbone/internal/record"
)

// KeyString renders key values canonically, so that the int 42 read from
// one source and the text "42" read from another find each other. Parts are
// separated by a byte that text does not contain.
func KeyString(vals []any) string {
	if len(vals) == 1 {
		if s, ok := vals[0].(string); ok {
			return s
		}
	}
	return string(AppendKey(nil, vals))
}

// AppendKey appends the canonical form of KeyString to dst.
func AppendKey(dst []byte, vals []any) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, 0x1f)
		}
		switch x := v.(type) {
		case string:
			dst = append(dst, x...)
		case int64:
			dst = strconv.AppendInt(dst, x, 10)
		case record.Dec:
			dst = x.Trim().AppendText(dst)
		case float64:
			if x == float64(int64(x)) {
				dst = strconv.AppendInt(dst, int64(x), 10)
			} else {
				dst = append(dst, record.FormatText(x)...)
			}
		default:
			dst = append(dst, record.FormatText(v)...)
		}
	}
	return dst
}

// Index is an in-memory table keyed by one or more fields: the preloaded
// form every lookup can use. It is safe for concurrent Get once built.
type Index struct {
	schema *record.Schema
	keys   []string
	keyIdx []int
	rows   map[string]record.Row
	ints   map[int64]record.Row // single keys whose canonical text is an integer
}

// asInt returns the integer a single key stands for when its canonical text
// (KeyString) is an integer's: 42, 42.0, the decimal 42.00 and the text "42"
// all are; "042" is not.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case record.Dec:
		t := x.Trim()
		if t.Scale() == 0 {
			return t.Int64()
		}
	case string:
		if x == "" || (x[0] != '-' && (x[0] < '0' || x[0] > '9')) {
			return 0, false // not a number: spare ParseInt's error
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err == nil && strconv.FormatInt(n, 10) == x {
			return n, true
		}
	}
	return 0, false
}

// NewIndex returns an empty index over rows of schema, keyed by keys.
func NewIndex(schema *record.Schema, keys []string) (*Index, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("a lookup needs at least one key field")
	}
	ix := &Index{schema: schema, keys: keys, rows: map[string]record.Row{}, ints: map[int64]record.Row{}}
	for _, k := range keys {
		i, ok := schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("key field %q is not among the fields (%s)", k, strings.Join(schema.Names(), ", "))
		}
		ix.keyIdx = append(ix.keyIdx, i)
	}
	return ix, nil
}

// Add indexes a row. A later row with the same key replaces the earlier one.
func (ix *Index) Add(r record.Row) {
	if len(ix.keyIdx) == 1 {
		if n, ok := asInt(r[ix.keyIdx[0]]); ok {
			ix.ints[n] = r
			return
		}
	}
	vals := make([]any, len(ix.keyIdx))
	for i, k := range ix.keyIdx {
		vals[i] = r[k]
	}
	ix.rows[KeyString(vals)] = r
}

// Len is the number of distinct keys.
func (ix *Index) Len() int { return len(ix.rows) + len(ix.ints) }

// Schema implements Table.
func (ix *Index) Schema() *record.Schema { return ix.schema }

// Keys implements Table.
func (ix *Index) Keys() []string { return ix.keys }

// Get implements Table.
func (ix *Index) Get(_ context.Context, key []any) (record.Row, bool, error) {
	if len(key) != len(ix.keyIdx) {
		return nil, false, fmt.Errorf("lookup takes %d key values (%s), got %d", len(ix.keyIdx), strings.Join(ix.keys, ", "), len(key))
	}
	if len(key) == 1 {
		if n, ok := asInt(key[0]); ok {
			r, ok := ix.ints[n]
			return r, ok, nil
		}
	}
	var buf [64]byte
	r, ok := ix.rows[string(AppendKey(buf[:0], key))] // no allocation for the lookup
	return r, ok, nil
}

// Close implements Table.
func (ix *Index) Close() error { return nil }
