// Package mysql is the MySQL/MariaDB source, sink and lookup, over
// github.com/go-sql-driver/mysql through database/sql.
//
// What does not depend on the database (the reader's batch loop, the
// keyset condition, the sink's connection, INSERTs and split of refused
// rows) is shared with the SQLite connector in package sqlkit; this
// package gives it MySQL's quoting, its DECIMAL parameters, ON DUPLICATE
// KEY UPDATE and its scanning of rows.
//
//	r := connector.NewRegistry()
//	mysql.Register(r)
//	e, _ := r.Get(connector.KindSink, "mysql")
//	p, _ := connector.ParamsFromYAML("dsn: root:@tcp(127.0.0.1:3306)/shop\ntable: orders\nmode: upsert\nkey: id\ncreate: true")
//	sink, _ := e.Sink(p)
//	w, _ := sink.Open(ctx, env, schema)
//	n, err := w.Write(ctx, batch)                   // staged in a transaction
//	err = w.Commit(ctx, []connector.Checkpoint{cp}) // rows and checkpoint together
//
// Invariants:
//
//   - Every connection is opened with parseTime=true, loc=UTC,
//     interpolateParams=false (binary-protocol prepared statements: values
//     never pass through SQL text), multiStatements=false, the session
//     time_zone '+00:00' and the server's sql_mode plus STRICT_ALL_TABLES,
//     NO_ZERO_DATE, NO_ZERO_IN_DATE and ERROR_FOR_DIVISION_BY_ZERO, so that
//     a value too long or out of range is an error, never a truncation. The
//     dsn is a secret: no error, log or position carries the password.
//
//   - An incremental read is a keyset read over (cursor…, key…), one query
//     per batch. Its condition is written as the OR of one level per column,
//     (c1 > ?) OR (c1 = ? AND c2 > ?) …, because MariaDB 10.11 turns that
//     into index ranges and evaluates a row-value comparison (c1, c2) > (?, ?)
//     over a full index scan (measured with Handler_read_next: 100 entries
//     against 90 599 for a batch of 100 at row 90 500; see
//     TestKeysetConditionIsAnIndexRange). The position holds the last row's
//     values typed (integers, exact decimal text compared as a DECIMAL of
//     the column's size, timestamps to the microsecond, bytes), the run that
//     wrote it and the schema read; lookback applies to positions of earlier
//     runs only, so a retry within a run never reads a row twice.
//
//   - The sink stages rows by multi-row INSERTs in one transaction per
//     Commit and writes the checkpoints into backbone_checkpoints of the same
//     database in that transaction. A refused row is found by halving the
//     statement under a SAVEPOINT, by the server's error number only: a
//     connection failure never passes for a bad row. After a failure that
//     rolled back staged rows the writer refuses to commit checkpoints
//     without them: the rows of the last Write must be written again (which
//     the engine's retry of that Write does), or, when rows of several Writes
//     were lost, nothing is committed any more and the run restarts from the
//     checkpoint stored with the rows. A COMMIT whose outcome is unknown (the
//     connection died during it) is never retried blindly: the next Commit,
//     after the engine wrote the batch again, reads the stored checkpoints
//     and either commits the rows or, when the lost COMMIT had stored them,
//     drops them; with rows of several Writes at stake the next run reads
//     the truth from the checkpoints.
//
//   - mode replace loads into <table>__backbone_new, each Write committed on
//     its own (nothing reads that table), then commits the checkpoints with a
//     swap mark in backbone_swaps, and only then runs the atomic
//     RENAME TABLE t TO t__backbone_old, t__backbone_new TO t. MySQL commits
//     DDL implicitly, so the RENAME cannot join the checkpoints'
//     transaction; instead every Open and LoadCheckpoints first completes a
//     marked swap (idempotently) before it reads a checkpoint or starts a
//     load. Rows and checkpoints are therefore never seen apart: a crash
//     before the mark's COMMIT leaves the old table and the old checkpoint,
//     a crash after it is finished by the next start.
//
//   - Decimals are exact both ways: read from their text, written as text
//     into DECIMAL columns after checking that the column keeps every digit
//     after the point (a value MySQL would round is refused with the field,
//     the value and the column). create makes decimal columns
//     DECIMAL(65,30): 35 digits before the point and 30 after, the widest
//     exact type MySQL has; VARCHAR would keep any scale but lose numeric
//     comparison and arithmetic in the database.
//
//   - The checkpoint tables carry a version in backbone_meta; a newer or
//     missing version is refused, never taken for a first run.
package mysql
