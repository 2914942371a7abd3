// Command backbone is the Backbone ETL engine. See `backbone --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/backbone-etl/backbone/internal/cli"
)

func main() {
	// The first SIGINT/SIGTERM stops a run softly (stop reading, drain,
	// commit); the second abandons the work in flight.
	soft, stopSoft := context.WithCancelCause(context.Background())
	hard, stopHard := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		stopSoft(&cli.SignalError{Signal: s})
		s = <-sigs
		stopHard(&cli.SignalError{Signal: s})
	}()
	code := cli.Main(soft, hard, os.Args[1:], cli.IO{
		Out: os.Stdout,
		Err: os.Stderr,
		TTY: term.IsTerminal(int(os.Stderr.Fd())),
	})
	stopSoft(nil)
	stopHard(nil)
	os.Exit(code)
}
