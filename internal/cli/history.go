package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/state"
)

func (a *app) runsCmd() *cobra.Command {
	var limit int
	var status string
	cmd := &cobra.Command{
		Use:   "runs [PIPELINE]",
		Short: "List recent runs, newest first",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openState(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			f := state.RunFilter{Limit: limit, Status: status}
			if len(args) > 0 {
				f.Pipeline = args[0]
			}
			runs, err := st.Runs(cmd.Context(), f)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTARTED\tDURATION\tREAD\tWRITTEN\tREJECTED\tFILTERED\tERROR")
			for _, r := range runs {
				dur := "-"
				if !r.End.IsZero() {
					dur = r.End.Sub(r.Start).Round(time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Pipeline, r.Status,
					r.Start.UTC().Format(time.RFC3339), dur, r.Read, r.Written, r.Rejected, r.Filtered, clip(r.Error, 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	cmd.Flags().StringVar(&status, "status", "", "only runs with this status (running, succeeded, failed, cancelled)")
	return cmd
}

func (a *app) dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Dead letters: list, show, replay, purge",
	}
	cmd.AddCommand(a.dlqList(), a.dlqShow(), a.dlqReplay(), a.dlqPurge())
	return cmd
}

type dlqFlags struct {
	run, step, contains string
	limit               int
	ids                 []int64
}

// add declares the selection flags; defLimit < 0 declares no --limit.
func (f *dlqFlags) add(cmd *cobra.Command, defLimit int) {
	cmd.Flags().StringVar(&f.run, "run", "", "only dead letters of this run")
	cmd.Flags().StringVar(&f.step, "step", "", "only dead letters of this step (source, sink, filter[1], ...)")
	cmd.Flags().StringVar(&f.contains, "contains", "", "only dead letters whose error, field, place or record contains this text")
	cmd.Flags().Int64SliceVar(&f.ids, "id", nil, "only these dead letters")
	if defLimit >= 0 {
		cmd.Flags().IntVar(&f.limit, "limit", defLimit, "at most this many (0: all)")
	}
}

func (f *dlqFlags) filter(pipeline string) state.DLQFilter {
	return state.DLQFilter{Pipeline: pipeline, RunID: f.run, Step: f.step, Contains: f.contains, IDs: f.ids, Limit: f.limit}
}

func (a *app) dlqList() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "list [PIPELINE]",
		Short: "List dead letters, oldest first",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openState(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			pipeline := ""
			if len(args) > 0 {
				pipeline = args[0]
			}
			flt := f.filter(pipeline)
			total, err := st.CountDeadLetters(cmd.Context(), flt)
			if err != nil {
				return err
			}
			dls, err := st.DeadLetters(cmd.Context(), flt)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPIPELINE\tPLACE\tSTEP\tFIELD\tERROR")
			for _, d := range dls {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Pipeline, d.Loc, d.Step, dash(d.Field), clip(d.Error, 90))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Out, "%d dead letter(s)", total)
			if total > len(dls) {
				fmt.Fprintf(a.io.Out, ", %d shown (--limit)", len(dls))
			}
			fmt.Fprintln(a.io.Out)
			return nil
		},
	}
	f.add(cmd, 50)
	return cmd
}

func (a *app) dlqShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead letter with its original record",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return &usageError{msg: fmt.Sprintf("dead letter id %q: want a number", args[0])}
			}
			st, err := a.openState(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := st.DeadLetter(cmd.Context(), id)
			if err != nil {
				return fmt.Errorf("dead letter %d: %w", id, err)
			}
			fmt.Fprintf(a.io.Out, "id:       %d\npipeline: %s\nrun:      %s\ntask:     %s\nplace:    %s\nstep:     %s\nfield:    %s\nerror:    %s\nat:       %s\nrecord:\n%s\n",
				d.ID, d.Pipeline, d.RunID, d.Task, d.Loc, d.Step, dash(d.Field), d.Error, d.CreatedAt.UTC().Format(time.RFC3339), d.Record)
			return nil
		},
	}
}

func (a *app) dlqPurge() *cobra.Command {
	var f dlqFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "purge PIPELINE",
		Short: "Delete dead letters of a pipeline (those selected by flags, or --all)",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flt := f.filter(args[0])
			if !all && flt.RunID == "" && flt.Step == "" && flt.Contains == "" && len(flt.IDs) == 0 {
				return &usageError{msg: "dlq purge: select dead letters with --id, --run, --step or --contains, or pass --all"}
			}
			st, err := a.openState(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			dls, err := st.DeadLetters(cmd.Context(), flt)
			if err != nil {
				return err
			}
			ids := make([]int64, len(dls))
			for i, d := range dls {
				ids[i] = d.ID
			}
			n, err := st.DeleteDeadLetters(cmd.Context(), ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.io.Out, "purged %d dead letter(s) of %s\n", n, args[0])
			return nil
		},
	}
	f.add(cmd, -1)
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of the pipeline")
	return cmd
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (a *app) dlqReplay() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "replay PIPELINE.yaml",
		Short: "Send dead letters through the current version of the pipeline; remove those that now pass",
		Args:  cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.load(args[0])
			if err != nil {
				return err
			}
			st, err := a.openState(ctx, p)
			if err != nil {
				return err
			}
			defer st.Close()
			dls, err := st.DeadLetters(ctx, f.filter(p.Name))
			if err != nil {
				return err
			}
			res, err := engine.Replay(ctx, p, engine.Options{Store: st, Hard: a.hard}, dls)
			if res != nil && res.Result != nil && res.Replayed > 0 {
				fmt.Fprintf(a.io.Out, "replayed %d dead letter(s) of %s: %d now pass and were removed, %d rejected again\n",
					res.Replayed, p.Name, res.Removed, res.Still)
				fmt.Fprintf(a.io.Out, "  written %d, filtered %d, rejected %d\n", res.Run.Written, res.Run.Filtered, res.Run.Rejected)
			} else if err == nil {
				fmt.Fprintf(a.io.Out, "no dead letters to replay for %s\n", p.Name)
			}
			if err != nil {
				return redacted(p, err)
			}
			return nil
		},
	}
	f.add(cmd, 0)
	return cmd
}
