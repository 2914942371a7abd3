package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/failpoint"
	"github.com/backbone-etl/backbone/internal/record"
)

var timeUTC = time.UTC

// writer stages rows with COPY in one transaction per Commit, on one
// connection.
//
// Loss and retry: in modes append and upsert the writer keeps the encoded
// rows accepted since the last successful Commit (spans). Whenever a new
// transaction begins while spans are kept, it stages them again first; so
// after a lost connection, a retried Write or Commit loses nothing. A
// COMMIT whose answer the lost connection swallowed is settled on the next
// connection with txid_status. In mode replace the run's rows live only in
// the transaction: once rows are lost the writer is broken for good (the
// run must start again) and never swaps in an incomplete table.
type writer struct {
	s        *pgSink
	conn     *pgconn.PgConn
	schema   *record.Schema
	pipeline string
	loc      *time.Location
	nc       int

	cols      []copyColumn // per field: its column and how to write it
	binary    bool         // COPY in binary format: every field has a binary writing
	table     string       // the table, qualified and quoted
	copySQL   string       // COPY into the table, the new table or the stage
	upsertSQL string       // upsert: INSERT … SELECT from the stage, the last row of a repeated key
	plainSQL  string       // upsert: the same for a batch without repeated keys
	stageSQL  string       // upsert: CREATE TEMP TABLE of the stage
	existed   bool         // replace: the table existed when the writer opened
	user      string       // current_user

	inTx       bool
	xid        string // of the open transaction
	unknownXid string // a COMMIT was sent and its answer lost
	// unknownCps are the checkpoints of that COMMIT; once settle finds it
	// committed they become settledCps: the engine then does the same
	// write and commit again, which must store nothing twice.
	unknownCps, settledCps []connector.Checkpoint
	staged                 int    // rows staged in the open transaction
	savepoint              bool   // the savepoint before the last rows staged is still open
	spans                  []span // append/upsert: rows accepted since the last Commit
	stageDirty             bool   // upsert: the stage may hold rows of an earlier statement
	repeats                bool   // upsert: a key repeated across batches; every upsert takes the last row of a key
	ord                    int    // upsert: the number of the next row the stream sends
	swapSQL                []string
	renames                []string // replace: new names and the names they take at the swap, for messages
	swapped                bool     // replace: the new table was committed in place
	broken                 error    // rows were lost for good

	limited []limit // string fields bound for varchar(n) or char(n) columns
	checks  []check // CHECK constraints judged here (checks.go)

	stream    *copyStream         // append, replace: the COPY open across Writes (see stream.go)
	streamCap int                 // bytes of rows after which a stream ends
	unjudged  []span              // rows sent in the open stream, or lost with it, not judged yet
	refusals  []connector.Refusal // rows refused since the last Settle

	rowBytes atomic.Int64 // average encoded row size, to size buffers
	buffers  sync.Pool    // *[]byte: rendered rows of committed batches, for encode to fill again
}

// span is a run of encoded rows: accepted by the table (spans), or sent
// in a stream and not judged yet (unjudged, which keep their batch b).
type span struct {
	enc    *encoded
	lo, hi int
	b      *record.Batch
}

// encoded is a batch in COPY text format: the rows that could be rendered,
// their batch indexes, and the rows that could not.
type encoded struct {
	w     *writer
	batch weak.Pointer[record.Batch] // which batch, without keeping it: spans keep only the rendered rows
	n     int                        // rows of the batch
	data  []byte                     // the rendered rows, one line each
	offs  []int                      // offs[i]: start of rendered row i; one more for the end
	idx   []int                      // batch index of rendered row i
	bad   []connector.RowError
	dups  bool // upsert: a key appears more than once

	refused []connector.RowError // after Write: every row refused, sorted
}

func (w *writer) mode() string { return w.s.cfg.Mode }

func (w *writer) tableName() string { return w.s.cfg.Table }

// setup checks or creates the table and the checkpoint tables and builds
// the statements.
func (w *writer) setup(ctx context.Context) error {
	cfg := &w.s.cfg
	if err := ensureCheckpointTables(ctx, w.conn, cfg.DBSchema); err != nil {
		return err
	}
	rows, err := query(ctx, w.conn, "SELECT current_user")
	if err != nil {
		return err
	}
	w.user = text(rows[0][0])
	w.table = qualified(cfg.DBSchema, cfg.Table)
	t, err := w.s.inspect(ctx, w.conn)
	if err != nil {
		return err
	}
	w.existed = t.exists
	if !t.exists {
		if !cfg.Create {
			return errNoTable
		}
		if w.mode() != modeReplace {
			key := []string(cfg.Key)
			if err := exec(ctx, w.conn, strings.Replace(createSQL(w.table, w.schema, key), "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)); err != nil {
				return fmt.Errorf("create table: %w", err)
			}
			if t, err = w.s.inspect(ctx, w.conn); err != nil {
				return err
			}
		}
	}
	w.cols = make([]copyColumn, w.nc)
	oids := make([]uint32, w.nc)
	var missing []string
	for j, f := range w.schema.Fields() {
		w.cols[j] = copyColumn{name: f.Name, ftype: f.Type}
		oid := createdOID(f.Type)
		if t.exists {
			i, ok := findColumn(t.cols, f.Name)
			if !ok {
				missing = append(missing, f.Name)
				continue
			}
			w.cols[j].name, oid, w.cols[j].scaled = t.cols[i].name, t.cols[i].oid, t.cols[i].scaled
			if t.cols[i].maxChars > 0 && f.Type == record.String && w.conn.ParameterStatus("server_encoding") == "UTF8" {
				// Checked here: a value too long costs no statement.
				typ := "character varying"
				if oid == oidBpchar {
					typ = "character"
				}
				w.limited = append(w.limited, limit{field: j, chars: t.cols[i].maxChars, typ: fmt.Sprintf("%s(%d)", typ, t.cols[i].maxChars)})
			}
		}
		w.cols[j].target, w.cols[j].bin = targetOf(oid), binaryKind(f.Type, oid)
		oids[j] = oid
	}
	w.binary = !slices.ContainsFunc(w.cols, func(c copyColumn) bool { return c.bin == bNone })
	if len(missing) > 0 {
		return fmt.Errorf("the table has no column for field(s) %s (its columns: %s)", strings.Join(missing, ", "), columnNames(t.cols))
	}
	// An upsert of key columns alone does nothing to a row it meets: a
	// CHECK is the server's to judge then.
	if t.exists && (w.mode() != modeUpsert || len(cfg.Key) < w.nc) {
		if w.checks, err = loadChecks(ctx, w.conn, t.rel.oid, w.cols, oids); err != nil {
			return err
		}
	}
	names := make([]string, w.nc)
	for j, c := range w.cols {
		names[j] = c.name
	}
	list := quoteIdents("", names)
	format := ""
	if w.binary {
		format = " (FORMAT binary)"
	}
	switch w.mode() {
	case modeAppend:
		w.copySQL = "COPY " + w.table + " (" + list + ") FROM STDIN" + format
	case modeReplace:
		w.copySQL = "COPY " + qualified(cfg.DBSchema, cfg.Table+newSuffix) + " (" + list + ") FROM STDIN" + format
	case modeUpsert:

		w.stageSQL = "CREATE TEMP TABLE IF NOT EXISTS " + quoteIdent(stageName) + " ON COMMIT DELETE ROWS AS SELECT " +
			quoteIdents("s.", names) + ", NULL::int4 AS " + quoteIdent(ordColumn) + " FROM " + w.table + " AS s WITH NO DATA"
		w.copySQL = "COPY " + stageTable + " (" + list + ", " + quoteIdent(ordColumn) + ") FROM STDIN" + format
		var keys, set []string
		for _, k := range cfg.Key {
			j, _ := w.schema.Index(k)
			keys = append(keys, w.cols[j].name)
		}
		for _, n := range names {
			if !slices.Contains(keys, n) {
				set = append(set, quoteIdent(n)+" = EXCLUDED."+quoteIdent(n))
			}
		}
		klist := quoteIdents("", keys)
		// DISTINCT ON keeps the last row of a key repeated within the batch:
		// ON CONFLICT cannot update one row twice in a statement.
		conflict := " ON CONFLICT (" + klist + ") DO NOTHING"
		if len(set) > 0 {
			conflict = " ON CONFLICT (" + klist + ") DO UPDATE SET " + strings.Join(set, ", ")
		}
		w.upsertSQL = "INSERT INTO " + w.table + " (" + list + ") SELECT DISTINCT ON (" + klist + ") " + list +
			" FROM " + stageTable + " ORDER BY " + klist + ", " + quoteIdent(ordColumn) + " DESC" + conflict
		w.plainSQL = "INSERT INTO " + w.table + " (" + list + ") SELECT " + list + " FROM " + stageTable + conflict
		if err := exec(ctx, w.conn, w.stageSQL); err != nil {
			return err
		}
	}
	return nil
}

// createdOID is the type of the column create: true makes for t.
func createdOID(t record.Type) uint32 {
	switch t {
	case record.Int:
		return oidInt8
	case record.Float:
		return oidFloat8
	case record.Decimal:
		return oidNumeric
	case record.Bool:
		return oidBool
	case record.Timestamp:
		return oidTimestamptz
	case record.Date:
		return oidDate
	case record.Bytes:
		return oidBytea
	case record.JSON:
		return oidJSONB
	}
	return oidText
}

// Info implements connector.Writer.
func (w *writer) Info() connector.WriterInfo {
	info := connector.WriterInfo{Transactional: true, Once: w.mode() == modeReplace}
	if !info.Once {
		// The rows since the last Commit are kept (spans), and a stream's
		// rows are undone and sent again when one is refused: a window of
		// 32 batches bounds both. Every statement after the first sits
		// behind a savepoint: a transaction of many more would slow the
		// server's visibility checks (over 64 subtransactions).
		info.StageBatches = 32
	}
	return info
}

// Prepare implements connector.Preparer: it renders the batch in COPY text
// format on the engine's worker.
func (w *writer) Prepare(b *record.Batch) error {
	if b.Len() > 0 && (b.Schema == nil || b.Schema.Equal(w.schema)) {
		b.Prepared = w.encode(b)
	}
	return nil
}

func (w *writer) encodedFor(b *record.Batch) *encoded {
	if e, ok := b.Prepared.(*encoded); ok && e.w == w && e.n == len(b.Rows) && e.data != nil {
		return e
	}
	return w.encode(b)
}

// encode renders the rows of b; a row with a value that cannot be written,
// or a NULL key in mode upsert, is refused here.
func (w *writer) encode(b *record.Batch) *encoded {
	e := &encoded{w: w, batch: weak.Make(b), n: len(b.Rows), offs: make([]int, 0, len(b.Rows)+1), idx: make([]int, 0, len(b.Rows))}
	per := w.rowBytes.Load()
	if per <= 0 {
		per = 64
	}
	want := int(per+per/8)*len(b.Rows) + 64
	if p, ok := w.buffers.Get().(*[]byte); ok && cap(*p) >= want {
		e.data = (*p)[:0]
	} else {
		e.data = make([]byte, 0, want)
	}
	var scratch []byte
	upsert := w.mode() == modeUpsert
	var keyIdx []int
	if upsert {
		for _, k := range w.s.cfg.Key {
			j, _ := w.schema.Index(k)
			keyIdx = append(keyIdx, j)
		}
	}
rows:
	for i, row := range b.Rows {
		if len(row) != w.nc {
			e.bad = append(e.bad, connector.RowError{Index: i, Err: fmt.Errorf("postgres: table %q: row has %d values, the schema %d fields", w.tableName(), len(row), w.nc)})
			continue
		}
		for _, k := range keyIdx {
			if row[k] == nil {
				e.bad = append(e.bad, connector.RowError{Index: i, Err: fmt.Errorf("postgres: table %q: key field %q is null", w.tableName(), w.schema.Field(k).Name)})
				continue rows
			}
		}
		for _, l := range w.limited {
			if s, ok := row[l.field].(string); ok && l.tooLong(s) {
				e.bad = append(e.bad, connector.RowError{Index: i, Err: fmt.Errorf("postgres: table %q: value too long for type %s (column %q)",
					w.tableName(), l.typ, w.cols[l.field].name)})
				continue rows
			}
		}
		ord := -1
		if upsert {
			ord = i
		}
		start := len(e.data)
		var j int
		var err error
		if w.binary {
			e.data, j, err = appendBinaryRow(e.data, w.cols, row, w.loc, ord, &scratch)
		} else {
			e.data, j, err = appendCopyRow(e.data, w.cols, row, w.loc, ord, &scratch)
		}
		if err != nil {
			e.bad = append(e.bad, connector.RowError{Index: i, Err: fmt.Errorf("postgres: table %q: field %q: %w", w.tableName(), w.schema.Field(j).Name, err)})
			continue
		}
		if ch, c, v := broken(w.checks, row); ch != nil {
			e.data = e.data[:start]
			e.bad = append(e.bad, connector.RowError{Index: i, Err: fmt.Errorf("postgres: table %q: %s", w.tableName(), checkMessage(w.tableName(), ch, c, v))})
			continue
		}
		e.offs = append(e.offs, start)
		e.idx = append(e.idx, i)
	}
	e.offs = append(e.offs, len(e.data))
	if upsert && len(e.idx) > 0 {
		e.dups = repeatedKeys(b.Rows, e.idx, keyIdx)
	}
	if len(e.idx) > 0 {
		w.rowBytes.Store(int64(len(e.data) / len(e.idx)))
	}
	return e
}

// limit is the most characters a column of type varchar(n) or char(n)
// takes. Past them the server refuses a value, unless what is past them is
// spaces, which it cuts off (in a UTF8 database, where characters are code
// points).
type limit struct {
	field int
	chars int
	typ   string // as the server names it: "character varying(3)"
}

func (l limit) tooLong(s string) bool {
	if len(s) <= l.chars || utf8.RuneCountInString(s) <= l.chars {
		return false
	}
	rest := s
	for range l.chars {
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
	}
	return strings.TrimLeft(rest, " ") != ""
}

// repeatedKeys reports whether two of the rows idx of rows share a key.
// Without repeats, the upsert needs no DISTINCT ON (and its sort).
func repeatedKeys(rows []record.Row, idx, keyIdx []int) bool {
	if len(keyIdx) == 1 {
		k := keyIdx[0]
		switch rows[idx[0]][k].(type) {
		case int64:
			seen := make(map[int64]struct{}, len(idx))
			for _, i := range idx {
				v, ok := rows[i][k].(int64)
				if !ok {
					return true // mixed representations: let the database decide
				}
				if _, dup := seen[v]; dup {
					return true
				}
				seen[v] = struct{}{}
			}
			return false
		case string:
			seen := make(map[string]struct{}, len(idx))
			for _, i := range idx {
				v, ok := rows[i][k].(string)
				if !ok {
					return true
				}
				if _, dup := seen[v]; dup {
					return true
				}
				seen[v] = struct{}{}
			}
			return false
		}
	}
	seen := make(map[string]struct{}, len(idx))
	key := make([]any, len(keyIdx))
	for _, i := range idx {
		for j, k := range keyIdx {
			key[j] = rows[i][k]
		}
		ks := connector.KeyString(key)
		if _, dup := seen[ks]; dup {
			return true
		}
		seen[ks] = struct{}{}
	}
	return false
}

// Write implements connector.Writer.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if w.broken != nil {
		return 0, w.broken
	}
	if b.Len() == 0 {
		return 0, nil
	}
	if b.Schema != nil && !b.Schema.Equal(w.schema) {
		return 0, fmt.Errorf("%s: batch schema (%s) differs from the schema the sink was opened with (%s)", w.s.where(), b.Schema, w.schema)
	}
	for _, sp := range w.spans {
		if sp.enc.batch.Value() == b {
			// Written since the last Commit and still staged (a caller
			// retrying Write after a failed Commit): already there.
			return w.result(b, sp.enc.refused)
		}
	}
	if e := w.unjudgedBatch(b); e != nil {
		return w.result(b, e.refused) // the same: its rows are on their way
	}
	e := w.encodedFor(b)
	// Rows the table refuses are reported by Settle.
	e.refused = slices.Clone(e.bad)
	if len(e.idx) > 0 {
		if err := w.begin(ctx); err != nil {
			return 0, w.fail(ctx, err, len(w.spans), w.staged)
		}
		if err := w.send(ctx, span{enc: e, lo: 0, hi: len(e.idx), b: b}); err != nil {
			return 0, w.fail(ctx, err, len(w.spans), w.staged)
		}
	}
	return w.result(b, e.refused)
}

func (w *writer) result(b *record.Batch, refused []connector.RowError) (int, error) {
	if len(refused) == 0 {
		return b.Len(), nil
	}
	return b.Len() - len(refused), &connector.BatchError{Rows: slices.Clone(refused)}
}

// begin makes sure a connection and a transaction are open. A new
// transaction first settles a lost COMMIT, makes the new table of mode
// replace, and stages again the rows kept since the last Commit.
func (w *writer) begin(ctx context.Context) error {
	if w.conn == nil {
		c, err := w.s.srv.connect(ctx)
		if err != nil {
			return err
		}
		w.conn = c
		if w.stageSQL != "" {
			if err := exec(ctx, c, w.stageSQL); err != nil {
				return err
			}
		}
	}
	if w.unknownXid != "" {
		if err := w.settle(ctx); err != nil {
			return err
		}
	}
	if w.inTx {
		return nil
	}
	res, err := w.conn.Exec(ctx, "BEGIN; SELECT txid_current()").ReadAll()
	if err != nil {
		return err
	}
	w.inTx, w.staged, w.stageDirty, w.savepoint = true, 0, false, false
	if len(res) == 2 && len(res[1].Rows) == 1 {
		w.xid = string(res[1].Rows[0][0])
	}
	if w.mode() == modeReplace && !w.swapped {
		if err := w.prepareReplace(ctx); err != nil {
			return err
		}
	}
	if len(w.spans) > 0 {
		if err := w.copySpans(ctx, w.spans); err != nil {
			if rowError(err) {
				w.broken = fmt.Errorf("%s: rows accepted before the connection was lost are refused when staged again (%s): the run must start again",
					w.s.where(), serverMessage(err))
				return w.broken
			}
			return err
		}
		for _, sp := range w.spans {
			w.staged += sp.hi - sp.lo
		}
	}
	if len(w.unjudged) > 0 {
		// Sent in a stream the lost transaction took along: sent again.
		unjudged := w.unjudged
		w.unjudged = nil
		w.openStream(ctx)
		w.sendAll(unjudged)
	}
	return nil
}

// copySpans stages rows accepted before, as one statement. An upsert
// numbers them again in order, copies them into the stage (empty in a new
// transaction) and upserts the last row of each key.
func (w *writer) copySpans(ctx context.Context, spans []span) error {
	q := w.copySQL
	if w.mode() == modeUpsert {
		ord := 0
		for _, sp := range spans {
			ord = sp.enc.setOrds(sp.lo, sp.hi, ord)
		}
		q += "; " + w.upsertSQL
		w.stageDirty = true
	}
	_, err := w.conn.CopyFrom(ctx, w.spansReader(spans), q)
	return err
}

// How long settle waits for the transaction of a lost connection to end
// (variables for tests).
var (
	settlePoll = 20 * time.Millisecond
	settleWait = 2 * time.Second
)

// settle finds out whether the transaction whose COMMIT went unanswered
// committed.
//
// A server that crashed before it logged anything of that transaction
// comes back with its next transaction ID below it, and calls it "in the
// future": it never committed (a commit would have been logged, and
// recovery would have moved the next ID past it).
//
// The server ends the transaction of a connection it lost once it notices
// the loss, which takes a moment: until then it is "in progress", and
// settle asks again every settlePoll for up to settleWait before it calls
// the failure transient (the engine then retries later).
func (w *writer) settle(ctx context.Context) error {
	status := ""
	for waited := time.Duration(0); ; waited += settlePoll {
		rows, err := query(ctx, w.conn, "SELECT txid_status($1::int8)", w.unknownXid)
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "22023" && strings.Contains(pe.Message, "in the future"):
			status = "aborted"
		case err != nil:
			return err
		case len(rows) == 1 && rows[0][0] != nil:
			status = text(rows[0][0])
		}
		if status != "in progress" || waited >= settleWait {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
	switch status {
	case "committed":
		w.spans, w.unknownXid = nil, ""
		w.settledCps, w.unknownCps = w.unknownCps, nil
		if w.mode() == modeReplace {
			w.swapped = true
		}
		return nil
	case "aborted":
		w.unknownXid, w.unknownCps = "", nil
		if w.mode() == modeReplace {
			w.broken = fmt.Errorf("%s: the connection was lost while the run's rows were committed, and the server rolled them back: the run must start again", w.s.where())
			return w.broken
		}
		return nil // the kept rows are staged again
	case "in progress":
		return connector.Transient(fmt.Errorf("the transaction %s of a lost connection is still in progress", w.unknownXid))
	}
	w.broken = fmt.Errorf("%s: the connection was lost during a commit and the server no longer knows transaction %s: check the table and the checkpoints before running again", w.s.where(), w.unknownXid)
	return w.broken
}

// message renders a server error about a row, with the names of mode
// replace's new table and indexes given as they will be after the swap.
func (w *writer) message(err error) string {
	msg := serverMessage(err)
	if len(w.renames) > 0 {
		pairs := slices.Clone(w.renames)
		// Longer names first: an index name starts with the table's.
		for i := 0; i < len(pairs); i += 2 {
			for j := i + 2; j < len(pairs); j += 2 {
				if len(pairs[j]) > len(pairs[i]) {
					pairs[i], pairs[i+1], pairs[j], pairs[j+1] = pairs[j], pairs[j+1], pairs[i], pairs[i+1]
				}
			}
		}
		msg = strings.NewReplacer(pairs...).Replace(msg)
	}
	return msg
}

// Commit implements connector.Writer: the checkpoints are stored in the
// transaction of the staged rows (in mode replace, with the swap of the
// tables), then both are committed.
func (w *writer) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	if w.broken != nil {
		return w.broken
	}
	replacePending := w.mode() == modeReplace && !w.swapped
	if !w.inTx && len(cps) == 0 && w.unknownXid == "" && len(w.spans) == 0 && !replacePending {
		return nil
	}
	spansBefore, stagedBefore := len(w.spans), w.staged
	if err := w.begin(ctx); err != nil {
		return w.fail(ctx, err, spansBefore, stagedBefore)
	}
	if err := w.closeStream(ctx, false); err != nil {
		return w.fail(ctx, err, len(w.spans), w.staged)
	}
	if len(w.refusals) > 0 {
		// Committing would drop them without a trace.
		return w.fail(ctx, fmt.Errorf("%d rows refused were not taken by Settle", len(w.refusals)), len(w.spans), w.staged)
	}
	if settled := w.settledCps; settled != nil {
		w.settledCps = nil
		if sameCheckpoints(settled, cps) {
			// The commit whose answer was lost did commit these rows and
			// checkpoints: what was staged again is the same, and goes.
			w.rollback(ctx)
			w.spans = nil
			return nil
		}
	}
	replacePending = w.mode() == modeReplace && !w.swapped // settled by begin
	var batch pgconn.Batch
	for _, cp := range cps {
		if !cp.Guard {
			params, formats := checkpointParams(w.pipeline, cp)
			batch.ExecParams(upsertCheckpointSQL(w.s.cfg.DBSchema), params, checkpointOIDs, formats, nil)
			continue
		}
		// Stored only over the checkpoint this run started from: another
		// process that committed the task meanwhile fails the commit.
		params, oids, formats := casCheckpointParams(w.pipeline, cp)
		batch.ExecParams(casCheckpointSQL(w.s.cfg.DBSchema, cp.Base != nil), params, oids, formats, nil)
	}
	if replacePending {
		for _, q := range w.swapSQL {
			batch.ExecParams(q, nil, nil, nil, nil)
		}
	}
	failpoint.Hit("sink-commit") // rows and checkpoints written, not committed
	batch.ExecParams("COMMIT", nil, nil, nil, nil)
	_, err := w.conn.ExecBatch(ctx, &batch).ReadAll()
	if err == nil && w.conn.TxStatus() != 'I' {
		err = fmt.Errorf("the transaction is still open after COMMIT (status %c)", w.conn.TxStatus())
	}
	if err != nil {
		if connLost(err, w.conn) {
			// The COMMIT may or may not have reached the server: the next
			// Write or Commit asks it.
			w.unknownXid = w.xid
			w.unknownCps = append([]connector.Checkpoint(nil), cps...)
			w.dropConn()
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w (%w)", w.s.where(), ctx.Err(), w.s.srv.redact(err))
			}
			return fmt.Errorf("%s: commit: %w", w.s.where(), connector.Transient(w.s.srv.redact(err)))
		}
		if isConflict(err) {
			// The rows staged belong to the refused commit: none of them
			// may be staged again.
			err = w.fail(ctx, fmt.Errorf("commit: %w", connector.ErrCheckpointConflict), spansBefore, stagedBefore)
			w.spans = nil
			return err
		}
		return w.fail(ctx, fmt.Errorf("commit: %w", err), spansBefore, stagedBefore)
	}
	// The committed rows are never staged again: their buffers serve
	// batches to come.
	for _, sp := range w.spans {
		if sp.enc.data != nil {
			data := sp.enc.data[:0]
			sp.enc.data = nil
			w.buffers.Put(&data)
		}
	}
	w.inTx, w.staged, w.spans, w.stageDirty = false, 0, nil, false
	if replacePending {
		w.swapped = true
	}
	return nil
}

// fail abandons the transaction (and the connection, when it is lost or
// the error left it unusable), forgets the spans of the failed call, and
// wraps err. When rows of mode replace are lost with the transaction the
// writer is broken.
func (w *writer) fail(ctx context.Context, err error, spansBefore, stagedBefore int) error {
	w.abortStream()
	if w.broken != nil && errors.Is(err, w.broken) {
		w.rollback(ctx)
		return w.broken
	}
	retry := transient(err, w.conn) && ctx.Err() == nil
	lost := connLost(err, w.conn) || ctx.Err() != nil
	if !lost {
		w.rollback(ctx)
	} else {
		w.dropConn()
	}
	w.spans = w.spans[:min(spansBefore, len(w.spans))]
	if w.mode() == modeReplace && stagedBefore > 0 {
		w.broken = fmt.Errorf("%s: the rows loaded since the run started were lost with the transaction (%w): the run must start again", w.s.where(), w.s.srv.redact(err))
		return w.broken
	}
	err = w.s.srv.redact(err)
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if retry && !errors.Is(err, connector.ErrTransient) {
		err = connector.Transient(err)
	}
	return fmt.Errorf("%s: %w", w.s.where(), err)
}

// rollback ends the open transaction; when that fails the connection goes.
func (w *writer) rollback(ctx context.Context) {
	w.abortStream()
	if w.conn != nil && (w.inTx || w.conn.TxStatus() != 'I') {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := exec(rctx, w.conn, "ROLLBACK"); err != nil {
			w.dropConn()
		}
	}
	w.inTx, w.staged, w.stageDirty = false, 0, false
}

func (w *writer) dropConn() {
	if st := w.stream; st != nil && !st.ended {
		close(st.abort)
	}
	closeConn(w.conn)
	if st := w.stream; st != nil {
		if !st.ended {
			st.err, st.ended = <-st.done, true
		}
		w.stream = nil
	}
	w.conn = nil
	w.inTx, w.staged, w.stageDirty = false, 0, false
}

// Close implements connector.Writer: it rolls back whatever was staged and
// not committed.
func (w *writer) Close() error {
	w.rollback(context.Background())
	w.dropConn()
	w.spans, w.unjudged, w.refusals = nil, nil, nil
	return nil
}

// sameCheckpoints reports whether two commits store the same checkpoints.
func sameCheckpoints(a, b []connector.Checkpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Task != b[i].Task || string(a[i].Pos) != string(b[i].Pos) || a[i].Done != b[i].Done || a[i].Fingerprint != b[i].Fingerprint {
			return false
		}
	}
	return true
}
