package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
)

// restartingSource plays a database server that restarts in the middle of
// task a: the read fails on the lost connection, then the server refuses
// connections (down) and answers "starting up" (transient) before it takes
// them again. Task b's first open meets the server down too.
type restartingSource struct {
	numSource
	mu      sync.Mutex
	down    []error // what the next opens fail with, in order
	lost    bool    // task a's connection was lost
	opens   int
	started bool // task a was opened once: later opens meet the outage
}

func (s *restartingSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	s.mu.Lock()
	s.opens++
	if s.started && len(s.down) > 0 && (t.Key == "a" && s.lost || t.Key == "b") {
		err := s.down[0]
		s.down = s.down[1:]
		s.mu.Unlock()
		return nil, err
	}
	s.started = true
	s.mu.Unlock()
	r, err := s.numSource.Open(ctx, env, t, pos)
	if err != nil {
		return nil, err
	}
	if t.Key != "a" {
		return r, nil
	}
	return &losingReader{Reader: r, s: s}, nil
}

type losingReader struct {
	connector.Reader
	s *restartingSource
	n int
}

func (r *losingReader) Next(ctx context.Context) (*record.Batch, error) {
	r.n++
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.n == 4 && !r.s.lost {
		r.s.lost = true
		return nil, connector.Transient(errors.New("unexpected EOF"))
	}
	return r.Reader.Next(ctx)
}

// TestSourceReopenWaitsForTheServerToComeBack: a source whose server
// restarts mid-run is opened again, with backoff, until it answers, from
// the last position handed on; so is a later task that meets the outage.
func TestSourceReopenWaitsForTheServerToComeBack(t *testing.T) {
	tasks := map[string]int{"a": 2000, "b": 500}
	src := &restartingSource{numSource: numSource{tasks: tasks, batch: 100}, down: []error{
		connector.Unavailable(errors.New("connect: connection refused")),
		connector.Transient(errors.New("the database system is starting up")),
		connector.Unavailable(errors.New("connect: connection refused")),
	}}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	res, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(src.down) != 0 || !src.lost {
		t.Fatalf("the outage was not met: %d failures left, lost %v", len(src.down), src.lost)
	}
	if res.Run.Read != 2500 || !res.Conserved() {
		t.Fatalf("read %d (conserved %v), want every row once", res.Run.Read, res.Conserved())
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}

// TestSourceOpenErrorThatIsNoOutageFailsAtOnce: an error that is neither
// transient nor unavailable is not retried.
func TestSourceOpenErrorThatIsNoOutageFailsAtOnce(t *testing.T) {
	tasks := map[string]int{"a": 300, "b": 300}
	src := &restartingSource{numSource: numSource{tasks: tasks, batch: 100}, down: []error{errors.New("permission denied for table b")}}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	_, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err == nil || !errors.Is(err, err) || src.opens > 3 {
		t.Fatalf("err %v after %d opens, want the open's error without retries", err, src.opens)
	}
}
