package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEverySecond200 schedules 200 pipelines `every 1s` for 60
// simulated seconds with a Run that does nothing: the scheduling overhead
// of an idle daemon. A "run" is one scheduling decision carried out: the
// pipeline evaluated, its job started in its goroutine, Run called, the
// end recorded and the next fire time armed.
func BenchmarkEverySecond200(b *testing.B) {
	const pipelines, seconds = 200, 60
	every, err := Parse("every 1s", nil)
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for b.Loop() {
		clock := NewFakeClock(t0)
		var finished atomic.Int64
		s, err := New(Options{
			Clock: clock,
			Run:   func(context.Context, Job) error { return nil },
			Hooks: Hooks{RunFinished: func(Job, Result) { finished.Add(1) }},
		})
		if err != nil {
			b.Fatal(err)
		}
		for i := range pipelines {
			if err := s.Set(PipelineSpec{Name: fmt.Sprintf("p%03d", i), Schedule: every}); err != nil {
				b.Fatal(err)
			}
		}
		ctx := context.Background()
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		for sec := 1; sec <= seconds; sec++ {
			clock.Advance(time.Second)
			if err := s.WaitIdle(ctx); err != nil {
				b.Fatal(err)
			}
			if n := finished.Load(); n != int64(sec*pipelines) {
				b.Fatalf("at %ds, %d runs, want %d", sec, n, sec*pipelines)
			}
		}
		if err := s.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		if n := finished.Load(); n != pipelines*seconds {
			b.Fatalf("%d runs, want %d", n, pipelines*seconds)
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	runs := float64(b.N * pipelines * seconds)
	b.ReportMetric(float64(elapsed.Nanoseconds())/runs, "ns/run")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/runs, "allocs/run")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/runs, "B/run")
}
