package sqlitestate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "backbone")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := sqlitestate.Open(ctx, filepath.Join(dir, ".backbone", "state.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	run := state.Run{ID: "run-1", Pipeline: "orders", Trigger: state.TriggerManual}
	if err := s.StartRun(ctx, &run); err != nil {
		fmt.Println(err)
		return
	}
	cps := []connector.Checkpoint{{Task: "data/orders/a.csv", Pos: []byte("offset=1024")}}
	if err := s.SaveCheckpoints(ctx, "orders", cps); err != nil {
		fmt.Println(err)
		return
	}
	dls := []state.DeadLetter{{
		Pipeline: "orders", RunID: run.ID, Task: "data/orders/a.csv", Loc: "a.csv:42", Step: "validate",
		Field: "qty", Error: "qty must be positive", Record: []byte("42,-1,9.90"),
	}}
	if err := s.AddDeadLetters(ctx, dls); err != nil {
		fmt.Println(err)
		return
	}
	run.Status, run.Read, run.Written, run.Rejected = state.StatusSucceeded, 100, 99, 1
	if err := s.FinishRun(ctx, &run); err != nil {
		fmt.Println(err)
		return
	}

	got, _ := s.Run(ctx, "run-1")
	fmt.Println(got.Status, got.Read, got.Written, got.Rejected)
	loaded, _ := s.LoadCheckpoints(ctx, "orders")
	fmt.Printf("%s\n", loaded["data/orders/a.csv"].Pos)
	list, _ := s.DeadLetters(ctx, state.DLQFilter{Pipeline: "orders", Contains: "positive"})
	fmt.Println(list[0].Loc, list[0].Error)
	// Output:
	// succeeded 100 99 1
	// offset=1024
	// a.csv:42 qty must be positive
}
