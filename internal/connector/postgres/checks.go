package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/record"
)

// A table's CHECK constraints that compare a column of integers or exact
// numbers with a number (qty <= 100, price > 0, n BETWEEN 1 AND 9) are
// judged by the writer itself: a row that breaks one is refused before it
// is sent, as the server would refuse it, without undoing a statement and
// sending its other rows again. Any other constraint is the server's
// alone, and so is every constraint of a table with triggers (a BEFORE
// trigger may change the row first) or of a partitioned table.

// check is a CHECK constraint the writer judges: true when all of its
// comparisons are.
type check struct {
	name  string
	conds []cond
}

// cond compares field with lit.
type cond struct {
	field int
	col   string
	op    string // <, <=, >, >=, =, <>
	lit   record.Dec
}

// loadChecks returns the CHECK constraints of the table relOID the writer
// can judge. cols are the writer's columns, by field.
func loadChecks(ctx context.Context, c *pgconn.PgConn, relOID string, cols []copyColumn, oids []uint32) ([]check, error) {
	rows, err := query(ctx, c, `SELECT con.conname, pg_get_constraintdef(con.oid), cl.relhastriggers, cl.relkind
		FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid
		WHERE con.conrelid = $1::oid AND con.contype = 'c' ORDER BY con.conname`, relOID)
	if err != nil {
		return nil, err
	}
	var out []check
	for _, r := range rows {
		if text(r[2]) == "t" || text(r[3]) == "p" {
			return nil, nil
		}
		if ch, ok := parseCheck(text(r[0]), text(r[1]), cols, oids); ok {
			out = append(out, ch)
		}
	}
	return out, nil
}

// parseCheck reads a constraint as pg_get_constraintdef prints it: a
// conjunction of comparisons between a column and a number, in
// parentheses. ok is false for anything else.
func parseCheck(name, def string, cols []copyColumn, oids []uint32) (check, bool) {
	def = strings.TrimSuffix(def, " NOT VALID")
	body, found := strings.CutPrefix(def, "CHECK ")
	if !found {
		return check{}, false
	}
	p := &checkParser{toks: tokenize(body)}
	var ch check
	ch.name = name
	if !p.conj(&ch, cols, oids) || p.pos != len(p.toks) || len(ch.conds) == 0 {
		return check{}, false
	}
	return ch, true
}

type checkParser struct {
	toks []string
	pos  int
}

func (p *checkParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *checkParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

// conj reads term (AND term)*.
func (p *checkParser) conj(ch *check, cols []copyColumn, oids []uint32) bool {
	for {
		if !p.term(ch, cols, oids) {
			return false
		}
		if !strings.EqualFold(p.peek(), "AND") {
			return true
		}
		p.next()
	}
}

// term reads a parenthesized conjunction or a comparison.
func (p *checkParser) term(ch *check, cols []copyColumn, oids []uint32) bool {
	if p.peek() == "(" {
		// "(" conj ")" or "(" operand ")" op … : try the conjunction first.
		save, n := p.pos, len(ch.conds)
		p.next()
		if p.conj(ch, cols, oids) && p.next() == ")" {
			return true
		}
		p.pos, ch.conds = save, ch.conds[:n]
	}
	left, lok := p.operand(cols, oids)
	op := p.next()
	switch op {
	case "<", "<=", ">", ">=", "=", "<>", "!=":
	default:
		return false
	}
	if op == "!=" {
		op = "<>"
	}
	right, rok := p.operand(cols, oids)
	if !lok || !rok || (left.field >= 0) == (right.field >= 0) {
		return false // two columns, or two numbers
	}
	if left.field < 0 { // number op column: column flipped-op number
		left, right = right, left
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}[op]
	}
	ch.conds = append(ch.conds, cond{field: left.field, col: cols[left.field].name, op: op, lit: right.lit})
	return true
}

type operand struct {
	field int // -1: a number
	lit   record.Dec
}

// operand reads a column of integers or unconstrained numerics, or a
// number, in parentheses or not, cast or not to an exact numeric type.
func (p *checkParser) operand(cols []copyColumn, oids []uint32) (operand, bool) {
	var o operand
	t := p.next()
	switch {
	case t == "(":
		var ok bool
		if o, ok = p.operand(cols, oids); !ok || p.next() != ")" {
			return o, false
		}
	case t == "-" || (t != "" && (t[0] >= '0' && t[0] <= '9' || t[0] == '\'')):
		s := t
		if t == "-" {
			s = "-" + p.next()
		}
		s = strings.Trim(s, "'")
		d, err := record.ParseDec(s)
		if err != nil {
			return o, false
		}
		o = operand{field: -1, lit: d}
	default:
		name := t
		if strings.HasPrefix(t, `"`) {
			name = strings.ReplaceAll(strings.Trim(t, `"`), `""`, `"`)
		} else if !isIdent(t) {
			return o, false
		}
		o.field = -1
		for j, c := range cols {
			if c.name == name && exactColumn(c, oids[j]) {
				o.field = j
			}
		}
		if o.field < 0 {
			return o, false
		}
	}
	for p.peek() == "::" {
		// Only casts that change no value: a column to numeric, a whole
		// number to an integer type.
		p.next()
		switch p.next() {
		case "numeric":
		case "integer", "bigint", "smallint":
			if o.field >= 0 || o.lit.Scale() > 0 {
				return o, false
			}
		default:
			return o, false
		}
	}
	return o, true
}

// exactColumn reports whether the writer's values for c compare with a
// number as the server compares the stored value: integers into integer
// columns, and integers or decimals into numeric columns without a
// precision (a numeric(p,s) rounds first).
func exactColumn(c copyColumn, oid uint32) bool {
	switch oid {
	case oidInt2, oidInt4, oidInt8:
		return c.ftype == record.Int
	case oidNumeric:
		return (c.ftype == record.Int || c.ftype == record.Decimal) && !c.scaled
	}
	return false
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || r == '$'))) {
			return false
		}
	}
	return s != "" && !strings.EqualFold(s, "AND") && !strings.EqualFold(s, "OR") && !strings.EqualFold(s, "NOT")
}

// tokenize splits a constraint's text into parentheses, operators, casts,
// quoted names and literals, numbers and words.
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		case c == ':' && i+1 < len(s) && s[i+1] == ':':
			toks = append(toks, "::")
			i += 2
		case c == '<' || c == '>' || c == '=' || c == '!':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(s) {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		case c == '-':
			toks = append(toks, "-")
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" ()<>=!:'\"", rune(s[j])) {
				j++
			}
			if j == i {
				j++
			}
			// A type name of two words ("double precision") stays two
			// tokens: any cast but to an exact numeric type fails.
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// broken returns the first check row breaks, if any: a comparison that is
// false (a NULL makes it unknown, which a CHECK lets pass).
func broken(checks []check, row record.Row) (*check, *cond, any) {
	for i := range checks {
		for k := range checks[i].conds {
			c := &checks[i].conds[k]
			var d record.Dec
			switch v := row[c.field].(type) {
			case int64:
				d = record.DecFromInt(v)
			case record.Dec:
				d = v
			default:
				continue
			}
			cmp := d.Cmp(c.lit)
			var ok bool
			switch c.op {
			case "<":
				ok = cmp < 0
			case "<=":
				ok = cmp <= 0
			case ">":
				ok = cmp > 0
			case ">=":
				ok = cmp >= 0
			case "=":
				ok = cmp == 0
			case "<>":
				ok = cmp != 0
			}
			if !ok {
				return &checks[i], c, row[c.field]
			}
		}
	}
	return nil, nil, nil
}

// checkMessage words a broken check as the server does, with the value.
func checkMessage(table string, ch *check, c *cond, v any) string {
	return fmt.Sprintf("new row for relation %q violates check constraint %q (%s %s %s is false for %v)",
		table, ch.name, c.col, c.op, c.lit.String(), v)
}
