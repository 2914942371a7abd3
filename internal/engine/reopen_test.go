package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
)

// restartingSource plays a database server that restarts during a run.
// Task a loses its connection at its 4th batch (when lose is set); the
// opens that follow fail with down["a"] in order (connection refused while
// the server is down, "starting up" while it recovers) before one succeeds.
// The first open of task b fails with down["b"].
type restartingSource struct {
	numSource
	lose  bool
	mu    sync.Mutex
	down  map[string][]error
	lost  bool
	opens map[string]int
}

func (s *restartingSource) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	s.mu.Lock()
	s.opens[t.Key]++
	if (t.Key != "a" || s.lost) && len(s.down[t.Key]) > 0 {
		err := s.down[t.Key][0]
		s.down[t.Key] = s.down[t.Key][1:]
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	r, err := s.numSource.Open(ctx, env, t, pos)
	if err != nil || t.Key != "a" || !s.lose {
		return r, err
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
// the last position handed on; a later task that meets the outage at its
// first open waits the same way.
func TestSourceReopenWaitsForTheServerToComeBack(t *testing.T) {
	refused := func() error { return connector.Unavailable(errors.New("connect: connection refused")) }
	startingUp := func() error { return connector.Transient(errors.New("the database system is starting up")) }
	tasks := map[string]int{"a": 2000, "b": 500}
	src := &restartingSource{numSource: numSource{tasks: tasks, batch: 100}, lose: true, opens: map[string]int{},
		down: map[string][]error{"a": {refused(), startingUp(), refused()}, "b": {refused(), startingUp()}}}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	res, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !src.lost || src.opens["a"] != 5 || src.opens["b"] != 3 {
		t.Fatalf("lost %v, opens %v: want a opened 1+3+1 times, b 2+1", src.lost, src.opens)
	}
	if res.Run.Read != 2500 || !res.Conserved() {
		t.Fatalf("read %d (conserved %v), want every row once", res.Run.Read, res.Conserved())
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}

// TestSourceOpenErrorThatIsNoOutageFailsAtOnce: an open that fails for
// another reason than an outage is not retried.
func TestSourceOpenErrorThatIsNoOutageFailsAtOnce(t *testing.T) {
	tasks := map[string]int{"a": 300, "b": 300}
	src := &restartingSource{numSource: numSource{tasks: tasks, batch: 100}, opens: map[string]int{},
		down: map[string][]error{"b": {errors.New("permission denied for table b")}}}
	sink := newMemSink(connector.WriterInfo{Transactional: true})
	_, err := engine.Run(context.Background(), pipeline(t, src, sink), engine.Options{Store: openStore(t)})
	if err == nil || !strings.Contains(err.Error(), "permission denied") || src.opens["b"] != 1 {
		t.Fatalf("err %v after %d opens of b, want the open's error at the first", err, src.opens["b"])
	}
}
