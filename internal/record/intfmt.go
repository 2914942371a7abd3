package record

import "slices"

// AppendInt appends the decimal text of v, as strconv.AppendInt(dst, v,
// 10) does, writing the digits straight into dst's room, two at a time,
// instead of into a buffer of its own that is then copied.
func AppendInt(dst []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		u = -u
	}
	n := decimalDigits(u)
	dst = slices.Grow(dst, n)
	at := len(dst)
	dst = dst[:at+n]
	putUint(dst[at:], n, u)
	return dst
}

// putUint writes the digits of u ("0" for 0) so that they end just before
// b[i], two at a time.
func putUint(b []byte, i int, u uint64) {
	for u >= 100 {
		q := u / 100
		r := u - q*100
		i -= 2
		b[i], b[i+1] = pairs[2*r], pairs[2*r+1]
		u = q
	}
	if u >= 10 {
		b[i-2], b[i-1] = pairs[2*u], pairs[2*u+1]
		return
	}
	b[i-1] = byte('0' + u)
}

// decimalDigits is the number of digits of u in base 10.
func decimalDigits(u uint64) int {
	n := 1
	for u >= 10000 {
		u /= 10000
		n += 4
	}
	switch {
	case u >= 1000:
		return n + 3
	case u >= 100:
		return n + 2
	case u >= 10:
		return n + 1
	}
	return n
}
