package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/backbone-etl/backbone/internal/connector"
)

// defaultDialTimeout bounds connecting when the DSN sets no timeout.
const defaultDialTimeout = 10 * time.Second

// sessionSQLMode is added to the server's sql_mode on every connection:
// a value too long, out of range or invalid is an error, never a silent
// truncation, in transactional and non-transactional tables alike.
const sessionSQLMode = "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO"

// server is a parsed DSN: the driver configuration with Backbone's forced
// settings, and a description without the password for messages.
type server struct {
	cfg    *gomysql.Config
	where  string // user@host:port/db, never the password
	secret string // the password, stripped from error texts
}

// parseDSN accepts the driver's form (user:pass@tcp(host:port)/db?opts) and
// a URL (mysql://user:pass@host:port/db?opts, also mariadb://). It forces
// parseTime=true, loc=UTC, interpolateParams=false, multiStatements=false,
// the session time_zone '+00:00' and a strict sql_mode. Its errors never
// contain the password.
func parseDSN(dsn string) (*server, error) {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return nil, errors.New("dsn is empty")
	}
	var cfg *gomysql.Config
	var err error
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && isScheme(scheme) {
		switch strings.ToLower(scheme) {
		case "mysql", "mariadb":
			cfg, err = configFromURL(dsn)
		default:
			return nil, fmt.Errorf("dsn scheme %q: want mysql:// or mariadb://, or the driver's form user:password@tcp(host:port)/database", scheme)
		}
	} else {
		cfg, err = gomysql.ParseDSN(dsn)
		if err != nil {
			// The driver's message may quote any part of the dsn: it is
			// shown only when the dsn has no password to leak.
			detail := ""
			if dsnPassword(dsn) == "" {
				detail = ": " + err.Error()
			}
			err = fmt.Errorf("dsn %s is not a valid MySQL DSN (want user:password@tcp(host:port)/database?options or mysql://user:password@host:port/database?options)%s",
				maskDSN(dsn), detail)
		}
	}
	if err != nil {
		return nil, err
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	cfg.AllowAllFiles = false
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	for k := range cfg.Params {
		switch strings.ToLower(k) {
		case "time_zone", "sql_mode":
			delete(cfg.Params, k)
		}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "CONCAT_WS(',', NULLIF(@@GLOBAL.sql_mode, ''), '" + sessionSQLMode + "')"
	cfg.Logger = nopLogger{}
	s := &server{cfg: cfg, secret: cfg.Passwd}
	user := cfg.User
	if user == "" {
		user = "(no user)"
	}
	s.where = user + "@" + cfg.Addr + "/" + cfg.DBName
	if cfg.Net != "tcp" {
		s.where = user + "@" + cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
	}
	return s, nil
}

// configFromURL translates mysql://user:pass@host:port/db?opts.
func configFromURL(dsn string) (*gomysql.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn %s is not a valid URL (escape special characters of the password with %%XX)", maskURL(dsn))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("dsn %s names no host", maskURL(dsn))
	}
	base := gomysql.NewConfig()
	base.Net = "tcp"
	base.Addr = u.Host
	if u.Port() == "" {
		base.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	base.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(base.DBName, "/") {
		return nil, fmt.Errorf("dsn %s: the database is not a name (escape special characters of the password with %%XX)", maskURL(dsn))
	}
	if u.User != nil {
		base.User = u.User.Username()
		base.Passwd, _ = u.User.Password()
	}
	if u.RawQuery != "" {
		// Options alone first: their errors hold no credentials.
		if _, err := gomysql.ParseDSN("/?" + u.RawQuery); err != nil {
			return nil, fmt.Errorf("dsn %s: %s", maskURL(dsn), stripSecret(err.Error(), base.Passwd))
		}
	}
	s := base.FormatDSN()
	if u.RawQuery != "" {
		if strings.Contains(s, "?") {
			s += "&" + u.RawQuery
		} else {
			s += "?" + u.RawQuery
		}
	}
	cfg, err := gomysql.ParseDSN(s)
	if err != nil {
		return nil, fmt.Errorf("dsn %s: the user, password, host or database cannot be expressed for the driver", maskURL(dsn))
	}
	return cfg, nil
}

// maskURL renders a dsn URL for a message without its password, options
// or fragment. It works on the text, so that a password the URL parser
// would misread (an unescaped / or @ in it) is masked too: everything
// between the first ':' and the last '@' of the authority goes.
func maskURL(dsn string) string {
	scheme, rest, _ := strings.Cut(dsn, "://")
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, hasPass := strings.Cut(rest[:at], ":")
		if hasPass {
			user += ":xxxxx"
		}
		rest = user + rest[at:]
	}
	return scheme + "://" + rest
}

// dsnPassword finds the password of a driver-form DSN that did not parse,
// so that it can be stripped from the parser's message.
func dsnPassword(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	if _, pass, ok := strings.Cut(dsn[:at], ":"); ok {
		return pass
	}
	return ""
}

// isScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// maskDSN renders a driver-form DSN for a message with its password
// replaced.
func maskDSN(dsn string) string {
	if p := dsnPassword(dsn); p != "" {
		return strings.Replace(dsn, ":"+p+"@", ":xxxxx@", 1)
	}
	return dsn
}

// stripSecret removes secret from text.
func stripSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "xxxxx")
}

// redactedError keeps an error's chain (errors.Is/As) and strips the
// password from its text.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string { return stripSecret(e.err.Error(), e.secret) }
func (e *redactedError) Unwrap() error { return e.err }

// redact wraps err so that its text never shows the server's password.
func (s *server) redact(err error) error {
	if err == nil || s.secret == "" {
		return err
	}
	return &redactedError{err: err, secret: s.secret}
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// open returns a pool for the server. It does no I/O.
func (s *server) open(maxOpen int) (*sql.DB, error) {
	c, err := gomysql.NewConnector(s.cfg)
	if err != nil {
		return nil, s.redact(err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// connect opens a pool and checks that the server answers. An unreachable
// server is connector.ErrUnavailable.
func (s *server) connect(ctx context.Context, maxOpen int) (*sql.DB, error) {
	db, err := s.open(maxOpen)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, s.unavailable(ctx, err)
	}
	return db, nil
}

// unavailable wraps an error of connecting: ErrUnavailable when the server
// cannot be reached, refuses the user or lacks the database.
func (s *server) unavailable(ctx context.Context, err error) error {
	err = s.redact(err)
	if ctx.Err() != nil {
		return fmt.Errorf("connect to %s: %w", s.where, ctx.Err())
	}
	if isConnError(err) || isUnavailableCode(serverCode(err)) {
		return connector.Unavailable(fmt.Errorf("connect to %s: %w", s.where, err))
	}
	return fmt.Errorf("connect to %s: %w", s.where, err)
}

// MySQL and MariaDB error numbers the connector tells apart.
const (
	erConCount            = 1040 // too many connections
	erDBAccessDenied      = 1044
	erAccessDenied        = 1045
	erBadDB               = 1049
	erServerShutdown      = 1053
	erTooManyUserConns    = 1203
	erLockWaitTimeout     = 1205
	erLockDeadlock        = 1213
	erQueryInterrupted    = 1317
	erNewAbortingConn     = 1184
	erAbortingConn        = 1152
	erOptionPreventsStmt  = 1290 // --read-only during a failover
	erReadOnlyMode        = 1836
	erConnectionKilled    = 1927 // MariaDB
	erNetPacketTooLarge   = 1153
	erNoSuchTable         = 1146
	erCheckViolatedMySQL  = 3819
	erConstraintFailed    = 4025 // MariaDB CHECK
	erDupEntry            = 1062
	erBadNull             = 1048
	erDataTooLong         = 1406
	erWarnDataOutOfRange  = 1264
	erTruncatedWrongValue = 1292
	erTruncatedFieldValue = 1366
	erWarnDataTruncated   = 1265
	erNoReferencedRow     = 1216
	erRowIsReferenced     = 1217
	erRowIsReferenced2    = 1451
	erNoReferencedRow2    = 1452
	erNoDefaultForField   = 1364
	erWrongValueForType   = 1411
	erIllegalValueForType = 1367
	erDataOutOfRange      = 1690
	erSignalException     = 1644
	erInvalidCharString   = 1300
	erWarnNullToNotNull   = 1263
	erWrongValue          = 1525
	erDupUnique           = 1169
	erDupUnknownInIndex   = 1859
	erForeignDupKey       = 1557
	erInvalidJSONText     = 3140 // MySQL
	erCantCreateGeometry  = 1416
)

// serverCode is the server's error number of err, 0 when err is not a
// server error.
func serverCode(err error) uint16 {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// isRowError reports whether err is the server refusing a row for its own
// sake: a constraint, a value too long, out of range or invalid. It is
// decided by the server's error number only, so that an outage never
// passes for a bad row.
func isRowError(err error) bool {
	switch serverCode(err) {
	case erDupEntry, erBadNull, erDataTooLong, erWarnDataOutOfRange, erTruncatedWrongValue,
		erTruncatedFieldValue, erWarnDataTruncated, erNoReferencedRow, erRowIsReferenced,
		erRowIsReferenced2, erNoReferencedRow2, erNoDefaultForField, erWrongValueForType,
		erIllegalValueForType, erDataOutOfRange, erSignalException, erInvalidCharString,
		erWarnNullToNotNull, erWrongValue, erDupUnique, erDupUnknownInIndex, erForeignDupKey,
		erCheckViolatedMySQL, erConstraintFailed, erInvalidJSONText, erCantCreateGeometry:
		return true
	}
	return false
}

func isUnavailableCode(code uint16) bool {
	switch code {
	case erConCount, erTooManyUserConns, erServerShutdown, erAccessDenied, erDBAccessDenied, erBadDB:
		return true
	}
	return false
}

// isTransientCode reports server errors after which a retry may succeed.
func isTransientCode(code uint16) bool {
	switch code {
	case erConCount, erTooManyUserConns, erServerShutdown, erLockWaitTimeout, erLockDeadlock,
		erQueryInterrupted, erNewAbortingConn, erAbortingConn, erOptionPreventsStmt,
		erReadOnlyMode, erConnectionKilled:
		return true
	}
	return false
}

// isConnError reports an error of the connection itself: refused, reset,
// closed by the server, timed out.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, gomysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// isTransient reports whether a retry may succeed after err.
func isTransient(err error) bool {
	return isConnError(err) || isTransientCode(serverCode(err))
}

// classify marks err as transient when a retry may succeed. A cancelled
// context is never transient.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		if !errors.Is(err, ctx.Err()) {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	if isTransient(err) {
		return connector.Transient(err)
	}
	return err
}

// quoteIdent quotes an identifier with backticks.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// quoteIdents quotes names and joins them with ", ", each prefixed.
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
