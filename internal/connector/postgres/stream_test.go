package postgres

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestStreamReaderStopsBeforeTheRowsAreReused: the COPY's reader may still
// be read by pgx's goroutine after CopyFrom returned (a broken connection);
// once stop returns, a Read copies nothing, so the writer may fill the
// rows' buffer again (run with -race: a Read copying after stop is a race).
func TestStreamReaderStopsBeforeTheRowsAreReused(t *testing.T) {
	st := &copyStream{data: make(chan []byte, 8), abort: make(chan struct{}), done: make(chan error, 1)}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	r := &streamReader{st: st, timer: timer}
	rows := make([]byte, 1<<16)
	st.data <- rows
	var wg sync.WaitGroup
	var after error
	started := make(chan struct{})
	wg.Go(func() { // pgx's reading goroutine, left running
		p := make([]byte, 16)
		close(started)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			if _, err := r.Read(p); err != nil {
				after = err
				return
			}
		}
	})
	<-started
	time.Sleep(time.Millisecond) // it is reading the rows
	r.stop()
	for i := range rows { // the writer takes the buffer back
		rows[i] = 'x'
	}
	wg.Wait()
	if !errors.Is(after, errAbandoned) {
		t.Errorf("a Read after stop: %v, want errAbandoned", after)
	}
	if n, err := r.Read(make([]byte, 16)); n != 0 || !errors.Is(err, errAbandoned) {
		t.Errorf("Read after stop = %d, %v", n, err)
	}
}
