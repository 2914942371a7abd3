package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

var sourceSpec = connector.Spec{
	Name:    "nats",
	Summary: "Read a NATS JetStream stream through a durable pull consumer, acknowledging each message once the sink holds it.",
	Doc: `Reads the messages of a stream (those of subject, when set) through a durable
pull consumer that the source creates or updates. The run is continuous: it
goes on until it is stopped, and each batch is cut when it holds batch_size
messages or linger after its first one. A message is acknowledged only after
the sink committed its batch; messages in flight are kept from redelivery
with progress acknowledgements however slow the sink, and a stop hands the
messages read but not committed back to the server.

The checkpoint holds the stream sequences of the messages the sink
committed whose acknowledgement may not have reached the server (the
process died between the two). Such a message delivered again is
acknowledged and skipped: a sink that stores checkpoints with its rows
(sqlite, postgres, mysql) holds each message exactly once; other sinks
rely on their keys. A checkpoint of another life of the stream (deleted
and created again) or of another subject is ignored.

A message that is not a JSON object, or whose values do not convert to the
schema, goes to the dead letters with its stream sequence and its body.
A message delivered more than max_deliver times (each run before failed on
it) goes to the dead letters with its body instead of to the steps, and
the stream flows on. After a failed run, the messages delivered again are
read one at a time, each once the one before is committed, until a new
message comes: a poison message fails its runs alone, and the messages
that were delivered with it do not reach max_deliver on its account.

At start, the source warns when the stream can lose messages the server
acknowledged: memory storage, or a single replica on a file store.`,
	Fields: []connector.FieldSpec{
		{Name: "url", Type: connector.TString, Default: DefaultURL, Secret: true, Doc: "Server URL, or several separated by commas; may hold user and password."},
		{Name: "stream", Type: connector.TString, Required: true, Doc: "The stream to read."},
		{Name: "subject", Type: connector.TString, Doc: "Read only messages of this subject (wildcards allowed); all of the stream by default."},
		{Name: "durable", Type: connector.TString, Doc: "Name of the durable consumer; backbone_ and the pipeline name by default. Two pipelines never share one."},
		{Name: "deliver", Type: connector.TEnum, Default: "all", Enum: []string{"all", "new"}, Doc: "Where a new consumer starts: the stream's first message, or the messages published from now on. An existing consumer goes on where it is."},
		{Name: "format", Type: connector.TEnum, Default: payload.FormatJSON, Enum: payload.Formats, Doc: "json: each message is a JSON object, fields by key. raw: each message is one row with its body in raw_field."},
		{Name: "schema", Type: connector.TSchema, Doc: "Field names (object keys) and types; required with format json."},
		{Name: "raw_field", Type: connector.TString, Default: payload.DefaultRawField, Doc: "The bytes field of format raw."},
		{Name: "batch_size", Type: connector.TInt, Doc: "Most messages in one batch; the pipeline's batch_rows by default."},
		{Name: "linger", Type: connector.TDuration, Default: "100ms", Doc: "How long a batch waits for more messages after its first one."},
		{Name: "max_ack_pending", Type: connector.TInt, Default: "20000", Doc: "Most messages delivered and not yet acknowledged; the server stops delivering past it. Keep it above a few batches."},
		{Name: "ack_wait", Type: connector.TDuration, Default: "30s", Doc: "How long the server waits for an acknowledgement before delivering a message again (after a crash)."},
		{Name: "max_deliver", Type: connector.TInt, Default: "5", Doc: "Deliveries of a message to the steps; the next delivery goes to the dead letters."},
		{Name: "suspect_wait", Type: connector.TDuration, Default: "5s", Doc: "After a failed run, messages delivered again are read one at a time, each once the one before is committed, so that a poison message fails its runs alone: this bounds the wait for that commit."},
		{Name: "timezone", Type: connector.TString, Doc: "Zone of timestamps written without one (IANA name); the run's zone by default."},
	},
	Example: `source:
  type: nats
  url: nats://127.0.0.1:4222
  stream: ORDERS
  subject: orders.created
  schema: { order_id: int, customer_id: int, qty: int, unit_price: decimal, ordered_at: timestamp }
  max_deliver: 5`,
}

type sourceConfig struct {
	URL           string              `yaml:"url"`
	Stream        string              `yaml:"stream"`
	Subject       string              `yaml:"subject"`
	Durable       string              `yaml:"durable"`
	Deliver       string              `yaml:"deliver"`
	Format        string              `yaml:"format"`
	Schema        connector.SchemaDef `yaml:"schema"`
	RawField      string              `yaml:"raw_field"`
	BatchSize     int                 `yaml:"batch_size"`
	Linger        connector.Duration  `yaml:"linger"`
	MaxAckPending int                 `yaml:"max_ack_pending"`
	AckWait       connector.Duration  `yaml:"ack_wait"`
	MaxDeliver    int                 `yaml:"max_deliver"`
	SuspectWait   connector.Duration  `yaml:"suspect_wait"`
	Timezone      string              `yaml:"timezone"`
}

type source struct {
	cfg    sourceConfig
	schema *record.Schema
	loc    *time.Location // nil: the run's zone
	warned sync.Once
}

func newSource(p connector.Params) (connector.Source, error) {
	cfg := sourceConfig{
		URL: DefaultURL, Deliver: "all", Format: payload.FormatJSON, RawField: payload.DefaultRawField,
		Linger: connector.Duration(100 * time.Millisecond), MaxAckPending: 20000,
		AckWait: connector.Duration(30 * time.Second), MaxDeliver: 5, SuspectWait: connector.Duration(5 * time.Second),
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	dec, err := payload.NewDecoder(cfg.Format, cfg.Schema.Schema(), cfg.RawField, time.UTC)
	if err != nil {
		return nil, connector.Errorf(p.FieldPos("schema"), "nats: %v", err)
	}
	err = broker.Check(p, []broker.Rule{
		{Field: "stream", Bad: cfg.Stream == "", Msg: "nats needs the stream to read"},
		{Field: "batch_size", Bad: cfg.BatchSize < 0, Msg: "batch_size must be positive"},
		{Field: "linger", Bad: cfg.Linger <= 0, Msg: "linger must be positive"},
		{Field: "max_ack_pending", Bad: cfg.MaxAckPending < 1, Msg: "max_ack_pending must be positive"},
		{Field: "ack_wait", Bad: time.Duration(cfg.AckWait) < time.Second, Msg: "ack_wait must be at least 1s"},
		{Field: "max_deliver", Bad: cfg.MaxDeliver < 1, Msg: "max_deliver must be at least 1"},
		{Field: "suspect_wait", Bad: cfg.SuspectWait < 0, Msg: "suspect_wait cannot be negative"},
	})
	if err != nil {
		return nil, err
	}
	s := &source{cfg: cfg, schema: dec.Schema()}
	if s.loc, err = connector.LoadZone(p, cfg.Timezone); err != nil {
		return nil, err
	}
	return s, nil
}

// Schema implements connector.Schemer.
func (s *source) Schema() *record.Schema { return s.schema }

func (s *source) durable(env *connector.Env) string {
	if s.cfg.Durable != "" {
		return s.cfg.Durable
	}
	return durableName(env.Pipeline)
}

// Plan implements connector.Source: one task, the durable consumer.
func (s *source) Plan(ctx context.Context, env *connector.Env) ([]connector.Task, error) {
	nc, err := connect(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if _, err := js.Stream(ctx, s.cfg.Stream); err != nil {
		return nil, fmt.Errorf("nats: %w", streamError(s.cfg.Stream, err))
	}
	return []connector.Task{{Key: s.cfg.Stream + "/" + s.durable(env)}}, nil
}

// Check implements connector.Checker.
func (s *source) Check(ctx context.Context, env *connector.Env) error {
	_, err := s.Plan(ctx, env)
	return err
}

// Open implements connector.Source.
func (s *source) Open(ctx context.Context, env *connector.Env, t connector.Task, pos record.Position) (connector.Reader, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc, err := connect(ctx, s.cfg.URL, "backbone "+env.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	rd, err := s.open(ctx, env, log, nc, pos)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	return rd, nil
}

func (s *source) open(ctx context.Context, env *connector.Env, log *slog.Logger, nc *nats.Conn, pos record.Position) (*reader, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return nil, streamError(s.cfg.Stream, err)
	}
	info := stream.CachedInfo()
	s.warned.Do(func() {
		for _, w := range preflight(info) {
			log.Warn("nats: "+w, "stream", s.cfg.Stream)
		}
	})
	var start position
	if pos != nil {
		if start, err = decodePosition(pos); err != nil {
			return nil, err
		}
		if start.Stream != info.Config.Name || !start.Created.Equal(info.Created) || start.Subject != s.cfg.Subject {
			log.Warn("nats: the checkpoint is of another stream or subject (the stream was created again, or subject changed): messages are read as the consumer delivers them",
				"stream", s.cfg.Stream, "checkpoint_created", start.Created, "stream_created", info.Created)
			start = position{}
		}
	}
	batch := broker.BatchSize(s.cfg.BatchSize, env)
	cfg := jetstream.ConsumerConfig{
		Durable:       s.durable(env),
		Description:   "backbone pipeline " + env.Pipeline,
		FilterSubject: s.cfg.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Duration(s.cfg.AckWait),
		MaxAckPending: s.cfg.MaxAckPending,
		// The source dead-letters a message past max_deliver itself: a
		// server-side limit would drop the message silently if the run that
		// dead-letters it died before its commit.
		MaxDeliver: -1,
	}
	if s.cfg.Deliver == "new" {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("consumer %q of stream %q: %w", cfg.Durable, s.cfg.Stream, err)
	}
	// What the checkpoint holds and the server has not had acknowledged:
	// skipped when delivered again.
	skip := above(normalize(start.Done), cons.CachedInfo().AckFloor.Stream)
	dec, err := payload.NewDecoder(s.cfg.Format, s.schema, s.cfg.RawField, connector.ZoneOf(s.loc, env))
	if err != nil {
		return nil, err
	}
	r := &reader{
		nc: nc, dec: dec, log: log,
		stream: info.Config.Name, created: info.Created, subject: s.cfg.Subject, skip: skip,
		batch: batch, ackWait: time.Duration(s.cfg.AckWait),
		maxDeliver: s.cfg.MaxDeliver, suspectWait: time.Duration(s.cfg.SuspectWait), deferDecode: env.DeferDecode,
		high:   start.Seq,
		msgs:   make(chan jetstream.Msg, batch),
		errs:   make(chan error, 8),
		stop:   make(chan struct{}),
		settle: broker.NewSettle(),
	}
	r.batches = &broker.Batcher[jetstream.Msg]{Size: batch, Linger: time.Duration(s.cfg.Linger), Msgs: r.msgs, Errs: r.errs, Failed: r.consumeError}
	r.wg.Go(func() { r.fetch(cons) })
	r.wg.Go(r.keepAlive)
	return r, nil
}

// reader reads one durable consumer. Next runs on the engine's reader
// goroutine, Ack on its sink goroutine, fetch and keepAlive on their own;
// mu guards what Next, Ack and keepAlive share.
type reader struct {
	nc          *nats.Conn
	dec         *payload.Decoder
	log         *slog.Logger
	stream      string
	created     time.Time
	subject     string
	skip        []span // from the checkpoint: committed, maybe not acknowledged
	batch       int
	ackWait     time.Duration
	maxDeliver  int
	suspectWait time.Duration
	deferDecode bool

	msgs chan jetstream.Msg // received, for Next
	errs chan error         // the consumer's failures, for Next
	stop chan struct{}      // closed by Close: ends fetch and keepAlive
	wg   sync.WaitGroup
	// settle wakes fetch when a batch was returned or acknowledged.
	settle *broker.Settle

	// Next's own state.
	batches *broker.Batcher[jetstream.Msg]
	high    uint64 // highest stream sequence returned or checkpointed
	n       uint64 // batches returned

	mu       sync.Mutex
	pending  []pendingBatch // returned and not yet acknowledged, in order
	returned int64          // messages cut into batches
	closed   bool
	fetched  atomic.Int64 // messages fetch handed to Next

	drained []jetstream.Msg // received by fetch after Close began, NAKed last (fetch's own until it ends)
}

// pendingBatch is a batch returned by Next and not yet acknowledged: its
// number, the sequences it returned and the reply subjects of its messages
// (returned, dead-lettered or skipped).
//
// The sequences are a range and a list. Messages delivered for the first
// time come in stream order, and every message of the consumer between two
// of them was delivered for the first time between them: those of the
// batches not yet acknowledged make one range, lo to hi. Messages
// delivered again (after a NAK, a crash, a lapsed ack_wait) come in any
// order and are listed one by one.
type pendingBatch struct {
	n       uint64
	lo, hi  uint64 // first deliveries returned; lo 0: none
	again   []uint64
	replies []string
	touched time.Time // last ack or progress report
}

// inFlight reports whether seq was returned in a batch not yet
// acknowledged. Under mu.
func (r *reader) inFlight(seq uint64) bool {
	for _, pb := range r.pending {
		if pb.lo != 0 && pb.lo <= seq && seq <= pb.hi || slices.Contains(pb.again, seq) {
			return true
		}
	}
	return false
}

// done is the position's Done: the checkpoint's own spans and those of
// every batch not yet acknowledged. Under mu.
func (r *reader) done() []span {
	spans := slices.Clone(r.skip)
	lo := uint64(0)
	for _, pb := range r.pending {
		if pb.lo != 0 && lo == 0 {
			lo = pb.lo
		}
		for _, s := range pb.again {
			spans = append(spans, span{s, s})
		}
	}
	if lo != 0 {
		spans = append(spans, span{lo, r.high})
	}
	return normalize(spans)
}

// fetchWait bounds one pull request. A request lives on in the server
// until it is filled or expires, even once nobody listens: Close waits for
// the last one to end before it hands messages back, or the server would
// deliver them again to the dead request.
const fetchWait = 500 * time.Millisecond

// fetch pulls messages for Next, one request of at most a batch at a time.
// It blocks while Next has not taken what it has, and then asks for no
// more: memory stays bounded and the server keeps the rest. After a
// failure, messages delivered again are fetched one at a time (see
// broker.Settle).
func (r *reader) fetch(cons jetstream.Consumer) {
	suspect := true // until a first delivery is seen
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		n := r.batch
		if suspect {
			n = 1
			if !r.settled() {
				return
			}
		}
		mb, err := cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if !r.fetchFailed(err) {
				return
			}
			continue
		}
		for m := range mb.Messages() {
			if md, err := m.Metadata(); err == nil {
				switch {
				case md.NumDelivered == 1:
					suspect = false
				case !contains(r.skip, md.Sequence.Stream):
					suspect = true
				}
			}
			r.fetched.Add(1)
			select {
			case r.msgs <- m:
			case <-r.stop:
				r.drained = append(r.drained, m)
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			if !r.fetchFailed(err) {
				return
			}
		}
	}
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

// fetchFailed reports a failure to Next and waits a little before the next
// request; it tells whether fetch goes on.
func (r *reader) fetchFailed(err error) bool {
	select {
	case r.errs <- err:
	default:
	}
	t := time.NewTimer(fetchWait)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}

// Schema implements connector.Reader.
func (r *reader) Schema() *record.Schema { return r.dec.Schema() }

// Next implements connector.Reader: it waits for a first message, then
// collects up to batch messages for at most linger.
func (r *reader) Next(ctx context.Context) (*record.Batch, error) {
	for {
		msgs, err := r.batches.Next(ctx)
		if err != nil {
			return nil, err
		}
		if b := r.cut(msgs); b != nil {
			return b, nil
		}
		// None was a JetStream message: wait for more.
	}
}

// consumeError tells a failure that ends the reader (nil: the consumer
// recovers by itself).
func (r *reader) consumeError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, jetstream.ErrConsumerDoesNotExist):
		return connector.Transient(fmt.Errorf("nats: stream %q: %w", r.stream, err))
	}
	r.log.Debug("nats: consumer", "stream", r.stream, "error", err)
	return nil
}

// cut turns msgs into a batch, or returns nil when there is nothing to
// return nor to acknowledge.
func (r *reader) cut(msgs []jetstream.Msg) *record.Batch {
	b := &record.Batch{Schema: r.dec.Schema(), Origin: r.stream}
	var pb pendingBatch
	var bodies []payload.Body
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil { // not a JetStream message: nothing to read or acknowledge
			continue
		}
		seq := md.Sequence.Stream
		pb.replies = append(pb.replies, m.Reply())
		if contains(r.skip, seq) || r.inFlight(seq) {
			// Delivered again: in the sink since the checkpoint, or in a
			// batch still in flight. Acknowledged with this batch, which
			// commits after the one that holds it.
			continue
		}
		if md.NumDelivered == 1 {
			if pb.lo == 0 {
				pb.lo = seq
			}
			pb.hi = seq
			r.high = max(r.high, seq)
		} else {
			pb.again = append(pb.again, seq)
		}
		b.Read++
		if rej, ok := broker.Poison(int(md.NumDelivered), r.maxDeliver, int64(seq), m.Data()); ok {
			b.Rejects = append(b.Rejects, rej)
			continue
		}
		bodies = append(bodies, payload.Body{Line: int64(seq), Data: m.Data()})
	}
	r.returned += int64(len(msgs))
	r.settle.Signal()
	if len(pb.replies) == 0 {
		return nil
	}
	r.n++
	pb.n, pb.touched = r.n, time.Now()
	r.pending = append(r.pending, pb)
	b.Pos = position{Stream: r.stream, Created: r.created, Subject: r.subject, Seq: r.high, N: r.n, Done: r.done()}.encode()
	r.dec.Fill(b, bodies, r.deferDecode)
	return b
}

var (
	ackBody      = []byte("+ACK")
	nakBody      = []byte("-NAK")
	progressBody = []byte("+WPI")
)

// Ack implements connector.Acker.
func (r *reader) Ack(ctx context.Context, pos record.Position) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	r.mu.Lock()
	var done []pendingBatch
	i := 0
	for i < len(r.pending) && r.pending[i].n <= p.N {
		i++
	}
	done, r.pending = r.pending[:i:i], r.pending[i:]
	r.mu.Unlock()
	defer r.settle.Signal()
	for _, pb := range done {
		for _, reply := range pb.replies {
			if err := r.nc.Publish(reply, ackBody); err != nil {
				return fmt.Errorf("nats: acknowledge: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("nats: acknowledge: %w", err)
	}
	return nil
}

// keepAlive tells the server that messages in flight are still being
// worked on, so that a slow sink never gets them delivered again.
func (r *reader) keepAlive() {
	every := r.ackWait / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			for i := range r.pending {
				pb := &r.pending[i]
				if now.Sub(pb.touched) < every {
					continue
				}
				for _, reply := range pb.replies {
					_ = r.nc.Publish(reply, progressBody)
				}
				pb.touched = now
			}
			r.mu.Unlock()
		}
	}
}

// Close implements connector.Reader: messages received and not
// acknowledged go back to the server at once, for the next run.
func (r *reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	// First the pull requests end (fetch returns once its last request is
	// filled or expired), then the NAKs: a message NAKed while a request of
	// this reader lives in the server would be delivered to it again, and
	// lost until ack_wait.
	close(r.stop)
	r.wg.Wait()
	// Then the NAKs, in the order of delivery as far as possible: the
	// server delivers NAKed messages again in the order it got the NAKs.
	nak := func(reply string) { _ = r.nc.Publish(reply, nakBody) }
	r.mu.Lock()
	for _, pb := range r.pending {
		for _, reply := range pb.replies {
			nak(reply)
		}
	}
	r.pending = nil
	r.mu.Unlock()
	for _, m := range r.batches.Held() {
		nak(m.Reply())
	}
	for {
		select {
		case m := <-r.msgs:
			nak(m.Reply())
			continue
		default:
		}
		break
	}
	for _, m := range r.drained {
		nak(m.Reply())
	}
	r.drained = nil
	_ = r.nc.FlushTimeout(5 * time.Second)
	r.nc.Close()
	return nil
}
