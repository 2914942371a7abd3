package sqlite

import (
	"context"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
)

func TestCheck(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "w.db"))
	mustExec(t, db, `CREATE TABLE orders (id INTEGER PRIMARY KEY, at TEXT, amount TEXT)`)
	tests := []struct {
		name string
		comp func() connector.Checker
		want string // "" for ok, else a part of the error
	}{
		{"source ok", func() connector.Checker {
			return kit.Source(t, "path: w.db\ntable: orders\nmode: incremental\ncursor: at\nkey: id").(connector.Checker)
		}, ""},
		{"source missing column", func() connector.Checker {
			return kit.Source(t, "path: w.db\ntable: orders\nmode: incremental\ncursor: updated\nkey: id").(connector.Checker)
		}, "has no column updated"},
		{"source missing table", func() connector.Checker {
			return kit.Source(t, "path: w.db\ntable: nope").(connector.Checker)
		}, "no such table"},
		{"source missing database", func() connector.Checker {
			return kit.Source(t, "path: gone.db\ntable: orders").(connector.Checker)
		}, "gone.db"},
		{"lookup declared column missing", func() connector.Checker {
			return kit.Lookup(t, "path: w.db\ntable: orders\nkey: id\nschema: {id: int, region: string}").(connector.Checker)
		}, "has no column region"},
		{"sink ok", func() connector.Checker {
			return kit.Sink(t, "path: w.db\ntable: orders\nmode: upsert\nkey: [id]").(connector.Checker)
		}, ""},
		{"sink key missing", func() connector.Checker {
			return kit.Sink(t, "path: w.db\ntable: orders\nmode: upsert\nkey: [order_id]").(connector.Checker)
		}, "has no column order_id"},
		{"sink table to create", func() connector.Checker {
			return kit.Sink(t, "path: w.db\ntable: fresh\ncreate: true").(connector.Checker)
		}, ""},
		{"sink database missing without create", func() connector.Checker {
			return kit.Sink(t, "path: new.db\ntable: fresh").(connector.Checker)
		}, "set create: true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.comp().Check(context.Background(), env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
