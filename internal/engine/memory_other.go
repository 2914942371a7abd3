//go:build !linux

package engine

// adviseHuge does nothing where transparent huge pages are not asked for
// with madvise.
func adviseHuge([]byte) bool { return false }
