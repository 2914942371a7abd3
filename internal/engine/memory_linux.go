package engine

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// adviseHuge asks for transparent huge pages to back b, and reports
// whether it could matter: with b nil, whether the system gives them on
// request (madvise mode).
func adviseHuge(b []byte) bool {
	if b == nil {
		mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
		return err == nil && strings.Contains(string(mode), "[madvise]")
	}
	return unix.Madvise(b, unix.MADV_HUGEPAGE) == nil
}
