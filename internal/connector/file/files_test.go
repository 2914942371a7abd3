package file

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"go.uber.org/goleak"
)

// A read ahead gives the stream it reads, in order and whole, whatever the
// sizes of the reads on either side, then the stream's error; closed before
// the end, its goroutine ends.
func TestReadAheadGivesTheStreamThenItsError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var text bytes.Buffer
	for i := range 5000 {
		text.WriteString(strings.Repeat("x", i%13) + "\n")
	}
	broken := errors.New("the disk is gone")
	for _, block := range []int{1, 7, 4096, 1 << 20} {
		src := io.MultiReader(iotest.OneByteReader(bytes.NewReader(text.Bytes()[:100])), iotest.HalfReader(bytes.NewReader(text.Bytes()[100:])), iotest.ErrReader(broken))
		ra := newReadAhead(src, block, 2)
		got, err := io.ReadAll(iotest.HalfReader(ra))
		if !errors.Is(err, broken) || !bytes.Equal(got, text.Bytes()) {
			t.Errorf("blocks of %d: %d bytes (want %d), error %v", block, len(got), text.Len(), err)
		}
		ra.Close()
		ra.Close() // twice is harmless

		ra = newReadAhead(bytes.NewReader(text.Bytes()), block, 2)
		if _, err := io.ReadFull(ra, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		ra.Close() // the goroutine may be waiting to hand a block over
	}
}

// A compressed file cut short fails its reader with the cut, after the rows
// before it.
func TestTruncatedGzipFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := testEnv(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(customersCSV(50_000)))
	zw.Close()
	if err := os.WriteFile(filepath.Join(env.Dir, "customers.csv.gz"), gz.Bytes()[:gz.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := openLookup(t, env, strings.Replace(customersLookup, "customers.csv", "customers.csv.gz", 1))
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("a truncated gzip file: %v, want unexpected EOF", err)
	}
}
