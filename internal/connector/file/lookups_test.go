package file

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

func openLookup(t testing.TB, env *connector.Env, yaml string) (connector.Table, error) {
	t.Helper()
	e, ok := registry().Get(connector.KindLookup, typeOf(t, yaml))
	if !ok {
		t.Fatalf("no lookup for %q", yaml)
	}
	l, err := e.Lookup(params(t, yaml))
	if err != nil {
		t.Fatalf("lookup %q: %v", yaml, err)
	}
	return l.Open(context.Background(), env)
}

func TestLookups(t *testing.T) {
	type probe struct {
		key []any
		row record.Row // nil: not found
	}
	tests := []struct {
		name, file, content, yaml string
		schema                    string
		probes                    []probe
	}{
		{
			name: "csv typed, key matches across types", file: "customers.csv",
			content: "customer_id,region,tier\n1,EU,gold\n2,US,\n1,EU,platinum\n",
			yaml:    "type: csv\npath: customers.csv\nkey: customer_id\nschema: { customer_id: int, region: string, tier: string }",
			schema:  "customer_id int, region string, tier string",
			probes: []probe{
				{key: []any{int64(1)}, row: record.Row{int64(1), "EU", "platinum"}},
				{key: []any{"2"}, row: record.Row{int64(2), "US", nil}},
				{key: []any{int64(3)}},
			},
		},
		{
			name: "csv strings, two keys, semicolons, no header", file: "p.csv",
			content: "a;x;1\nb;y;2\n",
			yaml:    "type: csv\npath: p.csv\nkey: [k1, k2]\nheader: false\ndelimiter: ';'\nschema: { k1: string, k2: string, v: int }",
			schema:  "k1 string, k2 string, v int",
			probes: []probe{
				{key: []any{"b", "y"}, row: record.Row{"b", "y", int64(2)}},
				{key: []any{"a", "y"}},
			},
		},
		{
			name: "csv without schema", file: "s.csv",
			content: "code,name\nEUR,Euro\n",
			yaml:    "type: csv\npath: s.csv\nkey: code",
			schema:  "code string, name string",
			probes:  []probe{{key: []any{"EUR"}, row: record.Row{"EUR", "Euro"}}},
		},
		{
			name: "jsonl inferred", file: "p.jsonl",
			content: `{"sku": "A1", "price": 10, "w": 1.5, "tags": ["x"], "on": true}` + "\n\n" + `{"sku": "B2", "price": 12, "w": 2, "extra": null, "mixed": 1}` + "\n" + `{"sku": "C3", "mixed": "one"}` + "\n",
			yaml:    "type: jsonl\npath: p.jsonl\nkey: sku",
			schema:  "sku string, price int, w float, tags json, on bool, extra string, mixed any",
			probes: []probe{
				{key: []any{"A1"}, row: record.Row{"A1", int64(10), 1.5, []any{"x"}, true, nil, nil}},
				{key: []any{"B2"}, row: record.Row{"B2", int64(12), 2.0, nil, nil, nil, int64(1)}},
				{key: []any{"C3"}, row: record.Row{"C3", nil, nil, nil, nil, nil, "one"}},
			},
		},
		{
			name: "jsonl with schema", file: "p.jsonl",
			content: `{"sku": 7, "price": 10.50, "ignored": {}}` + "\n",
			yaml:    "type: jsonl\npath: p.jsonl\nkey: sku\nschema: { sku: string, price: decimal }",
			schema:  "sku string, price decimal",
			probes:  []probe{{key: []any{"7"}, row: record.Row{"7", dec("10.50")}}},
		},
		{
			name: "json object of objects", file: "fx.json",
			content: `{"EUR": {"rate": 1.08}, "USD": {"rate": 1, "currency": "ignored"}}`,
			yaml:    "type: json\npath: fx.json\nkey: currency\nschema: { currency: string, rate: decimal }",
			schema:  "currency string, rate decimal",
			probes: []probe{
				{key: []any{"EUR"}, row: record.Row{"EUR", dec("1.08")}},
				{key: []any{"USD"}, row: record.Row{"USD", dec("1")}},
				{key: []any{"GBP"}},
			},
		},
		{
			name: "json object of objects inferred", file: "fx.json",
			content: `{"EUR": {"rate": 1.08, "meta": {"src": "ecb"}}, "USD": {"rate": 1}}`,
			yaml:    "type: json\npath: fx.json\nkey: currency",
			schema:  "currency string, rate float, meta json",
			probes: []probe{
				{key: []any{"EUR"}, row: record.Row{"EUR", 1.08, map[string]any{"src": "ecb"}}},
				{key: []any{"USD"}, row: record.Row{"USD", 1.0, nil}},
			},
		},
		{
			name: "json array of objects", file: "a.json",
			content: "[\n {\"id\": 1, \"name\": \"one\"},\n {\"id\": 2, \"name\": \"two\"}\n]\n",
			yaml:    "type: json\npath: a.json\nkey: id",
			schema:  "id int, name string",
			probes:  []probe{{key: []any{int64(2)}, row: record.Row{int64(2), "two"}}, {key: []any{"1"}, row: record.Row{int64(1), "one"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			writeFile(t, env, tc.file, tc.content)
			tab, err := openLookup(t, env, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			defer tab.Close()
			if got := tab.Schema().String(); got != tc.schema {
				t.Errorf("schema %q, want %q", got, tc.schema)
			}
			for _, p := range tc.probes {
				row, ok, err := tab.Get(context.Background(), p.key)
				if err != nil {
					t.Fatal(err)
				}
				if ok != (p.row != nil) {
					t.Errorf("key %v: found %v", p.key, ok)
					continue
				}
				if diff := cmp.Diff(p.row, row, cmpOpts...); diff != "" {
					t.Errorf("key %v (-want +got):\n%s", p.key, diff)
				}
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct{ name, file, content, yaml, want string }{
		{name: "csv malformed line", file: "c.csv", content: "id,v\n1,a\n2\n", yaml: "type: csv\npath: c.csv\nkey: id", want: "csv: c.csv:3: expected 2 fields, got 1"},
		{name: "csv bad value", file: "c.csv", content: "id,v\n1,a\nx,b\n", yaml: "type: csv\npath: c.csv\nkey: id\nschema: { id: int, v: string }", want: `csv: c.csv:3: field "id": value "x" is not a valid int`},
		{name: "csv key not in header", file: "c.csv", content: "id,v\n", yaml: "type: csv\npath: c.csv\nkey: nope", want: `key field "nope" is not among the fields`},
		{name: "jsonl malformed", file: "j.jsonl", content: "{\"a\": 1}\n{\"a\": }\n", yaml: "type: jsonl\npath: j.jsonl\nkey: a", want: "jsonl: j.jsonl:2: unexpected '}' at column 7"},
		{name: "jsonl not an object", file: "j.jsonl", content: "[1]\n", yaml: "type: jsonl\npath: j.jsonl\nkey: a", want: "jsonl: j.jsonl:1: not a JSON object"},
		{name: "jsonl bad value", file: "j.jsonl", content: "{\"a\": \"x\"}\n", yaml: "type: jsonl\npath: j.jsonl\nkey: a\nschema: { a: int }", want: `jsonl: j.jsonl:1: field "a": value "x" is not a valid int`},
		{name: "json syntax", file: "d.json", content: "[\n {\"a\": 1},\n {\"a\" 2}\n]", yaml: "type: json\npath: d.json\nkey: a", want: "json: d.json:3:7: want ':' after an object key"},
		{name: "json scalar", file: "d.json", content: "42", yaml: "type: json\npath: d.json\nkey: a", want: "json: d.json:1:1: want an array of objects or an object of objects"},
		{name: "json two keys for an object of objects", file: "d.json", content: `{"a": {}}`, yaml: "type: json\npath: d.json\nkey: [a, b]", want: "key lists 2 fields"},
		{name: "json trailing", file: "d.json", content: `[] x`, yaml: "type: json\npath: d.json\nkey: a", want: "json: d.json:1:4: unexpected 'x' after the value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			writeFile(t, env, tc.file, tc.content)
			_, err := openLookup(t, env, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("missing file is unavailable", func(t *testing.T) {
		for _, yaml := range []string{"type: csv\npath: none.csv\nkey: a", "type: jsonl\npath: none.jsonl\nkey: a", "type: json\npath: none.json\nkey: a"} {
			_, err := openLookup(t, testEnv(t), yaml)
			if !errors.Is(err, connector.ErrUnavailable) {
				t.Errorf("%s: err = %v, want ErrUnavailable", yaml, err)
			}
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, tc := range []struct{ yaml, want string }{
			{"type: csv\npath: a.csv", "key is required"},
			{"type: json\npath: a.json\nkey: b\nschema: { a: int }", `key field "b" is not in the schema (a)`},
			{"type: jsonl\nkey: a", "path is required"},
		} {
			e, _ := registry().Get(connector.KindLookup, typeOf(t, tc.yaml))
			_, err := e.Lookup(params(t, tc.yaml))
			var pe *connector.PosError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: err = %v, want a *PosError containing %q", tc.yaml, err, tc.want)
			}
		}
	})
}

// A lookup loaded for some fields keeps those and its keys, converts
// nothing else (a value of an unread field that would not convert does not
// fail the load), and says which fields it left out.
func TestLookupsLoadOnlyTheFieldsRead(t *testing.T) {
	for _, tc := range []struct{ name, file, content, yaml string }{
		{"csv", "c.csv", "id,name,region,score\n1,Ann,emea,x\n2,Bob,apac,7\n",
			"type: csv\npath: c.csv\nkey: id\nschema: {id: int, name: string, region: string, score: int}"},
		{"csv without schema", "c.csv", "id,name,region,score\n1,Ann,emea,x\n2,Bob,apac,7\n",
			"type: csv\npath: c.csv\nkey: id"},
		{"jsonl", "c.jsonl", `{"id": 1, "name": "Ann", "region": "emea", "score": "x"}` + "\n" + `{"id": 2, "name": "Bob", "region": "apac", "score": 7}` + "\n",
			"type: jsonl\npath: c.jsonl\nkey: id\nschema: {id: int, name: string, region: string, score: int}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			writeFile(t, env, tc.file, tc.content)
			e, _ := registry().Get(connector.KindLookup, typeOf(t, tc.yaml))
			l, err := e.Lookup(params(t, tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			fl, ok := l.(connector.FieldLoader)
			if !ok {
				t.Fatalf("%T does not load fields apart", l)
			}
			if tc.name != "csv without schema" { // there score is text, and converts
				if _, err := l.Open(context.Background(), env); err == nil || !strings.Contains(err.Error(), "score") {
					t.Errorf("a whole load of a bad score: %v, want its field named", err)
				}
			}
			tab, err := fl.OpenFields(context.Background(), env, []string{"region"})
			if err != nil {
				t.Fatal(err)
			}
			defer tab.Close()
			ix := connector.IndexOf(tab)
			if ix == nil {
				t.Fatalf("%T keeps no index", tab)
			}
			var loaded []string
			for i, f := range tab.Schema().Fields() {
				if ix.Loaded(i) {
					loaded = append(loaded, f.Name)
				}
			}
			if d := cmp.Diff([]string{"id", "region"}, loaded); d != "" {
				t.Errorf("loaded fields (-want +got):\n%s", d)
			}
			p, ok, err := ix.Pos([]any{int64(2)})
			if !ok || err != nil {
				t.Fatalf("key 2: %v, %v", ok, err)
			}
			if got := []any{ix.Field(p, 0), ix.Field(p, 1), ix.Field(p, 2), ix.Field(p, 3)}; !cmp.Equal(got, []any{int64(2), nil, "apac", nil}) &&
				!cmp.Equal(got, []any{"2", nil, "apac", nil}) {
				t.Errorf("row 2: %#v", got)
			}
		})
	}
}
