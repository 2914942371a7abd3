package engine

import (
	"testing"
	"time"
)

// TestRetriesOutlastADatabaseRestart: the retries of a write and of a read
// wait, at the least (every jitter at its lowest), for longer than twice
// the 14 s that a PostgreSQL restart with crash recovery kept connections
// refused on a loaded machine (e2e TestRestart*).
func TestRetriesOutlastADatabaseRestart(t *testing.T) {
	// least is the shortest wait before retry n: backoff draws between half
	// its ceiling and the ceiling, 100ms doubling up to 15s.
	least := func(n int) time.Duration {
		ceiling := min(100*time.Millisecond<<min(n-1, 8), 15*time.Second)
		for range 1000 {
			if d := backoff(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %s, outside [%s, %s]", n, d, ceiling/2, ceiling)
			}
		}
		return ceiling / 2
	}
	var write, read time.Duration
	for n := 1; n < maxWriteRetries; n++ { // a wait between two attempts
		write += least(n)
	}
	for n := 1; n <= maxReadRetries; n++ { // a wait before each reopen
		read += least(n)
	}
	if write < 28*time.Second || read < 28*time.Second {
		t.Fatalf("retries wait at least %s (writes) and %s (reads): a database restart outlasts them", write, read)
	}
}
