package record

import (
	"slices"
	"strconv"
)

// AppendText appends the decimal as String renders it, without allocating
// when the value fits an int64.
func (d Dec) AppendText(dst []byte) []byte {
	if d.big != nil {
		return append(dst, d.String()...)
	}
	u := uint64(d.small)
	if d.small < 0 {
		dst = append(dst, '-')
		u = uint64(-(d.small + 1)) + 1
	}
	if d.scale <= 0 {
		dst = strconv.AppendUint(dst, u, 10)
		for i := d.scale; i < 0 && u != 0; i++ { // Round(-1) rounds to tens
			dst = append(dst, '0')
		}
		return dst
	}
	if d.scale <= 19 {
		// Straight into dst's room, right to left, two digits at a time:
		// the fraction (with its leading zeros), the point, the integer
		// part ("0" when there is none).
		scale := int(d.scale)
		nd := max(decimalDigits(u), scale+1)
		n := nd + 1
		dst = slices.Grow(dst, n)
		at := len(dst)
		dst = dst[:at+n]
		b := dst[at:]
		i := n
		for k := scale; k >= 2; k -= 2 {
			q := u / 100
			r := u - q*100
			i -= 2
			b[i], b[i+1] = pairs[2*r], pairs[2*r+1]
			u = q
		}
		if scale&1 == 1 {
			q := u / 10
			i--
			b[i] = byte('0' + u - q*10)
			u = q
		}
		i--
		b[i] = '.'
		putUint(b, i, u)
		return dst
	}
	var digits [20]byte
	n := strconv.AppendUint(digits[:0], u, 10)
	scale := int(d.scale)
	if len(n) <= scale { // 0.00ddd
		dst = append(dst, '0', '.')
		for i := len(n); i < scale; i++ {
			dst = append(dst, '0')
		}
		return append(dst, n...)
	}
	dst = append(dst, n[:len(n)-scale]...)
	dst = append(dst, '.')
	return append(dst, n[len(n)-scale:]...)
}
