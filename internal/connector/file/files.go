package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// fileSet is the part of a file source's configuration that says which
// files to read: a path or glob, the age a file must have, and how it is
// compressed.
type fileSet struct {
	kind        string // "csv", "jsonl", "parquet": prefixes errors
	pattern     string
	minAge      time.Duration
	compression string // auto | none | gzip
}

// Compression modes.
const (
	compAuto = "auto"
	compNone = "none"
	compGzip = "gzip"
)

var compressionEnum = []string{compAuto, compNone, compGzip}

// checkPattern reports a glob syntax error as a configuration error.
func checkPattern(p connector.Params, pattern string) error {
	if strings.TrimSpace(pattern) == "" {
		return connector.Errorf(p.FieldPos("path"), "path is required")
	}
	if _, err := filepath.Match(pattern, ""); err != nil {
		return connector.Errorf(p.FieldPos("path"), "path %q is not a valid glob: %v", pattern, err)
	}
	return nil
}

func checkEnum(p connector.Params, field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return connector.Errorf(p.FieldPos(field), "%s must be one of %s, not %q", field, strings.Join(allowed, ", "), v)
}

// limits returns env's limits with the defaults filled in.
func limits(env *connector.Env) record.Limits {
	l := record.Limits{}
	if env != nil {
		l = env.Limits
	}
	d := record.DefaultLimits
	if l.BatchRows <= 0 {
		l.BatchRows = d.BatchRows
	}
	if l.BatchBytes <= 0 {
		l.BatchBytes = d.BatchBytes
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = d.MaxRecordBytes
	}
	return l
}

// plan lists the files the pattern matches, sorted, leaving out
// directories and files modified less than minAge before the run time. No
// match is an empty plan; a file that cannot be examined or opened is an
// ErrUnavailable error.
func (fset fileSet) plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	full := env.Path(fset.pattern)
	matches, err := filepath.Glob(full)
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("%s: path %q: %w", fset.kind, fset.pattern, err))
	}
	sort.Strings(matches)
	if len(matches) == 0 && !hasMeta(fset.pattern) {
		// A path without wildcards names one file: its absence is an error,
		// where an empty glob only means nothing new has arrived.
		return nil, connector.Unavailable(fmt.Errorf("%s: %s: %w", fset.kind, fset.pattern, fs.ErrNotExist))
	}
	var tasks []connector.Task
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := os.Stat(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the glob, or a dangling link
		}
		if err != nil {
			return nil, connector.Unavailable(fmt.Errorf("%s: %w", fset.kind, err))
		}
		if st.IsDir() {
			continue
		}
		if fset.minAge > 0 && !env.RunTime.IsZero() && st.ModTime().After(env.RunTime.Add(-fset.minAge)) {
			continue // still being written, perhaps: a later run takes it
		}
		f, err := os.Open(m)
		if err != nil {
			return nil, connector.Unavailable(fmt.Errorf("%s: %w", fset.kind, err))
		}
		f.Close()
		tasks = append(tasks, connector.Task{
			Key:         taskKey(env, fset.pattern, m),
			Size:        st.Size(),
			Final:       true,
			Fingerprint: strconv.FormatInt(st.Size(), 10) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 10),
		})
	}
	return tasks, nil
}

// taskKey is the matched file's path as written: relative to the pipeline
// directory when the pattern is.
func taskKey(env *connector.Env, pattern, match string) string {
	if filepath.IsAbs(pattern) || env == nil || env.Dir == "" {
		return match
	}
	if rel, err := filepath.Rel(env.Dir, match); err == nil {
		return filepath.ToSlash(rel)
	}
	return match
}

// gzipped reports whether a file is read through gzip.
func (fset fileSet) gzipped(name string) bool {
	switch fset.compression {
	case compGzip:
		return true
	case compNone:
		return false
	}
	return strings.HasSuffix(name, ".gz")
}

// openedFile is a task's file with, when compressed, its decompressor.
type openedFile struct {
	f     *os.File
	gz    *gzip.Reader
	ahead *readAhead // inflates gz ahead of r's reader
	r     io.Reader  // what parsers read
}

// openTask opens the file of a task. A file that cannot be opened is an
// ErrUnavailable error; a broken gzip header is an ordinary error.
func (fset fileSet) openTask(env *connector.Env, t connector.Task) (*openedFile, error) {
	f, err := os.Open(env.Path(t.Key))
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("%s: %w", fset.kind, err))
	}
	o := &openedFile{f: f, r: f}
	if fset.gzipped(t.Key) {
		gz, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %s: not a gzip file: %w", fset.kind, t.Key, err)
		}
		o.gz, o.ahead = gz, newReadAhead(gz, aheadBlock, aheadBlocks)
		o.r = o.ahead
	}
	return o, nil
}

// seekable reports whether the stream can seek (an uncompressed file).
func (o *openedFile) seekable() bool { return o.gz == nil }

func (o *openedFile) Close() error {
	if o.ahead != nil {
		o.ahead.Close()
	}
	if o.gz != nil {
		o.gz.Close()
	}
	return o.f.Close()
}

// A compressed file is inflated by a goroutine of its own, aheadBlocks
// blocks of aheadBlock bytes ahead of its reader: inflating took half the
// time of the goroutine that parses the file, which every other goroutine
// of a run waits on.
const (
	aheadBlock  = 256 << 10
	aheadBlocks = 2
)

// readAhead reads r on a goroutine of its own, into blocks that Read hands
// out in order; r's error comes after the last of them.
type readAhead struct {
	full chan aheadBlockOf // blocks read, in order
	free chan []byte       // blocks handed out, to fill again
	stop chan struct{}     // closed by Close
	done chan struct{}     // closed when the goroutine ended

	cur  []byte // what is left of the block being handed out
	last []byte // that block, whole
	err  error  // r's, once its last block is handed out
}

type aheadBlockOf struct {
	b   []byte
	err error // r's, after b
}

func newReadAhead(r io.Reader, size, n int) *readAhead {
	ra := &readAhead{full: make(chan aheadBlockOf, n), free: make(chan []byte, n+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range n + 1 {
		ra.free <- make([]byte, size)
	}
	go func() {
		defer close(ra.done)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.stop:
				return
			}
			m := 0
			var err error
			for m < len(buf) && err == nil {
				var k int
				k, err = r.Read(buf[m:])
				m += k
			}
			select {
			case ra.full <- aheadBlockOf{b: buf[:m], err: err}:
			case <-ra.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.last != nil {
			ra.free <- ra.last[:cap(ra.last)]
			ra.last = nil
		}
		blk := <-ra.full
		ra.cur, ra.last, ra.err = blk.b, blk.b, blk.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it: r may be closed then.
func (ra *readAhead) Close() {
	select {
	case <-ra.stop:
	default:
		close(ra.stop)
	}
	<-ra.done
}

// textPos is the Position of the text sources: the byte offset (in the
// uncompressed stream) just after the last record, and the line there.
type textPos struct {
	Offset int64 `json:"offset"`
	Line   int64 `json:"line"`
}

func (p textPos) encode() record.Position {
	b := make([]byte, 0, 40)
	b = append(b, `{"offset":`...)
	b = strconv.AppendInt(b, p.Offset, 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, p.Line, 10)
	return append(b, '}')
}

func decodeTextPos(pos record.Position) (textPos, error) {
	var p textPos
	d := json.NewDecoder(strings.NewReader(string(pos)))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil || p.Offset < 0 || p.Line < 1 {
		return textPos{}, fmt.Errorf("position %q is not one of this source's positions", pos)
	}
	return p, nil
}

// seekTo moves a text reader to a stored position: a seek for a plain file,
// reading and discarding for a compressed one.
func seekTo(o *openedFile, w *window, pos textPos, key string) error {
	if pos.Offset < w.off {
		return fmt.Errorf("position offset %d is inside the header of %s", pos.Offset, key)
	}
	if o.seekable() {
		st, err := o.f.Stat()
		if err != nil {
			return connector.Unavailable(err)
		}
		if pos.Offset > st.Size() {
			return fmt.Errorf("position offset %d is past the end of %s (%d bytes): the file changed", pos.Offset, key, st.Size())
		}
		if _, err := o.f.Seek(pos.Offset, io.SeekStart); err != nil {
			return connector.Unavailable(err)
		}
		w.reset(o.f, pos.Offset, pos.Line)
		return nil
	}
	if err := w.discardTo(pos.Offset, pos.Line); err != nil {
		return fmt.Errorf("cannot reach position offset %d of %s: %w", pos.Offset, key, err)
	}
	return nil
}

// sourceWithSchema and lookupWithSchema give a component whose
// configuration fixes its schema the connector.Schemer interface.
type sourceWithSchema struct {
	connector.Source
	schema *record.Schema
}

func (s sourceWithSchema) Schema() *record.Schema { return s.schema }

type lookupWithSchema struct {
	connector.Lookup
	schema *record.Schema
}

func (s lookupWithSchema) Schema() *record.Schema { return s.schema }

// OpenFields implements connector.FieldLoader for a lookup that does.
func (s lookupWithSchema) OpenFields(ctx context.Context, env *connector.Env, fields []string) (connector.Table, error) {
	if fl, ok := s.Lookup.(connector.FieldLoader); ok {
		return fl.OpenFields(ctx, env, fields)
	}
	return s.Lookup.Open(ctx, env)
}

// singleByte checks a one-character option such as a delimiter.
func singleByte(p connector.Params, field, v string) (byte, error) {
	if v == `\t` || v == "tab" {
		return '\t', nil
	}
	if len(v) != 1 || v[0] == '\n' || v[0] == '\r' || v[0] >= 0x80 {
		return 0, connector.Errorf(p.FieldPos(field), "%s must be one ASCII character, not %q", field, v)
	}
	return v[0], nil
}

// hasMeta reports whether a path pattern has glob wildcards.
func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\\`) }
