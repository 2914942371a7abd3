package connector

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
// form every lookup can use. It is safe for concurrent Get once built; Add
// must not run beside Get.
//
// A preloaded table stays in memory for the whole run, so every garbage
// collection of the run walks it, and every enriched record reads it at a
// random place. Its layout serves both:
//
//   - keys map to row positions in maps without pointers, which the
//     collector does not scan (integer keys, the common case; dense ones
//     also in a table indexed by the key);
//   - rows are stored one after the other in the index's own chunks, and
//     their values are copied into the index's own typed slabs, so the
//     batches the rows came from are freed and a row is one read;
//   - a text repeated across rows (a region, a tier) is stored once, so
//     reading it after a lookup stays in the processor's cache.
//
// Rows handed out by Get are views of that storage. Storage once written is
// never written again (a key added twice gets a new row), so a row handed
// out stays valid and unchanged; callers never write into it.
type Index struct {
	schema *record.Schema
	keys   []string
	keyIdx []int
	width  int

	ints map[int64]int32  // single keys whose canonical text is an integer → position
	strs map[string]int32 // other keys, by KeyString → position

	chunks [][]any          // rows of width values, chunkRows to a chunk (the first grows)
	n      int32            // rows stored in chunks
	odd    []record.Row     // rows whose length is not the schema's, at position -1-i
	intern []map[string]any // per field, each text seen, boxed once; nil once a field has too many
	vals   indexValues

	dense atomic.Pointer[denseKeys] // built by the first Get after an Add
	mu    sync.Mutex                // serializes building dense
}

const (
	chunkShift = 10
	chunkRows  = 1 << chunkShift
	// internMax is the most distinct texts of a field stored once: past it
	// the field holds unique values (names, ids), which are kept as they
	// come.
	internMax = 1024
	// internLen is the longest text worth storing once.
	internLen = 128
	// denseMin is the fewest integer keys worth a dense table: a small map
	// is as fast.
	denseMin = 64
	// noPos marks an absent key in a dense table.
	noPos = math.MinInt32
)

// indexValues are the index's own slabs.
type indexValues struct {
	ints   record.Slab[int64]
	floats record.Slab[float64]
	strs   record.Slab[string]
	decs   record.Slab[record.Dec]
	times  record.Slab[time.Time]
	dates  record.Slab[record.LocalDate]
}

// denseKeys maps the integer keys min..min+len(pos)-1 to positions by
// index: one read where a map hashes and probes. pos is nil when the keys
// are too sparse for it; noPos marks a key absent.
type denseKeys struct {
	min int64
	pos []int32
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
	ix := &Index{schema: schema, keys: keys, width: schema.Len(),
		strs: map[string]int32{}, ints: map[int64]int32{}, intern: make([]map[string]any, schema.Len())}
	for i := range ix.intern {
		ix.intern[i] = map[string]any{}
	}
	const slab = 1024
	ix.vals = indexValues{ints: record.NewSlab[int64](slab), floats: record.NewSlab[float64](slab),
		strs: record.NewSlab[string](slab), decs: record.NewSlab[record.Dec](slab),
		times: record.NewSlab[time.Time](slab), dates: record.NewSlab[record.LocalDate](slab)}
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
// The index keeps copies of the values, not r.
func (ix *Index) Add(r record.Row) {
	p, stored := ix.store(r)
	ix.dense.Store(nil)
	if len(ix.keyIdx) == 1 {
		if n, ok := asInt(stored[ix.keyIdx[0]]); ok {
			ix.ints[n] = p
			return
		}
		if s, ok := stored[ix.keyIdx[0]].(string); ok {
			ix.strs[s] = p
			return
		}
	}
	var key [4]any
	vals := key[:0]
	for _, k := range ix.keyIdx {
		vals = append(vals, stored[k])
	}
	ix.strs[string(AppendKey(nil, vals))] = p
}

// store copies r into the index's storage and returns its position and the
// stored row.
func (ix *Index) store(r record.Row) (int32, record.Row) {
	if len(r) != ix.width {
		row := make(record.Row, len(r))
		for i, v := range r {
			row[i] = ix.keep(i, v)
		}
		ix.odd = append(ix.odd, row)
		return int32(-len(ix.odd)), row
	}
	w := ix.width
	c, o := int(ix.n>>chunkShift), int(ix.n&(chunkRows-1))*w
	if c == len(ix.chunks) {
		size := chunkRows
		if c == 0 {
			size = 16 // the first chunk grows: a table of a few rows stays small
		}
		ix.chunks = append(ix.chunks, make([]any, size*w))
	}
	if o+w > len(ix.chunks[c]) {
		// Rows handed out keep the old chunk, which is not written again.
		grown := make([]any, min(2*len(ix.chunks[c]), chunkRows*w))
		copy(grown, ix.chunks[c])
		ix.chunks[c] = grown
	}
	row := ix.chunks[c][o : o+w : o+w]
	for i, v := range r {
		row[i] = ix.keep(i, v)
	}
	p := ix.n
	ix.n++
	return p, row
}

// keep returns v as the index stores it: in its own slabs, a text seen
// before as the same value.
func (ix *Index) keep(field int, v any) any {
	switch x := v.(type) {
	case string:
		if field < len(ix.intern) && ix.intern[field] != nil && len(x) <= internLen {
			t := ix.intern[field]
			if b, ok := t[x]; ok {
				return b
			}
			if len(t) == internMax {
				ix.intern[field] = nil // unique values: stop looking
				return ix.vals.strs.Box(x)
			}
			x = strings.Clone(x) // not the batch's whole text, kept alive for one value
			b := ix.vals.strs.Box(x)
			t[x] = b
			return b
		}
		return ix.vals.strs.Box(x)
	case int64:
		if x >= 0 && x < 256 {
			return v // the runtime's own boxes
		}
		return ix.vals.ints.Box(x)
	case float64:
		return ix.vals.floats.Box(x)
	case record.Dec:
		return ix.vals.decs.Box(x)
	case time.Time:
		return ix.vals.times.Box(x)
	case record.LocalDate:
		return ix.vals.dates.Box(x)
	}
	return v
}

// row returns the row at position p.
func (ix *Index) row(p int32) record.Row {
	if p < 0 {
		return ix.odd[-1-p]
	}
	w := ix.width
	o := int(p&(chunkRows-1)) * w
	return ix.chunks[p>>chunkShift][o : o+w : o+w]
}

// Len is the number of distinct keys.
func (ix *Index) Len() int { return len(ix.strs) + len(ix.ints) }

// Schema implements Table.
func (ix *Index) Schema() *record.Schema { return ix.schema }

// Keys implements Table.
func (ix *Index) Keys() []string { return ix.keys }

// Get implements Table.
func (ix *Index) Get(_ context.Context, key []any) (record.Row, bool, error) {
	if len(key) != len(ix.keyIdx) {
		return nil, false, fmt.Errorf("lookup takes %d key values (%s), got %d", len(ix.keyIdx), strings.Join(ix.keys, ", "), len(key))
	}
	var p int32
	var ok bool
	if len(key) == 1 {
		if n, isInt := asInt(key[0]); isInt {
			p, ok = ix.intPos(n)
		} else if s, isStr := key[0].(string); isStr {
			p, ok = ix.strs[s]
		} else {
			var buf [64]byte
			p, ok = ix.strs[string(AppendKey(buf[:0], key))] // no allocation for the lookup
		}
	} else {
		var buf [64]byte
		p, ok = ix.strs[string(AppendKey(buf[:0], key))]
	}
	if !ok {
		return nil, false, nil
	}
	return ix.row(p), true, nil
}

// intPos finds the position of an integer key.
func (ix *Index) intPos(n int64) (int32, bool) {
	d := ix.dense.Load()
	if d == nil {
		d = ix.buildDense()
	}
	if d.pos == nil {
		p, ok := ix.ints[n]
		return p, ok
	}
	if n < d.min || uint64(n-d.min) >= uint64(len(d.pos)) {
		return 0, false
	}
	p := d.pos[n-d.min]
	return p, p != noPos
}

// buildDense makes the dense table of the integer keys, or records that
// they are too sparse for one.
func (ix *Index) buildDense() *denseKeys {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if d := ix.dense.Load(); d != nil {
		return d
	}
	d := &denseKeys{}
	if len(ix.ints) >= denseMin {
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for k := range ix.ints {
			lo, hi = min(lo, k), max(hi, k)
		}
		// At most about two slots a key: 4 bytes each, less than the map.
		if span := uint64(hi - lo); span < uint64(2*len(ix.ints)+1024) {
			d.min = lo
			d.pos = make([]int32, span+1)
			for i := range d.pos {
				d.pos[i] = noPos
			}
			for k, p := range ix.ints {
				d.pos[k-lo] = p
			}
		}
	}
	ix.dense.Store(d)
	return d
}

// Close implements Table.
func (ix *Index) Close() error { return nil }
