package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/record"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name  string
		dsn   string
		user  string
		pass  string
		addr  string
		db    string
		where string
		param string // a parameter the dsn sets, kept
	}{
		{"driver form", "root:@tcp(127.0.0.1:3306)/test", "root", "", "127.0.0.1:3306", "test", "root@127.0.0.1:3306/test", ""},
		{"driver form with options", "u:p@ss/w:rd@tcp(db.local:3307)/shop?charset=utf8mb4&readTimeout=5s&foo=bar", "u", "p@ss/w:rd", "db.local:3307", "shop", "u@db.local:3307/shop", "foo"},
		{"url", "mysql://u:p%40ss@127.0.0.1:3310/shop?foo=bar", "u", "p@ss", "127.0.0.1:3310", "shop", "u@127.0.0.1:3310/shop", "foo"},
		{"url without port or password", "mariadb://reader@localhost/db", "reader", "", "localhost:3306", "db", "reader@localhost:3306/db", ""},
		{"forced settings override the dsn", "mysql://u@h/db?parseTime=false&loc=Local&interpolateParams=true&multiStatements=true&time_zone=%27SYSTEM%27", "u", "", "h:3306", "db", "u@h:3306/db", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseDSN(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			c := s.cfg
			got := []any{c.User, c.Passwd, c.Addr, c.DBName, s.where}
			if diff := cmp.Diff([]any{tc.user, tc.pass, tc.addr, tc.db, tc.where}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !c.ParseTime || c.Loc != time.UTC || c.InterpolateParams || c.MultiStatements || c.AllowAllFiles {
				t.Errorf("forced settings not applied: %+v", c)
			}
			if c.Params["time_zone"] != "'+00:00'" || !strings.Contains(c.Params["sql_mode"], "STRICT_ALL_TABLES") {
				t.Errorf("session settings: %v", c.Params)
			}
			if tc.param != "" && c.Params[tc.param] == "" {
				t.Errorf("parameter %s dropped: %v", tc.param, c.Params)
			}
			if c.Timeout == 0 {
				t.Error("no dial timeout")
			}
		})
	}
}

func TestParseDSNErrorsHideThePassword(t *testing.T) {
	tests := []string{
		"root:Sup3rS3cret@tcp(127.0.0.1:3306",
		"root:Sup3rS3cret@tcp(127.0.0.1:3306)/db?readTimeout=never",
		"mysql://root:Sup3rS3cret@127.0.0.1:3306/db?readTimeout=never",
		"postgres://root:Sup3rS3cret@127.0.0.1/db",
		"mysql://root:Sup3rS3cret@/db",
	}
	for _, dsn := range tests {
		t.Run(dsn, func(t *testing.T) {
			_, err := parseDSN(dsn)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "Sup3rS3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestRedactedErrorKeepsTheChain(t *testing.T) {
	s := &server{secret: "hunter2"}
	base := errors.New("dial tcp: password hunter2 refused")
	err := s.redact(base)
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, base) {
		t.Errorf("redact: %q, Is=%v", err, errors.Is(err, base))
	}
}

// The settings reach the server: strict sql_mode and UTC on every session.
func TestSessionSettings(t *testing.T) {
	db := newTestDB(t)
	s, err := parseDSN(db.dsn)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := s.connect(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var mode, zone string
	if err := pool.QueryRow("SELECT @@SESSION.sql_mode, @@SESSION.time_zone").Scan(&mode, &zone); err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Split(sessionSQLMode, ",") {
		if !strings.Contains(","+mode+",", ","+m+",") {
			t.Errorf("sql_mode %q lacks %s", mode, m)
		}
	}
	if zone != "+00:00" {
		t.Errorf("time_zone %q", zone)
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"root:@tcp(127.0.0.1:3306)/test", "mysql://u:p@h:1/db?x=y", "mariadb://u@h/db", "u:p@unix(/tmp/s)/db",
		"mysql://u:p@[::1]:3306/db", "u:p@tcp(h)/db?timeout=1s&tls=skip-verify", "://", "mysql://%zz@h/db",
	} {
		f.Add(s, "S3cretPW")
	}
	f.Fuzz(func(t *testing.T, dsn, pw string) {
		if len(pw) < 4 || strings.ContainsAny(pw, "@:/?()%&=[]") {
			return
		}
		orig := dsn
		dsn = strings.Replace(orig, ":p@", ":"+pw+"@", 1)
		s, err := parseDSN(dsn)
		if err != nil {
			// (When the password's text appears elsewhere in the dsn too,
			// a user or a host, it may rightly show; and the message's own
			// words with the dsn's may happen to spell it: the password
			// shows when the error holds its text more often than the
			// error of the same dsn with another password of its kind.)
			if strings.Contains(dsn, ":"+pw+"@") && strings.Count(dsn, pw) == 1 && strings.Contains(err.Error(), pw) {
				other := otherPassword(pw)
				_, err2 := parseDSN(strings.Replace(orig, ":p@", ":"+other+"@", 1))
				if other == pw || err2 == nil || strings.Count(err.Error(), pw) > strings.Count(err2.Error(), pw) {
					t.Errorf("error %q shows the password", err)
				}
			}
			return
		}
		if !s.cfg.ParseTime || s.cfg.InterpolateParams || s.cfg.MultiStatements {
			t.Errorf("forced settings not applied to %q", dsn)
		}
		// The description is built from the user, the address and the
		// database only: the password has no way in.
		user := s.cfg.User
		if user == "" {
			user = "(no user)"
		}
		want := user + "@" + s.cfg.Addr + "/" + s.cfg.DBName
		if s.cfg.Net != "tcp" {
			want = user + "@" + s.cfg.Net + "(" + s.cfg.Addr + ")/" + s.cfg.DBName
		}
		if s.where != want {
			t.Errorf("description %q, want %q", s.where, want)
		}
	})
}

func FuzzDecodePosition(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"run":"r","schema":[{"n":"id","t":"int"}],"cols":["ts","id"],"vals":[{"t":"2024-03-01T10:00:00.123456Z"},{"i":42}]}`,
		`{"v":1,"offset":12}`, `{"v":1,"cols":["d"],"vals":[{"d":"1.5"},{"u":"18446744073709551615"},{"f":"1e308"},{"b":"AAE="},{"x":"/w=="},{}]}`,
		`{"v":2}`, `garbage`, `{"v":1,"schema":[{"n":"a","t":"nope"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePos(record.Position(b))
		if err != nil || p == nil {
			return
		}
		for _, v := range p.Vals {
			v.value() //nolint:errcheck // must not panic
		}
		p.fields() //nolint:errcheck // must not panic
		r := &reader{order: []column{{name: "a", kind: kDateTime}}}
		r.restore(p, 0) //nolint:errcheck // must not panic
	})
}

// otherPassword is pw with each digit and letter shifted by one (9 → 0,
// z → a), the rest kept: a password a parser takes as it takes pw.
func otherPassword(pw string) string {
	b := []byte(pw)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
			b[i] = c + 1
		case c == '9':
			b[i] = '0'
		case c == 'z':
			b[i] = 'a'
		case c == 'Z':
			b[i] = 'A'
		}
	}
	return string(b)
}
