package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The restart tests stop a database server in the middle of a run. Every
// other test of the machine shares those servers, so they run alone: in
// their own step of .ci/run, with BACKBONE_RESTART_TESTS=1.
func restartTestsOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("BACKBONE_RESTART_TESTS") != "1" {
		t.Skip("restarts a database server that other tests share: runs alone, with BACKBONE_RESTART_TESTS=1 (its own step of .ci/run)")
	}
}

// dbServer is a database server of this machine that a test may restart.
type dbServer struct {
	name        string
	driver, dsn string
	port        int
	// crash stops the server abruptly and starts it again.
	crash func(t *testing.T)
	// start starts the server when it is down (as .ci/run does).
	start []string
}

func postgresServer(t *testing.T) dbServer {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Skipf("no PostgreSQL cluster in /etc/postgresql (%v): cannot restart it", err)
	}
	v := versions[0].Name()
	return dbServer{
		name: "PostgreSQL", driver: "pgx", dsn: pgDSN, port: 5432,
		crash: func(t *testing.T) {
			t.Helper()
			out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "restart", "-m", "immediate").CombinedOutput()
			if err != nil {
				t.Fatalf("pg_ctlcluster %s main restart -m immediate: %v\n%s", v, err, out)
			}
		},
		start: []string{"pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "start"},
	}
}

func mariadbServer(t *testing.T) dbServer {
	t.Helper()
	s := dbServer{name: "MariaDB", driver: "mysql", dsn: mysqlDSN, port: 3306,
		start: []string{"start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"}}
	s.crash = func(t *testing.T) {
		t.Helper()
		db := reachable(t, "mysql", mysqlDSN, "MariaDB at 127.0.0.1:3306")
		var pidFile string
		if err := db.QueryRow("SELECT @@pid_file").Scan(&pidFile); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatalf("MariaDB's pid file: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("MariaDB's pid file %s: %q", pidFile, raw)
		}
		// A crash of the server process: no shutdown, InnoDB recovers at
		// the next start.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d (mariadbd): %v", pid, err)
		}
		deadline := time.Now().Add(time.Minute)
		for alive(pid) || portOpen(s.port) {
			if time.Now().After(deadline) {
				t.Fatalf("mariadbd %d still runs a minute after kill -9", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.startAndWait(t)
	}
	return s
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startAndWait starts the server when its port is closed and waits until it
// answers queries.
func (s dbServer) startAndWait(t *testing.T) {
	t.Helper()
	if !portOpen(s.port) {
		if out, err := exec.Command(s.start[0], s.start[1:]...).CombinedOutput(); err != nil {
			t.Errorf("starting %s: %v\n%s", s.name, err, out)
		}
	}
	if err := s.waitUp(2 * time.Minute); err != nil {
		t.Fatalf("%s did not come back: %v", s.name, err)
	}
}

// waitUp waits until the server answers a query.
func (s dbServer) waitUp(limit time.Duration) error {
	db, err := sql.Open(s.driver, s.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var one int
		err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keepUp makes sure the server runs again when the test ends, whatever
// happened to it.
func (s dbServer) keepUp(t *testing.T) {
	t.Cleanup(func() {
		if !portOpen(s.port) {
			t.Logf("%s is down after the test: starting it", s.name)
			if out, err := exec.Command(s.start[0], s.start[1:]...).CombinedOutput(); err != nil {
				t.Errorf("starting %s: %v\n%s", s.name, err, out)
			}
		}
		if err := s.waitUp(2 * time.Minute); err != nil {
			t.Errorf("%s is not up after the test: %v", s.name, err)
		}
	})
}

// runThroughRestart starts `backbone run` in dir, waits until loaded(),
// which polls the target, reports progress, restarts srv abruptly, and
// waits for the run's end. It fails the test unless the run met the outage
// (it logged a retry) and succeeded.
func runThroughRestart(t *testing.T, dir string, srv dbServer, loaded func() bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "-q", "pipeline.yaml")
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !loaded() {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before %s was restarted: nothing was tested\n%s", err, srv.name, out.String())
		case <-tick.C:
		}
	}
	start := time.Now()
	srv.crash(t)
	t.Logf("%s restarted in %s", srv.name, time.Since(start).Round(time.Millisecond))
	if err := <-exited; err != nil {
		t.Fatalf("the run did not survive the restart of %s: %v\n%s", srv.name, err, out.String())
	}
	var retries []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "retrying after a transient error") {
			retries = append(retries, l)
		}
	}
	if len(retries) == 0 {
		t.Fatalf("the run never met the outage of %s (it logged no retry): nothing was tested\n%s", srv.name, out.String())
	}
	t.Logf("the run retried %d time(s):\n%s", len(retries), strings.Join(retries, "\n"))
	return out.String()
}

// liveRows counts a table's rows while a run writes it; 0 when it does not
// exist yet or the server is away.
func liveRows(db *sql.DB, table string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0
	}
	return n
}

// restartPipeline loads orders CSV files into a sink in mode append, where
// a row loaded twice would show.
func restartPipeline(data, sink string) string {
	return fmt.Sprintf(`name: restart
source:
  type: csv
  path: %s/orders-*.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
steps:
  - map: {total: qty * unit_price}
  - validate:
      - {check: "qty > 0", message: "qty must be positive"}
settings: {batch_rows: 2000}
`, data) + sink
}

// csvExpected loads the orders CSV files of data into a PostgreSQL table by
// COPY, outside Backbone, and returns the canonical digest of what a
// pipeline that maps total and validates qty > 0 must load; where, when not
// empty, leaves out more rows.
func csvExpected(t *testing.T, db *sql.DB, data, where string) tableDigest {
	t.Helper()
	schema := pgSchema(t, db, "bb_expect")
	pgExec(t, db, `CREATE TABLE `+schema+`.orders (order_id bigint, customer_id bigint, qty bigint, unit_price numeric,
		currency text, status text, ordered_at timestamptz)`)
	files, err := filepath.Glob(filepath.Join(data, "orders-*.csv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no orders files in %s (%v)", data, err)
	}
	runTool(t, append([]string{"copyin", pgDSN, schema + ".orders"}, files...)...)
	if where != "" {
		where = " AND " + where
	}
	return sqlDigest(t, "pgx", pgDSN, "SELECT "+csvColumns+", qty * unit_price AS total FROM "+schema+".orders WHERE qty > 0"+where+" ORDER BY order_id")
}

// csvColumns are the columns of orders CSV files.
const csvColumns = "order_id, customer_id, qty, unit_price, currency, status, ordered_at"

// TestRestartSinkDatabase restarts PostgreSQL (pg_ctlcluster restart -m
// immediate), and in another run MariaDB (kill -9, then started again),
// while a run loads 1M rows into it: the run retries with bounded backoff
// and completes, the table holds exactly the input's rows (count, distinct
// keys and a hash over all columns equal those of the same files loaded by
// COPY), no row became a dead letter, and the history conserves every record.
func TestRestartSinkDatabase(t *testing.T) {
	restartTestsOnly(t)
	pg := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	data := t.TempDir()
	runTool(t, "orders", data, "2", strconv.Itoa(dbCrashRows(t, 1_000_000)), "0")
	want := csvExpected(t, pg, data, "")
	if want.count == 0 || want.count != want.distinct {
		t.Fatalf("expected: %+v", want)
	}
	tests := []struct {
		name   string
		server func(*testing.T) dbServer
		// target makes a fresh schema or database and returns the sink's
		// YAML and the qualified table.
		target func(t *testing.T, db *sql.DB) (sink, table string)
	}{
		{"postgres", postgresServer, func(t *testing.T, db *sql.DB) (string, string) {
			s := pgSchema(t, db, "bb_restart")
			return fmt.Sprintf("sink: {type: postgres, dsn: %q, db_schema: %s, table: orders, mode: append, create: true}\n", pgDSN, s), s + ".orders"
		}},
		{"mariadb", mariadbServer, func(t *testing.T, db *sql.DB) (string, string) {
			s := mysqlDatabase(t, db, "bb_restart")
			return fmt.Sprintf("sink: {type: mysql, dsn: \"root:@tcp(127.0.0.1:3306)/%s\", table: orders, mode: append, create: true}\n", s), s + ".orders"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			srv.keepUp(t)
			db := reachable(t, srv.driver, srv.dsn, srv.name)
			sink, table := tc.target(t, db)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipeline.yaml"), restartPipeline(data, sink))
			runThroughRestart(t, dir, srv, func() bool { return liveRows(db, table) >= want.count/10 })
			stateDB := filepath.Join(dir, ".backbone", "state.db")
			dsn := srv.dsn
			if srv.driver == "mysql" {
				dsn += "?parseTime=true&loc=UTC"
			}
			if got := sqlDigest(t, srv.driver, dsn, "SELECT "+csvColumns+", total FROM "+table+" ORDER BY order_id"); got != want {
				t.Fatalf("after the restart: table %+v, want %+v", got, want)
			}
			if n := deadLettersOf(t, stateDB, "restart"); n != 0 {
				t.Fatalf("%d dead letters: rows were refused because of the outage", n)
			}
			checkHistory(t, stateDB, "restart", want.count)
		})
	}
}

// TestRestartSourceDatabase restarts PostgreSQL while a run reads 1M rows
// from it incrementally (into SQLite): the reader reopens after the last
// row it handed on, the run completes, and the table equals the source with
// the source's bad rows, and only those, as dead letters.
func TestRestartSourceDatabase(t *testing.T) {
	restartTestsOnly(t)
	srv := postgresServer(t)
	srv.keepUp(t)
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	schema := pgSchema(t, db, "bb_src")
	ordersSource(t, db, schema, dbCrashRows(t, 1_000_000))
	want := sqlDigest(t, "pgx", pgDSN, sourceOrdersQuery(schema))
	wantDL := sourceRejects(t, db, schema)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), pgSourcePipeline(schema,
		"sink: {type: sqlite, path: warehouse.db, table: orders, mode: append, create: true}\n"))
	warehouse := filepath.Join(dir, "warehouse.db")
	runThroughRestart(t, dir, srv, func() bool { return committedRows(warehouse) >= want.count/10 })
	if got := sqlDigest(t, "sqlite", "file:"+warehouse+"?mode=ro", sinkOrdersQuery("orders")); got != want {
		t.Fatalf("after the restart: table %+v, want the source's %+v", got, want)
	}
	stateDB := filepath.Join(dir, ".backbone", "state.db")
	if n := deadLettersOf(t, stateDB, "crash"); n != wantDL {
		t.Fatalf("%d dead letters, want the source's %d bad rows", n, wantDL)
	}
	checkHistory(t, stateDB, "crash", want.count)
}
