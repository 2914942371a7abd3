// Package sqlite is the SQLite source, sink and lookup, over the pure-Go
// driver modernc.org/sqlite through database/sql.
//
// What does not depend on the database (the reader's batch loop, the
// keyset condition, the sink's connection, INSERTs and split of refused
// rows) is shared with the MySQL/MariaDB connector in package sqlkit; this
// package gives it SQLite's quoting, ON CONFLICT, the rowid and its
// scanning of rows.
//
//	r := connector.NewRegistry()
//	sqlite.Register(r)
//	e, _ := r.Get(connector.KindSink, "sqlite")
//	p, _ := connector.ParamsFromYAML("path: out.db\ntable: orders\nmode: upsert\nkey: id\ncreate: true")
//	sink, _ := e.Sink(p)
//	w, _ := sink.Open(ctx, env, schema)
//	n, err := w.Write(ctx, batch)                 // staged in a transaction
//	err = w.Commit(ctx, []connector.Checkpoint{cp}) // rows and checkpoint together
//
// Invariants:
//
//   - The source opens the database read-only. An incremental read is a
//     keyset read over (cursor…, key…): its position holds the last row's
//     values of those columns exactly as SQLite stored them (INTEGER, REAL,
//     TEXT or BLOB, tagged in JSON), and the next read asks SQLite for the
//     rows after them in SQLite's own order. Nothing is parsed for
//     comparison, so full-precision text timestamps and ties straddling a
//     batch boundary neither lose nor repeat a row. Values are selected as
//     +column, which drops the declared type so that the driver hands over
//     the stored value rather than its own parse of DATE/DATETIME/TIMESTAMP.
//
//   - The sink stages rows in one transaction per Commit and writes the
//     checkpoints into backbone_checkpoints of the same database in that
//     transaction: rows and checkpoints move together or not at all. Each
//     INSERT of up to 100 rows runs under a savepoint; a row the database
//     refuses (a constraint, a STRICT type) is found by splitting the
//     statement in halves and comes back in a *connector.BatchError, the
//     other rows stay staged. Any other error rolls back everything since
//     the last Commit.
//
//   - Values the sink creates columns for keep their exactness: decimals
//     and JSON as TEXT-affinity columns (DECIMAL_TEXT, JSON_TEXT),
//     timestamps as RFC 3339 text with nine fraction digits and the zone
//     offset, dates as YYYY-MM-DD, bools as 0 and 1.
//
//   - The checkpoint tables carry a version in backbone_meta; a newer or
//     missing version is refused, never taken for a first run.
//
//   - A missing database file is connector.ErrUnavailable; a lock held past
//     busy_timeout is connector.ErrTransient.
package sqlite
