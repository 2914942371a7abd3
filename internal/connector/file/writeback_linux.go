package file

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk
// without waiting for it. A failure is ignored: the fsync at commit reports
// what matters.
func startWriteback(f *os.File, off, n int64) {
	_ = withFD(f, func(fd int) error { return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE) })
}
