package brokertest

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

// Broker is a connector's side of the scenarios.
type Broker struct {
	// Register adds the connector's components to a registry.
	Register func(*connector.Registry)
	// New makes a stream or queue of t's own, removed at cleanup.
	New func(t testing.TB) Target
}

// Target is a stream or queue of one test.
type Target struct {
	// Source is the pipeline's source, in YAML lines: its type, url, what
	// it reads and any setting of its own.
	Source string
	// Publish sends bodies and returns once the broker holds them; any
	// goroutine may call it.
	Publish func(t testing.TB, bodies ...[]byte)
}

// Poison checks that a poison message fails its runs until it was
// delivered max_deliver times, then goes to the dead letters with its
// body; every other message lands once, none of those delivered with it
// is dead-lettered, and the messages flow on.
func Poison(t *testing.T, b Broker) {
	target := b.New(t)
	target.Publish(t, eventBodies(1, 300, 10)...)
	dir := t.TempDir()
	const maxDeliver, poison = 3, 137
	p := loadPipeline(t, b, dir, "poison", target, maxDeliver, poison, "0s")
	st := OpenState(t, dir)
	db := filepath.Join(dir, "out.db")
	// A run stops once the other rows are in: it may end before the poison
	// message comes back (after a NATS ack_wait, or a RabbitMQ channel's
	// close), or while it holds a delivery of it that its step has not
	// seen, which counts towards max_deliver all the same. So the pipeline
	// runs until the message is dead-lettered, and the runs that failed on
	// it are at most max_deliver.
	failed := 0
	deadline := time.Now().Add(time.Minute) // a few ack_waits
	for run := 1; ; run++ {
		if failed > maxDeliver || time.Now().After(deadline) {
			t.Fatalf("%d runs failed and the poison message still blocks the others", failed)
		}
		err := runUntil(t, p, st, db, 299)
		if err == nil {
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
	if failed < 1 || failed > maxDeliver {
		t.Errorf("%d runs failed on the poison message, want 1 to %d (max_deliver)", failed, maxDeliver)
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
	// The messages flow on: new ones land, the poison one never again.
	target.Publish(t, eventBodies(301, 50, 10)...)
	if err := runUntil(t, p, st, db, 349); err != nil {
		t.Fatal(err)
	}
	if ids := tableIDs(t, db); len(ids) != 349 {
		t.Fatalf("%d rows after more messages, want 349", len(ids))
	}
	if dls, _ := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "poison"}); len(dls) != 1 {
		t.Errorf("%d dead letters after more messages, want still 1", len(dls))
	}
}

// SlowSink checks that with a slow step (a tenth of the producer's rate)
// and a fast producer the engine's heap stays flat, because the source
// takes at most its window ahead of the sink, and every message lands
// once. It skips in -short.
func SlowSink(t *testing.T, b Broker) {
	if testing.Short() {
		t.Skip("slow sink: not in -short")
	}
	target := b.New(t)
	dir := t.TempDir()
	const total = 20000 // 1 KiB each: 20 MiB if anything buffered them all
	p := loadPipeline(t, b, dir, "slow", target, 5, 0, "10ms")
	st := OpenState(t, dir)
	db := filepath.Join(dir, "out.db")

	// The producer publishes everything, a chunk at a time so that it
	// holds little itself, while the pipeline reads.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for from := 1; from <= total; from += 500 {
			target.Publish(t, eventBodies(from, 500, 1000)...)
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
	err := runUntil(t, p, st, db, total)
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
		t.Errorf("the heap grew by %d MiB while %d MiB waited in the broker: messages are buffered beyond the source's window", growth>>20, total>>10)
	}
}

// OpenState opens a state store in dir, closed at cleanup.
func OpenState(t testing.TB, dir string) state.Store {
	t.Helper()
	st, err := sqlitestate.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

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

const pipelineYAML = `name: %s
source:
  %s
  linger: 20ms
  max_deliver: %d
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

// loadPipeline loads, from a file in dir, a pipeline that reads target
// with maxDeliver, fails on the record failID and sleeps sleep per batch.
func loadPipeline(t *testing.T, b Broker, dir, name string, target Target, maxDeliver, failID int, sleep string) *config.Pipeline {
	t.Helper()
	r := connector.NewRegistry()
	b.Register(r)
	sqlitesink.Register(r)
	step.Register(r)
	r.AddStep(faultSpec, newFaultStep)
	source := strings.ReplaceAll(strings.TrimSpace(target.Source), "\n", "\n  ")
	src := fmt.Sprintf(pipelineYAML, name, source, maxDeliver, failID, sleep)
	p, err := config.Load(filepath.Join(dir, "pipeline.yaml"), []byte(src), config.Options{Registry: r, Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return p
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
func runUntil(t *testing.T, p *config.Pipeline, st state.Store, db string, want int) error {
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
	var err error
	go func() {
		defer close(done)
		_, err = engine.Run(ctx, p, opts)
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
	return err
}

func eventBodies(from, n int, pad int) [][]byte {
	out := make([][]byte, n)
	fill := strings.Repeat("x", pad)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id": %d, "v": "%s"}`, from+i, fill)
	}
	return out
}
