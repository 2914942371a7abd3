package pgstate

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// mask replaces a password wherever this package shows a DSN or an error.
const mask = "xxxxx"

// maxIdent is the longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
const maxIdent = 63

// dsnInfo is a DSN taken apart by parseDSN.
type dsnInfo struct {
	conn    string   // what pgx connects with: the DSN without the schema parameter
	schema  string   // the schema parameter; "" for the connection's current schema
	display string   // the DSN with every password masked, for messages
	secrets []string // the passwords found in the DSN, to scrub from errors
}

// kvPassword finds password and sslpassword values in a keyword/value DSN
// ("host=db password='s e c' user=x").
var kvPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// parseDSN separates Backbone's schema parameter from a PostgreSQL DSN and
// computes the masked form shown in messages. Only the URL form
// (postgres://…) takes a schema parameter; a keyword/value DSN is passed to
// pgx unchanged. Errors never contain a password.
func parseDSN(dsn string) (dsnInfo, error) {
	if dsn == "" {
		return dsnInfo{}, errors.New("state store: empty PostgreSQL DSN")
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		info := dsnInfo{conn: dsn}
		info.display = kvPassword.ReplaceAllString(dsn, "${1}"+mask)
		for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
			v := m[2]
			if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
				v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v[1 : len(v)-1])
			}
			info.secrets = append(info.secrets, v)
		}
		return info, nil
	}

	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error quotes the whole DSN: never show it.
		return dsnInfo{}, errors.New("state store: the PostgreSQL DSN is not a valid URL")
	}
	var info dsnInfo
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			info.secrets = append(info.secrets, pw)
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return dsnInfo{}, fmt.Errorf("state store %s: the DSN's query is not valid", redactURL(u, nil))
	}
	for _, k := range []string{"password", "sslpassword"} {
		info.secrets = append(info.secrets, q[k]...)
	}
	info.display = redactURL(u, q)
	switch vs := q["schema"]; {
	case len(vs) > 1:
		return dsnInfo{}, fmt.Errorf("state store %s: the schema parameter is given %d times", info.display, len(vs))
	case len(vs) == 1:
		if err := checkIdent(vs[0]); err != nil {
			return dsnInfo{}, fmt.Errorf("state store %s: schema: %w", info.display, err)
		}
		info.schema = vs[0]
		q.Del("schema")
	}
	c := *u
	c.RawQuery = q.Encode()
	info.conn = c.String()
	return info, nil
}

// redactURL is u with the password of its user and of its query masked.
// q is u's parsed query, or nil when it could not be parsed (then the query
// is left out).
func redactURL(u *url.URL, q url.Values) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), mask)
		}
	}
	c.RawQuery = ""
	if q != nil {
		m := url.Values{}
		for k, vs := range q {
			for _, v := range vs {
				if k == "password" || k == "sslpassword" {
					v = mask
				}
				m.Add(k, v)
			}
		}
		c.RawQuery = m.Encode()
	}
	return c.String()
}

// checkIdent refuses a schema name PostgreSQL would truncate or cannot hold.
func checkIdent(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > maxIdent:
		return fmt.Errorf("%q is longer than %d bytes", s, maxIdent)
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%q is not valid UTF-8 text", s)
	}
	return nil
}

// quoteIdent quotes s as an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// scrubbed is an error whose message had passwords masked. It unwraps to
// the original error, so errors.Is and errors.As still see through it.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub masks every one of secrets, in plain and in URL-escaped form, in
// err's message. err is returned as is when its message holds none.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), url.UserPassword("", sec).String()[1:]} {
			if form != "" && strings.Contains(msg, form) {
				msg = strings.ReplaceAll(msg, form, mask)
				changed = true
			}
		}
	}
	if !changed {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}
