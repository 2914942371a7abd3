package file

import (
	"bufio"
	"io"
	"os"
)

// flushWriter is where a sink's encoder writes: bytes it may hold until
// Flush.
type flushWriter interface {
	io.Writer
	Flush() error
}

// newBufferedSinkWriter writes f through a buffer, starting the disk
// writes of what it wrote as it goes (see writeback).
func newBufferedSinkWriter(f *os.File) flushWriter {
	return bufio.NewWriterSize(&writeback{f: f}, 256<<10)
}

// writebackChunk is how much a sink writes before it asks the kernel to
// start writing those pages to disk.
const writebackChunk = 8 << 20

// writeback is a sink file that starts the disk writes of its pages while
// the run goes on, chunk by chunk, instead of leaving them all to the fsync
// at commit: the disk works beside the CPU, and the commit waits for the
// last chunk only. The fsync at commit still decides durability.
type writeback struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose writeback has been started
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}
