package file

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/record"
)

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// fastInt parses [-+]?[0-9]{1,18}: never out of range.
func fastInt(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	i, neg := 0, false
	switch s[0] {
	case '-':
		neg, i = true, 1
	case '+':
		i = 1
	}
	if i == len(s) || len(s)-i > 18 {
		return 0, false
	}
	var v int64
	for ; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int64(c)
	}
	if neg {
		v = -v
	}
	return v, true
}

// fastTimestamp parses YYYY-MM-DD[T ]hh:mm:ss[.f{1,9}][Z], the forms the
// layouts of record.ParseTimestamp read the same way: without a zone the
// time is in loc, with Z in UTC. Anything else (offsets, spaces, other
// separators) is left to record.ParseTimestamp.
func fastTimestamp(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 19 || len(s) > 30 {
		return time.Time{}, false
	}
	_ = s[18]
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	// A field with a byte that is not a digit is -1: out of its range.
	year := d4(s[0], s[1], s[2], s[3])
	month, day := d2(s[5], s[6]), d2(s[8], s[9])
	hour, minute, sec := d2(s[11], s[12]), d2(s[14], s[15]), d2(s[17], s[18])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		uint(hour) > 23 || uint(minute) > 59 || uint(sec) > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			nsec = nsec*10 + int(rest[n]-'0')
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		nsec *= pow10[10-n]
		rest = rest[n:]
	}
	switch {
	case rest == "":
		if loc == nil {
			loc = time.UTC
		}
	case rest == "Z" && s[10] == 'T':
		// "2006-01-02 15:04:05Z" parses through a layout with a numeric
		// zone, which ParseTimestamp handles: only the T form is here.
		loc = time.UTC
	default:
		return time.Time{}, false
	}
	if loc == time.UTC {
		// time.Date's zone lookup is the slow part; in UTC the seconds are
		// plain arithmetic, and time.Unix(...).UTC() builds the same value.
		secs := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
		return time.Unix(secs, int64(nsec)).UTC(), true
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), true
}

// pow10[k] is 10^k, for k up to 8: what a fraction of 9-k digits is
// multiplied by to be in nanoseconds.
var pow10 = [9]int{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// d2 is the number two digits make, or a number out of 0..99 when either
// byte is not a digit.
func d2(a, b byte) int {
	x, y := int(a)-'0', int(b)-'0'
	if uint(x) > 9 || uint(y) > 9 {
		return -1
	}
	return x*10 + y
}

// d4 is the number four digits make, or -1 when a byte is not a digit.
func d4(a, b, c, d byte) int {
	hi, lo := d2(a, b), d2(c, d)
	if hi < 0 || lo < 0 {
		return -1
	}
	return hi*100 + lo
}

// daysSinceEpoch is the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar: from tables for the years most data holds,
// else by Howard Hinnant's days_from_civil.
func daysSinceEpoch(y, m, d int) int64 {
	if k := y - tableFirstYear; uint(k) < uint(len(yearDays)) {
		days := yearDays[k] + int64(monthDays[m-1]+d-1)
		if m > 2 && isLeap(y) {
			days++
		}
		return days
	}
	return civilDays(y, m, d)
}

// tableFirstYear is the first year of yearDays.
const tableFirstYear = 1900

// yearDays[k] is the number of days from 1970-01-01 to January 1st of
// the year tableFirstYear+k, for three centuries.
var yearDays = func() (t [300]int64) {
	for k := range t {
		t[k] = civilDays(tableFirstYear+k, 1, 1)
	}
	return t
}()

// monthDays[m] is the number of days before month m+1 in a common year.
var monthDays = [12]int{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// civilDays is daysSinceEpoch for any year (Howard Hinnant's
// days_from_civil).
func civilDays(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// decUnits[k] is 10^-k: multiplying an integer by it gives that integer
// with scale k, exactly what record.ParseDec makes of the same digits.
var decUnits = func() []record.Dec {
	u := make([]record.Dec, 19)
	for k := range u {
		u[k] = record.MustDec("1e-" + strconv.Itoa(k))
	}
	return u
}()

// fastDec parses -?[0-9]+(\.[0-9]+)? with at most 18 digits.
func fastDec(s string) (record.Dec, bool) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		neg, i = true, 1
	}
	var v int64
	digitsSeen, scale, point := 0, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digitsSeen++
			if point {
				scale++
			}
		case c == '.' && !point && digitsSeen > 0:
			point = true
		default:
			return record.Dec{}, false
		}
	}
	if digitsSeen == 0 || digitsSeen > 18 || (point && scale == 0) {
		return record.Dec{}, false
	}
	if neg {
		v = -v
	}
	return record.DecFromInt(v).Mul(decUnits[scale]), true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if isLeap(year) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
