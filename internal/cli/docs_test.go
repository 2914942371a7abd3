package cli

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/reference.md")

// TestReferenceIsCurrent fails when the committed reference drifts from the
// specs; `go run ./cmd/backbone docs -o docs/reference.md` (or -update)
// brings it back.
func TestReferenceIsCurrent(t *testing.T) {
	r := connector.NewRegistry()
	builtin.Register(r)
	got := RenderReference(r)
	const path = "../../docs/reference.md"
	if *updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("docs/reference.md is stale: run `go run ./cmd/backbone docs -o docs/reference.md`")
	}
	// Every component is documented with a summary and an example.
	for _, kind := range []connector.Kind{connector.KindSource, connector.KindStep, connector.KindLookup, connector.KindSink} {
		for _, name := range r.Names(kind) {
			e, _ := r.Get(kind, name)
			if e.Spec.Summary == "" || e.Spec.Example == "" {
				t.Errorf("%s %s: spec lacks a summary or an example", kind, name)
			}
			if !strings.Contains(string(got), "### "+string(kind)+" `"+name+"`") {
				t.Errorf("%s %s missing from the reference", kind, name)
			}
		}
	}
}
