package file

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/record"
)

// Putting an int64, a string, a decimal or a timestamp into an `any` costs
// one heap allocation per value: at eight fields a record, that is most of
// the time a source spends. A boxer instead stores the values of one batch
// in typed slabs and builds each interface to point at its slot, which is
// exactly what the compiler's own boxing produces (an interface of a
// non-pointer type holds a pointer to an immutable copy of the value), but
// with one allocation per few hundred values.
//
// Safety rests on three facts: the interface layout (type word, data
// word) that the runtime and reflect rely on; slots are written once,
// before boxing, and never again (each batch gets fresh slabs, so a value
// handed out is never overwritten); the data word is a real pointer into
// the slab, so the garbage collector keeps the slab alive as long as any
// value boxed from it. TestBoxSurvivesGC exercises the last point.

// eface is the layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// boxable lists the types a slab may hold: none is pointer-shaped, so the
// interface's data word always points at the value.
type boxable interface {
	int64 | float64 | string | record.Dec | time.Time | record.LocalDate
}

// typeWord returns the interface type word of T.
func typeWord[T boxable]() unsafe.Pointer {
	var zero T
	var v any = zero
	return (*eface)(unsafe.Pointer(&v)).typ
}

// slab hands out interfaces to values of T stored in chunks.
type slab[T boxable] struct {
	typ   unsafe.Pointer
	chunk []T
	size  int
}

func newSlab[T boxable](size int) slab[T] {
	return slab[T]{typ: typeWord[T](), size: size}
}

// box stores v in the slab and returns it as an interface.
func (s *slab[T]) box(v T) any {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, s.size)
	}
	s.chunk = append(s.chunk, v)
	var out any
	e := (*eface)(unsafe.Pointer(&out))
	e.typ = s.typ
	e.data = unsafe.Pointer(&s.chunk[len(s.chunk)-1])
	return out
}

// boxer converts field text to values for one batch. A boxer must not be
// used for two batches: its slabs back the values already handed out.
type boxer struct {
	ints   slab[int64]
	floats slab[float64]
	strs   slab[string]
	decs   slab[record.Dec]
	times  slab[time.Time]
	dates  slab[record.LocalDate]
}

// newBoxer sizes the slabs' chunks for about n values of each kind.
func newBoxer(n int) *boxer {
	n = max(16, min(n, 1024))
	return &boxer{
		ints:   newSlab[int64](n),
		floats: newSlab[float64](n),
		strs:   newSlab[string](n),
		decs:   newSlab[record.Dec](n),
		times:  newSlab[time.Time](n),
		dates:  newSlab[record.LocalDate](n),
	}
}

// parse is record.ParseText with fast paths for the commonest shapes of
// text (plain integers, valid strings, decimals, timestamps without a zone
// or in UTC). Whatever a fast path does not take goes to record.ParseText,
// and what it takes it converts exactly as ParseText would; FuzzParseText
// checks that.
func (bx *boxer) parse(s string, t record.Type, loc *time.Location) (any, error) {
	if s == "" && t != record.String {
		return nil, nil
	}
	switch t {
	case record.String:
		if isASCII(s) || utf8.ValidString(s) {
			return bx.strs.box(s), nil
		}
	case record.Int:
		if v, ok := fastInt(s); ok {
			if v >= 0 && v < 256 {
				return v, nil // the runtime boxes small integers for free
			}
			return bx.ints.box(v), nil
		}
	case record.Float:
		if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return bx.floats.box(v), nil
		}
	case record.Decimal:
		if v, ok := fastDec(s); ok {
			return bx.decs.box(v), nil
		}
		if v, err := record.ParseDec(s); err == nil {
			return bx.decs.box(v), nil
		}
	case record.Timestamp:
		if v, ok := fastTimestamp(s, loc); ok {
			return bx.times.box(v), nil
		}
	case record.Date:
		if v, err := record.ParseDate(s); err == nil {
			return bx.dates.box(v), nil
		}
	}
	return record.ParseText(s, t, loc)
}
