// Package redis holds the redis lookup: reference data read from Redis
// strings (a JSON object or a single value, with MGET) or hashes (with a
// pipeline of HGETALL), keyed by a template over the lookup's key fields,
// through the cache, coalescing, retries, breaker and unavailability
// policy of lookupcache.
//
//	r := connector.NewRegistry()
//	redis.Register(r) // lookup "redis"
//
// Invariants:
//
//   - A key that does not exist, or an empty hash, is a miss; a value that
//     does not convert, or a key of another type, rejects the record asking
//     (connector.ErrReject) and is not cached.
//   - A server that cannot be reached, times out or says it is busy is a
//     transient failure: retried, counted by the breaker, and past them the
//     policy decides (wait or reject); never a miss.
//   - The client makes one attempt per call (lookupcache retries), with
//     no more connections than the concurrency allows.
//   - The password is read from the environment (or a url marked secret)
//     when the lookup opens; messages name the server by its address only.
package redis
