//go:build !linux

package engine

// hugeOnRequest is false where transparent huge pages are not asked for
// with madvise.
func hugeOnRequest() bool { return false }

func adviseHuge([]byte) {}
