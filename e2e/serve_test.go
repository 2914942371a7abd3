package e2e

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a `backbone serve` process.
type daemonProc struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
	done chan error
}

var listeningRE = regexp.MustCompile(`listening on http://(\S+),`)

// startServe starts `backbone serve` in dir and waits until it listens.
func startServe(t *testing.T, dir string, env []string, args ...string) *daemonProc {
	t.Helper()
	logf, err := os.CreateTemp(dir, "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, log: logf, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { d.done <- cmd.Wait() }()
	select {
	case d.addr = <-addr:
	case err := <-d.done:
		t.Fatalf("serve exited before listening: %v\n%s", err, readFile(t, logf.Name()))
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen within 30s\n%s", readFile(t, logf.Name()))
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGCONT)
		d.cmd.Process.Kill()
		err := <-d.done
		d.done <- err
		if t.Failed() {
			t.Logf("log of serve pid %d:\n%s", d.cmd.Process.Pid, tail(readFile(t, logf.Name()), 12))
		}
	})
	return d
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readFile(t *testing.T, path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// stop sends SIGTERM and waits for the exit; it returns the exit code and
// how long the drain took.
func (d *daemonProc) stop(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, time.Since(start)
	case <-time.After(within):
		t.Fatalf("serve did not exit within %v of SIGTERM\n%s", within, readFile(t, d.log.Name()))
	}
	return 0, 0
}

func pgCount(db *sql.DB, q string) int64 {
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		return -1
	}
	return n
}

// waitFor polls cond every 100ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const leasePipeline = `name: leased
schedule: every 2s
runs: {retries: 0, quarantine_after: 0}
source:
  type: csv
  path: %s/orders-*.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
steps:
  - map: {total: qty * unit_price}
sink: {type: postgres, dsn: %q, db_schema: %s, table: orders, mode: append, create: true}
settings: {batch_rows: 2000}
`

// Two daemons share a PostgreSQL state store; the one running the pipeline
// is paused (SIGSTOP) past its lease. The other takes the lease and loads
// the rest; the paused one, resumed, commits nothing more. The table, in
// append mode (where a second load would show), holds every row once.
func TestServeTwoProcessesOneLease(t *testing.T) {
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	stateSchema, sinkSchema := pgSchema(t, db, "bb_lease_state"), pgSchema(t, db, "bb_lease_sink")
	rows := 400_000
	if s := os.Getenv("BACKBONE_LEASE_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pipes := filepath.Join(dir, "pipelines")
	for _, d := range []string{data, pipes} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runTool(t, "orders", data, "8", strconv.Itoa(rows), "0") // no bad rows: every row loads
	write(t, filepath.Join(pipes, "leased.yaml"), fmt.Sprintf(leasePipeline, data, pgDSN, sinkSchema))
	env := []string{"BACKBONE_STATE=" + pgDSN + "?schema=" + stateSchema, "BACKBONE_ADMIN_TOKEN=lease-test-token"}
	args := []string{"--pipelines", pipes, "--lease-ttl", "3s"}
	a := startServe(t, dir, env, args...)
	b := startServe(t, dir, env, args...)
	procs := map[int]*daemonProc{a.cmd.Process.Pid: a, b.cmd.Process.Pid: b}

	// Find the holder once rows are loading, and pause it mid-run.
	var holder *daemonProc
	waitFor(t, "a run to load rows", 60*time.Second, func() bool {
		if pgCount(db, "SELECT count(*) FROM "+sinkSchema+".orders") <= 0 {
			return false
		}
		var h string
		if err := db.QueryRow("SELECT holder FROM " + stateSchema + ".leases WHERE name = 'pipeline/leased'").Scan(&h); err != nil {
			return false
		}
		_, pid, _ := strings.Cut(h, ":")
		n, _ := strconv.Atoi(pid)
		holder = procs[n]
		return holder != nil
	})
	if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var pausedRun string
	if err := db.QueryRow("SELECT id FROM " + stateSchema + ".runs WHERE status = 'running'").Scan(&pausedRun); err != nil {
		t.Fatalf("the paused daemon's run: %v", err)
	}
	atStop := pgCount(db, "SELECT count(*) FROM "+sinkSchema+".orders")
	if atStop >= int64(rows) {
		t.Skipf("the run finished (%d rows) before it could be paused: raise BACKBONE_LEASE_ROWS", atStop)
	}
	// The other one takes over after the lease expires and loads the rest.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("rows in the table: %d, distinct %d, at the pause %d", pgCount(db, "SELECT count(*) FROM "+sinkSchema+".orders"),
			pgCount(db, "SELECT count(DISTINCT order_id) FROM "+sinkSchema+".orders"), atStop)
		if cs, err := db.Query("SELECT task, coalesce(length(pos), -1), done FROM " + sinkSchema + ".backbone_checkpoints ORDER BY task"); err == nil {
			for cs.Next() {
				var task string
				var n int
				var done bool
				cs.Scan(&task, &n, &done)
				t.Logf("checkpoint %s pos %d bytes done %v", task, n, done)
			}
			cs.Close()
		}
		rs, err := db.Query("SELECT id, status, read_count, written_count, error FROM " + stateSchema + ".runs ORDER BY start_time LIMIT 8")
		if err != nil {
			return
		}
		defer rs.Close()
		for rs.Next() {
			var id, st, e string
			var r, w int64
			rs.Scan(&id, &st, &r, &w, &e)
			t.Logf("run %s %s read %d written %d %s", id, st, r, w, e)
		}
	})
	waitFor(t, "the other daemon to load every row", 60*time.Second, func() bool {
		return pgCount(db, "SELECT count(*) FROM "+sinkSchema+".orders") >= int64(rows)
	})
	// The paused one wakes up with a run in flight: it must commit nothing.
	if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed daemon's run to end", 60*time.Second, func() bool {
		return pgCount(db, "SELECT count(*) FROM "+stateSchema+".runs WHERE status = 'running'") == 0
	})
	time.Sleep(3 * time.Second) // two more schedules: nothing may load again
	for _, p := range []*daemonProc{a, b} {
		if code, _ := p.stop(t, 60*time.Second); code != 0 {
			t.Errorf("serve exited %d after SIGTERM\n%s", code, readFile(t, p.log.Name()))
		}
	}
	var total, distinct int64
	if err := db.QueryRow("SELECT count(*), count(DISTINCT order_id) FROM "+sinkSchema+".orders").Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != int64(rows) || distinct != int64(rows) {
		t.Errorf("table holds %d rows, %d distinct; want %d once each", total, distinct, rows)
	}
	var status, runErr string
	if err := db.QueryRow("SELECT status, error FROM "+stateSchema+".runs WHERE id = $1", pausedRun).Scan(&status, &runErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("paused at %d rows; the paused run ended %s: %s", atStop, status, runErr)
	if status == "succeeded" || status == "running" {
		t.Errorf("the paused daemon's run ended %s after losing its lease", status)
	}
}

const drainPipeline = `name: drained
source:
  type: csv
  path: %s/orders-*.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
steps:
  - map: {total: qty * unit_price}
sink: {type: sqlite, path: %s/warehouse.db, table: orders, mode: upsert, key: [order_id], create: true}
settings: {batch_rows: 2000}
`

// SIGTERM with a run in flight: the run stops at a batch boundary and
// commits, serve exits 0 within its drain deadline, the history shows the
// run cancelled and conserved, and the table holds exactly what it wrote.
func TestServeSIGTERMDrains(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pipes := filepath.Join(dir, "pipelines")
	for _, d := range []string{data, pipes} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rows := 1_000_000
	runTool(t, "orders", data, "4", strconv.Itoa(rows), "0")
	write(t, filepath.Join(pipes, "drained.yaml"), fmt.Sprintf(drainPipeline, data, dir))
	state := filepath.Join(dir, "state.db")
	env := []string{"BACKBONE_ADMIN_TOKEN=drain-test-token", "BACKBONE_TOKEN=drain-test-token"}
	d := startServe(t, dir, env, "--pipelines", pipes, "--state", state, "--drain-timeout", "20s")
	trig := exec.Command(binary, "trigger", "drained", "--server", "http://"+d.addr)
	trig.Env = append(os.Environ(), env...)
	if out, err := trig.CombinedOutput(); err != nil {
		t.Fatalf("trigger: %v %s", err, out)
	}
	waitFor(t, "rows to be committed", 60*time.Second, func() bool { return committedRows(filepath.Join(dir, "warehouse.db")) > 0 })
	code, took := d.stop(t, 30*time.Second)
	t.Logf("SIGTERM to exit with a run in flight: %v", took)
	if code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, readFile(t, d.log.Name()))
	}
	out := runTool(t, "runs", state, "drained")
	// runs prints: status read written rejected filtered, one line per run.
	f := strings.Fields(out)
	if len(f) < 5 {
		t.Fatalf("run history: %q", out)
	}
	read, _ := strconv.ParseInt(f[1], 10, 64)
	written, _ := strconv.ParseInt(f[2], 10, 64)
	rejected, _ := strconv.ParseInt(f[3], 10, 64)
	filtered, _ := strconv.ParseInt(f[4], 10, 64)
	if f[0] != "cancelled" || read != written+rejected+filtered {
		t.Errorf("run after SIGTERM: %q, want cancelled and read = written + rejected + filtered", out)
	}
	if got := committedRows(filepath.Join(dir, "warehouse.db")); got != written || got == int64(rows) {
		t.Errorf("table holds %d rows, the run wrote %d (want equal, and less than %d)", got, written, rows)
	}
}
