// Package api is the HTTP API of `backbone serve`: JSON over the daemon's
// pipelines, runs, versions and dead letters, plus /healthz, /readyz and
// /metrics.
//
// Invariants:
//
//   - Every endpoint but /healthz needs a bearer token; a read-only token may
//     call every GET, only an admin token may change anything (401 for a
//     missing or unknown token, 403 for a read-only token on a change).
//     There is no default token: a server without tokens refuses everything
//     but /healthz.
//
//   - No request field names a file, a URL or code: the API can only act on
//     pipelines the daemon loaded from its folder.
//
//   - Bodies are redacted through Options.Redact after encoding, on top of
//     the backend's own redaction.
//
//   - The route table is the single list of endpoints; a test checks it
//     against openapi.yaml and the DTOs' JSON fields against its schemas.
//
//     h := api.New(api.Options{Backend: daemon, Tokens: []api.Token{{Name: "ops", Role: api.RoleAdmin, Value: tok}}})
//     srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h}
package api
