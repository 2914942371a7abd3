package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/state"
	"github.com/backbone-etl/backbone/internal/state/pgstate"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the run failed
	ExitConfig  = 2 // invalid configuration or usage
	ExitEnviron = 3 // a file or service unreachable, a state store refused
)

// SignalError is the cause main gives the context it cancels on a signal.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return "stopped by " + e.Signal.String() }

// IO is where a command reads and writes, and whether stderr is a terminal.
type IO struct {
	Out, Err io.Writer
	TTY      bool // show a progress bar instead of log lines
	Env      config.LookupEnv
}

type app struct {
	io       IO
	hard     context.Context
	registry *connector.Registry
	stateArg string
}

// Main runs the command line. ctx is cancelled (with a *SignalError cause)
// on the first SIGINT/SIGTERM: a run stops reading, drains and commits. hard
// is cancelled on the second: work in flight is abandoned.
func Main(ctx, hard context.Context, args []string, stdio IO) int {
	if stdio.Env == nil {
		stdio.Env = os.LookupEnv
	}
	a := &app{io: stdio, hard: hard, registry: connector.NewRegistry()}
	builtin.Register(a.registry)
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(ctx, err)
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintln(stdio.Err, "error:", err)
	}
	return code
}

// silentError carries an exit code for an error already reported.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(ctx context.Context, err error) int {
	var silent *silentError
	var cfgErrs config.Errors
	var usage *usageError
	var sig *SignalError
	switch {
	case errors.As(err, &silent):
		return silent.code
	case errors.As(context.Cause(ctx), &sig) && errors.Is(err, context.Canceled):
		if s, ok := sig.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 130
	case errors.As(err, &cfgErrs), errors.As(err, &usage):
		return ExitConfig
	case errors.Is(err, connector.ErrUnavailable), errors.Is(err, fs.ErrNotExist), errors.Is(err, errServerUnreachable), errors.Is(err, fs.ErrPermission),
		errors.Is(err, state.ErrCorrupt), errors.Is(err, state.ErrVersion):
		return ExitEnviron
	}
	return ExitFailed
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "backbone",
		Short: "Backbone moves and enriches data on a schedule, and does not stop for a bad record",
		Long: `Backbone moves data between systems, enriches every record with data looked up in
other sources, and loads the result. A bad record goes to the dead letters; the run goes on.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Hidden flags for looking into a run's speed: a CPU profile, an
	// execution trace, and a profile of what was allocated.
	var cpuProfile, execTrace, memProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	root.PersistentFlags().StringVar(&execTrace, "trace", "", "write an execution trace to this file")
	root.PersistentFlags().StringVar(&memProfile, "memprofile", "", "write a profile of the memory allocated to this file")
	for _, name := range []string{"cpuprofile", "trace", "memprofile"} {
		_ = root.PersistentFlags().MarkHidden(name)
	}
	var stops []func()
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		for _, p := range []struct {
			path  string
			start func(io.Writer) error
			stop  func(io.Writer)
		}{
			{cpuProfile, pprof.StartCPUProfile, func(io.Writer) { pprof.StopCPUProfile() }},
			{execTrace, trace.Start, func(io.Writer) { trace.Stop() }},
			{memProfile, func(io.Writer) error { return nil }, func(w io.Writer) { _ = pprof.Lookup("allocs").WriteTo(w, 0) }},
		} {
			if p.path == "" {
				continue
			}
			f, err := os.Create(p.path)
			if err != nil {
				return err
			}
			if err := p.start(f); err != nil {
				f.Close()
				return err
			}
			stops = append(stops, func() { p.stop(f); f.Close() })
		}
		return nil
	}
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) {
		for _, stop := range stops {
			stop()
		}
	}
	root.PersistentFlags().StringVar(&a.stateArg, "state", "", "state store (SQLite file); default: the pipeline's state:, $BACKBONE_STATE, or .backbone/state.db")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	root.AddCommand(a.runCmd(), a.validateCmd(), a.testCmd(), a.diffCmd(), a.docsCmd(), a.runsCmd(), a.dlqCmd())
	root.AddCommand(a.serveCmd(), a.statusCmd(), a.triggerCmd(), a.backfillCmd(), a.pauseCmd(false), a.pauseCmd(true), a.versionsCmd())
	return root
}

func cobraArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return &usageError{msg: fmt.Sprintf("%s: want %d argument(s); usage: %s", cmd.Name(), n, cmd.UseLine())}
		}
		return nil
	}
}

// load reads and checks a pipeline file; errors are printed all at once.
func (a *app) load(path string) (*config.Pipeline, error) {
	p, err := config.LoadFile(path, config.Options{Registry: a.registry, Env: a.io.Env})
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(a.io.Err, errs.Error())
			return nil, &silentError{code: ExitConfig}
		}
		return nil, err
	}
	return p, nil
}

// statePath picks the state store: --state, the pipeline's state:,
// $BACKBONE_STATE, then .backbone/state.db.
func (a *app) statePath(p *config.Pipeline) string {
	if a.stateArg != "" {
		return a.stateArg
	}
	if p != nil && p.State != "" {
		return p.State
	}
	if v, ok := a.io.Env("BACKBONE_STATE"); ok && v != "" {
		return v
	}
	return filepath.Join(".backbone", "state.db")
}

// openState opens the state store: PostgreSQL for a postgres:// DSN (a
// team, several processes), otherwise a SQLite file.
func (a *app) openState(ctx context.Context, p *config.Pipeline) (state.Store, error) {
	loc := a.statePath(p)
	if strings.HasPrefix(loc, "postgres://") || strings.HasPrefix(loc, "postgresql://") {
		return pgstate.Open(ctx, loc)
	}
	return sqlitestate.Open(ctx, loc)
}

// check binds a pipeline as a run would, without writing anything.
func (a *app) check(ctx context.Context, p *config.Pipeline) error {
	return engine.Check(ctx, p)
}
