package connector

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

// Preloaded is implemented by tables that answer from an Index they hold,
// and may replace with a fresher one between calls (a preload refreshed on
// a schedule). The enrich step and lookup() then read that Index field by
// field (Pos, Field, Fill), with no row made per record. A type that wraps
// an Index to change what Get answers must not implement it.
type Preloaded interface {
	Table
	Preloaded() *Index
}

// IndexOf returns the Index a table answers from: the table itself, or
// what a Preloaded table holds now; nil for other tables, which are read by
// Get.
func IndexOf(t Table) *Index {
	switch x := t.(type) {
	case *Index:
		return x
	case Preloaded:
		return x.Preloaded()
	}
	return nil
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
//     also in a table indexed by the key, and keys added in order need
//     neither);
//   - values are stored by field, in typed columns: numbers, dates and
//     timestamps hold no pointer, and a field with few distinct texts (a
//     region, a tier) holds a small number per row into its texts, so a
//     lookup reads a few bytes that stay in the processor's cache;
//   - interfaces are made when a value is read, pointing at its slot, so
//     reading allocates nothing but the row Get returns. Pos and Field read
//     single fields without a row.
//
// Storage once written is never written again (a key added twice gets a new
// position), so values handed out stay valid and unchanged.
type Index struct {
	schema *record.Schema
	keys   []string
	keyIdx []int
	width  int

	ints map[int64]int32  // single keys whose canonical text is an integer → position
	strs map[string]int32 // other keys, by KeyString → position
	run  keyRun           // integer keys while they come in order, instead of ints

	cols []column
	skip []bool               // fields not loaded (Only), nil when all are
	n    int32                // positions used
	odd  map[int32]record.Row // rows whose length is not the schema's, by position

	dense atomic.Pointer[denseKeys] // built by the first lookup after an Add
	mu    sync.Mutex                // serializes building dense
}

const (
	// dictMax is the most distinct texts a field keeps in its dictionary,
	// a code per row: past it the field holds unique values (names, ids),
	// kept as they come.
	dictMax = 1024
	// chunkDictMax is dictMax for a Chunk's column.
	chunkDictMax = 64
	// dictLen is the longest text worth keeping in a dictionary.
	dictLen = 128
	// denseMin is the fewest integer keys worth a dense table: a small map
	// is as fast.
	denseMin = 64
	// noPos marks an absent key in a dense table.
	noPos = math.MinInt32
)

// denseKeys maps the integer keys min..min+len(pos)-1 to positions by
// index: one read where a map hashes and probes. pos is nil when the keys
// are too sparse for it; noPos marks a key absent.
type denseKeys struct {
	min int64
	pos []int32
	// few holds the text keys and their positions when there are at most
	// fewMax of them (currencies, countries): comparing a few short texts
	// is faster than hashing one.
	few    []string
	fewPos []int32
	// packed holds the few keys as numbers, bytes and length, when none is
	// longer than 7 bytes: a key is found by comparing numbers, without a
	// call to compare texts.
	packed []uint64
	// slots holds the packed keys at the places a multiplication of each
	// by mult puts them, one key a place, when such a multiplier was
	// found: a key is found by one comparison, where comparing it with
	// each has the processor guess which one matches (and, for records
	// whose keys come in no order, guess wrong at most of them).
	slots *[16]packedSlot
	mult  uint64
}

// packedSlot is a packed key and its position; pos -1 for no key.
type packedSlot struct {
	key uint64
	pos int32
}

// slotOf is the place of a packed key among 16 slots.
func slotOf(w, mult uint64) uint64 { return (w * mult) >> 60 }

// placePacked finds a multiplier that puts each packed key in a slot of
// its own, trying a fixed series of odd numbers (most sets of eight keys
// have one among the first dozen).
func (d *denseKeys) placePacked() {
	x := uint64(0x9e3779b97f4a7c15)
	for range 1000 {
		x += 0x9e3779b97f4a7c15 // splitmix64
		m := x
		m = (m ^ m>>30) * 0xbf58476d1ce4e5b9
		m = (m ^ m>>27) * 0x94d049bb133111eb
		m = (m ^ m>>31) | 1
		var slots [16]packedSlot
		for i := range slots {
			slots[i].pos = -1
		}
		ok := true
		for i, w := range d.packed {
			e := &slots[slotOf(w, m)]
			if e.pos >= 0 {
				ok = false
				break
			}
			*e = packedSlot{key: w, pos: d.fewPos[i]}
		}
		if ok {
			d.slots, d.mult = &slots, m
			return
		}
	}
}

// packKey is a text of at most 7 bytes as a number: its bytes, and its
// length in the top byte ("a" and "a\x00" differ).
func packKey(s string) uint64 {
	w := uint64(len(s)) << 56
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	return w
}

// fewMax is the most text keys looked up by comparing each.
const fewMax = 8

// keyRun holds integer keys min..max added one after the other, at
// positions first.. (a file sorted by its key, the common case): a key's
// position is computed, with no map built and nothing read. The first key
// out of order moves the run into the map.
type keyRun struct {
	on       bool
	min, max int64
	first    int32
}

// add extends the run with key n at position p, and reports whether it
// could.
func (r *keyRun) add(n int64, p int32, empty bool) bool {
	switch {
	case !r.on && empty:
		*r = keyRun{on: true, min: n, max: n, first: p}
		return true
	case r.on && r.max < math.MaxInt64 && n == r.max+1 && p == r.first+int32(n-r.min):
		r.max = n
		return true
	}
	return false
}

// colKind is how a column stores its values.
type colKind uint8

const (
	kNone  colKind = iota // only nulls so far
	kInt                  // int64
	kFloat                // float64
	kText                 // string: in dict by code while few, then in texts
	kDec                  // record.Dec
	kTime                 // time.Time
	kDate                 // record.LocalDate
	kAny                  // anything else, or values of several types
)

// column holds one field's values by position. Only the slice of its kind
// is used; nulls marks null positions.
type column struct {
	kind   colKind
	nulls  []uint64
	ints   []int64
	floats []float64
	codes  []uint16 // kText while dict is small: dict[codes[p]]
	dict   []string
	dictIx map[string]uint16
	texts  []string // kText once dict is full
	decs   []record.Dec
	times  []time.Time
	dates  []record.LocalDate
	anys   []any

	// chunk: a Chunk's column, whose texts are given for the time of the
	// call; what it keeps it copies into arena.
	chunk    bool
	arena    []byte
	sizeHint int // a Chunk's column: the rows it is made for
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
		strs: map[string]int32{}, ints: map[int64]int32{}, cols: make([]column, schema.Len())}
	for _, k := range keys {
		i, ok := schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("key field %q is not among the fields (%s)", k, strings.Join(schema.Names(), ", "))
		}
		ix.keyIdx = append(ix.keyIdx, i)
	}
	return ix, nil
}

// Only makes the index keep, of the rows added after it, only the key
// fields and fields: the others read as null (see FieldLoader). A name that
// is no field is passed over: the step that reads it reports it.
func (ix *Index) Only(fields []string) {
	skip := make([]bool, ix.width)
	for i := range skip {
		skip[i] = true
	}
	for _, k := range ix.keyIdx {
		skip[k] = false
	}
	for _, f := range fields {
		if i, ok := ix.schema.Index(f); ok {
			skip[i] = false
		}
	}
	ix.skip = skip
}

// Loaded tells whether field i is kept: false for a field Only left out.
func (ix *Index) Loaded(i int) bool { return ix.skip == nil || i >= len(ix.skip) || !ix.skip[i] }

// Add indexes a row. A later row with the same key replaces the earlier one.
// The index keeps the values, not r.
func (ix *Index) Add(r record.Row) {
	p := ix.n
	ix.n++
	for i := range ix.cols {
		var v any
		if i < len(r) {
			v = r[i]
		}
		if ix.skip != nil && ix.skip[i] {
			continue
		}
		ix.cols[i].add(int(p), v)
	}
	if len(r) != ix.width {
		if ix.odd == nil {
			ix.odd = map[int32]record.Row{}
		}
		ix.odd[p] = append(record.Row(nil), r...)
	}
	ix.dense.Store(nil)
	if len(ix.keyIdx) == 1 {
		ix.addKey(r[ix.keyIdx[0]], p)
		return
	}
	var key [4]any
	vals := key[:0]
	for _, k := range ix.keyIdx {
		vals = append(vals, r[k])
	}
	ix.strs[string(AppendKey(nil, vals))] = p
}

// addKey maps the single key k to position p.
func (ix *Index) addKey(k any, p int32) {
	if n, ok := asInt(k); ok {
		ix.addIntKey(n, p)
		return
	}
	if s, ok := k.(string); ok {
		ix.strs[strings.Clone(s)] = p // not the whole text the value is part of
		return
	}
	var buf [64]byte
	ix.strs[string(AppendKey(buf[:0], []any{k}))] = p
}

// addIntKey maps the single integer key n to position p.
func (ix *Index) addIntKey(n int64, p int32) {
	if ix.run.add(n, p, len(ix.ints) == 0) {
		return
	}
	if ix.run.on {
		for k := ix.run.min; ; k++ {
			ix.ints[k] = ix.run.first + int32(k-ix.run.min)
			if k == ix.run.max {
				break
			}
		}
		ix.run = keyRun{}
	}
	ix.ints[n] = p
}

// Grow makes room for about n rows in all, so that loading them does not
// copy the columns as they grow. Columns take their kind from their first
// value: call it after the first rows.
func (ix *Index) Grow(n int) {
	for i := range ix.cols {
		ix.cols[i].grow(n)
	}
}

// grow makes room for n values in all in the slice of the column's kind.
func (c *column) grow(n int) {
	switch c.kind {
	case kInt:
		c.ints = growTo(c.ints, n)
	case kFloat:
		c.floats = growTo(c.floats, n)
	case kText:
		if c.texts != nil {
			c.texts = growTo(c.texts, n)
		} else {
			c.codes = growTo(c.codes, n)
		}
	case kDec:
		c.decs = growTo(c.decs, n)
	case kTime:
		c.times = growTo(c.times, n)
	case kDate:
		c.dates = growTo(c.dates, n)
	case kAny:
		c.anys = growTo(c.anys, n)
	}
}

// growTo returns s with room for n values in all.
func growTo[T any](s []T, n int) []T {
	if n > len(s) {
		return slices.Grow(s, n-len(s))
	}
	return s
}

// add stores v at position p, the column's next.
func (c *column) add(p int, v any) {
	if v == nil {
		for p/64 >= len(c.nulls) {
			c.nulls = append(c.nulls, 0)
		}
		c.nulls[p/64] |= 1 << (p % 64)
		c.fill(p + 1)
		return
	}
	if c.kind == kNone {
		c.kind = kindOf(v)
		c.fill(p) // the nulls so far, as zero values
	}
	if c.kind != kAny && kindOf(v) != c.kind {
		c.toAny(p)
	}
	switch c.kind {
	case kInt:
		c.ints = append(c.ints, v.(int64))
	case kFloat:
		c.floats = append(c.floats, v.(float64))
	case kText:
		c.addText(v.(string))
	case kDec:
		c.decs = append(c.decs, v.(record.Dec))
	case kTime:
		c.times = append(c.times, v.(time.Time))
	case kDate:
		c.dates = append(c.dates, v.(record.LocalDate))
	default:
		c.anys = append(c.anys, v)
	}
}

// fill pads the column's slice with zero values (nulls' slots) up to n
// values.
func (c *column) fill(n int) {
	switch c.kind {
	case kInt:
		for len(c.ints) < n {
			c.ints = append(c.ints, 0)
		}
	case kFloat:
		for len(c.floats) < n {
			c.floats = append(c.floats, 0)
		}
	case kText:
		for c.texts != nil && len(c.texts) < n {
			c.texts = append(c.texts, "")
		}
		for c.texts == nil && len(c.codes) < n {
			c.codes = append(c.codes, 0)
		}
	case kDec:
		for len(c.decs) < n {
			c.decs = append(c.decs, record.Dec{})
		}
	case kTime:
		for len(c.times) < n {
			c.times = append(c.times, time.Time{})
		}
	case kDate:
		for len(c.dates) < n {
			c.dates = append(c.dates, 0)
		}
	case kAny:
		for len(c.anys) < n {
			c.anys = append(c.anys, nil)
		}
	}
}

func kindOf(v any) colKind {
	switch v.(type) {
	case int64:
		return kInt
	case float64:
		return kFloat
	case string:
		return kText
	case record.Dec:
		return kDec
	case time.Time:
		return kTime
	case record.LocalDate:
		return kDate
	}
	return kAny
}

// addText stores a text: by its code while the field has few distinct
// texts.
func (c *column) addText(s string) {
	if c.texts != nil {
		if c.chunk {
			s = c.keep(s)
		}
		c.texts = append(c.texts, s) // an index's: kept as it comes
		return
	}
	if len(c.dict) <= fewMax {
		// A few texts (regions, tiers): comparing them costs less than
		// hashing.
		for code, t := range c.dict {
			if t == s {
				c.codes = append(c.codes, uint16(code))
				return
			}
		}
	} else if code, ok := c.dictIx[s]; ok {
		c.codes = append(c.codes, code)
		return
	}
	if len(c.dict) < c.dictCap() && len(s) <= dictLen {
		if c.dictIx == nil {
			c.dictIx = map[string]uint16{}
		}
		s = c.keep(s)
		c.dictIx[s] = uint16(len(c.dict))
		c.codes = append(c.codes, uint16(len(c.dict)))
		c.dict = append(c.dict, s)
		return
	}
	// Many distinct texts: keep them as they come.
	c.texts = make([]string, len(c.codes), max(2*len(c.codes), cap(c.codes), 64)) // the room Grow made
	for i, code := range c.codes {
		if !c.null(i) {
			c.texts[i] = c.dict[code]
		}
	}
	if c.chunk {
		s = c.keep(s)
	}
	c.texts = append(c.texts, s)
	c.codes, c.dict, c.dictIx = nil, nil, nil
}

// keep returns a copy of s for the column to keep: in a dictionary, not
// the whole text s may be part of; in a Chunk, not a text that is reused.
func (c *column) keep(s string) string {
	if !c.chunk {
		return strings.Clone(s)
	}
	// Texts are appended to one buffer: when it grows, the texts already
	// kept stay in the old one.
	if cap(c.arena)-len(c.arena) < len(s) {
		c.arena = make([]byte, 0, max(2*cap(c.arena), 4<<10, len(s)))
	}
	at := len(c.arena)
	c.arena = append(c.arena, s...)
	return unsafe.String(unsafe.SliceData(c.arena[at:]), len(s))
}

// dictCap is the most distinct texts the column keeps by code. A chunk's
// column keeps fewer than the index's: a field of many distinct texts
// (names) gives up its codes early in each chunk, one of few (regions,
// tiers) keeps them, and the index's column, which sees them all, decides.
func (c *column) dictCap() int {
	if c.chunk {
		return chunkDictMax
	}
	return dictMax
}

// toAny turns the column, holding p values, into one of any values.
func (c *column) toAny(p int) {
	anys := make([]any, p, max(2*p, 16))
	for i := range anys {
		anys[i] = c.value(i)
	}
	*c = column{kind: kAny, nulls: c.nulls, anys: anys}
}

func (c *column) null(p int) bool {
	return p/64 < len(c.nulls) && c.nulls[p/64]&(1<<(p%64)) != 0
}

// value returns the value at p as an interface pointing at its slot.
func (c *column) value(p int) any {
	if c.null(p) {
		return nil
	}
	switch c.kind {
	case kInt:
		if x := c.ints[p]; x >= 0 && x < 256 {
			return x // the runtime's own boxes
		}
		return record.BoxAt(&c.ints[p])
	case kFloat:
		return record.BoxAt(&c.floats[p])
	case kText:
		if c.texts != nil {
			return record.BoxAt(&c.texts[p])
		}
		return record.BoxAt(&c.dict[c.codes[p]])
	case kDec:
		return record.BoxAt(&c.decs[p])
	case kTime:
		return record.BoxAt(&c.times[p])
	case kDate:
		return record.BoxAt(&c.dates[p])
	case kAny:
		return c.anys[p]
	}
	return nil
}

// Len is the number of distinct keys.
func (ix *Index) Len() int {
	n := len(ix.strs) + len(ix.ints)
	if ix.run.on {
		n += int(ix.run.max-ix.run.min) + 1
	}
	return n
}

// Schema implements Table.
func (ix *Index) Schema() *record.Schema { return ix.schema }

// Keys implements Table.
func (ix *Index) Keys() []string { return ix.keys }

// Get implements Table. The row is made for the caller.
func (ix *Index) Get(_ context.Context, key []any) (record.Row, bool, error) {
	if ix.skip != nil {
		for i, skip := range ix.skip {
			if skip {
				return nil, false, fmt.Errorf("the lookup was loaded without its field %q, which no step was found to read", ix.schema.Field(i).Name)
			}
		}
	}
	p, ok, err := ix.Pos(key)
	if !ok || err != nil {
		return nil, false, err
	}
	if r, odd := ix.odd[int32(p)]; odd {
		return r, true, nil
	}
	row := make(record.Row, ix.width)
	for i := range ix.cols {
		row[i] = ix.cols[i].value(p)
	}
	return row, true, nil
}

// Pos finds the position of key's row, to read its fields with Field: what
// Get does, without making a row.
func (ix *Index) Pos(key []any) (int, bool, error) {
	if len(key) != len(ix.keyIdx) {
		return 0, false, fmt.Errorf("lookup takes %d key values (%s), got %d", len(ix.keyIdx), strings.Join(ix.keys, ", "), len(key))
	}
	if len(key) == 1 {
		p, ok := ix.PosOf(key[0])
		return p, ok, nil
	}
	var buf [64]byte
	p, ok := ix.strs[string(AppendKey(buf[:0], key))] // no allocation for the lookup
	return int(p), ok, nil
}

// PosOf is Pos for an index keyed by one field, given that field's value:
// no slice to make for the key.
func (ix *Index) PosOf(v any) (int, bool) {
	if len(ix.keyIdx) != 1 {
		p, ok, _ := ix.Pos([]any{v})
		return p, ok
	}
	var p int32
	var ok bool
	switch x := v.(type) {
	case int64: // the commonest keys first
		p, ok = ix.intPos(x)
	case string:
		if n, isInt := asInt(x); isInt { // a number's text is the number's key
			p, ok = ix.intPos(n)
		} else {
			p, ok = ix.strPos(x)
		}
	default:
		if n, isInt := asInt(v); isInt {
			p, ok = ix.intPos(n)
		} else {
			var buf [64]byte
			p, ok = ix.strs[string(AppendKey(buf[:0], []any{v}))]
		}
	}
	return int(p), ok
}

// Field returns field i of the row at position p (from Pos), null when the
// row has no such field.
func (ix *Index) Field(p, i int) any {
	if ix.odd != nil {
		if r, odd := ix.odd[int32(p)]; odd {
			if i < len(r) {
				return r[i]
			}
			return nil
		}
	}
	return ix.cols[i].value(p)
}

// DecAt returns field i of the row at position p (from Pos) when it is a
// decimal: Field, without the interface. ok is false for anything else (a
// null, another type), which Field tells.
func (ix *Index) DecAt(p, i int) (d record.Dec, ok bool) {
	c := &ix.cols[i]
	if ix.odd != nil || c.kind != kDec || c.null(p) {
		return record.Dec{}, false
	}
	return c.decs[p], true
}

// Combos are fields of few texts each, taken together: Codes[p] numbers
// the combination of their values at position p, and Values[c] holds
// combination c's values, as Field gives them. A step that adds such fields
// reads one small code per record instead of one per field: the columns'
// codes are read at random places, and these are a quarter of their size.
type Combos struct {
	Codes  []uint8
	Values [][]any
}

// combosMax is the most combinations Combos numbers.
const combosMax = 256

// Combos returns the combinations of the fields, or nil when one of them
// is not of few texts without nulls or there are more than combosMax
// combinations.
func (ix *Index) Combos(fields []int) *Combos {
	if ix.odd != nil || len(fields) == 0 {
		return nil
	}
	cols := make([]*column, len(fields))
	span := 1 // the number of value tuples the fields' dictionaries allow
	for k, f := range fields {
		c := &ix.cols[f]
		if !ix.Loaded(f) || c.nulls != nil || c.kind != kText || c.texts != nil || len(c.codes) != int(ix.n) {
			return nil
		}
		cols[k] = c
		if span *= max(len(c.dict), 1); span > 1<<16 {
			return nil
		}
	}
	n := int(ix.n)
	ids := make([]uint16, span) // a tuple's combination + 1, 0 for none yet
	cb := &Combos{Codes: make([]uint8, n)}
	for p := range n {
		t := 0
		for _, c := range cols {
			t = t*len(c.dict) + int(c.codes[p])
		}
		id := ids[t]
		if id == 0 {
			if len(cb.Values) == combosMax {
				return nil
			}
			vals := make([]any, len(cols))
			for k, c := range cols {
				vals[k] = record.BoxAt(&c.dict[c.codes[p]])
			}
			cb.Values = append(cb.Values, vals)
			id = uint16(len(cb.Values))
			ids[t] = id
		}
		cb.Codes[p] = uint8(id - 1)
	}
	return cb
}

// Fill sets rows[i][at] to field i of the row at pos[i], for every pos[i]
// that is not negative: Field for many rows, reading the column in one
// loop.
func (ix *Index) Fill(field int, pos []int32, rows []record.Row, at int) {
	c := &ix.cols[field]
	if ix.odd != nil || c.nulls != nil || c.kind != kText || c.texts != nil {
		for i, p := range pos {
			if p >= 0 {
				rows[i][at] = ix.Field(int(p), field)
			}
		}
		return
	}
	// Few distinct texts and no null: the commonest added field.
	codes, dict := c.codes, c.dict
	for i, p := range pos {
		if p >= 0 {
			rows[i][at] = record.BoxAt(&dict[codes[p]])
		}
	}
}

// intPos finds the position of an integer key.
func (ix *Index) intPos(n int64) (int32, bool) {
	if r := &ix.run; r.on {
		if n < r.min || n > r.max {
			return 0, false
		}
		return r.first + int32(n-r.min), true
	}
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

// strPos finds the position of a single text key.
func (ix *Index) strPos(s string) (int32, bool) {
	d := ix.dense.Load()
	if d == nil {
		d = ix.buildDense()
	}
	if d.few == nil {
		p, ok := ix.strs[s]
		return p, ok
	}
	if d.packed != nil {
		if len(s) > 7 {
			return 0, false
		}
		w := packKey(s)
		if d.slots != nil {
			if e := &d.slots[slotOf(w, d.mult)]; e.key == w && e.pos >= 0 {
				return e.pos, true
			}
			return 0, false
		}
		for i, k := range d.packed {
			if k == w {
				return d.fewPos[i], true
			}
		}
		return 0, false
	}
	for i, k := range d.few {
		if k == s {
			return d.fewPos[i], true
		}
	}
	return 0, false
}

// buildDense makes the dense table of the integer keys, or records that
// they are too sparse for one, and the list of a few text keys.
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
	if n := len(ix.strs); n > 0 && n <= fewMax && len(ix.keyIdx) == 1 {
		for k, p := range ix.strs {
			d.few, d.fewPos = append(d.few, k), append(d.fewPos, p)
		}
		if !slices.ContainsFunc(d.few, func(k string) bool { return len(k) > 7 }) {
			for _, k := range d.few {
				d.packed = append(d.packed, packKey(k))
			}
			d.placePacked()
		}
	}
	ix.dense.Store(d)
	return d
}

// Close implements Table.
func (ix *Index) Close() error { return nil }
