// Package sqlkit is the part of the database/sql connectors (MySQL/MariaDB
// and SQLite) that does not depend on the database: the batch loop of a
// source's reader, the keyset conditions of an incremental read, and the
// statements of a sink. Each connector passes in what is its own: quoting,
// placeholders, its conflict clause, how a row is scanned and converted.
//
// A connector's reader embeds a Reader and implements Rows:
//
//	r := &reader{…}
//	r.Reader = sqlkit.NewReader(db, schema, "orders", limits, r)
//	err := r.Prepare(ctx, "SELECT … FROM orders AS s", []string{"s.updated_at", "s.id"}, " LIMIT -1 OFFSET ?")
//	b, err := r.Next(ctx) // one keyset query after r.Last
//
// Invariants:
//
//   - A keyset read runs one query per batch, so no statement stays open
//     between batches; a failed batch leaves Reader.Last where the batch
//     started, so that the next Next reads it again.
//   - An unordered read is one streaming query; after a retry it skips the
//     Reader.Offset rows already read.
package sqlkit
