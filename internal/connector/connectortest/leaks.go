package connectortest

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// leakWait bounds how long the suite waits for goroutines to end and for
// servers to notice closed connections: both happen asynchronously after
// Close returns.
const leakWait = 10 * time.Second

// leaks remembers the goroutines and connections at the start of a test.
type leaks struct {
	goroutines int
	conns      int
	count      func(testing.TB) int
}

// startLeaks takes the counts before a test; count may be nil.
func startLeaks(t testing.TB, count func(testing.TB) int) *leaks {
	t.Helper()
	l := &leaks{goroutines: runtime.NumGoroutine(), count: count}
	if count != nil {
		l.conns = count(t)
	}
	return l
}

// check fails the test when, within leakWait, the goroutines and the
// connections are not back to their counts at start. Everything the test
// opened must be closed before.
func (l *leaks) check(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(leakWait)
	for {
		g, c := runtime.NumGoroutine(), l.conns
		if l.count != nil {
			c = l.count(t)
		}
		if g <= l.goroutines && c <= l.conns {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("leak after everything was closed: %d goroutines (%d before), %d connections or open files (%d before)\n%s",
				g, l.goroutines, c, l.conns, buf)
			return
		}
		// Nothing to wait on: the goroutines are the components' own and
		// the connections are counted by the server.
		time.Sleep(20 * time.Millisecond)
	}
}

// OpenFiles counts the file descriptors this process holds open, for
// harnesses of file-based targets (SQLite, files) to use as
// SourceTarget.Conns or SinkTarget.Conns. It returns 0 where /proc/self/fd
// does not exist.
func OpenFiles(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
