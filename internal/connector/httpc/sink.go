package httpc

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

type sinkConfig struct {
	URL               string             `yaml:"url"`
	Method            string             `yaml:"method"`
	Batch             bool               `yaml:"batch"`
	BatchSize         int                `yaml:"batch_size"`
	Body              string             `yaml:"body"`
	IdempotencyHeader string             `yaml:"idempotency_header"`
	IdempotencyKey    string             `yaml:"idempotency_key"`
	Retries           int                `yaml:"retries"`
	Backoff           connector.Duration `yaml:"backoff"`
	Concurrency       int                `yaml:"concurrency"`
	HTTPConfig        `yaml:",inline"`
}

var sinkSpec = connector.Spec{
	Name:    "http",
	Summary: "Send records to an HTTP service as JSON: batches as arrays, or one record per request.",
	Doc: `Sends each record as a JSON object (fields in schema order, decimals exact, timestamps in RFC
3339): batch_size records per request as a JSON array (or an object holding the array at
body), or with batch: false one record per request, concurrency requests at once.

Every request carries an idempotency key in idempotency_header: a hash of the request's
records and their position in the source, or for single records the idempotency_key template
over the record's fields ({{order_id}}). A request that fails because of the service (a
refused or broken connection, a timeout, 408, 429 or 5xx) is retried retries times with
exponential backoff and jitter, honouring Retry-After — only when a retry cannot store the
records twice: it carries an idempotency key, or never reached the server. Past the retries the
engine writes the batch again, with the same keys.

A 4xx answer (but 401, 403, 404, 405, 406, 407 and 415, which are about the configuration and
fail the run) refuses the records of the request: a batch is split in halves until the
refused records stand alone, and they go to the dead letters with the status and the start of
the response's body; the others are sent. The service is expected to store all of a request or
none of it.

The sink is at least once: records are delivered when Write returns, before the engine's
commit, so a run that fails after a write sends them again in the next run. The idempotency
key lets the service store them once.`,
	Fields: append([]connector.FieldSpec{
		{Name: "url", Type: connector.TString, Required: true, Doc: "The endpoint records are sent to."},
		{Name: "method", Type: connector.TEnum, Enum: []string{http.MethodPost, http.MethodPut, http.MethodPatch}, Default: http.MethodPost, Doc: "The request method."},
		{Name: "batch", Type: connector.TBool, Default: "true", Doc: "true: a JSON array of records per request; false: one record per request."},
		{Name: "batch_size", Type: connector.TInt, Default: "500", Doc: "Records per request at most."},
		{Name: "body", Type: connector.TString, Doc: "The member of a JSON object holding the array of records, like records; empty: the body is the array."},
		{Name: "idempotency_header", Type: connector.TString, Default: "Idempotency-Key", Doc: "The header of the idempotency key; empty: none is sent, and a request that may have reached the server is not retried."},
		{Name: "idempotency_key", Type: connector.TString, Doc: "batch: false: a template over the record's fields, like order-{{order_id}}; default: a hash of the record and its position."},
		{Name: "retries", Type: connector.TInt, Default: "5", Doc: "Retries of a request that failed because of the service."},
		{Name: "backoff", Type: connector.TDuration, Default: "200ms", Doc: "Wait before the first retry, doubled for each next one (at most 10s)."},
		{Name: "concurrency", Type: connector.TInt, Default: "4", Doc: "batch: false: requests in flight at once (records may then arrive out of order)."},
	}, httpFields("30s")...),
	Example: `sink:
  type: http
  url: https://events.example.com/v1/orders
  auth: { type: bearer, token_env: EVENTS_TOKEN }
  batch_size: 200
  body: records
  retries: 5`,
}

func newSink(p connector.Params) (connector.Sink, error) {
	cfg := sinkConfig{
		Method:            http.MethodPost,
		Batch:             true,
		BatchSize:         500,
		IdempotencyHeader: "Idempotency-Key",
		Retries:           5,
		Backoff:           connector.Duration(200 * time.Millisecond),
		Concurrency:       4,
		HTTPConfig:        HTTPConfig{Timeout: connector.Duration(30 * time.Second), MaxResponse: 64 << 20},
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.HTTPConfig.check(p); err != nil {
		return nil, err
	}
	if _, err := checkURL(p, "url", cfg.URL); err != nil {
		return nil, err
	}
	switch {
	case cfg.Method != http.MethodPost && cfg.Method != http.MethodPut && cfg.Method != http.MethodPatch:
		return nil, connector.Errorf(p.FieldPos("method"), "method %q: want POST, PUT or PATCH", cfg.Method)
	case cfg.BatchSize < 1 || cfg.BatchSize > 100000:
		return nil, connector.Errorf(p.FieldPos("batch_size"), "batch_size must be between 1 and 100000, got %d", cfg.BatchSize)
	case cfg.Retries < 0 || cfg.Retries > 20:
		return nil, connector.Errorf(p.FieldPos("retries"), "retries must be between 0 and 20, got %d", cfg.Retries)
	case cfg.Concurrency < 1 || cfg.Concurrency > 256:
		return nil, connector.Errorf(p.FieldPos("concurrency"), "concurrency must be between 1 and 256, got %d", cfg.Concurrency)
	case cfg.IdempotencyHeader != "" && !validHeaderName(cfg.IdempotencyHeader):
		return nil, connector.Errorf(p.FieldPos("idempotency_header"), "%q is not a header name", cfg.IdempotencyHeader)
	case cfg.Body != "" && !cfg.Batch:
		return nil, connector.Errorf(p.FieldPos("body"), "body is for batches; with batch: false the body is the record")
	}
	s := &sink{cfg: cfg}
	if cfg.IdempotencyKey != "" {
		if cfg.Batch {
			return nil, connector.Errorf(p.FieldPos("idempotency_key"), "idempotency_key is for batch: false; a batch's key is a hash of its records")
		}
		if cfg.IdempotencyHeader == "" {
			return nil, connector.Errorf(p.FieldPos("idempotency_key"), "idempotency_key needs an idempotency_header to send it in")
		}
		tpl, err := parseTemplate(cfg.IdempotencyKey)
		if err != nil {
			return nil, connector.Errorf(p.FieldPos("idempotency_key"), "idempotency_key: %v", err)
		}
		s.keyTpl = tpl
	}
	return s, nil
}

type sink struct {
	cfg    sinkConfig
	keyTpl *template
}

// Open implements connector.Sink. It makes no request.
func (s *sink) Open(_ context.Context, env *connector.Env, schema *record.Schema) (connector.Writer, error) {
	w := &writer{s: s, schema: schema, pipeline: env.Pipeline, sleep: sleepCtx}
	if s.keyTpl != nil {
		for _, n := range s.keyTpl.names {
			i, ok := schema.Index(n)
			if !ok {
				return nil, fmt.Errorf("http sink: idempotency_key: {{%s}} is not a field of the records (%s)", n, strings.Join(schema.Names(), ", "))
			}
			w.keyIdx = append(w.keyIdx, i)
		}
	}
	c, err := newClient(&s.cfg.HTTPConfig, s.cfg.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("http sink: %w", err)
	}
	c.trace = true
	w.c = c
	return w, nil
}

// writer sends the records of one run.
type writer struct {
	s        *sink
	c        *client
	schema   *record.Schema
	pipeline string
	keyIdx   []int // schema index of each placeholder of the key template
	sleep    func(context.Context, time.Duration) error
}

// Info implements connector.Writer: records are delivered at Write.
func (w *writer) Info() connector.WriterInfo { return connector.WriterInfo{} }

// Commit implements connector.Writer: nothing is held back.
func (w *writer) Commit(context.Context, []connector.Checkpoint) error { return nil }

// Close implements connector.Writer.
func (w *writer) Close() error {
	w.c.close()
	return nil
}

// Write implements connector.Writer.
func (w *writer) Write(ctx context.Context, b *record.Batch) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !b.Schema.Equal(w.schema) {
		return 0, fmt.Errorf("http sink: a batch of fields (%s), the writer was opened for (%s)", b.Schema, w.schema)
	}
	var bad []connector.RowError
	var err error
	if w.s.cfg.Batch {
		for lo := 0; lo < b.Len() && err == nil; lo += w.s.cfg.BatchSize {
			err = w.sendRange(ctx, b, lo, min(lo+w.s.cfg.BatchSize, b.Len()), &bad)
		}
	} else {
		err = w.sendSingles(ctx, b, &bad)
	}
	if err != nil {
		// Some requests may have been stored: the engine writes the batch
		// again, with the same idempotency keys.
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("http sink: %w", err)
	}
	if len(bad) > 0 {
		return b.Len() - len(bad), &connector.BatchError{Rows: bad}
	}
	return b.Len(), nil
}

// refused says whether a status refuses the records of a request rather
// than the configuration: a 4xx but those about authentication, the
// endpoint or the format, which would refuse every record alike.
func refused(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusNotAcceptable, http.StatusProxyAuthRequired, http.StatusUnsupportedMediaType:
		return false
	}
	return status >= 400 && status < 500 && !retryable(status)
}

// sendRange sends rows lo to hi of b in one request. When the service
// refuses them, the range is split in halves until the refused rows stand
// alone; they go to bad.
func (w *writer) sendRange(ctx context.Context, b *record.Batch, lo, hi int, bad *[]connector.RowError) error {
	body := w.arrayBody(b, lo, hi)
	err := w.send(ctx, body, w.hashKey(b, lo, body))
	var se *StatusError
	if err == nil || !errors.As(err, &se) || !refused(se.Status) {
		return err
	}
	if hi-lo == 1 {
		*bad = append(*bad, connector.RowError{Index: lo, Err: fmt.Errorf("http sink: %w", se)})
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := w.sendRange(ctx, b, lo, mid, bad); err != nil {
		return err
	}
	return w.sendRange(ctx, b, mid, hi, bad)
}

// sendSingles sends each row in its own request, concurrency at once.
func (w *writer) sendSingles(ctx context.Context, b *record.Batch, bad *[]connector.RowError) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range min(w.s.cfg.Concurrency, b.Len()) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= b.Len() || ctx.Err() != nil {
					return
				}
				body := record.AppendRowJSON(nil, b.Schema, b.Rows[i])
				key := w.hashKey(b, i, body)
				if w.s.keyTpl != nil {
					key = w.templateKey(b.Rows[i])
				}
				err := w.send(ctx, body, key)
				var se *StatusError
				switch {
				case err == nil:
				case errors.As(err, &se) && refused(se.Status):
					mu.Lock()
					*bad = append(*bad, connector.RowError{Index: i, Err: fmt.Errorf("http sink: %w", se)})
					mu.Unlock()
				default:
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// send makes one request with its idempotency key, retrying where safe.
func (w *writer) send(ctx context.Context, body []byte, key string) error {
	var hdr http.Header
	if w.s.cfg.IdempotencyHeader != "" && key != "" {
		hdr = http.Header{http.CanonicalHeaderKey(w.s.cfg.IdempotencyHeader): {key}}
	}
	_, err := w.c.doRetry(ctx, w.s.cfg.Method, w.s.cfg.URL, body, hdr, w.s.cfg.Retries, time.Duration(w.s.cfg.Backoff), hdr != nil, w.sleep)
	return err
}

// arrayBody renders rows lo to hi as a JSON array, inside an object at
// body when set.
func (w *writer) arrayBody(b *record.Batch, lo, hi int) []byte {
	buf := make([]byte, 0, 64*(hi-lo)+32)
	if w.s.cfg.Body != "" {
		buf = append(buf, '{')
		buf = record.AppendJSON(buf, w.s.cfg.Body)
		buf = append(buf, ':')
	}
	buf = append(buf, '[')
	for i := lo; i < hi; i++ {
		if i > lo {
			buf = append(buf, ',')
		}
		buf = record.AppendRowJSON(buf, b.Schema, b.Rows[i])
	}
	buf = append(buf, ']')
	if w.s.cfg.Body != "" {
		buf = append(buf, '}')
	}
	return buf
}

// hashKey is the idempotency key of a request: the same records of the
// same batch give the same key, so the service recognises a retry, and the
// engine's second write of a batch whose write failed.
func (w *writer) hashKey(b *record.Batch, first int, body []byte) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(w.pipeline), []byte(b.Origin), b.Pos, body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	binary.BigEndian.PutUint64(n[:], uint64(first))
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// templateKey renders idempotency_key for a row; characters a header
// cannot hold become '_'.
func (w *writer) templateKey(row record.Row) string {
	vals := make([]string, len(w.keyIdx))
	for i, idx := range w.keyIdx {
		vals[i] = record.FormatText(row[idx])
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, w.s.keyTpl.render(vals, false))
}
