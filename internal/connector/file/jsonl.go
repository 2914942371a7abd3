package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var jsonlSourceSpec = connector.Spec{
	Name:    "jsonl",
	Summary: "Read JSON Lines files: one object per line, one task per file matched.",
	Doc: `Reads every file the path (a file or a glob) matches, in name order; each file
is a task, read once and remembered. Each line holds one JSON object; blank lines
are skipped. The schema picks fields by key: other keys are ignored and a missing
key is null. Numbers are read exactly (a decimal keeps every digit, an int every
bit). A line that is not a JSON object, holds invalid JSON or invalid UTF-8, is
longer than the record size limit, or holds a value that does not convert to its
field's type is rejected with its line and the reason; the run goes on.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "File or glob (events/*.jsonl.gz), relative to the pipeline file."},
		{Name: "schema", Type: connector.TSchema, Required: true, Doc: "Field names (object keys) and types."},
		{Name: "timezone", Type: connector.TString, Doc: "Zone of timestamps written without one (IANA name); the run's zone by default."},
		{Name: "min_age", Type: connector.TDuration, Default: "0s", Doc: "Leave files modified less than this long before the run for a later run."},
		{Name: "compression", Type: connector.TEnum, Default: compAuto, Enum: compressionEnum, Doc: "auto: gzip when the name ends in .gz."},
	},
	Example: `source:
  type: jsonl
  path: events/*.jsonl.gz
  schema: { id: int, kind: string, amount: decimal, at: timestamp, payload: json }`,
}

type jsonlSourceConfig struct {
	Path        string              `yaml:"path"`
	Schema      connector.SchemaDef `yaml:"schema"`
	Timezone    string              `yaml:"timezone"`
	MinAge      connector.Duration  `yaml:"min_age"`
	Compression string              `yaml:"compression"`
}

type jsonlSource struct {
	files  fileSet
	schema *record.Schema
	loc    *time.Location
}

func newJSONLSource(p connector.Params) (connector.Source, error) {
	cfg := jsonlSourceConfig{Compression: compAuto}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkPattern(p, cfg.Path); err != nil {
		return nil, err
	}
	if err := checkEnum(p, "compression", cfg.Compression, compressionEnum); err != nil {
		return nil, err
	}
	schema := cfg.Schema.Schema()
	if schema == nil {
		return nil, connector.Errorf(p.FieldPos("schema"), "jsonl needs a schema: the keys to read and their types")
	}
	loc, err := connector.LoadZone(p, cfg.Timezone)
	if err != nil {
		return nil, err
	}
	s := &jsonlSource{
		files:  fileSet{kind: "jsonl", pattern: cfg.Path, minAge: time.Duration(cfg.MinAge), compression: cfg.Compression},
		schema: schema,
		loc:    loc,
	}
	return sourceWithSchema{Source: s, schema: schema}, nil
}

// Plan implements connector.Source.
func (s *jsonlSource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	return s.files.plan(ctx, env)
}

// Open implements connector.Source.
func (s *jsonlSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	var start textPos
	if pos != nil {
		var err error
		if start, err = decodeTextPos(pos); err != nil {
			return nil, fmt.Errorf("jsonl: %s: %w", t.Key, err)
		}
	}
	o, err := s.files.openTask(env, t)
	if err != nil {
		return nil, err
	}
	lim := limits(env)
	w := newWindow(o.r, lim.MaxRecordBytes+2)
	w.skipBOM()
	if pos != nil {
		if err := seekTo(o, w, start, t.Key); err != nil {
			o.Close()
			return nil, fmt.Errorf("jsonl: %w", err)
		}
	}
	return &jsonlReader{
		key:    t.Key,
		file:   o,
		lines:  &lineSplitter{w: w, maxRec: lim.MaxRecordBytes},
		lim:    lim,
		dec:    newObjectDecoder(s.schema, connector.ZoneOf(s.loc, env)),
		schema: s.schema,
	}, nil
}

// lineSplitter cuts a stream into lines with the same offsets, line
// numbers and size cap as csvParser, for formats without quoting.
type lineSplitter struct {
	w      *window
	maxRec int
	prefix []byte
}

// next returns the next line (recRow), a blank line, a line over the cap
// (recReject, skipped to its end without being held whole) or recEOF.
func (l *lineSplitter) next() (rawRecord, error) {
	w := l.w
	for {
		b := w.avail()
		k := bytes.IndexByte(b, '\n')
		if k >= 0 || (w.eof && len(b) > 0) {
			line, next, lines := b, len(b), int64(0)
			if k >= 0 {
				line, next, lines = b[:k], k+1, 1
			}
			line = line[:trimCR(line, 0, len(line))]
			rec := rawRecord{kind: recRow, raw: line, off: w.off, line: w.line}
			switch {
			case len(line) > l.maxRec:
				rec.kind, rec.raw, rec.reason = recReject, line[:min(rawPrefix, len(line))], fmt.Sprintf("record exceeds %d bytes", l.maxRec)
			case isBlank(line):
				rec.kind = recBlank
			}
			w.advance(next, lines)
			rec.next, rec.nextLine = w.off, w.line
			return rec, nil
		}
		if w.eof {
			return rawRecord{kind: recEOF, off: w.off, line: w.line, next: w.off, nextLine: w.line}, nil
		}
		if w.more() {
			continue
		}
		if w.err != nil {
			return rawRecord{}, w.err
		}
		if !w.full {
			return rawRecord{}, fmt.Errorf("jsonl: no progress at offset %d", w.off)
		}
		// Longer than the cap: keep a prefix, drop the rest of the line.
		rec := rawRecord{kind: recReject, off: w.off, line: w.line, reason: fmt.Sprintf("record exceeds %d bytes", l.maxRec)}
		l.prefix = append(l.prefix[:0], b[:min(rawPrefix, len(b))]...)
		rec.raw = l.prefix
		for {
			b := w.avail()
			if k := bytes.IndexByte(b, '\n'); k >= 0 {
				w.advance(k+1, 1)
				break
			}
			w.advance(len(b), 0)
			if !w.more() {
				if w.err != nil {
					return rawRecord{}, w.err
				}
				break
			}
		}
		rec.next, rec.nextLine = w.off, w.line
		return rec, nil
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// objectDecoder turns JSON object text into rows of a schema.
type objectDecoder struct {
	schema *record.Schema
	types  []record.Type
	index  map[string]int
	loc    *time.Location
	p      jsonParser
}

func newObjectDecoder(schema *record.Schema, loc *time.Location) *objectDecoder {
	d := &objectDecoder{schema: schema, loc: loc, index: make(map[string]int, schema.Len())}
	for i := 0; i < schema.Len(); i++ {
		f := schema.Field(i)
		d.types = append(d.types, f.Type)
		d.index[f.Name] = i
	}
	return d
}

// decode fills row from one object's text. A non-empty reason rejects the
// record; field names the field at fault when there is one.
func (d *objectDecoder) decode(text string, row record.Row, bx *boxer) (field, reason string) {
	p := &d.p
	p.reset(text)
	if !p.objectStart() {
		return "", "not a JSON object"
	}
	for first := true; ; first = false {
		k, done, err := p.member(first)
		if err != nil {
			return "", "invalid JSON: " + err.Error()
		}
		if done {
			break
		}
		j, ok := d.index[k]
		if !ok {
			if err := p.skip(1); err != nil {
				return "", "invalid JSON: " + err.Error()
			}
			continue
		}
		v, cerr, serr := d.fieldValue(d.types[j], bx)
		if serr != nil {
			return "", "invalid JSON: " + serr.Error()
		}
		if cerr != nil {
			return k, convReason(cerr, k)
		}
		row[j] = v
	}
	if err := p.end(); err != nil {
		return "", "invalid JSON: " + err.Error()
	}
	return "", ""
}

// fieldValue reads the next value and converts it to t as record.Convert
// converts what encoding/json decodes with UseNumber. cerr is a conversion
// error, serr a syntax error.
func (d *objectDecoder) fieldValue(t record.Type, bx *boxer) (v any, cerr, serr error) {
	p := &d.p
	switch p.peek() {
	case '"':
		s, err := p.str()
		if err != nil {
			return nil, nil, err
		}
		switch t {
		case record.JSON, record.Any:
			return s, nil, nil
		case record.Bytes:
			v, err := record.Convert(s, t, d.loc)
			return v, err, nil
		}
		v, err := bx.parse(s, t, d.loc)
		return v, err, nil
	case '0':
		n, err := p.number()
		if err != nil {
			return nil, nil, err
		}
		if t == record.JSON || t == record.Any {
			return json.Number(n), nil, nil
		}
		v, err := bx.parse(n, t, d.loc)
		return v, err, nil
	case 'n':
		return nil, nil, p.literal("null")
	}
	raw, err := p.value(1)
	if err != nil {
		return nil, nil, err
	}
	v, err = record.Convert(raw, t, d.loc)
	return v, err, nil
}

// jsonlReader reads one JSON Lines file.
type jsonlReader struct {
	key    string
	file   *openedFile
	lines  *lineSplitter
	lim    record.Limits
	dec    *objectDecoder
	schema *record.Schema
	done   bool
	bufCap int
	recs   []staged
}

// Schema implements connector.Reader.
func (r *jsonlReader) Schema() *record.Schema { return r.schema }

// Next implements connector.Reader.
func (r *jsonlReader) Next(ctx context.Context) (*record.Batch, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, max(r.bufCap, 64<<10))
	recs := r.recs[:0]
	defer func() { r.recs = recs[:0] }()
	var end rawRecord
	for len(recs) < r.lim.BatchRows && len(buf) < r.lim.BatchBytes {
		rec, err := r.lines.next()
		if err != nil {
			return nil, fmt.Errorf("jsonl: reading %s: %w", r.key, err)
		}
		if rec.kind == recEOF {
			r.done = true
			break
		}
		end = rec
		if rec.kind == recBlank {
			continue
		}
		st := staged{s: len(buf), line: rec.line, reason: rec.reason}
		buf = append(buf, rec.raw...)
		st.e = len(buf)
		recs = append(recs, st)
	}
	if len(recs) == 0 {
		return nil, io.EOF
	}
	r.bufCap = len(buf) + len(buf)/8 + 1024
	text := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is this batch's alone, never written again
	n := r.schema.Len()
	b := &record.Batch{
		Schema: r.schema,
		Origin: r.key,
		Read:   len(recs),
		Rows:   make([]record.Row, 0, len(recs)),
		Lines:  make([]int64, 0, len(recs)),
		Raw:    make([][]byte, 0, len(recs)),
		Pos:    textPos{Offset: end.next, Line: end.nextLine}.encode(),
	}
	vals := make([]any, len(recs)*n)
	bx := newBoxer(len(recs))
	for i := range recs {
		st := &recs[i]
		raw := buf[st.s:st.e:st.e]
		if st.reason != "" {
			b.Rejects = append(b.Rejects, record.Reject{Line: st.line, Step: "source", Err: st.reason, Raw: raw})
			continue
		}
		row := record.Row(vals[i*n : (i+1)*n : (i+1)*n])
		if field, reason := r.dec.decode(text[st.s:st.e], row, bx); reason != "" {
			clear(row)
			b.Rejects = append(b.Rejects, record.Reject{Line: st.line, Step: "source", Field: field, Err: reason, Raw: raw})
			continue
		}
		b.Rows = append(b.Rows, row)
		b.Lines = append(b.Lines, st.line)
		b.Raw = append(b.Raw, raw)
	}
	return b, nil
}

// Close implements connector.Reader.
func (r *jsonlReader) Close() error { return r.file.Close() }
