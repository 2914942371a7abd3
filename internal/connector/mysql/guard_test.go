package mysql

import (
	"context"
	"errors"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

// Two writers of one pipeline, as two processes would be: the one whose
// checkpoint base is stale fails its commit, and none of its rows stay.
func TestGuardedCheckpointRefusesAStaleWriter(t *testing.T) {
	d := newTestDB(t)
	env := sqlkittest.Env(t)
	s := kit.Sink(t, d.yaml("table: kv\ncreate: true"))
	schema := record.MustSchema(record.Field{Name: "k", Type: record.String})
	ctx := context.Background()
	open := func() connector.Writer {
		w, err := s.Open(ctx, env, schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	write := func(w connector.Writer, k string) {
		if n, err := w.Write(ctx, &record.Batch{Schema: schema, Rows: []record.Row{{k}}}); n != 1 || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	a, b := open(), open()
	write(a, "a1")
	if err := a.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("1"), Guard: true}}); err != nil {
		t.Fatal(err)
	}
	write(b, "b1")
	err := b.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("1"), Guard: true}})
	if !errors.Is(err, connector.ErrCheckpointConflict) {
		t.Fatalf("stale first commit: %v, want ErrCheckpointConflict", err)
	}
	b = open()
	base1 := &connector.Checkpoint{Task: "t", Pos: record.Position("1")}
	write(a, "a2")
	if err := a.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("2"), Guard: true, Base: base1}}); err != nil {
		t.Fatal(err)
	}
	write(b, "b2")
	err = b.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("2"), Guard: true, Base: base1}})
	if !errors.Is(err, connector.ErrCheckpointConflict) {
		t.Fatalf("stale commit: %v, want ErrCheckpointConflict", err)
	}
	if n := d.count("SELECT count(*) FROM kv"); n != 2 {
		t.Errorf("%d rows, want 2 (a1, a2): a refused commit left rows", n)
	}
}
