package sqlkit

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/backbone-etl/backbone/internal/record"
)

// Rows is a connector's part of a Reader: where a result row is scanned
// to, how its values become a record, and where a batch ends.
type Rows interface {
	// Dest returns the pointers a result row is scanned into: the fields
	// first, then the ordering columns, then anything else the connector
	// selects.
	Dest() []any

	// Keyset stores the ordering values of the row just scanned into last,
	// as they bind back in the next keyset query.
	Keyset(last []any)

	// Line returns the row's own number (a single integer key, the rowid)
	// when it has one.
	Line() (int64, bool)

	// Size returns about how many bytes the row's field values hold.
	Size() int

	// Raw returns the row's field values as the database gave them, for the
	// Raw of a reject.
	Raw() []any

	// Convert converts the row's field values into row. It returns the field
	// and the error of the first value that does not convert.
	Convert(row record.Row) (field string, err error)

	// ReadKeyset reads the rest of batch b by keyset queries (Reader.Query)
	// after Reader.Last, or from the start when Last is nil. full reports
	// that b filled up before the rows ran out.
	ReadKeyset(ctx context.Context, b *record.Batch) (full bool, err error)

	// Position returns the position after the last row read: the ordering
	// values in Reader.Last, or Reader.Offset rows of an unordered read.
	Position() (record.Position, error)

	// Fail wraps an error of a read with the connector and what it reads.
	Fail(ctx context.Context, err error) error
}

// Reader reads one task of a database/sql source. An ordered read runs one
// keyset query per batch (prepared once for each WHERE), so no statement
// stays open between batches; an unordered read is one streaming query,
// resumed by row count after a retry.
type Reader struct {
	db        *sql.DB
	schema    *record.Schema
	rawSchema *record.Schema // the names of schema typed Any: the raw values of a rejected row
	origin    string
	limits    record.Limits
	rows      Rows

	keys      int                  // ordering columns, after the fields in every result row; 0: an unordered read
	selectSQL string               // SELECT … FROM … AS s, without WHERE
	orderSQL  string               // " ORDER BY … LIMIT ?"
	skipSQL   string               // appended to selectSQL: skip the first ? rows
	stmts     map[string]*sql.Stmt // prepared keyset queries by their WHERE

	// Last holds the ordering values of the last row read; nil: from the
	// start.
	Last []any
	// Offset counts the rows read so far by an unordered read.
	Offset  int64
	ordinal int64 // rows read by this reader
	done    bool
	bytes   int // of the batch being filled

	stream *sql.Rows // an unordered read
	cancel context.CancelFunc
	err    error // an unordered read that failed
}

// NewReader returns a reader of db whose batches have schema and origin.
// rows is the connector's part. Prepare makes it ready.
func NewReader(db *sql.DB, schema *record.Schema, origin string, limits record.Limits, rows Rows) Reader {
	fields := schema.Fields()
	for i := range fields {
		fields[i].Type = record.Any
	}
	return Reader{db: db, schema: schema, rawSchema: record.MustSchema(fields...), origin: origin, limits: limits, rows: rows}
}

// Prepare sets the query: selectSQL is SELECT … FROM … AS s, without WHERE,
// whose result rows are laid out as Rows.Dest says; order lists the SQL of
// its ordering columns, none for an unordered read; skip, appended to
// selectSQL, skips the first ? rows of an unordered read after a retry
// (" LIMIT -1 OFFSET ?"). The statements are checked now.
func (r *Reader) Prepare(ctx context.Context, selectSQL string, order []string, skip string) error {
	r.selectSQL, r.skipSQL, r.keys = selectSQL, skip, len(order)
	r.stmts = map[string]*sql.Stmt{}
	if len(order) == 0 {
		// Check the statement now; it runs at the first Next.
		st, err := r.db.PrepareContext(ctx, r.selectSQL)
		if err != nil {
			return err
		}
		return st.Close()
	}
	r.orderSQL = " ORDER BY " + strings.Join(order, ", ") + " LIMIT ?"
	_, err := r.stmt(ctx, "")
	return err
}

// stmt returns the prepared keyset query with condition where.
func (r *Reader) stmt(ctx context.Context, where string) (*sql.Stmt, error) {
	if st, ok := r.stmts[where]; ok {
		return st, nil
	}
	q := r.selectSQL
	if where != "" {
		q += " WHERE " + where
	}
	st, err := r.db.PrepareContext(ctx, q+r.orderSQL)
	if err != nil {
		return nil, err
	}
	r.stmts[where] = st
	return st, nil
}

// Schema implements connector.Reader.
func (r *Reader) Schema() *record.Schema { return r.schema }

// Origin names what the reader reads: a table, or "query".
func (r *Reader) Origin() string { return r.origin }

// Next implements connector.Reader. A batch that fails is lost: the next
// call starts where it did.
func (r *Reader) Next(ctx context.Context) (*record.Batch, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.keys == 0 {
		return r.nextStream(ctx)
	}
	b := r.newBatch()
	start := slices.Clone(r.Last)
	full, err := r.rows.ReadKeyset(ctx, b)
	if err != nil {
		r.Last = start
		return nil, r.rows.Fail(ctx, err)
	}
	r.done = !full
	if b.Read == 0 {
		return nil, io.EOF
	}
	if b.Pos, err = r.rows.Position(); err != nil {
		return nil, err
	}
	return b, nil
}

func (r *Reader) newBatch() *record.Batch {
	r.bytes = 0
	n := min(r.limits.BatchRows, 1<<16)
	return &record.Batch{Schema: r.schema, Origin: r.origin, Rows: make([]record.Row, 0, n), Lines: make([]int64, 0, n)}
}

// Query runs one keyset query, with condition where ("" for none) and its
// args, for the rest of batch b. full reports that b filled up before the
// query's rows ran out.
func (r *Reader) Query(ctx context.Context, b *record.Batch, where string, args []any) (full bool, err error) {
	st, err := r.stmt(ctx, where)
	if err != nil {
		return false, err
	}
	rows, err := st.QueryContext(ctx, append(args, r.limits.BatchRows-b.Read)...)
	if err != nil {
		return false, err
	}
	full, err = r.fill(rows, b)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return full, err
}

func (r *Reader) nextStream(ctx context.Context) (*record.Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.stream == nil {
		// The query outlives this call; it is cancelled by Close, or by ctx
		// while a Next runs.
		qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		q := r.selectSQL
		var args []any
		if r.Offset > 0 {
			q += r.skipSQL
			args = append(args, r.Offset)
		}
		rows, err := r.db.QueryContext(qctx, q, args...)
		if err != nil {
			cancel()
			return nil, r.rows.Fail(ctx, err)
		}
		r.stream, r.cancel = rows, cancel
	}
	stop := context.AfterFunc(ctx, r.cancel)
	b := r.newBatch()
	full, err := r.fill(r.stream, b)
	if !stop() && err == nil && full {
		// ctx ended while the rows were read, and the query was cancelled
		// with it: the stream cannot go on after this batch. The batch goes
		// with the reader; its caller resumes from the position before it.
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		r.closeStream()
		r.err = r.rows.Fail(ctx, err) // the stream cannot go back to the start of the batch
		return nil, r.err
	}
	if !full {
		r.done = true
		r.closeStream()
	}
	if b.Read == 0 {
		return nil, io.EOF
	}
	r.Offset += int64(b.Read)
	if b.Pos, err = r.rows.Position(); err != nil {
		return nil, err
	}
	return b, nil
}

// fill reads rows into b until a batch limit. full reports that it stopped
// at a limit rather than at the end of the rows.
func (r *Reader) fill(rows *sql.Rows, b *record.Batch) (bool, error) {
	dest := r.rows.Dest()
	nf := r.schema.Len()
	for {
		if b.Read >= r.limits.BatchRows || (r.limits.BatchBytes > 0 && r.bytes >= r.limits.BatchBytes) {
			return true, nil
		}
		if !rows.Next() {
			return false, rows.Err()
		}
		if err := rows.Scan(dest...); err != nil {
			return false, err
		}
		b.Read++
		r.ordinal++
		if r.keys > 0 {
			if r.Last == nil {
				r.Last = make([]any, r.keys)
			}
			r.rows.Keyset(r.Last)
		}
		line := r.ordinal
		if id, ok := r.rows.Line(); ok {
			line = id
		} else if r.keys == 0 {
			line = r.Offset + int64(b.Read)
		}
		size := r.rows.Size()
		r.bytes += size
		if r.limits.MaxRecordBytes > 0 && size > r.limits.MaxRecordBytes {
			raw := record.RowJSON(r.rawSchema, r.rows.Raw())
			if len(raw) > 1024 {
				raw = raw[:1024]
			}
			b.Rejects = append(b.Rejects, record.Reject{Line: line, Step: "source",
				Err: fmt.Sprintf("record of about %d bytes exceeds the limit of %d bytes", size, r.limits.MaxRecordBytes), Raw: raw})
			continue
		}
		row := make(record.Row, nf)
		if field, err := r.rows.Convert(row); err != nil {
			b.Rejects = append(b.Rejects, record.Reject{Line: line, Step: "source", Field: field, Err: err.Error(), Raw: record.RowJSON(r.rawSchema, r.rows.Raw())})
			continue
		}
		b.Rows = append(b.Rows, row)
		b.Lines = append(b.Lines, line)
	}
}

func (r *Reader) closeStream() {
	if r.stream != nil {
		r.stream.Close()
		r.stream = nil
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// CloseStmts closes the prepared keyset queries: of a reader that failed
// to prepare, which is not handed out.
func (r *Reader) CloseStmts() {
	for w, st := range r.stmts {
		st.Close()
		delete(r.stmts, w)
	}
}

// Close implements connector.Reader: it ends the query and closes db.
func (r *Reader) Close() error {
	r.closeStream()
	r.CloseStmts()
	return r.db.Close()
}
