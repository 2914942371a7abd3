package broker

import "time"

// Settle lets a reader's fetch goroutine wait until the reader has
// settled: every message it handed over cut into a batch, and every batch
// acknowledged.
//
// After a failed run, the broker delivers the messages of the failed
// batches again. One of them may be what failed (a poison message), and
// every message delivered with it counts a delivery too: so fetch hands
// messages delivered again over one at a time, each once the one before
// settled, until a message delivered for the first time shows that they
// are behind. A poison message then fails its runs alone and reaches
// max_deliver alone.
type Settle struct {
	changed chan struct{}
}

// NewSettle returns a Settle for one reader.
func NewSettle() *Settle { return &Settle{changed: make(chan struct{}, 1)} }

// Signal wakes a Wait: the reader returned or acknowledged a batch. It
// never blocks.
func (s *Settle) Signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Wait waits until idle reports true, at most limit; it reports false when
// stop is closed first (the reader is closing). idle is the reader's own
// test, made under the lock that guards what it reads.
func (s *Settle) Wait(stop <-chan struct{}, limit time.Duration, idle func() bool) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if idle() {
			return true
		}
		select {
		case <-stop:
			return false
		case <-deadline.C:
			return true
		case <-s.changed:
		}
	}
}
