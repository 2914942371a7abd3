package file

import (
	"bytes"
	"io"
)

// window is a refillable read buffer over a stream that knows the absolute
// byte offset and line number of its first unread byte. Parsers scan
// buf[pos:end] and call more when a record does not end inside it; the
// buffer grows (4x at a time) up to maxBuf and never beyond, so a record
// longer than the cap is never held whole.
type window struct {
	r      io.Reader
	buf    []byte
	pos    int   // first unread byte
	end    int   // end of the bytes read so far
	off    int64 // offset in the stream of buf[pos]
	line   int64 // line number (1-based) of buf[pos]
	eof    bool  // r returned io.EOF: buf[pos:end] is all that is left
	err    error // r failed (other than io.EOF)
	full   bool  // the last more() found the buffer full at maxBuf
	maxBuf int
}

const initialWindow = 256 << 10

func newWindow(r io.Reader, maxBuf int) *window {
	size := initialWindow
	if size > maxBuf {
		size = maxBuf
	}
	return &window{r: r, buf: make([]byte, size), line: 1, maxBuf: maxBuf}
}

// reset points the window at a new stream position (after a seek).
func (w *window) reset(r io.Reader, off, line int64) {
	w.r, w.pos, w.end, w.off, w.line = r, 0, 0, off, line
	w.eof, w.err, w.full = false, nil, false
}

// avail returns the unread bytes.
func (w *window) avail() []byte { return w.buf[w.pos:w.end] }

// advance consumes n bytes that held lines line breaks.
func (w *window) advance(n int, lines int64) {
	w.pos += n
	w.off += int64(n)
	w.line += lines
}

// more reads more input after the unread bytes, moving them to the front
// or growing the buffer as needed. It reports whether anything changed;
// false means end of input, a read error (w.err) or a full buffer (w.full).
func (w *window) more() bool {
	w.full = false
	if w.eof || w.err != nil {
		return false
	}
	if w.end == len(w.buf) {
		switch {
		case w.pos > 0:
			w.end = copy(w.buf, w.buf[w.pos:w.end])
			w.pos = 0
		case len(w.buf) < w.maxBuf:
			size := len(w.buf) * 4
			if size >= w.maxBuf/2 || size <= 0 {
				size = w.maxBuf // no small last step
			}
			nb := make([]byte, size)
			w.end = copy(nb, w.buf[w.pos:w.end])
			w.pos = 0
			w.buf = nb
		default:
			w.full = true
			return false
		}
	}
	// Fill the buffer: a record is then scanned again only after the
	// buffer grew or moved, not after every short read.
	start := w.end
	for empty := 0; w.end < len(w.buf); {
		n, err := w.r.Read(w.buf[w.end:])
		w.end += n
		if err == io.EOF {
			w.eof = true
			return true
		}
		if err != nil {
			w.err = err
			return w.end > start
		}
		if n == 0 {
			if empty++; empty == 100 {
				w.err = io.ErrNoProgress
				return w.end > start
			}
		}
	}
	return true
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// skipBOM drops a UTF-8 byte order mark at the very start of the stream.
func (w *window) skipBOM() {
	for w.end-w.pos < len(utf8BOM) && w.more() {
	}
	if bytes.HasPrefix(w.avail(), utf8BOM) {
		w.advance(len(utf8BOM), 0)
	}
}

// discardTo reads and drops input until the offset off (a compressed file
// cannot seek), then sets the line number. It fails when the input ends
// first.
func (w *window) discardTo(off, line int64) error {
	for w.off < off {
		n := w.end - w.pos
		if rest := off - w.off; int64(n) > rest {
			n = int(rest)
		}
		w.advance(n, 0)
		if w.off == off {
			break
		}
		if !w.more() {
			if w.err != nil {
				return w.err
			}
			return io.ErrUnexpectedEOF
		}
	}
	w.line = line
	return nil
}
