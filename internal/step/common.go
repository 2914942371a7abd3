package step

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/expr"
	"github.com/backbone-etl/backbone/internal/record"
)

// where is what a step knows of its place in the pipeline file.
type where struct {
	kind string        // "filter"
	pos  connector.Pos // of the step's value
	file string
}

func whereOf(kind string, p connector.Params) where {
	pos := p.Pos()
	return where{kind: kind, pos: pos, file: pos.File}
}

// at returns a position decoded from a node with the file filled in, or
// the step's own place when the position is unknown.
func (w where) at(p connector.Pos) connector.Pos {
	if p.Line == 0 {
		return w.pos
	}
	return withFile(p, w.file)
}

func (w where) errorf(p connector.Pos, format string, args ...any) *connector.PosError {
	return &connector.PosError{Pos: w.at(p), Msg: w.kind + ": " + fmt.Sprintf(format, args...)}
}

// label is the step's name in rejects: the engine's ("map[2]") or the kind.
func label(env *connector.StepEnv, kind string) string {
	if env != nil && env.Name != "" {
		return env.Name
	}
	return kind
}

func exprEnv(in *record.Schema, env *connector.StepEnv) expr.Env {
	e := expr.Env{Schema: in}
	if env != nil {
		e.Lookups = env.Lookups
		if env.Env != nil {
			e.RunTime = env.RunTime
			e.Location = env.Location
		}
	}
	return e
}

func location(env *connector.StepEnv) *time.Location {
	if env != nil && env.Env != nil && env.Location != nil {
		return env.Location
	}
	return time.UTC
}

// compile compiles an expression whose place in the file is known only by
// line and column, adding the file.
func (w where) compile(e connector.Expr, env expr.Env) (*expr.Program, error) {
	e.Pos = w.at(e.Pos)
	return expr.Compile(e, env)
}

// fieldIndex finds a field or explains, with a suggestion, that it is not
// there.
func (w where) fieldIndex(s *record.Schema, n name) (int, error) {
	if i, ok := s.Index(n.Name); ok {
		return i, nil
	}
	return 0, w.errorf(n.Pos, "%s", unknownField(n.Name, s.Names()))
}

func unknownField(field string, names []string) string {
	if s, ok := connector.Closest(field, names); ok {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", field, s)
	}
	if len(names) == 0 {
		return fmt.Sprintf("unknown field %q (no fields flow into this step)", field)
	}
	return fmt.Sprintf("unknown field %q (fields: %s)", field, listNames(names))
}

func listNames(names []string) string {
	const most = 12
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(", … (%d more)", len(names)-most)
	}
	return strings.Join(names, ", ")
}

// newRows returns n rows of width values and room values of capacity,
// backed by one allocation, so that widening a batch costs one allocation,
// not one per row. Each row's capacity is its own.
func newRows(n, width, room int) []record.Row {
	room = max(room, width)
	slab := make([]any, n*room)
	rows := make([]record.Row, n)
	for i := range rows {
		rows[i] = slab[i*room : i*room+width : (i+1)*room]
	}
	return rows
}

// widener gives the rows of one batch room for the fields a step adds. A
// row that owns capacity enough (Batch.OwnCap) grows in place; the others
// move, all at once, to new rows with the capacity the steps after this one
// need (Schema.RowCap), so that they grow in place. Either way the widened
// rows own their capacity: call done once the batch's rows are widened.
type widener struct {
	width, room int
	inPlace     bool
	spare       []record.Row
}

func newWidener(b *record.Batch, out *record.Schema) widener {
	return widener{width: out.Len(), room: out.RowCap(), inPlace: b.OwnCap}
}

// widen returns row with width values: its own followed by nulls. left is
// the number of rows of the batch still to widen, this one included.
func (w *widener) widen(row record.Row, left int) record.Row {
	if w.inPlace && cap(row) >= w.width {
		nr := row[:w.width]
		// What a step before left there is not this row's. Mostly there
		// is nothing: reading costs less than clearing, which takes a
		// write barrier per value while the collector runs.
		for i := len(row); i < len(nr); i++ {
			if nr[i] != nil {
				nr[i] = nil
			}
		}
		return nr
	}
	if len(w.spare) == 0 {
		w.spare = newRows(left, w.width, w.room)
	}
	nr := w.spare[0]
	w.spare = w.spare[1:]
	copy(nr, row)
	return nr
}

// done records that the batch's rows own their capacity.
func (w *widener) done(b *record.Batch) { b.OwnCap = true }

// evalPool keeps one set of evaluators per goroutine that processes
// batches: an Evaluator is never shared between goroutines.
type evalPool struct {
	progs []*expr.Program
	pool  sync.Pool
}

func newEvalPool(progs []*expr.Program) *evalPool {
	p := &evalPool{progs: progs}
	p.pool.New = func() any {
		evs := make([]*expr.Evaluator, len(progs))
		for i, pr := range progs {
			evs[i] = pr.NewEvaluator()
		}
		return &evs
	}
	return p
}

func (p *evalPool) get() *[]*expr.Evaluator  { return p.pool.Get().(*[]*expr.Evaluator) }
func (p *evalPool) put(e *[]*expr.Evaluator) { p.pool.Put(e) }

// isBoolish reports whether a program may give a bool: it does, or its
// type is known only at run time.
func isBoolish(p *expr.Program) bool {
	return p.Type() == record.Bool || p.Type() == record.Any
}

// sameSchema checks that a batch has the schema the step was bound to: the
// step reads fields by position.
func sameSchema(name string, b *record.Batch, in *record.Schema) error {
	if b.Schema == in || b.Schema.Equal(in) {
		return nil
	}
	return fmt.Errorf("%s: batch schema (%s) is not the one the step was bound to (%s)", name, b.Schema, in)
}
