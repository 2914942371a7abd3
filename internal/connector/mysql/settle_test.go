package mysql

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

// A COMMIT cut off by the server going away (a restart, a failover) is a
// transient failure, not the end of the run: the engine writes the batch
// again and commits the same checkpoints, and that Commit tells from the
// stored checkpoints whether the first COMMIT happened. Either way the
// rows are stored once (mode append shows a duplicate) and the writer goes
// on.
func TestSinkCommitCutOffIsSettledByTheNextCommit(t *testing.T) {
	cp := connector.Checkpoint{Task: "t", Pos: record.Position("p1")}
	batch := []record.Row{{"a", int64(1), "x"}, {"b", int64(2), "y"}}
	for _, tc := range []struct {
		name      string
		committed bool
	}{
		{"the COMMIT did not happen", false},
		{"the COMMIT happened and its answer was lost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newTestDB(t)
			w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true"), kv)
			mw := w.(*writer)
			sqlkittest.Write(t, w, kv, batch)
			if tc.committed {
				// No server loses an answer on demand: the COMMIT goes
				// through, then the writer is put in the state that a lost
				// answer leaves.
				sqlkittest.Commit(t, w, cp)
				mw.unsure, mw.lost = []connector.Checkpoint{cp}, true
			} else {
				mw.beforeCommit = func() {
					mw.beforeCommit = nil
					db.exec(fmt.Sprintf("KILL CONNECTION %d", writerConn(t, db)))
				}
				err := w.Commit(context.Background(), []connector.Checkpoint{cp})
				if !errors.Is(err, connector.ErrTransient) {
					t.Fatalf("Commit cut off: %v, want ErrTransient", err)
				}
				if mw.broken || mw.unsure == nil {
					t.Fatalf("after the cut-off COMMIT: broken %v, unsure %v", mw.broken, mw.unsure)
				}
			}
			sqlkittest.Write(t, w, kv, batch) // the engine's retry writes the batch again
			sqlkittest.Commit(t, w, cp)
			if diff := cmp.Diff([][]any{{"a"}, {"b"}}, db.rows("SELECT k FROM kv ORDER BY k")); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
			sqlkittest.Write(t, w, kv, []record.Row{{"c", int64(3), "z"}})
			sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t", Pos: record.Position("p2")})
			if diff := cmp.Diff([][]any{{"a"}, {"b"}, {"c"}}, db.rows("SELECT k FROM kv ORDER BY k")); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if got := db.rows("SELECT task, pos FROM backbone_checkpoints"); !cmp.Equal(got, [][]any{{"t", "p2"}}) {
				t.Errorf("checkpoints %v", got)
			}
		})
	}
}

// A COMMIT cut off while it held the rows of several Writes cannot be
// settled by writing one batch again: the writer refuses to go on, and the
// next run resumes from the stored checkpoint.
func TestSinkCommitCutOffWithSeveralWritesBreaksTheWriter(t *testing.T) {
	db := newTestDB(t)
	w := kit.Writer(t, sqlkittest.Env(t), db.yaml("table: kv\ncreate: true"), kv)
	mw := w.(*writer)
	sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
	sqlkittest.Write(t, w, kv, []record.Row{{"b", int64(2), "y"}})
	mw.beforeCommit = func() {
		mw.beforeCommit = nil
		db.exec(fmt.Sprintf("KILL CONNECTION %d", writerConn(t, db)))
	}
	err := w.Commit(context.Background(), []connector.Checkpoint{{Task: "t", Pos: record.Position("p1")}})
	if err == nil || errors.Is(err, connector.ErrTransient) || !mw.broken {
		t.Fatalf("Commit cut off with two Writes staged: %v (broken %v), want a permanent failure", err, mw.broken)
	}
}
