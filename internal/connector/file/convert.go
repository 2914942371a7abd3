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
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		frac := rest[1:n]
		if len(frac) == 0 || len(frac) > 9 {
			return time.Time{}, false
		}
		f, _ := digits(frac)
		for k := len(frac); k < 9; k++ {
			f *= 10
		}
		nsec = f
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

// daysSinceEpoch is the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
func daysSinceEpoch(y, m, d int) int64 {
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

func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
