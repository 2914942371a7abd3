package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestParseCheck(t *testing.T) {
	cols := []copyColumn{{name: "qty", ftype: record.Int}, {name: "price", ftype: record.Decimal}, {name: "Odd Name", ftype: record.Int},
		{name: "f", ftype: record.Float}, {name: "s", ftype: record.String}, {name: "rounded", ftype: record.Decimal, scaled: true}}
	oids := []uint32{oidInt4, oidNumeric, oidInt8, oidFloat8, oidText, oidNumeric}
	tests := []struct {
		def  string
		want string // the comparisons judged, "" when the constraint is the server's
	}{
		{"CHECK ((qty <= 100))", "qty <= 100"},
		{"CHECK (((price >= 0.01) AND (price < '1000000'::numeric)))", "price >= 0.01, price < 1000000"},
		{"CHECK (((qty >= '-5'::integer) AND (qty <= 5)))", "qty >= -5, qty <= 5"},
		{"CHECK ((qty <> 3)) NOT VALID", "qty <> 3"},
		{"CHECK ((0 < qty))", "qty > 0"},
		{`CHECK (("Odd Name" > 0))`, "Odd Name > 0"},
		{"CHECK ((price > (0)::numeric))", "price > 0"},
		{"CHECK ((qty < price))", ""},                             // two columns
		{"CHECK (((qty > 0) OR (qty IS NULL)))", ""},              // OR
		{"CHECK ((f > ('-1.5'::numeric)::double precision))", ""}, // a float column
		{"CHECK ((s <> ''::text))", ""},                           // text
		{"CHECK ((rounded > 0.005))", ""},                         // numeric(p, s) rounds first
		{"CHECK ((qty > abs(price)))", ""},                        // a function
		{"CHECK ((missing > 0))", ""},                             // a column not written
		{"CHECK ((qty IS NOT NULL))", ""},                         //
		{"CHECK (((qty > 0) AND (char_length(s) < 10)))", ""},     // one part not judged: none is
		{"CHECK ((qty <= (100 + 1)))", ""},                        // arithmetic
		{"CHECK ((qty = ANY (ARRAY[1, 2])))", ""},                 //
		{"CHECK (((qty)::numeric < 1.5))", "qty < 1.5"},           // exact
		{"CHECK (((price)::integer >= 1))", ""},                   // the cast rounds
		{"CHECK ((qty > '1.5'::integer))", ""},                    // the cast rounds
	}
	for _, tc := range tests {
		ch, ok := parseCheck("c", tc.def, cols, oids)
		var got []string
		for _, c := range ch.conds {
			got = append(got, c.col+" "+c.op+" "+c.lit.String())
		}
		if g := strings.Join(got, ", "); ok != (tc.want != "") || g != tc.want {
			t.Errorf("parseCheck(%q) = %q, %v; want %q", tc.def, g, ok, tc.want)
		}
	}
}

func TestBrokenCheck(t *testing.T) {
	cols := []copyColumn{{name: "qty", ftype: record.Int}, {name: "price", ftype: record.Decimal}}
	oids := []uint32{oidInt4, oidNumeric}
	a, _ := parseCheck("a", "CHECK (((qty >= 0) AND (qty <= 100)))", cols, oids)
	b, _ := parseCheck("b", "CHECK ((price > 0))", cols, oids)
	checks := []check{a, b}
	for _, tc := range []struct {
		row  record.Row
		want string
	}{
		{record.Row{int64(0), record.MustDec("0.01")}, ""},
		{record.Row{int64(100), nil}, ""}, // NULL: unknown, which passes
		{record.Row{nil, nil}, ""},
		{record.Row{int64(101), record.MustDec("1")}, "a"},
		{record.Row{int64(-1), nil}, "a"},
		{record.Row{int64(5), record.MustDec("0")}, "b"},
		{record.Row{nil, record.MustDec("-0.001")}, "b"},
	} {
		ch, _, _ := broken(checks, tc.row)
		got := ""
		if ch != nil {
			got = ch.name
		}
		if got != tc.want {
			t.Errorf("broken(%v) = %q, want %q", tc.row, got, tc.want)
		}
	}
}

// The table's simple CHECK constraints refuse rows before they are sent,
// with the constraint's name; a table with a trigger, or a constraint the
// writer does not judge, leaves them to the server, which refuses the
// same rows.
func TestSinkJudgesSimpleChecks(t *testing.T) {
	for _, tc := range []struct {
		name, ddl string
		atWrite   bool
	}{
		{"judged", "CREATE TABLE kv (k text, n integer CHECK (n BETWEEN 0 AND 100), v text)", true},
		{"with a trigger", `CREATE TABLE kv (k text, n integer CHECK (n BETWEEN 0 AND 100), v text);
			CREATE FUNCTION kv_same() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
			CREATE TRIGGER kv_same BEFORE INSERT ON kv FOR EACH ROW EXECUTE FUNCTION kv_same()`, false},
		{"not judged", "CREATE TABLE kv (k text, n integer CHECK (n >= 0 AND n <= length(k) * 100), v text)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t)
			p.exec(tc.ddl)
			w := openWriter(t, testEnv(t), buildSink(t, p.yaml("table: kv")), kv)
			b := &record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}, {"b", int64(101), "y"}, {"c", nil, "z"}, {"d", int64(-1), "w"}}}
			n, err := w.Write(context.Background(), b)
			atWrite := 0
			if be, ok := err.(*connector.BatchError); ok {
				atWrite = len(be.Rows)
			} else if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 2, false: 0}[tc.atWrite]; atWrite != want || n != 4-atWrite {
				t.Errorf("Write: %d rows on their way, %d refused; want %d refused", n, atWrite, want)
			}
			n, refused := 4-atWrite, map[int]string{}
			if be, ok := err.(*connector.BatchError); ok {
				for _, re := range be.Rows {
					refused[re.Index] = re.Err.Error()
				}
			}
			late, err := w.(connector.Settler).Settle(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, rf := range late {
				for _, re := range rf.Rows {
					refused[re.Index] = re.Err.Error()
					n--
				}
			}
			if n != 2 || len(refused) != 2 {
				t.Fatalf("%d rows written, refused %v; want rows 1 and 3 refused", n, refused)
			}
			for _, i := range []int{1, 3} {
				if !strings.Contains(refused[i], `new row for relation "kv" violates check constraint "kv_`) {
					t.Errorf("row %d: %q", i, refused[i])
				}
			}
			commit(t, w)
			if got := p.one("SELECT string_agg(k, '' ORDER BY k) FROM kv"); got != "ac" {
				t.Errorf("rows %v stored, want a and c", got)
			}
		})
	}
}
