package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/state"
)

func (a *app) runCmd() *cobra.Command {
	var dryRun, quiet bool
	var logical string
	cmd := &cobra.Command{
		Use:   "run PIPELINE.yaml",
		Short: "Run a pipeline once, now, in the foreground",
		Long: `Run reads the pipeline's new input, transforms it and writes it, then prints a summary.
Rejected records go to the dead letters (see 'backbone dlq list'); the run goes on unless the
error budget is exceeded. Ctrl-C stops reading, drains, commits and exits 130.

Exit codes: 0 ok, 1 run failed, 2 invalid config or usage, 3 a file or service unreachable.`,
		Args: cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.load(args[0])
			if err != nil {
				return err
			}
			opts := engine.Options{DryRun: dryRun, Hard: a.hard, Trigger: state.TriggerManual, MemoryBudget: 80 << 20}
			if logical != "" {
				t, err := time.Parse(time.RFC3339Nano, logical)
				if err != nil {
					return &usageError{msg: fmt.Sprintf("--logical-time %q: want RFC 3339", logical)}
				}
				opts.LogicalTime = t
			}
			if !dryRun {
				st, err := a.openState(ctx, p)
				if err != nil {
					return err
				}
				defer st.Close()
				opts.Store = st
			}
			opts.Logger = slog.New(slog.NewTextHandler(a.io.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
			prog := newProgress(a.io, quiet)
			opts.Progress = prog.update
			res, err := engine.Run(ctx, p, opts)
			prog.finish()
			if err != nil && engine.IsConfigError(err) {
				var errs config.Errors
				errors.As(err, &errs)
				fmt.Fprintln(a.io.Err, errs.Redacted(p.Redactor))
				return &silentError{code: ExitConfig}
			}
			if res != nil {
				printSummary(a.io.Out, p, res, dryRun)
			}
			if err != nil {
				return redacted(p, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "read and transform, but write nothing: no sink, no checkpoint, no dead letter")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	cmd.Flags().StringVar(&logical, "logical-time", "", "the run's logical time (RFC 3339); default now")
	return cmd
}

// progress shows a bar on a terminal and a log line every few seconds
// otherwise.
type progress struct {
	io    IO
	quiet bool
	bar   *progressbar.ProgressBar
	last  time.Time
	seen  bool
}

func newProgress(io IO, quiet bool) *progress {
	return &progress{io: io, quiet: quiet, last: time.Now()}
}

func (p *progress) update(pr engine.Progress) {
	if p.quiet {
		return
	}
	if !p.io.TTY {
		if time.Since(p.last) < 5*time.Second {
			return
		}
		p.last = time.Now()
		rate := 0.0
		if s := pr.Elapsed.Seconds(); s > 0 {
			rate = float64(pr.Read) / s
		}
		fmt.Fprintf(p.io.Err, "progress: read %d, written %d, rejected %d, filtered %d, %s rows/s, tasks %d/%d\n",
			pr.Read, pr.Written, pr.Rejected, pr.Filtered, human(int64(rate)), pr.TasksDone, pr.Tasks)
		return
	}
	if p.bar == nil {
		max := pr.BytesTotal
		if max <= 0 {
			max = -1
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(p.io.Err),
			progressbar.OptionShowBytes(max > 0),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(max > 0),
			progressbar.OptionClearOnFinish(),
		)
	}
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.Read) / s
	}
	p.bar.Describe(fmt.Sprintf("%s rows, %s rows/s, %d rejected", human(pr.Read), human(int64(rate)), pr.Rejected))
	if pr.BytesTotal > 0 {
		_ = p.bar.Set64(pr.BytesRead)
	} else {
		_ = p.bar.Set64(pr.Read)
	}
	p.seen = true
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

func printSummary(w io.Writer, p *config.Pipeline, res *engine.Result, dryRun bool) {
	r := res.Run
	mode := ""
	if dryRun {
		mode = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "run %s of %s: %s in %s%s\n", r.ID, p.Name, r.Status, res.Duration.Round(time.Millisecond), mode)
	secs := res.Duration.Seconds()
	rate := "-"
	if secs > 0 {
		rate = human(int64(float64(r.Read) / secs))
	}
	pct := func(n int64) string {
		if r.Read == 0 {
			return ""
		}
		return fmt.Sprintf("(%.2f%%)", float64(n)/float64(r.Read)*100)
	}
	tasks := fmt.Sprintf("%d", res.Tasks)
	if res.Skipped > 0 {
		tasks += fmt.Sprintf(" (%d already done, skipped)", res.Skipped)
	}
	rows := [][2]string{
		{"tasks", tasks},
		{"read", fmt.Sprintf("%d", r.Read)},
		{"written", fmt.Sprintf("%d", r.Written)},
		{"rejected", fmt.Sprintf("%d %s", r.Rejected, pct(r.Rejected))},
		{"filtered", fmt.Sprintf("%d %s", r.Filtered, pct(r.Filtered))},
		{"rows/s", rate},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "  %-9s %s\n", row[0], strings.TrimSpace(row[1]))
	}
	if r.Rejected > 0 {
		fmt.Fprintln(w, "rejects by step:")
		for _, s := range sortedKeys(res.RejectsByStep) {
			fmt.Fprintf(w, "  %-12s %d\n", s, res.RejectsByStep[s])
		}
		fmt.Fprintln(w, "top reasons:")
		for _, rs := range res.TopReasons {
			fmt.Fprintf(w, "  %6d  %s: %s\n", rs.Count, rs.Step, rs.Reason)
		}
		if !dryRun {
			fmt.Fprintf(w, "see them with: backbone dlq list %s\n", p.Name)
		}
	}
}

// redactedError prints without secrets and keeps the error chain for the
// exit code.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redacted(p *config.Pipeline, err error) error {
	return &redactedError{msg: p.Redactor.Redact(err.Error()), err: err}
}

// human renders 1234567 as 1.23M.
func human(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprintf("%d", n)
}
