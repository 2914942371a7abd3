// Package sqlstate is the part of the SQL state stores (sqlitestate,
// pgstate) that does not depend on the database: the columns of runs,
// versions and dead letters and how a row of them is scanned, the
// filters of Runs, the rules of PruneRuns, and the checks and defaults a
// store applies before it writes. Each store keeps what is its own: its
// driver, its placeholders, how it stores a time, and the SQL that differs
// by dialect.
//
// Invariants:
//
//   - The column lists here and the order in which their rows are scanned
//     are one: a store selects RunColumns and scans with ScanRun.
//   - Nothing here opens a transaction or wraps an error: the store that
//     calls it does, once, with the name of its operation.
package sqlstate
