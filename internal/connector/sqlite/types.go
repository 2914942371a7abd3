package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// defaultBusyTimeout is how long a statement waits for another connection's
// lock before it fails with SQLITE_BUSY.
const defaultBusyTimeout = 5 * time.Second

// Declared column types the sink writes. decimal and json use names that
// contain TEXT so that SQLite gives the column TEXT affinity and keeps the
// exact text: a column declared NUMERIC or JSON would have NUMERIC affinity
// and SQLite would turn "1.10" into the REAL 1.1. Timestamps and dates are
// declared TIMESTAMP and DATE (NUMERIC affinity), which is harmless: their
// text is never a well-formed number, so it is stored as written.
const (
	declDecimal = "DECIMAL_TEXT"
	declJSON    = "JSON_TEXT"
)

// timestampLayout is RFC 3339 with a fixed nine-digit fraction: the text of
// two timestamps in the same zone sorts like the instants, which keeps a
// timestamp column usable as an incremental cursor. time.RFC3339Nano drops
// trailing zeros, and "…:05Z" would sort after "…:05.5Z".
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// quoteIdent quotes an SQL identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteIdents quotes names and joins them with ", ", each prefixed by
// prefix ("s." for a table alias, "+s." to drop the declared type).
func quoteIdents(prefix string, names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix)
		b.WriteString(quoteIdent(n))
	}
	return b.String()
}

// typeFromDecl maps a column's declared type to a record type. Known names
// map directly; other names follow SQLite's affinity rules, except that a
// name with NUMERIC affinity that is not a known numeric name (TIME, MONEY…)
// reads as a string, which every stored value converts to. A column with no
// declared type (an expression in a query) is Any: its values keep their
// SQLite storage class (int, float, string, bytes).
func typeFromDecl(decl string) record.Type {
	d := strings.ToUpper(strings.TrimSpace(decl))
	if i := strings.IndexByte(d, '('); i >= 0 {
		d = strings.TrimSpace(d[:i])
	}
	switch d {
	case "":
		return record.Any
	case "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "MEDIUMINT", "INT2", "INT4", "INT8", "UNSIGNED BIG INT", "INT64":
		return record.Int
	case "REAL", "FLOAT", "DOUBLE", "DOUBLE PRECISION", "FLOAT64":
		return record.Float
	case "TEXT", "VARCHAR", "CHAR", "NVARCHAR", "NCHAR", "CLOB", "CHARACTER", "VARYING CHARACTER", "NATIVE CHARACTER", "STRING", "UUID", "TIME":
		return record.String
	case "NUMERIC", "DECIMAL", declDecimal:
		return record.Decimal
	case "BLOB", "BYTES", "BINARY", "VARBINARY", "JSONB":
		return record.Bytes
	case "BOOLEAN", "BOOL":
		return record.Bool
	case "DATETIME", "TIMESTAMP", "TIMESTAMPTZ":
		return record.Timestamp
	case "DATE":
		return record.Date
	case "JSON", declJSON:
		return record.JSON
	}
	switch {
	case strings.Contains(d, "INT"):
		return record.Int
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return record.String
	case strings.Contains(d, "BLOB"):
		return record.Bytes
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return record.Float
	}
	return record.String
}

// declFromType is the declared type of a column the sink creates for t.
func declFromType(t record.Type) string {
	switch t {
	case record.Int:
		return "INTEGER"
	case record.Float:
		return "REAL"
	case record.Decimal:
		return declDecimal
	case record.Bool:
		return "BOOLEAN"
	case record.Timestamp:
		return "TIMESTAMP"
	case record.Date:
		return "DATE"
	case record.Bytes:
		return "BLOB"
	case record.JSON:
		return declJSON
	case record.String:
		return "TEXT"
	}
	return "" // Any: no declared type, values keep their storage class
}

// sqlValue turns a row value of a field of type t into what the driver
// binds: int64, float64, string, []byte or nil. buf is scratch space for
// formatting, returned for reuse.
func sqlValue(t record.Type, v any, buf []byte) (any, []byte, error) {
	if v == nil {
		return nil, buf, nil
	}
	if t == record.JSON {
		buf = record.AppendJSON(buf[:0], v)
		return string(buf), buf, nil
	}
	switch x := v.(type) {
	case int64, float64, string, []byte:
		return v, buf, nil
	case bool:
		if x {
			return int64(1), buf, nil
		}
		return int64(0), buf, nil
	case record.Dec:
		return x.String(), buf, nil
	case time.Time:
		buf = appendTimestamp(buf[:0], x)
		return string(buf), buf, nil
	case record.LocalDate:
		buf = appendDate(buf[:0], x)
		return string(buf), buf, nil
	case int:
		return int64(x), buf, nil
	case int32:
		return int64(x), buf, nil
	case float32:
		return float64(x), buf, nil
	case json.Number:
		return string(x), buf, nil
	case map[string]any, []any:
		buf = record.AppendJSON(buf[:0], v)
		return string(buf), buf, nil
	}
	return nil, buf, fmt.Errorf("a %T value cannot be stored in SQLite", v)
}

// appendTimestamp appends t in timestampLayout; it is t.AppendFormat
// without the layout interpretation, which is most of a row's cost.
func appendTimestamp(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, timestampLayout)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond(), 9)
	_, off := t.Zone()
	if off == 0 {
		return append(dst, 'Z')
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, sign)
	dst = appendDigits(dst, off/3600, 2)
	dst = append(dst, ':')
	return appendDigits(dst, off%3600/60, 2)
}

// appendDate appends d as YYYY-MM-DD.
func appendDate(dst []byte, d record.LocalDate) []byte {
	year, month, day := d.Time().Date()
	if year < 0 || year > 9999 {
		return append(dst, d.String()...)
	}
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	return appendDigits(dst, day, 2)
}

// appendDigits appends the n last decimal digits of v ≥ 0, zero-padded.
func appendDigits(dst []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, 0)
	}
	for i := len(dst) - 1; i >= len(dst)-n; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// sqliteCode is the primary SQLite result code of err, 0 when err is not a
// SQLite error.
func sqliteCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// isRowError reports whether err is about the row a statement tried to
// store (a constraint, a type mismatch, a value too big) rather than about
// the database.
func isRowError(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
		return true
	}
	return false
}

// classify marks err as transient when another connection held a lock for
// longer than the busy timeout.
func classify(err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return connector.Transient(err)
	case sqlite3.SQLITE_CANTOPEN:
		return connector.Unavailable(err)
	}
	return err
}

// dsn is the modernc.org/sqlite data source name of a database file.
func dsn(path string, readOnly bool, busy time.Duration) string {
	var b strings.Builder
	b.WriteString("file:")
	for i := 0; i < len(path); i++ { // escape what a URI filename would interpret
		switch c := path[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	if readOnly {
		b.WriteString("?mode=ro&")
	} else {
		b.WriteString("?mode=rwc&")
	}
	b.WriteString("_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")")
	if !readOnly {
		b.WriteString("&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	}
	return b.String()
}

// openReadOnly opens an existing database file for reading. A missing file
// is an ErrUnavailable error.
func openReadOnly(ctx context.Context, path string, busy time.Duration) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, connector.Unavailable(fmt.Errorf("sqlite: database %s: %w", path, err))
	}
	db, err := sql.Open("sqlite", dsn(path, true, busy))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	return db, nil
}

// declaredColumns returns the names and declared types of the result
// columns of a SELECT. from is a table name (quoted here) or a query.
func declaredColumns(ctx context.Context, db querier, table, query string) ([]record.Field, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+fromClause(table, query)+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	fields := make([]record.Field, len(cts))
	for i, ct := range cts {
		fields[i] = record.Field{Name: ct.Name(), Type: typeFromDecl(ct.DatabaseTypeName())}
	}
	return fields, rows.Err()
}

// fromClause is the FROM target of a table or a query, aliased s.
func fromClause(table, query string) string {
	if query != "" {
		return "(" + strings.TrimRight(strings.TrimSpace(query), "; \t\n") + ") AS s"
	}
	return quoteIdent(table) + " AS s"
}

// resolveSchema returns the declared schema, or builds one from the
// declared types of the columns of the table or query.
func resolveSchema(ctx context.Context, db querier, declared *record.Schema, table, query string) (*record.Schema, error) {
	if declared != nil {
		return declared, nil
	}
	fields, err := declaredColumns(ctx, db, table, query)
	if err != nil {
		return nil, err
	}
	s, err := record.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("columns: %w (declare a schema, or rename the columns)", err)
	}
	return s, nil
}

// what names the table or the query in messages.
func what(table, query string) string {
	if query != "" {
		return "query"
	}
	return "table " + strconv.Quote(table)
}

// convertRow converts the raw SQLite values in raw (one per schema field)
// into dst. It returns the field and the error of the first value that does
// not convert.
func convertRow(s *record.Schema, raw []any, dst record.Row, loc *time.Location) (string, error) {
	for i, v := range raw {
		f := s.Field(i)
		var c any
		var err error
		if str, ok := v.(string); ok && f.Type == record.JSON {
			c, err = record.ParseText(str, record.JSON, loc) // JSON text, not a JSON string value
		} else {
			c, err = record.Convert(v, f.Type, loc)
		}
		if err != nil {
			var ce *record.ConvError
			if errors.As(err, &ce) {
				ce.Field = f.Name
				return f.Name, ce
			}
			return f.Name, fmt.Errorf("field %q: %w", f.Name, err)
		}
		dst[i] = c
	}
	return "", nil
}
