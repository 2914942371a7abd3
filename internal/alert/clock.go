package alert

import "time"

// Clock is the notifier's view of time: when a condition began, how long a
// notification took to arrive, and how long to wait before a retry. Tests
// pass a fake one to drive backoff without sleeping.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
