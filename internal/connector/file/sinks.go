package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// atomicFile is a sink's output: written under a hidden temporary name in
// the destination directory and renamed into place at commit, so that the
// final name only ever holds a complete file.
type atomicFile struct {
	final string
	tmp   string
	f     *os.File
	bw    flushWriter
	gz    *gzip.Writer
	w     io.Writer // where formatters write
	done  bool
}

// outputPath resolves a sink path: {run_id} and {date} (the run's date)
// are replaced, and a relative path is taken from the pipeline directory.
func outputPath(env *connector.Env, pattern string) string {
	p := strings.NewReplacer("{run_id}", env.RunID, "{date}", env.RunTime.Format(time.DateOnly)).Replace(pattern)
	return env.Path(p)
}

// createAtomic opens the temporary file of a sink. In a dry run nothing is
// created and everything written is discarded.
func createAtomic(env *connector.Env, kind, pattern string, compress bool) (*atomicFile, error) {
	if env.DryRun {
		return &atomicFile{w: io.Discard, done: true}, nil
	}
	final := outputPath(env, pattern)
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, connector.Unavailable(fmt.Errorf("%s: %w", kind, err))
	}
	runID := env.RunID
	if runID == "" {
		runID = "run"
	}
	tmp := filepath.Join(dir, "."+base+".tmp-"+runID)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("%s: %w", kind, err))
	}
	a := &atomicFile{final: final, tmp: tmp, f: f}
	a.bw = newSinkWriter(f)
	a.w = a.bw
	if compress {
		a.gz = gzip.NewWriter(a.bw)
		a.w = a.gz
	}
	return a, nil
}

// commit flushes, syncs and renames the file into place.
func (a *atomicFile) commit() error {
	if a.done {
		return nil
	}
	err := a.flushAll()
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.tmp, a.final)
	}
	if err != nil {
		os.Remove(a.tmp)
		a.done = true
		return err
	}
	a.done = true
	if d, err := os.Open(filepath.Dir(a.final)); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

func (a *atomicFile) flushAll() error {
	if a.gz != nil {
		if err := a.gz.Close(); err != nil {
			return err
		}
	}
	return a.bw.Flush()
}

// abort removes the temporary file unless committed.
func (a *atomicFile) abort() error {
	if a.done {
		return nil
	}
	a.done = true
	if d, ok := a.bw.(interface{ discard() }); ok {
		d.discard()
	}
	a.f.Close()
	if err := os.Remove(a.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// rowFormat renders rows as lines of text.
type rowFormat interface {
	header(dst []byte) []byte
	row(dst []byte, r record.Row) []byte
}

// csvRowFormat renders CSV records, quoting when needed: a null is an empty
// field and an empty string is "" (the csv source reads them back so).
type csvRowFormat struct {
	schema    *record.Schema
	delim     byte
	hasHeader bool
}

func (c *csvRowFormat) header(dst []byte) []byte {
	if !c.hasHeader {
		return dst
	}
	for i := 0; i < c.schema.Len(); i++ {
		if i > 0 {
			dst = append(dst, c.delim)
		}
		dst = c.field(dst, []byte(c.schema.Field(i).Name), false)
	}
	return append(dst, '\n')
}

func (c *csvRowFormat) row(dst []byte, r record.Row) []byte {
	for i, v := range r {
		if i > 0 {
			dst = append(dst, c.delim)
		}
		if v == nil {
			continue
		}
		start := len(dst)
		dst = appendText(dst, v)
		if c.needsQuote(dst[start:]) {
			text := append([]byte(nil), dst[start:]...)
			dst = c.field(dst[:start], text, true)
		}
	}
	return append(dst, '\n')
}

func (c *csvRowFormat) needsQuote(b []byte) bool {
	if len(b) == 0 {
		return true // an empty string, not a null
	}
	for _, ch := range b {
		if ch == c.delim || ch == '"' || ch == '\n' || ch == '\r' {
			return true
		}
	}
	return false
}

func (c *csvRowFormat) field(dst, text []byte, quote bool) []byte {
	if !quote && !c.needsQuote(text) {
		return append(dst, text...)
	}
	dst = append(dst, '"')
	for _, ch := range text {
		if ch == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, ch)
	}
	return append(dst, '"')
}

// appendText appends record.FormatText(v) without its allocations for
// the common types.
func appendText(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case int64:
		return record.AppendInt(dst, x)
	case record.Dec:
		return x.AppendText(dst) // FormatText's, without a string made
	case float64:
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(dst, x)
	case time.Time:
		return record.AppendRFC3339Nano(dst, x)
	case []byte:
		return append(dst, x...)
	}
	return append(dst, record.FormatText(v)...)
}

// jsonlRowFormat renders one JSON object per line, fields in order.
type jsonlRowFormat struct {
	keys [][]byte // `{"name":` then `,"name":` ...: each field's key, encoded once
	// short[i] is keys[i] padded to 16 bytes when it is no longer: written
	// with one 16-byte store where dst has the room, instead of a copy.
	short [][16]byte
}

func newJSONLRowFormat(schema *record.Schema) *jsonlRowFormat {
	j := &jsonlRowFormat{}
	for i, name := range schema.Names() {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		key := append(record.AppendJSON([]byte{sep}, name), ':')
		j.keys = append(j.keys, key)
		var short [16]byte
		copy(short[:], key)
		j.short = append(j.short, short)
	}
	return j
}

func (j *jsonlRowFormat) header(dst []byte) []byte { return dst }

func (j *jsonlRowFormat) row(dst []byte, r record.Row) []byte {
	if len(r) == 0 {
		return append(dst, "{}\n"...)
	}
	for i, v := range r {
		if k := j.keys[i]; len(k) <= 16 && cap(dst)-len(dst) >= 16 {
			n := len(dst)
			*(*[16]byte)(dst[n : n+16]) = j.short[i]
			dst = dst[:n+len(k)]
		} else {
			dst = append(dst, k...)
		}
		dst = record.AppendJSON(dst, v)
	}
	return append(dst, '}', '\n')
}

// textWriter writes formatted rows to an output: the file sinks' and the
// stdout sink's Writer.
type textWriter struct {
	kind   string
	schema *record.Schema
	format rowFormat
	out    io.Writer
	file   *atomicFile   // file sinks
	stdout *bufio.Writer // stdout sink
	buf    []byte
	info   connector.WriterInfo

	rowSize atomic.Int64 // bytes per encoded row, the largest seen
	texts   sync.Pool    // *[]byte: buffers of batches written, for Prepare to fill again
}

// Write implements connector.Writer.
func (w *textWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if b.Schema != nil && b.Schema.Len() != w.schema.Len() {
		return 0, fmt.Errorf("%s: batch has %d fields, the sink was opened for %d (%s)", w.kind, b.Schema.Len(), w.schema.Len(), w.schema)
	}
	if p, ok := b.Prepared.(preparedText); ok && p.w == w {
		if _, err := w.out.Write(p.text); err != nil {
			return 0, fmt.Errorf("%s: %w", w.kind, err)
		}
		// The text is copied out: its buffer serves another batch.
		b.Prepared = nil
		text := p.text[:0]
		w.texts.Put(&text)
		return len(b.Rows), nil
	}
	buf := w.buf[:0]
	for _, r := range b.Rows {
		buf = w.format.row(buf, r)
		if len(buf) >= 64<<10 {
			if _, err := w.out.Write(buf); err != nil {
				return 0, fmt.Errorf("%s: %w", w.kind, err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.out.Write(buf); err != nil {
		return 0, fmt.Errorf("%s: %w", w.kind, err)
	}
	w.buf = buf[:0]
	return len(b.Rows), nil
}

// preparedText is a batch encoded by Prepare for one writer.
type preparedText struct {
	w    *textWriter
	text []byte
}

// Prepare implements connector.Preparer: it encodes the rows, so that the
// engine's workers do it in parallel and Write only copies bytes.
func (w *textWriter) Prepare(b *record.Batch) error {
	if b.Schema != nil && b.Schema.Len() != w.schema.Len() {
		return nil // Write reports it
	}
	perRow := w.rowSize.Load() // learnt from earlier batches: one allocation, no regrowth
	if perRow == 0 {
		perRow = 128
	}
	want := int(int64(len(b.Rows))*perRow*9/8 + 64)
	var buf []byte
	if p, ok := w.texts.Get().(*[]byte); ok && cap(*p) >= want {
		buf = *p
	} else {
		buf = make([]byte, 0, want)
	}
	for _, r := range b.Rows {
		buf = w.format.row(buf, r)
	}
	if n := int64(len(b.Rows)); n > 0 {
		w.rowSize.Store(max(perRow, (int64(len(buf))+n-1)/n))
	}
	b.Prepared = preparedText{w: w, text: buf}
	return nil
}

// Commit implements connector.Writer: a file sink renames its file into
// place; the stdout sink flushes.
func (w *textWriter) Commit(ctx context.Context, _ []connector.Checkpoint) error {
	if w.stdout != nil {
		if err := w.stdout.Flush(); err != nil {
			return fmt.Errorf("%s: %w", w.kind, err)
		}
		return nil
	}
	if err := w.file.commit(); err != nil {
		return fmt.Errorf("%s: %w", w.kind, err)
	}
	return nil
}

// Close implements connector.Writer: what was not committed is dropped.
func (w *textWriter) Close() error {
	if w.stdout != nil {
		w.stdout.Reset(io.Discard)
		return nil
	}
	return w.file.abort()
}

// Info implements connector.Writer.
func (w *textWriter) Info() connector.WriterInfo { return w.info }

// openTextFile opens a file sink's writer and writes the header.
func openTextFile(env *connector.Env, kind, path string, compress bool, schema *record.Schema, format rowFormat) (connector.Writer, error) {
	a, err := createAtomic(env, kind, path, compress)
	if err != nil {
		return nil, err
	}
	w := &textWriter{kind: kind, schema: schema, format: format, out: a.w, file: a, info: connector.WriterInfo{Once: true}}
	if h := format.header(nil); len(h) > 0 {
		if _, err := a.w.Write(h); err != nil {
			a.abort()
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
	}
	return w, nil
}

// compressed resolves a sink's compression setting for its path.
func compressed(mode, path string) bool {
	switch mode {
	case compGzip:
		return true
	case compNone:
		return false
	}
	return strings.HasSuffix(path, ".gz")
}

var csvSinkSpec = connector.Spec{
	Name:    "csv",
	Summary: "Write one CSV file per run, renamed into place when the run commits.",
	Doc: `Writes every row to one CSV file. The file is written under a hidden temporary
name in the destination directory and renamed to its final name when the run
commits: the final name never holds a partial file, and a failed run leaves
nothing. The directory is created when missing. The path may hold {run_id} and
{date} (the run's date). Values are written as text: timestamps in RFC 3339 with
their full precision, decimals exactly; a null is an empty field and an empty
string is "".`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Output file, relative to the pipeline file; may hold {run_id} and {date}."},
		{Name: "delimiter", Type: connector.TString, Default: ",", Doc: "Field separator: one ASCII character."},
		{Name: "header", Type: connector.TBool, Default: "true", Doc: "Write the field names first."},
		{Name: "compression", Type: connector.TEnum, Default: compAuto, Enum: compressionEnum, Doc: "auto: gzip when the path ends in .gz."},
	},
	Example: `sink:
  type: csv
  path: out/orders-{date}.csv`,
}

type csvSinkConfig struct {
	Path        string `yaml:"path"`
	Delimiter   string `yaml:"delimiter"`
	Header      bool   `yaml:"header"`
	Compression string `yaml:"compression"`
}

type csvSink struct {
	cfg   csvSinkConfig
	delim byte
}

func newCSVSink(p connector.Params) (connector.Sink, error) {
	cfg := csvSinkConfig{Delimiter: ",", Header: true, Compression: compAuto}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path is required")
	}
	if err := checkEnum(p, "compression", cfg.Compression, compressionEnum); err != nil {
		return nil, err
	}
	d, err := singleByte(p, "delimiter", cfg.Delimiter)
	if err != nil {
		return nil, err
	}
	if d == '"' {
		return nil, connector.Errorf(p.FieldPos("delimiter"), "the delimiter cannot be the quote character")
	}
	return &csvSink{cfg: cfg, delim: d}, nil
}

// Open implements connector.Sink.
func (s *csvSink) Open(_ context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	format := &csvRowFormat{schema: schema, delim: s.delim, hasHeader: s.cfg.Header}
	return openTextFile(env, "csv", s.cfg.Path, compressed(s.cfg.Compression, s.cfg.Path), schema, format)
}

var jsonlSinkSpec = connector.Spec{
	Name:    "jsonl",
	Summary: "Write one JSON Lines file per run, renamed into place when the run commits.",
	Doc: `Writes every row as one JSON object per line, fields in schema order: decimals
as exact numbers, timestamps as RFC 3339 strings, bytes as base64. The file is
written under a hidden temporary name and renamed to its final name when the run
commits: the final name never holds a partial file, and a failed run leaves
nothing. The directory is created when missing. The path may hold {run_id} and
{date} (the run's date).`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Output file, relative to the pipeline file; may hold {run_id} and {date}."},
		{Name: "compression", Type: connector.TEnum, Default: compAuto, Enum: compressionEnum, Doc: "auto: gzip when the path ends in .gz."},
	},
	Example: `sink:
  type: jsonl
  path: out/events-{run_id}.jsonl.gz`,
}

type jsonlSinkConfig struct {
	Path        string `yaml:"path"`
	Compression string `yaml:"compression"`
}

type jsonlSink struct{ cfg jsonlSinkConfig }

func newJSONLSink(p connector.Params) (connector.Sink, error) {
	cfg := jsonlSinkConfig{Compression: compAuto}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path is required")
	}
	if err := checkEnum(p, "compression", cfg.Compression, compressionEnum); err != nil {
		return nil, err
	}
	return &jsonlSink{cfg: cfg}, nil
}

// Open implements connector.Sink.
func (s *jsonlSink) Open(_ context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	return openTextFile(env, "jsonl", s.cfg.Path, compressed(s.cfg.Compression, s.cfg.Path), schema, newJSONLRowFormat(schema))
}

var stdoutSinkSpec = connector.Spec{
	Name:    "stdout",
	Summary: "Print rows on standard output (JSON Lines or CSV), for trying pipelines out.",
	Doc: `Prints every row on standard output as it is committed: as JSON Lines (one
object per line, fields in schema order) or as CSV with a header. Nothing is
transactional: rows committed are printed, rows of a failed batch are not.`,
	Fields: []connector.FieldSpec{
		{Name: "format", Type: connector.TEnum, Default: "jsonl", Enum: []string{"jsonl", "csv"}, Doc: "Output format."},
	},
	Example: `sink:
  type: stdout
  format: csv`,
}

type stdoutSinkConfig struct {
	Format string `yaml:"format"`
}

type stdoutSink struct {
	format string
	out    io.Writer // os.Stdout; tests put a buffer here
}

func newStdoutSink(p connector.Params) (connector.Sink, error) {
	cfg := stdoutSinkConfig{Format: "jsonl"}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkEnum(p, "format", cfg.Format, []string{"jsonl", "csv"}); err != nil {
		return nil, err
	}
	return &stdoutSink{format: cfg.Format, out: os.Stdout}, nil
}

// Open implements connector.Sink.
func (s *stdoutSink) Open(_ context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	var format rowFormat = newJSONLRowFormat(schema)
	if s.format == "csv" {
		format = &csvRowFormat{schema: schema, delim: ',', hasHeader: true}
	}
	out := s.out
	if env.DryRun {
		out = io.Discard
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	w := &textWriter{kind: "stdout", schema: schema, format: format, out: bw, stdout: bw}
	if h := format.header(nil); len(h) > 0 {
		bw.Write(h)
	}
	return w, nil
}
