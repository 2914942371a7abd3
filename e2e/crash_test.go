package e2e

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// crashRows is the size of the crash test; the issue asks for 1M rows.
func crashRows(t *testing.T) int {
	if v := os.Getenv("BACKBONE_CRASH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("BACKBONE_CRASH_ROWS=%q", v)
		}
		return n
	}
	return 1_000_000
}

// writeOrders writes files orders-N.csv into dir, rows in all, with a
// malformed fraction so that dead letters exist.
func writeOrders(t *testing.T, dir string, files, rows int) {
	t.Helper()
	runTool(t, "orders", dir, strconv.Itoa(files), strconv.Itoa(rows))
}

const crashPipeline = `name: crash
source:
  type: csv
  path: %s/orders-*.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
steps:
  - map:
      total: qty * unit_price
  - validate:
      - {check: "qty > 0", message: "qty must be positive"}
sink:
  type: sqlite
  path: warehouse.db
  table: orders
  mode: %s%s
  create: true
errors:
  max_reject_rate: 5%%
settings:
  batch_rows: 2000
`

func keyLine(mode string) string {
	if mode == "upsert" {
		return "\n  key: [order_id]"
	}
	return ""
}

// tableDigest is what must equal between an uninterrupted run and a crashed
// and resumed one.
type tableDigest struct {
	count, distinct int64
	checksum        string
}

func digest(t *testing.T, db string) tableDigest {
	t.Helper()
	var d tableDigest
	if _, err := fmt.Sscan(runTool(t, "digest", db), &d.count, &d.distinct, &d.checksum); err != nil {
		t.Fatal(err)
	}
	return d
}

// deadLetters returns how many dead letters the pipeline has; the tool
// fails when one (task, place, step) appears twice.
func deadLetters(t *testing.T, stateDB string) int { return deadLettersOf(t, stateDB, "crash") }

func deadLettersOf(t *testing.T, stateDB, pipeline string) int {
	t.Helper()
	n, err := strconv.Atoi(runTool(t, "deadletters", stateDB, pipeline))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCrashCSVToSQLite kills `backbone run` with SIGKILL at random instants
// and at named points inside the commit, reruns it to the end, and checks
// the table and the dead letters equal those of an uninterrupted run.
func TestCrashCSVToSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	t.Parallel() // with the other crash tests: most of their time is spent in other processes
	rows := crashRows(t)
	data := t.TempDir()
	writeOrders(t, data, 4, rows)

	for _, mode := range []string{"upsert", "append"} {
		t.Run(mode, func(t *testing.T) {
			setup := func() string {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(fmt.Sprintf(crashPipeline, data, mode, keyLine(mode))), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			}
			ref := setup()
			start := time.Now()
			if res := backbone(t, ref, nil, "run", "pipeline.yaml"); res.code != 0 {
				t.Fatalf("reference run: exit %d\n%s", res.code, res.out)
			}
			full := time.Since(start)
			want := digest(t, filepath.Join(ref, "warehouse.db"))
			wantDL := deadLetters(t, filepath.Join(ref, ".backbone", "state.db"))
			if want.count == 0 || wantDL == 0 || want.count != want.distinct {
				t.Fatalf("reference run: %+v, %d dead letters", want, wantDL)
			}
			t.Logf("reference: %d rows, %d dead letters in %s", want.count, wantDL, full)

			type crash struct {
				name      string
				failpoint string // kill at a named point instead of a random instant
			}
			crashes := []crash{
				{name: "seed-1"}, {name: "seed-2"}, {name: "seed-3"}, {name: "seed-4"}, {name: "seed-5"},
				{name: "inside-sink-commit", failpoint: "sink-commit:7"},
				{name: "before-commit", failpoint: "before-commit:11"},
				{name: "after-dead-letters", failpoint: "after-dead-letters:2"},
			}
			if mode == "append" { // append shows duplicates that upsert would hide
				crashes = append(crashes[:2], crashes[5])
			}
			for i, c := range crashes {
				t.Run(c.name, func(t *testing.T) {
					dir, kills := crashRuns(t, setup, c.failpoint, uint64(i+1), full, 3)
					if res := backbone(t, dir, nil, "run", "pipeline.yaml"); res.code != 0 {
						t.Fatalf("run after %d kill(s): exit %d\n%s", kills, res.code, res.out)
					}
					got := digest(t, filepath.Join(dir, "warehouse.db"))
					if got != want {
						t.Fatalf("after %d kill(s): table %+v, want %+v", kills, got, want)
					}
					if n := deadLetters(t, filepath.Join(dir, ".backbone", "state.db")); n != wantDL {
						t.Fatalf("after %d kill(s): %d dead letters, want %d", kills, n, wantDL)
					}
				})
			}
		})
	}
}

// TestSignalStopsSoftly sends SIGTERM (and, in another run, SIGINT) while a
// run is loading: it stops reading, commits what it read, exits 143 (130),
// and the next run completes the load exactly once.
func TestSignalStopsSoftly(t *testing.T) {
	if testing.Short() {
		t.Skip("not in -short")
	}
	data := t.TempDir()
	writeOrders(t, data, 1, 300_000)
	ref := t.TempDir()
	write(t, filepath.Join(ref, "pipeline.yaml"), fmt.Sprintf(crashPipeline, data, "append", ""))
	if res := backbone(t, ref, nil, "run", "pipeline.yaml"); res.code != 0 {
		t.Fatalf("reference run: %s", res.out)
	}
	want := digest(t, filepath.Join(ref, "warehouse.db"))
	for _, sig := range []struct {
		s    syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(sig.s.String(), func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipeline.yaml"), fmt.Sprintf(crashPipeline, data, "append", ""))
			cmd := exec.Command(binary, "run", "pipeline.yaml")
			cmd.Dir = dir
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the run has committed something, then signal.
			db := filepath.Join(dir, "warehouse.db")
			deadline := time.Now().Add(time.Minute)
			for committedRows(db) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("nothing committed within a minute")
				}
				time.Sleep(5 * time.Millisecond)
			}
			_ = cmd.Process.Signal(sig.s)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != sig.code {
				t.Fatalf("exit %d, want %d\n%s", code, sig.code, out.String())
			}
			if !strings.Contains(out.String(), "cancelled") {
				t.Fatalf("the summary does not say cancelled:\n%s", out.String())
			}
			part := committedRows(db)
			if part == 0 || part >= want.count {
				t.Fatalf("%d rows committed at the signal, want a part of %d", part, want.count)
			}
			if res := backbone(t, dir, nil, "run", "pipeline.yaml"); res.code != 0 {
				t.Fatalf("rerun: %s", res.out)
			}
			if got := digest(t, db); got != want {
				t.Fatalf("after the stop and a rerun: %+v, want %+v", got, want)
			}
		})
	}
}

// committedRows counts the rows of the orders table, 0 when it is not there
// yet.
func committedRows(db string) int64 {
	if _, err := os.Stat(db); err != nil {
		return 0
	}
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return 0
	}
	defer conn.Close()
	var n int64
	if err := conn.QueryRow(`SELECT count(*) FROM orders`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// TestPostgresStateStore runs the quickstart with its state in PostgreSQL:
// history and dead letters are there, and a rerun loads nothing twice.
func TestPostgresStateStore(t *testing.T) {
	const base = "postgres://postgres@127.0.0.1:5432/test"
	conn, err := sql.Open("pgx", base)
	if err == nil {
		err = conn.Ping()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at 127.0.0.1:5432 is unreachable: %v", err)
		}
		t.Skipf("PostgreSQL at 127.0.0.1:5432 is unreachable: %v", err)
	}
	defer conn.Close()
	schema := fmt.Sprintf("bb_e2e_%d", rand.Uint32())
	t.Cleanup(func() { conn.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE") })
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "qs"), os.DirFS("../examples/quickstart")); err != nil {
		t.Fatal(err)
	}
	stateDSN := base + "?schema=" + schema
	first := backbone(t, dir, nil, "run", "--state", stateDSN, "qs/pipeline.yaml")
	if first.code != 0 || !contains(first.out, "read 1200") {
		t.Fatalf("first run: exit %d\n%s", first.code, first.out)
	}
	second := backbone(t, dir, nil, "run", "--state", stateDSN, "qs/pipeline.yaml")
	if second.code != 0 || !contains(second.out, "read 0") {
		t.Fatalf("second run: exit %d\n%s", second.code, second.out)
	}
	runs := backbone(t, dir, nil, "runs", "--state", stateDSN, "orders_enriched")
	if strings.Count(runs.out, "succeeded") != 2 {
		t.Fatalf("runs:\n%s", runs.out)
	}
	dlq := backbone(t, dir, nil, "dlq", "list", "--state", stateDSN, "orders_enriched")
	if !contains(dlq.out, "15 dead letter(s)") {
		t.Fatalf("dlq list:\n%s", dlq.out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".backbone")); err == nil {
		t.Fatal("a SQLite state store was created although the state is in PostgreSQL")
	}
}

// crashRuns runs `backbone run` in a directory made by setup and kills it:
// at a failpoint, or with SIGKILL at random instants within window, up to
// attempts times. When a run outpaces its kill (the machine got faster than
// the reference run), it starts over in a new directory with half the
// window, so that every scenario is really killed. It returns the directory
// and how many times the process died.
func crashRuns(t *testing.T, setup func() string, failpoint string, seed uint64, window time.Duration, attempts int) (string, int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	for try := 0; try < 6; try++ {
		dir := setup()
		kills := 0
		for attempt := 0; attempt < attempts; attempt++ {
			if err := runKilled(t, dir, failpoint, rng, window); err == nil {
				break // the run finished before its kill
			}
			kills++
			if failpoint != "" {
				break
			}
		}
		if kills > 0 {
			return dir, kills
		}
		window /= 2
	}
	t.Fatal("the process was never killed: the test proves nothing")
	return "", 0
}

// runKilled runs `backbone run` once in dir, killed at failpoint or, when
// failpoint is "", by SIGKILL at a random instant within window drawn from
// rng. It returns how the process ended: nil when it finished first.
func runKilled(t *testing.T, dir, failpoint string, rng *rand.Rand, window time.Duration) error {
	t.Helper()
	cmd := exec.Command(binary, "run", "-q", "pipeline.yaml")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if failpoint != "" {
		cmd.Env = append(cmd.Env, "BACKBONE_FAILPOINT="+failpoint)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if failpoint == "" {
		delay := time.Duration(rng.Int64N(int64(window)*8/10+1)) + 10*time.Millisecond
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	return cmd.Wait()
}
