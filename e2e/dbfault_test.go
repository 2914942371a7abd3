package e2e

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runRecord is one run of the history, as the tool prints it.
type runRecord struct {
	status                            string
	read, written, rejected, filtered int64
}

// runHistory returns a pipeline's runs from a SQLite state store, oldest
// first.
func runHistory(t *testing.T, stateDB, pipeline string) []runRecord {
	t.Helper()
	var runs []runRecord
	out := runTool(t, "runs", stateDB, pipeline)
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var r runRecord
		if _, err := fmt.Sscan(line, &r.status, &r.read, &r.written, &r.rejected, &r.filtered); err != nil {
			t.Fatalf("run history line %q: %v", line, err)
		}
		runs = append(runs, r)
	}
	return runs
}

// checkHistory checks the run history after a series of runs whose last one
// completed: every finished run conserves its records (read = written +
// rejected + filtered), and the last one wrote exactly the rows it added
// to the table (added), so that it read nothing that an earlier, killed run
// had committed.
func checkHistory(t *testing.T, stateDB, pipeline string, added int64) runRecord {
	t.Helper()
	runs := runHistory(t, stateDB, pipeline)
	if len(runs) == 0 {
		t.Fatal("no run in the history")
	}
	for i, r := range runs {
		if r.status != "running" && r.read != r.written+r.rejected+r.filtered {
			t.Errorf("run %d of %d (%s): read %d != written %d + rejected %d + filtered %d",
				i+1, len(runs), r.status, r.read, r.written, r.rejected, r.filtered)
		}
	}
	last := runs[len(runs)-1]
	if last.status != "succeeded" {
		t.Fatalf("the last run %s", last.status)
	}
	if last.written != added {
		t.Errorf("the last run wrote %d rows but the table grew by %d: rows committed before were loaded again, or rows were lost", last.written, added)
	}
	return last
}

// sqlDigest hashes a query's rows canonically (see the tool), so that a
// PostgreSQL source and a PostgreSQL, MariaDB or SQLite table compare.
func sqlDigest(t *testing.T, driver, dsn, query string) tableDigest {
	t.Helper()
	var d tableDigest
	if _, err := fmt.Sscan(runTool(t, "sqldigest", driver, dsn, query), &d.count, &d.distinct, &d.checksum); err != nil {
		t.Fatal(err)
	}
	return d
}

// pgSchema creates a PostgreSQL schema with a random name, dropped at
// cleanup.
func pgSchema(t *testing.T, db *sql.DB, prefix string) string {
	t.Helper()
	s := fmt.Sprintf("%s_%d", prefix, rand.Uint32())
	if _, err := db.Exec("CREATE SCHEMA " + s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA IF EXISTS " + s + " CASCADE") })
	return s
}

// mysqlDatabase creates a MariaDB database with a random name, dropped at
// cleanup.
func mysqlDatabase(t *testing.T, db *sql.DB, prefix string) string {
	t.Helper()
	s := fmt.Sprintf("%s_%d", prefix, rand.Uint32())
	if _, err := db.Exec("CREATE DATABASE " + s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + s) })
	return s
}

// pgExec runs statements on PostgreSQL or fails the test.
func pgExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// ordersSource fills schema.orders of PostgreSQL with rows generated in SQL:
// ordered by (updated_at, order_id), not by key; groups of rows share an
// updated_at value, which also varies by microseconds; every 997th row has
// qty 0 (rejected by the pipelines' validate step) and a quarter are
// cancelled (filtered out).
func ordersSource(t *testing.T, db *sql.DB, schema string, rows int) {
	t.Helper()
	pgExec(t, db,
		`CREATE TABLE `+schema+`.orders (order_id bigint PRIMARY KEY, customer_id integer NOT NULL, qty integer NOT NULL,
			unit_price numeric(10,2) NOT NULL, currency text NOT NULL, status text NOT NULL,
			ordered_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`,
		fmt.Sprintf(`INSERT INTO %s.orders SELECT i, 1 + (i * 7919) %% 5000,
			CASE WHEN i %% 997 = 0 THEN 0 ELSE 1 + (i * 31) %% 20 END,
			((i * 7727) %% 99900 + 100) / 100.0,
			(ARRAY['USD','EUR','GBP','JPY','CHF'])[1 + i %% 5],
			(ARRAY['paid','paid','shipped','cancelled'])[1 + (i / 7) %% 4],
			timestamptz '2026-11-01 00:00:00+00' + i * interval '2 seconds' + (i %% 1000) * interval '1 microsecond',
			timestamptz '2026-11-01 00:00:00+00' + (i / 40) * interval '1 millisecond' + (i %% 3) * interval '1 microsecond'
			FROM generate_series(1::bigint, %d) i`, schema, rows),
		`CREATE INDEX ON `+schema+`.orders (updated_at, order_id)`,
		`ANALYZE `+schema+`.orders`)
}

// ordersColumns are the columns a loaded orders table is compared by.
const ordersColumns = "order_id, customer_id, qty, unit_price, currency, status, ordered_at, updated_at"

// sourceOrdersQuery selects from the source what the pipelines load: not
// cancelled, positive qty, with total.
func sourceOrdersQuery(schema string) string {
	return "SELECT " + ordersColumns + ", qty * unit_price AS total FROM " + schema +
		".orders WHERE status <> 'cancelled' AND qty > 0 ORDER BY order_id"
}

// sourceRejects counts the rows the pipelines' validate step rejects.
func sourceRejects(t *testing.T, db *sql.DB, schema string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + schema + ".orders WHERE status <> 'cancelled' AND qty <= 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sinkOrdersQuery selects a loaded orders table in the order and form of
// sourceOrdersQuery.
func sinkOrdersQuery(table string) string {
	return "SELECT " + ordersColumns + ", total FROM " + table + " ORDER BY order_id"
}

// crashChains are the scenarios of the database crash tests: five seeds,
// each a chain of three kills of runs that resume one another: SIGKILL at a
// random instant, death at a named point of the commit (inside the sink's
// commit: rows and checkpoint written, COMMIT not sent; before the commit;
// after a batch's dead letters were stored but not its rows), and SIGKILL at
// a random instant again. A last run then completes the load.
var crashChains = []struct {
	name  string
	kills []string // "" for a random instant, else a failpoint NAME:N
}{
	{"seed-1", []string{"", "sink-commit:3", ""}},
	{"seed-2", []string{"", "before-commit:5", ""}},
	{"seed-3", []string{"", "sink-commit:7", ""}},
	{"seed-4", []string{"", "after-dead-letters:2", ""}},
	{"seed-5", []string{"", "sink-commit:1", ""}},
}

// crashChain runs `backbone run` in a directory made by setup once per
// kill, each run resuming what the ones before left, and kills it: with
// SIGKILL at a random instant within window (drawn from seed) or at a
// failpoint. When a run ends before its kill (the machine got faster than
// the reference run), the chain starts over in a new directory with half
// the window, so that every kill really happens. It returns the directory.
func crashChain(t *testing.T, setup func() string, kills []string, seed uint64, window time.Duration) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	for try := 0; try < 6; try++ {
		dir := setup()
		killed := 0
		for _, fp := range kills {
			err := runKilled(t, dir, fp, rng, window)
			if err == nil {
				break // the run finished before its kill
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("a run died of something else than its kill: %v", err)
			}
			killed++
		}
		if killed == len(kills) {
			return dir
		}
		window /= 2
	}
	t.Fatal("the chain of kills never completed: the test proves nothing")
	return ""
}
