package file

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// recKind says what csvParser.next (and lineSplitter.next) found.
type recKind uint8

const (
	recEOF    recKind = iota // no more input
	recRow                   // a well-formed record
	recReject                // a malformed or oversized record, consumed whole
	recBlank                 // an empty line: not a record
)

// span is where one field's text is: raw[s:e], or unesc[s:e] when esc is
// set (a quoted field whose doubled quotes were collapsed).
type span struct {
	s, e   int
	quoted bool
	esc    bool
}

// rawRecord is one record as the parser found it. raw, fields and unesc
// are only valid until the next call of next.
type rawRecord struct {
	kind     recKind
	off      int64  // offset of the record's first byte
	line     int64  // line of the record's first byte
	next     int64  // offset just after the record and its line break
	nextLine int64  // line number at next
	raw      []byte // the record's text without its line break
	fields   []span
	unesc    []byte
	reason   string // why a recReject was rejected
	unclosed bool   // a recReject whose quote is still open at the end of the input
}

// csvParser is an RFC 4180 reader that keeps, for every record, its byte
// offset and line number, and caps the size of one record without ever
// buffering more than the cap: a longer record is skipped to its end and
// reported as a reject.
//
// Grammar: fields are separated by delim and records end at LF (CRLF
// accepted; the CR is dropped). A field that starts with quote is quoted:
// it ends at the next single quote, a doubled quote stands for one, and it
// may hold delimiters and line breaks. A quote inside an unquoted field is
// an ordinary character. A character other than delim or a line break after
// a closing quote makes the record malformed. A quote still open at the end
// of the input makes the rest of the input one malformed record. Empty
// lines are recBlank.
type csvParser struct {
	w       *window
	delim   byte
	quote   byte
	maxRec  int
	fields  []span
	unesc   []byte
	prefix  []byte // start of an oversized record, kept for its reject
	special [256]bool
}

// rawPrefix is how much of an oversized record is kept in its reject.
const rawPrefix = 4096

func newCSVParser(w *window, delim, quote byte, maxRec int) *csvParser {
	p := &csvParser{w: w, delim: delim, quote: quote, maxRec: maxRec}
	p.special[delim] = true
	p.special['\n'] = true
	return p
}

// next returns the next record, blank line or rejected record, or recEOF.
// The error is a read error of the underlying stream.
func (p *csvParser) next() (rawRecord, error) {
	for {
		rec, ok := p.scan()
		if ok {
			return rec, nil
		}
		if p.w.more() {
			continue
		}
		if p.w.err != nil {
			return rawRecord{}, p.w.err
		}
		if p.w.full {
			return p.skipOversize()
		}
		// more() returned false without error, full or progress: the
		// window was already at EOF, which scan handles; be safe anyway.
		return rawRecord{}, fmt.Errorf("csv: parser made no progress at offset %d", p.w.off)
	}
}

// scan parses one record from the window. ok is false when the record does
// not end inside the window and more input may follow.
func (p *csvParser) scan() (rec rawRecord, ok bool) {
	w := p.w
	b := w.avail()
	eof := w.eof
	if len(b) == 0 {
		if eof {
			return rawRecord{kind: recEOF, off: w.off, line: w.line, next: w.off, nextLine: w.line}, true
		}
		return rawRecord{}, false
	}
	q, d := p.quote, p.delim
	fields := p.fields[:0]
	unesc := p.unesc[:0]

	// Fast path: a line without quotes is split at its delimiters.
	if k := bytes.IndexByte(b, '\n'); k >= 0 || eof {
		line, next := b, len(b)
		if k >= 0 {
			line, next = b[:k], k+1
		}
		// One pass over the line finds its delimiters, and a quote sends
		// it to the general path: a call per field costs more than the
		// few bytes of most fields.
		s, plain := 0, true
		dm, qm := uint64(d)*lows, uint64(q)*lows
		i := 0
		for ; i+8 <= len(line); i += 8 {
			x := binary.LittleEndian.Uint64(line[i:])
			if hasZero(x ^ qm) {
				plain = false
				break
			}
			for m := zeros(x ^ dm); m != 0; m &= m - 1 {
				at := i + bits.TrailingZeros64(m)>>3
				fields = append(fields, span{s: s, e: at})
				s = at + 1
			}
		}
		for ; plain && i < len(line); i++ {
			switch line[i] {
			case d:
				fields = append(fields, span{s: s, e: i})
				s = i + 1
			case q:
				plain = false
			}
		}
		if plain {
			rawEnd := trimCR(b, 0, len(line))
			line = b[:rawEnd]
			fields = append(fields, span{s: s, e: rawEnd})
			p.fields, p.unesc = fields, unesc
			var lines int64
			if k >= 0 {
				lines = 1
			}
			switch {
			case rawEnd > p.maxRec:
				rec = rawRecord{kind: recReject, raw: line[:min(rawPrefix, len(line))], reason: p.tooLong()}
			case rawEnd == 0:
				rec = rawRecord{kind: recBlank, raw: line}
			default:
				rec = rawRecord{kind: recRow, raw: line, fields: fields, unesc: unesc}
			}
			return p.finish(rec, next, lines), true
		}
		fields = fields[:0]
	}

	special := &p.special
	var nl int64   // line breaks inside the record (quoted fields)
	var bad string // why the record is malformed
	unclosed := false
	rawEnd, next := 0, 0
	i := 0
record:
	for {
		if i < len(b) && b[i] == q {
			start := i + 1
			j := start
			esc := false
			for {
				k := bytes.IndexByte(b[j:], q)
				if k < 0 {
					if !eof {
						return rawRecord{}, false
					}
					// Unbalanced: the rest of the input is this record.
					bad = fmt.Sprintf("unbalanced quote: field %d opens a quote at line %d that is not closed before the end of the file",
						len(fields)+1, w.line+countEOL(b[:i]))
					rawEnd, next = len(trimEOL(b)), len(b)
					nl = countEOL(b[:rawEnd])
					unclosed = true
					break record
				}
				j += k
				if j+1 < len(b) && b[j+1] == q {
					esc = true
					j += 2
					continue
				}
				if j+1 == len(b) && !eof {
					return rawRecord{}, false // a doubled quote or the end of the field: need the next byte
				}
				break
			}
			content := b[start:j]
			nl += countEOL(content)
			if esc {
				us := len(unesc)
				unesc = appendUnquoted(unesc, content, q)
				fields = append(fields, span{s: us, e: len(unesc), quoted: true, esc: true})
			} else {
				fields = append(fields, span{s: start, e: j, quoted: true})
			}
			i = j + 1
			if i == len(b) { // at EOF: the last field of the input
				rawEnd, next = i, i
				break
			}
			switch c := b[i]; {
			case c == d:
				i++
				continue
			case c == '\n':
				rawEnd, next = i, i+1
				break record
			case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
				rawEnd, next = i, i+2
				break record
			case c == '\r' && i+1 == len(b):
				if !eof {
					return rawRecord{}, false
				}
				rawEnd, next = i, i+1
				break record
			default:
				if bad == "" {
					bad = fmt.Sprintf("unexpected %q after the closing quote of field %d", c, len(fields))
				}
			}
			// Read the rest of the field as unquoted text; the record is
			// rejected anyway.
			j = i
			for j < len(b) && !special[b[j]] {
				j++
			}
			if j == len(b) && !eof {
				return rawRecord{}, false
			}
			if j < len(b) && b[j] == d {
				i = j + 1
				continue
			}
			rawEnd, next = trimCR(b, i, j), j
			if j < len(b) {
				next = j + 1
			}
			break
		}
		// Unquoted field.
		j := i
		for j < len(b) && !special[b[j]] {
			j++
		}
		if j == len(b) {
			if !eof {
				return rawRecord{}, false
			}
			end := trimCR(b, i, j)
			fields = append(fields, span{s: i, e: end})
			rawEnd, next = end, j
			break
		}
		if b[j] == d {
			fields = append(fields, span{s: i, e: j})
			i = j + 1
			continue
		}
		end := trimCR(b, i, j)
		fields = append(fields, span{s: i, e: end})
		rawEnd, next = end, j+1
		break
	}
	p.fields, p.unesc = fields, unesc
	raw := b[:rawEnd]
	if next > rawEnd && b[next-1] == '\n' {
		nl++
	}
	switch {
	case rawEnd > p.maxRec:
		rec = rawRecord{kind: recReject, raw: raw[:min(rawPrefix, len(raw))], reason: p.tooLong()}
	case bad != "":
		rec = rawRecord{kind: recReject, raw: raw, reason: bad, unclosed: unclosed}
	case rawEnd == 0 && len(fields) == 1 && !fields[0].quoted:
		rec = rawRecord{kind: recBlank, raw: raw}
	default:
		rec = rawRecord{kind: recRow, raw: raw, fields: fields, unesc: unesc}
	}
	return p.finish(rec, next, nl), true
}

// finish stamps the record's place and consumes it (consumed bytes holding
// lines line breaks) from the window.
func (p *csvParser) finish(rec rawRecord, consumed int, lines int64) rawRecord {
	w := p.w
	rec.off, rec.line = w.off, w.line
	w.advance(consumed, lines)
	rec.next, rec.nextLine = w.off, w.line
	return rec
}

func (p *csvParser) tooLong() string {
	return fmt.Sprintf("record exceeds %d bytes", p.maxRec)
}

// skipOversize consumes a record that does not fit in the full window,
// following the quoting to find its end, and rejects it. It keeps only the
// first rawPrefix bytes.
func (p *csvParser) skipOversize() (rawRecord, error) {
	w := p.w
	rec := rawRecord{kind: recReject, off: w.off, line: w.line, reason: p.tooLong()}
	p.prefix = append(p.prefix[:0], w.avail()[:min(rawPrefix, w.end-w.pos)]...)
	rec.raw = p.prefix
	const (
		stField  = iota // at the start of a field
		stPlain         // inside an unquoted field
		stQuoted        // inside a quoted field
		stQuote         // just after a quote inside a quoted field
	)
	state := stField
	var lines int64
	for {
		b := w.avail()
		for i, c := range b {
			switch state {
			case stField:
				switch c {
				case p.quote:
					state = stQuoted
				case p.delim:
				case '\n':
					w.advance(i+1, lines+1)
					rec.next, rec.nextLine = w.off, w.line
					return rec, nil
				default:
					state = stPlain
				}
			case stPlain:
				switch c {
				case p.delim:
					state = stField
				case '\n':
					w.advance(i+1, lines+1)
					rec.next, rec.nextLine = w.off, w.line
					return rec, nil
				}
			case stQuoted:
				switch c {
				case p.quote:
					state = stQuote
				case '\n':
					lines++
				}
			case stQuote:
				switch c {
				case p.quote:
					state = stQuoted
				case p.delim:
					state = stField
				case '\n':
					w.advance(i+1, lines+1)
					rec.next, rec.nextLine = w.off, w.line
					return rec, nil
				default:
					state = stPlain
				}
			}
		}
		w.advance(len(b), 0)
		if !w.more() {
			if w.err != nil {
				return rawRecord{}, w.err
			}
			w.line += lines
			rec.next, rec.nextLine = w.off, w.line
			return rec, nil
		}
	}
}

var nlByte = []byte{'\n'}

// lows has 1 in each byte: c*lows is c in each byte.
const lows = 0x0101010101010101

// hasZero reports whether a byte of x is zero.
func hasZero(x uint64) bool { return (x-lows)&^x&(lows<<7) != 0 }

// zeros has the high bit set in exactly the bytes of x that are zero.
func zeros(x uint64) uint64 {
	// Per byte, without borrows across bytes: the low seven bits plus
	// 0x7f reach the high bit unless they are all zero.
	y := (x & (lows * 0x7f)) + lows*0x7f
	return ^(y | x | lows*0x7f)
}

// trimCR returns the end of a line's text whose break is at j: a CR just
// before it is dropped.
func trimCR(b []byte, i, j int) int {
	if j > i && b[j-1] == '\r' && (j == len(b) || b[j] == '\n') {
		return j - 1
	}
	return j
}

// trimEOL drops a final line break (LF or CRLF) from the rest of the input.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func countEOL(b []byte) int64 { return int64(bytes.Count(b, nlByte)) }

// appendUnquoted appends the content of a quoted field with each doubled
// quote collapsed into one.
func appendUnquoted(dst, content []byte, q byte) []byte {
	for {
		k := bytes.IndexByte(content, q)
		if k < 0 {
			return append(dst, content...)
		}
		dst = append(dst, content[:k+1]...)
		content = content[k+2:]
	}
}
