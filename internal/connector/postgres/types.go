package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// kind is how a column's values are read: in binary, decoded here, or as
// the server's text for types without a binary decoder.
type kind uint8

const (
	kText kind = iota // read in text format
	kBool
	kBytea
	kInt2
	kInt4
	kInt8
	kOID
	kFloat4
	kFloat8
	kNumeric
	kString // text, varchar, bpchar, name: binary is the UTF-8 text
	kJSON
	kJSONB
	kUUID
	kDate
	kTimestamp
	kTimestamptz
)

// Type OIDs of the built-in types read in binary.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// kindOf maps a (base) type OID to the way it is read.
func kindOf(oid uint32) kind {
	switch oid {
	case oidBool:
		return kBool
	case oidBytea:
		return kBytea
	case oidInt2:
		return kInt2
	case oidInt4:
		return kInt4
	case oidInt8:
		return kInt8
	case oidOID:
		return kOID
	case oidFloat4:
		return kFloat4
	case oidFloat8:
		return kFloat8
	case oidNumeric:
		return kNumeric
	case oidText, oidVarchar, oidBpchar, oidName:
		return kString
	case oidJSON:
		return kJSON
	case oidJSONB:
		return kJSONB
	case oidUUID:
		return kUUID
	case oidDate:
		return kDate
	case oidTimestamp:
		return kTimestamp
	case oidTimestamptz:
		return kTimestamptz
	}
	return kText
}

// recordType is the type a column of kind k reads as without a declared
// schema.
func (k kind) recordType() record.Type {
	switch k {
	case kBool:
		return record.Bool
	case kBytea:
		return record.Bytes
	case kInt2, kInt4, kInt8, kOID:
		return record.Int
	case kFloat4, kFloat8:
		return record.Float
	case kNumeric:
		return record.Decimal
	case kJSON, kJSONB:
		return record.JSON
	case kDate:
		return record.Date
	case kTimestamp, kTimestamptz:
		return record.Timestamp
	}
	return record.String
}

// format is the wire format the column is asked for: 1 binary, 0 text.
func (k kind) format() int16 {
	if k == kText {
		return 0
	}
	return 1
}

// pgEpoch is 2000-01-01 00:00:00 UTC, the origin of binary dates and
// timestamps.
const (
	pgEpochUnix   = 946684800
	pgEpochMicros = pgEpochUnix * 1_000_000
	pgEpochDays   = 10957 // days from 1970-01-01 to 2000-01-01
)

var (
	errInfinity = errors.New("infinity has no value of this type")
	errNaN      = errors.New("NaN is not a decimal number")
	errFormat   = errors.New("unexpected binary format from the server")
)

// decode turns a value in the wire format of kind k into its natural
// record value. loc is the zone of timestamps without one. str, when not
// nil, holds b's bytes as a string (whole-batch text) to slice instead of
// allocating.
func decode(k kind, b []byte, loc *time.Location) (any, error) {
	switch k {
	case kText, kString:
		return string(b), nil
	case kBool:
		if len(b) != 1 {
			return nil, errFormat
		}
		return b[0] != 0, nil
	case kBytea:
		return b[:len(b):len(b)], nil
	case kInt2, kInt4, kInt8:
		n, err := decodeInt(k, b)
		if err != nil {
			return nil, err
		}
		return n, nil
	case kOID:
		if len(b) != 4 {
			return nil, errFormat
		}
		return int64(binary.BigEndian.Uint32(b)), nil
	case kFloat4:
		if len(b) != 4 {
			return nil, errFormat
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case kFloat8:
		if len(b) != 8 {
			return nil, errFormat
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case kNumeric:
		d, err := decodeNumeric(b)
		if err != nil {
			return nil, err
		}
		return d, nil
	case kJSON:
		return record.ParseText(string(b), record.JSON, nil)
	case kJSONB:
		if len(b) == 0 || b[0] != 1 {
			return nil, errFormat
		}
		return record.ParseText(string(b[1:]), record.JSON, nil)
	case kUUID:
		if len(b) != 16 {
			return nil, errFormat
		}
		return string(appendUUID(nil, b)), nil
	case kDate:
		if len(b) != 4 {
			return nil, errFormat
		}
		d := int32(binary.BigEndian.Uint32(b))
		if d == math.MaxInt32 || d == math.MinInt32 {
			return nil, errInfinity
		}
		return record.LocalDate(int64(d) + pgEpochDays), nil
	case kTimestamptz, kTimestamp:
		t, err := decodeTimestamp(k, b, loc)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, errFormat
}

// decodeInt decodes a binary int2, int4 or int8.
func decodeInt(k kind, b []byte) (int64, error) {
	switch {
	case k == kInt2 && len(b) == 2:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case k == kInt4 && len(b) == 4:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case k == kInt8 && len(b) == 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, errFormat
}

// decodeTimestamp decodes a binary timestamptz, or a timestamp as the wall
// clock of loc.
func decodeTimestamp(k kind, b []byte, loc *time.Location) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, errFormat
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, errInfinity
	}
	t := time.UnixMicro(us + pgEpochMicros).UTC()
	if k == kTimestamp && loc != nil && loc != time.UTC {
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		t = time.Date(y, mo, d, h, mi, s, t.Nanosecond(), loc)
	}
	return t, nil
}

// decTens[s] is 1 with scale s: multiplying an unscaled int64 by it sets
// the scale without allocating.
var decTens = func() [32]record.Dec {
	var t [32]record.Dec
	for s := range t {
		t[s] = record.MustDec("1e-" + strconv.Itoa(s))
	}
	return t
}()

// decodeNumeric decodes a binary numeric: ndigits, weight, sign, dscale,
// then ndigits base-10000 digits, the first worth 10000^weight.
func decodeNumeric(b []byte) (record.Dec, error) {
	if len(b) < 8 {
		return record.Dec{}, errFormat
	}
	nd := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	if len(b) != 8+2*nd {
		return record.Dec{}, errFormat
	}
	switch sign {
	case 0x0000, 0x4000:
	case 0xC000:
		return record.Dec{}, errNaN
	case 0xD000, 0xF000:
		return record.Dec{}, errInfinity
	default:
		return record.Dec{}, errFormat
	}
	// The unscaled value is the digits times 10000^(weight+1-nd), times
	// 10^dscale. Try int64 first.
	if dscale < len(decTens) {
		groupsAfter := 0 // base-10000 groups after the point to cover dscale
		if dscale > 0 {
			groupsAfter = (dscale + 3) / 4
		}
		// u = sum d_i * 10000^(weight - i + groupsAfter)
		var u uint64
		ok := true
		last := weight + groupsAfter // exponent of the first digit
		if last >= 0 && last < 5 && nd <= last+1 {
			for i := 0; i <= last; i++ {
				var d uint64
				if i < nd {
					d = uint64(binary.BigEndian.Uint16(b[8+2*i:]))
				}
				if u > (math.MaxInt64-d)/10000 {
					ok = false
					break
				}
				u = u*10000 + d
			}
		} else if nd == 0 {
			u = 0
		} else {
			ok = false
		}
		if ok {
			// Drop the digits between dscale and the group boundary, which
			// are zero.
			for extra := groupsAfter*4 - dscale; extra > 0; extra-- {
				u /= 10
			}
			v := int64(u)
			if sign == 0x4000 {
				v = -v
			}
			return record.DecFromInt(v).Mul(decTens[dscale]), nil
		}
	}
	d, err := record.ParseDec(string(appendNumericText(nil, b)))
	if err != nil {
		return record.Dec{}, errFormat
	}
	return d, nil
}

// appendNumericText appends a binary numeric as the server writes it.
func appendNumericText(dst, b []byte) []byte {
	if len(b) < 8 {
		return dst
	}
	nd := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	switch sign {
	case 0xC000:
		return append(dst, "NaN"...)
	case 0xD000:
		return append(dst, "Infinity"...)
	case 0xF000:
		return append(dst, "-Infinity"...)
	case 0x4000:
		dst = append(dst, '-')
	}
	digit := func(i int) int {
		if i < 0 || i >= nd || 8+2*i+2 > len(b) {
			return 0
		}
		return int(binary.BigEndian.Uint16(b[8+2*i:]))
	}
	if weight < 0 {
		dst = append(dst, '0')
	} else {
		for i := 0; i <= weight; i++ {
			d := digit(i)
			if i == 0 {
				dst = strconv.AppendInt(dst, int64(d), 10)
				continue
			}
			dst = append(dst, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
	}
	if dscale > 0 {
		dst = append(dst, '.')
		written := 0
		for i := weight + 1; written < dscale; i++ {
			d := digit(i)
			four := [4]byte{byte('0' + d/1000), byte('0' + d/100%10), byte('0' + d/10%10), byte('0' + d%10)}
			for j := 0; j < 4 && written < dscale; j++ {
				dst = append(dst, four[j])
				written++
			}
		}
	}
	return dst
}

func appendUUID(dst, b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:16])
	return append(dst, buf[:]...)
}

// posText renders a value in the wire format of kind k as the text the
// server's input function reads back to the same value: the form in which
// positions keep cursor and key values.
func posText(k kind, b []byte) string {
	switch k {
	case kText, kString, kJSON:
		return string(b)
	case kJSONB:
		if len(b) > 0 {
			return string(b[1:])
		}
		return ""
	case kBool:
		if len(b) == 1 && b[0] != 0 {
			return "t"
		}
		return "f"
	case kBytea:
		return `\x` + hex.EncodeToString(b)
	case kUUID:
		if len(b) == 16 {
			return string(appendUUID(nil, b))
		}
	case kInt2, kInt4, kInt8, kOID:
		if v, err := decode(k, b, nil); err == nil {
			return strconv.FormatInt(v.(int64), 10)
		}
	case kFloat4, kFloat8:
		var f float64
		bits := 64
		if k == kFloat4 && len(b) == 4 {
			f, bits = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32
		} else if len(b) == 8 {
			f = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		return string(appendFloat(nil, f, bits))
	case kNumeric:
		return string(appendNumericText(nil, b))
	case kDate:
		if len(b) == 4 {
			d := int32(binary.BigEndian.Uint32(b))
			switch d {
			case math.MaxInt32:
				return "infinity"
			case math.MinInt32:
				return "-infinity"
			}
			return string(appendDate(nil, record.LocalDate(int64(d)+pgEpochDays)))
		}
	case kTimestamp, kTimestamptz:
		if len(b) == 8 {
			us := int64(binary.BigEndian.Uint64(b))
			switch us {
			case math.MaxInt64:
				return "infinity"
			case math.MinInt64:
				return "-infinity"
			}
			t := time.UnixMicro(us + pgEpochMicros).UTC()
			return string(appendTimestamp(nil, t, k == kTimestamptz))
		}
	}
	return string(b)
}

// appendFloat writes f as the float input functions read it back exactly.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendTimestamp writes t's wall clock as "YYYY-MM-DD hh:mm:ss[.ffffff…]",
// followed by "+00" when withZone (t must then be in UTC), and " BC" for
// years before 1.
func appendTimestamp(dst []byte, t time.Time, withZone bool) []byte {
	year, month, day := t.Date()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, ' ')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	if ns := t.Nanosecond(); ns != 0 {
		dst = append(dst, '.')
		n := 9
		for ns%10 == 0 {
			ns /= 10
			n--
		}
		dst = appendDigits(dst, ns, n)
	}
	if withZone {
		dst = append(dst, "+00"...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendDate writes d as YYYY-MM-DD, with " BC" for years before 1.
func appendDate(dst []byte, d record.LocalDate) []byte {
	year, month, day := d.Time().Date()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendDigits appends v ≥ 0 in decimal, zero-padded to at least n digits.
func appendDigits(dst []byte, v, n int) []byte {
	var buf [20]byte
	i := len(buf)
	for v > 0 || n > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		n--
	}
	return append(dst, buf[i:]...)
}
