package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
)

func TestCheck(t *testing.T) {
	d := newTestDB(t)
	d.exec(`CREATE TABLE orders (id BIGINT PRIMARY KEY, at DATETIME(6), amount DECIMAL(10,2))`)
	dsn := "dsn: \"" + d.dsn + "\"\n"
	tests := []struct {
		name string
		comp func() connector.Checker
		want string // "" for ok, else a part of the error
	}{
		{"source ok", func() connector.Checker {
			return kit.Source(t, dsn+"table: orders\nmode: incremental\ncursor: at\nkey: id").(connector.Checker)
		}, ""},
		{"source missing column", func() connector.Checker {
			return kit.Source(t, dsn+"table: orders\nmode: incremental\ncursor: updated\nkey: id").(connector.Checker)
		}, "has no column updated"},
		{"source missing table", func() connector.Checker {
			return kit.Source(t, dsn+"table: nope").(connector.Checker)
		}, "does not exist"},
		{"lookup declared column missing", func() connector.Checker {
			return kit.Lookup(t, dsn+"table: orders\nkey: id\nschema: {id: int, region: string}").(connector.Checker)
		}, "has no column region"},
		{"sink ok", func() connector.Checker {
			return kit.Sink(t, dsn+"table: orders\nmode: upsert\nkey: [id]").(connector.Checker)
		}, ""},
		{"sink key missing", func() connector.Checker {
			return kit.Sink(t, dsn+"table: orders\nmode: upsert\nkey: [order_id]").(connector.Checker)
		}, "has no column order_id"},
		{"sink table to create", func() connector.Checker {
			return kit.Sink(t, dsn+"table: fresh\ncreate: true").(connector.Checker)
		}, ""},
		{"sink table missing", func() connector.Checker {
			return kit.Sink(t, dsn+"table: fresh").(connector.Checker)
		}, "does not exist"},
		{"server unreachable", func() connector.Checker {
			return kit.Source(t, "dsn: \"root@tcp(127.0.0.1:1)/x\"\ntable: orders").(connector.Checker)
		}, "127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.comp().Check(context.Background(), sqlkittest.Env(t))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
