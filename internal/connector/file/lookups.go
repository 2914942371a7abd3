package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// The file lookups preload a whole file into a connector.Index. Reference
// data must be right: a malformed record fails Open with its file and line
// instead of being rejected.

var csvLookupSpec = connector.Spec{
	Name:    "csv",
	Summary: "Reference data from a CSV file, loaded into memory and looked up by key.",
	Doc: `Loads the whole file when the run starts and answers lookups from memory. Columns
are matched to the schema by name (or by position without a header); without a
schema every column is a string. Only the key and the fields the pipeline's steps
read are kept. A malformed line, or a value of a kept field that does not convert
to its type, fails the run with the file and line: reference data must be right.
When two lines share a key, the later one wins.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "The file, relative to the pipeline file (.gz is read through gzip)."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Key field, or fields: [a, b]."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names and types; every column is a string by default."},
		{Name: "delimiter", Type: connector.TString, Default: ",", Doc: "Field separator: one ASCII character."},
		{Name: "header", Type: connector.TBool, Default: "true", Doc: "The first record names the columns."},
		{Name: "null_text", Type: connector.TString, Default: "", Doc: "Unquoted text that means null."},
	},
	Example: `lookups:
  customers: { type: csv, path: ref/customers.csv, key: customer_id, schema: { customer_id: int, region: string, tier: string } }`,
}

type csvLookupConfig struct {
	Path      string              `yaml:"path"`
	Key       connector.List      `yaml:"key"`
	Schema    connector.SchemaDef `yaml:"schema"`
	Delimiter string              `yaml:"delimiter"`
	Header    bool                `yaml:"header"`
	Null      string              `yaml:"null_text"`
}

type csvLookup struct {
	path   string
	keys   []string
	format csvFormat
}

func newCSVLookup(p connector.Params) (connector.Lookup, error) {
	cfg := csvLookupConfig{Delimiter: ",", Header: true}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path is required")
	}
	format, err := csvFormatOf(p, cfg.Schema, cfg.Header, cfg.Delimiter, `"`, cfg.Null, "")
	if err != nil {
		return nil, err
	}
	if err := checkKeys(p, cfg.Key, format.schema); err != nil {
		return nil, err
	}
	l := &csvLookup{path: cfg.Path, keys: cfg.Key, format: format}
	if format.schema != nil {
		return lookupWithSchema{Lookup: l, schema: format.schema}, nil
	}
	return l, nil
}

// checkKeys requires a key and, when the schema is known, that its fields
// are in it.
func checkKeys(p connector.Params, keys connector.List, schema *record.Schema) error {
	if len(keys) == 0 {
		return connector.Errorf(p.FieldPos("key"), "key is required: the field (or fields) to look up by")
	}
	if schema == nil {
		return nil
	}
	for _, k := range keys {
		if _, ok := schema.Index(k); !ok {
			return connector.Errorf(p.FieldPos("key"), "key field %q is not in the schema (%s)", k, strings.Join(schema.Names(), ", "))
		}
	}
	return nil
}

// Open implements connector.Lookup: it loads the file.
func (l *csvLookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	return l.open(ctx, env, nil)
}

// OpenFields implements connector.FieldLoader: the columns of the other
// fields are not converted, so a value there that would not convert does
// not fail the load.
func (l *csvLookup) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	return l.open(ctx, env, fields)
}

// open loads the file: only the key fields and fields unless fields is nil.
func (l *csvLookup) open(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	fset := fileSet{kind: "csv", compression: compAuto}
	t := connector.Task{Key: l.path}
	o, err := fset.openTask(env, t)
	if err != nil {
		return nil, err
	}
	lim := limits(env)
	r := &csvReader{key: l.path, file: o, lim: lim, loc: connector.ZoneOf(l.format.loc, env), null: l.format.null}
	defer r.Close()
	r.w = newWindow(o.r, lim.MaxRecordBytes+2)
	r.p = newCSVParser(r.w, l.format.delim, l.format.quote, lim.MaxRecordBytes)
	r.w.skipBOM()
	if err := r.bind(l.format); err != nil {
		return nil, err
	}
	newIndex := func() (*connector.Index, error) {
		ix, err := connector.NewIndex(r.schema, l.keys)
		if err != nil {
			return nil, fmt.Errorf("csv: %s: %w", l.path, err)
		}
		if fields != nil {
			ix.Only(fields)
		}
		return ix, nil
	}
	ix, err := newIndex()
	if err != nil {
		return nil, err
	}
	// Each part of the file (see parts) is parsed and decoded into chunks
	// of the index by a goroutine of its own, and this one adds the chunks
	// in file order. No row is made: a value goes from the text to its
	// column.
	var size int64 // of an uncompressed file: about how many rows it holds
	if fi, err := o.f.Stat(); err == nil && o.gz == nil {
		size = fi.Size()
	}
	if ps, err := parts(o, r, size, l.format.quote, runtime.GOMAXPROCS(0)); err != nil {
		return nil, fmt.Errorf("csv: reading %s: %w", l.path, err)
	} else if ps != nil {
		done, err := loadParts(ctx, "csv", l.path, ix, r.w.line, size, partReaders(ps))
		if !errors.Is(err, errQuoted) {
			return done, err
		}
		// A quote: a line end where a part was cut may be inside a field.
		// The file is read again, as one part.
		if ix, err = newIndex(); err != nil {
			return nil, err
		}
	}
	return loadParts(ctx, "csv", l.path, ix, r.w.line, size, []partReader{r})
}

// partReader loads the records of a lookup's file, or of a part of it,
// into chunks of an index (see loadParts).
type partReader interface {
	// load decodes the records into chunks of ix, which it hands to put
	// in order with the bytes of the file they took, until the end of its
	// input, put refusing (false), or the first record that is malformed
	// or does not convert (a *recordError).
	load(ctx context.Context, ix *connector.Index, put func(c *connector.Chunk, bytes int64) bool) error
	// atLine is the line of its input it reads next, the first being 1
	// for a part.
	atLine() int64
}

func (r *csvReader) atLine() int64 { return r.w.line }

func partReaders(rs []*csvReader) []partReader {
	ps := make([]partReader, len(rs))
	for i, r := range rs {
		ps[i] = r
	}
	return ps
}

// loadParts loads the parts that readers read, in file order, into ix; the
// first starts at line line of the file (of kind, at path), whose size (0
// when not known) sizes the index.
func loadParts(ctx context.Context, kind, path string, ix *connector.Index, line, size int64, readers []partReader) (connector.Table, error) {
	ctx, cancel := context.WithCancel(ctx)
	type loaded struct {
		chunk *connector.Chunk
		bytes int64 // of the file the chunk's rows took
		err   error // the part's last: its first bad record, or why it could not be read
	}
	outs := make([]chan loaded, len(readers))
	firsts := make([]int64, len(readers)) // the line each reader's input starts at
	var wg sync.WaitGroup
	defer wg.Wait() // the readers stop before the file is closed
	defer cancel()  // and now
	for i, pr := range readers {
		firsts[i] = pr.atLine()
		// A part is read while those before it are added: its chunks
		// wait here (a million rows of them; a part that has more then
		// waits for its turn).
		outs[i] = make(chan loaded, 256)
		wg.Go(func() {
			defer close(outs[i])
			err := pr.load(ctx, ix, func(c *connector.Chunk, bytes int64) bool {
				select {
				case outs[i] <- loaded{chunk: c, bytes: bytes}:
					return true
				case <-ctx.Done():
					return false
				}
			})
			if err != nil {
				select {
				case outs[i] <- loaded{err: err}:
				case <-ctx.Done():
				}
			}
		})
	}
	first := true
	for i, pr := range readers {
		for c := range outs[i] {
			var re *recordError
			switch {
			case errors.As(c.err, &re):
				return nil, fmt.Errorf("%s: %s:%d: %s", kind, path, line+re.line-firsts[i], re.msg)
			case c.err != nil:
				return nil, c.err
			}
			ix.AddChunk(c.chunk)
			if first && size > 0 && c.bytes > 0 { // room for the rows the file holds, as its first rows go
				ix.Grow(int(min(size*int64(c.chunk.Len())/c.bytes, 1<<26)))
			}
			first = false
		}
		line += pr.atLine() - firsts[i] // the part's lines
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ix, nil
}

// Parts: a lookup's file is cut into parts at line ends, each read by its
// own goroutine, so that loading it takes the time of a part. A cut is put
// at the first line end past its share of the file that the quotes before
// it leave outside a quoted field (an even number of them: a doubled quote
// counts twice). A quote inside an unquoted field, which the parser reads
// as an ordinary character, can mislead that count; a cut it puts inside a
// quoted field leaves that quote open at the end of its part, and the file
// is then read again as one part. A compressed or small file is read as
// one part.
const partsMin = 1 << 20 // smaller files are read as one part

// cutReach is how far past its share of the file a cut is looked for: a
// file whose quotes leave no line end outside a quoted field within it is
// read as one part.
const cutReach = 4 << 20

// errQuoted stops a part whose last record has a quote still open: the cut
// after it fell inside a quoted field.
var errQuoted = errors.New("a quote open at the end of a part of the file")

// parts returns readers of the records after the header that r has read,
// one per part, in file order, each reading its part of the file (of size
// bytes; 0 when compressed or not known) from its first line, which it
// counts as line 1; nil when the file is read as one part.
func parts(o *openedFile, r *csvReader, size int64, quote byte, n int) ([]*csvReader, error) {
	if n < 2 || o.gz != nil || r.done || size < partsMin {
		return nil, nil
	}
	cuts, err := cutsOf(o.f, r.w.off, size, quote, n)
	if err != nil || len(cuts) < 3 {
		return nil, err
	}
	var rs []*csvReader
	for k := range len(cuts) - 1 {
		part := io.NewSectionReader(o.f, cuts[k], cuts[k+1]-cuts[k])
		pr := &csvReader{key: r.key, lim: r.lim, loc: r.loc, null: r.null,
			schema: r.schema, types: r.types, cols: r.cols, width: r.width, part: true}
		pr.w = newWindow(nil, r.lim.MaxRecordBytes+2)
		pr.w.reset(part, cuts[k], 1)
		pr.p = newCSVParser(pr.w, r.p.delim, quote, r.lim.MaxRecordBytes)
		rs = append(rs, pr)
	}
	return rs, nil
}

// cutsOf returns where the n parts of the file's records, from offset from
// to size, start, and size: from, then the cuts found (see Parts).
func cutsOf(f io.ReaderAt, from, size int64, quote byte, n int) ([]int64, error) {
	cuts := []int64{from}
	buf := make([]byte, 64<<10)
	at := from
	in := false // the quotes from from to at leave a quoted field open
	read := func(limit int64) ([]byte, error) {
		m, err := f.ReadAt(buf[:min(int64(len(buf)), limit-at)], at)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if m == 0 {
			return nil, io.EOF // the file is shorter than it was
		}
		return buf[:m], nil
	}
	for k := 1; k < n; k++ {
		share := from + (size-from)*int64(k)/int64(n)
		for at < share { // count the quotes up to the share
			b, err := read(share)
			if err != nil {
				return nil, ignoreEOF(err)
			}
			in = in != (bytes.Count(b, []byte{quote})%2 == 1)
			at += int64(len(b))
		}
		reach := min(size, at+cutReach)
		found := false
		for at < reach && !found { // the first line end outside a quoted field
			b, err := read(reach)
			if err != nil {
				return nil, ignoreEOF(err)
			}
			i := 0
			for ; i < len(b); i++ {
				if c := b[i]; c == quote {
					in = !in
				} else if c == '\n' && !in {
					found = true
					i++
					break
				}
			}
			at += int64(i)
		}
		if !found {
			return nil, nil // read as one part
		}
		if at < size && at > cuts[len(cuts)-1] {
			cuts = append(cuts, at)
		}
	}
	return append(cuts, size), nil
}

// ignoreEOF is err, nil for io.EOF.
func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// chunkRows is the most rows a lookup's reader decodes into a chunk before
// it hands the chunk on.
const chunkRows = 4096

// recordError is a record of a lookup's file that is malformed or does not
// convert, at line of its reader's input.
type recordError struct {
	line int64
	msg  string
}

func (e *recordError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// load parses the reader's records into chunks of ix, which it hands to
// put in order with the bytes of the file they took, until the end of its
// input, put refusing (false), or the first record that is malformed or
// does not convert (a *recordError). Only the fields ix loads are
// converted, each value as convert makes it; the chunks copy the texts they
// keep.
func (r *csvReader) load(ctx context.Context, ix *connector.Index, put func(c *connector.Chunk, bytes int64) bool) error {
	ch := ix.NewChunk(chunkRows)
	from := r.w.off // where the chunk's rows start
	var bx *boxer   // for the values without a fast path here
	for n := 0; ; n++ {
		if n%chunkRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.p.next()
		if err != nil {
			return fmt.Errorf("csv: reading %s: %w", r.key, err)
		}
		switch rec.kind {
		case recEOF:
			if ch.Len() > 0 {
				put(ch, rec.off-from)
			}
			return nil
		case recBlank:
			continue
		case recReject:
			if rec.unclosed && r.part {
				return errQuoted
			}
			return &recordError{line: rec.line, msg: rec.reason}
		}
		if len(rec.fields) != r.width {
			return &recordError{line: rec.line, msg: fmt.Sprintf("expected %d fields, got %d", r.width, len(rec.fields))}
		}
		for j, t := range r.types {
			if !ix.Loaded(j) {
				continue // a field no step reads
			}
			sp := rec.fields[r.cols[j]]
			b := rec.raw
			if sp.esc {
				b = rec.unesc
			}
			s := unsafe.String(unsafe.SliceData(b[sp.s:]), sp.e-sp.s) // valid until the next record
			if !sp.quoted && s == r.null {
				ch.Value(j, nil)
				continue
			}
			switch t {
			case record.Int:
				if v, ok := fastInt(s); ok {
					ch.Int(j, v)
					continue
				}
			case record.String:
				if isASCII(s) || utf8.ValidString(s) {
					ch.Text(j, s)
					continue
				}
			}
			if bx == nil {
				bx = newBoxer(chunkRows)
			}
			if t == record.String || t == record.Any || t == record.JSON || t == record.Bytes {
				s = strings.Clone(s) // the value may be, or hold, the text
			}
			v, err := bx.parse(s, t, r.loc)
			if err != nil {
				return &recordError{line: rec.line, msg: convReason(err, r.schema.Field(j).Name)}
			}
			ch.Value(j, v)
		}
		ch.EndRow()
		if ch.Len() == chunkRows {
			if !put(ch, rec.next-from) {
				return nil
			}
			ch, from = ix.NewChunk(chunkRows), rec.next
		}
	}
}

var jsonlLookupSpec = connector.Spec{
	Name:    "jsonl",
	Summary: "Reference data from a JSON Lines file, loaded into memory and looked up by key.",
	Doc: `Loads the whole file (one object per line) when the run starts and answers
lookups from memory. With a schema, keys are picked and converted like the jsonl
source; without one the fields are every key seen, in order, and values keep
their JSON types (strings as string, integral numbers as int, other numbers as
float, true/false as bool, objects and arrays as json). Only the key and the fields
the pipeline's steps read are kept. A malformed line fails the run with the file
and line. When two lines share a key, the later one wins.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "The file, relative to the pipeline file (.gz is read through gzip)."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Key field, or fields: [a, b]."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names and types; taken from the data by default."},
	},
	Example: `lookups:
  products: { type: jsonl, path: ref/products.jsonl, key: sku }`,
}

var jsonLookupSpec = connector.Spec{
	Name:    "json",
	Summary: "Reference data from one JSON document, loaded into memory and looked up by key.",
	Doc: `Loads a file holding either an array of objects, or an object of objects such as
{"EUR": {"rate": 1.08}, "USD": {"rate": 1}}, where each member's name becomes the
value of the (single) key field. Schema rules are those of the jsonl lookup. A
malformed document fails the run with the file, line and column.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "The file, relative to the pipeline file."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "Key field, or fields: [a, b] (one for an object of objects)."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names and types; taken from the data by default."},
	},
	Example: `lookups:
  fx: { type: json, path: ref/rates.json, key: currency, schema: { currency: string, rate: decimal } }`,
}

type jsonLookupConfig struct {
	Path   string              `yaml:"path"`
	Key    connector.List      `yaml:"key"`
	Schema connector.SchemaDef `yaml:"schema"`
}

// jsonLookup serves both the jsonl lookup (lines) and the json lookup (one
// document).
type jsonLookup struct {
	kind   string // "jsonl" or "json"
	path   string
	keys   []string
	schema *record.Schema
}

func newJSONLLookup(p connector.Params) (connector.Lookup, error) { return newJSONLookupOf("jsonl", p) }
func newJSONLookup(p connector.Params) (connector.Lookup, error)  { return newJSONLookupOf("json", p) }

func newJSONLookupOf(kind string, p connector.Params) (connector.Lookup, error) {
	var cfg jsonLookupConfig
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path is required")
	}
	schema := cfg.Schema.Schema()
	if err := checkKeys(p, cfg.Key, schema); err != nil {
		return nil, err
	}
	l := &jsonLookup{kind: kind, path: cfg.Path, keys: cfg.Key, schema: schema}
	if schema != nil {
		return lookupWithSchema{Lookup: l, schema: schema}, nil
	}
	return l, nil
}

// jsonObject is one decoded object with its place in the file.
type jsonObject struct {
	line int64
	keys []string
	vals []any
}

// Open implements connector.Lookup: it loads the file.
func (l *jsonLookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	return l.open(ctx, env, nil)
}

// OpenFields implements connector.FieldLoader: the values of the other
// fields are not kept, nor converted.
func (l *jsonLookup) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	return l.open(ctx, env, fields)
}

// open loads the file: only the key fields and fields unless fields is nil.
func (l *jsonLookup) open(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	if l.kind == "jsonl" && l.schema != nil {
		ix, err := connector.NewIndex(l.schema, l.keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", l.kind, l.path, err)
		}
		if fields != nil {
			ix.Only(fields)
		}
		if l.fastLines(ix) {
			return l.loadLines(ctx, env, ix)
		}
	}
	return l.loadObjects(ctx, env, fields)
}

// loadObjects loads the file by decoding each object whole and adding it as
// a row: only the key fields and fields unless fields is nil.
func (l *jsonLookup) loadObjects(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	var objs []jsonObject
	var err error
	if l.kind == "jsonl" {
		objs, err = l.readLines(ctx, env)
	} else {
		objs, err = l.readDocument(env)
	}
	if err != nil {
		return nil, err
	}
	schema := l.schema
	if schema == nil {
		if schema, err = inferSchema(objs); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", l.kind, l.path, err)
		}
	}
	ix, err := connector.NewIndex(schema, l.keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", l.kind, l.path, err)
	}
	if fields != nil {
		ix.Only(fields)
	}
	loc := connector.ZoneOf(nil, env)
	for _, o := range objs {
		row := make(record.Row, schema.Len())
		for i, k := range o.keys {
			j, ok := schema.Index(k)
			if !ok || o.vals[i] == nil || !ix.Loaded(j) {
				continue
			}
			t := schema.Field(j).Type
			var v any
			if l.schema == nil {
				v = inferredValue(o.vals[i], t)
			} else if v, err = record.Convert(o.vals[i], t, loc); err != nil {
				return nil, fmt.Errorf("%s: %s:%d: %s", l.kind, l.path, o.line, convReason(err, k))
			}
			row[j] = v
		}
		ix.Add(row)
	}
	return ix, nil
}

// readLines decodes a JSON Lines file.
func (l *jsonLookup) readLines(ctx context.Context, env *connector.Env) ([]jsonObject, error) {
	o, err := fileSet{kind: "jsonl", compression: compAuto}.openTask(env, connector.Task{Key: l.path})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	lim := limits(env)
	w := newWindow(o.r, lim.MaxRecordBytes+2)
	w.skipBOM()
	lines := &lineSplitter{w: w, maxRec: lim.MaxRecordBytes}
	var p jsonParser
	var objs []jsonObject
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := lines.next()
		if err != nil {
			return nil, fmt.Errorf("jsonl: reading %s: %w", l.path, err)
		}
		switch rec.kind {
		case recEOF:
			return objs, nil
		case recBlank:
			continue
		case recReject:
			return nil, fmt.Errorf("jsonl: %s:%d: %s", l.path, rec.line, rec.reason)
		}
		p.reset(string(rec.raw))
		keys, vals, err := p.orderedObject()
		if err == nil {
			err = p.end()
		}
		if err != nil {
			return nil, fmt.Errorf("jsonl: %s:%d: %v", l.path, rec.line, err)
		}
		objs = append(objs, jsonObject{line: rec.line, keys: keys, vals: vals})
	}
}

// readDocument decodes a JSON file holding an array of objects or an
// object of objects.
func (l *jsonLookup) readDocument(env *connector.Env) ([]jsonObject, error) {
	data, err := os.ReadFile(env.Path(l.path))
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("json: %w", err))
	}
	text := strings.TrimPrefix(string(data), "\xEF\xBB\xBF")
	p := &jsonParser{s: text}
	fail := func(err error) error {
		var je *jsonError
		if errors.As(err, &je) {
			line, col := lineCol(text, je.off)
			return fmt.Errorf("json: %s:%d:%d: %s", l.path, line, col, je.msg)
		}
		return fmt.Errorf("json: %s: %w", l.path, err)
	}
	var objs []jsonObject
	switch p.peek() {
	case '[':
		p.i++
		for first := true; ; first = false {
			p.ws()
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				break
			}
			if !first {
				if p.i >= len(p.s) || p.s[p.i] != ',' {
					return nil, fail(p.fail("want ',' or ']' in an array"))
				}
				p.i++
			}
			p.ws()
			line, _ := lineCol(text, p.i)
			keys, vals, err := p.orderedObject()
			if err != nil {
				return nil, fail(err)
			}
			objs = append(objs, jsonObject{line: int64(line), keys: keys, vals: vals})
		}
	case '{':
		if len(l.keys) != 1 {
			return nil, fmt.Errorf("json: %s: an object of objects gives one key per entry, but key lists %d fields (%s)", l.path, len(l.keys), strings.Join(l.keys, ", "))
		}
		p.i++
		for first := true; ; first = false {
			name, done, err := p.member(first)
			if err != nil {
				return nil, fail(err)
			}
			if done {
				break
			}
			p.ws()
			line, _ := lineCol(text, p.i)
			keys, vals, err := p.orderedObject()
			if err != nil {
				return nil, fail(err)
			}
			// The entry's name is the key: it replaces a key field inside.
			obj := jsonObject{line: int64(line), keys: []string{l.keys[0]}, vals: []any{name}}
			for i, k := range keys {
				if k != l.keys[0] {
					obj.keys = append(obj.keys, k)
					obj.vals = append(obj.vals, vals[i])
				}
			}
			objs = append(objs, obj)
		}
	default:
		return nil, fail(p.fail("want an array of objects or an object of objects"))
	}
	if err := p.end(); err != nil {
		return nil, fail(err)
	}
	return objs, nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(text string, off int) (int, int) {
	off = min(off, len(text))
	line := 1 + strings.Count(text[:off], "\n")
	col := off - strings.LastIndexByte(text[:off], '\n')
	return line, col
}

// jsonKind classifies a decoded value for schema inference.
func jsonKind(v any) record.Type {
	switch x := v.(type) {
	case string:
		return record.String
	case bool:
		return record.Bool
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return record.Int
		}
		return record.Float
	case map[string]any, []any:
		return record.JSON
	}
	return record.Any
}

// inferSchema makes the schema of schema-less reference data: every key in
// the order first seen, typed by its non-null values (ints and floats
// together make a float; other mixtures are any; only nulls, a string).
func inferSchema(objs []jsonObject) (*record.Schema, error) {
	var fields []record.Field
	at := map[string]int{}
	seen := map[string]bool{}
	for _, o := range objs {
		for i, k := range o.keys {
			j, ok := at[k]
			if !ok {
				j = len(fields)
				at[k] = j
				fields = append(fields, record.Field{Name: k, Type: record.String})
			}
			if o.vals[i] == nil {
				continue
			}
			t := jsonKind(o.vals[i])
			switch cur := fields[j].Type; {
			case !seen[k]:
				fields[j].Type = t
				seen[k] = true
			case cur == t:
			case (cur == record.Int && t == record.Float) || (cur == record.Float && t == record.Int):
				fields[j].Type = record.Float
			default:
				fields[j].Type = record.Any
			}
		}
	}
	return record.NewSchema(fields...)
}

// inferredValue is a decoded value in the representation of its inferred
// field type.
func inferredValue(v any, t record.Type) any {
	n, isNum := v.(json.Number)
	switch {
	case isNum && t == record.Float:
		f, _ := n.Float64()
		return f
	case isNum:
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return f
	}
	return v
}
