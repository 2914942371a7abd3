//go:build !linux

package file

import "os"

// newSinkWriter is the writer of a sink's temporary file f: buffered, with
// early writeback where the system has it.
func newSinkWriter(f *os.File) flushWriter { return newBufferedSinkWriter(f) }
