package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/failpoint"
	"github.com/backbone-etl/backbone/internal/record"
)

// maxChunkRows is the number of rows one INSERT statement stages; a
// statement binds at most maxParams values.
const (
	maxChunkRows = 100
	maxParams    = 32766
)

type sinkConfig struct {
	Path        string             `yaml:"path"`
	Table       string             `yaml:"table"`
	Mode        string             `yaml:"mode"`
	Key         connector.List     `yaml:"key"`
	Create      bool               `yaml:"create"`
	BusyTimeout connector.Duration `yaml:"busy_timeout"`
}

var sinkSpec = connector.Spec{
	Name:    "sqlite",
	Summary: "Write rows into a table of an SQLite database, with the checkpoints in the same transaction.",
	Doc: `Writes rows into a table of an SQLite database file (WAL journal, synchronous=NORMAL).

Rows and the pipeline's checkpoints are committed in one transaction: the checkpoints live in
the table backbone_checkpoints of the same database (versioned in backbone_meta), so a crash at
any instant neither loses nor duplicates a row.

mode append inserts every row. mode upsert inserts or, when a row with the same key exists,
updates it (INSERT … ON CONFLICT (key) DO UPDATE); the table needs a PRIMARY KEY or a UNIQUE
index on exactly the key columns. mode replace empties the table and writes the run's rows in
one transaction, committed at the end of the run: readers see the old rows until then, and the
table keeps its definition, indexes and triggers.

A row the database refuses for its own sake (NOT NULL, CHECK, UNIQUE, a trigger's RAISE(ABORT),
a STRICT column's type) is rejected alone; the other rows of its batch are written.

With create: true a missing table is created from the records' schema: int INTEGER, float REAL,
decimal DECIMAL_TEXT (TEXT affinity, so the exact decimal text is kept; NUMERIC would turn it
into a REAL), bool BOOLEAN (0 or 1), timestamp TIMESTAMP (RFC 3339 text with nine fraction
digits and the zone offset, so that text order is time order within one zone), date DATE
(YYYY-MM-DD), bytes BLOB, json JSON_TEXT, string TEXT. In mode upsert the key columns are
NOT NULL and get a UNIQUE index.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Database file, relative to the pipeline file."},
		{Name: "table", Type: connector.TString, Required: true, Doc: "Table to write."},
		{Name: "mode", Type: connector.TEnum, Default: sqlkit.ModeAppend, Enum: []string{sqlkit.ModeAppend, sqlkit.ModeUpsert, sqlkit.ModeReplace}, Doc: "append, upsert (by key) or replace the table's rows."},
		{Name: "key", Type: connector.TList, Doc: "Key field(s) of mode upsert."},
		{Name: "create", Type: connector.TBool, Default: "false", Doc: "Create the table (and the database file) from the records' schema when missing."},
		{Name: "busy_timeout", Type: connector.TDuration, Default: "5s", Doc: "How long to wait for a lock held by another connection."},
	},
	Example: `sink:
  type: sqlite
  path: out/warehouse.db
  table: orders
  mode: upsert
  key: order_id
  create: true`,
}

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{Mode: sqlkit.ModeAppend, BusyTimeout: connector.Duration(defaultBusyTimeout)}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path must name the database file")
	}
	if err := sqlkit.CheckWrite(p, cfg.Table, cfg.Mode, cfg.Key); err != nil {
		return nil, err
	}
	if cfg.BusyTimeout < 0 {
		return nil, connector.Errorf(p.FieldPos("busy_timeout"), "busy_timeout must not be negative")
	}
	return &sink{cfg: cfg}, nil
}

type sink struct {
	cfg sinkConfig
}

// LoadCheckpoints implements connector.CheckpointLoader.
func (s *sink) LoadCheckpoints(ctx context.Context, env *connector.Env) (map[string]connector.Checkpoint, error) {
	path := env.Path(s.cfg.Path)
	cps, err := loadCheckpoints(ctx, path, env.Pipeline, time.Duration(s.cfg.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints in %s: %w", path, err)
	}
	return cps, nil
}

// Open implements connector.Sink.
func (s *sink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	path := env.Path(s.cfg.Path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !s.cfg.Create {
		return nil, connector.Unavailable(fmt.Errorf("sqlite: database %s does not exist (set create: true to create it)", path))
	}
	if err := sqlkit.CheckFields(schema, s.cfg.Key); err != nil {
		return nil, fmt.Errorf("sqlite: table %q: %w", s.cfg.Table, err)
	}
	db, err := sql.Open("sqlite", dsn(path, false, time.Duration(s.cfg.BusyTimeout)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w := &writer{
		cfg:      s.cfg,
		db:       db,
		path:     path,
		schema:   schema,
		types:    make([]record.Type, schema.Len()),
		pipeline: env.Pipeline,
		runTime:  env.RunTime,
		nc:       schema.Len(),
		conn:     sqlkit.NewConn(db),
	}
	for i := range w.types {
		w.types[i] = schema.Field(i).Type
	}
	if s.cfg.Mode == sqlkit.ModeUpsert {
		for _, k := range s.cfg.Key {
			i, _ := schema.Index(k)
			w.keyIdx = append(w.keyIdx, i)
		}
	}
	w.chunk = max(1, min(maxChunkRows, maxParams/w.nc))
	if err := w.setup(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s, table %q: %w", path, s.cfg.Table, classify(err))
	}
	return w, nil
}

// writer stages rows in one transaction per Commit. It holds one
// connection and drives it through the driver's own statements (Conn.Raw),
// which spares database/sql's per-value argument conversion on the hot
// path. After an error that ended the transaction it reconnects at the next
// Write.
type writer struct {
	cfg      sinkConfig
	db       *sql.DB
	path     string
	schema   *record.Schema
	types    []record.Type
	keyIdx   []int // upsert: positions of the key fields
	pipeline string
	runTime  time.Time
	nc       int // fields per row
	chunk    int // rows per INSERT statement

	inserts *sqlkit.Insert // the INSERT statements of the table
	conn    *sqlkit.Conn

	inTx    bool
	cleared bool // replace: the table was emptied in the current (or a committed) transaction

	vals []any  // values of the rows being staged, nc per row
	good []int  // their indexes in the batch
	buf  []byte // scratch for formatting values
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
	cols, err := tableColumns(ctx, c, w.cfg.Table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		if !w.cfg.Create {
			return fmt.Errorf("table does not exist (set create: true to create it from the records' schema)")
		}
		if err := w.createTable(ctx, c); err != nil {
			return err
		}
	} else {
		var missing []string
		for _, f := range w.schema.Fields() {
			if !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, f.Name) }) {
				missing = append(missing, f.Name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("the table has no column for field(s) %s (its columns: %s)", strings.Join(missing, ", "), strings.Join(cols, ", "))
		}
	}
	names := w.schema.Names()
	var conflict string
	if w.cfg.Mode == sqlkit.ModeUpsert {
		var set []string
		for _, n := range names {
			if !slices.Contains(w.cfg.Key, n) {
				set = append(set, quoteIdent(n)+" = excluded."+quoteIdent(n))
			}
		}
		conflict = " ON CONFLICT (" + quoteIdents("", w.cfg.Key) + ") DO NOTHING"
		if len(set) > 0 {
			conflict = " ON CONFLICT (" + quoteIdents("", w.cfg.Key) + ") DO UPDATE SET " + strings.Join(set, ", ")
		}
	}
	w.inserts = sqlkit.NewInsert(quoteIdent, w.cfg.Table, names, conflict)
	err = w.conn.Raw(ctx, func() error {
		for _, n := range []int{w.chunk, 1} { // prepared now, the statement is checked now
			if _, err := w.conn.Prepared(ctx, w.inserts.Rows(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if w.cfg.Mode == sqlkit.ModeUpsert && strings.Contains(err.Error(), "ON CONFLICT") {
			return fmt.Errorf("mode upsert needs a PRIMARY KEY or a UNIQUE index on exactly (%s): %w", strings.Join(w.cfg.Key, ", "), err)
		}
		return err
	}
	return nil
}

// tableColumns lists the columns of a table; none when it does not exist.
func tableColumns(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols = append(cols, n)
	}
	return cols, rows.Err()
}

func (w *writer) createTable(ctx context.Context, c *sql.Conn) (err error) {
	// A single int key is the rowid (INTEGER PRIMARY KEY): one b-tree
	// instead of a table and a unique index, which upserts about twice as
	// fast. Any other key gets a unique index.
	rowidKey := false
	if len(w.cfg.Key) == 1 {
		i, _ := w.schema.Index(w.cfg.Key[0])
		rowidKey = w.schema.Field(i).Type == record.Int
	}
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quoteIdent(w.cfg.Table) + " (")
	for i, f := range w.schema.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(f.Name))
		if d := declFromType(f.Type); d != "" {
			b.WriteString(" " + d)
		}
		if w.cfg.Mode == sqlkit.ModeUpsert && slices.Contains(w.cfg.Key, f.Name) {
			if rowidKey {
				b.WriteString(" PRIMARY KEY")
			}
			b.WriteString(" NOT NULL")
		}
	}
	b.WriteString(")")
	stmts := []string{b.String()}
	if w.cfg.Mode == sqlkit.ModeUpsert && !rowidKey {
		stmts = append(stmts, "CREATE UNIQUE INDEX IF NOT EXISTS "+quoteIdent(w.cfg.Table+"__backbone_key")+
			" ON "+quoteIdent(w.cfg.Table)+" ("+quoteIdents("", w.cfg.Key)+")")
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // report the first error
			return fmt.Errorf("create table: %w", err)
		}
	}
	_, err = c.ExecContext(ctx, "COMMIT")
	return err
}

// guardedCheckpoint stores cp only over its base (see connector.Checkpoint).
func (w *writer) guardedCheckpoint(ctx context.Context, cp connector.Checkpoint, pos any, done int64, stamp string) error {
	var n int64
	var err error
	if cp.Base == nil {
		n, err = w.conn.ExecN(ctx, insertNewCheckpointSQL, w.pipeline, cp.Task, pos, done, cp.Fingerprint, stamp)
	} else {
		baseDone := int64(0)
		if cp.Base.Done {
			baseDone = 1
		}
		n, err = w.conn.ExecN(ctx, casCheckpointSQL, pos, done, cp.Fingerprint, stamp, w.pipeline, cp.Task, []byte(cp.Base.Pos), baseDone)
	}
	if err != nil {
		return err
	}
	if n != 1 {
		return connector.ErrCheckpointConflict
	}
	return nil
}

// Info implements connector.Writer.
func (w *writer) Info() connector.WriterInfo {
	return connector.WriterInfo{Transactional: true, Once: w.cfg.Mode == sqlkit.ModeReplace}
}

// begin opens the transaction that stages rows. In mode replace it empties
// the table, once per run. It runs inside Raw.
func (w *writer) begin(ctx context.Context) error {
	if w.inTx {
		return nil
	}
	if err := w.conn.Exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	w.inTx = true
	if w.cfg.Mode == sqlkit.ModeReplace && !w.cleared {
		if err := w.conn.Exec(ctx, "DELETE FROM "+quoteIdent(w.cfg.Table)); err != nil {
			return err
		}
		w.cleared = true
	}
	return nil
}

// Write implements connector.Writer.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if b.Len() == 0 {
		return 0, nil
	}
	if b.Schema != nil && !b.Schema.Equal(w.schema) {
		return 0, fmt.Errorf("sqlite: table %q: batch schema (%s) differs from the schema the sink was opened with (%s)", w.cfg.Table, b.Schema, w.schema)
	}
	bad := w.convert(b)
	err := w.conn.Raw(ctx, func() error {
		if err := w.begin(ctx); err != nil {
			return err
		}
		for lo := 0; lo < len(w.good); lo += w.chunk {
			if err := w.insert(ctx, lo, min(lo+w.chunk, len(w.good)), &bad); err != nil {
				return err
			}
		}
		return nil
	})
	clear(w.vals) // do not keep the batch's values alive
	if err != nil {
		return 0, w.fail(ctx, err)
	}
	return sqlkit.Written(b.Len(), bad)
}

// convert fills w.vals with the SQL values of the rows of b that can be
// stored, and w.good with their indexes; it returns the others.
func (w *writer) convert(b *record.Batch) []connector.RowError {
	var bad []connector.RowError
	w.vals, w.good = w.vals[:0], w.good[:0]
rows:
	for i, row := range b.Rows {
		if err := sqlkit.CheckRow(w.schema, w.keyIdx, row); err != nil {
			bad = append(bad, connector.RowError{Index: i, Err: fmt.Errorf("sqlite: table %q: %w", w.cfg.Table, err)})
			continue
		}
		start := len(w.vals)
		for j, v := range row {
			var sv any
			var err error
			sv, w.buf, err = sqlValue(w.types[j], v, w.buf)
			if err != nil {
				bad = append(bad, connector.RowError{Index: i, Err: fmt.Errorf("sqlite: table %q: field %q: %w", w.cfg.Table, w.schema.Field(j).Name, err)})
				w.vals = w.vals[:start]
				continue rows
			}
			w.vals = append(w.vals, sv)
		}
		w.good = append(w.good, i)
	}
	return bad
}

// insert stages the rows good[lo:hi], each statement under a savepoint
// that undoes it (whatever the table's conflict clause did) when the
// database refuses one of its rows; the refused rows go to bad (see
// sqlkit.Split). An error that is not about a row is returned. It runs
// inside Raw.
func (w *writer) insert(ctx context.Context, lo, hi int, bad *[]connector.RowError) error {
	return sqlkit.Split(lo, hi, func(lo, hi int) (error, error) {
		if err := w.conn.Exec(ctx, "SAVEPOINT backbone_rows"); err != nil {
			return nil, err
		}
		err := w.conn.Exec(ctx, w.inserts.Rows(hi-lo), w.vals[lo*w.nc:hi*w.nc]...)
		if err == nil {
			return nil, w.conn.Exec(ctx, "RELEASE backbone_rows")
		}
		if !isRowError(err) || ctx.Err() != nil {
			return nil, err
		}
		// A conflict clause of ROLLBACK ends the whole transaction: then the
		// savepoint is gone and the row error is not the row's alone.
		if uerr := w.conn.Exec(ctx, "ROLLBACK TO backbone_rows"); uerr != nil {
			return nil, err
		}
		if uerr := w.conn.Exec(ctx, "RELEASE backbone_rows"); uerr != nil {
			return nil, uerr
		}
		return err, nil
	}, func(i int, err error) {
		*bad = append(*bad, connector.RowError{Index: w.good[i], Err: fmt.Errorf("sqlite: table %q: %w", w.cfg.Table, err)})
	})
}

// Commit implements connector.Writer: the checkpoints are stored in the
// transaction of the staged rows, then both are committed.
func (w *writer) Commit(ctx context.Context, cps []connector.Checkpoint) error {
	if !w.inTx && len(cps) == 0 && (w.cfg.Mode != sqlkit.ModeReplace || w.cleared) {
		return nil
	}
	stamp := w.runTime.UTC().Format(time.RFC3339Nano)
	err := w.conn.Raw(ctx, func() error {
		if err := w.begin(ctx); err != nil {
			return err
		}
		for _, cp := range cps {
			var pos any
			if cp.Pos != nil {
				pos = []byte(cp.Pos)
			}
			done := int64(0)
			if cp.Done {
				done = 1
			}
			if cp.Guard {
				if err := w.guardedCheckpoint(ctx, cp, pos, done, stamp); err != nil {
					return fmt.Errorf("checkpoint of task %q: %w", cp.Task, err)
				}
				continue
			}
			if err := w.conn.Exec(ctx, upsertCheckpointSQL, w.pipeline, cp.Task, pos, done, cp.Fingerprint, stamp); err != nil {
				return fmt.Errorf("checkpoint of task %q: %w", cp.Task, err)
			}
		}
		failpoint.Hit("sink-commit") // rows and checkpoints written, not committed
		return w.conn.Exec(ctx, "COMMIT")
	})
	if err != nil {
		return w.fail(ctx, err)
	}
	w.inTx = false
	return nil
}

// fail abandons the transaction and the connection, which an interrupted
// statement may have left unusable, and wraps err.
func (w *writer) fail(ctx context.Context, err error) error {
	w.rollback(context.WithoutCancel(ctx))
	w.conn.Close()
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return fmt.Errorf("sqlite: %s, table %q: %w", w.path, w.cfg.Table, classify(err))
}

func (w *writer) rollback(ctx context.Context) {
	if w.inTx && w.conn.Connected() {
		w.conn.Raw(ctx, func() error { return w.conn.Exec(ctx, "ROLLBACK") }) //nolint:errcheck // nothing more to undo when it fails
	}
	if w.inTx && w.cfg.Mode == sqlkit.ModeReplace {
		w.cleared = false // the DELETE was undone with the rest
	}
	w.inTx = false
}

// Close implements connector.Writer: it rolls back whatever was staged and
// not committed.
func (w *writer) Close() error {
	w.rollback(context.Background())
	w.conn.Close()
	if w.db == nil {
		return nil
	}
	err := w.db.Close()
	w.db = nil
	return err
}
