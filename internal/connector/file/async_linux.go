//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package file

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	asyncBuffers = 8                // buffers an asyncWriter fills and has written in turn
	asyncSlots   = asyncBuffers + 1 // requests in flight at most: the buffers and a sync
	asyncReserve = 64 << 20         // how far ahead the file is reserved
	asyncSyncID  = ^uint64(0)       // the id of a sync's request
)

// kernelQueue is the kernel's side of an asyncWriter: it takes writes and
// data syncs of one file, and counts each completion on the writer's
// eventfd. io_uring (uringQueue) is tried first, Linux AIO (aioQueue)
// next.
type kernelQueue interface {
	// submit hands rqs to the kernel, in order, and returns how many it
	// took (the first n); err is set when it took none.
	submit(rqs []kernelRequest) (n int, err error)
	// reap appends to dst the requests completed since the last reap,
	// without waiting.
	reap(dst []kernelDone) []kernelDone
	// close releases the queue once it holds no request.
	close()
}

// kernelRequest is a write of b at off, or a data sync (fdatasync).
type kernelRequest struct {
	id   uint64
	sync bool
	b    []byte
	off  int64
}

// kernelDone is a completed request: bytes written (0 for a sync), or
// -errno.
type kernelDone struct {
	id  uint64
	res int64
}

// kernelQueues are the kinds of queue, in the order they are tried.
var kernelQueues = []func(file, efd int) (kernelQueue, error){newURingQueue, newAIOQueue}

// asyncWriter writes a sink's file around the page cache, as directWriter
// does, but without a thread of the process waiting in the writes: each
// full buffer goes to the kernel (io_uring, or Linux AIO where io_uring is
// refused), and the Go poller waits on an eventfd for the completions, so
// the run's goroutines keep every processor while the device works. A
// blocking write holds its processor until the runtime takes it back,
// which it seldom does for writes of a few milliseconds: at 10M rows of a
// CSV → JSONL run (1.3 GB written), a quarter of the run's time here.
//
// The file is reserved ahead of the writes (fallocate, asyncReserve at a
// time): ext4 completes an extending direct write before the submission
// returns. The data syncs asked for as it goes (every syncChunk, one at a
// time) are requests too. Flush waits for every request, writes the tail,
// which no device block holds whole, through the page cache, and cuts the
// file to its length; the fsync at commit still decides durability. A
// write the file system refuses direct (EINVAL), or writes in part, is
// written again through the page cache, and so is the rest of the file.
type asyncWriter struct {
	f       *os.File
	fd      int
	q       kernelQueue
	ev      *os.File // the eventfd counting completions, read through the poller
	efd     int      // its descriptor (ev.Fd would make its reads block a thread)
	buf     []byte   // the buffer filling, directBuffer bytes at an aligned address
	n       int      // bytes gathered in buf
	off     int64    // the file offset of buf
	reserve int64    // the file's length as reserved so far
	free    chan []byte
	// result stands in for a completion's result in tests.
	result func(rq asyncRequest, res int64) int64

	mu       sync.Mutex
	idle     *sync.Cond              // signalled as requests complete
	inflight map[uint64]asyncRequest // the writes the kernel holds, by id
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

// asyncRequest is a write the kernel holds: b, at offset off.
type asyncRequest struct {
	b   []byte
	off int64
}

// newAsyncWriter is the asynchronous writer of f, or nil where the kernel
// or the process's limits refuse one. O_DIRECT is on for f already.
func newAsyncWriter(f *os.File) *asyncWriter {
	for _, queue := range kernelQueues {
		if w := newAsyncWriterWith(f, queue); w != nil {
			return w
		}
	}
	return nil
}

// newAsyncWriterWith is the asynchronous writer of f with a queue of one
// kind, or nil where the kernel refuses it.
func newAsyncWriterWith(f *os.File, queue func(file, efd int) (kernelQueue, error)) *asyncWriter {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil || start%directAlign != 0 {
		return nil
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	q, err := queue(int(f.Fd()), efd)
	if err != nil {
		unix.Close(efd)
		return nil
	}
	w := &asyncWriter{f: f, fd: int(f.Fd()), q: q, ev: os.NewFile(uintptr(efd), "async-events"), efd: efd,
		off: start, reserve: start, free: make(chan []byte, asyncBuffers), result: func(_ asyncRequest, res int64) int64 { return res },
		inflight: map[uint64]asyncRequest{}, direct: true, reaped: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	for range asyncBuffers {
		w.free <- alignedBuffer()
	}
	w.buf = <-w.free
	go w.reap()
	return w
}

func (w *asyncWriter) Write(p []byte) (int, error) {
	return gather(&w.buf, &w.n, p, w.free, w.submit)
}

// submit hands b, aligned in memory and length, to the kernel to write at
// w.off, with a sync when syncChunk bytes went out since the last.
func (w *asyncWriter) submit(b []byte) error {
	if end := w.off + int64(len(b)); end > w.reserve {
		r := max(end, w.reserve+asyncReserve)
		if unix.Fallocate(w.fd, 0, w.reserve, r-w.reserve) == nil {
			w.reserve = r
		} // else the writes extend the file, and complete before the submission returns
	}
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	id := w.nextID
	w.nextID++
	w.inflight[id] = asyncRequest{b: b, off: w.off}
	w.unsynced += int64(len(b))
	rqs := []kernelRequest{{id: id, b: b, off: w.off}}
	if w.unsynced >= syncChunk && !w.syncing && !w.noSync {
		w.syncing, w.unsynced = true, 0
		w.syncs++
		rqs = append(rqs, kernelRequest{id: asyncSyncID, sync: true})
	}
	w.mu.Unlock()
	n, err := w.q.submit(rqs)
	if n == 0 { // nothing taken: the write fails
		if err == nil {
			err = unix.EAGAIN
		}
		w.mu.Lock()
		delete(w.inflight, id)
		w.syncing = false
		if w.err == nil {
			w.err = fmt.Errorf("write: %w", err)
		}
		err := w.err
		w.idle.Broadcast()
		w.mu.Unlock()
		return err
	}
	if n < len(rqs) { // the write taken, its sync refused: the fsync at commit does it all
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
func (w *asyncWriter) reap() {
	defer close(w.reaped)
	var count [8]byte
	done := make([]kernelDone, 0, asyncSlots)
	for {
		_, err := w.ev.Read(count[:])
		w.mu.Lock()
		closing := w.closing
		w.mu.Unlock()
		if err != nil || closing {
			return
		}
		for {
			if done = w.q.reap(done[:0]); len(done) == 0 {
				break
			}
			w.mu.Lock()
			for _, d := range done {
				if d.id == asyncSyncID {
					w.syncing = false // the fsync at commit reports what matters
					continue
				}
				rq := w.inflight[d.id]
				delete(w.inflight, d.id)
				if res := w.result(rq, d.res); res != int64(len(rq.b)) && w.err == nil {
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
func (w *asyncWriter) rewrite(rq asyncRequest, res int64) error {
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
// reaping goroutine and the kernel's queue, and reports the first
// failure.
func (w *asyncWriter) wait() error {
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
	w.q.close()
	w.ev.Close()
	return err
}

// Flush writes what was gathered, waits for every write, and reports the
// first failure: the aligned part direct, the tail through the page
// cache; the file is cut to the bytes written, and its offset left at
// their end. The writer is done afterwards.
func (w *asyncWriter) Flush() error {
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
func (w *asyncWriter) discard() {
	if w.buf == nil {
		return
	}
	_ = w.wait()
	w.buf = nil
}
