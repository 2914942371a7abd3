package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// The writer streams: one COPY stays open across Writes and takes each
// batch as it comes, so that the server never waits for a statement, and
// the statement's own cost (about a millisecond on PostgreSQL 15, whatever
// its size) is paid once per stream, not once per batch. The server judges
// the rows by the end of the statement: a stream ends when it holds
// streamBytes or at Settle, and the rows it refused are reported by Settle
// (connector.Settler), before the Commit.
//
// In mode upsert the stream fills the stage, and one INSERT … ON CONFLICT
// then moves its rows into the table. The rows are numbered (ord) as they
// are sent, so that the last row of a key repeated within the stream wins.
// A refusal by the INSERT names no row: its rows are halved until the
// refused ones stand alone.
//
// A refused row undoes its whole statement. The server names its line:
// that row is refused, the rows before it were accepted and go again as
// one statement, and the rows after it are judged again as another. A
// stream is bounded so that a refused row costs at most streamBytes of
// rows sent again.
const streamBytes = 4 << 20

// idleRead is how long the COPY's reader waits for rows before it returns
// empty-handed, so that a statement the server refused ends at once rather
// than at the next rows.
const idleRead = 300 * time.Microsecond

// copyStream is a COPY statement open across Writes.
type copyStream struct {
	data  chan []byte   // rendered rows to send; closed at the end
	abort chan struct{} // closed to fail the statement
	done  chan error    // the statement's outcome
	ended bool          // the outcome is in err
	err   error
	sp    bool // a savepoint was set before it
	bytes int  // of the rows sent
	again bool // it holds rows the server accepted once, sent again
}

// write hands rows to the statement; false once it ended.
func (st *copyStream) write(b []byte) bool {
	if st.ended {
		return false
	}
	select {
	case st.err = <-st.done:
		st.ended = true
		return false
	default:
	}
	select {
	case st.data <- b:
		st.bytes += len(b)
		return true
	case st.err = <-st.done:
		st.ended = true
		return false
	}
}

// end closes the statement's input and returns its outcome.
func (st *copyStream) end() error {
	if !st.ended {
		close(st.data)
		st.err, st.ended = <-st.done, true
	}
	return st.err
}

// streamReader is the COPY's input: the rows handed to data, in order.
//
// pgx reads it on a goroutine of its own, which CopyFrom does not always
// wait for: when the connection breaks, CopyFrom returns while that
// goroutine may still be in Read, copying from rows whose buffer the
// writer takes back once the statement's outcome is in. stop, called
// before the outcome is handed on, waits for a Read under way to end and
// makes later ones touch nothing.
type streamReader struct {
	st      *copyStream
	mu      sync.Mutex // held by Read; stop takes it
	stopped bool
	cur     []byte
	timer   *time.Timer
}

// stop ends the reader's use of the rows: Read copies nothing after it.
func (r *streamReader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped, r.cur = true, nil
}

func (r *streamReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, errAbandoned
	}
	for len(r.cur) == 0 {
		select {
		case b, ok := <-r.st.data:
			if !ok {
				return 0, io.EOF
			}
			r.cur = b
			continue
		case <-r.st.abort:
			return 0, errAbandoned
		default:
		}
		r.timer.Reset(idleRead)
		select {
		case b, ok := <-r.st.data:
			r.timer.Stop()
			if !ok {
				return 0, io.EOF
			}
			r.cur = b
		case <-r.st.abort:
			r.timer.Stop()
			return 0, errAbandoned
		case <-r.timer.C:
			return 0, nil // the caller looks at the server's messages, and comes back
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

var errAbandoned = errors.New("abandoned")

// openStream begins a COPY whose rows are sent by send. It sets a
// savepoint first when the transaction holds rows already (always in mode
// replace, whose transaction holds the new table); in mode upsert it
// empties the stage an earlier stream filled.
func (w *writer) openStream(ctx context.Context) {
	useSP := w.staged > 0 || w.mode() == modeReplace
	prefix := ""
	if useSP {
		prefix = "SAVEPOINT backbone_rows; "
		if w.savepoint {
			prefix = "RELEASE SAVEPOINT backbone_rows; " + prefix
		}
	}
	if w.mode() == modeUpsert {
		if w.stageDirty {
			prefix += "TRUNCATE " + stageTable + "; "
		}
		w.stageDirty, w.ord = true, 0
	}
	st := &copyStream{data: make(chan []byte, 8), abort: make(chan struct{}), done: make(chan error, 1), sp: useSP}
	conn, q := w.conn, prefix+w.copySQL
	go func() {
		t := time.NewTimer(time.Hour)
		t.Stop()
		r := &streamReader{st: st, timer: t}
		_, err := conn.CopyFrom(ctx, r, q)
		r.stop() // before the writer, told the outcome, reuses the rows' buffers
		st.done <- err
	}()
	w.stream = st
	if w.binary {
		st.write(binaryHeader) // a failure shows in the outcome
	}
}

// send streams the rows of sp, and ends the stream once it holds
// streamBytes. An error is the outcome of a stream that could not be
// judged (a lost connection): its rows stay unjudged, for the next
// transaction to send again.
func (w *writer) send(ctx context.Context, sp span) error {
	if w.stream == nil {
		w.openStream(ctx)
	}
	w.unjudged = append(w.unjudged, sp)
	switch {
	case !w.put(sp): // the statement ended early: judged now, and the rows after a refused one stream on
		return w.closeStream(ctx, true)
	case w.stream.bytes >= w.streamCap:
		return w.closeStream(ctx, false)
	}
	return nil
}

// closeStream ends the open statement and judges its rows. A row error
// undoes the statement (to its savepoint, or the whole transaction when it
// held nothing else): the row the server named is refused, and the others
// are sent again. The rows before it were accepted: in a statement of rows
// sent once, they go again with the rows after it, as one statement; in a
// statement that held rows sent again already, they go as a statement of
// their own (which the server accepts), and the rows after it as another:
// a row accepted once is sent at most twice more. Without a line named, the rows are split in halves
// until the refused ones stand alone. With open, the last of those
// statements stays open, as the stream later Writes go on with.
func (w *writer) closeStream(ctx context.Context, open bool) error {
	type part struct {
		spans []span
		again bool // holds rows accepted once
	}
	var todo []part // statements still to send, in order
	for w.stream != nil {
		st := w.stream
		w.stream = nil
		if w.binary {
			st.write(binaryTrailer)
		}
		err := st.end()
		sent := w.unjudged
		w.unjudged = nil
		if err == nil && w.mode() == modeUpsert {
			err = w.upsert(ctx, sent)
		}
		switch {
		case err == nil:
			w.savepoint = w.savepoint || st.sp
			w.accept(sent)
		case !rowError(err) || connLost(err, w.conn) || ctx.Err() != nil:
			w.unjudged = sent
			for _, p := range todo {
				w.unjudged = append(w.unjudged, p.spans...)
			}
			return err
		default:
			if uerr := w.undo(ctx, st.sp); uerr != nil {
				w.unjudged = sent
				for _, p := range todo {
					w.unjudged = append(w.unjudged, p.spans...)
				}
				return uerr
			}
			if sqlState(err) == "21000" && !w.repeats {
				// A key repeated across batches: ON CONFLICT cannot update
				// a row twice. The same rows go again, the last row of
				// each key only, as every later upsert does.
				w.repeats = true
				todo = append([]part{{spans: sent, again: st.again}}, todo...)
				break
			}
			before, bad, after := splitRefused(sent, err)
			if bad.enc != nil {
				w.refuse(bad, err)
			}
			var parts []part
			switch {
			case bad.enc != nil && !st.again:
				if joined := append(before, after...); len(joined) > 0 {
					parts = append(parts, part{spans: joined, again: len(before) > 0})
				}
			default:
				for _, p := range []part{{before, bad.enc != nil}, {after, false}} {
					if len(p.spans) > 0 {
						parts = append(parts, p)
					}
				}
			}
			todo = append(parts, todo...)
		}
		if len(todo) > 0 {
			w.openStream(ctx)
			w.stream.again = todo[0].again
			w.sendAll(todo[0].spans)
			todo = todo[1:]
			if open && len(todo) == 0 {
				return nil
			}
		}
	}
	return nil
}

// sendAll sends spans into the open stream. They are all unjudged once it
// returns: when the statement ends early, its outcome says why, and the
// rows it never took are judged with it.
func (w *writer) sendAll(spans []span) {
	ok := true
	for _, sp := range spans {
		w.unjudged = append(w.unjudged, sp)
		if ok {
			ok = w.put(sp)
		}
	}
}

// put hands the rows of sp to the open stream, numbered first in mode
// upsert; false once the statement ended.
func (w *writer) put(sp span) bool {
	if w.mode() == modeUpsert {
		w.ord = sp.enc.setOrds(sp.lo, sp.hi, w.ord)
	}
	return w.stream.write(sp.bytes())
}

// setOrds numbers the rendered rows [lo, hi) from ord on, in place (the
// extra column ord ends each row, at a fixed width), and returns the next
// number. No statement is reading these rows meanwhile: a row is sent
// again only once the statement that had it ended.
func (e *encoded) setOrds(lo, hi, ord int) int {
	for i := lo; i < hi; i++ {
		end := e.offs[i+1]
		if e.w.binary {
			binary.BigEndian.PutUint32(e.data[end-4:end], uint32(int32(ord)))
		} else {
			appendOrd(e.data[:end-1-ordDigits], ord)
		}
		ord++
	}
	return ord
}

// upsert moves the rows of the stage, just filled by a stream of spans,
// into the table: the last row of each key when a key may repeat.
func (w *writer) upsert(ctx context.Context, spans []span) error {
	q := w.plainSQL
	if w.repeats || slices.ContainsFunc(spans, func(sp span) bool { return sp.enc.dups }) {
		q = w.upsertSQL
	}
	return exec(ctx, w.conn, q)
}

// accept stages the rows of an accepted statement: they count, and in mode
// append they are kept until the Commit.
func (w *writer) accept(spans []span) {
	for _, sp := range spans {
		w.staged += sp.hi - sp.lo
		if w.mode() != modeReplace {
			sp.b = nil
			w.spans = append(w.spans, sp)
		}
	}
}

// undo ends a refused statement: to its savepoint, or, when it held
// nothing else, with the transaction, begun again.
func (w *writer) undo(ctx context.Context, sp bool) error {
	if sp {
		if err := exec(ctx, w.conn, "ROLLBACK TO SAVEPOINT backbone_rows; RELEASE SAVEPOINT backbone_rows"); err != nil {
			return err
		}
		w.savepoint = false
		return nil
	}
	if err := exec(ctx, w.conn, "ROLLBACK"); err != nil {
		return err
	}
	w.inTx = false
	return w.begin(ctx)
}

// refuse notes the row of sp (one row) as refused by err, for Settle.
func (w *writer) refuse(sp span, err error) {
	re := connector.RowError{Index: sp.enc.idx[sp.lo], Err: fmt.Errorf("postgres: table %q: %s", w.tableName(), w.message(err))}
	if n := len(w.refusals); n > 0 && w.refusals[n-1].Batch == sp.b {
		w.refusals[n-1].Rows = append(w.refusals[n-1].Rows, re)
		return
	}
	w.refusals = append(w.refusals, connector.Refusal{Batch: sp.b, Rows: []connector.RowError{re}})
}

// Settle implements connector.Settler: it ends the open stream, and sends
// again what a lost connection left unjudged.
func (w *writer) Settle(ctx context.Context) ([]connector.Refusal, error) {
	if w.broken != nil {
		return nil, w.broken
	}
	if w.stream != nil || len(w.unjudged) > 0 {
		if err := w.begin(ctx); err != nil {
			return nil, w.fail(ctx, err, len(w.spans), w.staged)
		}
		if err := w.closeStream(ctx, false); err != nil {
			return nil, w.fail(ctx, err, len(w.spans), w.staged)
		}
	}
	out := w.refusals
	w.refusals = nil
	return out, nil
}

// abortStream abandons the open statement, which fails its transaction;
// its rows stay unjudged.
func (w *writer) abortStream() {
	if st := w.stream; st != nil {
		w.stream = nil
		if !st.ended {
			close(st.abort)
			st.err, st.ended = <-st.done, true
		}
	}
}

// splitRefused splits the rows of a refused statement around the row the
// server named (counted from 1 over all spans), or in halves when it named
// none; a single row is the refused one.
func splitRefused(spans []span, err error) (before []span, bad span, after []span) {
	total := 0
	for _, sp := range spans {
		total += sp.hi - sp.lo
	}
	line, _ := copyErrorPlace(err)
	if total == 1 {
		line = 1
	}
	if line < 1 || line > total {
		before, after = splitSpans(spans, total/2)
		return before, span{}, after
	}
	before, rest := splitSpans(spans, line-1)
	bad = rest[0]
	bad.hi = bad.lo + 1
	_, after = splitSpans(rest, 1)
	return before, bad, after
}

// splitSpans splits spans after their first n rows.
func splitSpans(spans []span, n int) (head, tail []span) {
	for i, sp := range spans {
		rows := sp.hi - sp.lo
		if n >= rows {
			head = append(head, sp)
			n -= rows
			continue
		}
		if n > 0 {
			h := sp
			h.hi = sp.lo + n
			head = append(head, h)
			sp.lo += n
		}
		tail = append(tail, sp)
		tail = append(tail, spans[i+1:]...)
		return head, tail
	}
	return head, nil
}

// bytes are the rendered rows of sp.
func (sp span) bytes() []byte { return sp.enc.data[sp.enc.offs[sp.lo]:sp.enc.offs[sp.hi]] }

// spansReader reads the rendered rows of spans as one COPY's input.
func (w *writer) spansReader(spans []span) io.Reader {
	rs := make([]io.Reader, 0, len(spans)+2)
	if w.binary {
		rs = append(rs, bytes.NewReader(binaryHeader))
	}
	for _, sp := range spans {
		rs = append(rs, bytes.NewReader(sp.bytes()))
	}
	if w.binary {
		rs = append(rs, bytes.NewReader(binaryTrailer))
	}
	return io.MultiReader(rs...)
}

// unjudgedBatch returns the rendered rows of b when b was written and its
// rows are not judged yet.
func (w *writer) unjudgedBatch(b *record.Batch) *encoded {
	for _, sp := range w.unjudged {
		if sp.b == b {
			return sp.enc
		}
	}
	return nil
}
