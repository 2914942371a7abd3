package httpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/jsonrec"
	"github.com/backbone-etl/backbone/internal/connector/lookupcache"
	"github.com/backbone-etl/backbone/internal/record"
)

type lookupConfig struct {
	URL         string              `yaml:"url"`
	Key         connector.List      `yaml:"key"`
	Record      string              `yaml:"record"`
	Schema      connector.SchemaDef `yaml:"schema"`
	Paths       connector.Map       `yaml:"paths"`
	Batch       batchConfig         `yaml:"batch"`
	Headers     connector.Map       `yaml:"headers"`
	Auth        authConfig          `yaml:"auth"`
	RateLimit   Rate                `yaml:"rate_limit"`
	MaxResponse connector.Size      `yaml:"max_response"`

	lookupcache.Config `yaml:",inline"`
}

type batchConfig struct {
	URL     string `yaml:"url"`
	Size    int    `yaml:"size"`
	Body    string `yaml:"body"`
	Records string `yaml:"records"`
}

var lookupSpec = connector.Spec{
	Name:    "http",
	Summary: "Reference data from an HTTP service, asked per key or per batch of keys, with a cache.",
	Doc: `Answers lookups by asking a JSON service: one GET per key at url, a template whose {{field}}
placeholders are the key fields (values are escaped for the path or the query), or, with batch,
one POST per batch.size keys to batch.url. The body of a batch request is the JSON list of the
keys (values for one key field, objects for several), or an object holding that list at
batch.body; its response holds, at batch.records, either a list of records — matched to the
keys by their key fields — or an object whose members are the key values.

record is the path of the record inside a per-key response (empty: the response is the
record). A 404, a 410, a null record or a key the batch response leaves out is a miss, which
the enrich step's missing policy handles. A 400 or 422 (the service refuses the key) and a
record whose value does not convert to its field's type reject the record asking; another 4xx
(401, 403…) fails the run. Records are read like the http source's, with schema and paths;
a key field of the schema missing from the record takes the key's value.

Answers are kept in an LRU cache (cache.size keys, cache.ttl for records, cache.negative_ttl
for misses); concurrent lookups of one key share one request. Each request is bounded by
timeout; one that fails because of the service (refused, timed out, 408, 429, 5xx) is retried
with exponential backoff and jitter, honouring Retry-After. After breaker.failures failures in
a row the circuit opens: no request is sent until breaker.cooldown has passed, then one probes
the service and closes the circuit when it answers. Requests in flight adapt between 1 and
concurrency: fewer while the service fails or slows down. A service that stays unavailable
makes lookups wait for it (on_unavailable: wait, at most max_wait, then the run fails) or
rejects the records asking (on_unavailable: reject) — a record is never enriched with nulls
because of an outage. The run's summary shows the cache's hits and misses.`,
	Fields: append([]connector.FieldSpec{
		{Name: "url", Type: connector.TString, Doc: "Per-key requests: the URL template, like https://crm/customers/{{customer_id}}. One of url and batch."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "The key field(s) that lookups give, in order."},
		{Name: "record", Type: connector.TString, Doc: "Per-key requests: path of the record in the response, like data; empty: the response is the record."},
		{Name: "schema", Type: connector.TSchema, Required: true, Doc: "Fields and types of the records."},
		{Name: "paths", Type: connector.TMap, Doc: "Path of a field inside a record, like address.city, when it is not the member of the field's name."},
		{Name: "batch", Type: connector.TObject, Doc: "Batch requests: many keys per POST.", Fields: []connector.FieldSpec{
			{Name: "url", Type: connector.TString, Doc: "The endpoint taking a list of keys."},
			{Name: "size", Type: connector.TInt, Default: "100", Doc: "Keys per request at most."},
			{Name: "body", Type: connector.TString, Doc: "The member of the request's JSON object holding the list of keys, like ids; empty: the body is the list."},
			{Name: "records", Type: connector.TString, Doc: "Path of the records (a list, or an object by key value) in the response; empty: the response itself."},
		}},
		{Name: "headers", Type: connector.TMap, Doc: "Headers sent with every request. Put secrets in ${ENV} variables whose names mark them secret (…_TOKEN, …_API_KEY)."},
		authField,
		{Name: "rate_limit", Type: connector.TString, Doc: "Requests per second at most (like 100 or 0.5); none by default."},
		{Name: "max_response", Type: connector.TSize, Default: "64MiB", Doc: "A larger response body is an error."},
	}, lookupcache.Fields("HTTP request")...),
	Example: `lookups:
  customers:
    type: http
    url: "https://crm.example.com/v2/customers/{{customer_id}}"
    key: customer_id
    record: data
    auth: { type: bearer, token_env: CRM_TOKEN }
    schema: { customer_id: int, region: string, tier: string }
    cache: { size: 200000, ttl: 1h, negative_ttl: 5m }
    timeout: 2s
    on_unavailable: reject`,
}

func newLookup(p connector.Params) (connector.Lookup, error) {
	cfg := lookupConfig{
		Batch:       batchConfig{Size: 100},
		MaxResponse: 64 << 20,
		Config:      lookupcache.Defaults(),
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	hc := HTTPConfig{Headers: cfg.Headers, Auth: cfg.Auth, Timeout: cfg.Timeout, RateLimit: cfg.RateLimit, MaxResponse: cfg.MaxResponse}
	if err := hc.check(p); err != nil {
		return nil, err
	}
	if err := cfg.Config.Check(p); err != nil {
		return nil, err
	}
	l := &lookup{cfg: cfg, http: hc, schema: cfg.Schema.Schema()}
	if l.schema == nil {
		return nil, connector.Errorf(p.FieldPos("schema"), "schema is required: the fields and types of the records")
	}
	if len(cfg.Key) == 0 {
		return nil, connector.Errorf(p.FieldPos("key"), "key is required: the field(s) that lookups give")
	}
	for i, k := range cfg.Key {
		if slices.Contains(cfg.Key[:i], k) {
			return nil, connector.Errorf(p.FieldPos("key"), "key: %q appears twice", k)
		}
	}
	var err error
	if l.fields, err = jsonrec.NewReader(l.schema, cfg.Paths); err != nil {
		return nil, err
	}
	if l.record, err = jsonrec.ParsePath(cfg.Record); err != nil {
		return nil, connector.Errorf(p.FieldPos("record"), "record: %v", err)
	}
	switch {
	case cfg.URL == "" && cfg.Batch.URL == "":
		return nil, connector.Errorf(p.Pos(), "give url (a request per key) or batch.url (requests for many keys)")
	case cfg.URL != "" && cfg.Batch.URL != "":
		return nil, connector.Errorf(p.FieldPos("batch"), "give url or batch, not both")
	case cfg.URL != "":
		err = l.checkTemplate(p)
	default:
		err = l.checkBatch(p)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lookup) checkTemplate(p connector.Params) error {
	tpl, err := parseTemplate(l.cfg.URL)
	if err != nil {
		return connector.Errorf(p.FieldPos("url"), "url: %v", err)
	}
	if _, err := checkURL(p, "url", tpl.literal()); err != nil {
		return err
	}
	for _, n := range tpl.names {
		i := slices.Index([]string(l.cfg.Key), n)
		if i < 0 {
			return connector.Errorf(p.FieldPos("url"), "url: {{%s}} is not a key field (key: %s)", n, strings.Join(l.cfg.Key, ", "))
		}
		l.slots = append(l.slots, i)
	}
	for i, k := range l.cfg.Key {
		if !slices.Contains(l.slots, i) {
			return connector.Errorf(p.FieldPos("url"), "url: key field %s has no {{%s}}: two keys would ask the same URL", k, k)
		}
	}
	l.tpl = tpl
	return nil
}

func (l *lookup) checkBatch(p connector.Params) error {
	b := l.cfg.Batch
	pos := p.FieldPos("batch")
	if _, err := checkURL(p, "batch", b.URL); err != nil {
		return err
	}
	if b.Size < 1 || b.Size > 10000 {
		return connector.Errorf(pos, "batch.size must be between 1 and 10000, got %d", b.Size)
	}
	if l.cfg.Record != "" {
		return connector.Errorf(p.FieldPos("record"), "record is for per-key requests; a batch response's records are at batch.records")
	}
	var err error
	if l.batchRecords, err = jsonrec.ParsePath(b.Records); err != nil {
		return connector.Errorf(pos, "batch.records: %v", err)
	}
	for _, k := range l.cfg.Key {
		i, ok := l.schema.Index(k)
		if !ok {
			return connector.Errorf(p.FieldPos("key"), "key field %q must be in the schema: the records of a batch response are matched to the keys by it", k)
		}
		l.keyIdx = append(l.keyIdx, i)
	}
	return nil
}

type lookup struct {
	cfg    lookupConfig
	http   HTTPConfig
	schema *record.Schema
	fields *jsonrec.Reader
	record jsonrec.Path

	tpl   *template // per key
	slots []int     // key index of each placeholder

	batchRecords jsonrec.Path // batch
	keyIdx       []int        // schema index of each key field
}

// Schema implements connector.Schemer.
func (l *lookup) Schema() *record.Schema { return l.schema }

func (l *lookup) name() string {
	raw := l.cfg.Batch.URL
	if l.tpl != nil {
		raw = l.tpl.literal()
	}
	if u, err := url.Parse(raw); err == nil {
		return "http lookup " + u.Host
	}
	return "http lookup"
}

// Open implements connector.Lookup. It makes no request.
func (l *lookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	c, err := newClient(&l.http, l.cfg.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name(), err)
	}
	c.timeout = 0 // each call is bounded by lookupcache's timeout
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	fr := l.fields.In(loc)
	f := &fetcher{l: l, c: c, fields: fr}
	size := 1
	if l.tpl == nil {
		size = l.cfg.Batch.Size
	}
	t := &table{c: c, schema: l.schema}
	t.Table = lookupcache.New(f, lookupcache.Options{Name: l.name(), Keys: l.cfg.Key, Config: l.cfg.Config, BatchSize: size, Logger: env.Logger})
	return t, nil
}

// table is an opened http lookup.
type table struct {
	*lookupcache.Table
	c      *client
	schema *record.Schema
}

// Schema implements connector.Table.
func (t *table) Schema() *record.Schema { return t.schema }

// Close implements connector.Table.
func (t *table) Close() error {
	t.c.close()
	return nil
}

// fetcher asks the service; lookupcache retries and caches.
type fetcher struct {
	l      *lookup
	c      *client
	fields *jsonrec.Reader
}

// Fetch implements lookupcache.Fetcher.
func (f *fetcher) Fetch(ctx context.Context, keys []lookupcache.Key, out []lookupcache.Result) error {
	if f.l.tpl != nil {
		for i, k := range keys {
			if err := f.one(ctx, k, &out[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return f.batch(ctx, keys, out)
}

// one asks for one key.
func (f *fetcher) one(ctx context.Context, k lookupcache.Key, out *lookupcache.Result) error {
	vals := make([]string, len(f.l.slots))
	for i, slot := range f.l.slots {
		vals[i] = keyText(k.Vals[slot])
	}
	u := f.l.tpl.render(vals, true)
	resp, _, err := f.c.send(ctx, http.MethodGet, u, nil, nil)
	if err != nil {
		var se *StatusError
		switch {
		case !errors.As(err, &se) || errors.Is(err, connector.ErrTransient):
			return err
		case se.Status == http.StatusNotFound || se.Status == http.StatusGone:
			return nil // a miss
		case se.Status == http.StatusBadRequest || se.Status == http.StatusUnprocessableEntity:
			out.Err = connector.Reject(fmt.Errorf("%s: the service refuses the key: %w", f.l.name(), se))
			return nil
		}
		return err
	}
	doc, err := jsonrec.Decode(resp.body)
	if err != nil {
		out.Err = connector.Reject(fmt.Errorf("%s: GET %s: %w", f.l.name(), redactURL(u), err))
		return nil
	}
	rec, _ := f.l.record.Get(doc)
	if rec == nil {
		return nil // a miss
	}
	row, err := f.fields.Row(rec)
	if err != nil {
		out.Err = connector.Reject(fmt.Errorf("%s: GET %s: the record does not convert: %w", f.l.name(), redactURL(u), err))
		return nil
	}
	f.fillKeys(row, k)
	*out = lookupcache.Result{Row: row, OK: true}
	return nil
}

// fillKeys gives key fields of the schema that the record lacks the key's
// values.
func (f *fetcher) fillKeys(row record.Row, k lookupcache.Key) {
	for i, name := range f.l.cfg.Key {
		if idx, ok := f.l.schema.Index(name); ok && row[idx] == nil {
			if v, err := record.Convert(k.Vals[i], f.l.schema.Field(idx).Type, f.fields.Location()); err == nil {
				row[idx] = v
			}
		}
	}
}

// batch asks for many keys in one POST.
func (f *fetcher) batch(ctx context.Context, keys []lookupcache.Key, out []lookupcache.Result) error {
	body := f.requestBody(keys)
	u := f.l.cfg.Batch.URL
	resp, _, err := f.c.send(ctx, http.MethodPost, u, body, nil)
	if err != nil {
		return err // a batch whose keys the service refuses is not one key's fault: the run stops
	}
	doc, err := jsonrec.Decode(resp.body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redactURL(u), err)
	}
	recs, found := f.l.batchRecords.Get(doc)
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		index[k.Str] = i
	}
	var buf []byte
	switch x := recs.(type) {
	case []any:
		kv := make([]any, len(f.l.keyIdx))
		for _, rec := range x {
			row, rerr := f.fields.Row(rec)
			if rerr != nil {
				// The key may still be read, to reject its record alone.
				row, _ = f.keyOnly(rec)
			}
			if row == nil {
				continue
			}
			for j, idx := range f.l.keyIdx {
				kv[j] = row[idx]
			}
			buf = connector.AppendKey(buf[:0], kv)
			i, ok := index[string(buf)]
			if !ok {
				continue // a record not asked for
			}
			if rerr != nil {
				out[i] = lookupcache.Result{Err: connector.Reject(fmt.Errorf("%s: the record does not convert: %w", f.l.name(), rerr))}
				continue
			}
			out[i] = lookupcache.Result{Row: row, OK: true}
		}
	case map[string]any:
		for i, k := range keys {
			rec := x[k.Str]
			if rec == nil {
				continue
			}
			row, rerr := f.fields.Row(rec)
			if rerr != nil {
				out[i] = lookupcache.Result{Err: connector.Reject(fmt.Errorf("%s: the record of %s does not convert: %w", f.l.name(), k.Str, rerr))}
				continue
			}
			f.fillKeys(row, k)
			out[i] = lookupcache.Result{Row: row, OK: true}
		}
	case nil:
		if !found {
			return fmt.Errorf("POST %s: the response has nothing at %s (%s)", redactURL(u), f.l.batchRecords, jsonrec.Members(doc))
		}
	default:
		return fmt.Errorf("POST %s: %s holds a JSON %s, not a list or an object of records", redactURL(u), f.l.batchRecords, jsonrec.Kind(recs))
	}
	return nil
}

// keyOnly reads only the key fields of a record that does not convert.
func (f *fetcher) keyOnly(rec any) (record.Row, error) {
	obj, ok := rec.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	row := make(record.Row, f.l.schema.Len())
	for _, idx := range f.l.keyIdx {
		v, _ := f.fields.Path(idx).Get(obj)
		if v == nil {
			return nil, errors.New("no key")
		}
		x, err := jsonrec.Convert(v, f.l.schema.Field(idx).Type, f.fields.Location())
		if err != nil {
			return nil, err
		}
		row[idx] = x
	}
	return row, nil
}

// requestBody renders the keys as JSON: values for one key field, objects
// for several, inside an object at batch.body when set.
func (f *fetcher) requestBody(keys []lookupcache.Key) []byte {
	var b []byte
	if f.l.cfg.Batch.Body != "" {
		b = append(b, '{')
		b = record.AppendJSON(b, f.l.cfg.Batch.Body)
		b = append(b, ':')
	}
	b = append(b, '[')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if len(k.Vals) == 1 {
			b = record.AppendJSON(b, k.Vals[0])
			continue
		}
		b = append(b, '{')
		for j, v := range k.Vals {
			if j > 0 {
				b = append(b, ',')
			}
			b = record.AppendJSON(b, f.l.cfg.Key[j])
			b = append(b, ':')
			b = record.AppendJSON(b, v)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if f.l.cfg.Batch.Body != "" {
		b = append(b, '}')
	}
	return b
}
