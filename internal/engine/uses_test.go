package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/engine"
)

// The lookups load only the fields the steps read, and every field a step
// reads is there: through enrich, lookup(…).field in a map, a check and a
// filter, and a row read whole. The unread field `note` holds text that
// would not convert to its int: a whole load fails, a load of what is read
// does not.
func TestLookupsLoadWhatTheStepsRead(t *testing.T) {
	for _, tc := range []struct {
		name, steps string
		want        string // the output, or the error
	}{
		{
			name: "fields read by name",
			steps: "  - filter: lookup(\"c\", id).score > 1\n" +
				"  - enrich: {lookup: c, on: id, fields: [region]}\n" +
				"  - map: {who: 'lookup(\"c\", id)?.name'}\n" +
				"  - validate: [{check: 'lookup(\"c\", id).tier != \"\"'}]\n",
			want: `{"id":2,"region":"apac","who":"Bob"}` + "\n" + `{"id":3,"region":"emea","who":"Cy"}` + "\n",
		},
		{
			name:  "a row read whole loads every field",
			steps: "  - map: {who: 'let r = lookup(\"c\", id); r.name'}\n",
			want:  `lookup c: csv: c.csv:2: field "note"`,
		},
		{
			name:  "enrich without fields adds every field",
			steps: "  - enrich: {lookup: c, on: id}\n",
			want:  `lookup c: csv: c.csv:2: field "note"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{
				"in.csv": "id\n1\n2\n3\n",
				"c.csv":  "id,name,region,tier,score,note\n1,Ann,emea,gold,1,x\n2,Bob,apac,silver,2,\n3,Cy,emea,gold,3,\n",
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := loadPipeline(t, dir, "name: p\nsource: {type: csv, path: in.csv, schema: {id: int}}\n"+
				"lookups:\n  c: {type: csv, path: c.csv, key: id, schema: {id: int, name: string, region: string, tier: string, score: int, note: int}}\n"+
				"steps:\n"+tc.steps+"sink: {type: jsonl, path: out.jsonl}\n")
			_, err := engine.Run(context.Background(), p, engine.Options{Store: openStore(t)})
			if strings.HasPrefix(tc.want, "lookup ") {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("run: %v, want %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, string(got)); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
		})
	}
}
