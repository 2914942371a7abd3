package record

import "strconv"

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
		// The digits and the point, right to left, in one buffer.
		var buf [24]byte
		i := len(buf)
		for k := int32(0); k < d.scale; k++ {
			i--
			buf[i] = byte('0' + u%10)
			u /= 10
		}
		i--
		buf[i] = '.'
		if u == 0 {
			i--
			buf[i] = '0'
		}
		for ; u >= 100; u /= 100 {
			i -= 2
			copy(buf[i:], pairs[u%100*2:u%100*2+2])
		}
		if u >= 10 {
			i -= 2
			copy(buf[i:], pairs[u*2:u*2+2])
		} else if u > 0 {
			i--
			buf[i] = byte('0' + u)
		}
		return append(dst, buf[i:]...)
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
