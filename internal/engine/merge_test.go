package engine_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// mergeSink's writer merges batches: Prepare marks a batch with its rows,
// MergePrepared joins the marks, and Write checks that a batch's mark is
// its own rows, merged or not.
type mergeSink struct {
	*memSink
	mu     sync.Mutex
	merges []int // parts of each merged batch
}

func (s *mergeSink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	return &mergeWriter{memWriter: &memWriter{s: s.memSink}, ms: s}, nil
}

type mergeWriter struct {
	*memWriter
	ms     *mergeSink
	writes int
}

func rowsMark(b *record.Batch) string {
	return fmt.Sprint(b.Rows)
}

func (w *mergeWriter) Prepare(b *record.Batch) error {
	b.Prepared = rowsMark(b)
	return nil
}

func (w *mergeWriter) Mergeable(b *record.Batch) bool { return b.Prepared != nil }

func (w *mergeWriter) MergePrepared(merged *record.Batch, parts []*record.Batch) any {
	w.ms.mu.Lock()
	w.ms.merges = append(w.ms.merges, len(parts))
	w.ms.mu.Unlock()
	return rowsMark(merged)
}

func (w *mergeWriter) Write(ctx context.Context, b *record.Batch) (int, error) {
	if b.Prepared != rowsMark(b) {
		return 0, fmt.Errorf("batch prepared as %v, holds %v", b.Prepared, rowsMark(b))
	}
	if w.writes++; w.writes < 4 {
		time.Sleep(20 * time.Millisecond) // a slow start: batches queue up behind it
	}
	return w.memWriter.Write(ctx, b)
}

// Batches of one task ready at once are written as one by a writer that
// merges them: every row lands once, rows refused in a merged batch and
// records rejected by the source become the dead letters of their own
// lines, and the checkpoints are those of the last batches.
func TestReadyBatchesMerge(t *testing.T) {
	tasks := map[string]int{"a": 3000, "b": 2000}
	bad := map[int]bool{5: true, 1999: true}
	src := &numSource{tasks: tasks, batch: 50, bad: bad}
	sink := &mergeSink{memSink: newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8})}
	sink.refuse = map[int64]bool{7: true, 260: true, 2500: true}
	st := openStore(t)
	p := pipeline(t, src, sink)
	p.Settings.CommitInterval, p.Settings.CommitBytes = time.Hour, 1<<30
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.merges) == 0 {
		t.Fatal("no batches were merged")
	}
	// Task a refuses 7, 260 and 2500; task b 7 and 260; both reject 5 and
	// 1999 at the source.
	if res.Run.Read != 5000 || res.Run.Rejected != 9 || res.Run.Written != 4991 || !res.Conserved() {
		t.Fatalf("read %d written %d rejected %d", res.Run.Read, res.Run.Written, res.Run.Rejected)
	}
	checkExactlyOnce(t, sink.memSink, tasks, func(n int64) bool { return sink.refuse[n] || bad[int(n)] })
	dls, err := st.DeadLetters(context.Background(), state.DLQFilter{Pipeline: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var locs []string
	for _, dl := range dls {
		locs = append(locs, dl.Loc)
	}
	sort.Strings(locs)
	want := []string{"a:1999", "a:2500", "a:260", "a:5", "a:7", "b:1999", "b:260", "b:5", "b:7"}
	if fmt.Sprint(locs) != fmt.Sprint(want) {
		t.Fatalf("dead letters at %v, want %v", locs, want)
	}
	for task, n := range tasks {
		if cp := sink.cps[task]; !cp.Done || string(cp.Pos) != strconv.Itoa(n) {
			t.Fatalf("task %s: checkpoint %+v, want done at %d", task, cp, n)
		}
	}
}
