// Package expr compiles and evaluates the expressions of a pipeline —
// filters, mappings, checks — over records. The language is expr
// (github.com/expr-lang/expr) with Backbone's values and built-ins; this
// package types it against the schema flowing into a step, points its
// errors at the pipeline file, and makes evaluation cheap enough to run on
// every record.
//
//	p, err := expr.Compile(connector.Expr{Src: "qty * unit_price", Pos: pos},
//		expr.Env{Schema: schema, RunTime: env.RunTime, Location: env.Location})
//	if err != nil {
//		return err // a *connector.PosError: "p.yaml:12:18: expression `qty * unit_price`: ..."
//	}
//	ev := p.NewEvaluator() // one per goroutine
//	v, err := ev.EvalContext(ctx, row)
//	if err != nil && !expr.IsFatal(err) {
//		// this record is rejected; err names the expression, the reason and the inputs
//	}
//	row[i] = expr.ToRecord(v) // int -> int64, []string -> []any, ...
//
// Values enter an expression by their record type: string, int (int64),
// float (float64), decimal (record.Dec, exact), bool, timestamp
// (time.Time), date (record.LocalDate), bytes, and json or any (the
// decoded tree, with json.Number turned into int or float64). Any field may
// be null: == and != treat null as a value unequal to every other;
// arithmetic, ordering and a null where a bool is needed are errors of that
// record, never of the run.
//
// Decimals are exact. Every arithmetic and comparison operator is
// overloaded when a side is a decimal (or of a type known only at run
// time): decimal op int/decimal stays a decimal, decimal op float is a
// float, and a float compared with a decimal is taken at its shortest text,
// so price == 0.3 holds for the decimal 0.3.
//
// Invariants:
//
//   - Compile type-checks everything the schema allows: an unknown field, a
//     string multiplied by a number, a function called with a wrong
//     argument, an undeclared lookup named by a literal, an unknown zone or
//     unit written as a literal are errors before anything is read.
//   - A Program is immutable and shared; an Evaluator belongs to one
//     goroutine. Evaluation reads fields by position from the row: the
//     compiled code loads them from VM variables filled from the row, with
//     no map built per record. Operators and the read of a literal field
//     of a lookup's row (lookup("fx", currency).rate) are direct calls of
//     functions made per Evaluator: no argument slice, no row object, and
//     decimal and float results boxed in the Evaluator's own slabs.
//   - Nothing reads the wall clock: run_time is Env.RunTime, and now() and
//     date() are not available. Zones are named; the machine's is never
//     used.
//   - A lookup that cannot be answered returns an error for which IsFatal
//     is true: the step fails the run instead of rejecting records.
package expr
