package expr

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backbone-etl/backbone/internal/connector"
)

func TestUsesLookups(t *testing.T) {
	type use struct {
		fields []string
		whole  bool
	}
	for _, tc := range []struct {
		src  string
		want map[string]use // by lookup
	}{
		{`qty * lookup("fx", currency).rate`, map[string]use{"fx": {fields: []string{"rate"}}, "c": {}}},
		{`lookup("fx", currency)?.rate ?? 1`, map[string]use{"fx": {fields: []string{"rate"}}}},
		{`lookup("fx", currency)["rate"] + lookup("fx", "EUR").base`, map[string]use{"fx": {fields: []string{"base", "rate"}}}},
		{`lookup("c", id).name + lookup("fx", cur).rate`, map[string]use{"c": {fields: []string{"name"}}, "fx": {fields: []string{"rate"}}}},
		// The row itself, kept or returned: read whole.
		{`let r = lookup("c", id); r.name`, map[string]use{"c": {whole: true}, "fx": {}}},
		{`lookup("c", id)`, map[string]use{"c": {whole: true}}},
		{`lookup("c", id)[field_name]`, map[string]use{"c": {whole: true}}},
		{`lookup("c", id).name + lookup("c", id2).region`, map[string]use{"c": {fields: []string{"name", "region"}}}},
		// A lookup named by anything but a literal may be any lookup.
		{`lookup(which, id).name`, map[string]use{"c": {whole: true}, "fx": {whole: true}}},
		{`id | lookup("c")`, map[string]use{"c": {whole: true}, "fx": {whole: true}}},
		// What does not parse is reported by its compile; meanwhile nothing is left out.
		{`lookup("c", id).name +`, map[string]use{"c": {whole: true}}},
		// A field named like the function is not a call.
		{`lookup + 1`, map[string]use{"c": {}}},
	} {
		u := &connector.LookupUses{}
		UsesLookups(connector.Expr{Src: tc.src}, u)
		for name, want := range tc.want {
			fields, whole := u.Of(name)
			if d := cmp.Diff(want, use{fields, whole}, cmp.AllowUnexported(use{}), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("%s: lookup %s (-want +got):\n%s", tc.src, name, d)
			}
		}
	}
}
