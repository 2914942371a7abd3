package engine_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// brokerSource is a double of an unbounded source (connector.Acker): its
// reader waits for numbered messages on a channel and never ends by itself.
// It records what was acknowledged, and checks every acknowledgement
// against what the sink had committed at that instant.
type brokerSource struct {
	msgs  chan int64
	sink  *memSink
	batch int

	mu      sync.Mutex
	acked   int64 // highest position acknowledged
	early   []string
	closed  int
	afterCl int // acks after Close
}

func (s *brokerSource) Plan(context.Context, *connector.Env) ([]connector.Task, error) {
	return []connector.Task{{Key: "q"}}, nil
}

func (s *brokerSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	return &brokerReader{s: s}, nil
}

type brokerReader struct {
	s      *brokerSource
	closed bool
}

func (r *brokerReader) Schema() *record.Schema { return numSchema }

func (r *brokerReader) Next(ctx context.Context) (*record.Batch, error) {
	b := &record.Batch{Schema: numSchema, Origin: "q"}
	var last int64
	for b.Read < r.s.batch {
		if b.Read == 0 { // wait for the first message
			select {
			case n := <-r.s.msgs:
				last = n
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else {
			select {
			case n := <-r.s.msgs:
				last = n
			default:
				b.Pos = record.Position(strconv.FormatInt(last+1, 10))
				return b, nil
			}
		}
		b.Read++
		b.Rows = append(b.Rows, record.Row{"q", last})
		b.Lines = append(b.Lines, last)
	}
	b.Pos = record.Position(strconv.FormatInt(last+1, 10))
	return b, nil
}

func (r *brokerReader) Ack(ctx context.Context, pos record.Position) error {
	n, err := strconv.ParseInt(string(pos), 10, 64)
	if err != nil {
		return err
	}
	r.s.sink.mu.Lock()
	committed := int64(len(r.s.sink.rows["q"]))
	r.s.sink.mu.Unlock()
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.closed {
		r.s.afterCl++
	}
	if n > committed {
		r.s.early = append(r.s.early, string(pos))
	}
	r.s.acked = max(r.s.acked, n)
	return nil
}

func (r *brokerReader) Close() error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.closed = true
	r.s.closed++
	return nil
}

// A broker's reader waits inside Next for messages that do not come: the
// soft stop interrupts that wait, what was read is committed and then
// acknowledged, every acknowledgement follows its commit, and the reader
// is closed once, after the last acknowledgement.
func TestAckerAcknowledgesAfterCommitAndStopsSoftly(t *testing.T) {
	for _, info := range []connector.WriterInfo{{Transactional: true}, {}} {
		t.Run("transactional="+strconv.FormatBool(info.Transactional), func(t *testing.T) {
			const total = 5000
			sink := newMemSink(info)
			src := &brokerSource{msgs: make(chan int64, total), sink: sink, batch: 64}
			for i := range int64(total) {
				src.msgs <- i
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			opts := engine.Options{Store: openStore(t), ProgressEvery: time.Millisecond, Progress: func(p engine.Progress) {
				if p.Written == total {
					once.Do(cancel) // everything read: the reader now waits in Next
				}
			}}
			done := make(chan error, 1)
			var res *engine.Result
			go func() {
				var err error
				res, err = engine.Run(ctx, pipeline(t, src, sink), opts)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || res.Run.Status != state.StatusCancelled {
					t.Fatalf("err %v status %s, want a soft stop", err, res.Run.Status)
				}
			case <-time.After(time.Minute):
				t.Fatal("the run did not stop: the soft stop did not reach a reader waiting in Next")
			}
			checkExactlyOnce(t, sink, map[string]int{"q": total}, func(int64) bool { return false })
			src.mu.Lock()
			defer src.mu.Unlock()
			if len(src.early) > 0 {
				t.Errorf("positions acknowledged before the sink committed them: %v", src.early)
			}
			if src.acked != total {
				t.Errorf("acknowledged up to %d, want %d", src.acked, total)
			}
			if src.closed != 1 || src.afterCl != 0 {
				t.Errorf("reader closed %d times, %d acknowledgements after Close; want once and none", src.closed, src.afterCl)
			}
		})
	}
}

// A failed run acknowledges nothing past its last commit.
func TestAckerNotAcknowledgedWhenTheCommitFails(t *testing.T) {
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	sink.failAtCommit = 3
	src := &brokerSource{msgs: make(chan int64, 1000), sink: sink, batch: 100}
	for i := range int64(1000) {
		src.msgs <- i
	}
	_, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err == nil {
		t.Fatal("the run succeeded although its third commit failed")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	committed := int64(len(sink.rows["q"]))
	if committed == 0 || src.acked != committed {
		t.Errorf("acknowledged up to %d with %d rows committed; want the committed ones exactly", src.acked, committed)
	}
	if len(src.early) > 0 || src.closed != 1 {
		t.Errorf("early acks %v, closed %d times", src.early, src.closed)
	}
}
