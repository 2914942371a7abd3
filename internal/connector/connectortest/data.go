package connectortest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/record"
)

// Schema is the schema of every row the suite reads and writes: an integer
// key, text with characters that need quoting, an exact decimal, a
// timestamp with microseconds and a nullable text. A harness stores these
// fields in its target's own types (BIGINT, NUMERIC(12,2), TIMESTAMPTZ, …)
// and its source reads them back as these types.
var Schema = record.MustSchema(
	record.Field{Name: "id", Type: record.Int},
	record.Field{Name: "name", Type: record.String},
	record.Field{Name: "amount", Type: record.Decimal},
	record.Field{Name: "created_at", Type: record.Timestamp},
	record.Field{Name: "note", Type: record.String},
)

// Column positions in Schema.
const (
	ColID = iota
	ColName
	ColAmount
	ColCreatedAt
	ColNote
)

// MaxNameLen is the longest name Row makes. A target may declare name as
// VARCHAR(MaxNameLen) and refuse longer ones (see SinkTarget.Refuse).
const MaxNameLen = 64

// base is the created_at of the first group of rows.
var base = time.Date(2024, 3, 31, 0, 59, 59, 0, time.UTC)

// TieGroup is how many consecutive ids share one created_at: a cursor on
// created_at then id has ties that straddle batch boundaries.
const TieGroup = 10

// Row returns the row with key id (from 1). The values depend on id alone,
// so a harness can make more rows that come after the first ones in every
// order the suite uses (id, created_at then id):
//
//   - name: plain for most ids; every fifth holds a comma, double and single
//     quotes and a non-ASCII letter;
//   - amount: id × 1.25 − 30, negative for the first ids, two decimals;
//   - created_at: one value per TieGroup ids, UTC, increasing with id, with
//     a microsecond fraction that is never zero;
//   - note: NULL when id is a multiple of 4, the empty string when id is 2
//     modulo 4, text otherwise.
func Row(id int64) record.Row {
	name := fmt.Sprintf("name %d", id)
	if id%5 == 0 {
		name = fmt.Sprintf(`Zoë "%d", O'Brien`, id)
	}
	cents := id*125 - 3000
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	amount := record.MustDec(fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100))
	group := (id - 1) / TieGroup
	at := base.Add(time.Duration(group)*(time.Hour+time.Second) + time.Duration(1+group*7919%999_999)*time.Microsecond)
	var note any
	switch id % 4 {
	case 0:
	case 2:
		note = ""
	default:
		note = fmt.Sprintf("note %d", id)
	}
	return record.Row{id, name, amount, at, note}
}

// Rows returns the rows with ids 1 to n.
func Rows(n int) []record.Row { return RowRange(1, n) }

// RowRange returns n rows with ids from first on.
func RowRange(first int64, n int) []record.Row {
	rows := make([]record.Row, n)
	for i := range rows {
		rows[i] = Row(first + int64(i))
	}
	return rows
}

// Text renders a value of Schema as text that record.ParseText reads back
// (RFC 3339 with the fraction for timestamps, exact decimals); nil is "".
func Text(v any) string { return record.FormatText(v) }

// FromText builds a row of Schema from texts in field order, nil for NULL,
// as a harness reads them from its target. Timestamps without a zone are
// UTC.
func FromText(vals []*string) (record.Row, error) {
	if len(vals) != Schema.Len() {
		return nil, fmt.Errorf("%d values for %d fields", len(vals), Schema.Len())
	}
	row := make(record.Row, len(vals))
	for i, v := range vals {
		if v == nil {
			continue
		}
		x, err := record.ParseText(*v, Schema.Field(i).Type, time.UTC)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", Schema.Field(i).Name, err)
		}
		row[i] = x
	}
	return row, nil
}

// projection maps the fields of a schema onto Schema by name.
type projection struct {
	idx []int // for each field of Schema, its index in the other schema
}

// project checks that s has every field of Schema, with the same type, and
// returns how to take rows of s apart. Extra fields are ignored.
func project(s *record.Schema) (*projection, error) {
	if s == nil {
		return nil, fmt.Errorf("no schema")
	}
	p := &projection{idx: make([]int, Schema.Len())}
	var problems []string
	for i, f := range Schema.Fields() {
		j, ok := s.Index(f.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("no field %q", f.Name))
			continue
		}
		if got := s.Field(j).Type; got != f.Type {
			problems = append(problems, fmt.Sprintf("field %q is %s, want %s", f.Name, got, f.Type))
		}
		p.idx[i] = j
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("schema (%s): %s", s, strings.Join(problems, "; "))
	}
	return p, nil
}

func (p *projection) row(r record.Row) record.Row {
	out := make(record.Row, len(p.idx))
	for i, j := range p.idx {
		if j < len(r) {
			out[i] = r[j]
		}
	}
	return out
}

// equalValue compares two values of type t as the target should keep
// them: decimals by value (12.5 = 12.50), timestamps by instant.
func equalValue(t record.Type, a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch t {
	case record.Decimal:
		x, ok1 := a.(record.Dec)
		y, ok2 := b.(record.Dec)
		return ok1 && ok2 && x.Cmp(y) == 0
	case record.Timestamp:
		x, ok1 := a.(time.Time)
		y, ok2 := b.(time.Time)
		return ok1 && ok2 && x.Equal(y)
	}
	return a == b
}

// rowString renders a row of Schema for messages, with the Go type of
// each value, so that "12.5" the string and 12.5 the decimal differ.
func rowString(r record.Row) string {
	var b strings.Builder
	b.WriteString("{")
	for i, v := range r {
		if i > 0 {
			b.WriteString(", ")
		}
		name := fmt.Sprint(i)
		if i < Schema.Len() {
			name = Schema.Field(i).Name
		}
		if v == nil {
			fmt.Fprintf(&b, "%s: NULL", name)
			continue
		}
		fmt.Fprintf(&b, "%s: %T(%s)", name, v, record.FormatText(v))
	}
	b.WriteString("}")
	return b.String()
}

func rowID(r record.Row) int64 {
	if len(r) == 0 {
		return 0
	}
	id, _ := r[ColID].(int64)
	return id
}

// Mode of a comparison of rows.
type match int

const (
	exactlyOnce match = iota // each wanted row once, nothing else
	atLeastOnce              // each wanted row, repeats allowed, nothing else
)

// diffRows compares rows of Schema by id and reports what differs: ids
// missing, repeated or unexpected, and values that differ. It returns ""
// when got matches want.
func diffRows(got, want []record.Row, m match) string {
	wantBy := make(map[int64]record.Row, len(want))
	for _, r := range want {
		wantBy[rowID(r)] = r
	}
	count := make(map[int64]int, len(got))
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 12 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 12 {
			problems = append(problems, "…")
		}
	}
	for _, r := range got {
		if len(r) != Schema.Len() {
			add("a row has %d values, want %d: %s", len(r), Schema.Len(), rowString(r))
			continue
		}
		id := rowID(r)
		count[id]++
		w, ok := wantBy[id]
		if !ok {
			add("unexpected row %s", rowString(r))
			continue
		}
		if count[id] > 1 {
			continue
		}
		for i := range w {
			if !equalValue(Schema.Field(i).Type, r[i], w[i]) {
				add("id %d: got %s\n\twant %s", id, rowString(r), rowString(w))
				break
			}
		}
	}
	var missing, repeated []int64
	for id := range wantBy {
		switch c := count[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1 && m == exactlyOnce:
			repeated = append(repeated, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		add("%d rows missing, ids %s", len(missing), idList(missing))
	}
	if len(repeated) > 0 {
		slices.Sort(repeated)
		add("%d rows more than once, ids %s", len(repeated), idList(repeated))
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("%d rows, want %d:\n\t%s", len(got), len(want), strings.Join(problems, "\n\t"))
}

// idList renders ids compactly: 1-64, 70, 90-99.
func idList(ids []int64) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, fmt.Sprint(ids[i]))
		}
		i = j + 1
	}
	if len(parts) > 20 {
		parts = append(parts[:20], "…")
	}
	return strings.Join(parts, ", ")
}

// checkRows fails the test when got does not match want.
func checkRows(t testing.TB, what string, got, want []record.Row, m match) bool {
	t.Helper()
	if d := diffRows(got, want, m); d != "" {
		t.Errorf("%s: %s", what, d)
		return false
	}
	return true
}
