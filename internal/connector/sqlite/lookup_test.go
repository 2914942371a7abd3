package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestLookupConfigErrors(t *testing.T) {
	tests := []struct{ Name, YAML, Want string }{
		{"no key", "path: a.db\ntable: t", "key is required"},
		{"both table and query", "path: a.db\ntable: t\nquery: select 1\nkey: id", "exclude each other"},
		{"key not in schema", "path: a.db\ntable: t\nkey: id\nschema: {name: string}", `key field "id" is not in the schema`},
	}
	kit.ConfigErrors(t, connector.KindLookup, tests, nil)
}

func TestLookupMultiColumnKey(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "ref.db"))
	mustExec(t, db, `CREATE TABLE rates (currency TEXT, day DATE, rate NUMERIC, note TEXT)`)
	mustExec(t, db, `INSERT INTO rates VALUES ('EUR', '2024-01-01', '1.10', 'a'), ('EUR', '2024-01-02', '1.11', 'b'),
		('USD', '2024-01-01', 1, 'c'), ('GBP', 'someday', 1.3, 'bad date')`)
	day1, _ := record.ParseDate("2024-01-01")
	day2, _ := record.ParseDate("2024-01-02")
	tests := []struct {
		name   string
		yaml   string
		key    []any
		want   record.Row
		wantOK bool
	}{
		{"table, typed key", "table: rates\nkey: [currency, day]", []any{"EUR", day2}, record.Row{"EUR", day2, record.MustDec("1.11"), "b"}, true},
		{"table, key as text", "table: rates\nkey: [currency, day]", []any{"EUR", "2024-01-01"}, record.Row{"EUR", day1, record.MustDec("1.1"), "a"}, true},
		{"miss", "table: rates\nkey: [currency, day]", []any{"EUR", "2024-01-03"}, nil, false},
		{"row that does not convert is left out", "table: rates\nkey: [currency, day]", []any{"GBP", "someday"}, nil, false},
		{"query with declared schema", "query: SELECT currency, day, rate FROM rates WHERE currency = 'USD'\nkey: [currency, day]\nschema: {currency: string, day: string, rate: float}",
			[]any{"USD", "2024-01-01"}, record.Row{"USD", "2024-01-01", 1.0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := kit.Lookup(t, "path: ref.db\n"+tc.yaml).Open(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			if diff := cmp.Diff([]string{"currency", "day"}, tbl.Keys()); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			row, ok, err := tbl.Get(context.Background(), tc.key)
			if err != nil || ok != tc.wantOK {
				t.Fatalf("Get(%v): ok=%v err=%v, want ok=%v", tc.key, ok, err, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookupSchemer(t *testing.T) {
	if _, ok := kit.Lookup(t, "path: a.db\ntable: t\nkey: id").(connector.Schemer); ok {
		t.Error("a lookup without a declared schema implements Schemer")
	}
	l, ok := kit.Lookup(t, "path: a.db\ntable: t\nkey: id\nschema: {id: int, name: string}").(connector.Schemer)
	if !ok || l.Schema().String() != "id int, name string" {
		t.Errorf("a lookup with a declared schema: Schemer %v", ok)
	}
}

func TestLookupMissingDatabaseIsUnavailable(t *testing.T) {
	env := sqlkittest.Env(t)
	_, err := kit.Lookup(t, "path: nope.db\ntable: t\nkey: id").Open(context.Background(), env)
	if !errors.Is(err, connector.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
}

func TestLookupLoadsOnlyTheFieldsRead(t *testing.T) {
	env := sqlkittest.Env(t)
	db := testDB(t, dbPath(env, "ref.db"))
	mustExec(t, db, `CREATE TABLE rates (currency TEXT, day DATE, rate NUMERIC, note TEXT)`)
	mustExec(t, db, `INSERT INTO rates VALUES ('EUR', '2024-01-01', '1.10', 'a'), ('USD', '2024-01-01', 1, 'c')`)
	day1, _ := record.ParseDate("2024-01-01")
	sqlkittest.LoadsOnly(t, kit.Lookup(t, "path: ref.db\ntable: rates\nkey: [currency, day]"), env, []string{"note"},
		[]any{"EUR", day1}, record.Row{"EUR", day1, nil, "a"})
}
