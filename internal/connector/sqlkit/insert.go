package sqlkit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Insert builds the multi-row INSERT statements of one table, one for each
// number of rows, and keeps the last ones built.
type Insert struct {
	head   string // INSERT INTO t (c1, …) VALUES
	tuple  string // (?, ?, …)
	tail   string // the conflict clause of an upsert
	byRows map[int]string
}

// NewInsert returns the INSERT statements of cols of table, ending with
// conflict (the dialect's clause for an upsert, or ""). quote quotes an
// identifier.
func NewInsert(quote func(string) string, table string, cols []string, conflict string) *Insert {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	return &Insert{
		head:   "INSERT INTO " + quote(table) + " (" + strings.Join(quoted, ", ") + ") VALUES ",
		tuple:  "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")",
		tail:   conflict,
		byRows: map[int]string{},
	}
}

// Rows returns the INSERT statement for n rows.
func (in *Insert) Rows(n int) string {
	if q, ok := in.byRows[n]; ok {
		return q
	}
	var b strings.Builder
	b.Grow(len(in.head) + n*(len(in.tuple)+2) + len(in.tail))
	b.WriteString(in.head)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(in.tuple)
	}
	b.WriteString(in.tail)
	if len(in.byRows) > 64 { // bisection and byte limits make odd sizes
		clear(in.byRows)
	}
	in.byRows[n] = b.String()
	return in.byRows[n]
}

// Split stages the rows lo:hi of a batch with stage, which runs one
// statement for them. When the database refuses the statement for one of
// its rows, stage undoes it and returns that error as refused; the range is
// then split in halves until the refused rows stand alone, and reject gets
// each of them with its error. Any other error of stage ends the staging.
func Split(lo, hi int, stage func(lo, hi int) (refused, err error), reject func(i int, err error)) error {
	refused, err := stage(lo, hi)
	if err != nil || refused == nil {
		return err
	}
	if hi-lo == 1 {
		reject(lo, refused)
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := Split(lo, mid, stage, reject); err != nil {
		return err
	}
	return Split(mid, hi, stage, reject)
}

// CheckRow tells why row cannot be stored before any value is bound: it
// has not the schema's number of values, or a key field (keyIdx) is null.
func CheckRow(schema *record.Schema, keyIdx []int, row record.Row) error {
	if len(row) != schema.Len() {
		return fmt.Errorf("row has %d values, the schema %d fields", len(row), schema.Len())
	}
	for _, k := range keyIdx {
		if row[k] == nil {
			return fmt.Errorf("key field %q is null", schema.Field(k).Name)
		}
	}
	return nil
}

// Written is what a Write of a batch of n rows returns when the rows bad
// were refused: the number written and, if any was refused, a
// *connector.BatchError with the refused rows in batch order.
func Written(n int, bad []connector.RowError) (int, error) {
	if len(bad) == 0 {
		return n, nil
	}
	slices.SortFunc(bad, func(a, b connector.RowError) int { return a.Index - b.Index })
	return n - len(bad), &connector.BatchError{Rows: bad}
}
