package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
)

// A writer that stages again what a lost transaction held commits several
// batches at once, within the pipeline's commit_interval and commit_bytes
// and its own StageBatches; every row still lands once, with its
// checkpoint.
func TestStagedBatchesCommitTogether(t *testing.T) {
	tasks := map[string]int{"a": 5000}
	for _, tc := range []struct {
		name      string
		interval  time.Duration
		bytes     int64
		transient bool
		maxCommit int
	}{
		{name: "every batch when commit_interval is 0", interval: 0, bytes: 1 << 30, maxCommit: 1000},
		{name: "StageBatches at a time", interval: time.Hour, bytes: 1 << 30, maxCommit: 79/8 + 3},
		{name: "commit_bytes at a time", interval: time.Hour, bytes: 4, maxCommit: 79/4 + 3},
		{name: "a lost transaction staged again", interval: time.Hour, bytes: 1 << 30, transient: true, maxCommit: 79/8 + 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &numSource{tasks: tasks, batch: 64} // 79 batches
			sink := newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8})
			sink.transientOnce = tc.transient
			p := pipeline(t, src, sink)
			p.Settings.CommitInterval, p.Settings.CommitBytes = tc.interval, tc.bytes
			res, err := engine.Run(context.Background(), p, engine.Options{Store: openStore(t)})
			if err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
			if !res.Conserved() || res.Run.Written != 5000 {
				t.Fatalf("read %d written %d", res.Run.Read, res.Run.Written)
			}
			if cp := sink.cps["a"]; !cp.Done || string(cp.Pos) != "5000" {
				t.Fatalf("checkpoint %+v, want done at 5000", cp)
			}
			if tc.interval == 0 && sink.commits < 79 || sink.commits > tc.maxCommit {
				t.Fatalf("%d commits, want at most %d (and one a batch without an interval)", sink.commits, tc.maxCommit)
			}
		})
	}
}

// Rows staged while the source has nothing more to give are committed when
// commit_interval has passed, not at the end of the input.
func TestStagedRowsCommittedWhenTheSourceWaits(t *testing.T) {
	tasks := map[string]int{"a": 128}
	src := &numSource{tasks: tasks, batch: 64, hold: make(chan struct{})}
	sink := newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8})
	p := pipeline(t, src, sink)
	p.Settings.CommitInterval, p.Settings.CommitBytes = 20*time.Millisecond, 1<<30
	done := make(chan error, 1)
	go func() {
		_, err := engine.Run(context.Background(), p, engine.Options{Store: openStore(t)})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sink.mu.Lock()
		n, cp := len(sink.rows["a"]), sink.cps["a"]
		sink.mu.Unlock()
		if n == 64 && string(cp.Pos) == "64" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first batch is not committed while the source waits: %d rows, checkpoint %q", n, cp.Pos)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(src.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}

// A run whose commit fails for good after batches were staged together
// reports what it committed; the next run loads the rest, each row once.
func TestStagedBatchesFailedCommitResumes(t *testing.T) {
	tasks := map[string]int{"a": 5000}
	src := &numSource{tasks: tasks, batch: 64}
	sink := newMemSink(connector.WriterInfo{Transactional: true, StageBatches: 8})
	sink.failAtCommit = 4
	st := openStore(t)
	p := pipeline(t, src, sink)
	p.Settings.CommitInterval, p.Settings.CommitBytes = time.Hour, 1<<30
	failed, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err == nil {
		t.Fatal("run with a failing commit succeeded")
	}
	if committed := int64(len(sink.rows["a"])); committed == 0 || failed.Run.Written != committed || !failed.Conserved() {
		t.Fatalf("failed run: read %d written %d, the sink holds %d", failed.Run.Read, failed.Run.Written, committed)
	}
	sink.failAtCommit = 0
	res, err := engine.Run(context.Background(), p, engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if failed.Run.Read+res.Run.Read != 5000 {
		t.Fatalf("the runs read %d + %d, want 5000", failed.Run.Read, res.Run.Read)
	}
	checkExactlyOnce(t, sink, tasks, func(int64) bool { return false })
}
