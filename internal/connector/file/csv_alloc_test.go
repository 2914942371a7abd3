package file

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// The CSV source gives each row the room that steps bound to its schema
// will widen it to, and says the room is the row's own; a row rejected by
// the source leaves no gap in another row's room.
func TestCSVRowsReserveRoomForSteps(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		env := testEnv(t)
		env.DeferDecode = deferred
		writeFile(t, env, "o.csv", "id,name\n1,a\n2,b\nx,c\n4,d\n")
		src := newSource(t, "type: csv\npath: o.csv\nschema: { id: int, name: string }")
		ctx := context.Background()
		r, err := src.Open(ctx, env, connector.Task{Key: "o.csv"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// What binding two steps that add three fields does.
		s := r.Schema()
		mid, _ := s.Derive(append(s.Fields(), record.Field{Name: "x", Type: record.Int})...)
		if _, err := mid.Derive(append(mid.Fields(), record.Field{Name: "y", Type: record.Int}, record.Field{Name: "z", Type: record.Int})...); err != nil {
			t.Fatal(err)
		}
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.Decode != nil {
			b.Decode(b)
		}
		r.Close()
		if len(b.Rows) != 3 || len(b.Rejects) != 1 {
			t.Fatalf("deferred %v: %d rows, %d rejects", deferred, len(b.Rows), len(b.Rejects))
		}
		if !b.OwnCap {
			t.Errorf("deferred %v: the batch does not say its rows own their room", deferred)
		}
		for i, row := range b.Rows {
			if len(row) != 2 || cap(row) != 5 {
				t.Errorf("deferred %v: row %d has length %d and capacity %d, want 2 and 5", deferred, i, len(row), cap(row))
			}
		}
		// Filling every row's room leaves the other rows as they were.
		for _, row := range b.Rows {
			full := row[:cap(row)]
			for j := 2; j < len(full); j++ {
				full[j] = "filled"
			}
		}
		for i, want := range []record.Row{{int64(1), "a"}, {int64(2), "b"}, {int64(4), "d"}} {
			if b.Rows[i][0] != want[0] || b.Rows[i][1] != want[1] {
				t.Errorf("deferred %v: row %d = %v, want %v", deferred, i, b.Rows[i], want)
			}
		}
	}
}

// Batches decoded out of order and at once, as the engine's workers do,
// give the rows a plain read gives: staging slices reused from decoded
// batches never mix two batches. Decoding a batch again changes nothing.
func TestCSVDeferredBatchesDecodedInAnyOrder(t *testing.T) {
	env := testEnv(t)
	env.Limits.BatchRows = 37
	writeFile(t, env, "o.csv", ordersCSV(2000))
	src := newSource(t, "type: csv\npath: o.csv\nschema: "+ordersSchema)
	task := connector.Task{Key: "o.csv"}
	want := readTask(t, src, env, task, nil)

	env.DeferDecode = true
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		r, err := src.Open(ctx, env, task, nil)
		if err != nil {
			t.Fatal(err)
		}
		var batches []*record.Batch
		for {
			b, err := r.Next(ctx)
			if err != nil {
				break
			}
			batches = append(batches, b)
			if len(batches)%5 == 0 { // some decoded while reading goes on
				batches[len(batches)-3].Decode(batches[len(batches)-3])
			}
		}
		r.Close()
		var wg sync.WaitGroup
		for i := len(batches) - 1; i >= 0; i-- {
			wg.Go(func() { batches[i].Decode(batches[i]) })
		}
		wg.Wait()
		var got []record.Row
		for _, b := range batches {
			n := len(b.Rows)
			b.Decode(b)
			if len(b.Rows) != n {
				t.Fatalf("decoding a batch again changed its rows from %d to %d", n, len(b.Rows))
			}
			got = append(got, b.Rows...)
		}
		if len(got) != len(want.Rows) {
			t.Fatalf("round %d: %d rows, want %d", round, len(got), len(want.Rows))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want.Rows[i]) {
				t.Fatalf("round %d, row %d: %v, want %v", round, i, got[i], want.Rows[i])
			}
		}
	}
}
