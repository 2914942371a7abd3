package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// The conformance suite against the PostgreSQL server. Each target is a
// schema of its own (see newPG); the components connect with the target's
// application_name, which is how the leak checks count their sessions.

// insertItems inserts rows of connectortest.Schema into items, as literals
// the server parses with each column's input function.
func (p *pg) insertItems(rows []record.Row) {
	p.t.Helper()
	var b strings.Builder
	b.WriteString("INSERT INTO items (id, name, amount, created_at, note) VALUES ")
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			if v == nil {
				b.WriteString("NULL")
				continue
			}
			b.WriteString("'" + strings.ReplaceAll(connectortest.Text(v), "'", "''") + "'")
		}
		b.WriteString(")")
	}
	p.exec(b.String())
}

// storedItems reads the rows of items, timestamps as UTC wall clock.
func (p *pg) storedItems() []record.Row {
	p.t.Helper()
	var out []record.Row
	for _, r := range p.rows(`SELECT id::text, name, amount::text, (created_at AT TIME ZONE 'UTC')::text, note FROM items`) {
		texts := make([]*string, len(r))
		for i, v := range r {
			if v != nil {
				s := v.(string)
				texts[i] = &s
			}
		}
		row, err := connectortest.FromText(texts)
		if err != nil {
			p.t.Fatalf("read back: %v", err)
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
		{"FullKeyRanges", "table: items\nparallel: 3", false},
		{"FullUnorderedQuery", "query: SELECT id, name, amount, created_at, note FROM items WHERE id > 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
					p := newPG(t)
					p.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2),
						created_at timestamptz NOT NULL, note text)`)
					p.exec(`CREATE INDEX items_cursor ON items (created_at, id)`)
					p.insertItems(rows)
					p.exec(`ANALYZE items`) // the statistics that a split into key ranges needs
					tg := &connectortest.SourceTarget{
						Source: func(t testing.TB) connector.Source { return buildSource(t, p.yaml(tc.yaml)) },
						Conns:  func(testing.TB) int { return p.backends() },
					}
					if tc.add {
						tg.Add = func(_ testing.TB, rows []record.Row) { p.insertItems(rows) }
					}
					return tg
				},
			})
		})
	}
}

func TestSinkConformance(t *testing.T) {
	const columns = `name varchar(64) NOT NULL, amount numeric(12,2), created_at timestamptz, note text`
	for _, tc := range []struct {
		name, yaml, table string
		keyed             bool
	}{
		{"Append", "mode: append", "CREATE TABLE items (id bigint, " + columns + ")", false},
		{"Upsert", "mode: upsert\nkey: id", "CREATE TABLE items (id bigint PRIMARY KEY, " + columns + ")", true},
		{"Replace", "mode: replace", "CREATE TABLE items (id bigint, " + columns + ")", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.RunSink(t, connectortest.SinkHarness{
				New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
					p := newPG(t)
					p.exec(tc.table)
					return &connectortest.SinkTarget{
						Sink:   func(t testing.TB) connector.Sink { return buildSink(t, p.yaml("table: items\n"+tc.yaml)) },
						Stored: func(testing.TB) []record.Row { return p.storedItems() },
						Conns:  func(testing.TB) int { return p.backends() },
						// name is varchar(64).
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

// A Next whose context is cancelled while it reads gives up with the
// context's error: the query, which outlives each Next, is cancelled with
// it, so a batch returned then left a reader whose next Next failed
// although its own context was live. Found by the conformance suite
// (Cancel/DuringNext); the trip context makes the cancellation land
// midway every time, and the loop gives the race its chances.
func TestNextCancelledMidwayGivesUp(t *testing.T) {
	p := newPG(t)
	p.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL, note text)`)
	p.insertItems(connectortest.Rows(20))
	env := connectortest.NewEnv(t)
	env.Limits.BatchRows = 5 // a short read: the batch is done before the query hears of the cancellation
	src := buildSource(t, p.yaml("table: items\nmode: incremental\ncursor: created_at\nkey: id"))
	for i := 0; i < 50; i++ {
		r, err := src.Open(context.Background(), env, connector.Task{Key: "items"}, nil)
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
