// Command gen writes deterministic benchmark and test data: an orders CSV
// (with an optional malformed fraction), a customers CSV and FX rates.
//
//	go run ./bench/gen -dir bench/data -rows 1000000 -bad 0.01 -customers 100000
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/backbone-etl/backbone/internal/testdata"
)

func main() {
	dir := flag.String("dir", "bench/data", "output directory")
	rows := flag.Int("rows", 1_000_000, "order rows")
	bad := flag.Float64("bad", 0, "fraction of malformed order rows")
	customers := flag.Int("customers", 100_000, "customers")
	seed := flag.Uint64("seed", 1, "random seed")
	name := flag.String("name", "", "orders file name; default orders-<rows>.csv")
	first := flag.Int("first", 1, "first order id")
	unknown := flag.Float64("unknown", 0, "fraction of orders whose customer does not exist")
	flag.Parse()
	o := testdata.Orders{Rows: *rows, Bad: *bad, Seed: *seed, Customers: *customers, FirstID: *first, Unknown: *unknown}
	if err := run(*dir, *name, o); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir, name string, o testdata.Orders) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name+"x")), 0o755); err != nil {
		return err
	}
	if name == "" {
		name = fmt.Sprintf("orders-%d.csv", o.Rows)
	}
	write := func(file string, f func(*os.File) error) error {
		path := filepath.Join(dir, file)
		tmp := path + ".tmp"
		out, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := f(out); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(name, func(f *os.File) error {
		return testdata.WriteOrders(f, o)
	}); err != nil {
		return err
	}
	if err := write(fmt.Sprintf("customers-%d.csv", o.Customers), func(f *os.File) error {
		return testdata.WriteCustomers(f, o.Customers, o.Seed)
	}); err != nil {
		return err
	}
	return write("fx.json", func(f *os.File) error { return testdata.WriteFX(f) })
}
