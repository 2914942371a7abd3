package httpc_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/connector/httpc"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// load checks a pipeline file written in dir, with the built-in
// components and extra ones.
func load(t testing.TB, dir, yaml string, extra func(*connector.Registry)) *config.Pipeline {
	t.Helper()
	r := connector.NewRegistry()
	builtin.Register(r)
	if extra != nil {
		extra(r)
	}
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(path, []byte(yaml), config.Options{Registry: r, Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	return p
}

func openStore(t testing.TB, dir string) state.Store {
	t.Helper()
	st, err := sqlitestate.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPipelineEnrichFromHTTP: CSV orders enriched with customers from an
// HTTP service, loaded into SQLite. Orders of customers the service does
// not know are rejected; every customer is asked once.
func TestPipelineEnrichFromHTTP(t *testing.T) {
	svc := httpc.NewCustomerService(t)
	dir := t.TempDir()
	const orders, customers = 3000, 400
	var csv strings.Builder
	csv.WriteString("order_id,customer_id,qty\n")
	missing := 0
	for i := 1; i <= orders; i++ {
		cid := int64(i*13%customers + 1)
		if !svc.Exists(cid) {
			missing++
		}
		fmt.Fprintf(&csv, "%d,%d,%d\n", i, cid, i%9+1)
	}
	if err := os.WriteFile(filepath.Join(dir, "orders.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := load(t, dir, `name: orders_enriched
source:
  type: csv
  path: orders.csv
  schema: { order_id: int, customer_id: int, qty: int }
lookups:
  customers:
    type: http
    url: "`+svc.URL()+`/customers/{{customer_id}}"
    key: customer_id
    record: data
    schema: { customer_id: int, region: string, tier: string, credit: decimal }
    timeout: 2s
steps:
  - enrich: { lookup: customers, on: customer_id, fields: [region, tier], missing: reject }
  - map: { tier_again: 'lookup("customers", customer_id).tier' }
sink:
  type: sqlite
  path: out.db
  table: orders
  create: true
settings:
  batch_rows: 500
`, nil)
	st := openStore(t, dir)
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Run.Read != orders || res.Run.Written != int64(orders-missing) || res.Run.Rejected != int64(missing) || !res.Conserved() {
		t.Fatalf("read %d, written %d, rejected %d; want %d written and %d rejected", res.Run.Read, res.Run.Written, res.Run.Rejected, orders-missing, missing)
	}
	// Each customer asked once: misses are cached too, lookup() hits.
	if n := svc.Keys.Load(); n != customers {
		t.Errorf("%d customers asked, want each of the %d once", n, customers)
	}
	// enrich asks for every order, lookup() for every order enriched; the
	// cache misses are the customers' first lookups and those of a key
	// already being asked.
	if c := res.LookupCache["customers"]; c[0]+c[1] != 2*orders-int64(missing) || c[1] < customers || c[0] < orders {
		t.Errorf("cache stats %v: want %d lookups, at least %d misses, most hits", c, 2*orders-missing, customers)
	}
	db := openDB(t, filepath.Join(dir, "out.db"))
	rows, err := db.Query(`SELECT customer_id, region, tier, tier_again FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var cid int64
		var region, tier, again sql.NullString
		if err := rows.Scan(&cid, &region, &tier, &again); err != nil {
			t.Fatal(err)
		}
		want := httpc.Customer(cid)
		if region.String != want["region"] || tier.String != want["tier"] || again.String != want["tier"] {
			t.Fatalf("customer %d: region %v, tier %v, again %v; want %v", cid, region, tier, again, want)
		}
		n++
	}
	if n != orders-missing {
		t.Errorf("%d rows in SQLite, want %d", n, orders-missing)
	}
	dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "orders_enriched"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != missing || !strings.Contains(dls[0].Error, "no customers row for customer_id=") {
		t.Errorf("%d dead letters (first %+v), want %d for missing customers", len(dls), dls[0], missing)
	}
}

// TestPipelineHTTPSourceIncremental copies an API's items into SQLite
// twice: the second run reads only the items added since, ties on the
// cursor included.
func TestPipelineHTTPSourceIncremental(t *testing.T) {
	api := httpc.NewItemsAPI(t, "cursor", connectortest.Rows(505)) // ends inside a tie group
	dir := t.TempDir()
	p := load(t, dir, `name: items_copy
source:
  type: http
  url: `+api.URL()+`
  records: data
  pagination: { type: cursor, next: meta.next_cursor, size_param: limit, size: 64 }
  mode: incremental
  cursor: created_at
  key: id
  schema: { id: int, name: string, amount: decimal, created_at: timestamp, note: string }
sink:
  type: sqlite
  path: out.db
  table: items
  mode: upsert
  key: id
  create: true
settings:
  batch_rows: 100
`, nil)
	st := openStore(t, dir)
	ctx := context.Background()
	res, err := engine.Run(ctx, p, engine.Options{Store: st})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if res.Run.Read != 505 || res.Run.Written != 505 {
		t.Fatalf("first run read %d, wrote %d; want 505", res.Run.Read, res.Run.Written)
	}
	api.Add(connectortest.RowRange(506, 120))
	before := len(api.Requests())
	res, err = engine.Run(ctx, p, engine.Options{Store: st})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if res.Run.Read != 120 || res.Run.Written != 120 {
		t.Errorf("second run read %d, wrote %d; want the 120 new items", res.Run.Read, res.Run.Written)
	}
	if reqs := api.Requests()[before:]; !strings.Contains(reqs[0], "since=") {
		t.Errorf("second run's first request %q carries no since", reqs[0])
	}
	res, err = engine.Run(ctx, p, engine.Options{Store: st})
	if err != nil || res.Run.Read != 0 {
		t.Errorf("third run: read %d, %v; want nothing new", res.Run.Read, err)
	}
	// SQLite holds every item once, with its values.
	db := openDB(t, filepath.Join(dir, "out.db"))
	rows, err := db.Query(`SELECT id, name, amount, created_at, note FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []record.Row
	for rows.Next() {
		vals := make([]sql.NullString, 5)
		if err := rows.Scan(&vals[0], &vals[1], &vals[2], &vals[3], &vals[4]); err != nil {
			t.Fatal(err)
		}
		texts := make([]*string, 5)
		for i := range vals {
			if vals[i].Valid {
				texts[i] = &vals[i].String
			}
		}
		r, err := connectortest.FromText(texts)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 625 {
		t.Fatalf("%d items in SQLite, want 625", len(got))
	}
	for i, r := range got {
		want := connectortest.Row(int64(i + 1))
		for f := range want {
			if record.FormatText(r[f]) != record.FormatText(want[f]) {
				t.Fatalf("item %d field %d: %v, want %v", i+1, f, r[f], want[f])
			}
		}
	}
}
