package connector

import (
	"fmt"
	"math/bits"
	"strings"
)

// A Chunk is consecutive rows of an Index decoded apart from it, into
// typed columns: a loader decodes its batches into chunks on several
// goroutines and adds them to the index in order with AddChunk, with no row
// made and no value boxed for the common types. AddChunk gives the index
// what Add of the same rows, in order, would.
//
// A row is its loaded fields (Loaded) set once each, by Int, Text or Value,
// then EndRow. A chunk belongs to one goroutine until it is added.
type Chunk struct {
	cols []column
	n    int // rows ended
	set  int // fields set in the row being made
	want int // fields a row sets
}

// NewChunk returns an empty chunk of rows for ix, with room for about rows
// rows.
func (ix *Index) NewChunk(rows int) *Chunk {
	c := &Chunk{cols: make([]column, ix.width)}
	for i := range c.cols {
		if ix.Loaded(i) {
			c.want++
			c.cols[i].chunk = true
			c.cols[i].sizeHint = rows
		}
	}
	return c
}

// Int sets field i of the row being made to v.
func (c *Chunk) Int(i int, v int64) {
	if col := c.next(i, kInt); col.kind == kInt {
		col.ints = append(col.ints, v)
	} else {
		col.add(c.n, v)
	}
}

// Text sets field i of the row being made to s, which the chunk copies
// if it keeps it: s need only stay the same for the time of the call.
func (c *Chunk) Text(i int, s string) {
	if col := c.next(i, kText); col.kind == kText {
		col.addText(s)
	} else {
		col.add(c.n, col.keep(s))
	}
}

// next counts field i set in the row being made and returns its column; a
// column that holds no value yet becomes one of kind k, with room for the
// rows the chunk is made for.
func (c *Chunk) next(i int, k colKind) *column {
	c.set++
	col := &c.cols[i]
	if col.kind == kNone {
		col.kind = k
		col.grow(max(col.sizeHint, c.n+1))
		col.fill(c.n) // the nulls so far, as zero values
	}
	return col
}

// Value sets field i of the row being made to v: nil for null.
func (c *Chunk) Value(i int, v any) {
	c.set++
	c.cols[i].add(c.n, v)
}

// EndRow ends the row being made. It panics when the row did not set each
// loaded field once: a loader's mistake, which would shift every later
// value of the column.
func (c *Chunk) EndRow() {
	if c.set != c.want {
		panic(fmt.Sprintf("connector: a chunk's row set %d fields, the index loads %d", c.set, c.want))
	}
	c.set = 0
	c.n++
}

// Len is the number of rows ended.
func (c *Chunk) Len() int { return c.n }

// AddChunk adds the rows of c after those already in the index, as Add
// would one by one. c is not used again.
func (ix *Index) AddChunk(c *Chunk) {
	if c.set != 0 {
		panic("connector: a chunk added in the middle of a row")
	}
	base := ix.n
	for i := range ix.cols {
		if ix.Loaded(i) {
			ix.cols[i].merge(int(base), &c.cols[i], c.n)
		}
	}
	ix.n += int32(c.n)
	ix.dense.Store(nil)
	if len(ix.keyIdx) == 1 {
		k := &c.cols[ix.keyIdx[0]]
		if k.kind == kInt && k.nulls == nil {
			for r, n := range k.ints[:c.n] {
				ix.addIntKey(n, base+int32(r))
			}
			return
		}
		for r := range c.n {
			ix.addKey(k.value(r), base+int32(r))
		}
		return
	}
	var key [4]any
	for r := range c.n {
		vals := key[:0]
		for _, k := range ix.keyIdx {
			vals = append(vals, c.cols[k].value(r))
		}
		ix.strs[string(AppendKey(nil, vals))] = base + int32(r)
	}
}

// merge appends the n values of s, a chunk's column, after the base values
// the column holds.
func (col *column) merge(base int, s *column, n int) {
	if s.kind == kNone || (col.kind != kNone && col.kind != s.kind) || col.kind == kAny {
		col.mergeEach(base, s, n, 0)
		return
	}
	if col.kind == kNone {
		col.kind = s.kind
		col.fill(base) // the nulls so far, as zero values
	}
	switch s.kind {
	case kInt:
		col.ints = append(col.ints, s.ints[:n]...)
	case kFloat:
		col.floats = append(col.floats, s.floats[:n]...)
	case kDec:
		col.decs = append(col.decs, s.decs[:n]...)
	case kTime:
		col.times = append(col.times, s.times[:n]...)
	case kDate:
		col.dates = append(col.dates, s.dates[:n]...)
	case kText:
		if done := col.mergeText(s, n); done < n {
			col.mergeEach(base, s, n, done)
			return
		}
	default:
		col.mergeEach(base, s, n, 0)
		return
	}
	for w, word := range s.nulls {
		for ; word != 0; word &= word - 1 {
			col.setNull(base + w*64 + bits.TrailingZeros64(word))
		}
	}
}

// mergeText appends the texts of s while the column keeps codes, and
// returns how many it appended: n, or fewer when the column's dictionary
// filled up (the rest is for mergeEach).
func (col *column) mergeText(s *column, n int) int {
	if col.texts != nil {
		if s.texts != nil {
			col.texts = append(col.texts, s.texts[:n]...)
			return n
		}
		for p := range n {
			col.texts = append(col.texts, s.dict[s.codes[p]])
		}
		return n
	}
	if s.texts != nil {
		return 0
	}
	// Both keep codes: the chunk's, translated to the column's.
	to := make([]uint16, len(s.dict))
	for k, t := range s.dict {
		code, ok := col.dictIx[t]
		if !ok {
			if len(col.dict) >= dictMax || len(t) > dictLen {
				return 0
			}
			if col.dictIx == nil {
				col.dictIx = map[string]uint16{}
			}
			t = strings.Clone(t) // not the whole text the value is part of
			code = uint16(len(col.dict))
			col.dictIx[t] = code
			col.dict = append(col.dict, t)
		}
		to[k] = code
	}
	for _, code := range s.codes[:n] {
		col.codes = append(col.codes, to[code])
	}
	return n
}

// mergeEach appends the values of s from from to n one by one, as Add does.
func (col *column) mergeEach(base int, s *column, n, from int) {
	for p := from; p < n; p++ {
		col.add(base+p, s.value(p))
	}
}

// setNull marks position p null.
func (col *column) setNull(p int) {
	for p/64 >= len(col.nulls) {
		col.nulls = append(col.nulls, 0)
	}
	col.nulls[p/64] |= 1 << (p % 64)
}
