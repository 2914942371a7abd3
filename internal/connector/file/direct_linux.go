package file

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment of a direct write's memory, length and file
// offset: a page, which covers any block size of the device.
const directAlign = 4096

// directBuffer is how much a directWriter gathers before it writes.
const directBuffer = 1 << 20

// directWriter writes a sink's file around the page cache (O_DIRECT): the
// device reads the rows from this process's buffers, so the kernel neither
// allocates, fills nor writes back a page per 4 KiB of output, which costs
// more CPU than making the rows. Whole aligned buffers go to a goroutine
// that writes them direct while the next one fills; Flush writes the
// aligned part of the rest the same way and the tail, which no device
// block holds whole, through the page cache. The fsync at commit still
// decides durability.
type directWriter struct {
	f      *os.File
	buf    []byte        // the buffer filling, directBuffer bytes at an aligned address
	n      int           // bytes gathered in buf
	full   chan []byte   // buffers to write, in order
	free   chan []byte   // buffers written
	done   chan struct{} // closed when the writing goroutine ended
	err    error         // the first write error; read once done is closed or a buffer came back
	direct bool          // O_DIRECT is on (the writing goroutine's, until done)
	// writeFile writes to f: f.Write, or a test's stand-in.
	writeFile func(b []byte) (int, error)
	// syncFile makes what was written to f durable: fdatasync, or a
	// test's stand-in.
	syncFile func() error
}

// directBuffers is how many buffers a directWriter fills and writes in
// turn.
const directBuffers = 3

// syncChunk is how much a directWriter writes between the data syncs it
// starts as it goes. A direct write reaches the device, but a device (or a
// virtual disk's host) with a write cache holds it there until a flush:
// left to the fsync at commit, that flush takes a fifth of a second per
// 130 MB here, with the whole run waiting. Asked for every syncChunk and
// made by a goroutine of its own while the writes go on (one sync at a
// time, at most one more waiting), it runs beside the CPU work, and the
// commit flushes the last chunk only.
const syncChunk = 16 << 20

// newSinkWriter is the writer of a sink's temporary file f: direct when
// the file system allows it (asynchronous where the kernel allows it),
// else buffered with early writeback.
func newSinkWriter(f *os.File) flushWriter {
	if setDirect(f, true) != nil {
		return newBufferedSinkWriter(f)
	}
	if w := newAsyncWriter(f); w != nil {
		return w
	}
	return newDirectWriter(f)
}

// newDirectWriter is the direct writer of f, whose O_DIRECT is on.
func newDirectWriter(f *os.File) *directWriter {
	w := &directWriter{f: f, full: make(chan []byte, directBuffers), free: make(chan []byte, directBuffers),
		done: make(chan struct{}), direct: true, writeFile: f.Write, syncFile: func() error { return dataSync(f) }}
	for range directBuffers {
		w.free <- alignedBuffer()
	}
	w.buf = <-w.free
	go w.writeLoop()
	return w
}

// alignedBuffer is a buffer of directBuffer bytes at an aligned address,
// its capacity its length: a buffer comes back from a write as b[:cap(b)].
func alignedBuffer() []byte {
	raw := make([]byte, directBuffer+directAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (directAlign - 1))
	return raw[off : off+directBuffer : off+directBuffer]
}

// dataSync makes f's data durable (fdatasync).
func dataSync(f *os.File) error {
	return withFD(f, func(fd int) error { return unix.Fdatasync(fd) })
}

// setDirect turns O_DIRECT on or off for f.
func setDirect(f *os.File, on bool) error {
	return withFD(f, func(fd int) error {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return err
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
		return err
	})
}

// withFD runs fn on f's descriptor and returns its error, or the error of
// reaching the descriptor.
func withFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// writeLoop writes the full buffers in order and hands them back. After a
// failure it writes nothing more.
func (w *directWriter) writeLoop() {
	defer close(w.done)
	syncs := make(chan struct{}, 1) // a sync asked for
	synced := make(chan struct{})   // the syncing goroutine ended
	go func() {
		defer close(synced)
		for range syncs {
			_ = w.syncFile() // the fsync at commit reports what matters
		}
	}()
	defer func() { close(syncs); <-synced }()
	unsynced := 0
	for b := range w.full {
		if w.err == nil {
			w.err = w.write(b)
			unsynced += len(b)
		}
		w.free <- b[:cap(b)]
		if w.err == nil && unsynced >= syncChunk {
			select {
			case syncs <- struct{}{}:
				unsynced = 0
			default: // one is asked for already
			}
		}
	}
}

func (w *directWriter) Write(p []byte) (int, error) {
	return gather(&w.buf, &w.n, p, w.free, func(b []byte) error { w.full <- b; return nil })
}

// gather copies p into *buf, which holds *n bytes, and hands each buffer
// it fills to write, to take the next from free; it stops at write's
// first error.
func gather(buf *[]byte, n *int, p []byte, free <-chan []byte, write func([]byte) error) (int, error) {
	written := 0
	for len(p) > 0 {
		c := copy((*buf)[*n:], p)
		*n += c
		p = p[c:]
		written += c
		if *n == len(*buf) {
			if err := write(*buf); err != nil {
				return written, err
			}
			*buf, *n = <-free, 0
		}
	}
	return written, nil
}

// split is the part of buf[:n] direct writes can take, whole device
// blocks, and the tail, which goes through the page cache.
func split(buf []byte, n int) (aligned, tail []byte) {
	a := n &^ (directAlign - 1)
	return buf[:a], buf[a:n]
}

// write writes b, aligned in memory and length when direct. A file system
// that refuses a direct write gets the rest of b, and of the file, through
// the page cache.
func (w *directWriter) write(b []byte) error {
	n, err := w.writeFile(b)
	if err != nil && w.direct && errors.Is(err, unix.EINVAL) {
		if serr := setDirect(w.f, false); serr != nil {
			return err
		}
		w.direct = false
		_, err = w.writeFile(b[n:]) // what was written is in the file already
	}
	return err
}

// Flush writes what was gathered, waits for every write, and reports the
// first failure: the aligned part direct, the tail through the page cache.
// The writer is done afterwards.
func (w *directWriter) Flush() error {
	if w.buf == nil {
		return w.err
	}
	aligned, tail := split(w.buf, w.n)
	if len(aligned) > 0 {
		w.full <- aligned
	}
	close(w.full)
	<-w.done
	w.buf = nil
	if w.err != nil || len(tail) == 0 {
		return w.err
	}
	if w.direct {
		if err := setDirect(w.f, false); err != nil {
			return err
		}
		w.direct = false
	}
	_, w.err = w.f.Write(tail)
	return w.err
}

// discard ends the writer without writing what it gathered: its goroutine
// finishes the write in progress and ends.
func (w *directWriter) discard() {
	if w.buf == nil {
		return
	}
	close(w.full)
	<-w.done
	w.buf = nil
}
