package natsjs

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

var sinkSpec = connector.Spec{
	Name:    "nats",
	Summary: "Publish rows to NATS JetStream, one message per row, with message ids for the server's dedupe.",
	Doc: `Publishes each row as a message on subject: the row as a JSON object, or with
format raw the value of raw_field as it is. Every message carries a
Nats-Msg-Id: made of the key fields when key is set, otherwise of where the
record came from (its source position and place). A batch published again
after a failure has the same ids, and the stream drops the copies that
arrive within its duplicate window (2 minutes by default): rows are
published at least once and stored once.

Messages are published asynchronously and each batch waits for the server
to acknowledge all of its messages. A message the stream refuses for its
own sake (larger than the stream's or the server's maximum) goes to the dead
letters; any other failure (no acknowledgement in time, the server away) is
retried with the whole batch.`,
	Fields: []connector.FieldSpec{
		{Name: "url", Type: connector.TString, Default: DefaultURL, Secret: true, Doc: "Server URL, or several separated by commas; may hold user and password."},
		{Name: "subject", Type: connector.TString, Required: true, Doc: "The subject of every message; a stream must capture it."},
		{Name: "stream", Type: connector.TString, Doc: "When set, a message stored by another stream is an error (Nats-Expected-Stream)."},
		{Name: "key", Type: connector.TList, Doc: "Fields whose values make the message id. A later row with the same key within the duplicate window is dropped by the server: set it only when a key is written once."},
		{Name: "format", Type: connector.TEnum, Default: payload.FormatJSON, Enum: payload.Formats, Doc: "json: the row as a JSON object. raw: the value of raw_field (bytes, string or json) as the body."},
		{Name: "raw_field", Type: connector.TString, Default: payload.DefaultRawField, Doc: "The field sent as the body with format raw."},
		{Name: "max_pending", Type: connector.TInt, Default: "4000", Doc: "Most messages published and not yet acknowledged by the server."},
	},
	Example: `sink:
  type: nats
  url: nats://127.0.0.1:4222
  subject: orders.enriched
  stream: ORDERS_ENRICHED
  key: [order_id]`,
}

type sinkConfig struct {
	URL        string         `yaml:"url"`
	Subject    string         `yaml:"subject"`
	Stream     string         `yaml:"stream"`
	Key        connector.List `yaml:"key"`
	Format     string         `yaml:"format"`
	RawField   string         `yaml:"raw_field"`
	MaxPending int            `yaml:"max_pending"`
}

type sink struct{ cfg sinkConfig }

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{URL: DefaultURL, Format: payload.FormatJSON, RawField: payload.DefaultRawField, MaxPending: 4000}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Subject == "" {
		return nil, connector.Errorf(p.FieldPos("subject"), "nats needs the subject to publish on")
	}
	if cfg.MaxPending < 1 {
		return nil, connector.Errorf(p.FieldPos("max_pending"), "max_pending must be positive")
	}
	return &sink{cfg: cfg}, nil
}

// Check implements connector.Checker.
func (s *sink) Check(ctx context.Context, env *connector.Env) error {
	nc, err := connect(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	if s.cfg.Stream == "" {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if _, err := js.Stream(ctx, s.cfg.Stream); err != nil {
		return fmt.Errorf("nats: %w", streamError(s.cfg.Stream, err))
	}
	return nil
}

// Open implements connector.Sink.
func (s *sink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	enc, err := payload.NewEncoder(s.cfg.Format, schema, s.cfg.RawField)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	ids, err := payload.NewIDs(env.Pipeline, schema, s.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	nc, err := connect(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(s.cfg.MaxPending))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	w := &writer{nc: nc, js: js, cfg: s.cfg, enc: enc, ids: ids}
	if s.cfg.Stream != "" {
		w.opts = append(w.opts, jetstream.WithExpectStream(s.cfg.Stream))
	}
	return w, nil
}

type writer struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cfg  sinkConfig
	enc  *payload.Encoder
	ids  *payload.IDs
	opts []jetstream.PublishOpt
}

// Info implements connector.Writer: at least once, made idempotent by the
// server's dedupe on message ids.
func (w *writer) Info() connector.WriterInfo { return connector.WriterInfo{} }

// Write implements connector.Writer. It publishes the batch in windows of
// max_pending messages and waits for each window's acknowledgements, so
// that the rows the stream refuses are known when it returns.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var refused []connector.RowError
	futures := make([]jetstream.PubAckFuture, 0, min(b.Len(), w.cfg.MaxPending))
	for lo := 0; lo < b.Len(); lo += w.cfg.MaxPending {
		hi := min(lo+w.cfg.MaxPending, b.Len())
		futures = futures[:0]
		for i := lo; i < hi; i++ {
			m := nats.NewMsg(w.cfg.Subject)
			m.Data = w.enc.Encode(nil, b.Rows[i])
			m.Header.Set(jetstream.MsgIDHeader, w.ids.ID(b, i))
			m.Header.Set("Content-Type", w.enc.ContentType())
			f, err := w.js.PublishMsgAsync(m, w.opts...)
			if err != nil {
				if refusal(err) {
					refused = append(refused, connector.RowError{Index: i, Err: err})
					futures = append(futures, nil)
					continue
				}
				return 0, w.publishError(err)
			}
			futures = append(futures, f)
		}
		for k, f := range futures {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				if refusal(err) {
					refused = append(refused, connector.RowError{Index: lo + k, Err: err})
					continue
				}
				return 0, w.publishError(err)
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	if len(refused) > 0 {
		return b.Len() - len(refused), &connector.BatchError{Rows: refused}
	}
	return b.Len(), nil
}

// refusal tells an error about the message itself from one about the
// server or the connection.
func refusal(err error) bool {
	return errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) || errors.Is(err, nats.ErrMaxPayload)
}

func (w *writer) publishError(err error) error {
	if errors.Is(err, nats.ErrNoResponders) && w.nc.IsConnected() {
		return fmt.Errorf("nats: no stream stores subject %q", w.cfg.Subject)
	}
	return connector.Transient(fmt.Errorf("nats: publish on %q: %w", w.cfg.Subject, err))
}

// Commit implements connector.Writer: every message was acknowledged in
// Write; Commit waits for any the library still tracks.
func (w *writer) Commit(ctx context.Context, _ []connector.Checkpoint) error {
	select {
	case <-w.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements connector.Writer.
func (w *writer) Close() error {
	w.nc.Close()
	return nil
}
