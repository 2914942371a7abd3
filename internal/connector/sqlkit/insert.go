package sqlkit

import "strings"

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
