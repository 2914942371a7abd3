package mysql

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

// kit builds this package's components from YAML.
var kit = sqlkittest.Kit{Name: "mysql", Register: Register}

// The tests run against the MariaDB server of the machine. Each test works
// in its own database, dropped at its end. Without a server they skip,
// unless CI=true, where they fail.
const serverAddr = "127.0.0.1:3306"

// testDB is a test's own database on the server.
type testDB struct {
	name  string
	dsn   string  // root@tcp(127.0.0.1:3306)/name for the components
	admin *sql.DB // one connection to name, for the test's own statements
	t     testing.TB
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	root, err := sql.Open("mysql", "root@tcp("+serverAddr+")/?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Ping(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MariaDB at %s is not reachable (CI=true): %v", serverAddr, err)
		}
		t.Skipf("MariaDB at %s is not reachable, skipping: %v", serverAddr, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "bbtest_" + hex.EncodeToString(b[:])
	if _, err := root.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", "root@tcp("+serverAddr+")/"+name+"?time_zone=%27%2B00%3A00%27")
	if err != nil {
		t.Fatal(err)
	}
	admin.SetMaxOpenConns(1)
	db := &testDB{name: name, dsn: "root@tcp(" + serverAddr + ")/" + name, admin: admin, t: t}
	t.Cleanup(func() {
		admin.Close()
		root, err := sql.Open("mysql", "root@tcp("+serverAddr+")/")
		if err != nil {
			return
		}
		defer root.Close()
		if _, err := root.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return db
}

func (d *testDB) exec(q string, args ...any) {
	d.t.Helper()
	if _, err := d.admin.Exec(q, args...); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
}

// rows returns the rows of a query as text (NULL as nil), as the server
// renders them.
func (d *testDB) rows(q string, args ...any) [][]any {
	d.t.Helper()
	rows, err := d.admin.Query(q, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			d.t.Fatal(err)
		}
		row := make([]any, len(cols))
		for i, v := range vals {
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// count returns the single integer of a query.
func (d *testDB) count(q string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.admin.QueryRow(q, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// conns lists the ids of the connections to the test's database other
// than the test's own.
func (d *testDB) conns() []int64 {
	d.t.Helper()
	rows, err := d.admin.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() ORDER BY ID", d.name)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			d.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// yaml prefixes a component's configuration with the test's dsn.
func (d *testDB) yaml(rest string) string {
	return "dsn: '" + d.dsn + "'\n" + rest
}

// eventually waits, up to a deadline, for cond to hold: for effects the
// server or the runtime applies asynchronously (a closed connection
// leaving the process list, a goroutine returning).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
}

// proxy forwards TCP connections to the server; stop simulates an outage
// (open connections reset, new ones refused) and start ends it.
type proxy struct {
	t      testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src) //nolint:errcheck // ends when either side closes
	dst.Close()
	src.Close()
}

// stop closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// start listens again on the same address.
func (p *proxy) start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy restart on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// dsn is a dsn for database db through the proxy.
func (p *proxy) dsn(db string) string { return "root@tcp(" + p.addr + ")/" + db }

func fmtRows(rows []record.Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintln(&b, r...)
	}
	return b.String()
}
