package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state"
)

// ReplayResult is what a dead-letter replay did.
type ReplayResult struct {
	*Result
	Replayed int // dead letters sent through the pipeline
	Removed  int // dead letters that passed (written or filtered) and were removed
	Still    int // dead letters rejected again (their error is updated)
}

// Replay sends dead letters through the current version of the pipeline:
// each record is parsed again by the source (or from JSON), transformed and
// written. Dead letters that now pass are removed; those rejected again stay,
// with the new error. No checkpoint moves, and no error budget applies (every
// record replayed was bad once). When the run fails, the dead letters are
// left as they were.
func Replay(ctx context.Context, p *config.Pipeline, opts Options, dls []state.DeadLetter) (*ReplayResult, error) {
	if len(dls) == 0 {
		return &ReplayResult{Result: &Result{RejectsByStep: map[string]int64{}}}, nil
	}
	opts.Trigger = state.TriggerReplay
	opts.noCheckpoints = true
	var fresh []state.DeadLetter
	opts.onRejects = func(dls []state.DeadLetter) { fresh = append(fresh, dls...) }

	probe, err := newRunner(p, Options{DryRun: true})
	if err != nil {
		return nil, err
	}
	schema, err := probe.sourceSchema(ctx)
	if err != nil {
		return nil, err
	}
	rp := *p
	rp.Errors = config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1}
	src := *p.Source
	src.Source = &replaySource{inner: p.Source.Source, schema: schema, dls: dls}
	rp.Source = &src
	res, err := Run(ctx, &rp, opts)
	out := &ReplayResult{Result: res, Replayed: len(dls)}
	if err != nil {
		return out, err
	}
	again := map[[2]string]string{} // (task, loc) → step that rejected it again
	for _, d := range fresh {
		again[[2]string{d.Task, d.Loc}] = d.Step
	}
	if err := opts.Store.AddDeadLetters(ctx, fresh); err != nil {
		return out, fmt.Errorf("state store: %w", err)
	}
	var remove []int64
	for _, d := range dls {
		step, rejected := again[[2]string{d.Task, d.Loc}]
		switch {
		case !rejected:
			remove = append(remove, d.ID)
			out.Removed++
		case step != d.Step: // stored anew under its new step
			remove = append(remove, d.ID)
			out.Still++
		default: // replaced in place
			out.Still++
		}
	}
	if _, err := opts.Store.DeleteDeadLetters(ctx, remove); err != nil {
		return out, fmt.Errorf("state store: %w", err)
	}
	return out, nil
}

// replaySource reads dead letters as a source: one task per original task.
type replaySource struct {
	inner  connector.Source
	schema *record.Schema
	dls    []state.DeadLetter
}

func (s *replaySource) Schema() *record.Schema { return s.schema }

func (s *replaySource) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	seen := map[string]bool{}
	var tasks []connector.Task
	for _, d := range s.dls {
		if !seen[d.Task] {
			seen[d.Task] = true
			tasks = append(tasks, connector.Task{Key: d.Task})
		}
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Key < tasks[j].Key })
	return tasks, nil
}

func (s *replaySource) Open(ctx context.Context, env *connector.Env, t connector.Task, _ record.Position) (connector.Reader, error) {
	var mine []state.DeadLetter
	for _, d := range s.dls {
		if d.Task == t.Key {
			mine = append(mine, d)
		}
	}
	return &replayReader{src: s, env: env, task: t.Key, dls: mine}, nil
}

type replayReader struct {
	src  *replaySource
	env  *connector.Env
	task string
	dls  []state.DeadLetter
}

func (r *replayReader) Schema() *record.Schema { return r.src.schema }
func (r *replayReader) Close() error           { return nil }

// Next returns one batch per origin (the part of Loc before the line).
func (r *replayReader) Next(ctx context.Context) (*record.Batch, error) {
	if len(r.dls) == 0 {
		return nil, io.EOF
	}
	origin, _ := splitLoc(r.dls[0].Loc)
	var group []state.DeadLetter
	rest := r.dls[:0:0]
	for _, d := range r.dls {
		if o, _ := splitLoc(d.Loc); o == origin {
			group = append(group, d)
		} else {
			rest = append(rest, d)
		}
	}
	r.dls = rest
	raws := make([][]byte, len(group))
	lines := make([]int64, len(group))
	for i, d := range group {
		raws[i] = d.Record
		_, lines[i] = splitLoc(d.Loc)
	}
	var b *record.Batch
	var err error
	if rp, ok := r.src.inner.(connector.Replayer); ok {
		b, err = rp.Replay(ctx, r.env, r.task, raws)
	} else {
		b, err = replayJSON(r.src.schema, raws, r.env)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	// Back from indexes in raws to the places the records came from.
	for i := range b.Lines {
		b.Lines[i] = lines[b.Lines[i]]
	}
	for i := range b.Rejects {
		b.Rejects[i].Line = lines[b.Rejects[i].Line]
	}
	b.Origin = origin
	b.Read = len(group)
	return b, nil
}

// replayJSON parses records kept as JSON objects.
func replayJSON(s *record.Schema, raws [][]byte, env *connector.Env) (*record.Batch, error) {
	b := &record.Batch{Schema: s}
	for i, raw := range raws {
		var obj map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			b.Rejects = append(b.Rejects, record.Reject{Line: int64(i), Step: "source", Err: "record is not a JSON object: " + err.Error(), Raw: raw})
			continue
		}
		row := make(record.Row, s.Len())
		ok := true
		for f := 0; f < s.Len() && ok; f++ {
			fd := s.Field(f)
			v, err := record.Convert(obj[fd.Name], fd.Type, env.Location)
			if err != nil {
				if ce, isConv := err.(*record.ConvError); isConv {
					ce.Field = fd.Name
				}
				b.Rejects = append(b.Rejects, record.Reject{Line: int64(i), Step: "source", Field: fd.Name, Err: err.Error(), Raw: raw})
				ok = false
				continue
			}
			row[f] = v
		}
		if ok {
			b.Rows = append(b.Rows, row)
			b.Lines = append(b.Lines, int64(i))
			b.Raw = append(b.Raw, raw)
		}
	}
	return b, nil
}

// splitLoc splits "orders.csv:42" into ("orders.csv", 42) and "#42" into ("", 42).
func splitLoc(loc string) (string, int64) {
	if strings.HasPrefix(loc, "#") {
		n, _ := strconv.ParseInt(loc[1:], 10, 64)
		return "", n
	}
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return loc, 0
	}
	n, err := strconv.ParseInt(loc[i+1:], 10, 64)
	if err != nil {
		return loc, 0
	}
	return loc[:i], n
}
