// Package file holds the file components: the csv, jsonl and parquet
// sources and sinks, the stdout sink, and the csv, jsonl and json lookups,
// all added to a registry by Register.
//
//	r := connector.NewRegistry()
//	file.Register(r)
//	e, _ := r.Get(connector.KindSource, "csv")
//	p, _ := connector.ParamsFromYAML("path: data/orders/*.csv\nschema: { id: int, total: decimal }")
//	src, _ := e.Source(p)
//	tasks, _ := src.Plan(ctx, env) // one task per file, sorted
//	rd, _ := src.Open(ctx, env, tasks[0], nil)
//	b, _ := rd.Next(ctx) // a batch, its rejects and the position after it
//
// Sources. A path is a file or a glob relative to the pipeline directory;
// each file matched is one Final task keyed by its path as written, with
// size and modification time as fingerprint. Files younger than min_age
// are left for a later run; no match is an empty plan; a file that cannot
// be examined or opened is an error wrapping connector.ErrUnavailable. The
// text sources (csv, jsonl) parse with their own streaming readers, which
// know the byte offset and line of every record: a batch's Position is the
// offset and line just after its last record (in the uncompressed stream),
// and Open resumes exactly there, by seeking a plain file or by reading
// and discarding a gzip one. The parquet source's Position is a row index.
//
// Invariants of every source:
//
//   - every record read is, in its batch, a row or a reject: Batch.Read ==
//     len(Rows) + len(Rejects); blank lines are not records;
//   - a record longer than Limits.MaxRecordBytes is rejected without ever
//     being held whole: memory stays bounded by the cap, whatever the file;
//   - a malformed record or a value that does not convert is a reject that
//     names the line, the field, the value and the reason, never an error;
//   - Lines holds each row's line (row number for parquet) and Raw its
//     source text, in a buffer made for that batch alone;
//   - string values of a batch share one string made for that batch, and
//     values are boxed from per-batch slabs (see box.go): nothing a batch
//     hands out is ever reused or written again.
//
// Sinks write under a hidden temporary name in the destination directory
// (".name.tmp-<run id>") and rename into place at Commit, so the final
// name only ever holds a complete file; Close without Commit removes the
// temporary file. Their WriterInfo is Once. The stdout sink prints at
// Commit and is neither Once nor transactional.
//
// Lookups load the whole file into a connector.Index at Open; a malformed
// record there fails Open with its file and line, because reference data
// must be right.
package file
