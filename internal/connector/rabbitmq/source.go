package rabbitmq

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

var sourceSpec = connector.Spec{
	Name:    "rabbitmq",
	Summary: "Read a RabbitMQ queue with manual acknowledgements, each message acknowledged once the sink holds it.",
	Doc: `Consumes a queue (which must exist) with manual acknowledgements and a
prefetch window. The run is continuous: it goes on until it is stopped, and
each batch is cut when it holds batch_size messages or linger after its
first one. A batch's messages are acknowledged (multiple, up to its last
delivery tag) only after the sink committed it; a stop or a failure hands
the others back to the queue, in their order.

A queue has no positions to resume from: a message whose acknowledgement
was lost (the process died right after the sink's commit) is delivered
again, so give the sink a key (mode upsert) to store it once.

A message that is not a JSON object, or whose values do not convert to the
schema, goes to the dead letters with its body. A message delivered more
than max_deliver times (each run before failed on it) goes to the dead
letters instead of to the steps, and the queue flows on: a quorum queue
counts deliveries itself (x-delivery-count; keep its x-delivery-limit above
max_deliver, or the broker drops the message first), and for a classic
queue the source counts the redeliveries it sees, by message id or by body.
After a failed run, the messages delivered again are read one at a time
(basic.get), each once the one before is committed, until a new message
comes: a poison message fails its runs alone, and the messages that were
delivered with it do not reach max_deliver on its account.`,
	Fields: []connector.FieldSpec{
		{Name: "url", Type: connector.TString, Default: DefaultURL, Secret: true, Doc: "Broker URL (amqp:// or amqps://), with user, password and virtual host."},
		{Name: "queue", Type: connector.TString, Required: true, Doc: "The queue to consume."},
		{Name: "format", Type: connector.TEnum, Default: payload.FormatJSON, Enum: payload.Formats, Doc: "json: each message is a JSON object, fields by key. raw: each message is one row with its body in raw_field."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names (object keys) and types; required with format json."},
		{Name: "raw_field", Type: connector.TString, Default: payload.DefaultRawField, Doc: "The bytes field of format raw."},
		{Name: "batch_size", Type: connector.TInt, Doc: "Most messages in one batch; the pipeline's batch_rows by default."},
		{Name: "linger", Type: connector.TDuration, Default: "100ms", Doc: "How long a batch waits for more messages after its first one."},
		{Name: "prefetch", Type: connector.TInt, Doc: "Most messages delivered and not yet acknowledged (basic.qos); 4 batches by default. Keep it above a batch."},
		{Name: "max_deliver", Type: connector.TInt, Default: "5", Doc: "Deliveries of a message to the steps; the next delivery goes to the dead letters."},
		{Name: "suspect_wait", Type: connector.TDuration, Default: "5s", Doc: "After a failed run, messages delivered again are read one at a time, each once the one before is committed, so that a poison message fails its runs alone: this bounds the wait for that commit. 0: read them like the others."},
		{Name: "timezone", Type: connector.TString, Doc: "Zone of timestamps written without one (IANA name); the run's zone by default."},
	},
	Example: `source:
  type: rabbitmq
  url: ${AMQP_URL}
  queue: orders
  schema: { order_id: int, qty: int, unit_price: decimal, ordered_at: timestamp }
sink:
  type: postgres
  dsn: ${WAREHOUSE_DSN}
  table: orders
  mode: upsert
  key: [order_id]`,
}

type sourceConfig struct {
	URL         string              `yaml:"url"`
	Queue       string              `yaml:"queue"`
	Format      string              `yaml:"format"`
	Schema      connector.SchemaDef `yaml:"schema"`
	RawField    string              `yaml:"raw_field"`
	BatchSize   int                 `yaml:"batch_size"`
	Linger      connector.Duration  `yaml:"linger"`
	Prefetch    int                 `yaml:"prefetch"`
	MaxDeliver  int                 `yaml:"max_deliver"`
	SuspectWait connector.Duration  `yaml:"suspect_wait"`
	Timezone    string              `yaml:"timezone"`
}

type source struct {
	cfg    sourceConfig
	schema *record.Schema
	loc    *time.Location
	// seen counts the deliveries of messages redelivered by a classic
	// queue, which does not count them; it lives as long as the source,
	// across the runs of a daemon.
	seen *redeliveries
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{URL: DefaultURL, Format: payload.FormatJSON, RawField: payload.DefaultRawField,
		Linger: connector.Duration(100 * time.Millisecond), MaxDeliver: 5, SuspectWait: connector.Duration(5 * time.Second)}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	dec, err := payload.NewDecoder(cfg.Format, cfg.Schema.Schema(), cfg.RawField, time.UTC)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("schema"), "rabbitmq: %v", err)
	}
	err = broker.Check(p, []broker.Rule{
		{Field: "queue", Bad: cfg.Queue == "", Msg: "rabbitmq needs the queue to consume"},
		{Field: "batch_size", Bad: cfg.BatchSize < 0, Msg: "batch_size must be positive"},
		{Field: "linger", Bad: cfg.Linger <= 0, Msg: "linger must be positive"},
		{Field: "prefetch", Bad: cfg.Prefetch < 0 || cfg.Prefetch > 65535, Msg: "prefetch must be between 1 and 65535"},
		{Field: "max_deliver", Bad: cfg.MaxDeliver < 1, Msg: "max_deliver must be at least 1"},
		{Field: "suspect_wait", Bad: cfg.SuspectWait < 0, Msg: "suspect_wait cannot be negative"},
	})
	if err != nil {
		return nil, err
	}
	s := &source{cfg: cfg, schema: dec.Schema(), seen: newRedeliveries(100_000)}
	if s.loc, err = connector.LoadZone(p, cfg.Timezone); err != nil {
		return nil, err
	}
	return s, nil
}

// Schema implements connector.Schemer.
func (s *source) Schema() *record.Schema { return s.schema }

// Plan implements connector.Source: one task, the queue.
func (s *source) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	conn, err := dial(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", amqpError("open a channel", err))
	}
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(s.cfg.Queue, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", amqpError(fmt.Sprintf("queue %q", s.cfg.Queue), err))
	}
	return []connector.Task{{Key: s.cfg.Queue}}, nil
}

// Check implements connector.Checker.
func (s *source) Check(ctx context.Context, env *connector.Env) error {
	_, err := s.Plan(ctx, env)
	return err
}

// Open implements connector.Source. pos is checked and otherwise unused: a
// queue resumes where its acknowledgements left it.
func (s *source) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	if pos != nil {
		if _, err := decodePosition(pos); err != nil {
			return nil, fmt.Errorf("rabbitmq: %w", err)
		}
	}
	batch := broker.BatchSize(s.cfg.BatchSize, env)
	prefetch := s.cfg.Prefetch
	if prefetch == 0 {
		prefetch = min(4*batch, 65535)
	}
	dec, err := payload.NewDecoder(s.cfg.Format, s.schema, s.cfg.RawField, connector.ZoneOf(s.loc, env))
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	conn, err := dial(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	r := &reader{conn: conn, dec: dec, queue: s.cfg.Queue, prefetch: prefetch,
		maxDeliver: s.cfg.MaxDeliver, suspectWait: time.Duration(s.cfg.SuspectWait), deferDecode: env.DeferDecode, seen: s.seen, log: env.Logger,
		msgs: make(chan amqp.Delivery, batch), errs: make(chan error, 1), stop: make(chan struct{}), settle: broker.NewSettle()}
	r.batches = &broker.Batcher[amqp.Delivery]{Size: batch, Linger: time.Duration(s.cfg.Linger), Msgs: r.msgs, Errs: r.errs}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if err := r.start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	return r, nil
}

// reader consumes one queue on one channel. Next runs on the engine's
// reader goroutine and Ack on its sink goroutine; amqp091's channel is safe
// for both, and mu guards the pending batches they share.
type reader struct {
	conn        *amqp.Connection
	ch          *amqp.Channel
	dec         *payload.Decoder
	log         *slog.Logger
	queue       string
	tag         string
	prefetch    int
	maxDeliver  int
	suspectWait time.Duration
	deferDecode bool
	seen        *redeliveries

	closed chan *amqp.Error
	msgs   chan amqp.Delivery // from fetch, for Next
	errs   chan error         // fetch's failure, for Next
	stop   chan struct{}      // closed by Close
	settle *broker.Settle     // wakes fetch: a batch was returned or acknowledged
	wg     sync.WaitGroup

	batches *broker.Batcher[amqp.Delivery] // Next's own

	fetched   atomic.Int64
	consuming atomic.Bool
	mu        sync.Mutex
	pending   []pendingBatch
	returned  int64 // messages cut into batches
}

type pendingBatch struct {
	tag  uint64   // last delivery tag of the batch
	keys []string // redelivered messages counted in seen
}

func (r *reader) start() error {
	ch, err := r.conn.Channel()
	if err != nil {
		return amqpError("open a channel", err)
	}
	r.ch = ch
	if err := ch.Qos(r.prefetch, 0, false); err != nil {
		return amqpError("set the prefetch", err)
	}
	r.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	r.tag = fmt.Sprintf("backbone-%d", time.Now().UnixNano())
	r.wg.Go(r.fetch)
	return nil
}

// fetch hands messages to Next. After a failure, messages delivered again
// are got one at a time (basic.get; see broker.Settle), until a message
// delivered for the first time, or an empty queue, shows that they are
// behind. Then fetch consumes, within the prefetch window.
func (r *reader) fetch() {
	for r.suspectWait > 0 {
		if !r.settled() {
			return
		}
		d, ok, err := r.ch.Get(r.queue, false)
		if err != nil {
			r.fail(amqpError(fmt.Sprintf("get from queue %q", r.queue), err))
			return
		}
		if !ok {
			break
		}
		if !r.give(d) {
			return
		}
		if !redelivered(d) {
			break
		}
	}
	r.consuming.Store(true)
	deliveries, err := r.ch.Consume(r.queue, r.tag, false, false, false, false, nil)
	if err != nil {
		r.fail(amqpError(fmt.Sprintf("consume queue %q", r.queue), err))
		return
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				r.fail(r.lost())
				return
			}
			if !r.give(d) {
				return
			}
		case <-r.stop:
			return
		}
	}
}

// give hands d to Next; false when the reader is closing (closing the
// channel hands d back to the queue).
func (r *reader) give(d amqp.Delivery) bool {
	r.fetched.Add(1)
	select {
	case r.msgs <- d:
		return true
	case <-r.stop:
		return false
	}
}

func (r *reader) fail(err error) {
	select {
	case r.errs <- err:
	default:
	}
}

func redelivered(d amqp.Delivery) bool {
	if c, ok := d.Headers["x-delivery-count"]; ok && c != int64(0) && c != int32(0) {
		return true
	}
	return d.Redelivered
}

// settled waits until every message fetched was returned by Next and
// acknowledged, or suspect_wait; it reports false when the reader is
// closing.
func (r *reader) settled() bool {
	return r.settle.Wait(r.stop, r.suspectWait, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.pending) == 0 && r.returned == r.fetched.Load()
	})
}

// Schema implements connector.Reader.
func (r *reader) Schema() *record.Schema { return r.dec.Schema() }

// Next implements connector.Reader: it waits for a first message, then
// collects up to batch messages for at most linger.
func (r *reader) Next(ctx context.Context) (*record.Batch, error) {
	msgs, err := r.batches.Next(ctx)
	if err != nil {
		return nil, err
	}
	return r.cut(msgs), nil
}

// lost is the error of a consumer whose channel is gone.
func (r *reader) lost() error {
	select {
	case e := <-r.closed:
		if e != nil {
			return amqpError(fmt.Sprintf("queue %q", r.queue), e)
		}
	default:
	}
	return connector.Transient(fmt.Errorf("rabbitmq: queue %q: the broker ended the consumer", r.queue))
}

// attempts is how many times d was delivered, this time included.
func (r *reader) attempts(d amqp.Delivery) (n int, key string) {
	if c, ok := d.Headers["x-delivery-count"]; ok { // quorum queues count
		switch v := c.(type) {
		case int64:
			return int(v) + 1, ""
		case int32:
			return int(v) + 1, ""
		case int:
			return v + 1, ""
		}
	}
	if !d.Redelivered {
		return 1, ""
	}
	key = d.MessageId
	if key == "" {
		sum := sha256.Sum256(d.Body)
		key = string(sum[:16])
	}
	return r.seen.add(key), key
}

// line is a stable number for a message in dead letters: the same message
// rejected again replaces its dead letter.
func line(d amqp.Delivery) int64 {
	h := sha256.New()
	if d.MessageId != "" {
		h.Write([]byte("id:" + d.MessageId))
	} else {
		h.Write(d.Body)
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)) >> 1)
}

func (r *reader) cut(msgs []amqp.Delivery) *record.Batch {
	b := &record.Batch{Schema: r.dec.Schema(), Origin: r.queue, Read: len(msgs)}
	bodies := make([]payload.Body, 0, len(msgs))
	var pb pendingBatch
	for _, d := range msgs {
		pb.tag = d.DeliveryTag
		n, key := r.attempts(d)
		if key != "" {
			pb.keys = append(pb.keys, key)
		}
		if rej, ok := broker.Poison(n, r.maxDeliver, line(d), d.Body); ok {
			b.Rejects = append(b.Rejects, rej)
			continue
		}
		bodies = append(bodies, payload.Body{Line: line(d), Data: d.Body})
	}
	r.mu.Lock()
	r.pending = append(r.pending, pb)
	r.returned += int64(len(msgs))
	r.mu.Unlock()
	r.settle.Signal()
	b.Pos = position{Queue: r.queue, Tag: pb.tag}.encode()
	r.dec.Fill(b, bodies, r.deferDecode)
	return b
}

// Ack implements connector.Acker: one basic.ack, multiple, up to the last
// delivery tag of the batch at pos.
func (r *reader) Ack(ctx context.Context, pos record.Position) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	r.mu.Lock()
	i := 0
	for i < len(r.pending) && r.pending[i].tag <= p.Tag {
		i++
	}
	done := r.pending[:i:i]
	r.pending = r.pending[i:]
	r.mu.Unlock()
	defer r.settle.Signal()
	if len(done) == 0 {
		return nil
	}
	if err := r.ch.Ack(done[len(done)-1].tag, true); err != nil {
		return fmt.Errorf("rabbitmq: acknowledge: %w", err)
	}
	for _, pb := range done {
		for _, k := range pb.keys {
			r.seen.forget(k)
		}
	}
	return nil
}

// Close implements connector.Reader: closing the channel hands every
// message not acknowledged back to the queue, in its place.
func (r *reader) Close() error {
	select {
	case <-r.stop:
		return nil
	default:
	}
	close(r.stop)
	r.wg.Wait()
	if r.ch != nil {
		if r.consuming.Load() {
			// A quorum queue applies a cancel after the acknowledgements
			// sent before it, and answers once it did; closing the channel
			// at once could hand acknowledged messages back to the queue.
			_ = r.ch.Cancel(r.tag, false)
		}
		_ = r.ch.Close()
	}
	return r.conn.Close()
}

// position of a batch: the channel's last delivery tag, for Ack. A queue
// resumes where its acknowledgements left it, not from a position.
type position struct {
	V     int    `json:"v"`
	Queue string `json:"queue"`
	Tag   uint64 `json:"tag"`
}

const positionVersion = 1

func (p position) encode() record.Position {
	p.V = positionVersion
	b, _ := json.Marshal(p)
	return b
}

func decodePosition(b record.Position) (position, error) {
	var p position
	err := broker.DecodePosition(b, &p, &p.V, positionVersion)
	return p, err
}

// redeliveries counts the deliveries of redelivered messages by key, up to
// a number of keys; past it, the oldest key is forgotten.
type redeliveries struct {
	mu    sync.Mutex
	max   int
	count map[string]int
	order []string
}

func newRedeliveries(max int) *redeliveries {
	return &redeliveries{max: max, count: map[string]int{}}
}

// add counts one more delivery of a redelivered message and returns its
// deliveries so far (at least 2: it was delivered before).
func (d *redeliveries) add(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.count[key]
	if !ok {
		n = 1
		d.order = append(d.order, key)
		if len(d.order) > d.max {
			delete(d.count, d.order[0])
			d.order = d.order[1:]
		}
	}
	n++
	d.count[key] = n
	return n
}

func (d *redeliveries) forget(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.count, key)
}
