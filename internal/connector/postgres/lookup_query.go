package postgres

import (
	"container/list"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// queryTable answers each key with a query, through an LRU cache, sharing
// in-flight queries of one key, with timeouts, retries and a circuit
// breaker.
type queryTable struct {
	l       *pgLookup
	sh      *shape
	loc     *time.Location
	log     *slog.Logger
	sql     string
	keyCols []column
	oids    []uint32

	pool    *connPool
	cache   *lruCache
	breaker breaker

	mu      sync.Mutex
	flights map[string]*flight

	attempts atomicCounter // queries tried, connected or not (tests)
	queries  atomicCounter // queries sent to the database (tests)
	waiting  atomicCounter // lookups waiting for another's query (tests)
	now      func() time.Time
	sleepFor func(ctx context.Context, d time.Duration) error
}

type flight struct {
	done chan struct{}
	row  record.Row
	ok   bool
	err  error
}

const stmtKey = "backbone_lookup"

func newQueryTable(l *pgLookup, sh *shape, first *pgconn.PgConn, loc *time.Location, log *slog.Logger) *queryTable {
	t := &queryTable{l: l, sh: sh, loc: loc, log: log, flights: map[string]*flight{}, now: time.Now, sleepFor: sleepCtx}
	var conds []string
	for i, k := range sh.keyIdx {
		col := sh.cols[k]
		t.keyCols = append(t.keyCols, col)
		t.oids = append(t.oids, col.oid)
		conds = append(conds, "s."+quoteIdent(col.name)+" = $"+strconv.Itoa(i+1))
	}
	t.sql = "SELECT " + sh.selectList() + " FROM " + fromClause(l.cfg.DBSchema, l.cfg.Table, l.cfg.Query) +
		" WHERE " + strings.Join(conds, " AND ") + " LIMIT 1"
	t.pool = newConnPool(l.srv, l.cfg.Pool)
	t.pool.put(first, false)
	t.cache = newLRU(l.cfg.Cache.Size)
	t.breaker = breaker{failures: l.cfg.Breaker.Failures, cooldown: time.Duration(l.cfg.Breaker.Cooldown)}
	return t
}

// Schema implements connector.Table.
func (t *queryTable) Schema() *record.Schema { return t.sh.schema }

// Keys implements connector.Table.
func (t *queryTable) Keys() []string { return t.l.cfg.Key }

// Close implements connector.Table.
func (t *queryTable) Close() error {
	t.pool.close()
	return nil
}

// Get implements connector.Table.
func (t *queryTable) Get(ctx context.Context, key []any) (record.Row, bool, error) {
	if len(key) != len(t.keyCols) {
		return nil, false, fmt.Errorf("lookup takes %d key values (%s), got %d", len(t.keyCols), strings.Join(t.l.cfg.Key, ", "), len(key))
	}
	ks := connector.KeyString(key)
	for {
		if row, ok, hit := t.cache.get(ks, t.now()); hit {
			return row, ok, nil
		}
		t.mu.Lock()
		if f := t.flights[ks]; f != nil {
			t.mu.Unlock()
			t.waiting.add()
			select {
			case <-f.done:
			case <-ctx.Done():
				t.waiting.Add(-1)
				return nil, false, ctx.Err()
			}
			t.waiting.Add(-1)
			if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
				continue // the query was the cancelled caller's: ask again
			}
			return f.row, f.ok, f.err
		}
		f := &flight{done: make(chan struct{})}
		t.flights[ks] = f
		t.mu.Unlock()

		f.row, f.ok, f.err = t.fetch(ctx, key)
		if f.err == nil {
			ttl := time.Duration(t.l.cfg.Cache.TTL)
			if !f.ok {
				ttl = time.Duration(t.l.cfg.Cache.MissTTL)
			}
			if ttl > 0 {
				t.cache.put(ks, f.row, f.ok, t.now().Add(ttl))
			}
		}
		t.mu.Lock()
		delete(t.flights, ks)
		t.mu.Unlock()
		close(f.done)
		return f.row, f.ok, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fetch asks the database, retrying failures of the connection and
// timeouts with exponential backoff and jitter, behind the breaker.
func (t *queryTable) fetch(ctx context.Context, key []any) (record.Row, bool, error) {
	params := make([][]byte, len(key))
	for i, v := range key {
		if v == nil {
			return nil, false, nil // NULL equals nothing
		}
		p, err := keyText(v, t.keyCols[i], t.loc)
		if err != nil {
			return nil, false, fmt.Errorf("postgres: lookup key %q: %w", t.l.cfg.Key[i], err)
		}
		params[i] = p
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if !t.breaker.allow(t.now()) {
			return nil, false, t.l.wrap(connector.Transient(errCircuitOpen), nil)
		}
		qctx, cancel := context.WithTimeout(ctx, time.Duration(t.l.cfg.Timeout))
		row, ok, err := t.queryOnce(qctx, params)
		timedOut := qctx.Err() != nil
		cancel()
		if err == nil {
			t.breaker.success()
			return row, ok, nil
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		failure := timedOut || transient(err, nil)
		if failure {
			t.breaker.failure(t.now())
		}
		if !failure || attempt >= t.l.cfg.Retries {
			if timedOut {
				err = connector.Transient(fmt.Errorf("query timed out after %s: %w", time.Duration(t.l.cfg.Timeout), err))
			}
			return nil, false, t.l.wrap(err, nil)
		}
		d := backoff/2 + rand.N(backoff/2+1) // jitter: half to all of the backoff
		if err := t.sleepFor(ctx, d); err != nil {
			return nil, false, err
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// queryOnce runs the lookup query on a pooled connection.
func (t *queryTable) queryOnce(ctx context.Context, params [][]byte) (record.Row, bool, error) {
	t.attempts.add()
	c, err := t.pool.get(ctx)
	if err != nil {
		return nil, false, err
	}
	t.queries.add()
	sd, _ := c.CustomData()[stmtKey].(*pgconn.StatementDescription)
	if sd == nil {
		if sd, err = c.Prepare(ctx, stmtKey, t.sql, t.oids); err != nil {
			t.pool.put(c, connLost(err, c) || ctx.Err() != nil)
			return nil, false, err
		}
		c.CustomData()[stmtKey] = sd
	}
	rr := c.ExecStatement(ctx, sd, params, nil, t.sh.formats)
	var row record.Row
	var derr error
	found := false
	if rr.NextRow() {
		found = true
		row, derr = t.sh.decodeRow(rr.Values(), t.loc)
	}
	_, err = rr.Close()
	t.pool.put(c, err != nil && (connLost(err, c) || ctx.Err() != nil))
	switch {
	case err != nil && strings.HasPrefix(sqlState(err), "22"):
		return nil, false, nil // the key is not a value of the column's type: no row has it
	case err != nil:
		return nil, false, err
	case derr != nil:
		if t.log != nil {
			t.log.Warn("postgres lookup: row left out because a value does not convert", "lookup", what(t.l.cfg.DBSchema, t.l.cfg.Table, t.l.cfg.Query), "error", derr.Error())
		}
		return nil, false, nil
	}
	return row, found, nil
}

// keyText renders a key value as text for the key column's input
// function.
func keyText(v any, col column, loc *time.Location) ([]byte, error) {
	tgt := targetOf(col.oid)
	switch x := v.(type) {
	case string:
		if tgt == tBytea {
			return []byte(`\x` + hex.EncodeToString([]byte(x))), nil
		}
		return []byte(x), nil
	case []byte:
		if tgt == tBytea {
			return []byte(`\x` + hex.EncodeToString(x)), nil
		}
		return x, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case float64:
		if col.kind == kInt2 || col.kind == kInt4 || col.kind == kInt8 {
			if x == float64(int64(x)) {
				return strconv.AppendInt(nil, int64(x), 10), nil
			}
		}
		return appendFloat(nil, x, 64), nil
	case record.Dec:
		return x.AppendText(nil), nil
	case bool:
		return []byte(strconv.FormatBool(x)), nil
	case time.Time:
		return appendTime(nil, x, tgt, loc), nil
	case record.LocalDate:
		return appendDate(nil, x), nil
	case json.Number:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("a %T value cannot be looked up", v)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// breaker opens after failures consecutive failures, and lets one call
// through after cooldown (half-open); its success closes it.
type breaker struct {
	failures int
	cooldown time.Duration

	mu        sync.Mutex
	count     int
	openUntil time.Time
	trial     bool // half-open: a call is trying
}

func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count < b.failures {
		return true
	}
	if now.Before(b.openUntil) || b.trial {
		return false
	}
	b.trial = true
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	b.count, b.trial = 0, false
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	b.count++
	if b.count >= b.failures {
		b.openUntil = now.Add(b.cooldown)
	}
	b.trial = false
	b.mu.Unlock()
}

// connPool keeps up to size connections.
type connPool struct {
	srv  *server
	sem  chan struct{}
	mu   sync.Mutex
	idle []*pgconn.PgConn
	shut bool
}

func newConnPool(srv *server, size int) *connPool {
	return &connPool{srv: srv, sem: make(chan struct{}, size)}
}

// get takes an idle connection or opens one.
func (p *connPool) get(ctx context.Context) (*pgconn.PgConn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		<-p.sem
		return nil, errors.New("lookup closed")
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := p.srv.connect(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// put gives back a connection taken by get (or the first one, which was
// not); a broken one is closed.
func (p *connPool) put(c *pgconn.PgConn, broken bool) {
	p.mu.Lock()
	keep := !broken && !p.shut && !c.IsClosed()
	if keep {
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
	if !keep {
		closeConn(c)
	}
	select {
	case <-p.sem:
	default: // the first connection took no slot
	}
}

func (p *connPool) close() {
	p.mu.Lock()
	p.shut = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

// lruCache keeps the answers to recent keys.
type lruCache struct {
	mu    sync.Mutex
	size  int
	ll    *list.List
	items map[string]*list.Element

	hits, misses atomicCounter
}

type cacheEntry struct {
	key     string
	row     record.Row
	ok      bool
	expires time.Time
}

func newLRU(size int) *lruCache {
	return &lruCache{size: size, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the cached answer for key; hit is false when there is none
// or it expired.
func (c *lruCache) get(key string, now time.Time) (record.Row, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses.add()
		return nil, false, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		c.misses.add()
		return nil, false, false
	}
	c.ll.MoveToFront(el)
	c.hits.add()
	return e.row, e.ok, true
}

func (c *lruCache) put(key string, row record.Row, ok bool, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, found := c.items[key]; found {
		el.Value = &cacheEntry{key: key, row: row, ok: ok, expires: expires}
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, row: row, ok: ok, expires: expires})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *lruCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
