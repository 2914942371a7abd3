// Command tool does the heavy lifting of the e2e tests outside the test
// process, which runs under the race detector where generating a million
// rows or hashing a table is slow:
//
//	tool orders DIR FILES ROWS [BAD]  write DIR/orders-N.csv (BAD: malformed fraction, 0.002)
//	tool poison FILE KIND:ID...        rewrite rows of an orders file (KIND check or long)
//	tool digest DB                    print "count distinct checksum" of table orders
//	tool sqldigest DRIVER DSN QUERY   print "count distinct checksum" of a query's rows
//	tool deadletters STATE PIPELINE   print how many dead letters; fail on a duplicate
//	tool deadkeys STATE PIPELINE      print "step key" of every dead letter, sorted
//	tool runs STATE PIPELINE          print "status read written rejected filtered" per run, oldest first
//	tool copyin DSN TABLE FILE...     COPY CSV files (with a header) into a PostgreSQL table
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
	"github.com/backbone-etl/backbone/internal/testdata"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: tool orders|poison|digest|sqldigest|deadletters|deadkeys|runs|copyin ARGS")
	}
	switch args[0] {
	case "orders":
		if len(args) != 4 && len(args) != 5 {
			return errors.New("usage: tool orders DIR FILES ROWS [BAD]")
		}
		files, err1 := strconv.Atoi(args[2])
		rows, err2 := strconv.Atoi(args[3])
		bad := 0.002
		var err3 error
		if len(args) == 5 {
			bad, err3 = strconv.ParseFloat(args[4], 64)
		}
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		return orders(args[1], files, rows, bad)
	case "poison":
		if len(args) < 3 {
			return errors.New("usage: tool poison FILE KIND:ID [KIND:ID]")
		}
		return poison(args[1], args[2:])
	case "sqldigest":
		if len(args) != 4 {
			return errors.New("usage: tool sqldigest DRIVER DSN QUERY")
		}
		return sqlDigest(args[1], args[2], args[3])
	case "deadkeys":
		if len(args) != 3 {
			return errors.New("usage: tool deadkeys STATE PIPELINE")
		}
		return deadKeys(args[1], args[2])
	case "copyin":
		if len(args) < 4 {
			return errors.New("usage: tool copyin DSN TABLE FILE [FILE]")
		}
		return copyIn(args[1], args[2], args[3:])
	case "runs":
		if len(args) != 3 {
			return errors.New("usage: tool runs STATE PIPELINE")
		}
		return runs(args[1], args[2])
	case "digest":
		if len(args) != 2 {
			return errors.New("usage: tool digest DB")
		}
		return digest(args[1])
	case "deadletters":
		if len(args) != 3 {
			return errors.New("usage: tool deadletters STATE PIPELINE")
		}
		return deadLetters(args[1], args[2])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// orders writes FILES files of ROWS/FILES rows each, with a malformed
// fraction bad so that dead letters exist.
func orders(dir string, files, rows int, bad float64) error {
	per := rows / files
	for i := 0; i < files; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("orders-%d.csv", i)))
		if err != nil {
			return err
		}
		o := testdata.Orders{Rows: per, Bad: bad, Seed: uint64(i + 1), FirstID: 1 + i*per, Customers: 5000}
		if err := testdata.WriteOrders(f, o); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// digest hashes every column of every row of table orders, in key order.
func digest(db string) error {
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return err
	}
	defer conn.Close()
	var count, distinct int64
	if err := conn.QueryRow(`SELECT count(*), count(DISTINCT order_id) FROM orders`).Scan(&count, &distinct); err != nil {
		return err
	}
	rows, err := conn.Query(`SELECT * FROM orders ORDER BY order_id, rowid`)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for _, v := range vals {
			h.Write(v)
			h.Write([]byte{0})
		}
		h.Write([]byte{'\n'})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Println(count, distinct, hex.EncodeToString(h.Sum(nil)))
	return nil
}

// deadLetters counts a pipeline's dead letters and fails when one (task,
// place, step) is stored twice.
func deadLetters(stateDB, pipeline string) error {
	st, err := sqlitestate.Open(context.Background(), stateDB)
	if err != nil {
		return err
	}
	defer st.Close()
	dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: pipeline})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, d := range dls {
		k := d.Task + "|" + d.Loc + "|" + d.Step
		if seen[k] {
			return fmt.Errorf("dead letter %s stored twice", k)
		}
		seen[k] = true
	}
	fmt.Println(len(dls))
	return nil
}
