package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// dbTarget is a database a crash test loads into, in a schema or database
// of its own.
type dbTarget struct {
	name   string
	sink   func(schema string) string // the sink's YAML
	create func(t *testing.T) string  // a fresh schema/database, dropped at cleanup
	digest func(t *testing.T, schema string) tableDigest
	count  func(t *testing.T, schema string) int64 // rows of the table
	rows   int                                     // rows of its crash test, unless BACKBONE_DB_CRASH_ROWS
}

// reachable opens a service or skips the test (fails it under CI=true).
func reachable(t *testing.T, driver, dsn, what string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unreachable: %v", what, err)
		}
		t.Skipf("%s is unreachable: %v", what, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The services of this machine.
const (
	pgDSN    = "postgres://postgres@127.0.0.1:5432/test"
	mysqlDSN = "root:@tcp(127.0.0.1:3306)/test"
)

func postgresTarget(t *testing.T) dbTarget {
	const dsn = pgDSN
	db := reachable(t, "pgx", dsn, "PostgreSQL at 127.0.0.1:5432")
	return dbTarget{
		name: "postgres",
		rows: 200_000, // PostgreSQL's 1M-row crash tests read from PostgreSQL (dbsource_crash_test.go)
		sink: func(schema string) string {
			return fmt.Sprintf("sink: {type: postgres, dsn: %q, db_schema: %s, table: orders, mode: upsert, key: [order_id], create: true}\n", dsn, schema)
		},
		create: func(t *testing.T) string {
			s := fmt.Sprintf("bb_crash_%d", rand.Uint32())
			if _, err := db.Exec("CREATE SCHEMA " + s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec("DROP SCHEMA IF EXISTS " + s + " CASCADE") })
			return s
		},
		digest: func(t *testing.T, schema string) tableDigest {
			var d tableDigest
			err := db.QueryRow(`SELECT count(*), count(DISTINCT order_id), coalesce(md5(string_agg(t::text, '|' ORDER BY order_id)), '') FROM `+schema+`.orders t`).
				Scan(&d.count, &d.distinct, &d.checksum)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		count: func(t *testing.T, schema string) int64 { return countRows(t, db, schema+".orders", pgWaitForWriters) },
	}
}

// countRows counts the rows of a table, 0 when it does not exist yet. It
// first waits for the transactions writing the table to end: a process
// killed just after it sent COMMIT leaves a transaction that the server
// commits after the process is gone. lock is the statement that waits for
// them (pgWaitForWriters or mysqlWaitForWriters).
func countRows(t *testing.T, db *sql.DB, table, lock string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmts := []string{fmt.Sprintf(lock, table), "SELECT count(*) FROM " + table, "UNLOCK TABLES"}
	if lock == pgWaitForWriters {
		stmts = []string{"BEGIN", stmts[0], stmts[1], "ROLLBACK"}
	}
	var n int64
	for _, s := range stmts {
		if strings.HasPrefix(s, "SELECT") {
			err = conn.QueryRowContext(ctx, s).Scan(&n)
		} else {
			_, err = conn.ExecContext(ctx, s)
		}
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "doesn't exist") {
				conn.ExecContext(ctx, "ROLLBACK")
				return 0
			}
			t.Fatalf("%s: %v", s, err)
		}
	}
	return n
}

// Statements that wait for the transactions writing table %s to end.
const (
	pgWaitForWriters    = "LOCK TABLE %s IN SHARE MODE"
	mysqlWaitForWriters = "LOCK TABLES %s READ"
)

func mysqlTarget(t *testing.T) dbTarget {
	db := reachable(t, "mysql", mysqlDSN, "MariaDB at 127.0.0.1:3306")
	return dbTarget{
		name: "mysql",
		rows: 1_000_000,
		sink: func(schema string) string {
			return fmt.Sprintf("sink: {type: mysql, dsn: \"root:@tcp(127.0.0.1:3306)/%s\", table: orders, mode: upsert, key: [order_id], create: true}\n", schema)
		},
		create: func(t *testing.T) string {
			s := fmt.Sprintf("bb_crash_%d", rand.Uint32())
			if _, err := db.Exec("CREATE DATABASE " + s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + s) })
			return s
		},
		digest: func(t *testing.T, schema string) tableDigest {
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "SET SESSION group_concat_max_len = 1073741824"); err != nil {
				t.Fatal(err)
			}
			var d tableDigest
			var sum sql.NullString
			err = conn.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT order_id),
				MD5(GROUP_CONCAT(CONCAT_WS(',', order_id, customer_id, qty, unit_price, currency, status, ordered_at, total) ORDER BY order_id SEPARATOR '|'))
				FROM `+schema+`.orders`).Scan(&d.count, &d.distinct, &sum)
			if err != nil {
				t.Fatal(err)
			}
			d.checksum = sum.String
			return d
		},
		count: func(t *testing.T, schema string) int64 {
			return countRows(t, db, schema+".orders", mysqlWaitForWriters)
		},
	}
}

// dbCrashRows is the size of a database crash test: def, unless
// BACKBONE_DB_CRASH_ROWS says otherwise.
func dbCrashRows(t *testing.T, def int) int {
	if v := os.Getenv("BACKBONE_DB_CRASH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("BACKBONE_DB_CRASH_ROWS=%q", v)
		}
		return n
	}
	return def
}

// TestCrashCSVToDatabases kills `backbone run` loading CSV into PostgreSQL
// and MariaDB (upsert, checkpoints in the target's transaction) at random
// instants and at named points of the commit (crashChains), reruns it, and
// checks the table equals an uninterrupted run's (count, distinct keys, a
// hash over all columns), no dead letter is stored twice, and the run
// history conserves every record. A commit every 512 KiB of input gives a
// run about twenty commits, whatever the machine's speed: the chain's kill
// at a run's seventh commit needs them (with the default 2 MiB and 1 s, a
// fast machine's run had about seven).
func TestCrashCSVToDatabases(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	t.Parallel()
	for _, target := range []func(*testing.T) dbTarget{postgresTarget, mysqlTarget} {
		tg := target(t)
		t.Run(tg.name, func(t *testing.T) {
			data := t.TempDir()
			writeOrders(t, data, 2, dbCrashRows(t, tg.rows))
			pipelineIn := func(dir, schema string) {
				src := fmt.Sprintf(`name: crash
source:
  type: csv
  path: %s/orders-*.csv
  schema: {order_id: int, customer_id: int, qty: int, unit_price: decimal, currency: string, status: string, ordered_at: timestamp}
steps:
  - map: {total: qty * unit_price}
  - validate:
      - {check: "qty > 0", message: "qty must be positive"}
settings: {batch_rows: 2000, commit_bytes: 512KiB}
`, data) + tg.sink(schema)
				write(t, filepath.Join(dir, "pipeline.yaml"), src)
			}
			ref, refSchema := t.TempDir(), tg.create(t)
			pipelineIn(ref, refSchema)
			start := time.Now()
			if res := backbone(t, ref, nil, "run", "pipeline.yaml"); res.code != 0 {
				t.Fatalf("reference run: exit %d\n%s", res.code, res.out)
			}
			full := time.Since(start)
			want := tg.digest(t, refSchema)
			wantDL := deadLettersOf(t, filepath.Join(ref, ".backbone", "state.db"), "crash")
			if want.count == 0 || wantDL == 0 || want.count != want.distinct {
				t.Fatalf("reference run: %+v, %d dead letters", want, wantDL)
			}
			t.Logf("reference: %d rows, %d dead letters in %s", want.count, wantDL, full)
			for i, c := range crashChains {
				t.Run(c.name, func(t *testing.T) {
					var schema string
					setup := func() string {
						dir := t.TempDir()
						schema = tg.create(t)
						pipelineIn(dir, schema)
						return dir
					}
					dir := crashChain(t, setup, c.kills, uint64(i+1), full)
					before := tg.count(t, schema)
					t.Logf("killed %q; %d rows committed before the last run", c.kills, before)
					if res := backbone(t, dir, nil, "run", "pipeline.yaml"); res.code != 0 {
						t.Fatalf("run after the kills: exit %d\n%s", res.code, res.out)
					}
					checkHistory(t, filepath.Join(dir, ".backbone", "state.db"), "crash", tg.count(t, schema)-before)
					if got := tg.digest(t, schema); got != want {
						t.Fatalf("after the kills: table %+v, want %+v", got, want)
					}
					if n := deadLettersOf(t, filepath.Join(dir, ".backbone", "state.db"), "crash"); n != wantDL {
						t.Fatalf("after the kills: %d dead letters, want %d", n, wantDL)
					}
				})
			}
		})
	}
}
