package natsjs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	sqlitesink "github.com/backbone-etl/backbone/internal/connector/sqlite"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
	"github.com/backbone-etl/backbone/internal/step"
)

// Pipeline-level tests: the real engine reads a stream of the test server
// into a SQLite table. A test step stands for a step that fails a run on
// one record (a poison message) or that is slow.

// faultStep fails the batch holding the record with id fail_id, and
// sleeps sleep per batch.
type faultStep struct {
	FailID int64              `yaml:"fail_id"`
	Sleep  connector.Duration `yaml:"sleep"`
	id     int
}

var faultSpec = connector.Spec{Name: "testfault", Summary: "test step", Fields: []connector.FieldSpec{
	{Name: "fail_id", Type: connector.TInt}, {Name: "sleep", Type: connector.TDuration},
}}

func newFaultStep(p connector.Params) (connector.Step, error) {
	s := &faultStep{}
	return s, p.Decode(s)
}

func (s *faultStep) Bind(in *record.Schema, _ *connector.StepEnv) (*record.Schema, error) {
	i, ok := in.Index("id")
	if !ok {
		return nil, errors.New("no field id")
	}
	s.id = i
	return in, nil
}

func (s *faultStep) Process(ctx context.Context, b *record.Batch) error {
	time.Sleep(time.Duration(s.Sleep))
	for _, r := range b.Rows {
		if s.FailID != 0 && r[s.id] == s.FailID {
			return fmt.Errorf("record %d breaks the step", s.FailID)
		}
	}
	return nil
}

func testRegistry() *connector.Registry {
	r := connector.NewRegistry()
	Register(r)
	sqlitesink.Register(r)
	step.Register(r)
	r.AddStep(faultSpec, newFaultStep)
	return r
}

// loadPipeline loads a pipeline file written in dir.
func loadPipeline(t *testing.T, dir, src string) *config.Pipeline {
	t.Helper()
	p, err := config.Load(filepath.Join(dir, "pipeline.yaml"), []byte(src), config.Options{Registry: testRegistry(), Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return p
}

func openState(t testing.TB, dir string) state.Store {
	t.Helper()
	st, err := sqlitestate.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// tableIDs returns the ids in the sink's table, nil before it exists.
func tableIDs(t testing.TB, db string) []int64 {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT id FROM events ORDER BY id`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// tableCount counts the rows of the sink's table, 0 before it exists.
func tableCount(t testing.TB, db string) int {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// runUntil runs p until the sink holds want rows (then stops it softly),
// or until the run ends by itself.
func runUntil(t *testing.T, p *config.Pipeline, st state.Store, db string, want int) (*engine.Result, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	opts := engine.Options{Store: st, ProgressEvery: 100 * time.Millisecond, Progress: func(engine.Progress) {
		if tableCount(t, db) >= want {
			once.Do(cancel)
		}
	}}
	done := make(chan struct{})
	var res *engine.Result
	var err error
	go func() {
		defer close(done)
		res, err = engine.Run(ctx, p, opts)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cancel()
		<-done
		t.Fatalf("the run did not reach %d rows in 2 minutes", want)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // stopped by the test
	}
	return res, err
}

func eventBodies(from, n int, pad int) [][]byte {
	out := make([][]byte, n)
	fill := strings.Repeat("x", pad)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id": %d, "v": "%s"}`, from+i, fill)
	}
	return out
}

const pipelineYAML = `name: %s
source:
  type: nats
  url: %s
  stream: %s
  linger: 20ms
  max_deliver: %d
  ack_wait: 5s
  schema: {id: int, v: string}
steps:
  - testfault: {fail_id: %d, sleep: %s}
sink:
  type: sqlite
  path: out.db
  table: events
  mode: upsert
  key: [id]
  create: true
settings:
  batch_rows: 50
  workers: 1
`

// A poison message fails its runs until it was delivered max_deliver
// times, then goes to the dead letters with its body; every other message
// lands once, and none of those delivered with it is dead-lettered.
func TestPoisonMessageIsDeadLetteredAndTheStreamFlows(t *testing.T) {
	_, js := testJS(t)
	stream := testStream(t, js, nil)
	publish(t, js, stream+".events", eventBodies(1, 300, 10)...)
	dir := t.TempDir()
	const maxDeliver, poison = 3, 137
	p := loadPipeline(t, dir, fmt.Sprintf(pipelineYAML, "poison", testURL(), stream, maxDeliver, poison, "0s"))
	st := openState(t, dir)
	db := filepath.Join(dir, "out.db")
	failed := 0
	deadline := time.Now().Add(time.Minute) // a few ack_waits
	for run := 1; ; run++ {
		if failed > maxDeliver || time.Now().After(deadline) {
			t.Fatalf("%d runs failed and the poison message still blocks the stream", failed)
		}
		_, err := runUntil(t, p, st, db, 299)
		if err == nil {
			// A run may end (every other row in) before the poison message
			// is delivered again (ack_wait): go on until it is dead-lettered.
			if n, _ := st.CountDeadLetters(context.Background(), state.DLQFilter{Pipeline: "poison"}); n > 0 {
				break
			}
			continue
		}
		if !strings.Contains(err.Error(), "breaks the step") {
			t.Fatalf("run %d: %v", run, err)
		}
		failed++
	}
	if failed != maxDeliver {
		t.Errorf("%d runs failed on the poison message, want %d (max_deliver)", failed, maxDeliver)
	}
	ids := tableIDs(t, db)
	if len(ids) != 299 || ids[0] != 1 || ids[len(ids)-1] != 300 {
		t.Fatalf("%d rows in the sink, want 299 (all but the poison one)", len(ids))
	}
	dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "poison"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || !strings.Contains(string(dls[0].Record), fmt.Sprintf(`"id": %d`, poison)) || !strings.Contains(dls[0].Error, "max_deliver") {
		for _, d := range dls {
			t.Logf("dead letter %s: %s: %s", d.Loc, d.Error, d.Record)
		}
		t.Fatalf("%d dead letters, want one: the poison message with its body", len(dls))
	}
	// The stream flows on: new messages land, the poison one never again.
	publish(t, js, stream+".events", eventBodies(301, 50, 10)...)
	if _, err := runUntil(t, p, st, db, 349); err != nil {
		t.Fatal(err)
	}
	if ids := tableIDs(t, db); len(ids) != 349 {
		t.Fatalf("%d rows after more messages, want 349", len(ids))
	}
	if dls, _ := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "poison"}); len(dls) != 1 {
		t.Errorf("%d dead letters after more messages, want still 1", len(dls))
	}
}

// A slow step (a tenth of the producer's rate) with a fast producer: the
// engine's heap stays flat, because the consumer pulls at most a batch
// ahead, and every message lands once.
func TestSlowSinkKeepsMemoryFlatAndDropsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("slow sink: not in -short")
	}
	_, js := testJS(t)
	stream := testStream(t, js, nil)
	dir := t.TempDir()
	const total = 20000 // 1 KiB each: 20 MiB if anything buffered them all
	p := loadPipeline(t, dir, fmt.Sprintf(pipelineYAML, "slow", testURL(), stream, 5, 0, "10ms"))
	st := openState(t, dir)
	db := filepath.Join(dir, "out.db")

	// The producer publishes everything, a chunk at a time so that it
	// holds little itself, while the pipeline reads.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for from := 1; from <= total; from += 500 {
			publish(t, js, stream+".events", eventBodies(from, 500, 1000)...)
		}
	}()
	var mu sync.Mutex
	var peak, base uint64
	sample := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base = sample()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				h := sample()
				mu.Lock()
				peak = max(peak, h)
				mu.Unlock()
			}
		}
	}()
	_, err := runUntil(t, p, st, db, total)
	close(stop)
	<-sampled
	<-produced
	if err != nil {
		t.Fatal(err)
	}
	ids := tableIDs(t, db)
	if len(ids) != total || ids[0] != 1 || ids[total-1] != total {
		t.Fatalf("%d rows landed, want %d", len(ids), total)
	}
	mu.Lock()
	defer mu.Unlock()
	growth := int64(peak) - int64(base)
	t.Logf("heap in use: %d MiB before, peak %d MiB during the run", base>>20, peak>>20)
	if growth > 12<<20 {
		t.Errorf("the heap grew by %d MiB while %d MiB waited in the stream: messages are buffered beyond the pull window", growth>>20, total>>10)
	}
}
