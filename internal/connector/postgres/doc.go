// Package postgres is the PostgreSQL source, sink and lookup, over pgx's
// pgconn (the wire protocol, COPY both ways) without database/sql.
//
//	r := connector.NewRegistry()
//	postgres.Register(r)
//	e, _ := r.Get(connector.KindSink, "postgres")
//	p, _ := connector.ParamsFromYAML("dsn: ${WAREHOUSE_DSN}\ntable: orders\nmode: upsert\nkey: id\ncreate: true")
//	sink, _ := e.Sink(p)
//	w, _ := sink.Open(ctx, env, schema)
//	n, err := w.Write(ctx, batch)                   // COPY inside a transaction
//	err = w.Commit(ctx, []connector.Checkpoint{cp}) // rows and checkpoint together
//
// Invariants:
//
//   - The DSN is secret: no error, log line or position carries the
//     password; servers are named "postgres host:port/db". A server that
//     cannot be reached at Plan, Open or Check is connector.ErrUnavailable.
//     Sessions run with TimeZone UTC and DateStyle ISO, and with db_schema
//     as their search path unless the DSN sets one.
//
//   - A source task is one query in the binary protocol, streamed and kept
//     open between batches. An ordered read (incremental: cursor then key;
//     full: key or primary key) puts into each batch's position the
//     ordering values of its last row, rendered as the text the column
//     type's input function reads back exactly, with the type's name; the
//     next read binds them with the column's type and asks the server for
//     the rows after them. Nothing is compared as lossy text. Positions
//     also hold the columns read (for schema drift), the run that wrote
//     them (lookback applies to later runs only) and the rows read so far.
//
//   - Measured on this machine, a streaming query in binary is as fast as
//     COPY … TO STDOUT (binary or text) for the same SELECT, and it takes
//     parameters, so the source does not use COPY; see BenchmarkPipeline*
//     in the tests.
//
//   - The sink stages rows with COPY FROM STDIN in one transaction per
//     Commit and writes the checkpoints into backbone_checkpoints of
//     db_schema in that transaction: rows and checkpoints move together or
//     not at all. COPY is binary when every field maps to its column's type
//     without an input function, text otherwise. One COPY stays open
//     across batches (stream.go): the server judges the rows at the end of
//     the statement, and the writer reports the refused ones by
//     connector.Settler before the Commit. In mode upsert the COPY fills a
//     temporary stage, numbering the rows as they are sent, and one INSERT
//     … ON CONFLICT moves them into the table (with DISTINCT ON the last
//     row of a key, once a key repeats). A statement that fails for a row's
//     sake is undone to a savepoint; the row the server names is refused,
//     and the others are sent again (in halves when it names none, as an
//     INSERT never does) until the refused rows stand alone, with the
//     server's message.
//
//   - Modes append and upsert keep the rows accepted since the last Commit
//     (already encoded) until it succeeds: after a lost connection the next
//     transaction stages them again, so a retried Write or Commit loses
//     nothing, and a COMMIT whose answer was lost is settled with
//     txid_status before anything is staged again. Mode replace keeps its
//     rows only in the transaction; once they are lost the writer refuses
//     every later call and never swaps in a partial table.
//
//   - Connection loss, shutdown, deadlock, serialization failure, lock and
//     resource errors are connector.ErrTransient; a refused row is only ever
//     a server error about data (class 22, 23, 54000, P0001), never an
//     outage.
//
//   - The checkpoint tables carry a version in backbone_meta; a newer or
//     missing version is refused, never taken for a first run.
//
//   - A lookup either holds every row in a connector.Index swapped whole on
//     refresh, or asks per key through an LRU cache with shared in-flight
//     queries, timeouts, retries with jittered backoff and a circuit
//     breaker. A lookup that cannot be answered is an error, never a miss.
package postgres
