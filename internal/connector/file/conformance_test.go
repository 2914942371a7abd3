package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// The conformance suite against files in each test's own directory. The
// harness writes source files as a producer would (CSV and JSON Lines by
// hand, Parquet with this package's sink, as this project makes them) and reads sink output back with
// this package's sources.

// conformanceSchema declares connectortest.Schema in a pipeline file.
const conformanceSchema = "{id: int, name: string, amount: decimal, created_at: timestamp, note: string}"

// csvText renders rows as CSV with a header: NULL is an empty field, the
// empty string is "" (quoted), and fields with a delimiter, a quote or a
// line break are quoted.
func csvText(rows []record.Row) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(connectortest.Schema.Names(), ",") + "\r\n")
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			if v == nil {
				continue
			}
			s := connectortest.Text(v)
			if s == "" || strings.ContainsAny(s, ",\"\r\n") {
				s = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
			b.WriteString(s)
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// jsonlText renders rows as JSON Lines: decimals as JSON numbers written
// exactly, timestamps as RFC 3339 strings, NULL as null.
func jsonlText(rows []record.Row) []byte {
	var b bytes.Buffer
	for _, r := range rows {
		b.WriteByte('{')
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			name, _ := json.Marshal(connectortest.Schema.Field(i).Name)
			b.Write(name)
			b.WriteByte(':')
			switch x := v.(type) {
			case nil:
				b.WriteString("null")
			case int64, record.Dec:
				b.WriteString(connectortest.Text(x))
			default:
				s, _ := json.Marshal(connectortest.Text(x))
				b.Write(s)
			}
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// fileFormat is how the harness makes and reads one kind of file.
type fileFormat struct {
	name   string
	ext    string
	source string // the source's configuration, path excluded
	write  func(t testing.TB, env *connector.Env, path string, rows []record.Row)
}

func writeBytes(data func([]record.Row) []byte, compress bool) func(testing.TB, *connector.Env, string, []record.Row) {
	return func(t testing.TB, env *connector.Env, path string, rows []record.Row) {
		t.Helper()
		b := data(rows)
		if compress {
			b = gzipped(b)
		}
		full := filepath.Join(env.Dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var fileFormats = []fileFormat{
	{"CSV", ".csv", "type: csv\nschema: " + conformanceSchema, writeBytes(csvText, false)},
	{"CSVGzip", ".csv.gz", "type: csv\nschema: " + conformanceSchema, writeBytes(csvText, true)},
	{"JSONL", ".jsonl", "type: jsonl\nschema: " + conformanceSchema, writeBytes(jsonlText, false)},
	{"Parquet", ".parquet", "type: parquet", func(t testing.TB, env *connector.Env, path string, rows []record.Row) {
		writeParquet(t, env, path, connectortest.Schema, rows) // the parquet sink, in row groups of 3 rows
	}},
}

func TestSourceConformance(t *testing.T) {
	for _, f := range fileFormats {
		t.Run(f.name, func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				New: func(t testing.TB, env *connector.Env, rows []record.Row, tasks int) *connectortest.SourceTarget {
					// One file per task, in the order of the rows.
					files := 0
					per := (len(rows) + tasks - 1) / tasks
					for lo := 0; lo < len(rows); lo += per {
						files++
						f.write(t, env, fmt.Sprintf("in/part-%d%s", files, f.ext), rows[lo:min(lo+per, len(rows))])
					}
					return &connectortest.SourceTarget{
						Source: func(t testing.TB) connector.Source {
							return newSource(t, f.source+"\npath: in/part-*"+f.ext)
						},
						Conns: connectortest.OpenFiles,
						// A new file: files already read are never changed.
						Add: func(t testing.TB, rows []record.Row) {
							files++
							f.write(t, env, fmt.Sprintf("in/part-%d%s", files, f.ext), rows)
						},
					}
				},
			})
		})
	}
}

func TestSinkConformance(t *testing.T) {
	for _, f := range fileFormats {
		if f.name == "CSVGzip" {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			connectortest.RunSink(t, connectortest.SinkHarness{
				New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
					sinkType, _, _ := strings.Cut(strings.TrimPrefix(f.source, "type: "), "\n")
					path := "out/items" + f.ext
					return &connectortest.SinkTarget{
						Sink: func(t testing.TB) connector.Sink {
							return newSink(t, "type: "+sinkType+"\npath: "+path)
						},
						Stored: func(t testing.TB) []record.Row { return storedFile(t, env, f, path) },
						Conns:  connectortest.OpenFiles,
					}
				},
			})
		})
	}
}

// storedFile reads the sink's output file with the package's source; no
// file means no rows.
func storedFile(t testing.TB, env *connector.Env, f fileFormat, path string) []record.Row {
	t.Helper()
	if _, err := os.Stat(filepath.Join(env.Dir, path)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	renv := *env
	renv.DeferDecode = false
	src := newSource(t, f.source+"\npath: "+path)
	tasks, err := src.Plan(context.Background(), &renv)
	if err != nil {
		t.Fatalf("read back %s: %v", path, err)
	}
	var out []record.Row
	for _, task := range tasks {
		r, err := src.Open(context.Background(), &renv, task, nil)
		if err != nil {
			t.Fatalf("read back %s: %v", path, err)
		}
		for {
			b, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				t.Fatalf("read back %s: %v", path, err)
			}
			for _, rj := range b.Rejects {
				t.Errorf("read back %s: line %d refused: %s", path, rj.Line, rj.Err)
			}
			out = append(out, b.Rows...)
		}
		r.Close()
	}
	return out
}
