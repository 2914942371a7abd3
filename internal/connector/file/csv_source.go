package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var csvSourceSpec = connector.Spec{
	Name:    "csv",
	Summary: "Read CSV files (RFC 4180), one task per file matched.",
	Doc: `Reads every file the path (a file or a glob) matches, in name order; each file
is a task, read once and remembered (read again when its size or modification
time changes). Quoted fields may hold delimiters, quotes ("" stands for one) and
line breaks; CRLF and LF line ends and a UTF-8 byte order mark are accepted;
empty lines are skipped.

With a header (the default) columns are matched to the schema by name; columns
that are not in the schema are ignored and a schema field missing from the
header fails the file. Without a schema every header column is a string field.
Without a header the schema is required and maps columns by position.

An unquoted field equal to the null text is null; a quoted field is never null.
A record that is malformed (unbalanced quote, wrong number of fields), longer
than the record size limit, or holding a value that does not convert to its
field's type is rejected with its line and the reason; the run goes on.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "File or glob (data/orders/*.csv), relative to the pipeline file."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names and types. Optional with a header: every column is then a string."},
		{Name: "header", Type: connector.TBool, Default: "true", Doc: "The first record names the columns."},
		{Name: "delimiter", Type: connector.TString, Default: ",", Doc: `Field separator: one ASCII character ("\t" or tab for a tab).`},
		{Name: "quote", Type: connector.TString, Default: `"`, Doc: "Quote character."},
		{Name: "null_text", Type: connector.TString, Default: "", Doc: "Unquoted text that means null (a quoted field is never null)."},
		{Name: "timezone", Type: connector.TString, Doc: "Zone of timestamps written without one (IANA name); the run's zone by default."},
		{Name: "min_age", Type: connector.TDuration, Default: "0s", Doc: "Leave files modified less than this long before the run for a later run."},
		{Name: "compression", Type: connector.TEnum, Default: compAuto, Enum: compressionEnum, Doc: "auto: gzip when the name ends in .gz."},
	},
	Example: `source:
  type: csv
  path: data/orders/*.csv
  schema: { order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, ordered_at: timestamp }
  min_age: 1m`,
}

type csvSourceConfig struct {
	Path        string              `yaml:"path"`
	Schema      connector.SchemaDef `yaml:"schema"`
	Header      bool                `yaml:"header"`
	Delimiter   string              `yaml:"delimiter"`
	Quote       string              `yaml:"quote"`
	Null        string              `yaml:"null_text"`
	Timezone    string              `yaml:"timezone"`
	MinAge      connector.Duration  `yaml:"min_age"`
	Compression string              `yaml:"compression"`
}

// csvFormat is what the CSV source and lookup share: how to parse a file
// and map its columns to a schema.
type csvFormat struct {
	schema *record.Schema // nil: every header column is a string
	header bool
	delim  byte
	quote  byte
	null   string
	loc    *time.Location // nil: the run's zone
}

type csvSource struct {
	files fileSet
	csvFormat
}

func newCSVSource(p connector.Params) (connector.Source, error) {
	cfg := csvSourceConfig{Header: true, Delimiter: ",", Quote: `"`, Compression: compAuto}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkPattern(p, cfg.Path); err != nil {
		return nil, err
	}
	if err := checkEnum(p, "compression", cfg.Compression, compressionEnum); err != nil {
		return nil, err
	}
	format, err := csvFormatOf(p, cfg.Schema, cfg.Header, cfg.Delimiter, cfg.Quote, cfg.Null, cfg.Timezone)
	if err != nil {
		return nil, err
	}
	s := &csvSource{
		files:     fileSet{kind: "csv", pattern: cfg.Path, minAge: time.Duration(cfg.MinAge), compression: cfg.Compression},
		csvFormat: format,
	}
	if s.schema != nil {
		return sourceWithSchema{Source: s, schema: s.schema}, nil
	}
	return s, nil
}

func csvFormatOf(p connector.Params, schema connector.SchemaDef, header bool, delim, quote, null, tz string) (csvFormat, error) {
	f := csvFormat{schema: schema.Schema(), header: header, null: null}
	var err error
	if f.delim, err = singleByte(p, "delimiter", delim); err != nil {
		return f, err
	}
	if f.quote, err = singleByte(p, "quote", quote); err != nil {
		return f, err
	}
	if f.delim == f.quote {
		return f, connector.Errorf(p.FieldPos("quote"), "quote and delimiter must differ")
	}
	if f.loc, err = connector.LoadZone(p, tz); err != nil {
		return f, err
	}
	if !header && f.schema == nil {
		return f, connector.Errorf(p.FieldPos("header"), "a file without a header needs a schema: its columns are mapped by position")
	}
	return f, nil
}

// Plan implements connector.Source.
func (s *csvSource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	return s.files.plan(ctx, env)
}

// Open implements connector.Source.
func (s *csvSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	var start textPos
	if pos != nil {
		var err error
		if start, err = decodeTextPos(pos); err != nil {
			return nil, fmt.Errorf("csv: %s: %w", t.Key, err)
		}
	}
	o, err := s.files.openTask(env, t)
	if err != nil {
		return nil, err
	}
	lim := limits(env)
	r := &csvReader{
		key:  t.Key,
		file: o,
		lim:  lim,
		loc:  connector.ZoneOf(s.loc, env),
		null: s.null,

		deferDecode: env.DeferDecode,
	}
	r.w = newWindow(o.r, lim.MaxRecordBytes+2)
	r.p = newCSVParser(r.w, s.delim, s.quote, lim.MaxRecordBytes)
	r.w.skipBOM()
	if err := r.bind(s.csvFormat); err != nil {
		o.Close()
		return nil, err
	}
	if pos != nil {
		if err := seekTo(o, r.w, start, t.Key); err != nil {
			o.Close()
			return nil, fmt.Errorf("csv: %w", err)
		}
	}
	return r, nil
}

// csvReader reads one CSV file.
type csvReader struct {
	key    string
	file   *openedFile
	w      *window
	p      *csvParser
	lim    record.Limits
	loc    *time.Location
	null   string
	schema *record.Schema
	types  []record.Type
	cols   []int // cols[i]: the column of schema field i
	width  int   // fields a record must have
	done   bool
	part   bool // reads a part of a lookup's file (see parts)
	bufCap int  // size of the previous batch's text, to size the next

	deferDecode bool // leave convert to Batch.Decode (the engine's workers)
	recsCap     int  // capacity the staging slices needed so far
	spansCap    int
	recs        []staged
	spans       []span
}

// bind reads the header (when there is one) and maps columns to fields.
func (r *csvReader) bind(f csvFormat) error {
	if !f.header {
		r.schema = f.schema
		r.width = f.schema.Len()
		r.cols = make([]int, r.width)
		for i := range r.cols {
			r.cols[i] = i
		}
		r.setTypes()
		return nil
	}
	var rec rawRecord
	for {
		var err error
		if rec, err = r.p.next(); err != nil {
			return connector.Unavailable(fmt.Errorf("csv: reading %s: %w", r.key, err))
		}
		if rec.kind != recBlank {
			break
		}
	}
	switch rec.kind {
	case recEOF:
		// An empty file: no rows, and without a schema no fields.
		r.schema = f.schema
		if r.schema == nil {
			r.schema = record.MustSchema()
		}
		r.done = true
		r.setTypes()
		return nil
	case recReject:
		return fmt.Errorf("csv: %s:%d: the header is malformed: %s", r.key, rec.line, rec.reason)
	}
	names := make([]string, len(rec.fields))
	for i, sp := range rec.fields {
		b := rec.raw
		if sp.esc {
			b = rec.unesc
		}
		names[i] = strings.TrimSpace(string(b[sp.s:sp.e]))
	}
	r.width = len(names)
	if f.schema == nil {
		fields := make([]record.Field, len(names))
		for i, n := range names {
			fields[i] = record.Field{Name: n, Type: record.String}
		}
		s, err := record.NewSchema(fields...)
		if err != nil {
			return fmt.Errorf("csv: %s:%d: header: %v (give a schema to read this file)", r.key, rec.line, err)
		}
		r.schema = s
		r.cols = make([]int, len(names))
		for i := range r.cols {
			r.cols[i] = i
		}
		r.setTypes()
		return nil
	}
	r.schema = f.schema
	at := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := at[n]; !dup {
			at[n] = i
		}
	}
	var missing []string
	r.cols = make([]int, f.schema.Len())
	for i := range r.cols {
		name := f.schema.Field(i).Name
		c, ok := at[name]
		if !ok {
			missing = append(missing, name)
		}
		r.cols[i] = c
	}
	if len(missing) > 0 {
		return fmt.Errorf("csv: %s: the header has no column %s (columns: %s)", r.key, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	r.setTypes()
	return nil
}

func (r *csvReader) setTypes() {
	r.types = make([]record.Type, r.schema.Len())
	for i := range r.types {
		r.types[i] = r.schema.Field(i).Type
	}
}

// Schema implements connector.Reader.
func (r *csvReader) Schema() *record.Schema { return r.schema }

// staging is the slices a batch is staged in, kept in stagingPool once the
// batch is converted: at 4096 records of eight fields they weigh about a
// megabyte, which each batch would otherwise allocate.
type staging struct {
	recs  []staged
	spans []span
}

var stagingPool sync.Pool // of *staging

// staged is one record of the batch being built: its text is buf[s:e],
// its fields spans[f0:f1] (offsets into buf).
type staged struct {
	s, e   int
	f0, f1 int
	line   int64
	reason string // a parse reject
}

// Next implements connector.Reader. It parses up to a batch of records,
// copying their text into one fresh buffer, then converts them; string
// values are substrings of one string made from that buffer.
func (r *csvReader) Next(ctx context.Context) (*record.Batch, error) {
	sb, err := r.stage(ctx)
	if err != nil {
		return nil, err
	}
	if r.deferDecode {
		// The workers convert; this batch keeps its own staging slices,
		// which go back to the pool once converted.
		b := &record.Batch{Schema: r.schema, Origin: r.key, Read: len(sb.recs), Pos: sb.pos, Bytes: int64(len(sb.buf))}
		b.Decode = func(b *record.Batch) {
			if sb == nil {
				return // decoded already
			}
			d := r.convert(sb.buf, sb.recs, sb.spans)
			b.Rows, b.Lines, b.Raw, b.Rejects, b.OwnCap = d.Rows, d.Lines, d.Raw, d.Rejects, d.OwnCap
			sb.release()
			sb = nil
		}
		return b, nil
	}
	b := r.convert(sb.buf, sb.recs, sb.spans)
	b.Pos = sb.pos
	b.Bytes = int64(len(sb.buf))
	r.recs, r.spans = sb.recs[:0], sb.spans[:0] // for the next batch
	return b, nil
}

// stagedBatch is a batch's records as read, before they are converted.
// It holds its own staging slices until release.
type stagedBatch struct {
	buf   []byte
	recs  []staged
	spans []span
	pos   record.Position
}

// release gives the staging slices to the next batch to be read.
func (sb *stagedBatch) release() {
	clear(sb.recs) // the reasons
	stagingPool.Put(&staging{recs: sb.recs[:0], spans: sb.spans[:0]})
	sb.recs, sb.spans = nil, nil
}

// stage parses up to a batch of records into one fresh buffer.
func (r *csvReader) stage(ctx context.Context) (*stagedBatch, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bufCap := r.bufCap
	if bufCap == 0 {
		bufCap = 64 << 10
	}
	buf := make([]byte, 0, bufCap)
	if r.recs == nil { // the previous batch took its slices along: reuse a decoded batch's, or size new ones like them
		if st, ok := stagingPool.Get().(*staging); ok {
			r.recs, r.spans = st.recs, st.spans
		} else {
			r.recs = make([]staged, 0, r.recsCap)
			r.spans = make([]span, 0, r.spansCap)
		}
	}
	recs, spans := r.recs[:0], r.spans[:0]
	defer func() {
		r.recsCap, r.spansCap = max(r.recsCap, cap(recs)), max(r.spansCap, cap(spans))
	}()
	var end rawRecord
	for len(recs) < r.lim.BatchRows && len(buf) < r.lim.BatchBytes {
		rec, err := r.p.next()
		if err != nil {
			r.recs, r.spans = recs[:0], spans[:0]
			return nil, fmt.Errorf("csv: reading %s: %w", r.key, err)
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
		if rec.kind == recRow {
			if len(rec.fields) != r.width {
				st.reason = fmt.Sprintf("expected %d fields, got %d", r.width, len(rec.fields))
			} else {
				st.f0 = len(spans)
				ub := len(buf)
				if len(rec.unesc) > 0 {
					buf = append(buf, rec.unesc...)
				}
				for _, sp := range rec.fields {
					if sp.esc {
						sp.s, sp.e = sp.s+ub, sp.e+ub
					} else {
						sp.s, sp.e = sp.s+st.s, sp.e+st.s
					}
					spans = append(spans, sp)
				}
				st.f1 = len(spans)
			}
		}
		recs = append(recs, st)
	}
	if len(recs) == 0 {
		r.recs, r.spans = recs[:0], spans[:0]
		return nil, io.EOF
	}
	r.bufCap = len(buf) + len(buf)/8 + 1024
	r.recs, r.spans = nil, nil // the batch's now
	pos := textPos{Offset: end.next, Line: end.nextLine}.encode()
	return &stagedBatch{buf: buf, recs: recs, spans: spans, pos: pos}, nil
}

// convert turns staged records into rows and rejects. Their strings are
// substrings of buf, which nothing writes once its batch is read.
func (r *csvReader) convert(buf []byte, recs []staged, spans []span) *record.Batch {
	text := unsafe.String(unsafe.SliceData(buf), len(buf))
	n := len(r.types)
	b := &record.Batch{
		Schema: r.schema,
		Origin: r.key,
		Read:   len(recs),
		Rows:   make([]record.Row, 0, len(recs)),
		Lines:  make([]int64, 0, len(recs)),
		Raw:    make([][]byte, 0, len(recs)),
	}
	// Each row gets the room the pipeline's steps will widen it to, so
	// that they add their fields in place.
	room := max(r.schema.RowCap(), n)
	vals := make([]any, len(recs)*room)
	b.OwnCap = true
	bx := newBoxer(len(recs))
	for i := range recs {
		st := &recs[i]
		raw := buf[st.s:st.e:st.e]
		if st.reason != "" {
			b.Rejects = append(b.Rejects, record.Reject{Line: st.line, Step: "source", Err: st.reason, Raw: raw})
			continue
		}
		row := record.Row(vals[i*room : i*room+n : (i+1)*room])
		fs := spans[st.f0:st.f1]
		ok := true
		for j, t := range r.types {
			sp := fs[r.cols[j]]
			s := text[sp.s:sp.e]
			if !sp.quoted && s == r.null {
				continue // null
			}
			v, err := bx.parse(s, t, r.loc)
			if err != nil {
				name := r.schema.Field(j).Name
				b.Rejects = append(b.Rejects, record.Reject{Line: st.line, Step: "source", Field: name, Err: convReason(err, name), Raw: raw})
				clear(row)
				ok = false
				break
			}
			row[j] = v
		}
		if ok {
			b.Rows = append(b.Rows, row)
			b.Lines = append(b.Lines, st.line)
			b.Raw = append(b.Raw, raw)
		}
	}
	return b
}

// convReason is the text of a conversion error with its field named.
func convReason(err error, field string) string {
	var ce *record.ConvError
	if errors.As(err, &ce) {
		c := *ce
		c.Field = field
		return c.Error()
	}
	return fmt.Sprintf("field %q: %v", field, err)
}

// Close implements connector.Reader.
func (r *csvReader) Close() error { return r.file.Close() }
