// Package state defines the state store: the one place where Backbone keeps
// what must survive a restart — each pipeline's checkpoints, the history of
// its runs and its dead letters (pipeline versions come later).
//
//	s, err := sqlitestate.Open(ctx, ".backbone/state.db")
//	if err != nil {
//		return err // state.ErrCorrupt, state.ErrVersion, or I/O
//	}
//	defer s.Close()
//	run := state.Run{ID: runID, Pipeline: "orders", Trigger: state.TriggerSchedule}
//	if err := s.StartRun(ctx, &run); err != nil { … }
//	cps, err := s.LoadCheckpoints(ctx, "orders") // task key -> checkpoint
//	…
//	err = s.SaveCheckpoints(ctx, "orders", []connector.Checkpoint{{Task: "a.csv", Pos: pos}})
//	run.Status, run.Read, run.Written = state.StatusSucceeded, read, written
//	err = s.FinishRun(ctx, &run)
//
// Store is implemented by sqlitestate (an embedded SQLite file, the default)
// and later by a PostgreSQL store for teams and several instances. Each
// implementation keeps its SQL dialect to itself and passes the acceptance
// suite in statetest, which is the executable form of the contract below.
//
// Invariants:
//
//   - Persisted state carries a schema version. A store written by a newer
//     Backbone is refused with an error wrapping ErrVersion; a file that is
//     damaged or is not a state store is refused with an error wrapping
//     ErrCorrupt. Neither is ever taken for a first run: an empty store
//     means every source is read again from its beginning, loading
//     everything twice.
//   - Every write is one short transaction. SaveCheckpoints stores all its
//     checkpoints or none, so a run never resumes half its tasks from an old
//     position and half from a new one.
//   - A dead letter is identified by (pipeline, task, loc, step): adding it
//     again, as a rerun after a crash does, replaces it and keeps its ID.
//     IDs are never reused.
//   - Positions are opaque bytes and round-trip exactly. Times are kept to
//     the microsecond and come back in UTC.
//   - Several goroutines and several processes may use one store at once.
package state
