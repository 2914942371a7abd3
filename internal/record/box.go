package record

import (
	"time"
	"unsafe"
)

// Putting an int64, a string, a decimal or a timestamp into an `any` costs
// one heap allocation per value: at eight fields a record, that is most of
// the time a source spends, and a table of many rows held for a run is as
// many small objects for the garbage collector to visit. A Slab instead
// stores values in typed chunks and builds each interface to point at its
// slot, which is exactly what the compiler's own boxing produces (an
// interface of a non-pointer type holds a pointer to an immutable copy of
// the value), with one allocation per chunk.
//
// Safety rests on three facts: the interface layout (type word, data word)
// that the runtime and reflect rely on; slots are written once, before
// boxing, and never again (a full chunk is replaced, never reused), so a
// value handed out is never overwritten; the data word is a real pointer
// into the chunk, so the garbage collector keeps the chunk alive as long as
// any value boxed from it.

// eface is the layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// Boxable lists the types a Slab may hold: none is pointer-shaped, so the
// interface's data word always points at the value.
type Boxable interface {
	int64 | float64 | string | Dec | time.Time | LocalDate
}

// typeWord returns the interface type word of T.
func typeWord[T Boxable]() unsafe.Pointer {
	var zero T
	var v any = zero
	return (*eface)(unsafe.Pointer(&v)).typ
}

// typeWords are the type words of the Boxable types, made once: making one
// boxes a zero value, which allocates for the larger types.
var typeWords = [...]unsafe.Pointer{typeWord[int64](), typeWord[float64](), typeWord[string](),
	typeWord[Dec](), typeWord[time.Time](), typeWord[LocalDate]()}

// typeWordOf is typeWord without an allocation.
func typeWordOf[T Boxable]() unsafe.Pointer {
	switch any((*T)(nil)).(type) {
	case *int64:
		return typeWords[0]
	case *float64:
		return typeWords[1]
	case *string:
		return typeWords[2]
	case *Dec:
		return typeWords[3]
	case *time.Time:
		return typeWords[4]
	}
	return typeWords[5]
}

// BoxAt returns an interface holding *p, equal in every way to any(*p),
// without copying the value: the interface points at *p. The caller
// guarantees that *p is never written again (a slot of storage written once);
// the interface keeps that storage alive.
func BoxAt[T Boxable](p *T) any {
	var out any
	e := (*eface)(unsafe.Pointer(&out))
	e.typ = typeWordOf[T]()
	e.data = unsafe.Pointer(p)
	return out
}

// Slab hands out interfaces to values of T stored in chunks of a fixed
// size. The zero Slab is not usable: make one with NewSlab. A Slab is not
// safe for concurrent use; the interfaces it returned are.
type Slab[T Boxable] struct {
	typ   unsafe.Pointer
	chunk []T
	size  int
}

// NewSlab returns a slab whose chunks hold size values.
func NewSlab[T Boxable](size int) Slab[T] {
	return Slab[T]{typ: typeWord[T](), size: max(size, 1)}
}

// Box stores v in the slab and returns it as an interface, equal in every
// way to any(v).
func (s *Slab[T]) Box(v T) any {
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
