//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package file

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's asynchronous I/O interface (linux/aio_abi.h), as laid out on
// little-endian 64-bit machines.
const (
	iocbCmdPwrite = 1
	iocbCmdFdsync = 3
	iocbFlagResfd = 1 << 0
)

// The layouts are the kernel's: 64 and 32 bytes.
var (
	_ [64]byte = [unsafe.Sizeof(iocb{})]byte{}
	_ [32]byte = [unsafe.Sizeof(ioEvent{})]byte{}
)

// iocb is a request to the kernel.
type iocb struct {
	data   uint64 // returned in the request's ioEvent
	_      uint32 // aio_key
	_      int32  // aio_rw_flags
	opcode uint16
	_      int16 // aio_reqprio
	fildes uint32
	buf    uint64
	nbytes uint64
	offset int64
	_      uint64 // aio_reserved2
	flags  uint32
	resfd  uint32 // the eventfd told of the completion
}

// ioEvent is a completed request.
type ioEvent struct {
	data uint64
	_    uint64 // obj
	res  int64  // bytes written, or -errno
	_    int64  // res2
}

const (
	aioBuffers = 8              // buffers an aioWriter fills and has written in turn
	aioSlots   = aioBuffers + 1 // requests in flight at most: the buffers and a sync
	aioReserve = 64 << 20       // how far ahead the file is reserved
	aioSyncID  = ^uint64(0)     // the data of a sync's request
)

// aioRequest is a write the kernel holds: b, at offset off.
type aioRequest struct {
	b   []byte
	off int64
}

// aioWriter writes a sink's file around the page cache, as directWriter
// does, but without a thread of the process waiting in the writes: each
// full buffer goes to the kernel (io_submit), and the Go poller waits on
// an eventfd for the completions, so the run's goroutines keep every
// processor while the device works. A blocking write holds its processor
// until the runtime takes it back, which it seldom does for writes of a
// few milliseconds: at 10M rows of a CSV → JSONL run (1.3 GB written),
// a quarter of the run's time here.
//
// The file is reserved ahead (fallocate) so that no write extends it:
// ext4 completes an extending direct write inside io_submit. The data
// syncs asked for as it goes (every syncChunk, one at a time) are requests
// too. Flush waits for every request, writes the tail, which no device
// block holds whole, through the page cache, and cuts the file to its
// length; the fsync at commit still decides durability. A write the file
// system refuses direct (EINVAL), or writes in part, is written again
// through the page cache, and so is the rest of the file.
type aioWriter struct {
	f       *os.File
	fd      int
	ctx     uintptr  // the kernel's context of the requests
	ev      *os.File // the eventfd counting completions, read through the poller
	efd     int      // its descriptor (ev.Fd would make its reads block a thread)
	buf     []byte   // the buffer filling, directBuffer bytes at an aligned address
	n       int      // bytes gathered in buf
	off     int64    // the file offset of buf
	reserve int64    // the file's length as reserved so far
	free    chan []byte
	// result stands in for a completion's result in tests.
	result func(rq aioRequest, res int64) int64

	mu       sync.Mutex
	idle     *sync.Cond            // signalled as requests complete
	inflight map[uint64]aioRequest // the writes the kernel holds, by id
	nextID   uint64
	syncing  bool  // a sync is in flight
	noSync   bool  // the kernel refused a sync request: none is asked for again
	syncs    int   // syncs asked for
	closing  bool  // the reaping goroutine is to end
	unsynced int64 // bytes submitted since the last sync asked for
	direct   bool  // O_DIRECT is on
	err      error // the first failure
	reaped   chan struct{}
}

// newAIOWriter is the asynchronous writer of f, or nil where the kernel or
// the process's limits refuse one. O_DIRECT is on for f already.
func newAIOWriter(f *os.File) *aioWriter {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil || start%directAlign != 0 {
		return nil
	}
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, aioSlots, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil // no AIO, or aio-max-nr reached
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return nil
	}
	w := &aioWriter{f: f, fd: int(f.Fd()), ctx: ctx, ev: os.NewFile(uintptr(efd), "aio-events"), efd: efd,
		off: start, reserve: start, free: make(chan []byte, aioBuffers), result: func(_ aioRequest, res int64) int64 { return res },
		inflight: map[uint64]aioRequest{}, direct: true, reaped: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	for range aioBuffers {
		w.free <- alignedBuffer()
	}
	w.buf = <-w.free
	go w.reap()
	return w
}

func (w *aioWriter) Write(p []byte) (int, error) {
	return gather(&w.buf, &w.n, p, w.free, w.submit)
}

// submit hands b, aligned in memory and length, to the kernel to write at
// w.off, with a sync when syncChunk bytes went out since the last.
func (w *aioWriter) submit(b []byte) error {
	if end := w.off + int64(len(b)); end > w.reserve {
		r := max(end, w.reserve+aioReserve)
		if unix.Fallocate(w.fd, 0, w.reserve, r-w.reserve) == nil {
			w.reserve = r
		} // else the writes extend the file, and complete before io_submit returns
	}
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	id := w.nextID
	w.nextID++
	w.inflight[id] = aioRequest{b: b, off: w.off}
	w.unsynced += int64(len(b))
	cbs := []iocb{{data: id, opcode: iocbCmdPwrite, fildes: uint32(w.fd), buf: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))),
		nbytes: uint64(len(b)), offset: w.off, flags: iocbFlagResfd, resfd: uint32(w.efd)}}
	if w.unsynced >= syncChunk && !w.syncing && !w.noSync {
		w.syncing, w.unsynced = true, 0
		w.syncs++
		cbs = append(cbs, iocb{data: aioSyncID, opcode: iocbCmdFdsync, fildes: uint32(w.fd), flags: iocbFlagResfd, resfd: uint32(w.efd)})
	}
	w.mu.Unlock()
	ptrs := make([]*iocb, len(cbs))
	for i := range cbs {
		ptrs[i] = &cbs[i]
	}
	var n uintptr
	var e unix.Errno
	for {
		n, _, e = unix.Syscall(unix.SYS_IO_SUBMIT, w.ctx, uintptr(len(ptrs)), uintptr(unsafe.Pointer(unsafe.SliceData(ptrs))))
		if e != unix.EINTR {
			break
		}
	}
	if e != 0 || n == 0 { // nothing taken (on an error n is -1): the write fails
		if e == 0 {
			e = unix.EAGAIN
		}
		w.mu.Lock()
		delete(w.inflight, id)
		w.syncing = false
		if w.err == nil {
			w.err = fmt.Errorf("write: %w", e)
		}
		err := w.err
		w.idle.Broadcast()
		w.mu.Unlock()
		return err
	}
	if int(n) < len(cbs) { // the write taken, its sync refused: the fsync at commit does it all
		w.mu.Lock()
		w.syncing, w.noSync = false, true
		w.idle.Broadcast()
		w.mu.Unlock()
	}
	w.off += int64(len(b))
	return nil
}

// reap waits on the eventfd for completions, hands the written buffers
// back, writes again what the kernel did not write, and notes the first
// failure. It ends when told to by wait (closing, and a count on the
// eventfd, which wakes a read blocked in the kernel where the poller could
// not take the eventfd).
func (w *aioWriter) reap() {
	defer close(w.reaped)
	var count [8]byte
	var evs [aioSlots]ioEvent
	for {
		_, err := w.ev.Read(count[:])
		w.mu.Lock()
		closing := w.closing
		w.mu.Unlock()
		if err != nil || closing {
			return
		}
		for {
			var zero unix.Timespec
			n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, w.ctx, 0, aioSlots, uintptr(unsafe.Pointer(&evs[0])), uintptr(unsafe.Pointer(&zero)), 0)
			if e == unix.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				break
			}
			w.mu.Lock()
			for _, ev := range evs[:n] {
				if ev.data == aioSyncID {
					w.syncing = false // the fsync at commit reports what matters
					continue
				}
				rq := w.inflight[ev.data]
				delete(w.inflight, ev.data)
				if res := w.result(rq, ev.res); res != int64(len(rq.b)) && w.err == nil {
					w.err = w.rewrite(rq, res)
				}
				w.free <- rq.b[:cap(rq.b)]
			}
			w.idle.Broadcast()
			w.mu.Unlock()
		}
	}
}

// rewrite writes through the page cache the part of rq the kernel did not
// write: it refused the direct write (EINVAL) or wrote part of it. Direct
// writes end for the file: the writes submitted after this go through the
// page cache too. Another error is the write's.
func (w *aioWriter) rewrite(rq aioRequest, res int64) error {
	if res < 0 && unix.Errno(-res) != unix.EINVAL {
		return fmt.Errorf("write: %w", unix.Errno(-res))
	}
	done := max(res, 0)
	if w.direct {
		if err := setDirect(w.f, false); err != nil {
			return err
		}
		w.direct = false
	}
	_, err := w.f.WriteAt(rq.b[done:], rq.off+done)
	return err
}

// wait waits until the kernel holds no request of w's, then ends the
// reaping goroutine and the kernel's context, and reports the first
// failure.
func (w *aioWriter) wait() error {
	w.mu.Lock()
	for len(w.inflight) > 0 || w.syncing {
		w.idle.Wait()
	}
	err := w.err
	w.closing = true
	w.mu.Unlock()
	one := [8]byte{1} // the count 1, as a native-endian uint64 on these machines
	_, _ = unix.Write(w.efd, one[:])
	<-w.reaped
	w.ev.Close()
	unix.Syscall(unix.SYS_IO_DESTROY, w.ctx, 0, 0)
	return err
}

// Flush writes what was gathered, waits for every write, and reports the
// first failure: the aligned part direct, the tail through the page
// cache; the file is cut to the bytes written, and its offset left at
// their end. The writer is done afterwards.
func (w *aioWriter) Flush() error {
	if w.buf == nil {
		return w.err
	}
	aligned, tail := split(w.buf, w.n)
	var err error
	if len(aligned) > 0 {
		err = w.submit(aligned)
	}
	err = errors.Join(err, w.wait())
	w.buf = nil
	end := w.off + int64(len(tail))
	if err == nil && len(tail) > 0 {
		if w.direct {
			err = setDirect(w.f, false)
			w.direct = false
		}
		if err == nil {
			_, err = w.f.WriteAt(tail, w.off)
		}
	}
	if err == nil && w.reserve > end {
		err = w.f.Truncate(end)
	}
	if err == nil {
		_, err = w.f.Seek(end, io.SeekStart)
	}
	w.err = err
	return err
}

// discard ends the writer without writing what it gathered, once the
// kernel has finished the writes it holds.
func (w *aioWriter) discard() {
	if w.buf == nil {
		return
	}
	_ = w.wait()
	w.buf = nil
}
