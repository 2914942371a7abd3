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
