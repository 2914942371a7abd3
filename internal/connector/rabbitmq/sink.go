package rabbitmq

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

var sinkSpec = connector.Spec{
	Name:    "rabbitmq",
	Summary: "Publish rows to a RabbitMQ exchange, one persistent message per row, with publisher confirms.",
	Doc: `Publishes each row to exchange (the default exchange when empty) with
routing_key: the row as a JSON object, or with format raw the value of
raw_field as it is. Messages are persistent and carry a message id made of
the key fields when key is set, otherwise of where the record came from, so
that a consumer can drop the copies of a batch published again after a
failure (rows are published at least once).

Each batch waits for the broker to confirm all of its messages. Messages are
mandatory: one that no queue takes (no binding matches its routing key)
comes back and goes to the dead letters; a message the broker refuses
(negative confirm) fails the batch, which is retried.`,
	Fields: []connector.FieldSpec{
		{Name: "url", Type: connector.TString, Default: DefaultURL, Secret: true, Doc: "Broker URL (amqp:// or amqps://), with user, password and virtual host."},
		{Name: "exchange", Type: connector.TString, Doc: "The exchange to publish to; the default exchange (routing by queue name) when empty."},
		{Name: "routing_key", Type: connector.TString, Required: true, Doc: "The routing key of every message (a queue's name with the default exchange)."},
		{Name: "key", Type: connector.TList, Doc: "Fields whose values make the message id; by default the record's origin does."},
		{Name: "format", Type: connector.TEnum, Default: payload.FormatJSON, Enum: payload.Formats, Doc: "json: the row as a JSON object. raw: the value of raw_field (bytes, string or json) as the body."},
		{Name: "raw_field", Type: connector.TString, Default: payload.DefaultRawField, Doc: "The field sent as the body with format raw."},
		{Name: "mandatory", Type: connector.TBool, Default: "true", Doc: "Messages that no queue takes come back and go to the dead letters; false: the broker drops them."},
		{Name: "persistent", Type: connector.TBool, Default: "true", Doc: "Messages survive a restart of the broker (delivery mode 2) in a durable queue."},
	},
	Example: `sink:
  type: rabbitmq
  url: ${AMQP_URL}
  exchange: orders
  routing_key: orders.enriched
  key: [order_id]`,
}

type sinkConfig struct {
	URL        string         `yaml:"url"`
	Exchange   string         `yaml:"exchange"`
	RoutingKey string         `yaml:"routing_key"`
	Key        connector.List `yaml:"key"`
	Format     string         `yaml:"format"`
	RawField   string         `yaml:"raw_field"`
	Mandatory  bool           `yaml:"mandatory"`
	Persistent bool           `yaml:"persistent"`
}

type sink struct{ cfg sinkConfig }

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{URL: DefaultURL, Format: payload.FormatJSON, RawField: payload.DefaultRawField, Mandatory: true, Persistent: true}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.RoutingKey == "" {
		return nil, connector.Errorf(p.FieldPos("routing_key"), "rabbitmq needs the routing_key of the messages")
	}
	return &sink{cfg: cfg}, nil
}

// Check implements connector.Checker.
func (s *sink) Check(ctx context.Context, env *connector.Env) error {
	conn, err := dial(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	if s.cfg.Exchange == "" {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", amqpError("open a channel", err))
	}
	defer ch.Close()
	if err := ch.ExchangeDeclarePassive(s.cfg.Exchange, "direct", true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: %w", amqpError(fmt.Sprintf("exchange %q", s.cfg.Exchange), err))
	}
	return nil
}

// window is how many messages a Write publishes before it waits for their
// confirms; the channel of returned messages holds as many.
const window = 4096

// Open implements connector.Sink.
func (s *sink) Open(ctx context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	enc, err := payload.NewEncoder(s.cfg.Format, schema, s.cfg.RawField)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	ids, err := payload.NewIDs(env.Pipeline, schema, s.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	conn, err := dial(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	w := &writer{conn: conn, cfg: s.cfg, enc: enc, ids: ids}
	if err := w.channel(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	return w, nil
}

type writer struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	cfg     sinkConfig
	enc     *payload.Encoder
	ids     *payload.IDs
}

// channel opens the publishing channel in confirm mode. A channel the
// broker closed (an exchange that is not there) is opened again by the
// next Write.
func (w *writer) channel() error {
	ch, err := w.conn.Channel()
	if err != nil {
		return amqpError("open a channel", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return amqpError("confirm mode", err)
	}
	w.ch = ch
	w.returns = ch.NotifyReturn(make(chan amqp.Return, window))
	return nil
}

// Info implements connector.Writer: at least once.
func (w *writer) Info() connector.WriterInfo { return connector.WriterInfo{} }

// Write implements connector.Writer: it publishes the batch in windows and
// waits for each window's confirms, so that returned messages are known
// when it returns.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if w.ch == nil || w.ch.IsClosed() {
		if err := w.channel(); err != nil {
			return 0, fmt.Errorf("rabbitmq: %w", err)
		}
	}
	mode := amqp.Transient
	if w.cfg.Persistent {
		mode = amqp.Persistent
	}
	var refused []connector.RowError
	ids := make(map[string]int, min(b.Len(), window))
	dcs := make([]*amqp.DeferredConfirmation, 0, min(b.Len(), window))
	for lo := 0; lo < b.Len(); lo += window {
		hi := min(lo+window, b.Len())
		clear(ids)
		dcs = dcs[:0]
		for i := lo; i < hi; i++ {
			id := w.ids.ID(b, i)
			ids[id] = i
			dc, err := w.ch.PublishWithDeferredConfirmWithContext(ctx, w.cfg.Exchange, w.cfg.RoutingKey, w.cfg.Mandatory, false, amqp.Publishing{
				ContentType: w.enc.ContentType(), DeliveryMode: mode, MessageId: id, Body: w.enc.Encode(nil, b.Rows[i]),
			})
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 0, fmt.Errorf("rabbitmq: publish: %w", amqpError("publish", err))
			}
			dcs = append(dcs, dc)
		}
		for _, dc := range dcs {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, connector.Transient(fmt.Errorf("rabbitmq: the broker refused a message (negative confirm) on exchange %q", w.cfg.Exchange))
			}
		}
		// A return comes before the confirm of its message: every return of
		// the window is in the channel by now.
		for done := false; !done; {
			select {
			case ret := <-w.returns:
				if i, ok := ids[ret.MessageId]; ok {
					refused = append(refused, connector.RowError{Index: i, Err: fmt.Errorf("no queue takes the message: exchange %q, routing key %q: %s", ret.Exchange, ret.RoutingKey, ret.ReplyText)})
				}
			default:
				done = true
			}
		}
	}
	if len(refused) > 0 {
		return b.Len() - len(refused), &connector.BatchError{Rows: refused}
	}
	return b.Len(), nil
}

// Commit implements connector.Writer: Write waited for every confirm.
func (w *writer) Commit(ctx context.Context, _ []connector.Checkpoint) error { return ctx.Err() }

// Close implements connector.Writer.
func (w *writer) Close() error {
	if w.ch != nil {
		_ = w.ch.Close()
	}
	return w.conn.Close()
}
