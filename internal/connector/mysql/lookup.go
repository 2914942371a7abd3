package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit"
	"github.com/backbone-etl/backbone/internal/record"
)

// Lookup cache modes.
const (
	cachePreload = "preload"
	cacheQuery   = "query"
)

type lookupConfig struct {
	DSN     string              `yaml:"dsn"`
	Table   string              `yaml:"table"`
	Query   string              `yaml:"query"`
	Key     connector.List      `yaml:"key"`
	Schema  connector.SchemaDef `yaml:"schema"`
	Cache   cacheConfig         `yaml:"cache"`
	Timeout connector.Duration  `yaml:"timeout"`
	Retries int                 `yaml:"retries"`
	Backoff connector.Duration  `yaml:"backoff"`
	Breaker breakerConfig       `yaml:"breaker"`
}

type cacheConfig struct {
	Mode        string             `yaml:"mode"`
	Refresh     connector.Duration `yaml:"refresh"`
	Size        int                `yaml:"size"`
	TTL         connector.Duration `yaml:"ttl"`
	NegativeTTL connector.Duration `yaml:"negative_ttl"`
}

type breakerConfig struct {
	Failures int                `yaml:"failures"`
	Cooldown connector.Duration `yaml:"cooldown"`
}

func defaultLookupConfig() lookupConfig {
	return lookupConfig{
		Cache: cacheConfig{
			Mode:        cachePreload,
			Size:        10000,
			TTL:         connector.Duration(5 * time.Minute),
			NegativeTTL: connector.Duration(time.Minute),
		},
		Timeout: connector.Duration(5 * time.Second),
		Retries: 2,
		Backoff: connector.Duration(100 * time.Millisecond),
		Breaker: breakerConfig{Failures: 5, Cooldown: connector.Duration(30 * time.Second)},
	}
}

var lookupSpec = connector.Spec{
	Name:    "mysql",
	Summary: "Reference data from a table or a query of MySQL or MariaDB, preloaded or queried by key with a cache.",
	Doc: `Looks up rows of a table or of a query's result by key (one or more columns).

cache.mode preload reads every row into memory when the run starts, indexed by key (a later
row with the same key replaces an earlier one), and reads them again every cache.refresh in
the background, swapping the new index in at once; a failed refresh keeps the old rows and is
logged. A row with a value that does not convert to its field's type is left out and logged.

cache.mode query asks the database for each key not in the cache
(SELECT … WHERE k1 = ? AND k2 = ? LIMIT 1) and keeps the answer in an LRU cache of cache.size
keys for cache.ttl; a key the table does not have is remembered as missing for
cache.negative_ttl. Concurrent lookups of one key share one query. Each query is bounded by
timeout and retried up to retries times on a connection failure or a timeout, after
exponential backoff with jitter. After breaker.failures lookups in a row failed, the circuit
opens: lookups fail at once for breaker.cooldown, then one lookup probes the database and
closes it again when it succeeds. When the database cannot answer, a lookup returns an error
(the enrichment then fails the run or lets the record wait), never a silent miss.

Without a schema the fields are the columns, typed as for the mysql source. Key values are
converted to their fields' types first, so the text "42" finds the integer 42.`,
	Fields: []connector.FieldSpec{
		{Name: "dsn", Type: connector.TString, Required: true, Secret: true, Doc: "user:password@tcp(host:port)/database?options, or mysql://user:password@host:port/database?options."},
		{Name: "table", Type: connector.TString, Doc: "Table (or view) of the dsn's database. Exactly one of table and query."},
		{Name: "query", Type: connector.TString, Doc: "SELECT to read, used as a derived table. Exactly one of table and query."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Field(s) that lookups give, in order."},
		{Name: "schema", Type: connector.TSchema, Doc: "Fields and types to read; default: every column, typed from its database type."},
		{Name: "cache", Type: connector.TObject, Doc: "How rows are held.", Fields: []connector.FieldSpec{
			{Name: "mode", Type: connector.TEnum, Default: cachePreload, Enum: []string{cachePreload, cacheQuery}, Doc: "preload: every row in memory (only the key and the fields the steps read); query: ask the database per key, with an LRU cache."},
			{Name: "refresh", Type: connector.TDuration, Doc: "preload: read the rows again this often; default: never within a run."},
			{Name: "size", Type: connector.TInt, Default: "10000", Doc: "query: keys kept in the cache."},
			{Name: "ttl", Type: connector.TDuration, Default: "5m", Doc: "query: how long a found row is kept."},
			{Name: "negative_ttl", Type: connector.TDuration, Default: "1m", Doc: "query: how long a missing key is remembered as missing."},
		}},
		{Name: "timeout", Type: connector.TDuration, Default: "5s", Doc: "query: bound of one query."},
		{Name: "retries", Type: connector.TInt, Default: "2", Doc: "query: retries of a query after a connection failure or a timeout."},
		{Name: "backoff", Type: connector.TDuration, Default: "100ms", Doc: "query: wait before the first retry; it doubles with each retry, with jitter."},
		{Name: "breaker", Type: connector.TObject, Doc: "query: circuit breaker.", Fields: []connector.FieldSpec{
			{Name: "failures", Type: connector.TInt, Default: "5", Doc: "Failed lookups in a row that open the circuit."},
			{Name: "cooldown", Type: connector.TDuration, Default: "30s", Doc: "How long the circuit stays open before one lookup probes the database."},
		}},
	},
	Example: `lookups:
  customers:
    type: mysql
    dsn: ${CRM_DSN}
    table: customers
    key: customer_id
    cache: {mode: query, size: 100000, ttl: 10m}
    timeout: 2s
    retries: 3`,
}

func newLookup(p connector.Params) (connector.Lookup, error) {
	cfg := defaultLookupConfig()
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
	if len(cfg.Key) == 0 {
		return nil, connector.Errorf(p.FieldPos("key"), "key is required: the field(s) that lookups give")
	}
	if err := sqlkit.CheckNames(p, "key", cfg.Key); err != nil {
		return nil, err
	}
	switch cfg.Cache.Mode {
	case cachePreload, cacheQuery:
	default:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.mode %q: want preload or query", cfg.Cache.Mode)
	}
	switch {
	case cfg.Cache.Refresh < 0:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.refresh must not be negative")
	case cfg.Cache.Size < 1:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.size must be positive, got %d", cfg.Cache.Size)
	case cfg.Cache.TTL < 0 || cfg.Cache.NegativeTTL < 0:
		return nil, connector.Errorf(p.FieldPos("cache"), "cache.ttl and cache.negative_ttl must not be negative")
	case cfg.Timeout <= 0:
		return nil, connector.Errorf(p.FieldPos("timeout"), "timeout must be positive")
	case cfg.Retries < 0:
		return nil, connector.Errorf(p.FieldPos("retries"), "retries must not be negative")
	case cfg.Backoff < 0:
		return nil, connector.Errorf(p.FieldPos("backoff"), "backoff must not be negative")
	case cfg.Breaker.Failures < 1:
		return nil, connector.Errorf(p.FieldPos("breaker"), "breaker.failures must be positive, got %d", cfg.Breaker.Failures)
	case cfg.Breaker.Cooldown < 0:
		return nil, connector.Errorf(p.FieldPos("breaker"), "breaker.cooldown must not be negative")
	}
	l := &lookup{cfg: cfg, srv: srv, declared: cfg.Schema.Schema()}
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

type lookup struct {
	cfg      lookupConfig
	srv      *server
	declared *record.Schema
}

// schemedLookup is a lookup with a declared schema.
type schemedLookup struct{ *lookup }

// Schema implements connector.Schemer.
func (l *schemedLookup) Schema() *record.Schema { return l.declared }

func (l *lookup) what() string { return what(l.cfg.Table, l.cfg.Query) }

// Open implements connector.Lookup: it loads the rows (preload) or
// prepares the query by key.
func (l *lookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	return l.openFields(ctx, env, nil)
}

// OpenFields implements connector.FieldLoader: a preload selects only the
// key fields and fields (a query-mode table reads whole rows).
func (l *lookup) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	return l.openFields(ctx, env, fields)
}

// openFields loads only the key fields and fields unless fields is nil.
func (l *lookup) openFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	conns := 1
	if l.cfg.Cache.Mode == cacheQuery {
		conns = 4
	}
	db, err := l.srv.connect(ctx, conns)
	if err != nil {
		return nil, fmt.Errorf("mysql: lookup: %w", err)
	}
	t, err := l.open(ctx, env, db, fields)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: lookup %s, %s: %w", l.srv.where, l.what(), classify(ctx, l.srv.redact(err)))
	}
	return t, nil
}

func (l *lookup) open(ctx context.Context, env *connector.Env, db *sql.DB, only []string) (connector.Table, error) {
	cols, err := describe(ctx, db, l.cfg.Table, l.cfg.Query)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: sourceConfig{Table: l.cfg.Table, Query: l.cfg.Query}, declared: l.declared}
	schema, fields, err := src.resolveFields(cols, nil)
	if err != nil {
		return nil, err
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	b := base{l: l, db: db, schema: schema, fields: fields, loc: loc, logger: env.Logger}
	for _, k := range l.cfg.Key {
		i, ok := schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("key field %q is not among the fields (%s)", k, strings.Join(schema.Names(), ", "))
		}
		b.keyIdx = append(b.keyIdx, i)
	}
	b.selectSQL = "SELECT " + b.selectList() + " FROM " + fromClause(l.cfg.Table, l.cfg.Query)
	if l.cfg.Cache.Mode == cacheQuery {
		return newQueryTable(ctx, b)
	}
	b.only = only
	return newPreloadTable(ctx, b)
}

// base is what both kinds of tables share.
type base struct {
	l         *lookup
	db        *sql.DB
	schema    *record.Schema
	fields    []field
	keyIdx    []int
	loc       *time.Location
	logger    *slog.Logger
	selectSQL string
	// only, for a preload of some fields, is those besides the keys: the
	// others are selected as NULL. nil when all are loaded.
	only []string
}

func (b *base) selectList() string { return quoteIdents("s.", b.names()) }

// names are the columns of the fields, in order.
func (b *base) names() []string {
	names := make([]string, len(b.fields))
	for i, f := range b.fields {
		names[i] = f.col.name
	}
	return names
}

// Schema implements connector.Table.
func (b *base) Schema() *record.Schema { return b.schema }

// Keys implements connector.Table.
func (b *base) Keys() []string { return b.l.cfg.Key }

func (b *base) warn(msg string, args ...any) {
	if b.logger != nil {
		b.logger.Warn(msg, append([]any{"lookup", b.l.what()}, args...)...)
	}
}

// scanRow scans the current row of rows and converts it.
func (b *base) scanRow(rows *sql.Rows, raws []sql.RawBytes, ifaces, ptrs []any) (record.Row, error) {
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	row := make(record.Row, len(b.fields))
	for i := range b.fields {
		v, err := convertField(&b.fields[i], b.schema.Field(i).Name, raws[i], ifaces[i], b.loc)
		if err != nil {
			return nil, err
		}
		row[i] = v
	}
	return row, nil
}

// scanTargets are the destinations of one row of the fields.
func (b *base) scanTargets() ([]sql.RawBytes, []any, []any) {
	raws := make([]sql.RawBytes, len(b.fields))
	ifaces := make([]any, len(b.fields))
	ptrs := make([]any, len(b.fields))
	for i, f := range b.fields {
		if f.col.rawBytes() {
			ptrs[i] = &raws[i]
		} else {
			ptrs[i] = &ifaces[i]
		}
	}
	return raws, ifaces, ptrs
}

// preloadTable holds every row in an index, swapped whole by refreshes.
type preloadTable struct {
	base
	ix     atomic.Pointer[connector.Index]
	cancel context.CancelFunc
	wg     sync.WaitGroup
	loads  atomic.Int64 // completed loads, for tests
}

func newPreloadTable(ctx context.Context, b base) (*preloadTable, error) {
	t := &preloadTable{base: b}
	ix, err := t.load(ctx)
	if err != nil {
		return nil, err
	}
	t.ix.Store(ix)
	t.loads.Add(1)
	if every := time.Duration(b.l.cfg.Cache.Refresh); every > 0 {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		t.cancel = cancel
		t.wg.Add(1)
		go t.refresh(rctx, every)
	}
	return t, nil
}

// refresh reloads the index every period until Close.
func (t *preloadTable) refresh(ctx context.Context, every time.Duration) {
	defer t.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ix, err := t.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.warn("mysql lookup: refresh failed, keeping the rows loaded before", "error", t.l.srv.redact(err).Error())
			}
			continue
		}
		t.ix.Store(ix)
		t.loads.Add(1)
	}
}

func (t *preloadTable) load(ctx context.Context) (*connector.Index, error) {
	ix, err := connector.NewIndex(t.schema, t.l.cfg.Key)
	if err != nil {
		return nil, err
	}
	if t.only != nil {
		ix.Only(t.only)
	}
	rows, err := t.db.QueryContext(ctx, "SELECT "+sqlkit.SelectLoaded(ix, quoteIdent, "s.", t.names())+" FROM "+fromClause(t.l.cfg.Table, t.l.cfg.Query))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	raws, ifaces, ptrs := t.scanTargets()
	var n, bad int64
	for rows.Next() {
		n++
		row, err := t.scanRow(rows, raws, ifaces, ptrs)
		if err != nil {
			var ce *record.ConvError
			if !errors.As(err, &ce) {
				return nil, err
			}
			bad++
			if bad <= 10 {
				t.warn("mysql lookup: row left out", "row", n, "error", err.Error())
			}
			continue
		}
		ix.Add(row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if bad > 0 {
		t.warn("mysql lookup: rows left out because a value does not convert", "rows", bad, "of", n)
	}
	return ix, nil
}

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
	}
	t.wg.Wait()
	return t.db.Close()
}

// queryTable asks the database per key, behind an LRU cache, one query in
// flight per key, retries and a circuit breaker.
type queryTable struct {
	base
	stmt     *sql.Stmt
	keyCols  []column
	keyTypes []record.Type
	cache    *lru
	br       *breaker
	timeout  time.Duration
	retries  int
	backoff  time.Duration
	now      func() time.Time

	mu      sync.Mutex
	flights map[string]*flight

	queries atomic.Int64 // database queries run, for tests and stats

	// test hooks
	beforeQuery func()
	onWait      func()
}

// flight is one query for a key that other lookups of the key wait for.
type flight struct {
	done     chan struct{}
	row      record.Row
	ok       bool
	err      error
	canceled bool // the leader's context ended it: waiters ask again
}

func newQueryTable(ctx context.Context, b base) (*queryTable, error) {
	cfg := b.l.cfg
	t := &queryTable{
		base:    b,
		cache:   newLRU(cfg.Cache.Size),
		br:      &breaker{threshold: cfg.Breaker.Failures, cooldown: time.Duration(cfg.Breaker.Cooldown)},
		timeout: time.Duration(cfg.Timeout),
		retries: cfg.Retries,
		backoff: time.Duration(cfg.Backoff),
		now:     time.Now,
		flights: map[string]*flight{},
	}
	var where []string
	for _, i := range b.keyIdx {
		f := b.fields[i]
		t.keyCols = append(t.keyCols, f.col)
		t.keyTypes = append(t.keyTypes, f.typ)
		where = append(where, "s."+quoteIdent(f.col.name)+" = "+placeholder(f.col))
	}
	st, err := b.db.PrepareContext(ctx, b.selectSQL+" WHERE "+strings.Join(where, " AND ")+" LIMIT 1")
	if err != nil {
		return nil, err
	}
	t.stmt = st
	return t, nil
}

// Get implements connector.Table.
func (t *queryTable) Get(ctx context.Context, key []any) (record.Row, bool, error) {
	if len(key) != len(t.keyIdx) {
		return nil, false, fmt.Errorf("mysql lookup %s: takes %d key values (%s), got %d", t.l.what(), len(t.keyIdx), strings.Join(t.l.cfg.Key, ", "), len(key))
	}
	args := make([]any, len(key))
	typed := make([]any, len(key))
	for i, v := range key {
		c, err := record.Convert(v, t.keyTypes[i], t.loc)
		if err != nil || c == nil {
			return nil, false, nil // no row has this key: it is not of the key's type, or null
		}
		typed[i] = c
		if args[i], err = bindKey(t.keyCols[i], c, t.loc); err != nil {
			return nil, false, nil
		}
	}
	ck := connector.KeyString(typed)
	for {
		if row, found, hit := t.cache.get(ck, t.now()); hit {
			return row, found, nil
		}
		t.mu.Lock()
		if f, ok := t.flights[ck]; ok {
			t.mu.Unlock()
			if t.onWait != nil {
				t.onWait()
			}
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if f.canceled {
				continue // the leader gave up; ask again
			}
			return f.row, f.ok, f.err
		}
		f := &flight{done: make(chan struct{})}
		t.flights[ck] = f
		t.mu.Unlock()

		f.row, f.ok, f.err = t.fetch(ctx, args)
		f.canceled = f.err != nil && ctx.Err() != nil
		if f.err == nil {
			ttl := time.Duration(t.l.cfg.Cache.TTL)
			if !f.ok {
				ttl = time.Duration(t.l.cfg.Cache.NegativeTTL)
			}
			if ttl > 0 {
				t.cache.put(ck, f.row, f.ok, t.now().Add(ttl))
			}
		}
		t.mu.Lock()
		delete(t.flights, ck)
		t.mu.Unlock()
		close(f.done)
		return f.row, f.ok, f.err
	}
}

// fetch runs the query with retries, under the circuit breaker.
func (t *queryTable) fetch(ctx context.Context, args []any) (record.Row, bool, error) {
	ok, probe, wait, last := t.br.allow(t.now())
	if !ok {
		return nil, false, connector.Transient(fmt.Errorf("mysql lookup %s: circuit open after %d failed lookups in a row, next probe in %s; last error: %v",
			t.l.what(), t.br.threshold, wait.Round(time.Millisecond), last))
	}
	backoff := t.backoff
	var err error
	for attempt := 0; ; attempt++ {
		var row record.Row
		var ok bool
		row, ok, err = t.queryOnce(ctx, args)
		if err == nil {
			t.br.success()
			return row, ok, nil
		}
		if ctx.Err() != nil {
			if probe {
				t.br.release()
			}
			return nil, false, fmt.Errorf("mysql lookup %s: %w", t.l.what(), ctx.Err())
		}
		if attempt >= t.retries || !(isTransient(err) || errors.Is(err, context.DeadlineExceeded)) {
			break
		}
		if backoff > 0 {
			// Full jitter: a random wait up to the doubled backoff.
			d := time.Duration(rand.Int64N(int64(backoff)) + 1)
			tm := time.NewTimer(d)
			select {
			case <-ctx.Done():
				tm.Stop()
				if probe {
					t.br.release()
				}
				return nil, false, fmt.Errorf("mysql lookup %s: %w", t.l.what(), ctx.Err())
			case <-tm.C:
			}
			backoff *= 2
		}
	}
	err = fmt.Errorf("mysql lookup %s, %s: %w", t.l.srv.where, t.l.what(), classify(context.Background(), t.l.srv.redact(err)))
	t.br.failure(t.now(), err)
	return nil, false, err
}

// queryOnce runs one query bounded by the timeout.
func (t *queryTable) queryOnce(ctx context.Context, args []any) (record.Row, bool, error) {
	if t.beforeQuery != nil {
		t.beforeQuery()
	}
	t.queries.Add(1)
	qctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	rows, err := t.stmt.QueryContext(qctx, args...)
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return nil, false, fmt.Errorf("query timed out after %s: %w", t.timeout, context.DeadlineExceeded)
		}
		return nil, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			if qctx.Err() != nil && ctx.Err() == nil {
				return nil, false, fmt.Errorf("query timed out after %s: %w", t.timeout, context.DeadlineExceeded)
			}
			return nil, false, err
		}
		return nil, false, nil
	}
	raws, ifaces, ptrs := t.scanTargets()
	row, err := t.scanRow(rows, raws, ifaces, ptrs)
	if err != nil {
		var ce *record.ConvError
		if errors.As(err, &ce) {
			t.warn("mysql lookup: row left out", "error", err.Error())
			return nil, false, nil
		}
		return nil, false, err
	}
	return row, true, rows.Close()
}

// Close implements connector.Table.
func (t *queryTable) Close() error {
	t.stmt.Close()
	return t.db.Close()
}

// bindKey turns a key value of the field's type into what compares with
// column c.
func bindKey(c column, v any, loc *time.Location) (any, error) {
	switch x := v.(type) {
	case int64, float64, string, []byte:
		return v, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case record.Dec:
		return x.String(), nil
	case time.Time:
		switch c.kind {
		case kDateTime:
			return string(appendDateTime(nil, x.In(loc))), nil
		case kDate:
			y, m, d := x.In(loc).Date()
			return string(appendDate(nil, y, m, d)), nil
		}
		return string(appendDateTime(nil, x.UTC())), nil
	case record.LocalDate:
		y, m, d := x.Time().Date()
		return string(appendDate(nil, y, m, d)), nil
	}
	return nil, fmt.Errorf("a %T key cannot be looked up", v)
}

// breaker is a circuit breaker: closed, open for a cooldown after
// threshold failures in a row, then half-open for one probe.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	failures int
	open     bool
	until    time.Time
	probing  bool
	last     error
}

// allow reports whether a query may run, and whether it is the probe of a
// half-open circuit; when it may not, how long until a probe and the last
// error.
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration, last error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true, false, 0, nil
	}
	if now.Before(b.until) || b.probing {
		return false, false, max(b.until.Sub(now), 0), b.last
	}
	b.probing = true // half-open: this query is the probe
	return true, true, 0, nil
}

func (b *breaker) success() {
	b.mu.Lock()
	b.failures, b.open, b.probing, b.last = 0, false, false, nil
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time, err error) {
	b.mu.Lock()
	b.failures++
	b.last = err
	if b.probing || b.failures >= b.threshold {
		b.open, b.until, b.probing = true, now.Add(b.cooldown), false
	}
	b.mu.Unlock()
}

// release ends a probe that neither succeeded nor failed (its caller gave
// up): the next query probes.
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// lru is a cache of rows by key with expiry, most recently used first.
type lru struct {
	mu      sync.Mutex
	size    int
	m       map[string]*lruEntry
	head    *lruEntry // sentinel of a circular list: head.next is the most recent
	hits    atomic.Int64
	misses  atomic.Int64
	negHits atomic.Int64
}

type lruEntry struct {
	key        string
	row        record.Row
	found      bool
	expires    time.Time
	prev, next *lruEntry
}

func newLRU(size int) *lru {
	h := &lruEntry{}
	h.prev, h.next = h, h
	return &lru{size: size, m: map[string]*lruEntry{}, head: h}
}

func (c *lru) unlink(e *lruEntry) { e.prev.next, e.next.prev = e.next, e.prev }

func (c *lru) pushFront(e *lruEntry) {
	e.prev, e.next = c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

// get returns the cached answer for k: hit is false when there is none or
// it expired.
func (c *lru) get(k string, now time.Time) (record.Row, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		c.misses.Add(1)
		return nil, false, false
	}
	if !now.Before(e.expires) {
		c.unlink(e)
		delete(c.m, k)
		c.misses.Add(1)
		return nil, false, false
	}
	c.unlink(e)
	c.pushFront(e)
	c.hits.Add(1)
	if !e.found {
		c.negHits.Add(1)
	}
	return e.row, e.found, true
}

func (c *lru) put(k string, row record.Row, found bool, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		e.row, e.found, e.expires = row, found, expires
		c.unlink(e)
		c.pushFront(e)
		return
	}
	e := &lruEntry{key: k, row: row, found: found, expires: expires}
	c.m[k] = e
	c.pushFront(e)
	for len(c.m) > c.size {
		last := c.head.prev
		c.unlink(last)
		delete(c.m, last.key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
