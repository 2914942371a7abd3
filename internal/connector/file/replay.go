package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Replay implements connector.Replayer. A dead letter keeps the record's
// text as the file had it; the text is parsed again under the header of the
// task's file when the file is still there, or else under the declared
// schema's field order.
func (s *csvSource) Replay(ctx context.Context, env *connector.Env, task string, raws [][]byte) (*record.Batch, error) {
	format := s.csvFormat
	header := ""
	if format.header {
		header = s.headerOf(env, task)
		if header == "" {
			if format.schema == nil {
				return nil, errors.New("csv: the file " + task + " is gone and no schema is declared: its columns are unknown")
			}
			format.header = false // the declared order stands in for the lost header
		}
	}
	var text bytes.Buffer
	index := map[int64]int{} // line of a record in text → its index in raws
	line := int64(1)
	if header != "" {
		text.WriteString(header)
		text.WriteByte('\n')
		line++
	}
	for i, raw := range raws {
		index[line] = i
		raw = bytes.TrimRight(raw, "\r\n")
		text.Write(raw)
		text.WriteByte('\n')
		line += int64(bytes.Count(raw, []byte{'\n'})) + 1
	}
	rd, err := s.openText(env, task, format, text.Bytes())
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	out := &record.Batch{Schema: rd.Schema(), Origin: task}
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, row := range b.Rows {
			out.Rows = append(out.Rows, row)
			out.Lines = append(out.Lines, int64(index[b.Lines[i]]))
			out.Raw = append(out.Raw, b.Raw[i])
		}
		for _, rj := range b.Rejects {
			rj.Line = int64(index[rj.Line])
			out.Rejects = append(out.Rejects, rj)
		}
		out.Read += b.Read
	}
	return out, nil
}

// headerOf returns the first line of a task's file, or "" when it cannot be
// read.
func (s *csvSource) headerOf(env *connector.Env, task string) string {
	o, err := s.files.openTask(env, connector.Task{Key: task})
	if err != nil {
		return ""
	}
	defer o.Close()
	line, err := bufio.NewReader(o.r).ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	return strings.TrimRight(strings.TrimPrefix(line, "\ufeff"), "\r\n")
}

// openText reads CSV text from memory with the source's format.
func (s *csvSource) openText(env *connector.Env, task string, format csvFormat, text []byte) (*csvReader, error) {
	lim := limits(env)
	o := &openedFile{r: bytes.NewReader(text)}
	r := &csvReader{key: task, file: o, lim: lim, loc: connector.ZoneOf(s.loc, env), null: s.null}
	r.w = newWindow(o.r, lim.MaxRecordBytes+2)
	r.p = newCSVParser(r.w, format.delim, format.quote, lim.MaxRecordBytes)
	if err := r.bind(format); err != nil {
		return nil, err
	}
	return r, nil
}

// Replay implements connector.Replayer for a source with a declared schema.
func (s sourceWithSchema) Replay(ctx context.Context, env *connector.Env, task string, raws [][]byte) (*record.Batch, error) {
	rp, ok := s.Source.(connector.Replayer)
	if !ok {
		return nil, errors.New("this source cannot replay its records")
	}
	return rp.Replay(ctx, env, task, raws)
}
