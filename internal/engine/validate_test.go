package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
)

func TestValidate(t *testing.T) {
	const head = "source: {type: csv, path: in.csv, schema: {id: int, qty: int, name: string, price: decimal}}\n"
	for _, tc := range []struct {
		name string
		body string // after head: steps, lookups, sink
		want []string
	}{
		{name: "valid", body: "steps:\n  - map: {total: qty * price}\nsink: {type: sqlite, path: out.db, table: t, mode: upsert, key: [id]}\n"},
		{
			name: "every entry of a map and every check of a validate",
			body: "steps:\n" +
				"  - map:\n" +
				"      a: qty * name\n" +
				"      b: nme\n" +
				"      c: a + 1\n" + // a is set, to something unknown: no error of its own
				"  - validate:\n" +
				"      - check: prise > 0\n" +
				"      - check: qty\n" +
				"sink: {type: jsonl, path: out.jsonl}\n",
			want: []string{
				"p.yaml:4:14: expression `qty * name`: invalid operation: int * string",
				`p.yaml:5:10: expression ` + "`nme`" + `: unknown field "nme" (did you mean "name"?)`,
				`p.yaml:8:16: expression ` + "`prise > 0`" + `: unknown field "prise" (did you mean "price"?)`,
				"p.yaml:9:16: validate: the check `qty` is of type int, want bool",
			},
		},
		{
			name: "a field removed upstream",
			body: "steps:\n  - drop: [price]\n  - rename: {qty: quantity}\n  - map: {total: qty * price}\nsink: {type: jsonl, path: out.jsonl}\n",
			want: []string{
				"p.yaml:5:18: expression `qty * price`: unknown field \"qty\" (fields: id, quantity, name); rename[2] (line 4) renamed it to \"quantity\" before map[3]",
			},
		},
		{
			name: "a filter no record passes",
			body: "steps:\n  - filter: 1 > 2\n  - map: {total: qty * price}\nsink: {type: jsonl, path: out.jsonl}\n",
			want: []string{"p.yaml:3:13: filter[1]: the condition `1 > 2` is always false: every record is dropped; map[2] and the sink are unreachable"},
		},
		{
			name: "a check no record passes",
			body: "steps:\n  - validate: [{check: \"1 == 2 || false\"}]\nsink: {type: jsonl, path: out.jsonl}\n",
			want: []string{"p.yaml:3:25: validate[1]: the check `1 == 2 || false` is always false: every record is rejected; the sink is unreachable"},
		},
		{
			name: "conditions that read run_time are not constant",
			body: "steps:\n  - filter: run_time > parse_time(\"2100-01-01T00:00:00Z\", \"rfc3339\")\nsink: {type: jsonl, path: out.jsonl}\n",
		},
		{
			name: "sink key not in the output",
			body: "steps:\n  - select: [qty, price]\nsink: {type: sqlite, path: out.db, table: t, mode: upsert, key: [id]}\n",
			want: []string{`p.yaml:4:65: sink key field "id" is not in the output (fields: qty int, price decimal)`},
		},
		{
			name: "undeclared lookups, in enrich and in an expression",
			body: "lookups:\n  customers: {type: csv, path: missing.csv, key: id, schema: {id: int, region: string}}\n" +
				"steps:\n  - enrich: {lookup: customer, on: id}\n  - map:\n      r: lookup(\"custmers\", id).region\nsink: {type: jsonl, path: out.jsonl}\n",
			want: []string{
				`p.yaml:5:22: enrich: lookup "customer" is not declared (did you mean "customers"? declared: customers)`,
				`p.yaml:7:17: expression ` + "`lookup(\"custmers\", id).region`" + `: lookup "custmers" is not declared (did you mean "customers"?)`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := loadPipeline(t, dir, head+tc.body)
			v, err := engine.Validate(context.Background(), p, engine.ValidateOptions{})
			var got []string
			var errs config.Errors
			switch {
			case errors.As(err, &errs):
				for _, e := range errs {
					got = append(got, strings.TrimPrefix(e.Error(), filepath.Dir(p.File)+string(filepath.Separator)))
				}
			case err != nil:
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
			if !v.Checked {
				t.Error("steps not checked")
			}
		})
	}
}

// A lookup that declares its schema is not opened unless Connect: a
// missing file is then an unreachable input, not a mistake in the file.
func TestValidateConnectOpensLookups(t *testing.T) {
	p := loadPipeline(t, t.TempDir(), "source: {type: csv, path: in.csv, schema: {id: int}}\n"+
		"lookups:\n  c: {type: csv, path: missing.csv, key: id, schema: {id: int, region: string}}\n"+
		"steps:\n  - enrich: {lookup: c, on: id}\nsink: {type: jsonl, path: out.jsonl}\n")
	if _, err := engine.Validate(context.Background(), p, engine.ValidateOptions{}); err != nil {
		t.Fatalf("offline: %v", err)
	}
	_, err := engine.Validate(context.Background(), p, engine.ValidateOptions{Connect: true})
	if !errors.Is(err, connector.ErrUnavailable) || !strings.Contains(err.Error(), "missing.csv") {
		t.Fatalf("with Connect: %v, want the missing lookup file, unavailable", err)
	}
}

func TestValidateWithoutSchemaOrInput(t *testing.T) {
	p := loadPipeline(t, t.TempDir(), "source: {type: csv, path: \"none/*.csv\"}\nsteps:\n  - filter: nope\nsink: {type: jsonl, path: out.jsonl}\n")
	v, err := engine.Validate(context.Background(), p, engine.ValidateOptions{})
	if err != nil || v.Checked {
		t.Fatalf("Validate = %+v, %v; want unchecked steps and no error", v, err)
	}
}
