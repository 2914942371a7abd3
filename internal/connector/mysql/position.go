package mysql

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/record"
)

// A source position is JSON:
//
//	{"v":1,"run":"…","schema":[{"n":"id","t":"int"},…],"cols":["updated_at","id"],"vals":[{"t":"2024-03-01T10:00:00.123456Z"},{"i":42}]}
//
// after an ordered read: the ordering columns' values of the last row read,
// each tagged with its type so that it binds back exactly as the server
// gave it; or {"v":1,"run":"…","schema":[…],"offset":n} after n rows of an
// unordered read. run is the run that wrote it (lookback applies to the
// positions of earlier runs only); schema is the fields read, for the
// schema drift check of the next run.
const posVersion = 1

type posJSON struct {
	V      int        `json:"v"`
	Run    string     `json:"run,omitempty"`
	Schema []posField `json:"schema,omitempty"`
	Cols   []string   `json:"cols,omitempty"`
	Vals   []posVal   `json:"vals,omitempty"`
	Offset *int64     `json:"offset,omitempty"`
}

type posField struct {
	N string `json:"n"`
	T string `json:"t"`
}

// posVal is one value; all fields empty is NULL.
type posVal struct {
	I *int64  `json:"i,omitempty"` // a signed integer
	U *string `json:"u,omitempty"` // BIGINT UNSIGNED, decimal text
	F *string `json:"f,omitempty"` // a float, as strconv writes it (exact)
	D *string `json:"d,omitempty"` // DECIMAL text, exact
	S *string `json:"s,omitempty"` // text, valid UTF-8
	X []byte  `json:"x,omitempty"` // text that is not valid UTF-8, base64
	B *[]byte `json:"b,omitempty"` // bytes, base64
	T *string `json:"t,omitempty"` // DATE, DATETIME, TIMESTAMP: RFC 3339, nanoseconds and zone
}

func (v posVal) value() (any, error) {
	switch {
	case v.I != nil:
		return *v.I, nil
	case v.U != nil:
		return strconv.ParseUint(*v.U, 10, 64)
	case v.F != nil:
		return strconv.ParseFloat(*v.F, 64)
	case v.D != nil:
		if _, err := record.ParseDec(*v.D); err != nil {
			return nil, err
		}
		return []byte(*v.D), nil
	case v.S != nil:
		return []byte(*v.S), nil
	case v.X != nil:
		return v.X, nil
	case v.B != nil:
		b := *v.B
		if b == nil {
			b = []byte{} // nil binds as NULL
		}
		return b, nil
	case v.T != nil:
		return time.Parse(time.RFC3339Nano, *v.T)
	}
	return nil, nil
}

// encodeVal tags a bindable ordering value of column c.
func encodeVal(c column, v any) posVal {
	var p posVal
	switch x := v.(type) {
	case nil:
	case int64:
		p.I = &x
	case uint64:
		s := strconv.FormatUint(x, 10)
		p.U = &s
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		p.F = &s
	case time.Time:
		s := x.Format(time.RFC3339Nano)
		p.T = &s
	case []byte:
		switch {
		case c.kind == kDecimal:
			s := string(x)
			p.D = &s
		case c.kind == kBytes || c.kind == kBit:
			b := x
			if b == nil {
				b = []byte{}
			}
			p.B = &b
		case utf8.Valid(x):
			s := string(x)
			p.S = &s
		default:
			p.X = x
		}
	case string:
		if utf8.ValidString(x) {
			p.S = &x
		} else {
			p.X = []byte(x)
		}
	default:
		s := fmt.Sprint(x)
		p.S = &s
	}
	return p
}

// decodePos parses a position; nil for none.
func decodePos(pos record.Position) (*posJSON, error) {
	if len(pos) == 0 {
		return nil, nil
	}
	var p posJSON
	if err := json.Unmarshal(pos, &p); err != nil {
		return nil, fmt.Errorf("checkpoint %q is not a position of this source: %w", cut(pos), err)
	}
	if p.V != posVersion {
		return nil, fmt.Errorf("checkpoint %q has version %d; this version of backbone reads version %d", cut(pos), p.V, posVersion)
	}
	return &p, nil
}

// fields returns the schema stored in the position.
func (p *posJSON) fields() ([]record.Field, error) {
	out := make([]record.Field, len(p.Schema))
	for i, f := range p.Schema {
		t, err := record.ParseType(f.T)
		if err != nil {
			return nil, fmt.Errorf("checkpoint schema, field %q: %w", f.N, err)
		}
		out[i] = record.Field{Name: f.N, Type: t}
	}
	if len(out) == 0 {
		return nil, errors.New("checkpoint schema is empty")
	}
	return out, nil
}

// encodePrefix renders the position's constant part: everything up to the
// values, once per reader.
func (r *reader) encodePrefix() []byte {
	p := posJSON{V: posVersion, Run: r.run}
	for _, f := range r.Schema().Fields() {
		p.Schema = append(p.Schema, posField{N: f.Name, T: f.Type.String()})
	}
	for _, c := range r.order {
		p.Cols = append(p.Cols, c.name)
	}
	b, _ := json.Marshal(p)
	return b[:len(b)-1] // without the closing brace
}

func (r *reader) encodeKeyset() record.Position {
	vals := make([]posVal, len(r.Last))
	for i, v := range r.Last {
		vals[i] = encodeVal(r.order[i], v)
	}
	vb, _ := json.Marshal(vals)
	out := make([]byte, 0, len(r.posPrefix)+len(vb)+10)
	out = append(out, r.posPrefix...)
	out = append(out, `,"vals":`...)
	out = append(out, vb...)
	return append(out, '}')
}

func (r *reader) encodeOffset() record.Position {
	out := make([]byte, 0, len(r.posPrefix)+32)
	out = append(out, r.posPrefix...)
	out = append(out, `,"offset":`...)
	out = strconv.AppendInt(out, r.Offset, 10)
	return append(out, '}')
}

func cut(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
