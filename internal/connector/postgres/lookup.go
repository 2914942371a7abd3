package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

// Cache modes of the lookup.
const (
	cachePreload = "preload"
	cacheQuery   = "query"
)

type lookupConfig struct {
	DSN      string              `yaml:"dsn"`
	DBSchema string              `yaml:"db_schema"`
	Table    string              `yaml:"table"`
	Query    string              `yaml:"query"`
	Key      connector.List      `yaml:"key"`
	Schema   connector.SchemaDef `yaml:"schema"`
	Cache    cacheConfig         `yaml:"cache"`
	Timeout  connector.Duration  `yaml:"timeout"`
	Retries  int                 `yaml:"retries"`
	Breaker  breakerConfig       `yaml:"breaker"`
	Pool     int                 `yaml:"pool"`
}

type cacheConfig struct {
	Mode    string             `yaml:"mode"`
	Refresh connector.Duration `yaml:"refresh"`
	Size    int                `yaml:"size"`
	TTL     connector.Duration `yaml:"ttl"`
	MissTTL connector.Duration `yaml:"miss_ttl"`
}

type breakerConfig struct {
	Failures int                `yaml:"failures"`
	Cooldown connector.Duration `yaml:"cooldown"`
}

var lookupSpec = connector.Spec{
	Name:    "postgres",
	Summary: "Reference data from a PostgreSQL table or query: preloaded into memory, or queried by key with a cache.",
	Doc: `Answers lookups by key from a table or the result of a query.

cache.mode preload (the default) reads every row into memory when the run starts, indexed by
key (a later row with the same key replaces an earlier one), and reads it again every
cache.refresh when set, swapping the new index in at once; a failed refresh keeps the current
one and is logged. A row with a value that does not convert to its field's type is left out
and logged: records looking up its key follow the enrichment's missing policy.

cache.mode query asks the database for each key not in the cache (SELECT … WHERE key = $1 …
LIMIT 1) on a small pool of connections, and keeps the answers in an LRU cache of cache.size
entries: a row for cache.ttl, a miss for cache.miss_ttl (0: misses are not kept). Concurrent
lookups of one key share one query. Each query is bounded by timeout and retried (retries
times, exponential backoff with jitter) when the connection fails or times out. After
breaker.failures consecutive failures the circuit opens: lookups fail at once, without
touching the database, until breaker.cooldown has passed; then one lookup tries again and
closes the circuit when it succeeds. A lookup that cannot be answered is an error, never a
silent miss: the enrichment fails the run or waits.

Without a schema the fields are the columns, typed as for the postgres source.`,
	Fields: []connector.FieldSpec{
		dsnField,
		dbSchemaField,
		{Name: "table", Type: connector.TString, Doc: "Table (or view) to read. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read, used as a subquery. Exactly one of table and query."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Field(s) that lookups give, in order."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from the database."},
		{Name: "cache", Type: connector.TObject, Doc: "How rows are kept.", Fields: []connector.FieldSpec{
			{Name: "mode", Type: connector.TEnum, Default: cachePreload, Enum: []string{cachePreload, cacheQuery}, Doc: "preload reads every row into memory (only the key and the fields the steps read); query asks the database per key."},
			{Name: "refresh", Type: connector.TDuration, Doc: "preload: read the rows again this often (default: never during a run)."},
			{Name: "size", Type: connector.TInt, Default: "10000", Doc: "query: keys kept in the LRU cache."},
			{Name: "ttl", Type: connector.TDuration, Default: "10m", Doc: "query: how long a found row is kept."},
			{Name: "miss_ttl", Type: connector.TDuration, Default: "1m", Doc: "query: how long a key without a row is kept (0: not kept)."},
		}},
		{Name: "timeout", Type: connector.TDuration, Default: "2s", Doc: "query: bound of one database query."},
		{Name: "retries", Type: connector.TInt, Default: "2", Doc: "query: retries of a query that failed on the connection or timed out."},
		{Name: "breaker", Type: connector.TObject, Doc: "query: the circuit breaker.", Fields: []connector.FieldSpec{
			{Name: "failures", Type: connector.TInt, Default: "5", Doc: "Consecutive failed lookups that open the circuit."},
			{Name: "cooldown", Type: connector.TDuration, Default: "30s", Doc: "How long the circuit stays open before one lookup tries again."},
		}},
		{Name: "pool", Type: connector.TInt, Default: "4", Doc: "query: connections at most."},
	},
	Example: `lookups:
  customers:
    type: postgres
    dsn: "${CRM_DSN}"
    table: customers
    key: customer_id
    cache: { mode: preload, refresh: 10m }`,
}

func newLookup(p connector.Params) (connector.Lookup, error) {
	cfg := lookupConfig{
		DBSchema: defaultDBSchema,
		Cache:    cacheConfig{Mode: cachePreload, Size: 10000, TTL: connector.Duration(10 * time.Minute), MissTTL: connector.Duration(time.Minute)},
		Timeout:  connector.Duration(2 * time.Second),
		Retries:  2,
		Breaker:  breakerConfig{Failures: 5, Cooldown: connector.Duration(30 * time.Second)},
		Pool:     4,
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	srv, err := checkTarget(p, cfg.DSN, cfg.DBSchema, cfg.Table, cfg.Query)
	if err != nil {
		return nil, err
	}
	if len(cfg.Key) == 0 {
		return nil, connector.Errorf(p.FieldPos("key"), "key is required: the field(s) that lookups give")
	}
	if err := sqlkit.CheckNames(p, "key", cfg.Key); err != nil {
		return nil, err
	}
	switch {
	case cfg.Cache.Mode != cachePreload && cfg.Cache.Mode != cacheQuery:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.mode %q: want preload or query", cfg.Cache.Mode)
	case cfg.Cache.Refresh < 0 || cfg.Cache.TTL < 0 || cfg.Cache.MissTTL < 0:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache durations must not be negative")
	case cfg.Cache.Size < 1:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.size must be positive, got %d", cfg.Cache.Size)
	case cfg.Timeout <= 0:
		return nil, connector.Errorf(p.FieldPos("timeout"), "timeout must be positive")
	case cfg.Retries < 0 || cfg.Retries > 20:
		return nil, connector.Errorf(p.FieldPos("retries"), "retries must be between 0 and 20, got %d", cfg.Retries)
	case cfg.Breaker.Failures < 1 || cfg.Breaker.Cooldown < 0:
		return nil, connector.Errorf(p.FieldPos("breaker"), "breaker.failures must be positive and breaker.cooldown not negative")
	case cfg.Pool < 1 || cfg.Pool > 100:
		return nil, connector.Errorf(p.FieldPos("pool"), "pool must be between 1 and 100, got %d", cfg.Pool)
	}
	srv.searchPath(cfg.DBSchema)
	l := &pgLookup{cfg: cfg, srv: srv, declared: cfg.Schema.Schema()}
	if l.declared != nil {
		for _, k := range cfg.Key {
			if _, ok := l.declared.Index(k); !ok {
				return nil, connector.Errorf(p.FieldPos("key"), "key field %q is not in the schema (%s)", k, strings.Join(l.declared.Names(), ", "))
			}
		}
		return &schemedLookup{l}, nil
	}
	return l, nil
}

// pgLookup is the postgres lookup.
type pgLookup struct {
	cfg      lookupConfig
	srv      *server
	declared *record.Schema
}

// schemedLookup is a lookup with a declared schema.
type schemedLookup struct{ *pgLookup }

// Schema implements connector.Schemer.
func (l *schemedLookup) Schema() *record.Schema { return l.declared }

func (l *pgLookup) wrap(err error, c *pgconn.PgConn) error {
	return fmt.Errorf("postgres: lookup %s, %s: %w", l.srv.where, what(l.cfg.DBSchema, l.cfg.Table, l.cfg.Query), classify(l.srv.redact(err), c))
}

// shape is the result a lookup reads: its fields and their columns.
type shape struct {
	schema  *record.Schema
	fields  []fieldReader
	cols    []column // of each field
	formats []int16
	keyIdx  []int // field index of each key
}

func (l *pgLookup) shape(ctx context.Context, c *pgconn.PgConn) (*shape, error) {
	cols, err := describe(ctx, c, fromClause(l.cfg.DBSchema, l.cfg.Table, l.cfg.Query))
	if err != nil {
		return nil, err
	}
	sh := &shape{}
	var fields []record.Field
	if l.declared != nil {
		var missing []string
		for _, f := range l.declared.Fields() {
			i, ok := findColumn(cols, f.Name)
			if !ok {
				missing = append(missing, f.Name)
				continue
			}
			sh.cols = append(sh.cols, cols[i])
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("no column %s (the columns: %s)", strings.Join(missing, ", "), columnNames(cols))
		}
		sh.schema = l.declared
	} else {
		sh.cols = cols
		for _, c := range cols {
			fields = append(fields, record.Field{Name: c.name, Type: c.kind.recordType()})
		}
		if sh.schema, err = record.NewSchema(fields...); err != nil {
			return nil, fmt.Errorf("columns: %w (declare a schema, or rename the columns)", err)
		}
	}
	for i, col := range sh.cols {
		f := sh.schema.Field(i)
		sh.fields = append(sh.fields, fieldReader{name: f.Name, kind: col.kind, ftype: f.Type})
		sh.formats = append(sh.formats, col.kind.format())
	}
	for _, k := range l.cfg.Key {
		i, ok := sh.schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("key field %q is not among the columns (%s)", k, strings.Join(sh.schema.Names(), ", "))
		}
		sh.keyIdx = append(sh.keyIdx, i)
	}
	return sh, nil
}

func (sh *shape) selectList() string {
	names := make([]string, len(sh.cols))
	for i, c := range sh.cols {
		names[i] = c.name
	}
	return quoteIdents("s.", names)
}

// decodeRow decodes one result row.
func (sh *shape) decodeRow(vals [][]byte, loc *time.Location) (record.Row, error) {
	r := &reader{fields: sh.fields, loc: loc}
	row := make(record.Row, len(sh.fields))
	for i := range sh.fields {
		if vals[i] == nil {
			continue
		}
		v, err := r.value(&sh.fields[i], vals[i], "", 0, 0)
		if err != nil {
			return nil, err
		}
		row[i] = v
	}
	return row, nil
}

// Check verifies that the server answers and that the table or query, the
// key and the declared fields exist. It reads no rows.
func (l *pgLookup) Check(ctx context.Context, env *connector.Env) error {
	c, err := l.srv.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	if _, err := l.shape(ctx, c); err != nil {
		return l.wrap(err, c)
	}
	return nil
}

// Open implements connector.Lookup.
func (l *pgLookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	return l.open(ctx, env, nil)
}

// OpenFields implements connector.FieldLoader: a preload selects only the
// key fields and fields (a query-mode table reads whole rows).
func (l *pgLookup) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	return l.open(ctx, env, fields)
}

// open connects, and loads only the key fields and fields unless fields is
// nil.
func (l *pgLookup) open(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	c, err := l.srv.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sh, err := l.shape(ctx, c)
	if err != nil {
		closeConn(c)
		return nil, l.wrap(err, c)
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	if l.cfg.Cache.Mode == cacheQuery {
		return newQueryTable(l, sh, c, loc, env.Logger), nil
	}
	t := &preloadTable{l: l, sh: sh, loc: loc, log: env.Logger, only: fields}
	ix, err := t.load(ctx, c)
	closeConn(c)
	if err != nil {
		return nil, l.wrap(err, nil)
	}
	t.ix.Store(ix)
	if l.cfg.Cache.Refresh > 0 {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		t.cancel = cancel
		t.wg.Go(func() { t.refreshLoop(rctx, time.Duration(l.cfg.Cache.Refresh)) })
	}
	return t, nil
}

// preloadTable holds every row in an index, swapped whole by a refresh.
type preloadTable struct {
	l   *pgLookup
	sh  *shape
	loc *time.Location
	log *slog.Logger
	ix  atomic.Pointer[connector.Index]
	// only, when not nil, is the fields loaded besides the keys: the
	// others are selected as NULL.
	only []string

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	reloaded func(error) // tests: called after each refresh
}

// load reads every row into a new index.
func (t *preloadTable) load(ctx context.Context, c *pgconn.PgConn) (*connector.Index, error) {
	ix, err := connector.NewIndex(t.sh.schema, t.l.cfg.Key)
	if err != nil {
		return nil, err
	}
	if t.only != nil {
		ix.Only(t.only)
	}
	names := make([]string, len(t.sh.cols))
	for i, col := range t.sh.cols {
		names[i] = col.name
	}
	rr := c.ExecParams(ctx, "SELECT "+sqlkit.SelectLoaded(ix, quoteIdent, "s.", names)+" FROM "+fromClause(t.l.cfg.DBSchema, t.l.cfg.Table, t.l.cfg.Query), nil, nil, nil, t.sh.formats)
	var n, bad int64
	for rr.NextRow() {
		n++
		row, err := t.sh.decodeRow(rr.Values(), t.loc)
		if err != nil {
			bad++
			if t.log != nil && bad <= 10 {
				t.log.Warn("postgres lookup: row left out", "lookup", what(t.l.cfg.DBSchema, t.l.cfg.Table, t.l.cfg.Query), "row", n, "error", err.Error())
			}
			continue
		}
		ix.Add(row)
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	if bad > 0 && t.log != nil {
		t.log.Warn("postgres lookup: rows left out because a value does not convert", "lookup", what(t.l.cfg.DBSchema, t.l.cfg.Table, t.l.cfg.Query), "rows", bad, "of", n)
	}
	return ix, nil
}

// reload reads the rows again and swaps the new index in; on failure the
// current index stays.
func (t *preloadTable) reload(ctx context.Context) error {
	c, err := t.l.srv.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn(c)
	ix, err := t.load(ctx, c)
	if err != nil {
		return t.l.wrap(err, c)
	}
	t.ix.Store(ix)
	return nil
}

func (t *preloadTable) refreshLoop(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := t.reload(ctx)
		if err != nil && ctx.Err() == nil && t.log != nil {
			t.log.Warn("postgres lookup: refresh failed, keeping the rows read before", "error", err.Error())
		}
		t.mu.Lock()
		hook := t.reloaded
		t.mu.Unlock()
		if hook != nil {
			hook(err)
		}
	}
}

// Schema implements connector.Table.
func (t *preloadTable) Schema() *record.Schema { return t.sh.schema }

// Keys implements connector.Table.
func (t *preloadTable) Keys() []string { return t.l.cfg.Key }

// Get implements connector.Table.
func (t *preloadTable) Get(ctx context.Context, key []any) (record.Row, bool, error) {
	return t.ix.Load().Get(ctx, key)
}

// Preloaded implements connector.Preloaded: enrich and lookup() read the
// index of the last load field by field.
func (t *preloadTable) Preloaded() *connector.Index { return t.ix.Load() }

// Close implements connector.Table.
func (t *preloadTable) Close() error {
	if t.cancel != nil {
		t.cancel()
		t.wg.Wait()
	}
	return nil
}

// errCircuitOpen is returned by lookups while the circuit is open.
var errCircuitOpen = errors.New("circuit open after repeated failures: not asking the database until the cooldown has passed")
