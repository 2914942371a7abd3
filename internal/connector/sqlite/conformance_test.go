package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// The conformance suite against SQLite files. Each target is a database
// file in the test's own directory.

const conformanceTable = `CREATE TABLE items (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	amount     DECIMAL_TEXT,
	created_at TIMESTAMP,
	note       TEXT
)`

// sqliteTime is the text the harness stores timestamps as: a fixed number
// of fraction digits, so that text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z07:00"

// insertItems inserts rows of connectortest.Schema into items.
func insertItems(t testing.TB, db *sql.DB, rows []record.Row) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, nothing to undo
	for _, r := range rows {
		vals := []any{r[connectortest.ColID], r[connectortest.ColName], connectortest.Text(r[connectortest.ColAmount]),
			r[connectortest.ColCreatedAt].(time.Time).UTC().Format(sqliteTime), r[connectortest.ColNote]}
		if _, err := tx.Exec(`INSERT INTO items (id, name, amount, created_at, note) VALUES (?, ?, ?, ?, ?)`, vals...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestSourceConformance(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		add        bool
	}{
		{"Incremental", "table: items\nmode: incremental\ncursor: created_at\nkey: id", true},
		{"FullByRowid", "table: items", true},
		{"FullUnorderedQuery", "query: SELECT id, name, amount, created_at, note FROM items WHERE id > 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
					path := filepath.Join(env.Dir, "source.db")
					db := testDB(t, path)
					mustExec(t, db, conformanceTable)
					mustExec(t, db, `CREATE INDEX items_cursor ON items (created_at, id)`)
					insertItems(t, db, rows)
					// Closed, because SQLite keeps the file descriptors of the
					// process's closed connections to a file open while another
					// connection of the process holds locks on it: they would
					// count as the source's.
					db.Close()
					tg := &connectortest.SourceTarget{
						Source: func(t testing.TB) connector.Source {
							return kit.Source(t, "path: source.db\n"+tc.yaml)
						},
						Conns: connectortest.OpenFiles,
					}
					if tc.add {
						tg.Add = func(t testing.TB, rows []record.Row) {
							db := testDB(t, path)
							defer db.Close()
							insertItems(t, db, rows)
						}
					}
					return tg
				},
			})
		})
	}
}

func TestSinkConformance(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, table string
		keyed             bool
	}{
		{"Append", "mode: append", `CREATE TABLE items (id INTEGER, name TEXT NOT NULL, amount DECIMAL_TEXT, created_at TIMESTAMP, note TEXT)`, false},
		{"Upsert", "mode: upsert\nkey: id", conformanceTable, true},
		{"Replace", "mode: replace", `CREATE TABLE items (id INTEGER, name TEXT NOT NULL, amount DECIMAL_TEXT, created_at TIMESTAMP, note TEXT)`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSink(t, connectortest.SinkHarness{
				New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
					path := filepath.Join(env.Dir, "sink.db")
					db := testDB(t, path)
					mustExec(t, db, tc.table)
					db.Close()
					return &connectortest.SinkTarget{
						Sink: func(t testing.TB) connector.Sink {
							return kit.Sink(t, "path: sink.db\ntable: items\n"+tc.yaml)
						},
						Stored: func(t testing.TB) []record.Row { return storedItems(t, path) },
						Conns:  connectortest.OpenFiles,
						// name is NOT NULL.
						Refuse: func(r record.Row) record.Row {
							r[connectortest.ColName] = nil
							return r
						},
						Keyed: tc.keyed,
					}
				},
			})
		})
	}
}

// storedItems reads the rows of items as another process would.
func storedItems(t testing.TB, path string) []record.Row {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, true, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, name, amount, created_at, note FROM items`)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	defer rows.Close()
	var out []record.Row
	for rows.Next() {
		vals := make([]sql.NullString, 5)
		if err := rows.Scan(&vals[0], &vals[1], &vals[2], &vals[3], &vals[4]); err != nil {
			t.Fatal(err)
		}
		texts := make([]*string, len(vals))
		for i := range vals {
			if vals[i].Valid {
				texts[i] = &vals[i].String
			}
		}
		r, err := connectortest.FromText(texts)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A Next whose context is cancelled while it reads a streaming (unordered)
// query gives up with the context's error: the query is cancelled with it,
// so a batch returned then left a reader whose next Next failed although
// its own context was live. Found by the conformance suite
// (Cancel/DuringNext); the trip context makes the cancellation land
// midway every time, and the loop gives the race its chances.
func TestStreamNextCancelledMidwayGivesUp(t *testing.T) {
	env := connectortest.NewEnv(t)
	env.Limits.BatchRows = 5 // a short read: the batch is done before the query hears of the cancellation
	db := testDB(t, filepath.Join(env.Dir, "source.db"))
	mustExec(t, db, conformanceTable)
	insertItems(t, db, connectortest.Rows(20))
	db.Close()
	src := kit.Source(t, "path: source.db\nquery: SELECT id, name, amount, created_at, note FROM items WHERE id > 0")
	for i := 0; i < 200; i++ {
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
