//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package file

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// queueKind is a kind of kernelQueue, which every test of the
// asynchronous writer runs with.
type queueKind struct {
	name string
	new  func(file, efd int) (kernelQueue, error)
}

var queueKinds = []queueKind{{"io_uring", newURingQueue}, {"aio", newAIOQueue}}

// eachQueue runs test as a subtest for each kind of queue, with a function
// that opens a new file for an asynchronous writer of that kind, or skips
// the subtest where the file system refuses direct writes or the kernel
// that kind of queue.
func eachQueue(t *testing.T, test func(t *testing.T, open func(t *testing.T) (string, *asyncWriter))) {
	for _, k := range queueKinds {
		t.Run(k.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			test(t, func(t *testing.T) (string, *asyncWriter) {
				t.Helper()
				path, f := createDirect(t)
				w := newAsyncWriterWith(f, k.new)
				if w == nil {
					t.Skipf("the kernel refuses %s here", k.name)
				}
				return path, w
			})
		})
	}
}

// Where the kernel allows it, a sink writes its file with asynchronous
// requests; the file holds exactly the bytes written, whatever the length
// of the tail, and no more than them (the space reserved ahead is cut).
func TestAsyncWriterWritesEveryByte(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		for _, total := range []int{0, 1, directAlign, directBuffer + 1, asyncBuffers*directBuffer + 3*directAlign + 5, asyncReserve + directBuffer/2} {
			path, w := open(t)
			writeChecked(t, w, path, randomBytes(total, uint64(total)))
		}
	})
}

// A sink's file is written with io_uring where the kernel allows it
// (whose queue costs nothing to end), else with Linux AIO.
func TestSinksWriteWithIOURingFirst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, f := createDirect(t)
	probe := newAsyncWriterWith(f, newURingQueue)
	if probe == nil {
		t.Skip("the kernel refuses io_uring here")
	}
	probe.discard()
	f, err := os.Create(filepath.Join(t.TempDir(), "sink"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sw, ok := newSinkWriter(f).(*asyncWriter)
	if !ok {
		t.Fatalf("a sink writes with %T, want an asyncWriter", newSinkWriter(f))
	}
	defer sw.discard()
	if _, ok := sw.q.(*uringQueue); !ok {
		t.Fatalf("a sink's writer queues with %T, want io_uring", sw.q)
	}
}

// A write the kernel refused direct (EINVAL) or wrote in part is written
// again through the page cache, and so are the writes after it: the file
// holds each byte once, in order. What the kernel is said not to have
// written is zeroed in the file, so that only the writing again restores
// it.
func TestAsyncWriterRewritesWhatTheKernelDidNotWrite(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		for name, fail := range map[string]func(rq asyncRequest) int64{
			"refused": func(asyncRequest) int64 { return -int64(unix.EINVAL) },
			"part":    func(rq asyncRequest) int64 { return int64(len(rq.b) / 3) },
		} {
			path, w := open(t)
			var mu sync.Mutex
			calls := 0
			w.result = func(rq asyncRequest, res int64) int64 {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls != 2 {
					return res
				}
				res = fail(rq)
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return res
				}
				defer f.Close()
				if _, err := f.WriteAt(make([]byte, int64(len(rq.b))-max(res, 0)), rq.off+max(res, 0)); err != nil {
					t.Error(err)
				}
				return res
			}
			writeChecked(t, w, path, randomBytes(5*directBuffer+777, 3))
			if w.direct {
				t.Fatalf("%s: the writer is still direct after a write it had to do again", name)
			}
		}
	})
}

// A write that fails is the writer's error, returned by Flush; the
// writer's goroutine ends all the same.
func TestAsyncWriterReportsAFailedWrite(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		_, w := open(t)
		w.result = func(rq asyncRequest, res int64) int64 {
			if rq.off == directBuffer {
				return -int64(unix.EIO)
			}
			return res
		}
		_, err := w.Write(randomBytes(4*directBuffer, 4))
		if ferr := w.Flush(); !errors.Is(errors.Join(err, ferr), syscall.EIO) {
			t.Fatalf("Write: %v, Flush: %v: want the failed write's EIO", err, ferr)
		}
	})
}

// An asynchronous writer asks the kernel for a data sync about once per
// syncChunk submitted, one at a time, so that the fsync at commit has
// only the last chunk to flush.
func TestAsyncWriterSyncsAsItGoes(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		path, w := open(t)
		writeChecked(t, w, path, randomBytes(3*syncChunk+directBuffer/2, 5))
		if w.syncs < 1 || w.syncs > 3 {
			t.Fatalf("%d syncs for %d bytes: want one per %d bytes at most, and at least one", w.syncs, 3*syncChunk+directBuffer/2, syncChunk)
		}
	})
}

// A sink file given up before its commit ends its asynchronous writer
// once the kernel finished the writes it held.
func TestAsyncWriterDiscardEnds(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		_, w := open(t)
		if _, err := w.Write(make([]byte, 5*directBuffer+7)); err != nil {
			t.Fatal(err)
		}
		w.discard()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.inflight) > 0 {
			t.Fatalf("%d writes still in flight after discard", len(w.inflight))
		}
	})
}

// Where the Go poller could not take the eventfd, its reads block in the
// kernel: the writer still ends, woken by the count it writes when it
// closes. The eventfd is made blocking here to stand for that case.
func TestAsyncWriterEndsWhenTheEventfdBlocks(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		path, w := open(t)
		if err := unix.SetNonblock(w.efd, false); err != nil {
			t.Fatal(err)
		}
		writeChecked(t, w, path, randomBytes(3*directBuffer+5, 6))
	})
}

// A write the kernel does not take (the submission is refused) is the writer's
// error, from Write and from Flush, and the writer still ends.
func TestAsyncWriterReportsARefusedSubmit(t *testing.T) {
	eachQueue(t, func(t *testing.T, open func(t *testing.T) (string, *asyncWriter)) {
		_, w := open(t)
		var want syscall.Errno
		restore := func() {}
		switch q := w.q.(type) {
		case *aioQueue:
			ctx := q.ctx
			q.ctx, want = 0, syscall.EINVAL // no such context
			restore = func() { q.ctx = ctx }
		case *uringQueue:
			fd := q.fd
			q.fd, want = -1, syscall.EBADF // no such ring
			restore = func() { q.fd = fd }
		}
		_, err := w.Write(randomBytes(2*directBuffer, 7))
		restore()
		if !errors.Is(err, want) {
			t.Fatalf("Write: %v, want the refused submit's %v", err, want)
		}
		if ferr := w.Flush(); !errors.Is(ferr, want) {
			t.Fatalf("Flush: %v, want the refused submit's %v", ferr, want)
		}
	})
}
