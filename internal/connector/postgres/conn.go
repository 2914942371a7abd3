package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector"
)

// defaultDBSchema is the database schema of tables named without one.
const defaultDBSchema = "public"

// defaultConnectTimeout bounds a connection attempt when the DSN sets none.
const defaultConnectTimeout = 10 * time.Second

// openConns counts the connections this package holds open, for tests that
// check nothing leaks.
var openConns atomic.Int64

// server is a parsed DSN: how to connect, how to name the server in
// messages, and the password to keep out of them.
type server struct {
	cfg      *pgconn.Config
	where    string // "postgres 127.0.0.1:5432/test", never the password
	password string
}

// parseDSN parses a connection string (URL or key=value). The error never
// contains the password.
func parseDSN(dsn string) (*server, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("dsn is empty")
	}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New(redactDSN(dsn, err.Error()))
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "backbone"
	}
	// Text that the server renders for us (positions, columns read as
	// text) must not depend on the role's settings.
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["datestyle"] = "ISO, YMD"
	cfg.RuntimeParams["intervalstyle"] = "iso_8601"
	cfg.RuntimeParams["extra_float_digits"] = "1"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	} else {
		host = net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
	}
	return &server{cfg: cfg, where: "postgres " + host + "/" + cfg.Database, password: cfg.Password}, nil
}

// searchPath makes schema the search path of the connections, unless the
// DSN sets one.
func (s *server) searchPath(schema string) {
	for k := range s.cfg.RuntimeParams {
		if strings.EqualFold(k, "search_path") {
			return
		}
	}
	s.cfg.RuntimeParams["search_path"] = quoteIdent(schema)
}

// redactDSN removes the password of dsn from msg.
func redactDSN(dsn, msg string) string {
	pw := ""
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				pw = rest[c+1 : at]
			}
		}
	} else if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		pw = strings.Trim(m[1], "'")
	}
	if len(pw) >= 3 {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// connect opens a connection. A server that cannot be reached is
// connector.ErrUnavailable; so is a refused login, which no retry fixes
// without an operator.
func (s *server) connect(ctx context.Context) (*pgconn.PgConn, error) {
	c, err := pgconn.ConnectConfig(ctx, s.cfg.Copy())
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w", s.where, ctx.Err())
		}
		return nil, connector.Unavailable(s.redact(fmt.Errorf("connect to %s: %w", s.where, err)))
	}
	openConns.Add(1)
	return c, nil
}

// closeConn closes c, waiting at most a second for the server to hear it.
func closeConn(c *pgconn.PgConn) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx) //nolint:errcheck // the connection is gone either way
	<-c.CleanupDone()
	openConns.Add(-1)
}

// redact returns err with the password removed from its text.
func (s *server) redact(err error) error {
	if err == nil || s == nil || len(s.password) < 3 || !strings.Contains(err.Error(), s.password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), s.password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Ping connects to the server named by dsn and checks that it answers.
// Its error never contains the password; an unreachable server is
// connector.ErrUnavailable.
func Ping(ctx context.Context, dsn string) error {
	s, err := parseDSN(dsn)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	c, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer closeConn(c)
	if err := c.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", classify(s.redact(fmt.Errorf("ping %s: %w", s.where, err)), c))
	}
	return nil
}

// sqlState is the SQLSTATE of a server error, "" for other errors.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connLost reports whether err means the connection is gone: the network
// failed, the server shut down or ended the session. Whatever the
// connection had staged is lost with it.
func connLost(err error, c *pgconn.PgConn) bool {
	if err == nil {
		return false
	}
	if c != nil && c.IsClosed() {
		return true
	}
	code := sqlState(err)
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // admin/crash shutdown, cannot connect now
		code == "53300": // too many connections
		return true
	case code != "":
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || pgconn.SafeToRetry(err)
}

// transient reports whether a retry of what failed may succeed: the
// connection was lost, or the server gave up on the transaction for
// reasons of its own (deadlock, serialization, resources).
func transient(err error, c *pgconn.PgConn) bool {
	if connLost(err, c) {
		return true
	}
	switch code := sqlState(err); {
	case code == "40001", code == "40P01", // serialization failure, deadlock
		code == "55P03",               // lock not available
		strings.HasPrefix(code, "53"): // insufficient resources
		return true
	}
	return false
}

// classify marks err transient when a retry may succeed.
func classify(err error, c *pgconn.PgConn) error {
	if err == nil || errors.Is(err, connector.ErrTransient) || errors.Is(err, connector.ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if transient(err, c) {
		return connector.Transient(err)
	}
	return err
}

// rowError reports whether err is about the values of the rows a statement
// stored (a constraint, a value too long, an invalid value) rather than
// about the statement, the table or the connection.
func rowError(err error) bool {
	code := sqlState(err)
	switch {
	case code == "":
		return false
	case strings.HasPrefix(code, "22"), // data exception
		strings.HasPrefix(code, "23"), // integrity constraint violation
		code == "54000",               // program limit exceeded: an index row too big
		code == "P0001",               // raise_exception in a trigger
		code == "21000":               // cardinality violation
		return true
	}
	return false
}

var copyLine = regexp.MustCompile(`COPY [^\n]*?, line (\d+)(?:, column ([^:\n]+))?`)

// copyErrorPlace returns the line (1-based, within the COPY data) and the
// column a COPY error names, when it names them.
func copyErrorPlace(err error) (line int, column string) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return 0, ""
	}
	m := copyLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return 0, ""
	}
	n, _ := strconv.Atoi(m[1])
	return n, strings.TrimSpace(m[2])
}

// serverMessage renders a server error as people read it: the message, the
// detail and the column.
func serverMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(pe.Message)
	if pe.Detail != "" {
		b.WriteString(": ")
		b.WriteString(pe.Detail)
	}
	col := pe.ColumnName
	if col == "" {
		_, col = copyErrorPlace(err)
	}
	if col != "" {
		b.WriteString(" (column ")
		b.WriteString(strconv.Quote(col))
		b.WriteString(")")
	}
	b.WriteString(" (SQLSTATE ")
	b.WriteString(pe.Code)
	b.WriteString(")")
	return b.String()
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteIdents quotes names and joins them with ", ", each after prefix.
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

// quoteLiteral quotes a string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// qualified is the quoted schema-qualified name of a table.
func qualified(schema, table string) string {
	return quoteIdent(schema) + "." + quoteIdent(table)
}

// query runs sql with text parameters (nil is NULL) and returns every row
// as text (nil for NULL).
func query(ctx context.Context, c *pgconn.PgConn, sql string, args ...any) ([][][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
		case string:
			params[i] = []byte(v)
		case []byte:
			params[i] = v
		case int:
			params[i] = strconv.AppendInt(nil, int64(v), 10)
		case int64:
			params[i] = strconv.AppendInt(nil, v, 10)
		case uint32:
			params[i] = strconv.AppendUint(nil, uint64(v), 10)
		case bool:
			params[i] = []byte(strconv.FormatBool(v))
		default:
			return nil, fmt.Errorf("query parameter %d is a %T", i+1, a)
		}
	}
	res := c.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	return res.Rows, res.Err
}

// exec runs statements with the simple protocol (several may be separated
// by semicolons).
func exec(ctx context.Context, c *pgconn.PgConn, sql string) error {
	_, err := c.Exec(ctx, sql).ReadAll()
	return err
}

// text returns a text column value ("" for NULL).
func text(v []byte) string { return string(v) }
