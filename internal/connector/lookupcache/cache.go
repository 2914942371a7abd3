package lookupcache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// Cache keeps the answers to recent keys: found rows and misses, each until
// it expires, at most size of them; the least recently used goes first. It
// is split into shards with a lock each so that concurrent lookups of
// different keys rarely wait for each other. Safe for concurrent use.
type Cache struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64

	hits, misses atomic.Int64
}

type shard struct {
	mu    sync.Mutex
	items map[string]*entry
	head  entry // sentinel: head.next is the most recent, head.prev the least
	cap   int
}

type entry struct {
	key        string
	row        record.Row
	ok         bool
	expires    int64 // unix nanoseconds
	prev, next *entry
}

// NewCache returns a cache of at most size answers (at least 1).
func NewCache(size int) *Cache {
	size = max(size, 1)
	// Small caches keep one shard, so that the least recently used key is
	// the one evicted exactly; large ones spread over up to 32.
	n := 1
	for n < 32 && size/(n*2) >= 256 {
		n *= 2
	}
	c := &Cache{seed: maphash.MakeSeed(), shards: make([]shard, n), mask: uint64(n - 1)}
	for i := range c.shards {
		s := &c.shards[i]
		s.items = map[string]*entry{}
		s.head.next, s.head.prev = &s.head, &s.head
		s.cap = size / n
		if i < size%n {
			s.cap++
		}
	}
	return c
}

func (c *Cache) shard(key []byte) *shard {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Bytes(c.seed, key)&c.mask]
}

// Get returns the answer kept for key; hit is false when there is none or it
// expired. It counts a hit or a miss.
func (c *Cache) Get(key []byte, now time.Time) (row record.Row, ok, hit bool) {
	row, ok, hit = c.get(key, now)
	if hit {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return row, ok, hit
}

// GetAgain is Get for a key whose Get just missed (a call for it may have
// ended since): a hit now counts as a hit instead of that miss.
func (c *Cache) GetAgain(key []byte, now time.Time) (row record.Row, ok, hit bool) {
	row, ok, hit = c.get(key, now)
	if hit {
		c.misses.Add(-1)
		c.hits.Add(1)
	}
	return row, ok, hit
}

func (c *Cache) get(key []byte, now time.Time) (row record.Row, ok, hit bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.items[string(key)] // no allocation for the lookup
	switch {
	case e == nil:
		return nil, false, false
	case now.UnixNano() >= e.expires:
		s.unlink(e)
		delete(s.items, e.key)
		return nil, false, false
	}
	s.unlink(e)
	s.pushFront(e)
	return e.row, e.ok, true
}

// Put keeps an answer for key until expires.
func (c *Cache) Put(key string, row record.Row, ok bool, expires time.Time) {
	s := c.shard([]byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.items[key]; e != nil {
		e.row, e.ok, e.expires = row, ok, expires.UnixNano()
		s.unlink(e)
		s.pushFront(e)
		return
	}
	e := &entry{key: key, row: row, ok: ok, expires: expires.UnixNano()}
	s.items[key] = e
	s.pushFront(e)
	for len(s.items) > s.cap {
		last := s.head.prev
		s.unlink(last)
		delete(s.items, last.key)
	}
}

// Len is the number of answers kept, expired ones included.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

// Stats returns the hits and misses of Get since the cache was made.
func (c *Cache) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

func (s *shard) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}
