package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/record"
)

// fieldReader is how one field is read from its column.
type fieldReader struct {
	name  string
	kind  kind
	ftype record.Type
}

// reader streams one task with one query. The query stays open between
// batches (the server waits while the pipeline is busy); the position of
// each batch is the ordering values of its last row, so a new reader
// resumes exactly after it.
type reader struct {
	srv      *server
	conn     *pgconn.PgConn
	schema   *record.Schema
	origin   string
	loc      *time.Location
	limits   record.Limits
	deferred bool // leave decoding to Batch.Decode
	run      string

	cols    []column      // result columns: the fields, then ordering columns that are not fields
	fields  []fieldReader // the first nf result columns
	nf      int
	hasText bool // some field reads text: decode slices one string per batch

	order      []int    // result column of each ordering column
	orderNames []string // their names
	posCols    []posCol

	sql       string
	params    [][]byte
	paramOIDs []uint32
	formats   []int16

	rr     *pgconn.ResultReader
	cancel context.CancelFunc

	initial *initialRead // a first read in physical order, until its end (initial.go)
	peeked  [][]byte     // part 1: the row read after a full batch, for the next one

	offset int64 // rows read by an unordered read, with those of earlier readers
	n      int64 // rows read by the task
	done   bool
	err    error
}

// Schema implements connector.Reader.
func (r *reader) Schema() *record.Schema { return r.schema }

// rawBatch is a batch's values as the server sent them, for decoding.
type rawBatch struct {
	data  []byte
	lens  []int32 // per value of each row's result columns; -1 is NULL
	lines []int64
	rows  int
}

// Next implements connector.Reader.
func (r *reader) Next(ctx context.Context) (*record.Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if r.done {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.rr == nil {
			// The query outlives this call: it is cancelled by Close, or by
			// ctx while a Next runs.
			if r.cancel != nil {
				r.cancel()
			}
			qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			r.cancel = cancel
			r.rr = r.conn.ExecParams(qctx, r.sql, r.params, r.paramOIDs, nil, r.formats)
		}
		stop := context.AfterFunc(ctx, r.cancel)
		b, raw, err := r.fill()
		if !stop() && err == nil && r.rr != nil {
			// ctx ended while the rows were read, and the query was
			// cancelled with it: the stream cannot go on after this batch.
			// The batch goes with the reader; its caller resumes from the
			// position before it.
			err = ctx.Err()
		}
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			r.err = fmt.Errorf("postgres: %s, read %s: %w", r.srv.where, r.origin, classify(r.srv.redact(err), r.conn))
			r.closeQuery()
			return nil, r.err
		}
		if b.Read == 0 {
			continue // the end of the result; a first read goes on after its max
		}
		if r.deferred {
			b.Decode = func(b *record.Batch) { r.decode(b, raw) }
		} else {
			r.decode(b, raw)
		}
		return b, nil
	}
}

// endResult closes the open query, whose rows ran out: the end of the
// read, or of part 1 of a first read, which goes on with the rows after
// its max. It reports whether part 1 ended.
func (r *reader) endResult() (bool, error) {
	if _, err := r.rr.Close(); err != nil {
		return false, err
	}
	r.rr = nil
	ir := r.initial
	if ir == nil {
		r.done = true
		return false, nil
	}
	r.initial = nil
	r.sql, r.params, r.paramOIDs = ir.nextSQL, ir.nextParams, ir.nextOIDs
	return true, nil
}

// fill reads rows until a batch limit or the end of the result. Rows over
// the record size limit are rejected on the spot; the others are kept
// undecoded in raw.
func (r *reader) fill() (*record.Batch, *rawBatch, error) {
	ncol := len(r.cols)
	limit := r.limits.BatchRows
	b := &record.Batch{Schema: r.schema, Origin: r.origin}
	raw := &rawBatch{lens: make([]int32, 0, min(limit, 1<<16)*ncol), lines: make([]int64, 0, min(limit, 1<<16))}
	var lastOversize [][]byte // ordering values of the last row when it was rejected for its size
	ir := r.initial           // part 1 of a first read: positions are row numbers
	initialEnded := false     // part 1 ended with this batch: its position is part 1's max
	for b.Read < limit && (r.limits.BatchBytes <= 0 || len(raw.data) < r.limits.BatchBytes) {
		vals := r.peeked
		r.peeked = nil
		if vals == nil {
			if !r.rr.NextRow() {
				var err error
				if initialEnded, err = r.endResult(); err != nil {
					return nil, nil, err
				}
				break
			}
			vals = r.rr.Values()
		}
		if len(vals) != ncol {
			return nil, nil, fmt.Errorf("the server sent %d columns, want %d", len(vals), ncol)
		}
		if ir != nil {
			if err := ir.checkTid(vals[ir.ctidAt]); err != nil {
				return nil, nil, err
			}
		}
		b.Read++
		r.n++
		size := 0
		for _, v := range vals[:r.nf] {
			size += len(v)
		}
		if r.limits.MaxRecordBytes > 0 && size > r.limits.MaxRecordBytes {
			b.Rejects = append(b.Rejects, record.Reject{Line: r.n, Step: "source",
				Err: fmt.Sprintf("record of %d bytes exceeds the limit of %d bytes", size, r.limits.MaxRecordBytes),
				Raw: cutRaw(r.rawJSON(vals), 1024)})
			lastOversize = lastOversize[:0]
			for _, at := range r.order {
				lastOversize = append(lastOversize, cloneBytes(vals[at]))
			}
			continue
		}
		lastOversize = nil
		if raw.data == nil {
			raw.data = make([]byte, 0, size*min(limit, 1<<16)+size)
		}
		for _, v := range vals {
			if v == nil {
				raw.lens = append(raw.lens, -1)
				continue
			}
			raw.lens = append(raw.lens, int32(len(v)))
			raw.data = append(raw.data, v...)
		}
		raw.lines = append(raw.lines, r.n)
		raw.rows++
	}
	if ir != nil && !initialEnded && b.Read > 0 {
		// A full batch of part 1: if its last row ends part 1, its position
		// is part 1's max, as any later position will be; the next row,
		// if any, waits for the next batch.
		if r.rr.NextRow() {
			r.peeked = make([][]byte, 0, ncol)
			for _, v := range r.rr.Values() {
				r.peeked = append(r.peeked, cloneBytes(v))
			}
		} else {
			var err error
			if initialEnded, err = r.endResult(); err != nil {
				return nil, nil, err
			}
		}
	}
	b.Bytes = int64(len(raw.data))
	if b.Read == 0 {
		return b, raw, nil
	}
	var p posJSON
	p.V, p.Run, p.N, p.Cols = posVersion, r.run, r.n, r.posCols
	switch {
	case len(r.order) == 0:
		r.offset += int64(b.Read)
		off := r.offset
		p.Offset = &off
	case initialEnded:
		// Every row up to max is read; the read goes on after it.
		p.Order = r.orderNames
		p.Last = ir.pos.Max
	case ir != nil:
		p.Order = r.orderNames
		in := ir.pos
		in.After = ir.after.String()
		p.Initial = &in
	default:
		var lastVals [][]byte
		if lastOversize != nil {
			lastVals = lastOversize
		} else {
			lastVals = raw.lastRow(ncol)
		}
		p.Order = r.orderNames
		p.Last = make([]posVal, len(r.order))
		for i, at := range r.order {
			p.Last[i].Type = r.cols[at].typeName
			if v := lastVals[at]; v != nil {
				s := posText(r.cols[at].kind, v)
				p.Last[i].V = &s
			}
		}
	}
	pos, err := json.Marshal(&p)
	if err != nil {
		return nil, nil, err
	}
	b.Pos = pos
	return b, raw, nil
}

// lastRow returns the values of the last row of raw (nil for NULL).
func (raw *rawBatch) lastRow(ncol int) [][]byte {
	out := make([][]byte, ncol)
	end := len(raw.data)
	lens := raw.lens[len(raw.lens)-ncol:]
	for i := ncol - 1; i >= 0; i-- {
		if lens[i] < 0 {
			continue
		}
		out[i] = raw.data[end-int(lens[i]) : end]
		end -= int(lens[i])
	}
	return out
}

// decode turns the raw values into rows; a value that does not convert
// rejects its row.
func (r *reader) decode(b *record.Batch, raw *rawBatch) {
	ncol := len(r.cols)
	var str string
	if r.hasText {
		str = string(raw.data) // one copy; text values are slices of it
	}
	vals := make([]any, raw.rows*r.nf)
	bx := newBoxer(raw.rows)
	b.Rows = make([]record.Row, 0, raw.rows)
	b.Lines = make([]int64, 0, raw.rows)
	off := 0
	li := 0
	for row := 0; row < raw.rows; row++ {
		dst := vals[row*r.nf : (row+1)*r.nf : (row+1)*r.nf]
		rowStart, liStart := off, li
		var bad error
		badField := ""
		for j := 0; j < ncol; j++ {
			n := raw.lens[li]
			li++
			if n < 0 {
				continue
			}
			start := off
			off += int(n)
			if j >= r.nf || bad != nil {
				continue
			}
			f := &r.fields[j]
			var v any
			var err error
			if (f.kind == kString || f.kind == kText) && (f.ftype == record.String || f.ftype == record.Any) {
				v = bx.strs.Box(str[start:off])
			} else if fast, ok := bx.decode(f, raw.data[start:off], r.loc); ok {
				v = fast
			} else {
				v, err = r.value(f, raw.data[start:off], str, start, off)
			}
			if err != nil {
				bad, badField = err, f.name
				continue
			}
			dst[j] = v
		}
		if bad != nil {
			b.Rejects = append(b.Rejects, record.Reject{Line: raw.lines[row], Step: "source", Field: badField, Err: bad.Error(),
				Raw: r.rawJSONAt(raw, rowStart, liStart)})
			continue
		}
		b.Rows = append(b.Rows, record.Row(dst))
		b.Lines = append(b.Lines, raw.lines[row])
	}
}

// value decodes one non-NULL value of field f and converts it to the
// field's type.
// str, when not empty, is the batch's text, of which b is str[start:end].
func (r *reader) value(f *fieldReader, b []byte, str string, start, end int) (any, error) {
	var v any
	var err error
	if f.kind == kText || f.kind == kString {
		if len(str) >= end && end-start == len(b) && str != "" {
			v = str[start:end]
		} else {
			v = string(b)
		}
		if f.ftype == record.JSON {
			v, err = record.ParseText(v.(string), record.JSON, r.loc)
			return v, r.convErr(f, b, err)
		}
	} else if (f.kind == kJSON || f.kind == kJSONB) && f.ftype == record.String {
		return posText(f.kind, b), nil // the JSON text as stored
	} else {
		v, err = decode(f.kind, b, r.loc)
		if err != nil {
			return nil, r.convErr(f, b, err)
		}
	}
	if f.ftype == f.kind.recordType() || f.ftype == record.Any {
		return v, nil
	}
	v, err = record.Convert(v, f.ftype, r.loc)
	return v, r.convErr(f, b, err)
}

// boxer holds the values of one batch's commonest types in slabs: one
// allocation per chunk instead of one per value (see record.Slab). A boxer
// decodes one batch; batches may be decoded concurrently.
type boxer struct {
	ints  record.Slab[int64]
	strs  record.Slab[string]
	decs  record.Slab[record.Dec]
	times record.Slab[time.Time]
}

func newBoxer(rows int) *boxer {
	n := max(16, min(rows, 4096))
	return &boxer{ints: record.NewSlab[int64](n), strs: record.NewSlab[string](n),
		decs: record.NewSlab[record.Dec](n), times: record.NewSlab[time.Time](n)}
}

// decode decodes a binary integer, numeric or timestamp read as its own
// record type; ok is false for anything else, and for a value it cannot
// decode (reader.value then says why).
func (bx *boxer) decode(f *fieldReader, b []byte, loc *time.Location) (any, bool) {
	if f.ftype != f.kind.recordType() && f.ftype != record.Any {
		return nil, false
	}
	switch f.kind {
	case kInt2, kInt4, kInt8:
		n, err := decodeInt(f.kind, b)
		if err != nil {
			return nil, false
		}
		if n >= 0 && n < 256 {
			return n, true // the runtime's own boxes
		}
		return bx.ints.Box(n), true
	case kNumeric:
		d, err := decodeNumeric(b)
		if err != nil {
			return nil, false
		}
		return bx.decs.Box(d), true
	case kTimestamp, kTimestamptz:
		t, err := decodeTimestamp(f.kind, b, loc)
		if err != nil {
			return nil, false
		}
		return bx.times.Box(t), true
	}
	return nil, false
}

// convErr names the field, the value and the reason of a failed
// conversion.
func (r *reader) convErr(f *fieldReader, b []byte, err error) error {
	if err == nil {
		return nil
	}
	var ce *record.ConvError
	if errors.As(err, &ce) {
		ce.Field = f.name
		return ce
	}
	v := posText(f.kind, b)
	if len(v) > 200 {
		v = v[:200] + "…"
	}
	return &record.ConvError{Field: f.name, Value: v, Type: f.ftype, Reason: err.Error()}
}

// rawJSON renders a row's field values as JSON text, as the server would
// print them: the record of a dead letter.
func (r *reader) rawJSON(vals [][]byte) []byte {
	dst := []byte{'{'}
	for j := 0; j < r.nf; j++ {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = record.AppendJSON(dst, r.fields[j].name)
		dst = append(dst, ':')
		if vals[j] == nil {
			dst = append(dst, "null"...)
		} else {
			dst = record.AppendJSON(dst, posText(r.fields[j].kind, vals[j]))
		}
	}
	return append(dst, '}')
}

func (r *reader) rawJSONAt(raw *rawBatch, off, li int) []byte {
	vals := make([][]byte, len(r.cols))
	for j := range vals {
		n := raw.lens[li+j]
		if n < 0 {
			continue
		}
		vals[j] = raw.data[off : off+int(n)]
		off += int(n)
	}
	return r.rawJSON(vals)
}

func cutRaw(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (r *reader) closeQuery() {
	if r.rr != nil {
		r.cancel()   // a result left unread would be drained to its end otherwise
		r.rr.Close() //nolint:errcheck // abandoning the query
		r.rr = nil
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// Close implements connector.Reader.
func (r *reader) Close() error {
	r.closeQuery()
	if r.conn != nil {
		closeConn(r.conn)
		r.conn = nil
	}
	return nil
}
