// Package step holds the built-in steps — filter, map, select, drop,
// rename, cast, validate, enrich, dedupe — and registers them with
// Register. A step is a typed configuration decoded by its factory, bound
// once per run to the schema flowing in (where its expressions are
// compiled and its field names checked), then given batch after batch.
//
//	r := connector.NewRegistry()
//	step.Register(r)
//	e, _ := r.Get(connector.KindStep, "filter")
//	p, _ := connector.ParamsFromYAML(`status != "cancelled"`)
//	s, _ := e.Step(p)
//	out, err := s.Bind(in, &connector.StepEnv{Env: env, Name: "filter[1]", Lookups: tables})
//	// err is a *connector.PosError pointing into the pipeline file
//	err = s.Process(ctx, batch) // batch.Schema becomes out
//
// Invariants:
//
//   - Per batch, rows in = rows out + new rejects + newly filtered: a
//     record a step does not keep is rejected (with the step's name, the
//     field, the value and the reason) or counted as filtered, never lost.
//   - A record's own failure (an expression that fails on it, a value that
//     does not convert, a missing lookup row) rejects that record; Process
//     returns an error only for what fails the run — a lookup that cannot
//     be answered, a batch of another schema.
//   - Process is safe for concurrent use: evaluators are kept per goroutine
//     in a pool, never shared. dedupe is Ordered and sees batches one at a
//     time in source order.
//   - A rejected record is kept as it came into the step: steps build new
//     values aside and only replace a row once it passed.
//   - A step that adds fields (map, enrich) widens a row in place only when
//     the batch says its rows own their spare capacity (record.Batch.OwnCap);
//     otherwise it moves the batch's rows to new ones, made in one
//     allocation with the capacity the later steps need
//     (record.Schema.RowCap), so that they widen in place. Bind derives
//     output schemas from input schemas (Schema.Derive) for that.
//   - Configuration errors are found by the factory (shape) and by Bind
//     (names, types, expressions), before any record is read.
package step
