package record

import (
	"slices"
	"time"
)

// Seconds from the Unix epoch to the first and past the last instant of
// the years 0 to 9999, the ones RFC 3339 writes with four digits.
const (
	unixYear0     = -62167219200 // 0000-01-01T00:00:00Z
	unixYear10000 = 253402300800 // 10000-01-01T00:00:00Z
	maxOffset     = 100 * 3600   // an offset of 100 hours or more writes three digits
)

// pairs holds "00" to "99", two digits at a time.
const pairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// AppendRFC3339Nano appends t as FormatText writes it: RFC 3339 with the
// nanoseconds' trailing zeros dropped, exactly what
// t.AppendFormat(dst, time.RFC3339Nano) writes, except that an offset
// with seconds is first rounded up to the minute (see rfc3339).
//
// It computes the date from the Unix seconds and the zone's offset, one
// zone lookup, where the standard library's path looks the zone up again
// and formats through its general layout machinery. Years outside 0 to
// 9999 and offsets of 100 hours or more go to the standard library.
func AppendRFC3339Nano(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	if r := off % 60; r != 0 { // as rfc3339: up to the next whole minute
		off -= r
		if r > 0 {
			off += 60
		}
	}
	u := t.Unix()
	if off <= -maxOffset || off >= maxOffset || u < unixYear0-maxOffset || u >= unixYear10000+maxOffset {
		return rfc3339(t).AppendFormat(dst, time.RFC3339Nano)
	}
	local := u + int64(off)
	if local < unixYear0 || local >= unixYear10000 {
		return rfc3339(t).AppendFormat(dst, time.RFC3339Nano)
	}

	secs := uint64(local - unixYear0) // since 0000-01-01
	days := secs / 86400
	clock := secs % 86400

	// Civil date from a day count (Howard Hinnant's civil_from_days),
	// on years that start on 1 March so that the leap day
	// ends them. The count starts at -0400-03-01, a 400-year era before
	// year 0's 1 March (60 days after 0000-01-01), to stay positive.
	z := days + 146097 - 60
	doe := z % 146097                                      // day of the era, [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era, [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the March year, [0, 365]
	mp := (5*doy + 2) / 153                                // month from March, [0, 11]
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	year := z/146097*400 + yoe
	if month > 12 {
		month -= 12
		year++
	}
	year -= 400

	// Straight into dst's room: 2006-01-02T15:04:05.999999999-07:00.
	dst = slices.Grow(dst, 35)
	at := len(dst)
	b := (*[35]byte)(dst[at : at+35])
	hi, lo := year/100, year%100
	b[0], b[1] = pairs[2*hi], pairs[2*hi+1]
	b[2], b[3] = pairs[2*lo], pairs[2*lo+1]
	b[4] = '-'
	b[5], b[6] = pairs[2*month], pairs[2*month+1]
	b[7] = '-'
	b[8], b[9] = pairs[2*day], pairs[2*day+1]
	b[10] = 'T'
	h, m, s := clock/3600, clock/60%60, clock%60
	b[11], b[12] = pairs[2*h], pairs[2*h+1]
	b[13] = ':'
	b[14], b[15] = pairs[2*m], pairs[2*m+1]
	b[16] = ':'
	b[17], b[18] = pairs[2*s], pairs[2*s+1]
	n := 19

	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, then without their trailing zeros.
		b[19] = '.'
		v := uint(ns)
		for i := 28; i > 20; i -= 2 {
			q := v / 100
			r := v - q*100
			b[i-1], b[i] = pairs[2*r], pairs[2*r+1]
			v = q
		}
		b[20] = byte('0' + v)
		n = 29
		for b[n-1] == '0' {
			n--
		}
	}

	if off == 0 {
		b[n] = 'Z'
		return dst[:at+n+1]
	}
	b[n] = '+'
	if off < 0 {
		b[n] = '-'
		off = -off
	}
	zh, zm := off/3600, off/60%60
	b[n+1], b[n+2] = pairs[2*zh], pairs[2*zh+1]
	b[n+3] = ':'
	b[n+4], b[n+5] = pairs[2*zm], pairs[2*zm+1]
	return dst[:at+n+6]
}
