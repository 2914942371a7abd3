package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

// Schema drift policies.
const (
	driftFail       = "fail"
	driftAddColumns = "add_columns"
	driftIgnoreNew  = "ignore_new"
)

type sourceConfig struct {
	DSN         string              `yaml:"dsn"`
	Table       string              `yaml:"table"`
	Query       string              `yaml:"query"`
	Mode        string              `yaml:"mode"`
	Cursor      connector.List      `yaml:"cursor"`
	Key         connector.List      `yaml:"key"`
	Lookback    connector.Duration  `yaml:"lookback"`
	SchemaDrift string              `yaml:"schema_drift"`
	Schema      connector.SchemaDef `yaml:"schema"`
	BatchRows   int                 `yaml:"batch_rows"`
}

var sourceSpec = connector.Spec{
	Name:    "mysql",
	Summary: "Read a table or a query of a MySQL or MariaDB database, whole or incrementally by a cursor.",
	Doc: `Reads a table or the result of a query from MySQL or MariaDB (go-sql-driver/mysql). Every
connection uses the session time zone '+00:00' and binary-protocol prepared statements.

In mode full every run reads everything again, in the order of key when one is given, else of
the table's primary key, else in the server's order (resumed by row count after a retry).

In mode incremental each run reads the rows whose (cursor…, key…) comes after the last row
read, in that order: one keyset query per batch of the form
(c1 > ?) OR (c1 = ? AND c2 > ?) OR …, which MariaDB turns into index ranges: an index on
(cursor…, key…) makes every batch a range scan, even among thousands of rows sharing one cursor
value. (A row-value comparison (c1, c2) > (?, ?) reads the index from its start on MariaDB
10.11, so it is not used.) key must be unique: it breaks ties between rows sharing a cursor
value. The checkpoint keeps the last row's cursor and key values exactly, typed (integers,
exact decimal text, timestamps to the microsecond, bytes), and binds them back with their own
types: nothing is compared through lossy text, and a DECIMAL cursor is compared as a DECIMAL.

lookback L makes every run start from (last cursor - L) instead of just after the last row, so
that a row committed late with an older cursor value is still read. Rows inside the window are
read again by every run: dedupe them by key downstream (an upsert sink or a dedupe step). It
needs a DATE, DATETIME or TIMESTAMP first cursor column. A retry within one run resumes
exactly, without the window.

Without a schema the fields are the columns, typed from their database types: integers -> int
(TINYINT(1)/BOOLEAN and BIT(1) of a table -> bool), DECIMAL -> decimal (exact), FLOAT/DOUBLE ->
float, CHAR/VARCHAR/TEXT/ENUM/SET/TIME -> string, BINARY/VARBINARY/BLOB -> bytes, DATE -> date,
DATETIME -> timestamp (the wall clock in the pipeline's zone, UTC by default), TIMESTAMP ->
timestamp (UTC), JSON (MariaDB: a LONGTEXT with a json_valid check) -> json. A query's columns
are typed by the driver, which knows neither TINYINT(1) nor MariaDB's JSON: declare a schema for
those. A value that does not convert (a zero date, invalid UTF-8, an unsigned value above the
int range) rejects its record.

The column list and types are stored in the checkpoint. When they change between runs,
schema_drift decides: fail (the default) stops with an error naming the columns; add_columns
reads new columns too; ignore_new keeps reading the columns of the checkpoint. A column that
disappeared or changed type always fails: no data is dropped silently. A declared schema is not
checked for drift.`,
	Fields: []connector.FieldSpec{
		{Name: "dsn", Type: connector.TString, Required: true, Secret: true, Doc: "user:password@tcp(host:port)/database?options, or mysql://user:password@host:port/database?options."},
		{Name: "table", Type: connector.TString, Doc: "Table (or view) of the dsn's database. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read, used as a derived table. Exactly one of table and query."},
		{Name: "mode", Type: connector.TEnum, Default: sqlkit.ModeFull, Enum: []string{sqlkit.ModeFull, sqlkit.ModeIncremental}, Doc: "full reads everything every run; incremental resumes after the last (cursor, key) read."},
		{Name: "cursor", Type: connector.TList, Doc: "Column(s) whose values grow with every new or changed row. Required in mode incremental."},
		{Name: "key", Type: connector.TList, Doc: "Unique column(s) that order rows sharing a cursor value. Required in mode incremental; in mode full, the reading order."},
		{Name: "lookback", Type: connector.TDuration, Doc: "Mode incremental: start every run this long before the last cursor value read, to pick up rows committed late. Re-read rows must be deduplicated by key."},
		{Name: "schema_drift", Type: connector.TEnum, Default: driftFail, Enum: []string{driftFail, driftAddColumns, driftIgnoreNew}, Doc: "What to do when the columns changed since the checkpoint was written."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from its database type."},
		{Name: "batch_rows", Type: connector.TInt, Doc: "Rows per batch; default: the pipeline's batch size."},
	},
	Example: `source:
  type: mysql
  dsn: ${SHOP_DSN}
  table: orders
  mode: incremental
  cursor: updated_at
  key: id
  lookback: 5m`,
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{Mode: sqlkit.ModeFull, SchemaDrift: driftFail}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	srv, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("dsn"), "%v", err)
	}
	if err := checkTarget(p, cfg.Table, cfg.Query); err != nil {
		return nil, err
	}
	if err := sqlkit.CheckRead(p, cfg.Mode, cfg.Cursor, cfg.Key, cfg.BatchRows); err != nil {
		return nil, err
	}
	if cfg.Mode == sqlkit.ModeFull && cfg.Lookback != 0 {
		return nil, connector.Errorf(p.FieldPos("lookback"), "lookback is only used in mode incremental")
	}
	switch cfg.SchemaDrift {
	case driftFail, driftAddColumns, driftIgnoreNew:
	default:
		return nil, connector.Errorf(p.FieldPos("schema_drift"), "schema_drift %q: want fail, add_columns or ignore_new", cfg.SchemaDrift)
	}
	if cfg.Lookback < 0 {
		return nil, connector.Errorf(p.FieldPos("lookback"), "lookback must not be negative")
	}
	s := &source{cfg: cfg, srv: srv, declared: cfg.Schema.Schema()}
	if s.declared != nil {
		return &schemedSource{s}, nil
	}
	return s, nil
}

// checkTarget checks that exactly one of table and query is set.
func checkTarget(p connector.Params, table, query string) error {
	switch {
	case strings.TrimSpace(table) == "" && strings.TrimSpace(query) == "":
		return connector.Errorf(p.Pos(), "one of table and query is required")
	case table != "" && query != "":
		return connector.Errorf(p.FieldPos("query"), "table and query exclude each other: set one")
	}
	return nil
}

type source struct {
	cfg      sourceConfig
	srv      *server
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

func (s *source) what() string { return what(s.cfg.Table, s.cfg.Query) }

// what names a table or a query in messages.
func what(table, query string) string {
	if query != "" {
		return "query"
	}
	return "table " + strconv.Quote(table)
}

// Plan implements connector.Source: one task. A full read is a new task
// every run (its key carries the run id), so it starts from the beginning
// each run and still resumes within a run after a retry.
func (s *source) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	db, err := s.srv.connect(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	defer db.Close()
	t := connector.Task{Key: s.name()}
	if s.cfg.Mode == sqlkit.ModeFull {
		t.Key += "@" + env.RunID
	}
	if s.cfg.Table != "" {
		var rows sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, s.cfg.Table).Scan(&rows)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("mysql: %s: table %q does not exist", s.srv.where, s.cfg.Table)
		case err != nil:
			return nil, fmt.Errorf("mysql: %s: %w", s.srv.where, classify(ctx, s.srv.redact(err)))
		}
		t.Size = rows.Int64 // an estimate, for progress only
	}
	return []connector.Task{t}, nil
}

// Open implements connector.Source.
func (s *source) Open(ctx context.Context, env *connector.Env, _ connector.Task, pos record.Position) (connector.Reader, error) {
	db, err := s.srv.connect(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	r, err := s.newReader(ctx, env, db, pos)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: %s, %s: %w", s.srv.where, s.what(), classify(ctx, s.srv.redact(err)))
	}
	return r, nil
}

// field is a schema field and the column it is read from.
type field struct {
	col     column
	natural record.Type // the column's own record type
	typ     record.Type // the field's type
}

func (s *source) newReader(ctx context.Context, env *connector.Env, db *sql.DB, pos record.Position) (*reader, error) {
	cols, err := describe(ctx, db, s.cfg.Table, s.cfg.Query)
	if err != nil {
		return nil, err
	}
	p, err := decodePos(pos)
	if err != nil {
		return nil, err
	}
	schema, fields, err := s.resolveFields(cols, p)
	if err != nil {
		return nil, err
	}
	if p != nil && p.Schema != nil && env.Logger != nil {
		// Columns added and handled by schema_drift are never silent.
		if stored, err := p.fields(); err == nil {
			if added := addedFields(stored, cols); added != "" {
				env.Logger.Warn("source: schema drift", "drift", "new column(s) "+added+" since the checkpoint; schema_drift: "+s.cfg.SchemaDrift)
			}
		}
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	r := &reader{srv: s.srv, fields: fields, loc: loc, run: env.RunID}
	r.Reader = sqlkit.NewReader(db, schema, s.name(), sqlkit.Limits(env, s.cfg.BatchRows), r)
	orderNames := sqlkit.Order(s.cfg.Mode, s.cfg.Cursor, s.cfg.Key)
	keyCols := []string(s.cfg.Key)
	if len(orderNames) == 0 && s.cfg.Table != "" {
		if orderNames, err = primaryKey(ctx, db, s.cfg.Table); err != nil {
			return nil, err
		}
		keyCols = orderNames
	}
	for _, n := range orderNames {
		c, ok := findColumn(cols, n)
		if !ok {
			return nil, fmt.Errorf("ordering column %q is not among the columns (%s)", n, columnNames(cols))
		}
		r.order = append(r.order, c)
	}
	if n := len(r.order); len(keyCols) == 1 && n > 0 && strings.EqualFold(r.order[n-1].name, keyCols[0]) && r.order[n-1].kind == kInt {
		r.lineKey = true // a single integer key is the place of a row
	}
	if err := r.restore(p, s.cfg.Lookback); err != nil {
		return nil, err
	}
	if err := r.prepare(ctx, s.cfg.Table, s.cfg.Query); err != nil {
		r.CloseStmts()
		return nil, err
	}
	return r, nil
}

func columnNames(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// resolveFields builds the schema of this read: the declared one, or the
// columns' own, checked against the schema stored in the position.
func (s *source) resolveFields(cols []column, p *posJSON) (*record.Schema, []field, error) {
	if s.declared != nil {
		fields := make([]field, s.declared.Len())
		for i, f := range s.declared.Fields() {
			c, ok := findColumn(cols, f.Name)
			if !ok {
				return nil, nil, fmt.Errorf("declared field %q is not among the columns (%s)", f.Name, columnNames(cols))
			}
			fields[i] = field{col: c, natural: c.recordType(), typ: f.Type}
		}
		return s.declared, fields, nil
	}
	current := make([]record.Field, len(cols))
	for i, c := range cols {
		current[i] = record.Field{Name: c.name, Type: c.recordType()}
	}
	chosen := current
	if p != nil && p.Schema != nil {
		stored, err := p.fields()
		if err != nil {
			return nil, nil, err
		}
		if chosen, err = s.checkDrift(stored, current); err != nil {
			return nil, nil, err
		}
	}
	schema, err := record.NewSchema(chosen...)
	if err != nil {
		return nil, nil, fmt.Errorf("columns: %w (declare a schema, or rename the columns)", err)
	}
	fields := make([]field, len(chosen))
	for i, f := range chosen {
		c, _ := findColumn(cols, f.Name)
		fields[i] = field{col: c, natural: c.recordType(), typ: f.Type}
	}
	return schema, fields, nil
}

// checkDrift compares the columns stored in the checkpoint with the
// current ones and applies schema_drift. It returns the fields to read.
func (s *source) checkDrift(stored, current []record.Field) ([]record.Field, error) {
	var added, removed, changed []string
	for _, c := range current {
		i := slices.IndexFunc(stored, func(f record.Field) bool { return strings.EqualFold(f.Name, c.Name) })
		switch {
		case i < 0:
			added = append(added, c.Name+" ("+c.Type.String()+")")
		case stored[i].Type != c.Type:
			changed = append(changed, fmt.Sprintf("%s (%s -> %s)", c.Name, stored[i].Type, c.Type))
		}
	}
	for _, f := range stored {
		if !slices.ContainsFunc(current, func(c record.Field) bool { return strings.EqualFold(f.Name, c.Name) }) {
			removed = append(removed, f.Name+" ("+f.Type.String()+")")
		}
	}
	if len(added)+len(removed)+len(changed) == 0 {
		return current, nil
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "new column(s) "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed column(s) "+strings.Join(removed, ", "))
	}
	if len(changed) > 0 {
		parts = append(parts, "changed type(s) "+strings.Join(changed, ", "))
	}
	desc := strings.Join(parts, "; ")
	if len(removed)+len(changed) > 0 {
		return nil, fmt.Errorf("schema drift since the checkpoint: %s (schema_drift: %s; a removed or retyped column always stops the read: declare a schema, or reset the checkpoint)", desc, s.cfg.SchemaDrift)
	}
	switch s.cfg.SchemaDrift {
	case driftAddColumns:
		return current, nil
	case driftIgnoreNew:
		return stored, nil
	}
	return nil, fmt.Errorf("schema drift since the checkpoint: %s (schema_drift: fail; set schema_drift: add_columns to read them or ignore_new to leave them out)", desc)
}

// addedFields names the columns that are not among the stored fields.
func addedFields(stored []record.Field, cols []column) string {
	var added []string
	for _, c := range cols {
		if !slices.ContainsFunc(stored, func(f record.Field) bool { return strings.EqualFold(f.Name, c.name) }) {
			added = append(added, c.name+" ("+c.recordType().String()+")")
		}
	}
	return strings.Join(added, ", ")
}

// primaryKey lists the columns of a table's primary key, in index order.
func primaryKey(ctx context.Context, db querier, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// reader reads one task (see sqlkit.Reader).
type reader struct {
	sqlkit.Reader
	srv    *server
	fields []field
	loc    *time.Location
	run    string // env.RunID, stored in positions

	order   []column // ordering columns, selected after the fields
	lineKey bool     // Batch.Lines holds the single integer key

	lookback any // the first query reads c1 >= lookback (a run's window), then nil

	posPrefix []byte // position JSON up to the values

	raws   []sql.RawBytes
	ifaces []any
	ptrs   []any
}

func (r *reader) prepare(ctx context.Context, table, query string) error {
	nf := len(r.fields)
	var sel strings.Builder
	sel.WriteString("SELECT ")
	for i, f := range r.fields {
		if i > 0 {
			sel.WriteString(", ")
		}
		sel.WriteString("s." + quoteIdent(f.col.name))
	}
	for _, c := range r.order {
		sel.WriteString(", s." + quoteIdent(c.name))
	}
	sel.WriteString(" FROM ")
	sel.WriteString(fromClause(table, query))
	n := nf + len(r.order)
	r.raws = make([]sql.RawBytes, n)
	r.ifaces = make([]any, n)
	r.ptrs = make([]any, n)
	for i := range r.ptrs {
		if i < nf && r.fields[i].col.rawBytes() {
			r.ptrs[i] = &r.raws[i]
		} else {
			r.ptrs[i] = &r.ifaces[i]
		}
	}
	r.posPrefix = r.encodePrefix()
	return r.Prepare(ctx, sel.String(), orderExprs(r.order), " LIMIT 18446744073709551615 OFFSET ?")
}

// orderExprs is the SQL of the ordering columns.
func orderExprs(cols []column) []string {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = "s." + quoteIdent(c.name)
	}
	return exprs
}

// placeholder is the parameter of a comparison with column c: a DECIMAL
// is compared as a DECIMAL of the column's size, never through a double.
func placeholder(c column) string {
	if c.kind == kDecimal && c.precision > 0 {
		return fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", c.precision, c.scale)
	}
	if c.kind == kDecimal {
		return "CAST(? AS DECIMAL(65,30))"
	}
	return "?"
}

// keysetWhere is the condition of the rows after last in the order of
// ORDER BY c1…cn (see sqlkit.KeysetWhere). MariaDB turns its OR of levels
// into index ranges; it does not for a row-value comparison
// (c1, c2) > (?, ?), which it evaluates over a full index scan.
func keysetWhere(cols []column, last []any) (string, []any) {
	params := make([]string, len(cols))
	for i, c := range cols {
		params[i] = placeholder(c)
	}
	return sqlkit.KeysetWhere(orderExprs(cols), params, last)
}

// ReadKeyset implements sqlkit.Rows: one query for the batch, after the
// last row read or, for the first batch of a lookback, inside its window.
func (r *reader) ReadKeyset(ctx context.Context, b *record.Batch) (bool, error) {
	var where string
	var args []any
	switch {
	case r.lookback != nil:
		where = "s." + quoteIdent(r.order[0].name) + " >= " + placeholder(r.order[0])
		args = []any{r.lookback}
	case r.Last != nil:
		where, args = keysetWhere(r.order, r.Last)
	}
	full, err := r.Query(ctx, b, where, args)
	if err == nil {
		r.lookback = nil
	}
	return full, err
}

// Position implements sqlkit.Rows.
func (r *reader) Position() (record.Position, error) {
	if len(r.order) == 0 {
		return r.encodeOffset(), nil
	}
	return r.encodeKeyset(), nil
}

// Dest implements sqlkit.Rows.
func (r *reader) Dest() []any { return r.ptrs }

// Keyset implements sqlkit.Rows.
func (r *reader) Keyset(last []any) {
	nf := len(r.fields)
	for i, c := range r.order {
		last[i] = bindable(c, r.ifaces[nf+i])
	}
}

// Line implements sqlkit.Rows: the value of a single integer key.
func (r *reader) Line() (int64, bool) {
	if !r.lineKey {
		return 0, false
	}
	id, ok := r.Last[len(r.Last)-1].(int64)
	return id, ok
}

// Size implements sqlkit.Rows.
func (r *reader) Size() int {
	size := 0
	for i := range r.fields {
		if r.raws[i] != nil {
			size += 16 + len(r.raws[i])
		} else {
			size += record.Size(r.ifaces[i])
		}
	}
	return size
}

// Convert implements sqlkit.Rows.
func (r *reader) Convert(row record.Row) (string, error) {
	for i := range r.fields {
		name := r.Schema().Field(i).Name
		v, err := convertField(&r.fields[i], name, r.raws[i], r.ifaces[i], r.loc)
		if err != nil {
			return name, err
		}
		row[i] = v
	}
	return "", nil
}

// convertField decodes a scanned value of field f and converts it to the
// field's type.
func convertField(f *field, name string, raw []byte, iface any, loc *time.Location) (any, error) {
	v, err := decode(&f.col, raw, iface, loc)
	if err != nil {
		return nil, fieldError(name, err)
	}
	if v == nil || f.typ == record.Any {
		return v, nil
	}
	// A BIGINT UNSIGNED above the int range decodes as its text.
	if f.typ != f.natural || (f.typ == record.Int && record.TypeOf(v) != record.Int) {
		return convertTo(v, f.typ, name, loc)
	}
	return v, nil
}

// Raw implements sqlkit.Rows: the scanned values of the fields as the
// database gave them.
func (r *reader) Raw() []any {
	out := make([]any, len(r.fields))
	for i := range r.fields {
		switch {
		case r.raws[i] != nil && r.fields[i].col.kind == kBytes:
			out[i] = bytes.Clone(r.raws[i])
		case r.raws[i] != nil:
			out[i] = strings.ToValidUTF8(string(r.raws[i]), "\uFFFD")
		case r.ifaces[i] != nil:
			if b, ok := r.ifaces[i].([]byte); ok {
				out[i] = b
			} else {
				out[i] = r.ifaces[i]
			}
		}
	}
	return out
}

// Fail implements sqlkit.Rows.
func (r *reader) Fail(ctx context.Context, err error) error {
	return fmt.Errorf("mysql: read %s: %w", r.Origin(), classify(ctx, r.srv.redact(err)))
}

// restore sets the place to resume from. With lookback, a position written
// by another run starts its run that long before its first cursor value.
func (r *reader) restore(p *posJSON, lookback connector.Duration) error {
	if p == nil {
		return nil
	}
	names := make([]string, len(r.order))
	for i, c := range r.order {
		names[i] = c.name
	}
	if len(r.order) == 0 {
		if p.Offset == nil || *p.Offset < 0 {
			return fmt.Errorf("checkpoint is not a row count: the source's ordering changed since it was written (reset the checkpoint)")
		}
		r.Offset = *p.Offset
		return nil
	}
	if p.Offset != nil || len(p.Cols) != len(names) || len(p.Vals) != len(names) || !slices.EqualFunc(p.Cols, names, strings.EqualFold) {
		return fmt.Errorf("checkpoint was written for ordering columns (%s), the source now orders by (%s): reset the checkpoint to read from the start",
			strings.Join(p.Cols, ", "), strings.Join(names, ", "))
	}
	last := make([]any, len(p.Vals))
	for i, v := range p.Vals {
		x, err := v.value()
		if err != nil {
			return fmt.Errorf("checkpoint value of %s: %w", names[i], err)
		}
		last[i] = x
	}
	r.Last = last
	if lookback > 0 && p.Run != r.run {
		c := r.order[0]
		t, ok := last[0].(time.Time)
		switch {
		case c.kind != kDate && c.kind != kDateTime && c.kind != kTimestamp:
			return fmt.Errorf("lookback needs a DATE, DATETIME or TIMESTAMP first cursor column; %s is %s", c.name, c.dbType)
		case !ok:
			// A NULL cursor sorts first: there is no window before it.
		default:
			start := t.Add(-time.Duration(lookback))
			if c.kind == kDate {
				y, m, d := start.Date()
				start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			}
			r.lookback = start
		}
	}
	return nil
}

// bindable normalizes a scanned ordering value to what binds back with
// the column's own type: BIGINT UNSIGNED as uint64, FLOAT as float64.
func bindable(c column, v any) any {
	switch x := v.(type) {
	case float32:
		return float64(x)
	case []byte:
		if c.kind == kUint {
			if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
				return u
			}
		}
		return x
	case string:
		if c.kind == kUint {
			if u, err := strconv.ParseUint(x, 10, 64); err == nil {
				return u
			}
		}
	}
	return v
}
