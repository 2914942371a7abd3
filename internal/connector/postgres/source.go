package postgres

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

// Source modes and schema drift policies.
const (
	modeFull        = "full"
	modeIncremental = "incremental"

	driftFail       = "fail"
	driftAddColumns = "add_columns"
	driftIgnoreNew  = "ignore_new"
)

type sourceConfig struct {
	DSN         string              `yaml:"dsn"`
	DBSchema    string              `yaml:"db_schema"`
	Table       string              `yaml:"table"`
	Query       string              `yaml:"query"`
	Mode        string              `yaml:"mode"`
	Cursor      connector.List      `yaml:"cursor"`
	Key         connector.List      `yaml:"key"`
	Lookback    connector.Duration  `yaml:"lookback"`
	Schema      connector.SchemaDef `yaml:"schema"`
	SchemaDrift string              `yaml:"schema_drift"`
	BatchRows   int                 `yaml:"batch_rows"`
	Parallel    int                 `yaml:"parallel"`
}

var dsnField = connector.FieldSpec{Name: "dsn", Type: connector.TString, Required: true, Secret: true,
	Doc: "Connection string, postgres://user:password@host:5432/db?sslmode=… or key=value form; usually \"${ENV_VAR}\". Never printed."}

var dbSchemaField = connector.FieldSpec{Name: "db_schema", Type: connector.TString, Default: defaultDBSchema,
	Doc: "Database schema (namespace) of the table, and of the checkpoint tables of a sink."}

var sourceSpec = connector.Spec{
	Name:    "postgres",
	Summary: "Read a table or a query of a PostgreSQL database, whole or incrementally by a cursor.",
	Doc: `Reads a table or the result of a query from PostgreSQL, streaming each task with one query
in the binary protocol.

In mode incremental each run reads the rows whose (cursor, key) comes after the last row read
by the previous run, in the order of (cursor, key): a column that grows with every change (an
updated_at, a sequence) picks up new and changed rows. key must be unique: it breaks ties
between rows that share a cursor value, so a tie straddling a batch boundary is read exactly
once. The checkpoint keeps the cursor and key values of the last row exactly (a timestamp with
its microseconds and zone, a numeric with all its digits) together with their type, and the
next run compares them in SQL with the column's own type: nothing is compared as lossy text.
Declare cursor and key NOT NULL and index (cursor, key): each run is then one index range scan.
Rows with a NULL cursor or key sort last and are read once.

The first run of an incremental read of a table (no checkpoint yet) reads it whole, and reads it
as it is stored, not sorted: first the rows up to the last row in (cursor, key) order at the
start, in the table's physical order (one pass, no sort on the server), then the rows after
that last one, added or changed meanwhile, in order. Its checkpoints until then are physical
row numbers: a stopped first read resumes where it stopped, unless the table was rewritten
meanwhile (VACUUM FULL, CLUSTER, ALTER TABLE … TYPE), when it asks for the checkpoint to be
reset. Views, queries and tables with inheritance children or partitions are read in order
from the first run.

lookback re-reads, at the start of each run, the rows whose cursor lies within that duration
before the checkpoint (the cursor must be a timestamp or a date). It catches rows committed
late with an older cursor value (a long transaction that started before the previous run). The
re-read rows arrive again: write them with a sink in mode upsert (or a dedupe step) keyed like
the source, which absorbs the overlap.

In mode full every run reads everything again, in the order of key, or of the primary key when
no key is given, or in the query's own order (resumed by row count after a retry). A table whose
order is one NOT NULL integer column, and whose statistics count at least parallel × batch
rows, is split into parallel key ranges (min to max) read concurrently, each resumed from its
own position.

db_schema is also the search path of the connection: a query's unqualified names resolve in
it.

Without a schema the fields are the columns, typed from the database: smallint, integer,
bigint -> int; real, double precision -> float; numeric -> decimal (exact); text, varchar,
char, uuid -> string; boolean -> bool; timestamptz -> timestamp (the instant, microseconds
kept); timestamp -> timestamp in the pipeline's zone (UTC by default); date -> date;
bytea -> bytes; json, jsonb -> json; any other type -> string, as PostgreSQL prints it. A value
that does not convert (NaN, infinity) rejects its record.

The checkpoint of an incremental read remembers the columns it read. When they change between
runs, schema_drift decides: fail (the default) stops with an error naming the columns;
add_columns reads new columns as new fields; ignore_new leaves new columns out. A column that
disappears or changes type always stops the run: reset the checkpoint or declare a schema.`,
	Fields: []connector.FieldSpec{
		dsnField,
		dbSchemaField,
		{Name: "table", Type: connector.TString, Doc: "Table (or view) to read. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read, used as a subquery. Exactly one of table and query."},
		{Name: "mode", Type: connector.TEnum, Default: modeFull, Enum: []string{modeFull, modeIncremental}, Doc: "full reads everything every run; incremental resumes after the last (cursor, key) read."},
		{Name: "cursor", Type: connector.TList, Doc: "Column(s) whose values grow with every new or changed row. Required in mode incremental."},
		{Name: "key", Type: connector.TList, Doc: "Unique column(s) ordering rows that share a cursor value. Required in mode incremental; in mode full, the reading order (default: the primary key)."},
		{Name: "lookback", Type: connector.TDuration, Doc: "Mode incremental: re-read rows whose cursor lies within this duration before the checkpoint, to catch late commits."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from the database."},
		{Name: "schema_drift", Type: connector.TEnum, Default: driftFail, Enum: []string{driftFail, driftAddColumns, driftIgnoreNew}, Doc: "What to do when columns appear between runs: fail, add_columns or ignore_new."},
		{Name: "batch_rows", Type: connector.TInt, Doc: "Rows per batch; default: the pipeline's batch size."},
		{Name: "parallel", Type: connector.TInt, Default: "2", Doc: "Mode full: key ranges read concurrently when the order is one NOT NULL integer column."},
	},
	Example: `source:
  type: postgres
  dsn: "${SHOP_DSN}"
  table: orders
  mode: incremental
  cursor: updated_at
  key: id
  lookback: 10m`,
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{DBSchema: defaultDBSchema, Mode: modeFull, SchemaDrift: driftFail, Parallel: 2}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	srv, err := checkTarget(p, cfg.DSN, cfg.DBSchema, cfg.Table, cfg.Query)
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case modeFull:
		if len(cfg.Cursor) > 0 {
			return nil, connector.Errorf(p.FieldPos("cursor"), "cursor is only used in mode incremental")
		}
		if cfg.Lookback != 0 {
			return nil, connector.Errorf(p.FieldPos("lookback"), "lookback is only used in mode incremental")
		}
	case modeIncremental:
		if len(cfg.Cursor) == 0 {
			return nil, connector.Errorf(p.FieldPos("mode"), "mode incremental needs a cursor: the column(s) whose values grow with every new or changed row")
		}
		if len(cfg.Key) == 0 {
			return nil, connector.Errorf(p.FieldPos("mode"), "mode incremental needs a key: unique column(s) that order rows sharing a cursor value")
		}
	default:
		return nil, connector.Errorf(p.FieldPos("mode"), "mode %q: want full or incremental", cfg.Mode)
	}
	switch cfg.SchemaDrift {
	case driftFail, driftAddColumns, driftIgnoreNew:
	default:
		return nil, connector.Errorf(p.FieldPos("schema_drift"), "schema_drift %q: want fail, add_columns or ignore_new", cfg.SchemaDrift)
	}
	if err := sqlkit.CheckNames(p, "cursor", cfg.Cursor); err != nil {
		return nil, err
	}
	if err := sqlkit.CheckNames(p, "key", cfg.Key); err != nil {
		return nil, err
	}
	if cfg.Lookback < 0 {
		return nil, connector.Errorf(p.FieldPos("lookback"), "lookback must not be negative")
	}
	if cfg.BatchRows < 0 {
		return nil, connector.Errorf(p.FieldPos("batch_rows"), "batch_rows must be positive, got %d", cfg.BatchRows)
	}
	if cfg.Parallel < 1 || cfg.Parallel > 64 {
		return nil, connector.Errorf(p.FieldPos("parallel"), "parallel must be between 1 and 64, got %d", cfg.Parallel)
	}
	srv.searchPath(cfg.DBSchema)
	s := &pgSource{cfg: cfg, srv: srv, declared: cfg.Schema.Schema()}
	if s.declared != nil {
		return &schemedSource{s}, nil
	}
	return s, nil
}

// checkTarget checks the DSN, the schema and that exactly one of table and
// query is set.
func checkTarget(p connector.Params, dsn, dbSchema, table, query string) (*server, error) {
	srv, err := parseDSN(dsn)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("dsn"), "dsn: %v", err)
	}
	if strings.TrimSpace(dbSchema) == "" {
		return nil, connector.Errorf(p.FieldPos("db_schema"), "db_schema must name a schema")
	}
	switch {
	case table == "" && strings.TrimSpace(query) == "":
		return nil, connector.Errorf(p.Pos(), "one of table and query is required")
	case table != "" && query != "":
		return nil, connector.Errorf(p.FieldPos("query"), "table and query exclude each other: set one")
	}
	return srv, nil
}

// pgSource is the postgres source.
type pgSource struct {
	cfg      sourceConfig
	srv      *server
	declared *record.Schema
}

// schemedSource is a source with a declared schema.
type schemedSource struct{ *pgSource }

// Schema implements connector.Schemer.
func (s *schemedSource) Schema() *record.Schema { return s.declared }

func (s *pgSource) what() string { return what(s.cfg.DBSchema, s.cfg.Table, s.cfg.Query) }

func (s *pgSource) from() string { return fromClause(s.cfg.DBSchema, s.cfg.Table, s.cfg.Query) }

// taskName names the task of the whole read, stable across runs.
func (s *pgSource) taskName() string {
	if s.cfg.Query != "" {
		return "query"
	}
	return s.cfg.Table
}

func (s *pgSource) wrap(err error, c *pgconn.PgConn) error {
	return fmt.Errorf("postgres: %s, %s: %w", s.srv.where, s.what(), classify(s.srv.redact(err), c))
}

// layout is what Plan and Open learn from the catalog: the columns, and
// the ordering of the read.
type layout struct {
	cols  []column
	rel   relation // zero for a query
	order []string // ordering columns; none: an unordered read
	split bool     // the order is one NOT NULL integer column of a table
}

func (s *pgSource) layout(ctx context.Context, c *pgconn.PgConn) (*layout, error) {
	l := &layout{}
	if s.cfg.Table != "" {
		rel, ok, err := lookupRelation(ctx, c, s.cfg.DBSchema, s.cfg.Table)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("table %s does not exist", qualified(s.cfg.DBSchema, s.cfg.Table))
		}
		l.rel = rel
	}
	cols, err := describe(ctx, c, s.from())
	if err != nil {
		return nil, err
	}
	l.cols = cols
	l.order = sqlkit.Order(s.cfg.Mode, s.cfg.Cursor, s.cfg.Key)
	if len(l.order) == 0 && s.cfg.Mode != modeIncremental && l.rel.oid != "" {
		if l.order, err = primaryKey(ctx, c, l.rel.oid); err != nil {
			return nil, err
		}
	}
	var missing []string
	for _, n := range l.order {
		if _, ok := findColumn(cols, n); !ok {
			missing = append(missing, n)
		}
	}
	if s.declared != nil {
		for _, f := range s.declared.Fields() {
			if _, ok := findColumn(cols, f.Name); !ok && !slices.Contains(missing, f.Name) {
				missing = append(missing, f.Name)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no column %s (the columns: %s)", strings.Join(missing, ", "), columnNames(cols))
	}
	if s.cfg.Lookback > 0 {
		i, _ := findColumn(cols, s.cfg.Cursor[0])
		switch cols[i].oid {
		case oidTimestamptz, oidTimestamp, oidDate:
		default:
			return nil, fmt.Errorf("lookback needs a timestamp or date cursor; %q is %s", s.cfg.Cursor[0], cols[i].typeName)
		}
	}
	if s.cfg.Mode == modeFull && l.rel.oid != "" && len(l.order) == 1 {
		i, _ := findColumn(cols, l.order[0])
		switch cols[i].oid {
		case oidInt2, oidInt4, oidInt8:
			l.split = cols[i].notNull
		}
	}
	return l, nil
}

// Plan implements connector.Source. An incremental read is one task named
// after the table (or "query"). A full read is a new task every run (its
// key carries the run id), so it starts from the beginning each run and
// still resumes within a run; a large table is split into key ranges.
func (s *pgSource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	c, err := s.srv.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	l, err := s.layout(ctx, c)
	if err != nil {
		return nil, s.wrap(err, c)
	}
	name := s.taskName()
	if s.cfg.Mode == modeIncremental {
		return []connector.Task{{Key: name, Size: max(l.rel.rows, 0)}}, nil
	}
	name += "@" + env.RunID
	// Split a table whose statistics show enough rows for a batch or more
	// per range.
	batch := int64(env.Limits.BatchRows)
	if s.cfg.BatchRows > 0 {
		batch = int64(s.cfg.BatchRows)
	}
	if batch <= 0 {
		batch = int64(record.DefaultLimits.BatchRows)
	}
	if !l.split || s.cfg.Parallel < 2 || l.rel.rows < batch*int64(s.cfg.Parallel) {
		return []connector.Task{{Key: name, Size: max(l.rel.rows, 0)}}, nil
	}
	k, _ := findColumn(l.cols, l.order[0])
	rows, err := query(ctx, c, "SELECT min(s."+quoteIdent(l.cols[k].name)+")::int8, max(s."+quoteIdent(l.cols[k].name)+")::int8 FROM "+s.from())
	if err != nil {
		return nil, s.wrap(err, c)
	}
	if len(rows) == 0 || rows[0][0] == nil {
		return []connector.Task{{Key: name}}, nil // empty
	}
	lo, _ := strconv.ParseInt(text(rows[0][0]), 10, 64)
	hi, _ := strconv.ParseInt(text(rows[0][1]), 10, 64)
	ranges := splitRange(lo, hi, s.cfg.Parallel)
	tasks := make([]connector.Task, len(ranges))
	for i, r := range ranges {
		tasks[i] = connector.Task{Key: fmt.Sprintf("%s#%d/%d:%d..%d", name, i+1, len(ranges), r[0], r[1]), Size: max(l.rel.rows, 0) / int64(len(ranges))}
	}
	return tasks, nil
}

// splitRange cuts [lo, hi] into at most n contiguous inclusive ranges of
// about equal width.
func splitRange(lo, hi int64, n int) [][2]int64 {
	width := uint64(hi - lo) // the span fits a uint64 even from MinInt64 to MaxInt64
	if width < uint64(n) {
		n = int(width) + 1
	}
	step := width / uint64(n)
	out := make([][2]int64, 0, n)
	start := lo
	for i := 0; i < n; i++ {
		end := hi
		if i < n-1 {
			end = start + int64(step)
		}
		out = append(out, [2]int64{start, end})
		if i < n-1 {
			start = end + 1
		}
	}
	return out
}

var rangeSuffix = regexp.MustCompile(`#\d+/\d+:(-?\d+)\.\.(-?\d+)$`)

// taskRange parses the key range of a task planned by splitting.
func taskRange(key string) (lo, hi int64, ok bool) {
	m := rangeSuffix.FindStringSubmatch(key)
	if m == nil {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseInt(m[1], 10, 64)
	hi, err2 := strconv.ParseInt(m[2], 10, 64)
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

// Check verifies that the server answers and that the table or query, the
// cursor, key and declared fields exist. It is for `backbone validate
// --connect`; it reads no rows.
func (s *pgSource) Check(ctx context.Context, env *connector.Env) error {
	c, err := s.srv.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	if _, err := s.layout(ctx, c); err != nil {
		return s.wrap(err, c)
	}
	return nil
}

// Open implements connector.Source: it starts reading task t after pos.
func (s *pgSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	p, err := decodePos(pos)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", s.what(), err)
	}
	c, err := s.srv.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	r, err := s.newReader(ctx, env, c, t, p)
	if err != nil {
		closeConn(c)
		return nil, s.wrap(err, c)
	}
	return r, nil
}

// resolveFields picks the columns to read as fields: the declared schema's,
// or every column, checked against the columns of the last run.
func (s *pgSource) resolveFields(cols []column, p *posJSON) (schema *record.Schema, use []int, note string, err error) {
	if s.declared != nil {
		idx := make([]int, s.declared.Len())
		for i, f := range s.declared.Fields() {
			idx[i], _ = findColumn(cols, f.Name)
		}
		return s.declared, idx, "", nil
	}
	use = make([]int, 0, len(cols))
	for i := range cols {
		use = append(use, i)
	}
	if p != nil && len(p.Cols) > 0 {
		var added, removed, changed []string
		for _, pc := range p.Cols {
			i, ok := findColumn(cols, pc.Name)
			switch {
			case !ok:
				removed = append(removed, fmt.Sprintf("%s (%s)", pc.Name, pc.Type))
			case cols[i].kind.recordType().String() != pc.RType:
				changed = append(changed, fmt.Sprintf("%s from %s to %s", pc.Name, pc.Type, cols[i].typeName))
			}
		}
		for _, c := range cols {
			if !slices.ContainsFunc(p.Cols, func(pc posCol) bool { return pc.Name == c.name }) {
				added = append(added, fmt.Sprintf("%s (%s)", c.name, c.typeName))
			}
		}
		if len(removed) > 0 || len(changed) > 0 || (len(added) > 0 && s.cfg.SchemaDrift == driftFail) {
			var parts []string
			if len(added) > 0 {
				parts = append(parts, "added "+strings.Join(added, ", "))
			}
			if len(removed) > 0 {
				parts = append(parts, "removed "+strings.Join(removed, ", "))
			}
			if len(changed) > 0 {
				parts = append(parts, "type of "+strings.Join(changed, ", ")+" changed")
			}
			hint := "set schema_drift: add_columns to read new columns or ignore_new to leave them out"
			if len(removed) > 0 || len(changed) > 0 {
				hint = "a removed or retyped column needs the checkpoint reset, or a declared schema"
			}
			return nil, nil, "", fmt.Errorf("the columns changed since the last run: %s (%s)", strings.Join(parts, "; "), hint)
		}
		if len(added) > 0 {
			// Handled by the policy, never silent: the reader logs it.
			note = "new column(s) " + strings.Join(added, ", ") + " since the last run; schema_drift: " + s.cfg.SchemaDrift
		}
		if len(added) > 0 && s.cfg.SchemaDrift == driftIgnoreNew {
			use = use[:0]
			for _, pc := range p.Cols {
				i, _ := findColumn(cols, pc.Name)
				use = append(use, i)
			}
		}
	}
	fields := make([]record.Field, len(use))
	for i, c := range use {
		fields[i] = record.Field{Name: cols[c].name, Type: cols[c].kind.recordType()}
	}
	schema, err = record.NewSchema(fields...)
	if err != nil {
		return nil, nil, "", fmt.Errorf("columns: %w (declare a schema, or rename the columns)", err)
	}
	return schema, use, note, nil
}

func (s *pgSource) newReader(ctx context.Context, env *connector.Env, c *pgconn.PgConn, t connector.Task, p *posJSON) (*reader, error) {
	l, err := s.layout(ctx, c)
	if err != nil {
		return nil, err
	}
	schema, use, note, err := s.resolveFields(l.cols, p)
	if err != nil {
		return nil, err
	}
	if note != "" && env.Logger != nil {
		env.Logger.Warn("source: schema drift", "task", t.Key, "drift", note)
	}
	limits := env.Limits
	if limits.BatchRows <= 0 {
		limits.BatchRows = record.DefaultLimits.BatchRows
	}
	if s.cfg.BatchRows > 0 {
		limits.BatchRows = s.cfg.BatchRows
	}
	r := &reader{
		srv:      s.srv,
		conn:     c,
		schema:   schema,
		origin:   s.taskName(),
		loc:      env.Location,
		limits:   limits,
		deferred: env.DeferDecode,
		run:      env.RunID,
		nf:       len(use),
	}
	if r.loc == nil {
		r.loc = time.UTC
	}
	// The result: the fields, then the ordering columns that are not fields.
	var sel []string
	for i, ci := range use {
		col := l.cols[ci]
		r.cols = append(r.cols, col)
		r.fields = append(r.fields, fieldReader{name: schema.Field(i).Name, kind: col.kind, ftype: schema.Field(i).Type})
		sel = append(sel, "s."+quoteIdent(col.name))
	}
	for _, name := range l.order {
		ci, _ := findColumn(l.cols, name)
		at := slices.Index(use, ci)
		if at < 0 {
			at = len(r.cols)
			r.cols = append(r.cols, l.cols[ci])
			sel = append(sel, "s."+quoteIdent(l.cols[ci].name))
		}
		r.order = append(r.order, at)
	}
	for _, f := range r.fields {
		if f.kind == kText || f.kind == kString {
			r.hasText = true
		}
	}
	r.formats = make([]int16, len(r.cols))
	for i, col := range r.cols {
		r.formats[i] = col.kind.format()
	}
	for _, ci := range use {
		r.posCols = append(r.posCols, posCol{Name: l.cols[ci].name, Type: l.cols[ci].typeName, RType: l.cols[ci].kind.recordType().String()})
	}
	if p != nil {
		r.n = p.N
	}

	var where []string
	if lo, hi, ok := taskRange(t.Key); ok && len(r.order) == 1 {
		col := r.cols[r.order[0]]
		where = append(where, fmt.Sprintf("s.%s BETWEEN %d AND %d", quoteIdent(col.name), lo, hi))
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + s.from()
	if len(r.order) == 0 {
		if p != nil && p.Offset != nil {
			r.offset = *p.Offset
		} else if p != nil && len(p.Order) > 0 {
			return nil, fmt.Errorf("the checkpoint was written for ordering columns (%s), the source now reads unordered: reset the checkpoint to read from the start", strings.Join(p.Order, ", "))
		}
		if r.offset > 0 {
			q += " OFFSET " + strconv.FormatInt(r.offset, 10)
		}
		r.sql = q
		return r, nil
	}
	orderNames := make([]string, len(r.order))
	orderExprs := make([]string, len(r.order))
	for i, at := range r.order {
		orderNames[i] = r.cols[at].name
		orderExprs[i] = "s." + quoteIdent(r.cols[at].name)
	}
	r.orderNames = orderNames
	// A first read of a table goes in physical order (initial.go); the
	// ordered read after its max is then set up as a retry of this run
	// would resume.
	var initial *posInitial
	switch {
	case p != nil && p.Initial != nil && (s.cfg.Mode != modeIncremental || !readsPhysically(l.rel)):
		return nil, fmt.Errorf("the checkpoint is that of a first read of a table in its physical order, and the source now reads %s: reset the checkpoint to read from the start", s.what())
	case p != nil && p.Initial != nil && p.Initial.File != l.rel.file:
		return nil, fmt.Errorf("the table was rewritten (VACUUM FULL, CLUSTER, ALTER TABLE) while its first read was under way: its rows moved, so the read cannot resume where it stopped; reset the checkpoint to read it again from the start")
	case p != nil && p.Initial != nil:
		in := *p.Initial
		initial = &in
	case p == nil && s.cfg.Mode == modeIncremental && readsPhysically(l.rel):
		max, ok, err := lastInOrder(ctx, c, s.from(), r.cols, r.order)
		if err != nil {
			return nil, err
		}
		if ok {
			initial = &posInitial{Max: max, File: l.rel.file}
		}
	}
	if initial != nil {
		p = &posJSON{V: posVersion, Run: env.RunID, N: r.n, Order: orderNames, Last: initial.Max}
		// Both parts select the ctid last, part 2 only so that the two
		// results have the same columns.
		r.cols = append(r.cols, column{name: "ctid", oid: oidTid, typeName: "tid", kind: kText})
		r.formats = append(r.formats, 1)
		sel = append(sel, "s.ctid")
		q = "SELECT " + strings.Join(sel, ", ") + " FROM " + s.from()
	}
	if p != nil && (len(p.Order) > 0 || p.Offset != nil) {
		if !slices.Equal(p.Order, orderNames) {
			return nil, fmt.Errorf("the checkpoint was written for ordering columns (%s), the source now orders by (%s): reset the checkpoint to read from the start",
				strings.Join(p.Order, ", "), strings.Join(orderNames, ", "))
		}
		for i, v := range p.Last {
			if col := r.cols[r.order[i]]; v.Type != col.typeName {
				return nil, fmt.Errorf("ordering column %q changed type from %s to %s since the checkpoint was written: reset the checkpoint to read from the start", col.name, v.Type, col.typeName)
			}
		}
		if s.cfg.Lookback > 0 && p.Run != env.RunID && p.Last[0].V != nil {
			// A later run: start lookback before the first cursor value.
			col := r.cols[r.order[0]]
			cond := fmt.Sprintf("s.%s >= ($%d - $%d::interval)", quoteIdent(col.name), len(r.params)+1, len(r.params)+2)
			if !col.notNull {
				cond = "(" + cond + " OR s." + quoteIdent(col.name) + " IS NULL)"
			}
			where = append(where, cond)
			r.params = append(r.params, []byte(*p.Last[0].V), []byte(strconv.FormatInt(time.Duration(s.cfg.Lookback).Microseconds(), 10)+" microseconds"))
			r.paramOIDs = append(r.paramOIDs, col.oid, 0)
		} else {
			cond, args, oids := afterCondition(r.cols, r.order, p.Last, len(r.params))
			where = append(where, cond)
			r.params = append(r.params, args...)
			r.paramOIDs = append(r.paramOIDs, oids...)
		}
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + strings.Join(orderExprs, ", ")
	r.sql = q
	if initial != nil {
		return r, r.startInitial(ctx, c, s.from(), sel, *initial)
	}
	if len(where) == 0 {
		if err := sortWholeTable(ctx, c, l, r.cols[r.order[0]].name); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// sortLimit is the largest table a read from its start sorts rather than
// reads through an index: the sort may spill that much to temporary files.
const sortLimit = 1 << 30

// sortWholeTable prepares the reader's session for a read of a whole table
// in its order. When the first ordering column is stored in an order
// unrelated to its values (its correlation, from the table's statistics,
// near 0, as an updated_at column is), an index scan fetches a heap page
// at random for each row, while a sequential scan and a sort read the
// table once: about three times faster here for a million rows. The
// planner, which costs cached random reads as cheap, would pick the index;
// the session (the reader's own) is told not to. A read that resumes, a
// table in its order, one without statistics or over sortLimit keep the
// planner's choice.
func sortWholeTable(ctx context.Context, c *pgconn.PgConn, l *layout, first string) error {
	if l.rel.oid == "" {
		return nil
	}
	rows, err := query(ctx, c, `SELECT s.correlation, pg_relation_size(c.oid) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = $2
		WHERE c.oid = $1::oid`, l.rel.oid, first)
	if err != nil || len(rows) != 1 || rows[0][0] == nil {
		return err
	}
	corr, err1 := strconv.ParseFloat(string(rows[0][0]), 64)
	size, err2 := strconv.ParseInt(string(rows[0][1]), 10, 64)
	if err1 != nil || err2 != nil || math.Abs(corr) > 0.5 || size > sortLimit {
		return nil
	}
	return exec(ctx, c, "SET enable_indexscan = off; SET enable_bitmapscan = off")
}

// afterCondition is the SQL condition "comes after last" in the order of
// ORDER BY c1, …, cn (ascending, NULLs last). With NOT NULL columns it is
// the row comparison (c1, …, cn) > ($1, …, $n), one index range; otherwise
// the disjunction over levels i of: equal on c1…c(i-1), after on ci, where
// "after" also admits NULL (sorted last) and nothing comes after a NULL.
func afterCondition(cols []column, order []int, last []posVal, argBase int) (string, [][]byte, []uint32) {
	simple := true
	for i, at := range order {
		if !cols[at].notNull || last[i].V == nil {
			simple = false
		}
	}
	var args [][]byte
	var oids []uint32
	arg := func(i int) string {
		args = append(args, []byte(*last[i].V))
		oids = append(oids, cols[order[i]].oid)
		return "$" + strconv.Itoa(argBase+len(args))
	}
	ident := func(i int) string { return "s." + quoteIdent(cols[order[i]].name) }
	if simple {
		if len(order) == 1 {
			return ident(0) + " > " + arg(0), args, oids
		}
		lhs := make([]string, len(order))
		rhs := make([]string, len(order))
		for i := range order {
			lhs[i] = ident(i)
			rhs[i] = arg(i)
		}
		return "(" + strings.Join(lhs, ", ") + ") > (" + strings.Join(rhs, ", ") + ")", args, oids
	}
	var levels []string
	for lv := range order {
		if last[lv].V == nil {
			continue // nothing sorts after NULL
		}
		var parts []string
		for i := 0; i < lv; i++ {
			if last[i].V == nil {
				parts = append(parts, ident(i)+" IS NULL")
			} else {
				parts = append(parts, ident(i)+" = "+arg(i))
			}
		}
		gt := ident(lv) + " > " + arg(lv)
		if !cols[order[lv]].notNull {
			gt = "(" + gt + " OR " + ident(lv) + " IS NULL)"
		}
		parts = append(parts, gt)
		levels = append(levels, "("+strings.Join(parts, " AND ")+")")
	}
	if len(levels) == 0 {
		return "false", args, oids
	}
	return "(" + strings.Join(levels, " OR ") + ")", args, oids
}
