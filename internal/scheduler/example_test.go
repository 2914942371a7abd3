package scheduler_test

import (
	"context"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/scheduler"
)

// A pipeline every five minutes, driven by a fake clock: it runs for the
// logical time 10:05, then a backfill of 09:00 runs on request.
func Example() {
	clock := scheduler.NewFakeClock(time.Date(2024, 6, 1, 10, 2, 0, 0, time.UTC))
	finished := make(chan scheduler.Result, 2)
	s, err := scheduler.New(scheduler.Options{
		Clock: clock,
		Run: func(ctx context.Context, job scheduler.Job) error {
			fmt.Printf("run %s for %s (%s)\n", job.Pipeline, job.Logical.Format("15:04"), job.Trigger)
			return nil
		},
		Hooks: scheduler.Hooks{RunFinished: func(_ scheduler.Job, r scheduler.Result) { finished <- r }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	every5, err := scheduler.Parse("*/5 * * * *", time.UTC)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Set(scheduler.PipelineSpec{Name: "orders", Schedule: every5, CatchUp: scheduler.CatchUpOnce}); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	clock.Advance(3 * time.Minute) // 10:05: a fire time
	_ = s.WaitIdle(ctx)            // the run is over; nothing more is due
	fmt.Println((<-finished).Outcome)
	st, _ := s.Status("orders")
	fmt.Println("state:", st.State, "last:", st.LastLogical.Format("15:04"), "next:", st.Next.Format("15:04"))

	if _, err := s.Trigger("orders", scheduler.TriggerBackfill, time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC)); err != nil {
		fmt.Println(err)
	}
	<-finished
	if err := s.Drain(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// run orders for 10:05 (schedule)
	// succeeded
	// state: idle last: 10:05 next: 10:10
	// run orders for 09:00 (backfill)
}
