// Package daemon is the composition root of `backbone serve`: it loads every
// pipeline of a folder, schedules them (package scheduler), runs them
// (package engine), records history and versions (package state), serves the
// API and metrics (package api) and sends alerts (package alert).
//
// Start and stop order: the state store opens first and closes last; the
// HTTP server listens before the scheduler starts, so /healthz answers while
// the first runs go; on stop, the folder watch and the freshness check end,
// the scheduler drains (runs in flight stop at a batch boundary and commit),
// the HTTP server shuts down, pending alerts are flushed, the store closes.
//
// Invariants:
//   - A pipeline file that does not load or check is refused: the version
//     already running keeps running, the refusal is recorded on the pipeline
//     and alerted. A removed file's pipeline finishes its run in flight.
//   - Every version that runs is stored with its runs; a new version whose
//     first run breaches the error budget, or fails where the previous
//     version succeeded, is marked bad; with on_bad_version: rollback the
//     last good version is restored and runs again from the same checkpoint
//     (the engine never moves a checkpoint past a budget breach).
//   - With a PostgreSQL state store, a pipeline's runs take a lease with a
//     fencing token; the lease is checked before every commit, so a process
//     that lost it (paused past its expiry) commits nothing more.
//   - Secrets of every pipeline, the tokens and the webhook headers are
//     redacted in logs, API responses, metrics labels and alert bodies.
package daemon
