package engine

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"unsafe"
)

var hugeOnce sync.Once

// hugePage is the size of a transparent huge page.
const hugePage = 2 << 20

// tuneMemory trades memory the run does not need for less garbage
// collection: batches are short-lived, so collecting at 5× the live heap
// costs little memory, while a soft memory limit keeps the process small.
// The limit leaves room for what is live once lookups are loaded (measured
// here), so a large lookup does not make the collector run without pause.
// GOGC and GOMEMLIMIT, when set, win. The first call also backs the heap
// the budget allows with huge pages, where the system allows them.
func tuneMemory(budget int64) {
	hugeOnce.Do(func() { hugeHeap(budget) })
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

// hugeHeap asks the kernel to back the next n bytes the heap grows by with
// transparent huge pages, where the system leaves them to the process
// (/sys/kernel/mm/transparent_hugepage/enabled: madvise; with always they
// are used anyway, with never not at all). The Go runtime asks for them
// for its own tables only, so the heap is otherwise faulted in 4 KiB at a
// time, and a run's batches, allocated and collected in turn, fault in as
// much as the heap peaks at. On a virtual machine a fault is dear: 15 µs
// per 4 KiB on this project's machine (0.27 µs per 4 KiB with huge pages),
// a third of the CPU time of a CSV → JSONL run. An allocation of n bytes
// makes the heap grow by a region it has not touched; the region is marked
// before its first touch, and once freed, later allocations use it.
func hugeHeap(n int64) {
	if n < 2*hugePage || !hugeOnRequest() {
		return
	}
	b := make([]byte, n)
	off := int64(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (hugePage - 1))
	adviseHuge(b[off : off+(n-off)&^(hugePage-1)]) // whole huge pages
	runtime.GC()                                   // the region is free for the run's allocations
}
