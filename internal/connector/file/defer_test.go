package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/record"
)

// TestDeferredDecodeMatchesImmediate reads one file with conversion done in
// Next and with conversion left to Batch.Decode, run after later batches
// were read (as the engine's workers do): the results are the same.
func TestDeferredDecodeMatchesImmediate(t *testing.T) {
	env := testEnv(t)
	env.Limits.BatchRows = 7
	var b strings.Builder
	b.WriteString("id,name,amount,at\n")
	for i := 0; i < 200; i++ {
		switch i % 37 {
		case 5:
			fmt.Fprintf(&b, "%d,\"quoted, name\",x%d,2026-01-01T00:00:00Z\n", i, i) // a bad decimal
		case 11:
			fmt.Fprintf(&b, "%d,short\n", i) // wrong column count
		default:
			fmt.Fprintf(&b, "%d,name %d,%d.%02d,2026-01-01T00:00:%02d.123456789Z\n", i, i, i, i%100, i%60)
		}
	}
	writeFile(t, env, "in.csv", b.String())
	src := newSource(t, "type: csv\npath: in.csv\nschema: {id: int, name: string, amount: decimal, at: timestamp}")
	tasks, err := src.Plan(context.Background(), env)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("plan: %v %v", tasks, err)
	}
	want := readTask(t, src, env, tasks[0], nil)

	env.DeferDecode = true
	r, err := src.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var batches []*record.Batch
	for {
		bt, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if bt.Decode == nil {
			t.Fatal("DeferDecode set but the batch was converted in Next")
		}
		batches = append(batches, bt)
	}
	for i := len(batches) - 1; i >= 0; i-- { // decode in reverse: batches must not share buffers
		batches[i].Decode(batches[i])
	}
	got := readResult{Schema: r.Schema().String()}
	for _, bt := range batches {
		if bt.Read != len(bt.Rows)+len(bt.Rejects) {
			t.Fatalf("batch read %d, has %d rows and %d rejects", bt.Read, len(bt.Rows), len(bt.Rejects))
		}
		got.Rows = append(got.Rows, bt.Rows...)
		got.Lines = append(got.Lines, bt.Lines...)
		for _, raw := range bt.Raw {
			got.Raw = append(got.Raw, string(raw))
		}
		got.Rejects = append(got.Rejects, bt.Rejects...)
		got.Pos = append(got.Pos, bt.Pos)
	}
	if len(want.Rejects) == 0 || len(want.Rows) == 0 {
		t.Fatalf("the file should give rows and rejects: %d, %d", len(want.Rows), len(want.Rejects))
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("deferred decode differs (-immediate +deferred):\n%s", diff)
	}
}
