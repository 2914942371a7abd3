package httpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// path is a place in a JSON document: member names and array indexes
// separated by dots ("data.items", "results.0.customer"). The empty path
// is the document itself.
type path []string

func parsePath(s string) (path, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "." || s == "$" {
		return nil, nil
	}
	s = strings.TrimPrefix(s, "$.")
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%q is not a path (members separated by dots, like data.items)", s)
		}
	}
	return parts, nil
}

func (p path) String() string {
	if len(p) == 0 {
		return "the document"
	}
	return strings.Join(p, ".")
}

// get follows p into v; ok is false when a step is missing.
func (p path) get(v any) (any, bool) {
	for _, step := range p {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[step]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// decodeJSON decodes one JSON document, numbers kept exact (json.Number).
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the response is empty, not JSON")
		}
		return nil, fmt.Errorf("the response is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the response holds more than one JSON value")
	}
	return v, nil
}

// fieldReader turns JSON records into rows of a schema.
type fieldReader struct {
	schema *record.Schema
	paths  []path // of each field inside a record
	loc    *time.Location
}

func newFieldReader(schema *record.Schema, paths connector.Map, loc *time.Location) (*fieldReader, error) {
	fr := &fieldReader{schema: schema, loc: loc}
	given := map[string]path{}
	for _, kv := range paths {
		if _, ok := schema.Index(kv.Key); !ok {
			return nil, connector.Errorf(kv.KeyPos, "paths: %q is not a field of the schema (%s)", kv.Key, strings.Join(schema.Names(), ", "))
		}
		p, err := parsePath(kv.Value)
		if err != nil {
			return nil, connector.Errorf(kv.Pos, "paths: %s: %v", kv.Key, err)
		}
		given[kv.Key] = p
	}
	for _, f := range schema.Fields() {
		p, ok := given[f.Name]
		if !ok {
			p = path{f.Name}
		}
		fr.paths = append(fr.paths, p)
	}
	return fr, nil
}

// row converts one record; the error names the field and the value.
func (fr *fieldReader) row(rec any) (record.Row, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a record must be a JSON object, got %s", jsonKind(rec))
	}
	row := make(record.Row, len(fr.paths))
	for i, p := range fr.paths {
		v, _ := p.get(obj)
		if v == nil {
			continue
		}
		f := fr.schema.Field(i)
		x, err := convert(v, f.Type, fr.loc)
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", f.Name, err)
		}
		row[i] = x
	}
	return row, nil
}

// convert turns a decoded JSON value into the representation of t. An
// object or array becomes its JSON text in a string field.
func convert(v any, t record.Type, loc *time.Location) (any, error) {
	switch v.(type) {
	case map[string]any, []any:
		switch t {
		case record.JSON, record.Any:
			return v, nil
		case record.String:
			b, err := json.Marshal(v)
			return string(b), err
		}
		return nil, fmt.Errorf("a JSON %s is not a %s", jsonKind(v), t)
	}
	x, err := record.Convert(v, t, loc)
	if err != nil {
		var ce *record.ConvError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, err
	}
	return x, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

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

// members lists the member names of a JSON object for messages.
func members(doc any) string {
	obj, ok := doc.(map[string]any)
	if !ok {
		return "the response is a JSON " + jsonKind(doc)
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 10 {
		names = append(names[:10], "…")
	}
	return "its members: " + strings.Join(names, ", ")
}
