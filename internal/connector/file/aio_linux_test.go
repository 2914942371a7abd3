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

// openAIO opens a new file for an asynchronous writer, or skips the test
// where the file system refuses direct writes or the kernel AIO.
func openAIO(t *testing.T) (path string, w *aioWriter) {
	t.Helper()
	path, f := createDirect(t)
	if w = newAIOWriter(f); w == nil {
		t.Skip("the kernel refuses asynchronous I/O here")
	}
	return path, w
}

// Where the kernel allows it, a sink writes its file with asynchronous
// requests; the file holds exactly the bytes written, whatever the length
// of the tail, and no more than them (the space reserved ahead is cut).
func TestAIOWriterWritesEveryByte(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, total := range []int{0, 1, directAlign, directBuffer + 1, aioBuffers*directBuffer + 3*directAlign + 5, aioReserve + directBuffer/2} {
		path, w := openAIO(t)
		writeChecked(t, w, path, randomBytes(total, uint64(total)))
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "sink"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sw, ok := newSinkWriter(f).(*aioWriter)
	if !ok {
		t.Skip("a sink does not write with asynchronous requests here")
	}
	sw.discard()
}

// A write the kernel refused direct (EINVAL) or wrote in part is written
// again through the page cache, and so are the writes after it: the file
// holds each byte once, in order. What the kernel is said not to have
// written is zeroed in the file, so that only the writing again restores
// it.
func TestAIOWriterRewritesWhatTheKernelDidNotWrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for name, fail := range map[string]func(rq aioRequest) int64{
		"refused": func(aioRequest) int64 { return -int64(unix.EINVAL) },
		"part":    func(rq aioRequest) int64 { return int64(len(rq.b) / 3) },
	} {
		path, w := openAIO(t)
		var mu sync.Mutex
		calls := 0
		w.result = func(rq aioRequest, res int64) int64 {
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
}

// A write that fails is the writer's error, returned by Flush; the
// writer's goroutine ends all the same.
func TestAIOWriterReportsAFailedWrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, w := openAIO(t)
	w.result = func(rq aioRequest, res int64) int64 {
		if rq.off == directBuffer {
			return -int64(unix.EIO)
		}
		return res
	}
	_, err := w.Write(randomBytes(4*directBuffer, 4))
	if ferr := w.Flush(); !errors.Is(errors.Join(err, ferr), syscall.EIO) {
		t.Fatalf("Write: %v, Flush: %v: want the failed write's EIO", err, ferr)
	}
}

// An asynchronous writer asks the kernel for a data sync about once per
// syncChunk submitted, one at a time, so that the fsync at commit has
// only the last chunk to flush.
func TestAIOWriterSyncsAsItGoes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path, w := openAIO(t)
	writeChecked(t, w, path, randomBytes(3*syncChunk+directBuffer/2, 5))
	if w.syncs < 1 || w.syncs > 3 {
		t.Fatalf("%d syncs for %d bytes: want one per %d bytes at most, and at least one", w.syncs, 3*syncChunk+directBuffer/2, syncChunk)
	}
}

// A sink file given up before its commit ends its asynchronous writer
// once the kernel finished the writes it held.
func TestAIOWriterDiscardEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, w := openAIO(t)
	if _, err := w.Write(make([]byte, 5*directBuffer+7)); err != nil {
		t.Fatal(err)
	}
	w.discard()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inflight) > 0 {
		t.Fatalf("%d writes still in flight after discard", len(w.inflight))
	}
}

// Where the Go poller could not take the eventfd, its reads block in the
// kernel: the writer still ends, woken by the count it writes when it
// closes. The eventfd is made blocking here to stand for that case.
func TestAIOWriterEndsWhenTheEventfdBlocks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path, w := openAIO(t)
	if err := unix.SetNonblock(w.efd, false); err != nil {
		t.Fatal(err)
	}
	writeChecked(t, w, path, randomBytes(3*directBuffer+5, 6))
}

// A write the kernel does not take (io_submit refuses it) is the writer's
// error, from Write and from Flush, and the writer still ends.
func TestAIOWriterReportsARefusedSubmit(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, w := openAIO(t)
	ctx := w.ctx
	w.ctx = 0 // no such context: io_submit fails with EINVAL
	_, err := w.Write(randomBytes(2*directBuffer, 7))
	w.ctx = ctx
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Write: %v, want the refused submit's EINVAL", err)
	}
	if ferr := w.Flush(); !errors.Is(ferr, syscall.EINVAL) {
		t.Fatalf("Flush: %v, want the refused submit's EINVAL", ferr)
	}
}
