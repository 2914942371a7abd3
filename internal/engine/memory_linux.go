package engine

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// hugeOnRequest reports whether the system gives transparent huge pages
// to the memory a process asks them for (madvise mode).
func hugeOnRequest() bool {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && strings.Contains(string(mode), "[madvise]")
}

// adviseHuge asks for transparent huge pages to back b.
func adviseHuge(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }
