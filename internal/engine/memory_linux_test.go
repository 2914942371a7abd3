package engine

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// The heap a run grows into is backed by huge pages where the system gives
// them on request: after hugeHeap, most of what is allocated (here 48 MiB
// in blocks of 64 KiB, as a run's batches are) lies in mappings marked for
// them (VmFlags hg in /proc/self/smaps), which the Go runtime never marks
// by itself. The check runs in a process of its own, whose heap no other
// test has grown, as a run's is at its start.
func TestHugeHeapMarksTheHeap(t *testing.T) {
	if !hugeOnRequest() {
		t.Skip("transparent huge pages are not given on request here (/sys/kernel/mm/transparent_hugepage/enabled is not madvise)")
	}
	if os.Getenv("BACKBONE_TEST_HUGE_HEAP") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHugeHeapMarksTheHeap$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "BACKBONE_TEST_HUGE_HEAP=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("the check in a process of its own: %v\n%s", err, out)
		}
		return
	}
	const block, total = 64 << 10, 48 << 20
	allocate := func() [][]byte {
		var blocks [][]byte
		for range total / block {
			blocks = append(blocks, make([]byte, block))
		}
		return blocks
	}
	before := allocate()
	if marked := markedShare(t, before); marked > 0 {
		t.Fatalf("%.0f%% of the heap is marked for huge pages before hugeHeap: the check proves nothing", marked*100)
	}
	hugeHeap(80 << 20)
	after := allocate()
	if marked := markedShare(t, after); marked < 0.75 {
		t.Fatalf("%.0f%% of what was allocated after hugeHeap lies in mappings marked for huge pages: want 75%% at least", marked*100)
	}
	runtime.KeepAlive(before)
}

// markedShare is the share of the blocks' bytes that lie in mappings
// marked for huge pages.
func markedShare(t *testing.T, blocks [][]byte) float64 {
	t.Helper()
	type mapping struct {
		lo, hi uint64
		hg     bool
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := strings.Cut(strings.Fields(line)[0], "-"); ok && !strings.HasSuffix(line, ":") {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				maps = append(maps, mapping{lo: l, hi: h})
				continue
			}
		}
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok && len(maps) > 0 {
			for _, fl := range strings.Fields(rest) {
				maps[len(maps)-1].hg = maps[len(maps)-1].hg || fl == "hg"
			}
		}
	}
	var marked, all int
	for _, b := range blocks {
		addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
		all += len(b)
		for _, m := range maps {
			if m.lo <= addr && addr < m.hi && m.hg {
				marked += len(b)
			}
		}
	}
	return float64(marked) / float64(all)
}
