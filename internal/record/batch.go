package record

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
)

// Field is one named, typed column of a Schema.
type Field struct {
	Name string
	Type Type
}

// Schema is the ordered list of fields of the rows of a Batch. A Schema is
// immutable once built: steps that change fields build a new one (with
// Derive). Only its row capacity hint (RowCap) changes, as later steps are
// bound.
type Schema struct {
	fields []Field
	index  map[string]int
	room   *atomic.Int32 // the widest schema derived along this one's chain
}

// NewSchema builds a schema; a repeated name is an error.
func NewSchema(fields ...Field) (*Schema, error) {
	s := &Schema{fields: append([]Field(nil), fields...), index: make(map[string]int, len(fields)), room: new(atomic.Int32)}
	s.room.Store(int32(min(len(fields), math.MaxInt32)))
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("field %d has no name", i+1)
		}
		if _, dup := s.index[f.Name]; dup {
			return nil, fmt.Errorf("field %q appears twice", f.Name)
		}
		s.index[f.Name] = i
	}
	return s, nil
}

// MustSchema is NewSchema for code and tests that know the fields are valid.
func MustSchema(fields ...Field) *Schema {
	s, err := NewSchema(fields...)
	if err != nil {
		panic(err)
	}
	return s
}

// Derive is NewSchema for the schema of rows that a step makes from rows of
// base (adding, removing or retyping fields). Base and the derived schema
// share one row capacity hint: see RowCap.
func (base *Schema) Derive(fields ...Field) (*Schema, error) {
	s, err := NewSchema(fields...)
	if err != nil || base == nil || base.room == nil {
		return s, err
	}
	s.room = base.room
	for n := int32(len(fields)); ; {
		cur := s.room.Load()
		if cur >= n || s.room.CompareAndSwap(cur, n) {
			break
		}
	}
	return s, nil
}

// RowCap is the capacity worth giving a row of s: the length of the widest
// schema derived from s, or from a schema s was derived from, when the
// steps of a pipeline were bound. A source or a step that makes rows of s
// with that capacity (and says so with Batch.OwnCap) lets the later steps
// add their fields in place instead of copying each row. It is a hint:
// whoever widens a row checks its capacity.
func (s *Schema) RowCap() int {
	if s.room == nil {
		return len(s.fields)
	}
	return max(len(s.fields), int(s.room.Load()))
}

// Len is the number of fields.
func (s *Schema) Len() int { return len(s.fields) }

// Field returns field i.
func (s *Schema) Field(i int) Field { return s.fields[i] }

// Fields returns a copy of the fields.
func (s *Schema) Fields() []Field { return append([]Field(nil), s.fields...) }

// Names returns the field names in order.
func (s *Schema) Names() []string {
	n := make([]string, len(s.fields))
	for i, f := range s.fields {
		n[i] = f.Name
	}
	return n
}

// Index returns the position of a field.
func (s *Schema) Index(name string) (int, bool) {
	i, ok := s.index[name]
	return i, ok
}

// Equal reports whether both schemas have the same names and types in order.
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil || len(s.fields) != len(o.fields) {
		return false
	}
	for i := range s.fields {
		if s.fields[i] != o.fields[i] {
			return false
		}
	}
	return true
}

// String renders "name type, name type".
func (s *Schema) String() string {
	parts := make([]string, len(s.fields))
	for i, f := range s.fields {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return strings.Join(parts, ", ")
}

// Row holds one record's values by field position; see Type for the Go
// representation of each type. nil is null.
type Row []any

// Position is a source's opaque resume point. The engine stores it and hands
// it back to the source; only the source interprets it.
type Position []byte

// Reject is a record that did not make it: its place in the source, the step
// that refused it, why, and the record as the source had it.
type Reject struct {
	Line  int64  // place inside the batch's Origin (a line, a row number, an offset)
	Step  string // "source", "map[2]", "sink", ...
	Field string // the field at fault, when one is
	Err   string // the reason, naming field, value and cause
	Raw   []byte // the original record (source text, or JSON of the row)
}

// Batch is a run of records read from one task, in source order. Rows,
// Lines and (when set) Raw are parallel slices. Every record read is in
// exactly one of: Rows (still going), Rejects, or counted in Filtered.
type Batch struct {
	Schema *Schema
	Rows   []Row
	Lines  []int64  // place of each row inside Origin, for dead letters
	Raw    [][]byte // optional: the source text of each row

	Origin   string   // where the rows came from: a file name, a table
	Pos      Position // resume point after the last record of this batch
	Read     int      // records the source consumed to make this batch
	Bytes    int64    // input bytes the source consumed to make this batch (progress)
	Filtered int      // records dropped on purpose (filter, dedupe, drop)
	Rejects  []Reject

	// Decode, when set, is work the source left for the engine's workers:
	// turning the batch's text into Rows, Lines, Raw and Rejects. The engine
	// calls it once, on a worker, before any step; sources set it only when
	// the engine asked for it (connector.Env.DeferDecode).
	Decode func(b *Batch)
	// Prepared holds what a sink's Prepare made of the batch on a worker
	// (encoded bytes), for its Write to use.
	Prepared any
	// OwnCap reports that each row's capacity beyond its length is its own:
	// no other row's values (in this batch or elsewhere) live there, so a
	// step may widen a row in place, up to cap(row). Whoever makes the rows
	// sets it only when it made them so; whoever puts a row of other making
	// into Rows clears it. False, the safe default, means a row's spare
	// capacity may belong to someone else.
	OwnCap bool

	dropped []bool // marks of Drop/RejectRow until Compact
}

// Loc renders the place of line as origin:line.
func (b *Batch) Loc(line int64) string {
	if b.Origin == "" {
		return fmt.Sprintf("#%d", line)
	}
	return fmt.Sprintf("%s:%d", b.Origin, line)
}

// RejectRow moves row i to the rejects (effective at Compact). When the
// source kept no raw text, the row is kept as JSON.
func (b *Batch) RejectRow(i int, step, field, reason string) {
	b.mark(i)
	var raw []byte
	if b.Raw != nil && b.Raw[i] != nil {
		raw = b.Raw[i]
	} else {
		raw = RowJSON(b.Schema, b.Rows[i])
	}
	var line int64
	if b.Lines != nil {
		line = b.Lines[i]
	}
	b.Rejects = append(b.Rejects, Reject{Line: line, Step: step, Field: field, Err: reason, Raw: raw})
}

// Drop filters row i out on purpose (effective at Compact).
func (b *Batch) Drop(i int) {
	b.mark(i)
	b.Filtered++
}

func (b *Batch) mark(i int) {
	if b.dropped == nil {
		b.dropped = make([]bool, len(b.Rows))
	}
	b.dropped[i] = true
}

// Compact removes the rows marked by Drop and RejectRow, keeping order.
func (b *Batch) Compact() {
	if b.dropped == nil {
		return
	}
	w := 0
	for r := range b.Rows {
		if b.dropped[r] {
			continue
		}
		b.Rows[w] = b.Rows[r]
		if b.Lines != nil {
			b.Lines[w] = b.Lines[r]
		}
		if b.Raw != nil {
			b.Raw[w] = b.Raw[r]
		}
		w++
	}
	clear(b.Rows[w:])
	b.Rows = b.Rows[:w]
	if b.Lines != nil {
		b.Lines = b.Lines[:w]
	}
	if b.Raw != nil {
		clear(b.Raw[w:])
		b.Raw = b.Raw[:w]
	}
	b.dropped = nil
}

// Len is the number of rows still going.
func (b *Batch) Len() int { return len(b.Rows) }

// RowJSON renders a row as a JSON object in field order.
func RowJSON(s *Schema, r Row) []byte { return AppendRowJSON(make([]byte, 0, 64), s, r) }

// AppendRowJSON appends the JSON object of a row to dst.
func AppendRowJSON(dst []byte, s *Schema, r Row) []byte {
	dst = append(dst, '{')
	for i, v := range r {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s.fields[i].Name)
		dst = append(dst, ':')
		dst = AppendJSON(dst, v)
	}
	return append(dst, '}')
}

// Size estimates the memory of a value in bytes, for batch byte limits.
func Size(v any) int {
	switch x := v.(type) {
	case string:
		return 16 + len(x)
	case []byte:
		return 24 + len(x)
	case map[string]any:
		n := 48
		for k, e := range x {
			n += 16 + len(k) + Size(e)
		}
		return n
	case []any:
		n := 24
		for _, e := range x {
			n += Size(e)
		}
		return n
	}
	return 16
}

// Limits bound what a source puts into one batch and one record.
type Limits struct {
	BatchRows      int // at most this many rows in a batch
	BatchBytes     int // stop filling a batch once its input text reaches this
	MaxRecordBytes int // a bigger record is a reject, never buffered whole
}

// DefaultLimits are used when a pipeline sets none.
var DefaultLimits = Limits{BatchRows: 1024, BatchBytes: 4 << 20, MaxRecordBytes: 16 << 20}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
