package file

import (
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/backbone-etl/backbone/internal/connector"
)

// TestSpecExamples builds every component from its spec's example: the
// documentation must show a configuration that works.
func TestSpecExamples(t *testing.T) {
	r := registry()
	for _, kind := range []connector.Kind{connector.KindSource, connector.KindSink, connector.KindLookup} {
		for _, name := range r.Names(kind) {
			e, _ := r.Get(kind, name)
			t.Run(string(kind)+"/"+name, func(t *testing.T) {
				if e.Spec.Summary == "" || e.Spec.Doc == "" || e.Spec.Example == "" {
					t.Fatal("spec without summary, doc or example")
				}
				for _, f := range e.Spec.Fields {
					if f.Doc == "" {
						t.Errorf("field %s has no doc", f.Name)
					}
				}
				var doc map[string]any
				if err := yaml.Unmarshal([]byte(e.Spec.Example), &doc); err != nil {
					t.Fatalf("example: %v", err)
				}
				var cfg any
				switch kind {
				case connector.KindLookup:
					for _, v := range doc["lookups"].(map[string]any) {
						cfg = v
					}
				default:
					cfg = doc[string(kind)]
				}
				m, ok := cfg.(map[string]any)
				if !ok || m["type"] != name {
					t.Fatalf("example does not configure a %s %q: %v", kind, name, cfg)
				}
				delete(m, "type")
				out, err := yaml.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				p := params(t, string(out))
				switch kind {
				case connector.KindSource:
					_, err = e.Source(p)
				case connector.KindSink:
					_, err = e.Sink(p)
				case connector.KindLookup:
					_, err = e.Lookup(p)
				}
				if err != nil {
					t.Fatalf("example config %q: %v", out, err)
				}
			})
		}
	}
	want := map[connector.Kind][]string{
		connector.KindSource: {"csv", "jsonl", "parquet"},
		connector.KindSink:   {"csv", "jsonl", "parquet", "stdout"},
		connector.KindLookup: {"csv", "json", "jsonl"},
	}
	for k, names := range want {
		got := r.Names(k)
		if len(got) != len(names) {
			t.Errorf("%s: registered %v, want %v", k, got, names)
			continue
		}
		for i := range names {
			if got[i] != names[i] {
				t.Errorf("%s: registered %v, want %v", k, got, names)
			}
		}
	}
}
