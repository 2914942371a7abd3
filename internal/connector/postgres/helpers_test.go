package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
)

// The tests run against a real server: BACKBONE_TEST_POSTGRES_DSN, or the
// local one. They skip when it cannot be reached, unless CI=true.
const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func baseDSN() string {
	if d := os.Getenv("BACKBONE_TEST_POSTGRES_DSN"); d != "" {
		return d
	}
	return defaultTestDSN
}

// pg is one test's own schema on the server, dropped at the end.
type pg struct {
	t      testing.TB
	conn   *pgconn.PgConn // the test's own connection, for setup and checks
	schema string
	app    string // application_name of the components' connections
	dsn    string // with that application_name
}

func newPG(t testing.TB) *pg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, baseDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is not reachable and CI=true: %v", err)
		}
		t.Skipf("PostgreSQL is not reachable (%v): skipping; set BACKBONE_TEST_POSTGRES_DSN", err)
	}
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	p := &pg{t: t, conn: c, schema: "bbt_" + suffix, app: "bbt_" + suffix}
	sep := "?"
	if strings.Contains(baseDSN(), "?") {
		sep = "&"
	}
	p.dsn = baseDSN() + sep + "application_name=" + p.app
	p.exec("CREATE SCHEMA " + quoteIdent(p.schema))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec(ctx, c, "DROP SCHEMA "+quoteIdent(p.schema)+" CASCADE") //nolint:errcheck // best effort
		c.Close(ctx)
	})
	return p
}

func (p *pg) exec(sql string) {
	p.t.Helper()
	if err := exec(context.Background(), p.conn, "SET search_path TO "+quoteIdent(p.schema)+"; "+sql); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
}

// rows runs a query in the test's schema and returns its rows as text
// (nil for NULL).
func (p *pg) rows(sql string) [][]any {
	p.t.Helper()
	if err := exec(context.Background(), p.conn, "SET search_path TO "+quoteIdent(p.schema)); err != nil {
		p.t.Fatal(err)
	}
	res, err := query(context.Background(), p.conn, sql)
	if err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
	var out [][]any
	for _, r := range res {
		row := make([]any, len(r))
		for i, v := range r {
			if v != nil {
				row[i] = string(v)
			}
		}
		out = append(out, row)
	}
	return out
}

// one returns the single value of a query.
func (p *pg) one(sql string) any {
	p.t.Helper()
	r := p.rows(sql)
	if len(r) != 1 || len(r[0]) != 1 {
		p.t.Fatalf("%s: %d rows, want one value", sql, len(r))
	}
	return r[0][0]
}

// yaml starts a component's configuration with the DSN and the schema.
func (p *pg) yaml(rest string) string {
	return fmt.Sprintf("dsn: %q\ndb_schema: %s\n%s", p.dsn, p.schema, rest)
}

// backends counts the server connections of the components of this test.
func (p *pg) backends() int {
	p.t.Helper()
	res, err := query(context.Background(), p.conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", p.app)
	if err != nil {
		p.t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(res[0][0]), &n)
	return n
}

// terminate ends the server sessions of this test's components.
func (p *pg) terminate() int {
	p.t.Helper()
	res, err := query(context.Background(), p.conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", p.app)
	if err != nil {
		p.t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(res[0][0]), &n)
	return n
}

// noLeaks checks, when the test ends, that the goroutines and connections
// it started are gone.
func (p *pg) noLeaks() {
	p.t.Helper()
	goroutines := runtime.NumGoroutine()
	conns := openConns.Load()
	p.t.Cleanup(func() {
		// Closing is asynchronous on the server's side: wait for it to be
		// observed, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, c, b := runtime.NumGoroutine(), openConns.Load(), p.backends()
			if g <= goroutines && c == conns && b == 0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				p.t.Errorf("leak: goroutines %d (before %d), connections %d (before %d), server sessions %d\n%s", g, goroutines, c, conns, b, buf)
				return
			}
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// kit builds this package's components from YAML.
var kit = sqlkittest.Kit{Name: "postgres", Register: Register}

// The shared helpers, under the names this package's tests use.
var (
	testEnv      = sqlkittest.Env
	testRegistry = kit.Registry
	params       = sqlkittest.Params
	buildSource  = kit.Source
	buildSink    = kit.Sink
	buildLookup  = kit.Lookup
	openWriter   = sqlkittest.OpenWriter
	write        = sqlkittest.Write
	commit       = sqlkittest.Commit
	readAll      = sqlkittest.ReadAll
	drain        = sqlkittest.Drain
)
