package file

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// randomBytes is n bytes drawn from seed.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// openDirect opens a new file for a direct writer, or skips the test where
// the file system refuses direct writes from the start.
func openDirect(t *testing.T) (path string, f *os.File, w *directWriter) {
	t.Helper()
	path, f = createDirect(t)
	return path, f, newDirectWriter(f)
}

// createDirect creates a file with O_DIRECT on, or skips the test where the
// file system refuses direct writes from the start.
func createDirect(t *testing.T) (path string, f *os.File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "out")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if setDirect(f, true) != nil {
		t.Skip("this file system refuses direct writes from the start")
	}
	return path, f
}

// writeChecked writes want through w in one call, flushes, and checks
// that the file at path holds exactly want.
func writeChecked(t *testing.T, w flushWriter, path string, want []byte) {
	t.Helper()
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the file (%d bytes) is not the %d bytes written", len(got), len(want))
	}
}

// A sink file holds exactly the bytes written, in order, whatever the
// sizes of the writes and of the tail left for Flush: written direct, or
// through the page cache where the file system refuses direct writes.
func TestSinkWriterWritesEveryByte(t *testing.T) {
	dir := t.TempDir()
	writers := map[string]func(*os.File) flushWriter{"direct when allowed": newSinkWriter, "buffered": newBufferedSinkWriter}
	for name, open := range writers {
		for _, total := range []int{0, 1, directAlign - 1, directAlign, directBuffer - 1, directBuffer, directBuffer + 1, 3*directBuffer + 12345} {
			want := randomBytes(total, uint64(total))
			rng := rand.New(rand.NewPCG(uint64(total), 8)) // the sizes of the writes
			path := filepath.Join(dir, "out")
			f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			w := open(f)
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(300000))
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatalf("%s, %d bytes: Write: %v", name, total, err)
				}
				rest = rest[n:]
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("%s, %d bytes: Flush: %v", name, total, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d bytes: the file holds %d bytes, not those written", name, total, len(got))
			}
		}
	}
}

// A sink file given up before its commit stops its writer: no goroutine
// stays behind.
func TestSinkWriterDiscardEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newSinkWriter(f)
	if _, err := w.Write(make([]byte, 5*directBuffer+7)); err != nil {
		t.Fatal(err)
	}
	if d, ok := w.(interface{ discard() }); ok {
		d.discard()
	}
}

// A file system that refuses a direct write after part of a buffer went
// out gets the rest of that buffer, and of the file, through the page
// cache: the file holds each byte once, in order.
func TestSinkWriterFallsBackMidFile(t *testing.T) {
	path, f, w := openDirect(t)
	calls := 0
	w.writeFile = func(b []byte) (int, error) {
		calls++
		if calls == 2 { // the second buffer: half of it, then refused
			n, err := f.Write(b[:len(b)/2])
			if err != nil {
				return n, err
			}
			return n, unix.EINVAL
		}
		return f.Write(b)
	}
	writeChecked(t, w, path, randomBytes(4*directBuffer+777, 3))
	if w.direct || calls < 4 {
		t.Fatalf("direct %v after %d writes: want the page cache after the refusal", w.direct, calls)
	}
}

// A direct writer syncs the file's data as it goes, about once per
// syncChunk written, beside its writes, so that the fsync at commit has
// only the last chunk to flush; the file still holds every byte once, in
// order, and the syncing goroutine ends with the writer.
func TestSinkWriterSyncsAsItGoes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path, f, w := openDirect(t)
	var written atomic.Int64
	var mu sync.Mutex
	var syncedAt []int64
	w.writeFile = func(b []byte) (int, error) {
		n, err := f.Write(b)
		written.Add(int64(n))
		return n, err
	}
	w.syncFile = func() error {
		mu.Lock()
		syncedAt = append(syncedAt, written.Load())
		mu.Unlock()
		return dataSync(f)
	}
	writeChecked(t, w, path, randomBytes(3*syncChunk+directBuffer/2, 5))
	mu.Lock()
	defer mu.Unlock()
	if len(syncedAt) < 1 || len(syncedAt) > 3 {
		t.Fatalf("synced after %v bytes: want one sync per %d bytes at most, and at least one", syncedAt, syncChunk)
	}
	for i, at := range syncedAt {
		if at < int64(i+1)*syncChunk {
			t.Fatalf("sync %d after %d bytes, before %d were written", i+1, at, (i+1)*syncChunk)
		}
	}
}
