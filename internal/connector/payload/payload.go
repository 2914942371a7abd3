package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Formats of message bodies.
const (
	FormatJSON = "json" // one JSON object per message, fields by key
	FormatRaw  = "raw"  // the body as it is, in one bytes field
)

// Formats lists the formats, for specs.
var Formats = []string{FormatJSON, FormatRaw}

// DefaultRawField is the field of a raw body when none is named.
const DefaultRawField = "payload"

// Decoder turns message bodies into rows of its schema.
type Decoder struct {
	schema *record.Schema
	loc    *time.Location
	raw    bool
}

// NewDecoder returns a decoder of format. A JSON decoder needs schema; a
// raw one makes its own, of one bytes field named rawField
// (DefaultRawField when empty).
func NewDecoder(format string, schema *record.Schema, rawField string, loc *time.Location) (*Decoder, error) {
	switch format {
	case FormatJSON, "":
		if schema == nil || schema.Len() == 0 {
			return nil, errors.New("format json needs a schema: the keys to read and their types")
		}
		return &Decoder{schema: schema, loc: loc}, nil
	case FormatRaw:
		if rawField == "" {
			rawField = DefaultRawField
		}
		return &Decoder{schema: record.MustSchema(record.Field{Name: rawField, Type: record.Bytes}), raw: true}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want json or raw)", format)
}

// Schema is the schema of the rows Decode fills.
func (d *Decoder) Schema() *record.Schema { return d.schema }

// Decode fills row (of Schema().Len() values) from body. It returns the
// field at fault and a reason when the body cannot be a row; row is then
// garbage.
func (d *Decoder) Decode(body []byte, row record.Row) (field, reason string) {
	if d.raw {
		row[0] = bytes.Clone(body)
		return "", ""
	}
	if !utf8.Valid(body) {
		return "", "the message is not valid UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return "", "the message is not a JSON object: " + err.Error()
	}
	if obj == nil {
		return "", "the message is not a JSON object: null"
	}
	if _, err := dec.Token(); err == nil {
		return "", "the message holds more than one JSON value"
	}
	for i := range row {
		f := d.schema.Field(i)
		v, ok := obj[f.Name]
		if !ok || v == nil {
			row[i] = nil
			continue
		}
		x, err := record.Convert(v, f.Type, d.loc)
		if err != nil {
			return f.Name, fmt.Sprintf("field %s: %v", f.Name, err)
		}
		row[i] = x
	}
	return "", ""
}

// Body is a message's body and its line: the number its row, or its
// reject, carries in the batch.
type Body struct {
	Line int64
	Data []byte
}

// Fill counts the bytes of bodies in b and turns them into b's rows, each
// body that is not a row into a reject of b with its line and data. With
// deferred, the conversion is left to b.Decode, which the engine runs on
// its workers (connector.Env.DeferDecode).
func (d *Decoder) Fill(b *record.Batch, bodies []Body, deferred bool) {
	for _, x := range bodies {
		b.Bytes += int64(len(x.Data))
	}
	decode := func(b *record.Batch) {
		width := b.Schema.Len()
		vals := make([]any, len(bodies)*width)
		for _, x := range bodies {
			row := record.Row(vals[:width:width])
			vals = vals[width:]
			if field, reason := d.Decode(x.Data, row); reason != "" {
				b.Rejects = append(b.Rejects, record.Reject{Line: x.Line, Step: "source", Field: field, Err: reason, Raw: x.Data})
				continue
			}
			b.Rows = append(b.Rows, row)
			b.Lines = append(b.Lines, x.Line)
			b.Raw = append(b.Raw, x.Data)
		}
	}
	if deferred {
		b.Decode = decode
	} else {
		decode(b)
	}
}

// Encoder turns rows into message bodies.
type Encoder struct {
	schema *record.Schema
	raw    int // index of the raw field, -1 for JSON
}

// NewEncoder returns an encoder of rows of schema in format; rawField
// names the field sent as the body of a raw message (DefaultRawField when
// empty), which must be bytes, string or json.
func NewEncoder(format string, schema *record.Schema, rawField string) (*Encoder, error) {
	switch format {
	case FormatJSON, "":
		return &Encoder{schema: schema, raw: -1}, nil
	case FormatRaw:
		if rawField == "" {
			rawField = DefaultRawField
		}
		i, ok := schema.Index(rawField)
		if !ok {
			return nil, fmt.Errorf("format raw sends field %q, which the rows do not have (they have %s)", rawField, schema)
		}
		switch t := schema.Field(i).Type; t {
		case record.Bytes, record.String, record.JSON, record.Any:
		default:
			return nil, fmt.Errorf("format raw sends field %q as the message, which must be bytes, string or json, not %s", rawField, t)
		}
		return &Encoder{schema: schema, raw: i}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want json or raw)", format)
}

// ContentType is the MIME type of the bodies.
func (e *Encoder) ContentType() string {
	if e.raw < 0 {
		return "application/json"
	}
	return "application/octet-stream"
}

// Encode appends the body of row to dst.
func (e *Encoder) Encode(dst []byte, row record.Row) []byte {
	if e.raw < 0 {
		return record.AppendRowJSON(dst, e.schema, row)
	}
	switch v := row[e.raw].(type) {
	case nil:
		return dst
	case []byte:
		return append(dst, v...)
	case string:
		return append(dst, v...)
	default:
		return record.AppendJSON(dst, v)
	}
}

// IDs names the messages made of rows, for broker-side dedupe.
type IDs struct {
	pipeline string
	keys     []int // fields of the key, nil: by origin
}

// NewIDs returns the namer of a pipeline's messages: by the values of the
// key fields when keys is not empty, by the record's origin otherwise.
func NewIDs(pipeline string, schema *record.Schema, keys []string) (*IDs, error) {
	ids := &IDs{pipeline: pipeline}
	for _, k := range keys {
		i, ok := schema.Index(k)
		if !ok {
			return nil, fmt.Errorf("key field %q is not among the fields of the rows (%s)", k, schema)
		}
		ids.keys = append(ids.keys, i)
	}
	return ids, nil
}

// ID returns the id of the message made of row i of b: 32 hex digits.
func (ids *IDs) ID(b *record.Batch, i int) string {
	h := sha256.New()
	var buf []byte
	buf = append(buf, ids.pipeline...)
	buf = append(buf, 0)
	if len(ids.keys) > 0 {
		vals := make([]any, len(ids.keys))
		for j, k := range ids.keys {
			vals[j] = b.Rows[i][k]
		}
		buf = append(buf, 'k')
		buf = connector.AppendKey(buf, vals)
	} else {
		line := int64(i)
		if b.Lines != nil {
			line = b.Lines[i]
		}
		buf = append(buf, 'o')
		buf = append(buf, b.Origin...)
		buf = append(buf, 0)
		buf = append(buf, b.Pos...)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, line, 10)
	}
	h.Write(buf)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
