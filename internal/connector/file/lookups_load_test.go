package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Loading a CSV lookup parses, decodes and indexes at once: a bad line far
// into the file still fails the load with its line, a cancelled load stops
// with the context's error, and every row is there otherwise; no goroutine
// of a load stays behind.
func TestCSVLookupLoadsAcrossBatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := testEnv(t)
	env.Limits.BatchRows = 50
	good := customersCSV(1000)
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(good)
	tbl, err := openLookup(t, env, customersLookup)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{1, 500, 1000} {
		row, ok, err := tbl.Get(context.Background(), []any{k})
		if err != nil || !ok || row[1] != fmt.Sprint("Customer ", k) {
			t.Errorf("Get(%d) = %v, %v, %v", k, row, ok, err)
		}
	}

	lines := strings.SplitAfter(good, "\n")
	lines[900] = "x900,Customer 900,emea,gold\n" // line 901 of the file
	write(strings.Join(lines, ""))
	if _, err := openLookup(t, env, customersLookup); err == nil || !strings.Contains(err.Error(), "customers.csv:901:") {
		t.Errorf("a bad line far into the file: error %v, want it with its line", err)
	}

	write(good)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e, _ := registry().Get(connector.KindLookup, typeOf(t, customersLookup))
	l, err := e.Lookup(params(t, customersLookup))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, env); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled load: error %v, want context.Canceled", err)
	}
}
