package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backbone-etl/backbone/internal/record"
)

// kind is how a column's values arrive from the driver and how they are
// bound back: it decides both decoding and the SQL of comparisons.
type kind uint8

const (
	kAny       kind = iota // unknown: the driver's value as it comes
	kInt                   // signed integers, YEAR, unsigned up to INT: int64
	kUint                  // BIGINT UNSIGNED: int64, or text above MaxInt64
	kFloat                 // FLOAT, DOUBLE: float32, float64
	kDecimal               // DECIMAL: exact text
	kString                // CHAR, VARCHAR, TEXT, ENUM, SET, UUID
	kBytes                 // BINARY, VARBINARY, BLOB, GEOMETRY
	kBool                  // TINYINT(1), BOOLEAN, BIT(1) of a table
	kBit                   // BIT(n): big-endian bytes
	kDate                  // DATE: time.Time at midnight UTC
	kDateTime              // DATETIME: wall clock, labelled UTC by the driver
	kTimestamp             // TIMESTAMP: an instant, read in UTC (time_zone '+00:00')
	kTime                  // TIME: "hh:mm:ss[.ffffff]" text
	kJSON                  // JSON (MySQL) or LONGTEXT with json_valid (MariaDB)
)

// column is a column of a table or of a query's result.
type column struct {
	name      string
	kind      kind
	dbType    string // as the database names it: "decimal(10,2)", "DATETIME"
	precision int64  // DECIMAL
	scale     int64  // DECIMAL
	maxLen    int64  // character or byte length of string and binary columns, 0 when unknown
}

// recordType is the type a column's values take without a declared schema.
func (c column) recordType() record.Type {
	switch c.kind {
	case kInt, kUint, kBit:
		return record.Int
	case kFloat:
		return record.Float
	case kDecimal:
		return record.Decimal
	case kString, kTime:
		return record.String
	case kBytes:
		return record.Bytes
	case kBool:
		return record.Bool
	case kDate:
		return record.Date
	case kDateTime, kTimestamp:
		return record.Timestamp
	case kJSON:
		return record.JSON
	}
	return record.Any
}

// rawBytes reports whether the column is scanned into sql.RawBytes (text
// and binary values, converted at once) rather than into an interface.
func (c column) rawBytes() bool {
	switch c.kind {
	case kDecimal, kString, kBytes, kTime, kJSON, kBit:
		return true
	}
	return false
}

// kindFromDriver maps the driver's type name of a result column.
func kindFromDriver(name string) kind {
	switch strings.ToUpper(name) {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
		"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
		return kInt
	case "UNSIGNED BIGINT":
		return kUint
	case "FLOAT", "DOUBLE":
		return kFloat
	case "DECIMAL":
		return kDecimal
	case "CHAR", "VARCHAR", "TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET":
		return kString
	case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY", "VECTOR":
		return kBytes
	case "BIT":
		return kBit
	case "DATE":
		return kDate
	case "DATETIME":
		return kDateTime
	case "TIMESTAMP":
		return kTimestamp
	case "TIME":
		return kTime
	case "JSON":
		return kJSON
	}
	return kAny
}

// kindFromSchema maps information_schema's DATA_TYPE and COLUMN_TYPE.
func kindFromSchema(dataType, columnType string, isJSON bool) kind {
	dt := strings.ToLower(dataType)
	ct := strings.ToLower(columnType)
	if isJSON || dt == "json" {
		return kJSON
	}
	switch dt {
	case "tinyint":
		if strings.HasPrefix(ct, "tinyint(1)") {
			return kBool
		}
		return kInt
	case "bool", "boolean":
		return kBool
	case "smallint", "mediumint", "int", "integer", "year":
		return kInt
	case "bigint":
		if strings.Contains(ct, "unsigned") {
			return kUint
		}
		return kInt
	case "float", "double", "real", "double precision":
		return kFloat
	case "decimal", "numeric", "dec", "fixed":
		return kDecimal
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "uuid", "inet4", "inet6":
		return kString
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "vector":
		return kBytes
	case "bit":
		if ct == "bit(1)" {
			return kBool
		}
		return kBit
	case "date":
		return kDate
	case "datetime":
		return kDateTime
	case "timestamp":
		return kTimestamp
	case "time":
		return kTime
	}
	return kAny
}

// querier is what *sql.DB and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// fromClause is the FROM target of a table or a query, aliased s.
func fromClause(table, query string) string {
	if query != "" {
		return "(" + trimQuery(query) + ") AS s"
	}
	return quoteIdent(table) + " AS s"
}

func trimQuery(q string) string { return strings.TrimRight(strings.TrimSpace(q), "; \t\r\n") }

// describe lists the columns of a table (from information_schema, which
// knows TINYINT(1), BIT(1) and MariaDB's JSON) or of a query's result
// (from the driver's column types).
func describe(ctx context.Context, db querier, table, query string) ([]column, error) {
	if table != "" {
		cols, err := tableColumns(ctx, db, table)
		if err != nil {
			return nil, err
		}
		if len(cols) == 0 {
			return nil, fmt.Errorf("table %q does not exist in the database of the dsn", table)
		}
		return cols, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+fromClause("", query)+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(cts))
	for i, ct := range cts {
		c := column{name: ct.Name(), kind: kindFromDriver(ct.DatabaseTypeName()), dbType: ct.DatabaseTypeName()}
		if p, s, ok := ct.DecimalSize(); ok {
			c.precision, c.scale = p, s
		}
		cols[i] = c
	}
	return cols, rows.Err()
}

// tableColumns lists a table's columns in order; none when it does not
// exist.
func tableColumns(ctx context.Context, db querier, table string) ([]column, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(NUMERIC_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0),
		COALESCE(CHARACTER_MAXIMUM_LENGTH, 0)
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, table)
	if err != nil {
		return nil, err
	}
	type info struct {
		name, dataType, columnType string
		precision, scale, maxLen   int64
	}
	var infos []info
	for rows.Next() {
		var i info
		if err := rows.Scan(&i.name, &i.dataType, &i.columnType, &i.precision, &i.scale, &i.maxLen); err != nil {
			rows.Close()
			return nil, err
		}
		infos = append(infos, i)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, nil
	}
	jsonCols, err := jsonColumns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(infos))
	for i, in := range infos {
		cols[i] = column{
			name:      in.name,
			kind:      kindFromSchema(in.dataType, in.columnType, jsonCols[strings.ToLower(in.name)]),
			dbType:    in.columnType,
			precision: in.precision,
			scale:     in.scale,
			maxLen:    in.maxLen,
		}
	}
	return cols, nil
}

// jsonColumns finds MariaDB's JSON columns: LONGTEXT with a column CHECK
// json_valid(`name`). MySQL has no such table column and a json DATA_TYPE.
func jsonColumns(ctx context.Context, db querier, table string) (map[string]bool, error) {
	out := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table)
	if err != nil {
		if serverCode(err) != 0 {
			return out, nil // MySQL: no TABLE_NAME column; JSON is its own type there
		}
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var clause string
		if err := rows.Scan(&clause); err != nil {
			return nil, err
		}
		c := strings.TrimSpace(clause)
		if strings.HasPrefix(strings.ToLower(c), "json_valid(`") && strings.HasSuffix(c, "`)") {
			name := strings.ReplaceAll(c[len("json_valid(`"):len(c)-2], "``", "`")
			out[strings.ToLower(name)] = true
		}
	}
	return out, rows.Err()
}

// findColumn returns the column named name (MySQL column names are case
// insensitive).
func findColumn(cols []column, name string) (column, bool) {
	for _, c := range cols {
		if strings.EqualFold(c.name, name) {
			return c, true
		}
	}
	return column{}, false
}

// errZeroDate is the reason a zero date ('0000-00-00') is refused.
const errZeroDate = "the zero date 0000-00-00 is not a valid date"

// decode turns the driver's value of column c into the value of its
// natural record type. raw is the RawBytes of a rawBytes column; v the
// scanned interface otherwise. loc is the zone of DATETIME values.
func decode(c *column, raw []byte, v any, loc *time.Location) (any, error) {
	if c.rawBytes() {
		if raw == nil {
			return nil, nil
		}
		switch c.kind {
		case kDecimal:
			d, err := record.ParseDec(string(raw))
			if err != nil {
				return nil, &record.ConvError{Value: cutText(raw), Type: record.Decimal, Reason: err.Error()}
			}
			return d, nil
		case kString, kTime:
			if !utf8.Valid(raw) {
				return nil, &record.ConvError{Value: strings.ToValidUTF8(cutText(raw), "\uFFFD"), Type: record.String, Reason: "invalid UTF-8"}
			}
			return string(raw), nil
		case kBytes:
			return bytes.Clone(raw), nil
		case kJSON:
			return record.ParseText(string(raw), record.JSON, loc)
		case kBit:
			if len(raw) > 8 {
				return nil, &record.ConvError{Value: fmt.Sprintf("%x", raw), Type: record.Int, Reason: "more than 64 bits"}
			}
			var u uint64
			for _, b := range raw {
				u = u<<8 | uint64(b)
			}
			if u > math.MaxInt64 {
				return nil, &record.ConvError{Value: strconv.FormatUint(u, 10), Type: record.Int, Reason: "out of range for a 64-bit integer"}
			}
			return int64(u), nil
		}
	}
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kInt, kUint:
		switch x := v.(type) {
		case int64:
			return x, nil
		case uint64: // text protocol
			if x > math.MaxInt64 {
				return strconv.FormatUint(x, 10), nil
			}
			return int64(x), nil
		case string: // binary protocol, above MaxInt64: an int field rejects it, a decimal takes it
			return x, nil
		}
	case kFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
	case kBool:
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case []byte: // BIT(1)
			return len(x) > 0 && x[len(x)-1] != 0, nil
		}
	case kDate:
		if t, ok := v.(time.Time); ok {
			if t.IsZero() {
				return nil, &record.ConvError{Value: "0000-00-00", Type: record.Date, Reason: errZeroDate}
			}
			return record.LocalDateOf(t), nil
		}
	case kDateTime:
		if t, ok := v.(time.Time); ok {
			if t.IsZero() {
				return nil, &record.ConvError{Value: "0000-00-00 00:00:00", Type: record.Timestamp, Reason: errZeroDate}
			}
			if loc != nil && loc != time.UTC {
				y, m, d := t.Date()
				hh, mm, ss := t.Clock()
				return time.Date(y, m, d, hh, mm, ss, t.Nanosecond(), loc), nil
			}
			return t, nil
		}
	case kTimestamp:
		if t, ok := v.(time.Time); ok {
			if t.IsZero() {
				return nil, &record.ConvError{Value: "0000-00-00 00:00:00", Type: record.Timestamp, Reason: errZeroDate}
			}
			return t.UTC(), nil
		}
	}
	// kAny, or a value of another representation than expected (a text
	// protocol result, a server that labels a column differently).
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return bytes.Clone(x), nil
	case float32:
		return float64(x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
		return strconv.FormatUint(x, 10), nil
	}
	return v, nil
}

func cutText(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// convertTo converts a decoded value to the declared type t of field name.
func convertTo(v any, t record.Type, name string, loc *time.Location) (any, error) {
	var out any
	var err error
	if s, ok := v.(string); ok && t == record.JSON {
		out, err = record.ParseText(s, record.JSON, loc) // JSON text, not a JSON string value
	} else {
		out, err = record.Convert(v, t, loc)
	}
	if err != nil {
		return nil, fieldError(name, err)
	}
	return out, nil
}

// fieldError names the field in a conversion error.
func fieldError(name string, err error) error {
	var ce *record.ConvError
	if errors.As(err, &ce) {
		ce.Field = name
		return ce
	}
	return fmt.Errorf("field %q: %w", name, err)
}

// Timestamps and dates are bound as text the server converts to the
// column's type: "YYYY-MM-DD hh:mm:ss.ffffff" (six digits: MySQL keeps
// microseconds) and "YYYY-MM-DD".

// appendDateTime appends t's wall clock with microseconds.
func appendDateTime(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, "2006-01-02 15:04:05.000000")
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, ' ')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	return appendDigits(dst, t.Nanosecond()/1000, 6)
}

// appendDate appends YYYY-MM-DD.
func appendDate(dst []byte, year int, month time.Month, day int) []byte {
	if year < 0 || year > 9999 {
		return time.Date(year, month, day, 0, 0, 0, 0, time.UTC).AppendFormat(dst, time.DateOnly)
	}
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	return appendDigits(dst, day, 2)
}

// appendDigits appends the n last decimal digits of v ≥ 0, zero-padded.
func appendDigits(dst []byte, v, n int) []byte {
	for i := 0; i < n; i++ {
		dst = append(dst, 0)
	}
	for i := len(dst) - 1; i >= len(dst)-n; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// arena hands out byte slices that stay valid until reset: formatted
// values bound to a statement, without an allocation per value. A full
// block is never grown in place (that would move the slices already handed
// out); a new one is started.
type arena struct {
	blocks [][]byte
	cur    int
}

const arenaBlock = 64 << 10

// copy returns a copy of p that stays valid until reset.
func (a *arena) copy(p []byte) []byte {
	if len(a.blocks) == 0 {
		a.blocks = append(a.blocks, make([]byte, 0, max(arenaBlock, len(p))))
	}
	b := a.blocks[a.cur]
	if cap(b)-len(b) < len(p) {
		a.cur++
		if a.cur == len(a.blocks) || cap(a.blocks[a.cur]) < len(p) {
			a.blocks = append(a.blocks[:a.cur], make([]byte, 0, max(arenaBlock, len(p))))
		}
		b = a.blocks[a.cur][:0]
	}
	n := len(b)
	b = append(b, p...)
	a.blocks[a.cur] = b
	return b[n:len(b):len(b)]
}

// reset makes every block reusable; the values handed out are invalid.
func (a *arena) reset() {
	for i := range a.blocks {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.cur = 0
	if len(a.blocks) > 16 { // an exceptional batch: do not keep its memory
		a.blocks = a.blocks[:16]
	}
}

// jsonText renders a value of a json field as JSON text.
func jsonText(dst []byte, v any) []byte { return record.AppendJSON(dst, v) }

// isJSONValue reports whether v is a decoded JSON tree.
func isJSONValue(v any) bool {
	switch v.(type) {
	case map[string]any, []any, json.Number:
		return true
	}
	return false
}
