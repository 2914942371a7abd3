// Package httpc holds the http components: a source reading JSON APIs page
// after page (whole or incrementally by a field), a lookup asking a service
// per key or per batch of keys, and a sink posting records. They share one
// client: headers, credentials from environment variables, a rate limit,
// a timeout per request, bounded response bodies.
//
//	r := connector.NewRegistry()
//	httpc.Register(r) // source, lookup and sink "http"
//
// Invariants:
//
//   - No secret is printed: credentials are read from the environment when
//     a component opens, and errors show URLs without their query or user
//     information.
//   - A request that failed because of the service (refused, timed out,
//     408, 429, 5xx) is retried with backoff and jitter, honouring
//     Retry-After, and is marked connector.ErrTransient when the retries
//     are spent; other 4xx statuses are not retried.
//   - The source's position is its page (cursor, number or link) and the
//     records of it consumed; in mode incremental also the (cursor, key) a
//     traversal started after and the greatest one read, kept as text with
//     full precision. A traversal that ended moves the checkpoint to its
//     greatest (cursor, key), from which the next run starts.
//   - The lookup never answers "not found" because of an outage (see
//     lookupcache); a 404 or a null record is a miss.
//   - The sink retries a request only when a retry cannot store it twice:
//     the request carries an idempotency key, or never reached the server.
//     A 4xx names the rows it refused (connector.BatchError) with the
//     response body; a batch is split until they stand alone.
package httpc
