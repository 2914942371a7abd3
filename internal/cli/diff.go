package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/fixture"
)

type diffFlags struct {
	sample                int
	since, timeField      string
	format, logical       string
	maxRejects, maxChange string
}

func (a *app) diffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff OLD.yaml NEW.yaml",
		Short: "Shadow run: both versions over the same sample of real input, nothing written; what changed",
		Long: `Diff reads a sample of real input once, from OLD's source and read-only, and runs both versions
over it with their real lookups. Nothing is written: no sink is opened, no checkpoint moves, no dead
letter is stored, no run is recorded. Outputs are kept in memory and matched by NEW's sink key (by
input record when it has none). The report shows the records unchanged, changed (which fields, with
examples), only in OLD and only in NEW, the reject rates with their top reasons, and how the output's
fields changed.

--max-reject-rate and --max-changed gate a deploy: the exit code is 1 when NEW rejects more than the
given share of the sample, or changes more than the given share of the records both versions wrote.
Exit codes: 0 within the thresholds, 1 over one, 2 invalid config or usage, 3 input unreachable.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{msg: "diff: want 2 arguments, OLD.yaml and NEW.yaml; usage: " + cmd.UseLine()}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return a.diff(cmd, args[0], args[1], f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.sample, "sample", 1000, "records to read at most; 0 for all")
	fl.StringVar(&f.since, "since", "", "only records whose time field is at or after this time (RFC 3339, a date, or a duration ago like 24h)")
	fl.StringVar(&f.timeField, "time-field", "", "the field --since compares with; default the source's first timestamp or date field")
	fl.StringVar(&f.format, "format", "text", "text or json")
	fl.StringVar(&f.logical, "logical-time", "", "the run time both versions see (RFC 3339); default now")
	fl.StringVar(&f.maxRejects, "max-reject-rate", "", `exit 1 when NEW rejects more than this share of the sample ("5%" or 0.05)`)
	fl.StringVar(&f.maxChange, "max-changed", "", `exit 1 when NEW changes more than this share of the records both wrote ("1%" or 0.01)`)
	return cmd
}

// diffReport is the report of `backbone diff`, as --format json writes it.
type diffReport struct {
	OldFile string   `json:"old_file"`
	NewFile string   `json:"new_file"`
	Sampled int      `json:"sampled"`
	Partial bool     `json:"sample_truncated"`
	Notes   []string `json:"notes"`
	*fixture.Report
	Failures []string `json:"failures"`
}

func (a *app) diff(cmd *cobra.Command, oldPath, newPath string, f diffFlags) error {
	ctx := cmd.Context()
	if f.format != "text" && f.format != "json" {
		return &usageError{msg: fmt.Sprintf("--format %q: want text or json", f.format)}
	}
	maxRejects, err := ratioFlag("--max-reject-rate", f.maxRejects)
	if err != nil {
		return err
	}
	maxChange, err := ratioFlag("--max-changed", f.maxChange)
	if err != nil {
		return err
	}
	logical := time.Now()
	if f.logical != "" {
		if logical, err = time.Parse(time.RFC3339Nano, f.logical); err != nil {
			return &usageError{msg: fmt.Sprintf("--logical-time %q: want RFC 3339", f.logical)}
		}
	}
	var since time.Time
	if f.since != "" {
		if since, err = parseSince(f.since, logical); err != nil {
			return err
		}
	}
	if f.sample < 0 {
		return &usageError{msg: "--sample: want 0 (all) or more"}
	}

	// Both files are checked, and every error reported, before any input
	// is read.
	var all config.Errors
	var pipes [2]*config.Pipeline
	for i, path := range []string{oldPath, newPath} {
		p, err := config.LoadFile(path, config.Options{Registry: a.registry, Env: a.io.Env})
		var errs config.Errors
		switch {
		case errors.As(err, &errs):
			all = append(all, errs...)
			continue
		case err != nil:
			return err
		}
		if err := a.check(ctx, p); err != nil {
			if errors.As(err, &errs) {
				all = append(all, errs...)
				continue
			}
			return redacted(p, err)
		}
		pipes[i] = p
	}
	if len(all) > 0 {
		fmt.Fprintln(a.io.Err, all.Error())
		return &silentError{code: ExitConfig}
	}
	old, cur := pipes[0], pipes[1]

	sample, err := engine.TakeSample(ctx, old, engine.SampleOptions{Max: f.sample, Since: since, TimeField: f.timeField, LogicalTime: logical})
	if err != nil {
		return redacted(old, err)
	}
	rep := &diffReport{OldFile: oldPath, NewFile: newPath, Sampled: sample.Records, Partial: sample.Truncated, Notes: []string{}, Failures: []string{}}
	if sample.Records == 0 {
		rep.Notes = append(rep.Notes, "the source has no input to sample")
	}
	if sample.TimeField != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("records with %s at or after %s", sample.TimeField, since.UTC().Format(time.RFC3339)))
	}
	if !sameComponent(old.Source, cur.Source) {
		rep.Notes = append(rep.Notes, "NEW's source differs from OLD's: both versions read OLD's sample")
	}
	logger := slog.New(slog.NewTextHandler(a.io.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var versions [2]*fixture.Version
	for i, p := range []*config.Pipeline{old, cur} {
		schema := sample.Schema
		if schema == nil {
			continue
		}
		sink := &fixture.Sink{}
		src := fixture.NewSource(schema, "sample", sample.Batches)
		res, err := engine.Shadow(ctx, p, src, sink, engine.Options{LogicalTime: logical, Logger: logger})
		if err != nil {
			var errs config.Errors
			if errors.As(err, &errs) {
				fmt.Fprintln(a.io.Err, errs.Redacted(p.Redactor))
				return &silentError{code: ExitConfig}
			}
			return redacted(p, fmt.Errorf("%s: %w", p.File, err))
		}
		versions[i] = &fixture.Version{Schema: sink.Schema(), Rows: sink.Rows(), Result: res}
		if versions[i].Schema == nil {
			versions[i].Schema = res.Schema
		}
	}
	if versions[0] == nil {
		versions[0], versions[1] = &fixture.Version{}, &fixture.Version{}
	}
	rep.Report = fixture.Compare(versions[0], versions[1], engine.SinkKeys(cur))
	if rep.Note != "" {
		rep.Notes = append(rep.Notes, rep.Note)
	}
	if maxRejects >= 0 && rep.New.RejectRate > maxRejects {
		rep.Failures = append(rep.Failures, fmt.Sprintf("NEW's reject rate %s exceeds --max-reject-rate %s", pct(rep.New.RejectRate), pct(maxRejects)))
	}
	if maxChange >= 0 && rep.ChangedShare > maxChange {
		rep.Failures = append(rep.Failures, fmt.Sprintf("NEW changes %s of the records, over --max-changed %s", pct(rep.ChangedShare), pct(maxChange)))
	}
	if f.format == "json" {
		enc := json.NewEncoder(a.io.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printDiff(a.io.Out, rep)
	}
	if len(rep.Failures) > 0 {
		return &silentError{code: ExitFailed}
	}
	return nil
}

func ratioFlag(name, v string) (float64, error) {
	if v == "" {
		return -1, nil
	}
	r, err := connector.ParseRatio(v)
	if err != nil {
		return 0, &usageError{msg: fmt.Sprintf("%s: %v", name, err)}
	}
	return r, nil
}

// parseSince reads --since: a time, a date, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := connector.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, &usageError{msg: fmt.Sprintf("--since %q: want RFC 3339 (2026-11-02T08:00:00Z), a date, or a duration like 24h or 7d", s)}
}

// sameComponent reports whether two components are configured alike.
func sameComponent(a, b *config.Component) bool {
	na, okA := a.Params.(*connector.NodeParams)
	nb, okB := b.Params.(*connector.NodeParams)
	if !okA || !okB || na.Node == nil || nb.Node == nil {
		return a.Type == b.Type
	}
	return a.Type == b.Type && na.Node.String() == nb.Node.String()
}

func pct(r float64) string { return fmt.Sprintf("%.2f%%", r*100) }

func printDiff(w io.Writer, r *diffReport) {
	fmt.Fprintf(w, "diff %s -> %s: %d record(s) sampled", r.OldFile, r.NewFile, r.Sampled)
	if r.Partial {
		fmt.Fprint(w, " (the input has more)")
	}
	fmt.Fprintln(w, "; nothing written")
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.MatchedBy == "key" {
		fmt.Fprintf(w, "records matched by sink key %s\n", strings.Join(r.Key, ", "))
	} else {
		fmt.Fprintln(w, "records matched by input position")
	}
	both := r.Changed + r.Unchanged
	fmt.Fprintf(w, "  %-12s %d\n", "unchanged", r.Unchanged)
	fmt.Fprintf(w, "  %-12s %d", "changed", r.Changed)
	if both > 0 {
		fmt.Fprintf(w, " (%s of the records both wrote)", pct(r.ChangedShare))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-12s %d\n", "only in old", r.OnlyOld)
	fmt.Fprintf(w, "  %-12s %d\n", "only in new", r.OnlyNew)
	if len(r.Fields) > 0 {
		fmt.Fprintln(w, "changed fields:")
		for _, fc := range r.Fields {
			fmt.Fprintf(w, "  %s: %d record(s)\n", fc.Field, fc.Records)
			for _, ex := range fc.Examples {
				fmt.Fprintf(w, "      %s: %s -> %s\n", ex.Record, ex.Old, ex.New)
			}
		}
	}
	for _, only := range []struct {
		title string
		rows  []fixture.Example
	}{{"only in old, e.g.:", r.OnlyOldRows}, {"only in new, e.g.:", r.OnlyNewRows}} {
		if len(only.rows) == 0 {
			continue
		}
		fmt.Fprintln(w, only.title)
		for _, ex := range only.rows {
			row := ex.Old
			if row == nil {
				row = ex.New
			}
			fmt.Fprintf(w, "      %s: %s\n", ex.Record, row)
		}
	}
	fmt.Fprintln(w, "rejects:")
	for _, s := range []struct {
		name string
		side fixture.Side
	}{{"old", r.Old}, {"new", r.New}} {
		fmt.Fprintf(w, "  %-4s %d of %d (%s); written %d, filtered %d\n", s.name, s.side.Rejected, s.side.Read, pct(s.side.RejectRate), s.side.Written, s.side.Filtered)
		for _, rs := range s.side.TopReasons {
			fmt.Fprintf(w, "       %6d  %s: %s\n", rs.Count, rs.Step, rs.Reason)
		}
	}
	sd := r.Schema
	if len(sd.Added)+len(sd.Removed)+len(sd.Retyped) == 0 {
		fmt.Fprintln(w, "schema: unchanged")
	} else {
		fmt.Fprintln(w, "schema:")
		for _, f := range sd.Added {
			fmt.Fprintf(w, "  + %s %s\n", f.Name, f.Type)
		}
		for _, f := range sd.Removed {
			fmt.Fprintf(w, "  - %s %s\n", f.Name, f.Type)
		}
		for _, f := range sd.Retyped {
			fmt.Fprintf(w, "  ~ %s: %s -> %s\n", f.Name, f.Old, f.New)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
}
