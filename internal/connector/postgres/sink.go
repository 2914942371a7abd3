package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

// Sink modes.
const (
	modeAppend  = "append"
	modeUpsert  = "upsert"
	modeReplace = "replace"
)

// Names the sink gives to the objects it makes.
const (
	newSuffix  = "__backbone_new" // replace: the table being loaded
	stageName  = "backbone_stage" // upsert: the session's temporary table
	stageTable = "pg_temp." + stageName
	ordColumn  = "__backbone_order" // upsert: the row's place in its batch
)

type sinkConfig struct {
	DSN      string         `yaml:"dsn"`
	DBSchema string         `yaml:"db_schema"`
	Table    string         `yaml:"table"`
	Mode     string         `yaml:"mode"`
	Key      connector.List `yaml:"key"`
	Create   bool           `yaml:"create"`
}

var sinkSpec = connector.Spec{
	Name:      "postgres",
	BatchRows: sinkBatchRows,
	Summary:   "Write rows into a PostgreSQL table with COPY, with the checkpoints in the same transaction.",
	Doc: `Writes rows into a PostgreSQL table with the COPY protocol, in a transaction that also stores
the pipeline's checkpoints in the table backbone_checkpoints of the same schema (versioned in
backbone_meta): a crash at any instant neither loses nor duplicates a row.

mode append copies every row into the table. mode upsert copies the rows into a temporary
table, then moves them into the table with INSERT … ON CONFLICT (key) DO UPDATE; the table needs
a PRIMARY KEY or a UNIQUE index on exactly the key columns. A key repeated among the rows of one
statement keeps its last row, and only that row reaches the table (and its constraints).
mode replace loads the run's rows into a new table <table>__backbone_new, made LIKE the
table (columns, defaults, constraints, indexes, foreign keys, grants), and swaps it in place
of the table when the run commits, in one transaction: readers see the old rows until then and
never wait during the load. The swap needs a table that nothing else depends on: no view, no
foreign key pointing at it, no trigger, no row security, no partitions or inheritance, no
publication (the sink refuses such a table when it opens).

In every mode the batches stream into one COPY that stays open across them (up to 4 MiB of
rows, or the commit; in mode upsert one INSERT then moves them), so the server never waits for
the next statement. A row the
database refuses for its own sake (a constraint, a value its column type cannot read) is
rejected alone with PostgreSQL's message: the statement is undone to a savepoint, the row the
server names is refused (the rows are halved until it stands alone when the server names none,
as for the INSERT of an upsert), and the others are sent again, so every other row is written. Rows the
sink can judge itself are refused before they are sent, at no cost to the others: a string
longer than its varchar(n) or char(n) column, and a row that breaks a CHECK constraint made of
comparisons between an integer or numeric column and a number (qty <= 100, price > 0; on a
table without triggers). A lost connection, a server shutting down, a deadlock or a serialization
failure is transient: the batch is retried on a new connection. In modes append and upsert
the rows staged since the last commit are kept until it succeeds, so a retried commit stages
them again when the connection was lost, and a commit whose outcome the lost connection hid is
settled by asking the server about its transaction. Because of that, these modes commit
several batches at once (up to 32, within the pipeline's settings commit_interval and
commit_bytes): fewer, larger transactions, the checkpoints still in each.

With create: true a missing table is created from the records' schema: int bigint, float
double precision, decimal numeric, bool boolean, timestamp timestamptz, date date, bytes bytea,
json jsonb, string text. In mode upsert the key columns form the primary key.

Timestamps are written to timestamptz columns as instants, to timestamp columns as the wall
clock of the pipeline's zone (UTC by default).`,
	Fields: []connector.FieldSpec{
		dsnField,
		dbSchemaField,
		{Name: "table", Type: connector.TString, Required: true, Doc: "Table to write."},
		{Name: "mode", Type: connector.TEnum, Default: modeAppend, Enum: []string{modeAppend, modeUpsert, modeReplace}, Doc: "append, upsert (by key) or replace the table's rows."},
		{Name: "key", Type: connector.TList, Doc: "Key field(s) of mode upsert."},
		{Name: "create", Type: connector.TBool, Default: "false", Doc: "Create the table from the records' schema when missing."},
	},
	Example: `sink:
  type: postgres
  dsn: "${WAREHOUSE_DSN}"
  table: orders_enriched
  mode: upsert
  key: order_id`,
}

// sinkBatchRows is the batch size of an upsert, whose encoding also notes
// keys repeated within a batch: larger batches, fewer of them.
func sinkBatchRows(p connector.Params) int {
	cfg := sinkConfig{Mode: modeAppend}
	if p.Decode(&cfg) == nil && cfg.Mode == modeUpsert {
		return 4096
	}
	return 0
}

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{DBSchema: defaultDBSchema, Mode: modeAppend}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	srv, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("dsn"), "dsn: %v", err)
	}
	if strings.TrimSpace(cfg.DBSchema) == "" {
		return nil, connector.Errorf(p.FieldPos("db_schema"), "db_schema must name a schema")
	}
	if strings.TrimSpace(cfg.Table) == "" {
		return nil, connector.Errorf(p.FieldPos("table"), "table must name the table to write")
	}
	if strings.HasPrefix(strings.ToLower(cfg.Table), "backbone_") || strings.HasSuffix(cfg.Table, newSuffix) {
		return nil, connector.Errorf(p.FieldPos("table"), "table %q: names starting with backbone_ or ending in %s are reserved", cfg.Table, newSuffix)
	}
	if n := len(cfg.Table) + len(newSuffix); cfg.Mode == modeReplace && n > 63 {
		return nil, connector.Errorf(p.FieldPos("table"), "table %q: mode replace needs a name of at most %d bytes (it loads %s%s)", cfg.Table, 63-len(newSuffix), cfg.Table, newSuffix)
	}
	switch cfg.Mode {
	case modeAppend, modeReplace:
		if len(cfg.Key) > 0 {
			return nil, connector.Errorf(p.FieldPos("key"), "key is only used in mode upsert")
		}
	case modeUpsert:
		if len(cfg.Key) == 0 {
			return nil, connector.Errorf(p.FieldPos("mode"), "mode upsert needs a key: the field(s) that identify a row")
		}
	default:
		return nil, connector.Errorf(p.FieldPos("mode"), "mode %q: want append, upsert or replace", cfg.Mode)
	}
	if err := sqlkit.CheckNames(p, "key", cfg.Key); err != nil {
		return nil, err
	}
	srv.searchPath(cfg.DBSchema)
	return &pgSink{cfg: cfg, srv: srv}, nil
}

// pgSink is the postgres sink.
type pgSink struct {
	cfg sinkConfig
	srv *server
}

func (s *pgSink) where() string {
	return fmt.Sprintf("postgres: %s, %s", s.srv.where, what(s.cfg.DBSchema, s.cfg.Table, ""))
}

func (s *pgSink) wrap(err error, c *pgconn.PgConn) error {
	return fmt.Errorf("%s: %w", s.where(), classify(s.srv.redact(err), c))
}

// LoadCheckpoints implements connector.CheckpointLoader.
func (s *pgSink) LoadCheckpoints(ctx context.Context, env *connector.Env) (map[string]connector.Checkpoint, error) {
	c, err := s.srv.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	cps, err := loadCheckpoints(ctx, c, s.cfg.DBSchema, env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s, checkpoints in schema %q: %w", s.srv.where, s.cfg.DBSchema, classify(s.srv.redact(err), c))
	}
	return cps, nil
}

// Check verifies that the server answers, that the table exists (or may be
// created), that the key columns exist and form a unique key in mode
// upsert, that mode replace can swap the table, and that existing
// checkpoints are of a known version. It writes nothing.
func (s *pgSink) Check(ctx context.Context, env *connector.Env) error {
	c, err := s.srv.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	if meta, cps, err := checkpointTablesExist(ctx, c, s.cfg.DBSchema); err != nil {
		return s.wrap(err, c)
	} else if cps {
		if err := checkVersion(ctx, c, s.cfg.DBSchema, meta); err != nil {
			return s.wrap(err, c)
		}
	}
	t, err := s.inspect(ctx, c)
	if err != nil {
		return s.wrap(err, c)
	}
	if !t.exists {
		if !s.cfg.Create {
			return s.wrap(errNoTable, c)
		}
		return nil
	}
	var missing []string
	for _, k := range s.cfg.Key {
		if _, ok := findColumn(t.cols, k); !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return s.wrap(fmt.Errorf("no column for key field(s) %s (its columns: %s)", strings.Join(missing, ", "), columnNames(t.cols)), c)
	}
	return nil
}

var errNoTable = fmt.Errorf("table does not exist (set create: true to create it from the records' schema)")

// tableInfo is what the sink learns about its table.
type tableInfo struct {
	exists bool
	rel    relation
	cols   []column
}

// inspect describes the table and checks what the mode needs of it.
func (s *pgSink) inspect(ctx context.Context, c *pgconn.PgConn) (*tableInfo, error) {
	t := &tableInfo{}
	rel, ok, err := lookupRelation(ctx, c, s.cfg.DBSchema, s.cfg.Table)
	if err != nil || !ok {
		return t, err
	}
	t.exists, t.rel = true, rel
	switch {
	case rel.kind == "p" && s.cfg.Mode == modeReplace:
		return nil, fmt.Errorf("mode replace cannot swap a partitioned table")
	case rel.kind != "r" && rel.kind != "p":
		return nil, fmt.Errorf("%s is not a table (relkind %s)", qualified(s.cfg.DBSchema, s.cfg.Table), rel.kind)
	}
	if t.cols, err = describe(ctx, c, qualified(s.cfg.DBSchema, s.cfg.Table)); err != nil {
		return nil, err
	}
	if s.cfg.Mode == modeUpsert {
		var keyCols []string
		for _, k := range s.cfg.Key {
			i, ok := findColumn(t.cols, k)
			if !ok {
				return nil, fmt.Errorf("no column for key field %q (its columns: %s)", k, columnNames(t.cols))
			}
			keyCols = append(keyCols, t.cols[i].name)
		}
		keys, err := uniqueKeys(ctx, c, rel.oid)
		if err != nil {
			return nil, err
		}
		found := false
		for _, k := range keys {
			if len(k) == len(keyCols) && !slices.ContainsFunc(k, func(c string) bool { return !slices.Contains(keyCols, c) }) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("mode upsert needs a PRIMARY KEY or a UNIQUE index on exactly (%s)", strings.Join(keyCols, ", "))
		}
	}
	if s.cfg.Mode == modeReplace {
		if err := replaceBlockers(ctx, c, rel.oid); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// replaceBlockers refuses a table that a swap would break.
func replaceBlockers(ctx context.Context, c *pgconn.PgConn, relOID string) error {
	rows, err := query(ctx, c, `
SELECT 'a view depends on it: ' || string_agg(DISTINCT r.ev_class::regclass::text, ', ')
  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
 WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::oid AND r.ev_class <> $1::oid
HAVING count(*) > 0
UNION ALL
SELECT 'a foreign key points at it: ' || string_agg(conname || ' on ' || conrelid::regclass::text, ', ')
  FROM pg_constraint WHERE contype = 'f' AND confrelid = $1::oid HAVING count(*) > 0
UNION ALL
SELECT 'it has triggers: ' || string_agg(tgname, ', ') FROM pg_trigger WHERE tgrelid = $1::oid AND NOT tgisinternal HAVING count(*) > 0
UNION ALL
SELECT 'it has row level security' FROM pg_class WHERE oid = $1::oid AND relrowsecurity
UNION ALL
SELECT 'it takes part in inheritance' FROM pg_inherits WHERE inhrelid = $1::oid OR inhparent = $1::oid HAVING count(*) > 0
UNION ALL
SELECT 'it is published: ' || string_agg(p.pubname, ', ') FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
 WHERE pr.prrelid = $1::oid HAVING count(*) > 0`, relOID)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	var why []string
	for _, r := range rows {
		why = append(why, text(r[0]))
	}
	return fmt.Errorf("mode replace swaps the table for a new one at commit, which this table does not allow: %s", strings.Join(why, "; "))
}

// Open implements connector.Sink.
func (s *pgSink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	if schema == nil || schema.Len() == 0 {
		return nil, fmt.Errorf("%s: the records have no fields to write", s.where())
	}
	for _, k := range s.cfg.Key {
		if _, ok := schema.Index(k); !ok {
			return nil, fmt.Errorf("%s: key field %q is not among the record's fields (%s)", s.where(), k, strings.Join(schema.Names(), ", "))
		}
	}
	c, err := s.srv.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	w := &writer{s: s, conn: c, schema: schema, pipeline: env.Pipeline, loc: env.Location, nc: schema.Len(), streamCap: streamBytes}
	if w.loc == nil {
		w.loc = timeUTC
	}
	if err := w.setup(ctx); err != nil {
		w.Close()
		return nil, s.wrap(err, c)
	}
	return w, nil
}

// createSQL is the CREATE TABLE of a table for schema's records.
func createSQL(name string, schema *record.Schema, key []string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + name + " (")
	for i, f := range schema.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(f.Name) + " " + columnType(f.Type))
		if slices.Contains(key, f.Name) {
			b.WriteString(" NOT NULL")
		}
	}
	if len(key) > 0 {
		b.WriteString(", PRIMARY KEY (" + quoteIdents("", key) + ")")
	}
	b.WriteString(")")
	return b.String()
}

// columnType is the type of a column the sink creates for t.
func columnType(t record.Type) string {
	switch t {
	case record.Int:
		return "bigint"
	case record.Float:
		return "double precision"
	case record.Decimal:
		return "numeric"
	case record.Bool:
		return "boolean"
	case record.Timestamp:
		return "timestamptz"
	case record.Date:
		return "date"
	case record.Bytes:
		return "bytea"
	case record.JSON:
		return "jsonb"
	}
	return "text"
}
