package engine

import (
	"os"
	"runtime"
	"runtime/debug"
)

// tuneMemory trades memory the run does not need for less garbage
// collection: batches are short-lived, so collecting at 5× the live heap
// costs little memory, while a soft memory limit keeps the process small.
// The limit leaves room for what is live once lookups are loaded (measured
// here), so a large lookup does not make the collector run without pause.
// GOGC and GOMEMLIMIT, when set, win.
func tuneMemory(budget int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := int64(ms.HeapAlloc)
	debug.SetMemoryLimit(max(budget, 2*live+budget/2))
}
