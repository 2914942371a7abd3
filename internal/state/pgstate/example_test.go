package pgstate_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/pgstate"
)

// The example needs a PostgreSQL server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	s, err := pgstate.Open(ctx, "postgres://backbone:secret@127.0.0.1:5432/ops?schema=backbone")
	if err != nil {
		fmt.Println(err) // passwords are masked: postgres://backbone:xxxxx@…
		return
	}
	defer s.Close()

	run := state.Run{ID: "run-1", Pipeline: "orders", Trigger: state.TriggerSchedule}
	if err := s.StartRun(ctx, &run); err != nil {
		fmt.Println(err)
		return
	}
	cps := []connector.Checkpoint{{Task: "data/orders/a.csv", Pos: []byte("offset=1024")}}
	if err := s.SaveCheckpoints(ctx, "orders", cps); err != nil {
		fmt.Println(err)
		return
	}
	run.Status, run.Read, run.Written = state.StatusSucceeded, 100, 100
	if err := s.FinishRun(ctx, &run); err != nil {
		fmt.Println(err)
	}
}

// A scheduler of several processes fires a trigger in one of them only.
func ExampleStore_TryLease() {
	ctx := context.Background()
	s, err := pgstate.Open(ctx, "postgres://backbone@127.0.0.1:5432/ops?schema=backbone")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	const name, holder, ttl = "schedule/orders", "host-1/pid-4242", 30 * time.Second
	token, ok, err := s.TryLease(ctx, name, holder, ttl)
	if err != nil || !ok {
		return // another process fires this trigger
	}
	defer s.ReleaseLease(context.WithoutCancel(ctx), name, holder, token)
	// … run the pipeline, renewing every ttl/3:
	if err := s.RenewLease(ctx, name, holder, token, ttl); errors.Is(err, pgstate.ErrLeaseLost) {
		return // stop: another process holds the lease now
	}
}
