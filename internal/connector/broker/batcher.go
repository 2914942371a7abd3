package broker

import (
	"context"
	"time"
)

// Batcher gathers the messages that a reader's fetch goroutine hands over
// into batches: a batch waits for its first message, then is cut when it
// holds Size messages or Linger after its first one. Only the reader's
// Next calls it.
type Batcher[M any] struct {
	Size   int
	Linger time.Duration
	Msgs   <-chan M     // from the fetch goroutine
	Errs   <-chan error // the fetch goroutine's failures
	// Failed tells what a failure from Errs means: the error that ends the
	// reading, or nil when the reader recovers by itself. Nil: every
	// failure ends it.
	Failed func(error) error

	held []M // received and not yet returned (a Next cancelled midway)
}

// Next returns the next batch's messages, at least one. It returns ctx's
// error when ctx ends first, and keeps the messages received so far for
// the next call.
func (b *Batcher[M]) Next(ctx context.Context) ([]M, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var timer <-chan time.Time
	if len(b.held) > 0 {
		t := time.NewTimer(b.Linger)
		defer t.Stop()
		timer = t.C
	}
	for len(b.held) < b.Size {
		select {
		case m := <-b.Msgs:
			b.held = append(b.held, m)
			if timer == nil {
				t := time.NewTimer(b.Linger)
				defer t.Stop()
				timer = t.C
			}
			continue
		case err := <-b.Errs:
			if b.Failed != nil {
				err = b.Failed(err)
			}
			if err != nil {
				return nil, err
			}
			continue
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer:
		}
		break
	}
	msgs := b.held
	b.held = nil
	return msgs, nil
}

// Held returns the messages received and not returned by Next: for the
// reader's Close, which hands them back to the broker.
func (b *Batcher[M]) Held() []M { return b.held }
