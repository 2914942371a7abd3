package daemon

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// ticker is an unbounded source of the tests' registry: ten rows every
// 10 ms, numbered on from its position, until its run stops. It stands for
// a broker (the real ones have their own tests).
type ticker struct{}

var tickSchema = record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "v", Type: record.Int})

func (ticker) Unbounded() bool        { return true }
func (ticker) Schema() *record.Schema { return tickSchema }
func (ticker) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	return []connector.Task{{Key: "stream"}}, nil
}
func (ticker) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	next := 0
	if pos != nil {
		next, _ = strconv.Atoi(string(pos))
	}
	return &tickReader{next: next}, nil
}

type tickReader struct{ next int }

func (r *tickReader) Schema() *record.Schema { return tickSchema }
func (r *tickReader) Close() error           { return nil }
func (r *tickReader) Next(ctx context.Context) (*record.Batch, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Millisecond):
	}
	b := &record.Batch{Schema: tickSchema, Origin: "stream"}
	for range 10 {
		b.Rows = append(b.Rows, record.Row{int64(r.next), int64(r.next)})
		r.next++
		b.Read++
	}
	b.Pos = record.Position(strconv.Itoa(r.next))
	return b, nil
}

func registerTicker(r *connector.Registry) {
	r.AddSource(connector.Spec{Name: "ticker", Summary: "an endless stream (tests)"},
		func(p connector.Params) (connector.Source, error) { return ticker{}, nil })
}

// A continuous pipeline runs as one long run from the moment it loads: its
// progress shows in the history while it goes, a new version stops it at a
// batch boundary and goes on from its checkpoint, and stopping the daemon
// ends it committed, each record once.
func TestContinuousPipeline(t *testing.T) {
	h := newHarness(t, nil, nil)
	body := `name: stream
freshness: 5m
source: {type: ticker}
steps:
  - map: {doubled: v * %d}
sink:
  type: sqlite
  path: ${DATA}/out.db
  table: stream
  mode: upsert
  key: [id]
  create: true
`
	h.write("stream.yaml", body, 2)
	h.d.Reload(t.Context())
	h.advance(0) // the run queued at load starts
	h.waitRows("stream", 50)
	// Progress is stored while the run goes on.
	h.advance(11 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	var running state.Run
	for time.Now().Before(deadline) {
		rs, _ := h.d.store.Runs(t.Context(), state.RunFilter{Pipeline: "stream"})
		if len(rs) == 1 && rs[0].Status == state.StatusRunning && rs[0].Written > 0 {
			running = rs[0]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if running.ID == "" {
		t.Fatal("the continuous run's progress never reached the history")
	}
	var p api.PipelineDetail
	h.call("GET", "/api/v1/pipelines/stream", readToken, "", &p)
	if p.Status != "running" || p.Late {
		t.Errorf("continuous pipeline: status %s late %v", p.Status, p.Late)
	}

	// A new version: the run stops, the next goes on from its checkpoint.
	h.write("stream.yaml", body, 3)
	h.d.Reload(t.Context())
	first := h.waitRuns("the first version's run to stop", func(m map[string][]state.Run) bool { return len(m["stream"]) == 1 })["stream"][0]
	if first.Status != state.StatusCancelled || first.Read != first.Written {
		t.Fatalf("first run: %s read %d written %d", first.Status, first.Read, first.Written)
	}
	h.advance(0)
	h.waitRows("stream", int(first.Written)+50)
	h.stop()
	second := <-h.runs
	if second.ConfigHash == first.ConfigHash || second.Status != state.StatusCancelled {
		t.Fatalf("second run: version %s status %s", second.ConfigHash, second.Status)
	}
	rows := h.table("stream")
	if int64(len(rows)) != first.Written+second.Written {
		t.Errorf("table holds %d rows, the runs wrote %d + %d", len(rows), first.Written, second.Written)
	}
	for id, v := range rows {
		if (id < first.Written && v != 2*id) || (id >= first.Written && v != 3*id) {
			t.Fatalf("row %d = %d: the first version wrote ids below %d (×2), the second the rest (×3)", id, v, first.Written)
		}
	}
}
