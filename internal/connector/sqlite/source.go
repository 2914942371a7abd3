package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

type sourceConfig struct {
	Path        string              `yaml:"path"`
	Table       string              `yaml:"table"`
	Query       string              `yaml:"query"`
	Mode        string              `yaml:"mode"`
	Cursor      connector.List      `yaml:"cursor"`
	Key         connector.List      `yaml:"key"`
	Schema      connector.SchemaDef `yaml:"schema"`
	BatchRows   int                 `yaml:"batch_rows"`
	BusyTimeout connector.Duration  `yaml:"busy_timeout"`
}

var sourceSpec = connector.Spec{
	Name:    "sqlite",
	Summary: "Read a table or a query of an SQLite database, whole or incrementally by a cursor.",
	Doc: `Reads a table or the result of a query from an SQLite database file, opened read-only.

In mode full every run reads everything again. In mode incremental each run reads the rows
whose (cursor, key) comes after the last row read by the previous run, in the order of
(cursor, key), so a column that grows with every change (an updated_at, an autoincrement id)
picks up new and changed rows. key must be unique: it breaks ties between rows that share a
cursor value, so rows with the same cursor value straddling a batch boundary are each read
exactly once. The checkpoint keeps the cursor and key values exactly as SQLite stores them and
compares them with SQLite's own ordering: a text timestamp is never parsed for comparison, so
no precision is lost. An index on (cursor, key) keeps each batch a range scan.

In mode full the rows are read in the order of key when one is given, otherwise in rowid order
(a table) or in the query's own order, resumed by row count after a retry.

Without a schema the fields are the columns, typed from their declared types (INTEGER -> int,
REAL/FLOAT/DOUBLE -> float, TEXT/VARCHAR -> string, NUMERIC/DECIMAL -> decimal, BLOB -> bytes,
BOOLEAN -> bool, DATETIME/TIMESTAMP -> timestamp, DATE -> date, JSON -> json); a query column
computed by an expression has no declared type and keeps SQLite's own value (declare a schema
to type it). A value that does not convert to its field's type rejects its record.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Database file, relative to the pipeline file."},
		{Name: "table", Type: connector.TString, Doc: "Table (or view) to read. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read, used as a subquery. Exactly one of table and query."},
		{Name: "mode", Type: connector.TEnum, Default: sqlkit.ModeFull, Enum: []string{sqlkit.ModeFull, sqlkit.ModeIncremental}, Doc: "full reads everything every run; incremental resumes after the last (cursor, key) read."},
		{Name: "cursor", Type: connector.TList, Doc: "Column(s) whose values grow with every new or changed row. Required in mode incremental."},
		{Name: "key", Type: connector.TList, Doc: "Unique column(s) that order rows sharing a cursor value (a unique cursor may be its own key). Required in mode incremental; in mode full, the reading order."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from its declared type."},
		{Name: "batch_rows", Type: connector.TInt, Doc: "Rows per batch; default: the pipeline's batch size."},
		{Name: "busy_timeout", Type: connector.TDuration, Default: "5s", Doc: "How long to wait for a lock held by a writer."},
	},
	Example: `source:
  type: sqlite
  path: data/shop.db
  table: orders
  mode: incremental
  cursor: updated_at
  key: id`,
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{Mode: sqlkit.ModeFull, BusyTimeout: connector.Duration(defaultBusyTimeout)}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkTarget(p, cfg.Path, cfg.Table, cfg.Query); err != nil {
		return nil, err
	}
	if err := sqlkit.CheckRead(p, cfg.Mode, cfg.Cursor, cfg.Key, cfg.BatchRows); err != nil {
		return nil, err
	}
	if cfg.BusyTimeout < 0 {
		return nil, connector.Errorf(p.FieldPos("busy_timeout"), "busy_timeout must not be negative")
	}
	s := &source{cfg: cfg, declared: cfg.Schema.Schema()}
	if s.declared != nil {
		return &schemedSource{s}, nil
	}
	return s, nil
}

// checkTarget checks path and that exactly one of table and query is set.
func checkTarget(p connector.Params, path, table, query string) error {
	if strings.TrimSpace(path) == "" {
		return connector.Errorf(p.FieldPos("path"), "path must name the database file")
	}
	switch {
	case table == "" && strings.TrimSpace(query) == "":
		return connector.Errorf(p.Pos(), "one of table and query is required")
	case table != "" && query != "":
		return connector.Errorf(p.FieldPos("query"), "table and query exclude each other: set one")
	}
	return nil
}

type source struct {
	cfg      sourceConfig
	declared *record.Schema
}

// schemedSource is a source with a declared schema.
type schemedSource struct{ *source }

// Schema implements connector.Schemer.
func (s *schemedSource) Schema() *record.Schema { return s.declared }

func (s *source) name() string {
	if s.cfg.Query != "" {
		return "query"
	}
	return s.cfg.Table
}

// Plan implements connector.Source: one task. A full read is a new task
// every run (its key carries the run id), so it starts from the beginning
// each run and still resumes within a run after a retry.
func (s *source) Plan(_ context.Context, env *connector.Env) ([]connector.Task, error) {
	path := env.Path(s.cfg.Path)
	if err := statDB(path); err != nil {
		return nil, err
	}
	key := s.name()
	if s.cfg.Mode == sqlkit.ModeFull {
		key += "@" + env.RunID
	}
	return []connector.Task{{Key: key}}, nil
}

func statDB(path string) error {
	if _, err := os.Stat(path); err != nil {
		return connector.Unavailable(fmt.Errorf("sqlite: database %s: %w", path, err))
	}
	return nil
}

// Open implements connector.Source.
func (s *source) Open(ctx context.Context, env *connector.Env, _ connector.Task, pos record.Position) (connector.Reader, error) {
	path := env.Path(s.cfg.Path)
	db, err := openReadOnly(ctx, path, time.Duration(s.cfg.BusyTimeout))
	if err != nil {
		return nil, err
	}
	r, err := s.newReader(ctx, env, db, pos)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s, %s: %w", path, what(s.cfg.Table, s.cfg.Query), classify(err))
	}
	return r, nil
}

func (s *source) newReader(ctx context.Context, env *connector.Env, db *sql.DB, pos record.Position) (*reader, error) {
	columns, err := declaredColumns(ctx, db, s.cfg.Table, s.cfg.Query)
	if err != nil {
		return nil, err
	}
	schema := s.declared
	if schema == nil {
		if schema, err = record.NewSchema(columns...); err != nil {
			return nil, fmt.Errorf("columns: %w (declare a schema, or rename the columns)", err)
		}
	}
	r := &reader{loc: env.Location, nf: schema.Len()}
	r.Reader = sqlkit.NewReader(db, schema, s.name(), sqlkit.Limits(env, s.cfg.BatchRows), r)
	if s.cfg.Table != "" {
		r.rowid = hasRowid(ctx, db, s.cfg.Table, columns)
	}
	r.order = sqlkit.Order(s.cfg.Mode, s.cfg.Cursor, s.cfg.Key)
	if len(r.order) == 0 && r.rowid {
		r.order = []string{rowidName}
	}
	if err := r.decodePos(pos); err != nil {
		return nil, err
	}
	if err := r.prepare(ctx, s.cfg.Table, s.cfg.Query); err != nil {
		r.CloseStmts()
		return nil, err
	}
	return r, nil
}

// rowidName names the rowid among the ordering columns of a position.
const rowidName = "rowid"

// hasRowid reports whether table has a rowid that no column shadows.
func hasRowid(ctx context.Context, db *sql.DB, table string, columns []record.Field) bool {
	for _, c := range columns {
		switch strings.ToLower(c.Name) {
		case "rowid", "oid", "_rowid_":
			return false
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT s.rowid FROM "+quoteIdent(table)+" AS s LIMIT 0")
	if err != nil {
		return false // a view, or a WITHOUT ROWID table
	}
	rows.Close()
	return true
}

// reader reads one task (see sqlkit.Reader). Ordered reads (a cursor and
// key, a key, or the rowid) run keyset queries per batch, so no lock is
// held between batches.
type reader struct {
	sqlkit.Reader
	loc *time.Location
	nf  int // schema fields, the first columns of every result row

	rowid bool     // the last result column is the table's rowid (Batch.Lines)
	order []string // ordering columns, after the fields in every result row

	dest []any
	ptrs []any
}

func (r *reader) prepare(ctx context.Context, table, query string) error {
	var sel strings.Builder
	sel.WriteString("SELECT ")
	// The unary + drops the declared type, so that the driver hands over the
	// stored value instead of parsing DATE/DATETIME/TIMESTAMP text itself.
	sel.WriteString(quoteIdents("+s.", r.Schema().Names()))
	ncol := r.nf
	for _, c := range r.order {
		sel.WriteString(", ")
		sel.WriteString(orderExpr(c, true))
		ncol++
	}
	if r.rowid {
		sel.WriteString(", s.rowid")
		ncol++
	}
	sel.WriteString(" FROM ")
	sel.WriteString(fromClause(table, query))
	r.dest = make([]any, ncol)
	r.ptrs = make([]any, ncol)
	for i := range r.dest {
		r.ptrs[i] = &r.dest[i]
	}
	exprs := make([]string, len(r.order))
	for i, c := range r.order {
		exprs[i] = orderExpr(c, false)
	}
	return r.Prepare(ctx, sel.String(), exprs, " LIMIT -1 OFFSET ?")
}

// orderExpr is the SQL of an ordering column; raw drops its declared type.
func orderExpr(col string, raw bool) string {
	plus := ""
	if raw {
		plus = "+"
	}
	if col == rowidName {
		return plus + "s.rowid"
	}
	return plus + "s." + quoteIdent(col)
}

// keysetLevel is level level of the keyset condition after last (see
// sqlkit.KeysetLevel). A single row-value comparison would be one
// condition, but SQLite only seeks on its first column and filters the
// rest, which makes a batch among many rows sharing a cursor value cost the
// whole tie: each level is a range of an index on (c1, …, cn).
func keysetLevel(cols []string, last []any, level int) (string, []any) {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = orderExpr(c, false)
	}
	return sqlkit.KeysetLevel(exprs, nil, last, level)
}

// ReadKeyset implements sqlkit.Rows: after the last row read, it queries
// the levels of the keyset condition in order, each until the batch fills.
func (r *reader) ReadKeyset(ctx context.Context, b *record.Batch) (bool, error) {
	if r.Last == nil {
		return r.Query(ctx, b, "", nil)
	}
	for level := len(r.order) - 1; ; level-- {
		where, args := keysetLevel(r.order, r.Last, level)
		full, err := r.Query(ctx, b, where, args)
		if err != nil || full || level == 0 {
			return full, err
		}
	}
}

// Position implements sqlkit.Rows.
func (r *reader) Position() (record.Position, error) {
	if len(r.order) == 0 {
		return encodeOffset(r.Offset), nil
	}
	return encodeKeyset(r.order, r.Last)
}

// Dest implements sqlkit.Rows.
func (r *reader) Dest() []any { return r.ptrs }

// Keyset implements sqlkit.Rows: the stored values bind back as they are.
func (r *reader) Keyset(last []any) { copy(last, r.dest[r.nf:r.nf+len(r.order)]) }

// Line implements sqlkit.Rows: the rowid of a table that has one.
func (r *reader) Line() (int64, bool) {
	if !r.rowid {
		return 0, false
	}
	id, ok := r.dest[len(r.dest)-1].(int64)
	return id, ok
}

// Size implements sqlkit.Rows.
func (r *reader) Size() int {
	size := 0
	for _, v := range r.dest[:r.nf] {
		size += record.Size(v)
	}
	return size
}

// Raw implements sqlkit.Rows.
func (r *reader) Raw() []any { return r.dest[:r.nf] }

// Convert implements sqlkit.Rows.
func (r *reader) Convert(row record.Row) (string, error) {
	return convertRow(r.Schema(), r.dest[:r.nf], row, r.loc)
}

// Fail implements sqlkit.Rows.
func (r *reader) Fail(_ context.Context, err error) error {
	return fmt.Errorf("sqlite: read %s: %w", r.Origin(), classify(err))
}

// A source position is JSON: {"v":1,"cols":[…],"vals":[…]} after an ordered
// read (the raw values of the ordering columns of the last row read, each
// tagged with its SQLite storage class so that it binds back exactly as it
// was stored), or {"v":1,"offset":n} after n rows of an unordered read.
const posVersion = 1

type posJSON struct {
	V      int      `json:"v"`
	Cols   []string `json:"cols,omitempty"`
	Vals   []posVal `json:"vals,omitempty"`
	Offset *int64   `json:"offset,omitempty"`
}

// posVal is one raw value; all fields empty is NULL.
type posVal struct {
	I *int64  `json:"i,omitempty"` // INTEGER
	F *string `json:"f,omitempty"` // REAL, as strconv writes it: exact, and Inf too
	S *string `json:"s,omitempty"` // TEXT, valid UTF-8
	X []byte  `json:"x,omitempty"` // TEXT that is not valid UTF-8, base64
	B *[]byte `json:"b,omitempty"` // BLOB, base64
}

func encodeKeyset(cols []string, vals []any) (record.Position, error) {
	p := posJSON{V: posVersion, Cols: cols, Vals: make([]posVal, len(vals))}
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
		case int64:
			p.Vals[i].I = &x
		case float64:
			f := strconv.FormatFloat(x, 'g', -1, 64)
			p.Vals[i].F = &f
		case string:
			if utf8.ValidString(x) {
				p.Vals[i].S = &x
			} else {
				p.Vals[i].X = []byte(x)
			}
		case []byte:
			if x == nil {
				x = []byte{} // an empty BLOB, not NULL
			}
			p.Vals[i].B = &x
		default:
			return nil, fmt.Errorf("sqlite: cursor column %q holds a %T", cols[i], v)
		}
	}
	return json.Marshal(p)
}

func encodeOffset(n int64) record.Position {
	b, _ := json.Marshal(posJSON{V: posVersion, Offset: &n})
	return b
}

// decodePos restores the place to resume from.
func (r *reader) decodePos(pos record.Position) error {
	if len(pos) == 0 {
		return nil
	}
	var p posJSON
	if err := json.Unmarshal(pos, &p); err != nil {
		return fmt.Errorf("checkpoint %q is not a position of this source: %w", cut(pos), err)
	}
	if p.V != posVersion {
		return fmt.Errorf("checkpoint %q has version %d; this version of backbone reads version %d", cut(pos), p.V, posVersion)
	}
	if len(r.order) == 0 {
		if p.Offset == nil || *p.Offset < 0 {
			return fmt.Errorf("checkpoint %q is not a row count: the source's ordering changed since it was written (reset the checkpoint)", cut(pos))
		}
		r.Offset = *p.Offset
		return nil
	}
	if !slices.Equal(p.Cols, r.order) || len(p.Vals) != len(r.order) {
		return fmt.Errorf("checkpoint was written for ordering columns (%s), the source now orders by (%s): reset the checkpoint to read from the start",
			strings.Join(p.Cols, ", "), strings.Join(r.order, ", "))
	}
	last := make([]any, len(p.Vals))
	for i, v := range p.Vals {
		switch {
		case v.I != nil:
			last[i] = *v.I
		case v.F != nil:
			f, err := strconv.ParseFloat(*v.F, 64)
			if err != nil {
				return fmt.Errorf("checkpoint %q is not a position of this source: %w", cut(pos), err)
			}
			last[i] = f
		case v.S != nil:
			last[i] = *v.S
		case v.X != nil:
			last[i] = string(v.X)
		case v.B != nil:
			b := *v.B
			if b == nil {
				b = []byte{} // nil binds as NULL
			}
			last[i] = b
		}
	}
	r.Last = last
	return nil
}

func cut(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
