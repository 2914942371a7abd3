package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// The conformance suite against the MariaDB server. Each target is a
// database of its own (see newTestDB); the leak checks count the server's
// connections to it.

// mysqlTime is how the harness writes DATETIME(6) values: UTC wall clock.
const mysqlTime = "2006-01-02 15:04:05.000000"

// insertItems inserts rows of connectortest.Schema into items.
func (d *testDB) insertItems(rows []record.Row) {
	d.t.Helper()
	for lo := 0; lo < len(rows); lo += 200 {
		chunk := rows[lo:min(lo+200, len(rows))]
		var args []any
		for _, r := range chunk {
			var amount any
			if r[connectortest.ColAmount] != nil {
				amount = connectortest.Text(r[connectortest.ColAmount])
			}
			args = append(args, r[connectortest.ColID], r[connectortest.ColName], amount,
				r[connectortest.ColCreatedAt].(time.Time).UTC().Format(mysqlTime), r[connectortest.ColNote])
		}
		d.exec("INSERT INTO items (id, name, amount, created_at, note) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(chunk)), ", "), args...)
	}
}

// storedItems reads the rows of items as the server renders them.
func (d *testDB) storedItems() []record.Row {
	d.t.Helper()
	var out []record.Row
	for _, r := range d.rows(`SELECT id, name, amount, created_at, note FROM items`) {
		texts := make([]*string, len(r))
		for i, v := range r {
			if v != nil {
				s := v.(string)
				texts[i] = &s
			}
		}
		row, err := connectortest.FromText(texts)
		if err != nil {
			d.t.Fatalf("read back: %v", err)
		}
		out = append(out, row)
	}
	return out
}

func TestSourceConformance(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		add        bool
	}{
		{"Incremental", "table: items\nmode: incremental\ncursor: created_at\nkey: id", true},
		{"FullByPrimaryKey", "table: items", true},
		{"FullUnorderedQuery", "query: SELECT id, name, amount, created_at, note FROM items WHERE id > 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
					db := newTestDB(t)
					db.exec(`CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DECIMAL(12,2),
						created_at DATETIME(6) NOT NULL, note TEXT, KEY items_cursor (created_at, id))`)
					db.insertItems(rows)
					tg := &connectortest.SourceTarget{
						Source: func(t testing.TB) connector.Source { return kit.Source(t, db.yaml(tc.yaml)) },
						Conns:  func(testing.TB) int { return len(db.conns()) },
					}
					if tc.add {
						tg.Add = func(_ testing.TB, rows []record.Row) { db.insertItems(rows) }
					}
					return tg
				},
			})
		})
	}
}

func TestSinkConformance(t *testing.T) {
	const columns = `name VARCHAR(64) NOT NULL, amount DECIMAL(12,2), created_at DATETIME(6), note TEXT`
	for _, tc := range []struct {
		name, yaml, table string
		keyed             bool
	}{
		{"Append", "mode: append", "CREATE TABLE items (id BIGINT, " + columns + ")", false},
		{"Upsert", "mode: upsert\nkey: id", "CREATE TABLE items (id BIGINT PRIMARY KEY, " + columns + ")", true},
		{"Replace", "mode: replace", "CREATE TABLE items (id BIGINT, " + columns + ")", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSink(t, connectortest.SinkHarness{
				New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
					db := newTestDB(t)
					db.exec(tc.table)
					return &connectortest.SinkTarget{
						Sink:   func(t testing.TB) connector.Sink { return kit.Sink(t, db.yaml("table: items\n"+tc.yaml)) },
						Stored: func(testing.TB) []record.Row { return db.storedItems() },
						Conns:  func(testing.TB) int { return len(db.conns()) },
						// name is VARCHAR(64), and the sessions are strict.
						Refuse: func(r record.Row) record.Row {
							r[connectortest.ColName] = fmt.Sprintf("%s %s", r[connectortest.ColName], strings.Repeat("x", connectortest.MaxNameLen))
							return r
						},
						Keyed: tc.keyed,
					}
				},
			})
		})
	}
}

// A Next whose context is cancelled while it reads a streaming (unordered)
// query gives up with the context's error: the query is cancelled with it,
// so a batch returned then left a reader whose next Next failed although
// its own context was live. Found by the conformance suite
// (Cancel/DuringNext); the trip context makes the cancellation land
// midway every time, and the loop gives the race its chances.
func TestStreamNextCancelledMidwayGivesUp(t *testing.T) {
	db := newTestDB(t)
	db.exec(`CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DECIMAL(12,2), created_at DATETIME(6) NOT NULL, note TEXT)`)
	db.insertItems(connectortest.Rows(20))
	env := connectortest.NewEnv(t)
	env.Limits.BatchRows = 5 // a short read: the batch is done before the query hears of the cancellation
	src := kit.Source(t, db.yaml("query: SELECT id, name, amount, created_at, note FROM items WHERE id > 0"))
	for i := 0; i < 100; i++ {
		r, err := src.Open(context.Background(), env, connector.Task{Key: "q"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 { // midway through the stream, not only at its start
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx, tripped := connectortest.TripContext()
		b, err := r.Next(ctx)
		r.Close()
		if !tripped() {
			t.Fatal("Next never watched its context")
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with its context cancelled while it read: batch %v, error %v; want context.Canceled", b != nil, err)
		}
	}
}
