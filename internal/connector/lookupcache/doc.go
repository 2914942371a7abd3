// Package lookupcache is what every lookup that asks a service per key
// shares: an LRU cache with a time to live for answers and for misses,
// request coalescing, per-call timeouts, retries with backoff and jitter
// that honour a server's retry hint, a circuit breaker, adaptive
// concurrency and the policy for a service that stays down. A connector
// supplies only a Fetcher — how to ask its service for some keys — and the
// Table built around it implements connector.Table, connector.BatchTable
// and connector.CacheStats.
//
//	t := lookupcache.New(fetcher, lookupcache.Options{
//		Name: "http lookup customers", Keys: []string{"customer_id"},
//		Config: cfg, // decoded with the connector's own config (Fields, Defaults, Check)
//	})
//	row, ok, err := t.Get(ctx, []any{int64(42)})
//
// Invariants:
//
//   - A key is never answered "not found" because of an outage: a call that
//     fails is retried, then — per Config.OnUnavailable — waits for the
//     service (at most MaxWait, then an error wrapping
//     connector.ErrUnavailable that fails the run) or answers with an error
//     wrapping connector.ErrReject (the record is rejected). Errors are never
//     cached.
//   - At most one call is in flight for a key: concurrent lookups of a key
//     not in the cache wait for the first one's answer.
//   - Memory is bounded: the cache holds at most Cache.Size answers, and the
//     goroutines and calls of one GetBatch are bounded by Concurrency.
//   - The breaker opens after Breaker.Failures consecutive failed calls; while
//     open no call reaches the service; after Breaker.Cooldown one call
//     probes it and its success closes the breaker.
//   - Concurrency adapts between 1 and Concurrency in-flight calls: it grows
//     by one per window of successful calls and shrinks by a factor on a
//     failure or on a call much slower than the recent fastest ones.
package lookupcache
