package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// schemaMetaKey is the key-value metadata entry in which the parquet sink
// stores the record schema, so that the source reads back decimals and
// json (stored as strings) with their types.
const schemaMetaKey = "backbone.schema"

var parquetSourceSpec = connector.Spec{
	Name:    "parquet",
	Summary: "Read Parquet files, one task per file matched.",
	Doc: `Reads every file the path (a file or a glob) matches, in name order; each file
is a task, read once and remembered. Without a schema the fields are the file's
top-level columns: INT32 and INT64 are int, FLOAT and DOUBLE float, DECIMAL
decimal, TIMESTAMP (and legacy INT96) timestamp, DATE date, BOOLEAN bool,
STRING and ENUM string, JSON json and other byte arrays bytes. Files
written by the parquet sink give back the exact types they were written with.
With a schema, columns are picked by name and converted to the schema's types; a
value that does not convert is rejected with its row number. Nested columns
(groups, lists, maps) are not supported.`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "File or glob (data/*.parquet), relative to the pipeline file."},
		{Name: "schema", Type: connector.TSchema, Doc: "Columns to read and their types; all top-level columns by default."},
		{Name: "min_age", Type: connector.TDuration, Default: "0s", Doc: "Leave files modified less than this long before the run for a later run."},
	},
	Example: `source:
  type: parquet
  path: exports/*.parquet
  schema: { order_id: int, total: decimal, at: timestamp }`,
}

type parquetSourceConfig struct {
	Path   string              `yaml:"path"`
	Schema connector.SchemaDef `yaml:"schema"`
	MinAge connector.Duration  `yaml:"min_age"`
}

type parquetSource struct {
	files  fileSet
	schema *record.Schema // nil: from each file
}

func newParquetSource(p connector.Params) (connector.Source, error) {
	var cfg parquetSourceConfig
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := checkPattern(p, cfg.Path); err != nil {
		return nil, err
	}
	s := &parquetSource{
		files:  fileSet{kind: "parquet", pattern: cfg.Path, minAge: time.Duration(cfg.MinAge), compression: compNone},
		schema: cfg.Schema.Schema(),
	}
	if s.schema != nil {
		return sourceWithSchema{Source: s, schema: s.schema}, nil
	}
	return s, nil
}

// Plan implements connector.Source.
func (s *parquetSource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	return s.files.plan(ctx, env)
}

type parquetPos struct {
	Row int64 `json:"row"`
}

// Open implements connector.Source.
func (s *parquetSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (_ connector.Reader, err error) {
	var start parquetPos
	if pos != nil {
		d := json.NewDecoder(strings.NewReader(string(pos)))
		d.DisallowUnknownFields()
		if err := d.Decode(&start); err != nil || start.Row < 0 {
			return nil, fmt.Errorf("parquet: %s: position %q is not one of this source's positions", t.Key, pos)
		}
	}
	f, err := os.Open(env.Path(t.Key))
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("parquet: %w", err))
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, connector.Unavailable(fmt.Errorf("parquet: %w", err))
	}
	defer recoverParquet(t.Key, &err)
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("parquet: %s: %w", t.Key, err)
	}
	r := &parquetReader{key: t.Key, f: f, loc: connector.ZoneOf(nil, env), lim: limits(env)}
	if err := r.bind(pf, s.schema); err != nil {
		return nil, err
	}
	r.rd = parquet.NewReader(pf)
	if start.Row > pf.NumRows() {
		return nil, fmt.Errorf("parquet: %s: position row %d is past the end (%d rows): the file changed", t.Key, start.Row, pf.NumRows())
	}
	if start.Row > 0 {
		if err := r.rd.SeekToRow(start.Row); err != nil {
			return nil, fmt.Errorf("parquet: %s: seeking to row %d: %w", t.Key, start.Row, err)
		}
	}
	r.row = start.Row
	r.left = pf.NumRows() - start.Row
	return r, nil
}

// recoverParquet turns a panic inside the parquet library (a corrupt
// file) into an error of the task.
func recoverParquet(key string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("parquet: %s: corrupt or unsupported file: %v", key, p)
	}
}

// parquetReader reads one parquet file.
type parquetReader struct {
	key string
	f   *os.File
	//lint:ignore SA1019 the untyped reader is the API for a schema known only at run time
	rd      *parquet.Reader
	loc     *time.Location
	lim     record.Limits
	schema  *record.Schema
	natural []record.Type                      // each field's type as stored
	decode  []func(parquet.Value) (any, error) // per field: stored value to its natural type
	field   []int                              // leaf column → schema field, -1 when not read
	row     int64                              // index of the next row
	left    int64
	rows    []parquet.Row
}

// bind maps the file's columns to the schema (given, stored by the sink,
// or derived from the columns).
func (r *parquetReader) bind(pf *parquet.File, want *record.Schema) error {
	cols := pf.Root().Columns()
	byName := map[string]*parquet.Column{}
	for _, c := range cols {
		byName[c.Name()] = c
	}
	if want == nil {
		if meta, ok := pf.Lookup(schemaMetaKey); ok {
			if s, err := parseSchemaMeta(meta); err == nil && sameNames(s, cols) {
				want = s
			}
		}
	}
	var fields []record.Field
	var picked []*parquet.Column
	if want == nil {
		for _, c := range cols {
			t, _, err := parquetColumnType(c)
			if err != nil {
				return fmt.Errorf("parquet: %s: %w", r.key, err)
			}
			fields = append(fields, record.Field{Name: c.Name(), Type: t})
			picked = append(picked, c)
		}
	} else {
		var missing []string
		for i := 0; i < want.Len(); i++ {
			f := want.Field(i)
			c, ok := byName[f.Name]
			if !ok {
				missing = append(missing, f.Name)
				continue
			}
			fields = append(fields, f)
			picked = append(picked, c)
		}
		if len(missing) > 0 {
			return fmt.Errorf("parquet: %s: no column %s (columns: %s)", r.key, strings.Join(missing, ", "), strings.Join(columnNames(cols), ", "))
		}
	}
	s, err := record.NewSchema(fields...)
	if err != nil {
		return fmt.Errorf("parquet: %s: %v", r.key, err)
	}
	r.schema = s
	r.field = make([]int, 0)
	for i, c := range picked {
		t, dec, err := parquetColumnType(c)
		if err != nil {
			return fmt.Errorf("parquet: %s: %w", r.key, err)
		}
		leaf := c.Index()
		for len(r.field) <= leaf {
			r.field = append(r.field, -1)
		}
		r.field[leaf] = i
		r.natural = append(r.natural, t)
		r.decode = append(r.decode, dec)
	}
	return nil
}

func columnNames(cols []*parquet.Column) []string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.Name()
	}
	return n
}

func sameNames(s *record.Schema, cols []*parquet.Column) bool {
	if s.Len() != len(cols) {
		return false
	}
	for i, c := range cols {
		if s.Field(i).Name != c.Name() {
			return false
		}
	}
	return true
}

// parquetColumnType gives a column's natural field type and the function
// that turns its stored values into it.
func parquetColumnType(c *parquet.Column) (record.Type, func(parquet.Value) (any, error), error) {
	if !c.Leaf() || c.Repeated() {
		return 0, nil, fmt.Errorf("column %q is nested (a group, list or map), which is not supported: leave it out of the schema", c.Name())
	}
	typ := c.Type()
	lt := typ.LogicalType()
	var ltv format.LogicalTypeValue
	if lt != nil {
		ltv = lt.Value
	}
	ct := typ.ConvertedType()
	kind := typ.Kind()
	switch l := ltv.(type) {
	case *format.DecimalType:
		return record.Decimal, decimalDecoder(kind, l.Scale), nil
	case *format.TimestampType:
		unit := l.Unit.Value
		if unit == nil {
			return 0, nil, fmt.Errorf("column %q: timestamp without a unit", c.Name())
		}
		return record.Timestamp, timestampDecoder(int64(unit.Duration())), nil
	case *format.DateType:
		return record.Date, func(v parquet.Value) (any, error) { return record.LocalDate(v.Int32()), nil }, nil
	case *format.StringType, *format.EnumType:
		return record.String, func(v parquet.Value) (any, error) { return string(v.ByteArray()), nil }, nil
	case *format.JsonType:
		return record.JSON, func(v parquet.Value) (any, error) {
			return record.ParseText(string(v.ByteArray()), record.JSON, nil)
		}, nil
	}
	if ct != nil {
		switch *ct {
		case deprecated.UTF8, deprecated.Enum, deprecated.Json:
			return record.String, func(v parquet.Value) (any, error) { return string(v.ByteArray()), nil }, nil
		case deprecated.Date:
			return record.Date, func(v parquet.Value) (any, error) { return record.LocalDate(v.Int32()), nil }, nil
		case deprecated.TimestampMillis:
			return record.Timestamp, timestampDecoder(int64(time.Millisecond)), nil
		case deprecated.TimestampMicros:
			return record.Timestamp, timestampDecoder(int64(time.Microsecond)), nil
		}
	}
	switch kind {
	case parquet.Boolean:
		return record.Bool, func(v parquet.Value) (any, error) { return v.Boolean(), nil }, nil
	case parquet.Int32:
		return record.Int, func(v parquet.Value) (any, error) { return int64(v.Int32()), nil }, nil
	case parquet.Int64:
		if it, ok := ltv.(*format.IntType); ok && !it.IsSigned && it.BitWidth == 64 {
			return record.Int, func(v parquet.Value) (any, error) {
				u := uint64(v.Int64())
				if u > math.MaxInt64 {
					return nil, fmt.Errorf("value %d is out of range for a 64-bit integer", u)
				}
				return int64(u), nil
			}, nil
		}
		return record.Int, func(v parquet.Value) (any, error) { return v.Int64(), nil }, nil
	case parquet.Int96:
		return record.Timestamp, func(v parquet.Value) (any, error) { return int96Time(v.Int96()), nil }, nil
	case parquet.Float:
		return record.Float, func(v parquet.Value) (any, error) { return float64(v.Float()), nil }, nil
	case parquet.Double:
		return record.Float, func(v parquet.Value) (any, error) { return v.Double(), nil }, nil
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return record.Bytes, func(v parquet.Value) (any, error) {
			b := v.ByteArray()
			out := make([]byte, len(b)) // an empty value is not null
			copy(out, b)
			return out, nil
		}, nil
	}
	return 0, nil, fmt.Errorf("column %q has an unsupported type %s", c.Name(), typ)
}

func timestampDecoder(unit int64) func(parquet.Value) (any, error) {
	return func(v parquet.Value) (any, error) {
		n := v.Int64()
		sec, rem := n/(int64(time.Second)/unit), n%(int64(time.Second)/unit)
		return time.Unix(sec, rem*unit).UTC(), nil
	}
}

// int96Time decodes the legacy INT96 timestamp: nanoseconds of the day,
// then the Julian day.
func int96Time(v deprecated.Int96) time.Time {
	nanos := int64(uint64(v[1])<<32 | uint64(v[0]))
	days := int64(v[2]) - 2440588 // Julian day of 1970-01-01
	return time.Unix(days*86400, nanos).UTC()
}

// decimalDecoder reads an unscaled integer (INT32, INT64 or big-endian
// two's complement bytes) and applies the scale exactly.
func decimalDecoder(kind parquet.Kind, scale int32) func(parquet.Value) (any, error) {
	exp := "e-" + strconv.Itoa(int(scale))
	switch kind {
	case parquet.Int32:
		return func(v parquet.Value) (any, error) { return record.ParseDec(strconv.Itoa(int(v.Int32())) + exp) }
	case parquet.Int64:
		return func(v parquet.Value) (any, error) { return record.ParseDec(strconv.FormatInt(v.Int64(), 10) + exp) }
	}
	return func(v parquet.Value) (any, error) {
		b := v.ByteArray()
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 { // negative: subtract 2^(8·len)
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
		}
		return record.ParseDec(n.String() + exp)
	}
}

// Schema implements connector.Reader.
func (r *parquetReader) Schema() *record.Schema { return r.schema }

// Next implements connector.Reader.
func (r *parquetReader) Next(ctx context.Context) (b *record.Batch, err error) {
	if r.left <= 0 {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer recoverParquet(r.key, &err)
	want := int(min(int64(r.lim.BatchRows), r.left))
	if cap(r.rows) < want {
		r.rows = make([]parquet.Row, want)
	}
	rows := r.rows[:want]
	n, err := r.rd.ReadRows(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parquet: reading %s: %w", r.key, err)
	}
	if n == 0 {
		r.left = 0
		return nil, io.EOF
	}
	nf := r.schema.Len()
	b = &record.Batch{
		Schema: r.schema,
		Origin: r.key,
		Read:   n,
		Rows:   make([]record.Row, 0, n),
		Lines:  make([]int64, 0, n),
	}
	vals := make([]any, n*nf)
	natural := make(record.Row, nf)
	for i := 0; i < n; i++ {
		line := r.row + int64(i) + 1
		row := record.Row(vals[i*nf : (i+1)*nf : (i+1)*nf])
		clear(natural)
		var bad error
		badField := ""
		for _, v := range rows[i] {
			c := v.Column()
			if c >= len(r.field) || r.field[c] < 0 || v.IsNull() {
				continue
			}
			j := r.field[c]
			x, err := r.decode[j](v)
			if err != nil && bad == nil {
				bad, badField = err, r.schema.Field(j).Name
				continue
			}
			natural[j] = x
		}
		for j := 0; j < nf && bad == nil; j++ {
			t := r.schema.Field(j).Type
			if natural[j] == nil || t == r.natural[j] {
				row[j] = natural[j]
				continue
			}
			var v any
			var err error
			if s, ok := natural[j].(string); ok && t == record.JSON {
				v, err = record.ParseText(s, t, r.loc) // JSON stored as text
			} else {
				v, err = record.Convert(natural[j], t, r.loc)
			}
			if err != nil {
				bad, badField = err, r.schema.Field(j).Name
				break
			}
			row[j] = v
		}
		if bad != nil {
			b.Rejects = append(b.Rejects, record.Reject{Line: line, Step: "source", Field: badField,
				Err: convReason(bad, badField), Raw: record.RowJSON(r.schema, natural)})
			continue
		}
		b.Rows = append(b.Rows, row)
		b.Lines = append(b.Lines, line)
	}
	r.row += int64(n)
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		r.left = 0
	}
	b.Pos = record.Position(`{"row":` + strconv.FormatInt(r.row, 10) + `}`)
	return b, nil
}

// Close implements connector.Reader.
func (r *parquetReader) Close() error {
	var err error
	if r.rd != nil {
		func() {
			defer recoverParquet(r.key, &err)
			err = r.rd.Close()
		}()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// schemaMeta is the JSON form of a record schema in the file metadata.
type schemaMeta struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func encodeSchemaMeta(s *record.Schema) string {
	m := make([]schemaMeta, s.Len())
	for i := range m {
		f := s.Field(i)
		m[i] = schemaMeta{Name: f.Name, Type: f.Type.String()}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func parseSchemaMeta(text string) (*record.Schema, error) {
	var m []schemaMeta
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, err
	}
	fields := make([]record.Field, len(m))
	for i, f := range m {
		t, err := record.ParseType(f.Type)
		if err != nil {
			return nil, err
		}
		fields[i] = record.Field{Name: f.Name, Type: t}
	}
	return record.NewSchema(fields...)
}

var parquetSinkSpec = connector.Spec{
	Name:    "parquet",
	Summary: "Write one Parquet file per run, renamed into place when the run commits.",
	Doc: `Writes every row to one Parquet file (Snappy-compressed), one column per field:
int as INT64, float as DOUBLE, bool as BOOLEAN, timestamp as TIMESTAMP(NANOS,
UTC), date as DATE, bytes as BYTE_ARRAY, json as JSON text, and string and
decimal as STRING (decimals as their exact text). The record schema is kept in the file metadata,
so the parquet source reads decimals and json back with their types. A timestamp
outside the years 1678–2262 does not fit and its row is refused. The file is
written under a hidden temporary name and renamed to its final name when the run
commits; the directory is created when missing; the path may hold {run_id} and
{date} (the run's date).`,
	Fields: []connector.FieldSpec{
		{Name: "path", Type: connector.TString, Required: true, Doc: "Output file, relative to the pipeline file; may hold {run_id} and {date}."},
		{Name: "row_group_rows", Type: connector.TInt, Default: "131072", Doc: "Rows per row group."},
	},
	Example: `sink:
  type: parquet
  path: lake/orders/{date}/part-{run_id}.parquet`,
}

type parquetSinkConfig struct {
	Path         string `yaml:"path"`
	RowGroupRows int64  `yaml:"row_group_rows"`
}

type parquetSink struct{ cfg parquetSinkConfig }

func newParquetSink(p connector.Params) (connector.Sink, error) {
	cfg := parquetSinkConfig{RowGroupRows: 128 << 10}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Path) == "" {
		return nil, connector.Errorf(p.FieldPos("path"), "path is required")
	}
	if cfg.RowGroupRows <= 0 {
		return nil, connector.Errorf(p.FieldPos("row_group_rows"), "row_group_rows must be positive")
	}
	return &parquetSink{cfg: cfg}, nil
}

// orderedGroup is a parquet group whose columns keep the record schema's
// order (parquet.Group, a map, sorts them by name).
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

type namedField struct {
	parquet.Node
	name string
}

func (f *namedField) Name() string                           { return f.name }
func (f *namedField) Value(base reflect.Value) reflect.Value { return base.FieldByName(f.name) }

// parquetNode is the column type of a field type.
func parquetNode(t record.Type) parquet.Node {
	switch t {
	case record.Int:
		return parquet.Int(64)
	case record.Float:
		return parquet.Leaf(parquet.DoubleType)
	case record.Bool:
		return parquet.Leaf(parquet.BooleanType)
	case record.Timestamp:
		return parquet.TimestampAdjusted(parquet.Nanosecond, true)
	case record.Date:
		return parquet.Date()
	case record.Bytes:
		return parquet.Leaf(parquet.ByteArrayType)
	case record.JSON:
		return parquet.JSON()
	}
	return parquet.String() // string, decimal, any
}

// Open implements connector.Sink.
func (s *parquetSink) Open(_ context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	if schema.Len() == 0 {
		return nil, fmt.Errorf("parquet: cannot write rows without fields")
	}
	g := &orderedGroup{Group: parquet.Group{}}
	for i := 0; i < schema.Len(); i++ {
		f := schema.Field(i)
		g.fields = append(g.fields, &namedField{Node: parquet.Optional(parquetNode(f.Type)), name: f.Name})
	}
	a, err := createAtomic(env, "parquet", s.cfg.Path, false)
	if err != nil {
		return nil, err
	}
	w := &parquetWriter{schema: schema, file: a}
	func() {
		defer recoverParquet(s.cfg.Path, &err)
		w.pw = parquet.NewWriter(a.w, parquet.NewSchema("backbone", g),
			parquet.Compression(&parquet.Snappy),
			parquet.MaxRowsPerRowGroup(s.cfg.RowGroupRows),
			parquet.KeyValueMetadata(schemaMetaKey, encodeSchemaMeta(schema)),
			parquet.CreatedBy("backbone", "", ""))
	}()
	if err != nil {
		a.abort()
		return nil, err
	}
	return w, nil
}

type parquetWriter struct {
	schema *record.Schema
	file   *atomicFile
	//lint:ignore SA1019 the untyped writer is the API for a schema known only at run time
	pw   *parquet.Writer
	rows []parquet.Row
}

// Write implements connector.Writer. A row holding a value the file
// cannot store (a timestamp out of range, a value of the wrong type) is
// refused in a *connector.BatchError; the others are written.
func (w *parquetWriter) Write(ctx context.Context, b *record.Batch) (n int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if b.Schema != nil && b.Schema.Len() != w.schema.Len() {
		return 0, fmt.Errorf("parquet: batch has %d fields, the sink was opened for %d (%s)", b.Schema.Len(), w.schema.Len(), w.schema)
	}
	defer recoverParquet("sink", &err)
	var rows []parquet.Row
	var refused []connector.RowError
	if p, ok := b.Prepared.(preparedParquet); ok && p.w == w {
		rows, refused = p.rows, p.refused
		b.Prepared = nil
	} else {
		rows, refused = w.rowsOf(b, w.rows[:0])
		w.rows = rows[:0]
	}
	if _, err := w.pw.WriteRows(rows); err != nil {
		return 0, fmt.Errorf("parquet: %w", err)
	}
	if len(refused) > 0 {
		return len(rows), &connector.BatchError{Rows: refused}
	}
	return len(rows), nil
}

// preparedParquet is a batch's rows as Prepare converted them.
type preparedParquet struct {
	w       *parquetWriter
	rows    []parquet.Row
	refused []connector.RowError
}

// Prepare implements connector.Preparer: the rows are converted on the
// engine's workers, and Write, on the sink's goroutine, only writes them.
func (w *parquetWriter) Prepare(b *record.Batch) (err error) {
	if b.Schema != nil && b.Schema.Len() != w.schema.Len() {
		return nil // Write reports it
	}
	defer recoverParquet("sink", &err)
	rows, refused := w.rowsOf(b, make([]parquet.Row, 0, len(b.Rows)))
	b.Prepared = preparedParquet{w: w, rows: rows, refused: refused}
	return nil
}

// rowsOf converts the batch's rows, appending them to rows; the ones that
// do not convert are refused.
func (w *parquetWriter) rowsOf(b *record.Batch, rows []parquet.Row) ([]parquet.Row, []connector.RowError) {
	var refused []connector.RowError
	for i, r := range b.Rows {
		pr, err := w.row(r)
		if err != nil {
			refused = append(refused, connector.RowError{Index: i, Err: err})
			continue
		}
		rows = append(rows, pr)
	}
	return rows, refused
}

// row converts a record row to a parquet row.
func (w *parquetWriter) row(r record.Row) (parquet.Row, error) {
	pr := make(parquet.Row, len(r))
	for i, v := range r {
		f := w.schema.Field(i)
		if v == nil {
			pr[i] = parquet.NullValue().Level(0, 0, i)
			continue
		}
		pv, err := parquetValue(v, f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.Name, err)
		}
		pr[i] = pv.Level(0, 1, i)
	}
	return pr, nil
}

// Years a TIMESTAMP(NANOS) can hold.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func parquetValue(v any, t record.Type) (parquet.Value, error) {
	switch t {
	case record.String, record.Decimal, record.Any:
		if d, ok := v.(record.Dec); ok {
			return parquet.ByteArrayValue(d.AppendText(nil)), nil // FormatText's, without a string made
		}
		return parquet.ByteArrayValue([]byte(record.FormatText(v))), nil
	case record.JSON:
		return parquet.ByteArrayValue(record.AppendJSON(nil, v)), nil
	}
	c, err := record.Convert(v, t, time.UTC)
	if err != nil {
		return parquet.Value{}, err
	}
	switch x := c.(type) {
	case int64:
		return parquet.Int64Value(x), nil
	case float64:
		return parquet.DoubleValue(x), nil
	case bool:
		return parquet.BooleanValue(x), nil
	case time.Time:
		if x.Before(minNanoTime) || x.After(maxNanoTime) {
			return parquet.Value{}, fmt.Errorf("timestamp %s is outside the range of TIMESTAMP(NANOS) (years 1678–2262)", x.Format(time.RFC3339Nano))
		}
		return parquet.Int64Value(x.UnixNano()), nil
	case record.LocalDate:
		return parquet.Int32Value(int32(x)), nil
	case []byte:
		return parquet.ByteArrayValue(x), nil
	}
	return parquet.Value{}, fmt.Errorf("cannot store a %T as %s", c, t)
}

// Commit implements connector.Writer: the footer is written and the file
// renamed into place.
func (w *parquetWriter) Commit(ctx context.Context, _ []connector.Checkpoint) (err error) {
	if w.pw != nil {
		func() {
			defer recoverParquet("sink", &err)
			err = w.pw.Close()
		}()
		w.pw = nil
		if err != nil {
			w.file.abort()
			return fmt.Errorf("parquet: %w", err)
		}
	}
	if err := w.file.commit(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

// Close implements connector.Writer.
func (w *parquetWriter) Close() error { return w.file.abort() }

// Info implements connector.Writer.
func (w *parquetWriter) Info() connector.WriterInfo { return connector.WriterInfo{Once: true} }
