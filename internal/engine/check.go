package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Check compiles every step against the schema flowing into it, as a run
// would, and writes nothing. The source schema is the declared one, or read
// from the first task (a file's header). Lookups are opened (loaded) so that
// enrich and lookup() are checked against their real fields.
//
// It returns config.Errors for mistakes in the pipeline file, and other
// errors (wrapping connector.ErrUnavailable) for inputs it could not read.
func Check(ctx context.Context, p *config.Pipeline) error {
	r, err := newRunner(p, Options{DryRun: true})
	if err != nil {
		return err
	}
	if err := r.openLookups(ctx); err != nil {
		return err
	}
	defer r.closeLookups()
	schema, err := r.sourceSchema(ctx)
	if err != nil {
		return err
	}
	if schema == nil {
		return nil // no declared schema and nothing to read yet
	}
	if err := r.bind(schema); err != nil {
		return err
	}
	return checkSinkKeys(p, r.out)
}

// CheckConnect asks every source, lookup and sink that can (a
// connector.Checker) whether its service is reachable and what it names
// exists. Every problem is reported, each at its component's place.
func CheckConnect(ctx context.Context, p *config.Pipeline) error {
	r, err := newRunner(p, Options{DryRun: true})
	if err != nil {
		return err
	}
	comps := append([]*config.Component{p.Source}, p.Lookups...)
	comps = append(comps, p.Sink)
	var errs config.Errors
	for _, c := range comps {
		var v any
		switch c.Kind {
		case connector.KindSource:
			v = c.Source
		case connector.KindLookup:
			v = c.Lookup
		case connector.KindSink:
			v = c.Sink
		}
		ch, ok := v.(connector.Checker)
		if !ok {
			continue
		}
		if err := ch.Check(ctx, r.env); err != nil {
			errs = append(errs, connector.Errorf(c.Pos, "%s: %s", c.Label, p.Redactor.Redact(err.Error())))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// sourceSchema is the declared schema, or the first task's.
func (r *runner) sourceSchema(ctx context.Context) (*record.Schema, error) {
	if sc, ok := r.p.Source.Source.(connector.Schemer); ok && sc.Schema() != nil {
		return sc.Schema(), nil
	}
	tasks, err := r.p.Source.Source.Plan(ctx, r.env)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	rd, err := r.p.Source.Source.Open(ctx, r.env, tasks[0], nil)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", tasks[0].Key, err)
	}
	defer rd.Close()
	return rd.Schema(), nil
}

// KeyedSink is implemented by sinks that write by key (upsert): Check
// verifies the key fields reach the sink.
type KeyedSink interface {
	KeyFields() []string
}

func checkSinkKeys(p *config.Pipeline, out *record.Schema) error {
	var errs config.Errors
	for _, k := range SinkKeys(p) {
		if _, ok := out.Index(k); !ok {
			errs = append(errs, connector.Errorf(p.Sink.Params.FieldPos("key"),
				"sink key field %q is not in the output (fields: %s)%s", k, out, config.DidYouMean(k, out.Names())))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// IsConfigError reports whether err is a mistake in a pipeline file.
func IsConfigError(err error) bool {
	var errs config.Errors
	return errors.As(err, &errs)
}
