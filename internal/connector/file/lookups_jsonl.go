package file

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// A JSON Lines lookup with a schema loads as a csv lookup does (see
// loadParts): the file is cut into parts at line ends (a line is a record,
// whatever its quotes), each part's objects are decoded by a goroutine of
// its own straight into chunks of the index, texts and integers without a
// value boxed, and the chunks are added in file order. Values convert as
// the lookup's other path converts them (record.Convert of the decoded
// JSON value); a schema with a json or any field, whose values are trees
// of the decoded text, takes that path.

// fastLines reports whether the jsonl lookup, which has a schema, loads
// into ix by loadLines: no json or any field is among those ix keeps.
func (l *jsonLookup) fastLines(ix *connector.Index) bool {
	for i := range l.schema.Len() {
		if t := l.schema.Field(i).Type; ix.Loaded(i) && (t == record.JSON || t == record.Any) {
			return false
		}
	}
	return true
}

// loadLines loads the file into ix.
func (l *jsonLookup) loadLines(ctx context.Context, env *connector.Env, ix *connector.Index) (connector.Table, error) {
	o, err := fileSet{kind: "jsonl", compression: compAuto}.openTask(env, connector.Task{Key: l.path})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	lim := limits(env)
	loc := connector.ZoneOf(nil, env)
	w := newWindow(o.r, lim.MaxRecordBytes+2)
	w.skipBOM()
	var size int64 // of an uncompressed file
	if fi, err := o.f.Stat(); err == nil && o.gz == nil {
		size = fi.Size()
	}
	readers := []partReader{l.lineLoader(w, lim, loc)}
	if n := runtime.GOMAXPROCS(0); n > 1 && o.gz == nil && size >= partsMin {
		// Any line end is a record's end: the quote byte is one no JSON
		// text holds.
		cuts, err := cutsOf(o.f, w.off, size, 0, n)
		if err != nil {
			return nil, fmt.Errorf("jsonl: reading %s: %w", l.path, err)
		}
		if len(cuts) > 2 {
			readers = readers[:0]
			for k := range len(cuts) - 1 {
				pw := newWindow(nil, lim.MaxRecordBytes+2)
				pw.reset(io.NewSectionReader(o.f, cuts[k], cuts[k+1]-cuts[k]), cuts[k], 1)
				readers = append(readers, l.lineLoader(pw, lim, loc))
			}
		}
	}
	return loadParts(ctx, "jsonl", l.path, ix, w.line, size, readers)
}

func (l *jsonLookup) lineLoader(w *window, lim record.Limits, loc *time.Location) *lineLoader {
	return &lineLoader{path: l.path, w: w, lines: &lineSplitter{w: w, maxRec: lim.MaxRecordBytes}, schema: l.schema, loc: loc}
}

// lineLoader decodes the objects of a JSON Lines file, or of a part of
// one, into chunks of an index (a partReader).
type lineLoader struct {
	path   string
	w      *window
	lines  *lineSplitter
	schema *record.Schema
	loc    *time.Location
	p      jsonParser

	fields map[string]int // the fields kept, by name
	// The row being decoded, by field: set says what holds its value
	// (unset: null).
	set   []valueIn
	ints  []int64
	texts []string
	vals  []any
}

// valueIn is where a lineLoader holds a field's value.
type valueIn uint8

const (
	unset valueIn = iota
	inInt
	inText
	inVal
)

func (r *lineLoader) atLine() int64 { return r.w.line }

func (r *lineLoader) load(ctx context.Context, ix *connector.Index, put func(c *connector.Chunk, bytes int64) bool) error {
	width := r.schema.Len()
	r.fields = make(map[string]int, width)
	for i := range width {
		if ix.Loaded(i) {
			r.fields[r.schema.Field(i).Name] = i
		}
	}
	r.set, r.ints, r.texts, r.vals = make([]valueIn, width), make([]int64, width), make([]string, width), make([]any, width)
	ch := ix.NewChunk(chunkRows)
	from := r.w.off // where the chunk's rows start
	// The loop of csvReader.load, written out: one loop for both, calling
	// a function per record, took the csv load twice its time.
	for n := 0; ; n++ {
		if n%chunkRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.lines.next()
		if err != nil {
			return fmt.Errorf("jsonl: reading %s: %w", r.path, err)
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
			return &recordError{line: rec.line, msg: rec.reason}
		}
		// The line's text is read in place: what the chunk keeps it
		// copies, and values that may hold text are cloned.
		if msg := r.decode(unsafe.String(unsafe.SliceData(rec.raw), len(rec.raw))); msg != "" {
			return &recordError{line: rec.line, msg: msg}
		}
		for i, in := range r.set {
			if !ix.Loaded(i) {
				continue
			}
			switch in {
			case inInt:
				ch.Int(i, r.ints[i])
			case inText:
				ch.Text(i, r.texts[i])
			case inVal:
				ch.Value(i, r.vals[i])
			default:
				ch.Value(i, nil)
			}
			r.set[i], r.texts[i], r.vals[i] = unset, "", nil
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

// decode reads one object's fields into the row being decoded; it returns
// why the record is refused, or "".
func (r *lineLoader) decode(text string) string {
	p := &r.p
	p.reset(text)
	if !p.objectStart() {
		return p.fail("not a JSON object").Error()
	}
	for first := true; ; first = false {
		k, done, err := p.member(first)
		if err != nil {
			return err.Error()
		}
		if done {
			break
		}
		i, ok := r.fields[k]
		if !ok {
			if err := p.skip(1); err != nil {
				return err.Error()
			}
			continue
		}
		t := r.schema.Field(i).Type
		switch c := p.peek(); {
		case c == '"' && t == record.String:
			s, err := p.str()
			if err != nil {
				return err.Error()
			}
			r.set[i], r.texts[i] = inText, s
			continue
		case c == '0' && t == record.Int:
			n, err := p.number()
			if err != nil {
				return err.Error()
			}
			if v, ok := fastInt(n); ok {
				r.set[i], r.ints[i] = inInt, v
				continue
			}
			v, cerr := record.Convert(json.Number(n), t, r.loc)
			if cerr != nil {
				return convReason(cerr, k)
			}
			r.set[i], r.vals[i] = inVal, v
			continue
		case c == 'n':
			if err := p.literal("null"); err != nil {
				return err.Error()
			}
			r.set[i], r.vals[i] = unset, nil // a field named twice: the last wins
			continue
		}
		v, err := p.value(1)
		if err != nil {
			return err.Error()
		}
		c, cerr := record.Convert(v, t, r.loc)
		if cerr != nil {
			return convReason(cerr, k)
		}
		if s, isText := c.(string); isText {
			c = strings.Clone(s) // it may be the line's text
		}
		r.set[i], r.vals[i] = inVal, c
	}
	if err := p.end(); err != nil {
		return err.Error()
	}
	return ""
}
