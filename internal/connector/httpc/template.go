package httpc

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
)

// template is text with {{name}} placeholders: a URL with key values, an
// idempotency key over a record's fields.
type template struct {
	lits  []string // len(names)+1 literal parts
	names []string
	query []bool // the placeholder is in a URL's query (after '?')
}

func parseTemplate(s string) (*template, error) {
	t := &template{}
	inQuery := false
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return nil, fmt.Errorf("a }} without its {{")
			}
			t.lits = append(t.lits, s)
			return t, nil
		}
		lit := s[:i]
		if strings.Contains(lit, "}}") {
			return nil, fmt.Errorf("a }} without its {{")
		}
		inQuery = inQuery || strings.Contains(lit, "?")
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("a {{ without its }}")
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		if name == "" || strings.ContainsAny(name, "{} ") {
			return nil, fmt.Errorf("{{%s}} does not name a field", s[i+2:i+j])
		}
		t.lits = append(t.lits, lit)
		t.names = append(t.names, name)
		t.query = append(t.query, inQuery)
		s = s[i+j+2:]
	}
}

// literal is the template's text with its placeholders removed, for
// checking a URL's form.
func (t *template) literal() string {
	var b strings.Builder
	for i, l := range t.lits {
		b.WriteString(l)
		if i < len(t.names) {
			b.WriteString("x")
		}
	}
	return b.String()
}

// render fills the placeholders with the texts of vals (by placeholder);
// escape escapes them for a URL: path segments or query values.
func (t *template) render(vals []string, escape bool) string {
	var b strings.Builder
	for i, l := range t.lits {
		b.WriteString(l)
		if i == len(t.names) {
			break
		}
		v := vals[i]
		switch {
		case !escape:
		case t.query[i]:
			v = url.QueryEscape(v)
		default:
			v = url.PathEscape(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// keyText is a key value's text in a URL or a request: canonical, so
// that 42, 42.0 and "42" ask for the same thing.
func keyText(v any) string {
	var buf [32]byte
	return string(connector.AppendKey(buf[:0], []any{v}))
}
