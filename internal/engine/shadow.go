package engine

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// ShadowResult is what a shadow run did: the counts and top reject reasons
// of a run, the schema that reached the sink, and every reject.
type ShadowResult struct {
	*Result
	Rejects []state.DeadLetter // in the order the sink loop met them
}

// Shadow runs p once with src in place of its source and sink in place of
// its sink, in isolation: no state store is opened, no checkpoint is read or
// moved, no dead letter is stored (they are returned), no run history is
// written, no error budget stops the run, and every component sees
// Env.DryRun. p's own source and sink are never opened. p's lookups are used
// as they are; a caller that must not touch services replaces them first.
//
// It is the runner of `backbone test` (fixtures in, output captured) and
// `backbone diff` (two versions over one sample). opts.Store, DryRun and
// MemoryBudget are ignored. The result is non-nil whenever the run started.
func Shadow(ctx context.Context, p *config.Pipeline, src connector.Source, sink connector.Sink, opts Options) (*ShadowResult, error) {
	sp := *p
	source, out := *p.Source, *p.Sink
	source.Source, out.Sink = src, sink
	sp.Source, sp.Sink = &source, &out
	sp.Errors = config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1}

	opts.Store = discardStore{}
	opts.DryRun = false // the sink given is opened: it is the caller's capture
	opts.MemoryBudget = 0
	opts.noCheckpoints = true
	res := &ShadowResult{}
	// Called from the sink loop only, one batch at a time.
	opts.onRejects = func(dls []state.DeadLetter) { res.Rejects = append(res.Rejects, dls...) }
	r, err := newRunner(&sp, opts)
	if err != nil {
		return nil, err
	}
	r.env.DryRun = true // lookups and the source write nothing either
	run, err := r.run(ctx)
	if run == nil {
		return nil, err
	}
	res.Result = run
	if res.Schema == nil {
		res.Schema = r.out
	}
	return res, err
}

// discardStore is the state store of a shadow run: it keeps nothing. It
// implements what a run without checkpoints and with its own dead-letter
// callback calls; any other call reaches the nil Store inside and fails
// (the run reports it as an internal error) rather than writing anywhere.
type discardStore struct{ state.Store }

func (discardStore) StartRun(context.Context, *state.Run) error  { return nil }
func (discardStore) FinishRun(context.Context, *state.Run) error { return nil }
func (discardStore) SaveVersion(context.Context, state.Version) error {
	return nil
}
func (discardStore) MarkVersion(context.Context, string, string, string, string) error {
	return nil
}

// SampleOptions bound what Sample reads.
type SampleOptions struct {
	// Max is the most records read (rows and source rejects); <= 0: all.
	Max int
	// Since, when not zero, keeps only the records whose TimeField is at or
	// after it. Malformed records, whose time is unknown, are kept.
	Since time.Time
	// TimeField is the field Since is compared with; by default the first
	// timestamp or date field of the source.
	TimeField string
	// LogicalTime is the run time the source sees; now when zero.
	LogicalTime time.Time
}

// Sample is input read once, to be fed to shadow runs.
type Sample struct {
	Schema  *record.Schema  // nil when there is nothing to read and no schema declared
	Batches []*record.Batch // decoded; each row has a distinct (Origin, Line)
	Records int             // rows and source rejects
	Tasks   int             // tasks read, of the source's plan
	// Truncated is true when Max stopped the reading before the end.
	Truncated bool
	TimeField string // the field Since was compared with
}

// TakeSample reads records from p's source read-only: every task from its
// beginning, in plan order, with no checkpoint read or moved, no state store
// and Env.DryRun set, until opts.Max records. For `backbone diff`.
func TakeSample(ctx context.Context, p *config.Pipeline, opts SampleOptions) (*Sample, error) {
	r, err := newRunner(p, Options{DryRun: true, LogicalTime: opts.LogicalTime})
	if err != nil {
		return nil, err
	}
	r.env.DeferDecode = false
	tasks, err := p.Source.Source.Plan(ctx, r.env)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &Sample{}
	timeIdx := -1
	for _, t := range tasks {
		rd, err := p.Source.Source.Open(ctx, r.env, t, nil)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", t.Key, err)
		}
		s.Tasks++
		if s.Schema == nil {
			s.Schema = rd.Schema()
			if !opts.Since.IsZero() {
				if timeIdx, err = sampleTimeField(s.Schema, opts.TimeField); err != nil {
					rd.Close()
					return nil, err
				}
				s.TimeField = s.Schema.Field(timeIdx).Name
			}
		} else if !rd.Schema().Equal(s.Schema) {
			rd.Close()
			return nil, fmt.Errorf("source %s: its fields (%s) differ from the first task's (%s)", t.Key, rd.Schema(), s.Schema)
		}
		full, err := s.read(ctx, rd, opts, timeIdx)
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", t.Key, err)
		}
		if full {
			s.Truncated = true
			break
		}
	}
	if s.Schema == nil {
		// Nothing to read: the versions still run, on no record, against
		// the schema the source declares.
		if sc, ok := p.Source.Source.(connector.Schemer); ok {
			s.Schema = sc.Schema()
		}
	}
	return s, nil
}

// read adds one task's batches; it reports whether the sample is full.
func (s *Sample) read(ctx context.Context, rd connector.Reader, opts SampleOptions, timeIdx int) (bool, error) {
	var n int64 // records of this task, for sources that number none
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if b.Decode != nil {
			b.Decode(b)
			b.Decode = nil
		}
		if b.Lines == nil {
			b.Lines = make([]int64, len(b.Rows))
			for i := range b.Lines {
				n++
				b.Lines[i] = n
			}
		}
		if timeIdx >= 0 {
			keepSince(b, timeIdx, opts.Since)
		}
		left := opts.Max - s.Records
		if opts.Max > 0 && len(b.Rows)+len(b.Rejects) >= left {
			truncate(b, left)
			s.add(b)
			return true, nil
		}
		s.add(b)
	}
}

func (s *Sample) add(b *record.Batch) {
	b.Read = len(b.Rows) + len(b.Rejects)
	b.Filtered = 0
	if b.Read == 0 {
		return
	}
	s.Records += b.Read
	s.Batches = append(s.Batches, b)
}

// sampleTimeField finds the field --since compares with.
func sampleTimeField(s *record.Schema, name string) (int, error) {
	if name != "" {
		i, ok := s.Index(name)
		if !ok {
			return 0, fmt.Errorf("time field %q is not a field of the source (fields: %s)%s", name, s, config.DidYouMean(name, s.Names()))
		}
		if t := s.Field(i).Type; t != record.Timestamp && t != record.Date {
			return 0, fmt.Errorf("time field %q is a %s, not a timestamp or a date", name, t)
		}
		return i, nil
	}
	for i, f := range s.Fields() {
		if f.Type == record.Timestamp || f.Type == record.Date {
			return i, nil
		}
	}
	return 0, fmt.Errorf("the source has no timestamp or date field to compare with a time (fields: %s)", s)
}

// keepSince removes the rows whose time is before since or unknown.
func keepSince(b *record.Batch, idx int, since time.Time) {
	for i, row := range b.Rows {
		var at time.Time
		switch v := row[idx].(type) {
		case time.Time:
			at = v
		case record.LocalDate:
			at = v.Time()
		}
		if at.IsZero() || at.Before(since) {
			b.Drop(i)
		}
	}
	b.Compact()
	b.Filtered = 0
}

// truncate keeps the first n records of b (rows and rejects) in source
// order.
func truncate(b *record.Batch, n int) {
	if n <= 0 {
		b.Rows, b.Lines, b.Raw, b.Rejects = nil, nil, nil, nil
		return
	}
	lines := make([]int64, 0, len(b.Rows)+len(b.Rejects))
	lines = append(lines, b.Lines...)
	for _, rj := range b.Rejects {
		lines = append(lines, rj.Line)
	}
	if len(lines) <= n {
		return
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i] < lines[j] })
	last := lines[n-1]
	for i := range b.Rows {
		if b.Lines[i] > last {
			b.Drop(i)
		}
	}
	b.Compact()
	b.Filtered = 0
	kept := b.Rejects[:0]
	for _, rj := range b.Rejects {
		if rj.Line <= last {
			kept = append(kept, rj)
		}
	}
	b.Rejects = kept
}
