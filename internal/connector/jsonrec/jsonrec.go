package jsonrec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Path is a place in a JSON document: member names and array indexes
// separated by dots ("data.items", "results.0.customer"). The empty path
// is the document itself.
type Path []string

// ParsePath reads a path; "", "." and "$" are the document itself.
func ParsePath(s string) (Path, error) {
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

// MustPath is ParsePath for paths known to be valid.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (p Path) String() string {
	if len(p) == 0 {
		return "the document"
	}
	return strings.Join(p, ".")
}

// Get follows p into v; ok is false when a step is missing.
func (p Path) Get(v any) (any, bool) {
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

// Decode decodes one JSON document, numbers kept exact (json.Number).
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty, not JSON")
		}
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// Reader turns JSON objects into rows of a schema.
type Reader struct {
	schema *record.Schema
	paths  []Path // of each field inside a record
	loc    *time.Location
}

// NewReader reads each field of schema at the member of its name, or at
// the path paths gives it. The error points at the entry of paths at fault.
func NewReader(schema *record.Schema, paths connector.Map) (*Reader, error) {
	rd := &Reader{schema: schema, loc: time.UTC}
	given := map[string]Path{}
	for _, kv := range paths {
		if _, ok := schema.Index(kv.Key); !ok {
			return nil, connector.Errorf(kv.KeyPos, "paths: %q is not a field of the schema (%s)", kv.Key, strings.Join(schema.Names(), ", "))
		}
		p, err := ParsePath(kv.Value)
		if err != nil {
			return nil, connector.Errorf(kv.Pos, "paths: %s: %v", kv.Key, err)
		}
		given[kv.Key] = p
	}
	for _, f := range schema.Fields() {
		p, ok := given[f.Name]
		if !ok {
			p = Path{f.Name}
		}
		rd.paths = append(rd.paths, p)
	}
	return rd, nil
}

// In returns a reader that reads timestamps written without a zone in loc.
func (rd *Reader) In(loc *time.Location) *Reader {
	c := *rd
	if loc != nil {
		c.loc = loc
	}
	return &c
}

// Location is the zone of timestamps written without one.
func (rd *Reader) Location() *time.Location { return rd.loc }

// Path is where field i is read.
func (rd *Reader) Path(i int) Path { return rd.paths[i] }

// Row converts one record; the error names the field and the value.
func (rd *Reader) Row(rec any) (record.Row, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a record must be a JSON object, got %s", Kind(rec))
	}
	row := make(record.Row, len(rd.paths))
	for i, p := range rd.paths {
		v, _ := p.Get(obj)
		if v == nil {
			continue
		}
		f := rd.schema.Field(i)
		x, err := Convert(v, f.Type, rd.loc)
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", f.Name, err)
		}
		row[i] = x
	}
	return row, nil
}

// Convert turns a decoded JSON value into the representation of t. An
// object or an array becomes its JSON text in a string field.
func Convert(v any, t record.Type, loc *time.Location) (any, error) {
	switch v.(type) {
	case map[string]any, []any:
		switch t {
		case record.JSON, record.Any:
			return v, nil
		case record.String:
			b, err := json.Marshal(v)
			return string(b), err
		}
		return nil, fmt.Errorf("a JSON %s is not a %s", Kind(v), t)
	}
	return record.Convert(v, t, loc)
}

// Kind names the JSON type of a decoded value.
func Kind(v any) string {
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

// Members lists the member names of a JSON object for messages.
func Members(doc any) string {
	obj, ok := doc.(map[string]any)
	if !ok {
		return "the document is a JSON " + Kind(doc)
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
