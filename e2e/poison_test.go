package e2e

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// poisonRows are the rows of the poisoned input that the table refuses, by
// key: "check" rows break a CHECK constraint (qty <= 100), "long" rows carry
// a currency too long for its varchar(3) column. They sit at the start, in
// the middle and at the end of the files, first and last rows included.
var poisonRows = []struct {
	kind string
	id   int
}{
	{"check", 1}, {"long", 137}, {"check", 250_000}, {"long", 500_000},
	{"check", 500_001}, {"long", 777_777}, {"check", 999_999}, {"long", 1_000_000},
}

// poisonInput writes two clean orders files of rows in all (ids 1..rows,
// half in each) and poisons the rows of poisonRows that exist; it returns
// the keys it poisoned, sorted.
func poisonInput(t *testing.T, data string, rows int) []int {
	t.Helper()
	runTool(t, "orders", data, "2", strconv.Itoa(rows), "0")
	per := rows / 2
	specs := map[int][]string{}
	var keys []int
	for _, p := range poisonRows {
		if p.id > 2*per {
			continue
		}
		file := (p.id - 1) / per
		specs[file] = append(specs[file], fmt.Sprintf("%s:%d", p.kind, p.id))
		keys = append(keys, p.id)
	}
	for file, s := range specs {
		runTool(t, append([]string{"poison", filepath.Join(data, fmt.Sprintf("orders-%d.csv", file))}, s...)...)
	}
	slices.Sort(keys)
	return keys
}

// TestPoisonRows loads 1M rows into PostgreSQL and into MariaDB tables that
// refuse a few of them (a CHECK constraint, a value too long for its
// column): exactly those rows are dead letters, with the database's error,
// and every other row loads, equal to the input. (That this costs no
// throughput is measured by bench/run.sh, not timed here.)
func TestPoisonRows(t *testing.T) {
	if testing.Short() {
		t.Skip("1M rows: not in -short")
	}
	t.Parallel()
	pg := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	data := t.TempDir()
	keys := poisonInput(t, data, dbCrashRows(t, 1_000_000))
	var in []string
	for _, k := range keys {
		in = append(in, strconv.Itoa(k))
	}
	want := csvExpected(t, pg, data, "order_id NOT IN ("+strings.Join(in, ", ")+")")

	tests := []struct {
		name   string
		driver string
		dsn    string
		// table creates the constrained table and returns the sink's YAML
		// and the qualified table.
		table func(t *testing.T, db *sql.DB) (sink, table string)
		// errors are the database's words for the two refusals.
		errors []string
	}{
		{"postgres", "pgx", pgDSN, func(t *testing.T, db *sql.DB) (string, string) {
			s := pgSchema(t, db, "bb_poison")
			pgExec(t, db, `CREATE TABLE `+s+`.orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL,
				qty bigint NOT NULL CHECK (qty <= 100), unit_price numeric(12,2) NOT NULL, currency varchar(3) NOT NULL,
				status text NOT NULL, ordered_at timestamptz NOT NULL, total numeric(14,2) NOT NULL)`)
			return fmt.Sprintf("sink: {type: postgres, dsn: %q, db_schema: %s, table: orders, mode: append}\n", pgDSN, s), s + ".orders"
		}, []string{"violates check constraint", "value too long for type character varying(3)"}},
		{"mariadb", "mysql", mysqlDSN + "?parseTime=true&loc=UTC", func(t *testing.T, db *sql.DB) (string, string) {
			s := mysqlDatabase(t, db, "bb_poison")
			if _, err := db.Exec(`CREATE TABLE ` + s + `.orders (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL,
				qty BIGINT NOT NULL CHECK (qty <= 100), unit_price DECIMAL(12,2) NOT NULL, currency VARCHAR(3) NOT NULL,
				status VARCHAR(16) NOT NULL, ordered_at DATETIME(6) NOT NULL, total DECIMAL(14,2) NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("sink: {type: mysql, dsn: \"root:@tcp(127.0.0.1:3306)/%s\", table: orders, mode: append}\n", s), s + ".orders"
		}, []string{"CONSTRAINT", "Data too long for column 'currency'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := reachable(t, tc.driver, tc.dsn, tc.name)
			sink, table := tc.table(t, db)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipeline.yaml"), strings.Replace(restartPipeline(data, sink), "name: restart", "name: poison", 1))
			if res := backbone(t, dir, nil, "run", "pipeline.yaml"); res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.out)
			}
			stateDB := filepath.Join(dir, ".backbone", "state.db")
			var wantDead []string
			for _, k := range keys {
				wantDead = append(wantDead, "sink "+strconv.Itoa(k))
			}
			slices.Sort(wantDead) // as the tool sorts its lines
			if got := runTool(t, "deadkeys", stateDB, "poison"); got != strings.Join(wantDead, "\n") {
				t.Fatalf("dead letters (step key):\n%s\nwant exactly the poisoned rows:\n%s", got, strings.Join(wantDead, "\n"))
			}
			list := backbone(t, dir, nil, "dlq", "list", "poison")
			for _, e := range tc.errors {
				if !strings.Contains(list.out, e) {
					t.Errorf("the dead letters do not carry the database's error %q:\n%s", e, list.out)
				}
			}
			if got := sqlDigest(t, tc.driver, tc.dsn, "SELECT "+csvColumns+", total FROM "+table+" ORDER BY order_id"); got != want {
				t.Fatalf("table %+v, want every other row %+v", got, want)
			}
			last := checkHistory(t, stateDB, "poison", want.count)
			if last.rejected != int64(len(keys)) {
				t.Errorf("the run rejected %d rows, want the %d poisoned", last.rejected, len(keys))
			}
		})
	}
}
