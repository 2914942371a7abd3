package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/failpoint"
	"github.com/backbone-etl/backbone/internal/record"
)

const (
	// defaultStatementRows is the number of rows one INSERT stages.
	defaultStatementRows = 500
	// maxParams is the most placeholders one prepared statement may have.
	maxParams = 65535
	// maxTableName keeps table__backbone_new within MySQL's 64 characters.
	maxTableName = 64 - len("__backbone_new")
	// createdDecimal is the column type create gives decimal fields: 35
	// digits before the point and 30 after. A value with more digits after
	// the point than a column keeps is refused, never rounded.
	createdDecimal = "DECIMAL(65,30)"
)

type sinkConfig struct {
	DSN           string         `yaml:"dsn"`
	Table         string         `yaml:"table"`
	Mode          string         `yaml:"mode"`
	Key           connector.List `yaml:"key"`
	Create        bool           `yaml:"create"`
	StatementRows int            `yaml:"statement_rows"`
}

var sinkSpec = connector.Spec{
	Name:      "mysql",
	BatchRows: func(connector.Params) int { return 4096 }, // an INSERT per batch: fewer round trips
	Summary:   "Write rows into a table of MySQL or MariaDB, with the checkpoints in the same transaction.",
	Doc: `Writes rows into an InnoDB table of MySQL or MariaDB (go-sql-driver/mysql, binary-protocol
prepared statements, the session time zone '+00:00' and a strict sql_mode: a value too long,
out of range or invalid is an error, never a silent truncation).

Rows are staged by multi-row INSERTs (statement_rows rows each, kept under the server's
max_allowed_packet) in one transaction per commit of the pipeline, and the pipeline's
checkpoints are written into backbone_checkpoints of the same database in that transaction
(versioned in backbone_meta): a crash at any instant neither loses nor duplicates a row.

mode append inserts every row. mode upsert inserts or updates by key
(INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c)); the table needs a PRIMARY KEY or UNIQUE index
on exactly the key columns (any other unique index also triggers the update).

mode replace loads the run's rows into <table>__backbone_new (CREATE TABLE … LIKE, so it keeps
the columns and indexes, not foreign keys or triggers), then at the end of the run commits the
checkpoints together with a swap mark in one transaction, and only then runs
RENAME TABLE t TO t__backbone_old, t__backbone_new TO t (atomic) and drops the old table.
Readers see the old rows until the RENAME. MySQL commits DDL implicitly, so the RENAME cannot
share the checkpoints' transaction; instead a committed swap mark whose RENAME did not run (a
crash) is completed, idempotently, by the next Open or checkpoint load of the sink before it
reads any checkpoint: checkpoints and rows are never seen apart. A run that ends without its
commit leaves the table untouched and its load is dropped. The table must be at most 50
characters long and must not be the parent of foreign keys.

A row the database refuses for its own sake (a constraint, NOT NULL, a duplicate key in append,
a value too long, out of range or invalid) is rejected alone: a failing INSERT is split in
halves under SAVEPOINTs until the refused rows stand alone, with the server's message; the
other rows are written. A failure of the connection or the server (refused, reset, killed,
shutting down, deadlock, lock wait timeout, too many connections) rolls back what was staged
and is retried by the engine on a new connection: an outage never rejects a row.

With create: true a missing table is created from the records' schema (InnoDB, utf8mb4_bin so
that keys compare exactly): int BIGINT, float DOUBLE, decimal DECIMAL(65,30), bool BOOLEAN,
timestamp DATETIME(6) (the wall clock in UTC, or in the pipeline's zone), date DATE,
bytes LONGBLOB, json JSON, string LONGTEXT; key columns of mode upsert are VARCHAR(255) or
VARBINARY(255) for strings and bytes, NOT NULL, and the PRIMARY KEY. Decimals go into DECIMAL
columns exactly: a value with more digits after the point than the column keeps is refused
rather than rounded, and MySQL refuses one with too many digits before it. Timestamps keep
microseconds (MySQL's precision; finer digits are cut).`,
	Fields: []connector.FieldSpec{
		{Name: "dsn", Type: connector.TString, Required: true, Secret: true, Doc: "user:password@tcp(host:port)/database?options, or mysql://user:password@host:port/database?options."},
		{Name: "table", Type: connector.TString, Required: true, Doc: "Table of the dsn's database to write."},
		{Name: "mode", Type: connector.TEnum, Default: sqlkit.ModeAppend, Enum: []string{sqlkit.ModeAppend, sqlkit.ModeUpsert, sqlkit.ModeReplace}, Doc: "append, upsert (by key) or replace the table's rows."},
		{Name: "key", Type: connector.TList, Doc: "Key field(s) of mode upsert."},
		{Name: "create", Type: connector.TBool, Default: "false", Doc: "Create the table from the records' schema when missing."},
		{Name: "statement_rows", Type: connector.TInt, Default: strconv.Itoa(defaultStatementRows), Doc: "Rows per INSERT statement."},
	},
	Example: `sink:
  type: mysql
  dsn: ${WAREHOUSE_DSN}
  table: orders
  mode: upsert
  key: order_id
  create: true`,
}

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{Mode: sqlkit.ModeAppend, StatementRows: defaultStatementRows}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	srv, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("dsn"), "%v", err)
	}
	if err := sqlkit.CheckWrite(p, cfg.Table, cfg.Mode, cfg.Key); err != nil {
		return nil, err
	}
	if cfg.Mode == sqlkit.ModeReplace && len(cfg.Table) > maxTableName {
		return nil, connector.Errorf(p.FieldPos("table"), "table %q: mode replace needs a name of at most %d characters (it loads into %s)", cfg.Table, maxTableName, newTableName(cfg.Table))
	}
	if cfg.StatementRows < 1 {
		return nil, connector.Errorf(p.FieldPos("statement_rows"), "statement_rows must be positive, got %d", cfg.StatementRows)
	}
	return &sink{cfg: cfg, srv: srv}, nil
}

type sink struct {
	cfg sinkConfig
	srv *server
}

// LoadCheckpoints implements connector.CheckpointLoader. A replace whose
// checkpoints were committed and whose RENAME did not run is completed
// first.
func (s *sink) LoadCheckpoints(ctx context.Context, env *connector.Env) (map[string]connector.Checkpoint, error) {
	db, err := s.srv.connect(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("mysql: checkpoints: %w", err)
	}
	defer db.Close()
	if err := completeSwap(ctx, db, s.cfg.Table); err != nil {
		return nil, fmt.Errorf("mysql: %s, table %q: %w", s.srv.where, s.cfg.Table, classify(ctx, s.srv.redact(err)))
	}
	cps, err := loadCheckpoints(ctx, db, env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("mysql: %s: checkpoints: %w", s.srv.where, classify(ctx, s.srv.redact(err)))
	}
	return cps, nil
}

// Open implements connector.Sink.
func (s *sink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	if err := sqlkit.CheckFields(schema, s.cfg.Key); err != nil {
		return nil, fmt.Errorf("mysql: table %q: %w", s.cfg.Table, err)
	}
	db, err := s.srv.connect(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	w := &writer{
		cfg:      s.cfg,
		srv:      s.srv,
		db:       db,
		schema:   schema,
		types:    make([]record.Type, schema.Len()),
		pipeline: env.Pipeline,
		runTime:  env.RunTime.UTC(),
		loc:      loc,
		nc:       schema.Len(),
		conn:     sqlkit.NewConn(db),
		target:   s.cfg.Table,
	}
	// The statement cache is bounded: bisection and byte limits make odd
	// sizes. The connection is never handed back to the pool, since a
	// failure may have left it mid-transaction.
	w.conn.MaxStmts, w.conn.Discard = 32, true
	if w.runTime.IsZero() {
		w.runTime = time.Now().UTC()
	}
	for i := range w.types {
		w.types[i] = schema.Field(i).Type
	}
	for _, k := range s.cfg.Key {
		i, _ := schema.Index(k)
		w.keyIdx = append(w.keyIdx, i)
	}
	w.chunk = max(1, min(s.cfg.StatementRows, maxParams/w.nc))
	if err := w.setup(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("mysql: %s, table %q: %w", s.srv.where, s.cfg.Table, classify(ctx, s.srv.redact(err)))
	}
	return w, nil
}

// writer stages rows in one transaction per Commit. It holds one
// connection and drives it through the driver's own statements (Conn.Raw),
// which spares database/sql's per-value argument conversion. After an
// error that ended the transaction it reconnects at the next Write.
type writer struct {
	cfg      sinkConfig
	srv      *server
	db       *sql.DB
	schema   *record.Schema
	types    []record.Type
	cols     []column // the table's column of each field
	keyIdx   []int    // upsert: positions of the key fields
	pipeline string
	runTime  time.Time
	loc      *time.Location
	nc       int // fields per row
	chunk    int // rows per INSERT statement
	maxBytes int // bytes of values per INSERT statement (under max_allowed_packet)
	target   string

	inserts *sqlkit.Insert // the INSERT statements of the target
	conn    *sqlkit.Conn

	inTx    bool
	pending int  // Writes whose rows are staged in the open transaction
	lost    bool // the rows of the last Write were rolled back by a failure: Commit refuses until they are written again
	broken  bool // rows of several Writes were rolled back: nothing can be committed any more
	// unsure holds the checkpoints of a COMMIT whose connection failed
	// before its answer came: the next Commit reads the stored ones to
	// tell whether that COMMIT happened.
	unsure       []connector.Checkpoint
	beforeCommit func() // tests: runs just before COMMIT is sent

	// replace
	loaded   bool // the load table was created
	marked   bool // rows, checkpoints and the swap mark are committed
	swapped  bool // the RENAME ran
	beforeSw func() error

	vals   []any // values of the rows being staged, nc per row
	sizes  []int // their sizes in bytes
	good   []int // their indexes in the batch
	preBad int   // rows refused before any statement ran
	buf    []byte
	arena  arena
}

// setup checks or creates the table and the checkpoint tables and builds
// the statements.
func (w *writer) setup(ctx context.Context) error {
	c, err := w.conn.SQL(ctx)
	if err != nil {
		return err
	}
	if err := ensureCheckpointTables(ctx, c); err != nil {
		return err
	}
	if err := completeSwap(ctx, c, w.cfg.Table); err != nil {
		return err
	}
	cols, err := tableColumns(ctx, c, w.cfg.Table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		if !w.cfg.Create {
			return fmt.Errorf("table does not exist (set create: true to create it from the records' schema)")
		}
		if _, err := c.ExecContext(ctx, w.createSQL()); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
		if cols, err = tableColumns(ctx, c, w.cfg.Table); err != nil {
			return err
		}
	}
	var missing []string
	for _, f := range w.schema.Fields() {
		col, ok := findColumn(cols, f.Name)
		if !ok {
			missing = append(missing, f.Name)
		}
		w.cols = append(w.cols, col)
	}
	if len(missing) > 0 {
		return fmt.Errorf("the table has no column for field(s) %s (its columns: %s)", strings.Join(missing, ", "), columnNames(cols))
	}
	if w.cfg.Mode == sqlkit.ModeUpsert {
		if err := w.checkUniqueKey(ctx, c); err != nil {
			return err
		}
	}
	var packet int64
	if err := c.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		return err
	}
	w.maxBytes = int(max(packet/2, 64<<10))
	if w.cfg.Mode == sqlkit.ModeReplace {
		if err := w.startLoad(ctx, c); err != nil {
			return err
		}
	}
	names := make([]string, w.nc)
	for i, col := range w.cols {
		names[i] = col.name
	}
	var conflict string
	if w.cfg.Mode == sqlkit.ModeUpsert {
		var set []string
		for i, n := range names {
			if !slices.Contains(w.keyIdx, i) {
				set = append(set, quoteIdent(n)+" = VALUES("+quoteIdent(n)+")")
			}
		}
		if len(set) == 0 { // every column is a key: nothing to update
			set = append(set, quoteIdent(names[w.keyIdx[0]])+" = "+quoteIdent(names[w.keyIdx[0]]))
		}
		conflict = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	w.inserts = sqlkit.NewInsert(quoteIdent, w.target, names, conflict)
	w.conn.Keep = w.inserts.Rows(w.chunk) // the statement of a full chunk
	return w.conn.Raw(ctx, func() error {
		_, err := w.conn.Prepared(ctx, w.conn.Keep) // prepared now, the statement is checked now
		return err
	})
}

// startLoad creates the load table of a replace, empty, like the table.
func (w *writer) startLoad(ctx context.Context, c *sql.Conn) error {
	newT := newTableName(w.cfg.Table)
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + quoteIdent(newT),
		"CREATE TABLE " + quoteIdent(newT) + " LIKE " + quoteIdent(w.cfg.Table),
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("prepare the replace: %w", err)
		}
	}
	w.loaded = true
	w.target = newT
	return nil
}

// checkUniqueKey checks that a unique index covers exactly the key.
func (w *writer) checkUniqueKey(ctx context.Context, q querier) error {
	rows, err := q.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, w.cfg.Table)
	if err != nil {
		return err
	}
	defer rows.Close()
	indexes := map[string][]string{}
	for rows.Next() {
		var idx, col string
		if err := rows.Scan(&idx, &col); err != nil {
			return err
		}
		indexes[idx] = append(indexes[idx], strings.ToLower(col))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	want := make([]string, len(w.keyIdx))
	for i, k := range w.keyIdx {
		want[i] = strings.ToLower(w.cols[k].name)
	}
	slices.Sort(want)
	for _, cols := range indexes {
		slices.Sort(cols)
		if slices.Equal(cols, want) {
			return nil
		}
	}
	return fmt.Errorf("mode upsert needs a PRIMARY KEY or a UNIQUE index on exactly (%s)", strings.Join(w.cfg.Key, ", "))
}

// createSQL is the CREATE TABLE of the records' schema.
func (w *writer) createSQL() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quoteIdent(w.cfg.Table) + " (")
	for i, f := range w.schema.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		isKey := slices.Contains(w.keyIdx, i)
		b.WriteString(quoteIdent(f.Name) + " " + columnDecl(f.Type, isKey))
		if isKey {
			b.WriteString(" NOT NULL")
		}
	}
	if len(w.keyIdx) > 0 {
		b.WriteString(", PRIMARY KEY (" + quoteIdents("", w.cfg.Key) + ")")
	}
	b.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	return b.String()
}

// columnDecl is the column type create gives a field of type t.
func columnDecl(t record.Type, key bool) string {
	switch t {
	case record.Int:
		return "BIGINT"
	case record.Float:
		return "DOUBLE"
	case record.Decimal:
		return createdDecimal
	case record.Bool:
		return "BOOLEAN"
	case record.Timestamp:
		return "DATETIME(6)"
	case record.Date:
		return "DATE"
	case record.Bytes:
		if key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	case record.JSON:
		return "JSON"
	}
	if key {
		return "VARCHAR(255)"
	}
	return "LONGTEXT"
}

// storedCheckpoint reads and locks a task's checkpoint in the open
// transaction.
func (w *writer) storedCheckpoint(ctx context.Context, task string) (pos []byte, done, exists bool, err error) {
	st, err := w.conn.Prepared(ctx, selectCheckpointForUpdateSQL)
	if err != nil {
		return nil, false, false, err
	}
	qc, ok := st.(driver.StmtQueryContext)
	if !ok {
		return nil, false, false, fmt.Errorf("driver statement is a %T", st)
	}
	rows, err := qc.QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: w.pipeline}, {Ordinal: 2, Value: task}})
	if err != nil {
		return nil, false, false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, false, nil
		}
		return nil, false, false, err
	}
	if b, ok := dest[0].([]byte); ok {
		pos = append([]byte{}, b...)
	}
	switch v := dest[1].(type) {
	case int64:
		done = v != 0
	case []byte:
		done = string(v) != "0"
	case bool:
		done = v
	}
	return pos, done, true, nil
}

// Info implements connector.Writer.
func (w *writer) Info() connector.WriterInfo {
	return connector.WriterInfo{Transactional: true, Once: w.cfg.Mode == sqlkit.ModeReplace}
}

var errBroken = errors.New("rows staged by several writes were rolled back by a connection failure and cannot be committed: the run must restart from its last checkpoint")

var errLost = errors.New("the rows staged since the last commit were rolled back by a connection failure: write them again before committing")

// Write implements connector.Writer. In mode replace every Write commits
// its rows into the load table at once (nothing reads it before the
// swap), so that a failed Write is retried alone.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if b.Len() == 0 {
		return 0, nil
	}
	if w.broken {
		return 0, fmt.Errorf("mysql: table %q: %w", w.cfg.Table, errBroken)
	}
	if w.marked {
		return 0, fmt.Errorf("mysql: table %q: mode replace was committed; a writer commits once", w.cfg.Table)
	}
	if b.Schema != nil && !b.Schema.Equal(w.schema) {
		return 0, fmt.Errorf("mysql: table %q: batch schema (%s) differs from the schema the sink was opened with (%s)", w.cfg.Table, b.Schema, w.schema)
	}
	bad := w.convert(b)
	staged := 0
	ambiguous := false
	err := w.conn.Raw(ctx, func() error {
		if !w.inTx {
			if err := w.conn.ExecText(ctx, "START TRANSACTION"); err != nil {
				return err
			}
			w.inTx = true
		}
		for lo := 0; lo < len(w.good); {
			hi := w.chunkEnd(lo)
			if err := w.insert(ctx, lo, hi, &bad); err != nil {
				return err
			}
			lo = hi
		}
		staged = len(w.good) - (len(bad) - w.preBad)
		if w.cfg.Mode == sqlkit.ModeReplace {
			if err := w.conn.ExecText(ctx, "DO 0"); err != nil { // a dead connection shows before COMMIT
				return err
			}
			if err := w.conn.ExecText(ctx, "COMMIT"); err != nil {
				ambiguous = true
				return err
			}
			w.inTx = false
		}
		return nil
	})
	clear(w.vals) // do not keep the batch's values alive
	w.arena.reset()
	if err != nil {
		if ambiguous {
			w.abandon(ctx)
			w.broken = true
			return 0, fmt.Errorf("mysql: %s, table %q: the connection failed during COMMIT, whether the rows were loaded is unknown: the run must restart (%v)", w.srv.where, w.cfg.Table, w.srv.redact(err))
		}
		return 0, w.fail(ctx, err, false)
	}
	w.lost = false
	if staged > 0 && w.inTx {
		w.pending++
	}
	return sqlkit.Written(b.Len(), bad)
}

// chunkEnd returns the end of the statement that starts at good[lo]: at
// most chunk rows and maxBytes of values.
func (w *writer) chunkEnd(lo int) int {
	hi := lo
	size := 0
	for hi < len(w.good) && hi-lo < w.chunk {
		if hi > lo && size+w.sizes[hi] > w.maxBytes {
			break
		}
		size += w.sizes[hi]
		hi++
	}
	return hi
}

var (
	boxedTrue  any = int64(1)
	boxedFalse any = int64(0)
)

// convert fills w.vals with the bound values of the rows of b that can be
// stored, and w.good with their indexes; it returns the others.
func (w *writer) convert(b *record.Batch) []connector.RowError {
	var bad []connector.RowError
	w.vals, w.good, w.sizes = w.vals[:0], w.good[:0], w.sizes[:0]
	w.arena.reset()
rows:
	for i, row := range b.Rows {
		if err := sqlkit.CheckRow(w.schema, w.keyIdx, row); err != nil {
			bad = append(bad, connector.RowError{Index: i, Err: fmt.Errorf("mysql: table %q: %w", w.cfg.Table, err)})
			continue
		}
		start := len(w.vals)
		size := 0
		for j, v := range row {
			sv, n, err := w.encode(j, v)
			if err != nil {
				bad = append(bad, connector.RowError{Index: i, Err: fmt.Errorf("mysql: table %q: field %q: %w", w.cfg.Table, w.schema.Field(j).Name, err)})
				w.vals = w.vals[:start]
				continue rows
			}
			w.vals = append(w.vals, sv)
			size += n
		}
		if size > w.maxBytes {
			bad = append(bad, connector.RowError{Index: i, Err: fmt.Errorf("mysql: table %q: row of %d bytes is over the server's max_allowed_packet", w.cfg.Table, size)})
			w.vals = w.vals[:start]
			continue
		}
		w.good = append(w.good, i)
		w.sizes = append(w.sizes, size)
	}
	w.preBad = len(bad)
	return bad
}

// encode turns the value of field j into what the driver binds: int64,
// float64, string or []byte, formatted for the column it goes to, and
// returns its size in bytes.
func (w *writer) encode(j int, v any) (any, int, error) {
	if v == nil {
		return nil, 1, nil
	}
	col := &w.cols[j]
	if w.types[j] == record.JSON || (col.kind == kJSON && isJSONValue(v)) {
		w.buf = jsonText(w.buf[:0], v)
		return w.arena.copy(w.buf), len(w.buf) + 9, nil
	}
	switch x := v.(type) {
	case int64:
		return v, 8, nil
	case string:
		return v, len(x) + 9, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, 0, fmt.Errorf("value %v cannot be stored: MySQL has no NaN or infinity", x)
		}
		return v, 8, nil
	case bool:
		if x {
			return boxedTrue, 1, nil
		}
		return boxedFalse, 1, nil
	case []byte:
		return v, len(x) + 9, nil
	case record.Dec:
		if col.kind == kDecimal && x.Scale() > int32(col.scale) {
			t := x.Trim()
			if t.Scale() > int32(col.scale) {
				return nil, 0, fmt.Errorf("value %s has %d digits after the point; column %s keeps %d and MySQL would round it", x, t.Scale(), col.dbType, col.scale)
			}
			x = t
		}
		w.buf = x.AppendText(w.buf[:0])
		return w.arena.copy(w.buf), len(w.buf) + 9, nil
	case time.Time:
		switch col.kind {
		case kDateTime:
			w.buf = appendDateTime(w.buf[:0], x.In(w.loc))
		case kTimestamp:
			w.buf = appendDateTime(w.buf[:0], x.UTC())
		case kDate:
			y, m, d := x.In(w.loc).Date()
			w.buf = appendDate(w.buf[:0], y, m, d)
		default:
			w.buf = x.AppendFormat(w.buf[:0], time.RFC3339Nano)
		}
		return w.arena.copy(w.buf), len(w.buf) + 9, nil
	case record.LocalDate:
		y, m, d := x.Time().Date()
		w.buf = appendDate(w.buf[:0], y, m, d)
		return w.arena.copy(w.buf), len(w.buf) + 9, nil
	case int:
		return int64(x), 8, nil
	case int32:
		return int64(x), 8, nil
	case float32:
		return float64(x), 8, nil
	case json.Number:
		return string(x), len(x) + 9, nil
	case map[string]any, []any:
		w.buf = jsonText(w.buf[:0], v)
		return w.arena.copy(w.buf), len(w.buf) + 9, nil
	}
	return nil, 0, fmt.Errorf("a %T value cannot be stored in MySQL", v)
}

// insert stages the rows good[lo:hi], each statement under a savepoint
// that undoes it when the database refuses one of its rows; the refused
// rows go to bad (see sqlkit.Split). An error that is not about a row is
// returned. It runs inside Raw.
func (w *writer) insert(ctx context.Context, lo, hi int, bad *[]connector.RowError) error {
	return sqlkit.Split(lo, hi, func(lo, hi int) (error, error) {
		// A SAVEPOINT of the same name replaces the previous one: no RELEASE.
		if err := w.conn.ExecText(ctx, "SAVEPOINT backbone_rows"); err != nil {
			return nil, err
		}
		err := w.conn.Exec(ctx, w.inserts.Rows(hi-lo), w.vals[lo*w.nc:hi*w.nc]...)
		if err == nil {
			return nil, nil
		}
		if !isRowError(err) || ctx.Err() != nil {
			return nil, err
		}
		if uerr := w.conn.ExecText(ctx, "ROLLBACK TO SAVEPOINT backbone_rows"); uerr != nil {
			return nil, uerr
		}
		return err, nil
	}, func(i int, err error) {
		*bad = append(*bad, connector.RowError{Index: w.good[i], Err: fmt.Errorf("mysql: table %q: %w", w.cfg.Table, err)})
	})
}

// Commit implements connector.Writer: the checkpoints are stored in the
// transaction of the staged rows, then both are committed. In mode replace
// the swap mark joins them, and the RENAME follows the COMMIT.
func (w *writer) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	switch {
	case w.broken:
		return fmt.Errorf("mysql: table %q: %w", w.cfg.Table, errBroken)
	case w.lost:
		return fmt.Errorf("mysql: table %q: %w", w.cfg.Table, errLost)
	}
	if w.cfg.Mode == sqlkit.ModeReplace {
		return w.commitReplace(ctx, cps)
	}
	if !w.inTx && len(cps) == 0 {
		return nil
	}
	if err := w.commitTx(ctx, cps, false); err != nil {
		return err
	}
	w.pending = 0
	return nil
}

// commitTx writes cps (and the swap mark) and commits. A failure before
// the COMMIT rolls back; one of the COMMIT itself leaves the outcome
// unknown, which only the next run can tell (from the checkpoints).
func (w *writer) commitTx(ctx context.Context, cps []connector.Checkpoint, mark bool) error {
	ambiguous := false
	err := w.conn.Raw(ctx, func() error {
		if !w.inTx {
			if err := w.conn.ExecText(ctx, "START TRANSACTION"); err != nil {
				return err
			}
			w.inTx = true
		}
		if w.unsure != nil {
			if err := w.settle(ctx, cps); err != nil {
				return err
			}
		}
		for _, cp := range cps {
			var pos any
			if cp.Pos != nil {
				pos = []byte(cp.Pos)
			}
			if cp.Guard {
				// Stored only over the checkpoint this run started from;
				// FOR UPDATE holds the row until the COMMIT.
				held, done, exists, err := w.storedCheckpoint(ctx, cp.Task)
				if err != nil {
					return fmt.Errorf("checkpoint of task %q: %w", cp.Task, err)
				}
				if !connector.SameCheckpoint(cp.Base, exists, held, done) {
					return fmt.Errorf("checkpoint of task %q: %w", cp.Task, connector.ErrCheckpointConflict)
				}
			}
			if err := w.conn.Exec(ctx, upsertCheckpointSQL, w.pipeline, cp.Task, pos, cp.Done, cp.Fingerprint, w.runTime); err != nil {
				return fmt.Errorf("checkpoint of task %q: %w", cp.Task, err)
			}
		}
		if mark {
			if err := w.conn.Exec(ctx, markSwapSQL, w.cfg.Table, w.pipeline, w.runTime); err != nil {
				return fmt.Errorf("swap mark: %w", err)
			}
		}
		if len(cps) == 0 && !mark {
			if err := w.conn.ExecText(ctx, "DO 0"); err != nil { // a dead connection shows before COMMIT
				return err
			}
		}
		failpoint.Hit("sink-commit") // rows and checkpoints written, not committed
		if w.beforeCommit != nil {
			w.beforeCommit()
		}
		if err := w.conn.ExecText(ctx, "COMMIT"); err != nil {
			ambiguous = true
			return err
		}
		w.inTx = false
		return nil
	})
	if errors.Is(err, errSettled) {
		return nil
	}
	if err == nil {
		return nil
	}
	if ambiguous && !mark && len(cps) > 0 && w.pending <= 1 && isTransient(err) {
		// The server went away (a restart, a failover) with the COMMIT in
		// flight. The engine writes the batch again and commits the same
		// checkpoints; that Commit first reads the stored checkpoints: if
		// they are these, the COMMIT happened and the rows written again
		// are dropped, else they are committed now.
		w.abandon(ctx)
		w.unsure = slices.Clone(cps)
		w.pending, w.lost = 0, true
		return fmt.Errorf("mysql: %s, table %q: the connection failed during COMMIT; the next commit finds out from the stored checkpoints whether it happened: %w",
			w.srv.where, w.cfg.Table, connector.Transient(w.srv.redact(err)))
	}
	if ambiguous {
		w.abandon(ctx)
		w.broken = true
		return fmt.Errorf("mysql: %s, table %q: the connection failed during COMMIT, whether rows and checkpoints were committed is unknown: the next run resumes from the checkpoint stored with the rows (%v)", w.srv.where, w.cfg.Table, w.srv.redact(err))
	}
	return w.fail(ctx, err, true)
}

// errSettled ends a Commit whose rows and checkpoints an earlier COMMIT,
// whose answer was lost, had committed already.
var errSettled = errors.New("settled")

// settle tells, in the open transaction, whether the COMMIT of w.unsure
// happened: the stored checkpoints are those it wrote. It returns
// errSettled, after rolling back what was staged again, when it happened
// and cps are the same checkpoints (the same batch, written again).
func (w *writer) settle(ctx context.Context, cps []connector.Checkpoint) error {
	unsure := w.unsure
	committed := true
	for _, cp := range unsure {
		pos, done, exists, err := w.storedCheckpoint(ctx, cp.Task)
		if err != nil {
			return fmt.Errorf("checkpoint of task %q: %w", cp.Task, err)
		}
		if !exists || string(pos) != string(cp.Pos) || done != cp.Done {
			committed = false
			break
		}
	}
	if !committed {
		w.unsure = nil
		return nil // the staged rows and cps are committed now
	}
	if !sameCheckpoints(unsure, cps) {
		w.broken = true
		return fmt.Errorf("the COMMIT whose answer was lost did commit, and this commit is of other checkpoints: %w", errBroken)
	}
	if err := w.conn.ExecText(ctx, "ROLLBACK"); err != nil {
		return err // still unsure: the next Commit settles again
	}
	w.inTx, w.unsure = false, nil
	return errSettled
}

// sameCheckpoints reports whether a and b are the same checkpoints.
func sameCheckpoints(a, b []connector.Checkpoint) bool {
	return slices.EqualFunc(a, b, func(x, y connector.Checkpoint) bool {
		return x.Task == y.Task && string(x.Pos) == string(y.Pos) && x.Done == y.Done && x.Fingerprint == y.Fingerprint
	})
}

// commitReplace commits the checkpoints with the swap mark, then swaps the
// load table in. A retried Commit resumes at the step that failed.
func (w *writer) commitReplace(ctx context.Context, cps []connector.Checkpoint) error {
	if !w.marked {
		if err := w.commitTx(ctx, cps, true); err != nil {
			return err
		}
		w.marked = true
	}
	if w.swapped {
		return nil
	}
	if w.beforeSw != nil {
		if err := w.beforeSw(); err != nil {
			return err
		}
	}
	c, err := w.conn.SQL(ctx)
	if err != nil {
		return fmt.Errorf("mysql: %s, table %q: swap: %w", w.srv.where, w.cfg.Table, classify(ctx, w.srv.redact(err)))
	}
	if err := completeSwap(ctx, c, w.cfg.Table); err != nil {
		w.conn.Close()
		return fmt.Errorf("mysql: %s, table %q: the rows and checkpoints are committed, the swap is not (it completes at the next start): %w",
			w.srv.where, w.cfg.Table, classify(ctx, w.srv.redact(err)))
	}
	w.swapped = true
	return nil
}

// fail abandons the transaction and the connection, which an interrupted
// statement may have left unusable, and wraps err. Rows staged by earlier
// Writes are lost with the transaction: inCommit tells whether the last
// Write's rows were among them (a Write that failed is retried whole).
func (w *writer) fail(ctx context.Context, err error, inCommit bool) error {
	switch {
	case w.pending > 1 || (!inCommit && w.pending > 0):
		w.broken = true
	case w.pending == 1:
		w.lost = true
	}
	w.pending = 0
	w.abandon(ctx)
	err = fmt.Errorf("mysql: %s, table %q: %w", w.srv.where, w.cfg.Table, classify(ctx, w.srv.redact(err)))
	if w.broken {
		return fmt.Errorf("%w; %w", err, errBroken) // not transient: a retry of this call cannot bring the rows back
	}
	return err
}

// abandon rolls back and drops the connection.
func (w *writer) abandon(ctx context.Context) {
	if w.inTx && w.conn.Connected() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		w.conn.Raw(rctx, func() error { return w.conn.ExecText(rctx, "ROLLBACK") }) //nolint:errcheck // the connection is dropped anyway
		cancel()
	}
	w.inTx = false
	w.conn.Close()
}

// Close implements connector.Writer: it rolls back whatever was staged and
// not committed; a replace that did not commit drops its load table.
func (w *writer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.inTx {
		w.abandon(ctx)
	}
	var err error
	if w.loaded && !w.marked && w.db != nil {
		var c *sql.Conn
		if c, err = w.conn.SQL(ctx); err == nil {
			_, err = c.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(newTableName(w.cfg.Table)))
		}
		if err != nil {
			err = fmt.Errorf("mysql: table %q: drop the abandoned load table: %w", w.cfg.Table, w.srv.redact(err))
		}
	}
	w.conn.Close()
	if w.db != nil {
		if cerr := w.db.Close(); err == nil {
			err = cerr
		}
		w.db = nil
	}
	return err
}
