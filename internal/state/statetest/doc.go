// Package statetest is the acceptance suite every state.Store passes: the
// SQLite store now, the PostgreSQL one later, with the same tests.
//
//	func TestStore(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Store {
//			s, err := sqlitestate.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// It checks behaviour through the Store interface only: checkpoint round trip
// (arbitrary bytes, nil versus empty positions, Done, Fingerprint), upsert
// and per-pipeline isolation, ResetCheckpoints; the run lifecycle, filters,
// ordering and limits; dead letters added, listed, filtered by each field,
// by text and by ID, re-added idempotently, deleted and counted; cancelled
// contexts; times outside the years 1 to 9999 refused; Close; and 8
// goroutines writing at once without a single error (run it with -race).
// File-level concerns — versions, corruption, several processes — belong to
// each implementation's own tests, which share the helpers Openers,
// ConcurrentCreate, CheckMigrations, CheckRefused and CheckVersionError,
// and the benchmark bodies BenchAddDeadLetters and BenchSaveCheckpoints.
package statetest
