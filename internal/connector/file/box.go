package file

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/record"
)

// Values are boxed in record.Slabs: one allocation per few hundred values
// instead of one per value (see record.Slab for why that is safe). A slab
// here belongs to one batch's boxer.

// boxable lists the types a slab may hold.
type boxable = record.Boxable

// slab hands out interfaces to values of T stored in chunks.
type slab[T boxable] struct{ record.Slab[T] }

func newSlab[T boxable](size int) slab[T] { return slab[T]{record.NewSlab[T](size)} }

// box stores v in the slab and returns it as an interface.
func (s *slab[T]) box(v T) any { return s.Box(v) }

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
