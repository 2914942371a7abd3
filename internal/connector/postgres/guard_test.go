package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Two writers of one pipeline, as two processes would be: the one whose
// checkpoint base is stale fails its commit, and none of its rows stay.
func TestGuardedCheckpointRefusesAStaleWriter(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	ctx := context.Background()
	a := openWriter(t, env, s, kv)
	b := openWriter(t, env, s, kv)

	// Both read "no checkpoint" for task t; a commits first.
	write(t, a, kv, []record.Row{{"a1", int64(1), "x"}})
	commit(t, a, connector.Checkpoint{Task: "t", Pos: record.Position("1"), Guard: true})
	write(t, b, kv, []record.Row{{"b1", int64(1), "x"}})
	err := b.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("1"), Guard: true}})
	if !errors.Is(err, connector.ErrCheckpointConflict) {
		t.Fatalf("stale first commit: %v, want ErrCheckpointConflict", err)
	}

	// a goes on from its own commit; b, restarted from what it reads now,
	// succeeds too, and a stale b again fails.
	base1 := &connector.Checkpoint{Task: "t", Pos: record.Position("1")}
	write(t, a, kv, []record.Row{{"a2", int64(2), "y"}})
	commit(t, a, connector.Checkpoint{Task: "t", Pos: record.Position("2"), Guard: true, Base: base1})
	write(t, b, kv, []record.Row{{"b2", int64(2), "y"}})
	err = b.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position("2"), Guard: true, Base: base1}})
	if !errors.Is(err, connector.ErrCheckpointConflict) {
		t.Fatalf("stale commit: %v, want ErrCheckpointConflict", err)
	}
	base2 := &connector.Checkpoint{Task: "t", Pos: record.Position("2")}
	write(t, b, kv, []record.Row{{"b3", int64(3), "z"}})
	commit(t, b, connector.Checkpoint{Task: "t", Pos: record.Position("3"), Done: true, Guard: true, Base: base2})

	if got := p.one("SELECT string_agg(k, ',' ORDER BY k) FROM kv"); got != "a1,a2,b3" {
		t.Errorf("rows %v, want a1,a2,b3: a refused commit left rows", got)
	}
	got, err := s.(connector.CheckpointLoader).LoadCheckpoints(ctx, env)
	if err != nil || string(got["t"].Pos) != "3" || !got["t"].Done {
		t.Errorf("checkpoint %+v (%v), want 3 done", got["t"], err)
	}
}

// A commit whose answer was lost but that committed is not stored twice
// when the engine writes and commits the same batch again, guarded.
func TestGuardedRetryAfterALostCommit(t *testing.T) {
	p := newPG(t)
	env := testEnv(t)
	s := buildSink(t, p.yaml("table: kv\ncreate: true"))
	w := openWriter(t, env, s, kv)
	ww := w.(*writer)
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	cps := []connector.Checkpoint{{Task: "t", Pos: record.Position("1"), Guard: true}}
	commit(t, w, cps...)
	// The writer believes the COMMIT's answer was lost.
	ww.unknownXid, ww.unknownCps = ww.xid, cps
	ww.spans = []span{{enc: ww.encode(&record.Batch{Schema: kv, Rows: []record.Row{{"a", int64(1), "x"}}}), lo: 0, hi: 1}}
	// The engine redoes the unit: the same rows, the same checkpoints.
	write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	commit(t, w, cps...)
	if got := p.one("SELECT count(*) FROM kv"); got != "1" {
		t.Errorf("%v rows, want 1", got)
	}
}
