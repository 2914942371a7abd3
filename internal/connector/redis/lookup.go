package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/jsonrec"
	"github.com/backbone-etl/backbone/internal/connector/lookupcache"
	"github.com/backbone-etl/backbone/internal/record"
)

// Commands and value encodings.
const (
	cmdGet     = "get"
	cmdHGetAll = "hgetall"

	valueJSON   = "json"
	valueScalar = "scalar"
)

type lookupConfig struct {
	Addr        string              `yaml:"addr"`
	URL         string              `yaml:"url"`
	DB          int                 `yaml:"db"`
	Username    string              `yaml:"username"`
	PasswordEnv string              `yaml:"password_env"`
	Key         connector.List      `yaml:"key"`
	KeyTemplate string              `yaml:"key_template"`
	Command     string              `yaml:"command"`
	Value       string              `yaml:"value"`
	Schema      connector.SchemaDef `yaml:"schema"`
	Paths       connector.Map       `yaml:"paths"`
	BatchSize   int                 `yaml:"batch_size"`

	lookupcache.Config `yaml:",inline"`
}

var lookupSpec = connector.Spec{
	Name:    "redis",
	Summary: "Reference data from Redis: a string (JSON or a single value) or a hash per key, with a cache.",
	Doc: `Answers lookups from Redis keys named by key_template, whose {{field}} placeholders are the key
fields (like fx:{{currency}}). command get reads strings — with value json, a JSON object
whose members give the schema's fields (paths maps a field to another place in it); with value
scalar, the one value of the schema's only field that is not a key — with MGET, batch_size keys
at a time. command hgetall reads hashes, whose fields give the schema's fields (paths maps a
field to another hash field), with one pipeline of HGETALL per batch_size keys. A key that does
not exist (or an empty hash) is a miss, which the enrich step's missing policy handles; a value
that does not convert to its field's type, or a key of another type (WRONGTYPE), rejects the
record asking. A key field of the schema that the value does not hold takes the key's value.

Answers are kept in an LRU cache (cache.size keys, cache.ttl for values, cache.negative_ttl for
misses); concurrent lookups of one key share one round trip. Each round trip is bounded by
timeout; one that fails because of the server (refused, timed out, LOADING, BUSY, TRYAGAIN…) is
retried with exponential backoff and jitter; after breaker.failures failures in a row the
circuit opens until breaker.cooldown has passed. When Redis stays unavailable, lookups wait
for it (on_unavailable: wait, at most max_wait, then the run fails) or reject the records
asking (on_unavailable: reject): a record is never enriched with nulls because of an outage.
A refused login fails the run. The password comes from an environment variable and is never
printed.`,
	Fields: append([]connector.FieldSpec{
		{Name: "addr", Type: connector.TString, Doc: "host:port of the server. One of addr and url."},
		{Name: "url", Type: connector.TString, Secret: true, Doc: "redis://user:password@host:port/db (rediss:// for TLS), instead of addr."},
		{Name: "db", Type: connector.TInt, Default: "0", Doc: "addr: the database number."},
		{Name: "username", Type: connector.TString, Doc: "addr: the ACL user name."},
		{Name: "password_env", Type: connector.TString, Doc: "addr: the environment variable holding the password."},
		{Name: "key", Type: connector.TList, Required: true, Doc: "The key field(s) that lookups give, in order."},
		{Name: "key_template", Type: connector.TString, Doc: "The Redis key of a lookup, like fx:{{currency}}; default: the value of the one key field."},
		{Name: "command", Type: connector.TEnum, Enum: []string{cmdGet, cmdHGetAll}, Default: cmdGet, Doc: "get reads strings, hgetall hashes."},
		{Name: "value", Type: connector.TEnum, Enum: []string{valueJSON, valueScalar}, Default: valueJSON, Doc: "get: a JSON object, or a single value for the one field that is not a key."},
		{Name: "schema", Type: connector.TSchema, Required: true, Doc: "Fields and types of the values."},
		{Name: "paths", Type: connector.TMap, Doc: "Where a field is read: a path in the JSON object, or the hash field, when it is not the field's name."},
		{Name: "batch_size", Type: connector.TInt, Default: "500", Doc: "Keys per MGET or pipeline at most."},
	}, lookupcache.Fields("Redis round trip")...),
	Example: `lookups:
  fx:
    type: redis
    addr: "${REDIS_ADDR}"
    password_env: REDIS_PASSWORD
    key: currency
    key_template: "fx:{{currency}}"
    value: scalar
    schema: { currency: string, rate: decimal }
    cache: { ttl: 1m }`,
}

func newLookup(p connector.Params) (connector.Lookup, error) {
	cfg := lookupConfig{Command: cmdGet, Value: valueJSON, BatchSize: 500, Config: lookupcache.Defaults()}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Config.Check(p); err != nil {
		return nil, err
	}
	l := &lookup{cfg: cfg, schema: cfg.Schema.Schema()}
	switch {
	case (cfg.Addr == "") == (cfg.URL == ""):
		return nil, connector.Errorf(p.Pos(), "give addr or url, one of them")
	case cfg.URL != "" && (cfg.Username != "" || cfg.PasswordEnv != "" || cfg.DB != 0):
		return nil, connector.Errorf(p.FieldPos("url"), "url holds the user, password and database: username, password_env and db go with addr")
	case l.schema == nil:
		return nil, connector.Errorf(p.FieldPos("schema"), "schema is required: the fields and types of the values")
	case len(cfg.Key) == 0:
		return nil, connector.Errorf(p.FieldPos("key"), "key is required: the field(s) that lookups give")
	case cfg.Command != cmdGet && cfg.Command != cmdHGetAll:
		return nil, connector.Errorf(p.FieldPos("command"), "command %q: want get or hgetall", cfg.Command)
	case cfg.Value != valueJSON && cfg.Value != valueScalar:
		return nil, connector.Errorf(p.FieldPos("value"), "value %q: want json or scalar", cfg.Value)
	case cfg.BatchSize < 1 || cfg.BatchSize > 10000:
		return nil, connector.Errorf(p.FieldPos("batch_size"), "batch_size must be between 1 and 10000, got %d", cfg.BatchSize)
	case cfg.DB < 0:
		return nil, connector.Errorf(p.FieldPos("db"), "db must not be negative")
	}
	if cfg.URL != "" {
		if _, err := goredis.ParseURL(cfg.URL); err != nil {
			return nil, connector.Errorf(p.FieldPos("url"), "url is not a redis:// or rediss:// URL")
		}
	}
	if err := l.checkKeys(p); err != nil {
		return nil, err
	}
	if err := l.checkValue(p); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lookup) checkKeys(p connector.Params) error {
	for i, k := range l.cfg.Key {
		if slices.Contains(l.cfg.Key[:i], k) {
			return connector.Errorf(p.FieldPos("key"), "key: %q appears twice", k)
		}
	}
	src := l.cfg.KeyTemplate
	if src == "" {
		if len(l.cfg.Key) > 1 {
			return connector.Errorf(p.FieldPos("key"), "a key of several fields needs a key_template naming each, like {{%s}}", strings.Join(l.cfg.Key, "}}:{{"))
		}
		src = "{{" + l.cfg.Key[0] + "}}"
	}
	tpl, err := parseTemplate(src)
	if err != nil {
		return connector.Errorf(p.FieldPos("key_template"), "key_template: %v", err)
	}
	for _, part := range tpl.names {
		i := slices.Index([]string(l.cfg.Key), part)
		if i < 0 {
			return connector.Errorf(p.FieldPos("key_template"), "key_template: {{%s}} is not a key field (key: %s)", part, strings.Join(l.cfg.Key, ", "))
		}
		l.slots = append(l.slots, i)
	}
	for i, k := range l.cfg.Key {
		if !slices.Contains(l.slots, i) {
			return connector.Errorf(p.FieldPos("key_template"), "key_template: key field %s has no {{%s}}: two lookups would read the same Redis key", k, k)
		}
	}
	l.tpl = tpl
	return nil
}

func (l *lookup) checkValue(p connector.Params) error {
	if l.cfg.Command == cmdHGetAll || l.cfg.Value == valueJSON {
		if l.cfg.Command == cmdHGetAll && l.cfg.Value == valueScalar {
			return connector.Errorf(p.FieldPos("value"), "value scalar is for command get; a hash has fields")
		}
		if l.cfg.Command == cmdHGetAll {
			for _, kv := range l.cfg.Paths {
				if _, ok := l.schema.Index(kv.Key); !ok {
					return connector.Errorf(kv.KeyPos, "paths: %q is not a field of the schema (%s)", kv.Key, strings.Join(l.schema.Names(), ", "))
				}
			}
			for _, f := range l.schema.Fields() {
				l.hashFields = append(l.hashFields, f.Name)
			}
			for _, kv := range l.cfg.Paths {
				i, _ := l.schema.Index(kv.Key)
				l.hashFields[i] = kv.Value
			}
			return nil
		}
		rd, err := jsonrec.NewReader(l.schema, l.cfg.Paths)
		if err != nil {
			return err
		}
		l.json = rd
		return nil
	}
	if len(l.cfg.Paths) > 0 {
		return connector.Errorf(p.FieldPos("paths"), "paths is for JSON values and hashes; a scalar value has one field")
	}
	l.scalar = -1
	for i, f := range l.schema.Fields() {
		if slices.Contains(l.cfg.Key, f.Name) {
			continue
		}
		if l.scalar >= 0 {
			return connector.Errorf(p.FieldPos("schema"), "value scalar fills one field besides the keys; the schema has %s and %s", l.schema.Field(l.scalar).Name, f.Name)
		}
		l.scalar = i
	}
	if l.scalar < 0 {
		return connector.Errorf(p.FieldPos("schema"), "value scalar needs a field besides the keys to hold the value")
	}
	return nil
}

type lookup struct {
	cfg    lookupConfig
	schema *record.Schema
	tpl    *template
	slots  []int // key index of each placeholder

	json       *jsonrec.Reader // get, json
	scalar     int             // get, scalar: the field of the value
	hashFields []string        // hgetall: the hash field of each schema field
}

// Schema implements connector.Schemer.
func (l *lookup) Schema() *record.Schema { return l.schema }

// options builds the client's options; the password is read from the
// environment here, when the lookup opens.
func (l *lookup) options() (*goredis.Options, error) {
	var o *goredis.Options
	if l.cfg.URL != "" {
		var err error
		if o, err = goredis.ParseURL(l.cfg.URL); err != nil {
			return nil, errors.New("url is not a redis:// or rediss:// URL")
		}
	} else {
		o = &goredis.Options{Addr: l.cfg.Addr, DB: l.cfg.DB, Username: l.cfg.Username}
		if l.cfg.PasswordEnv != "" {
			pw, ok := os.LookupEnv(l.cfg.PasswordEnv)
			if !ok || pw == "" {
				return nil, fmt.Errorf("environment variable %s is not set", l.cfg.PasswordEnv)
			}
			o.Password = pw
		}
	}
	timeout := time.Duration(l.cfg.Timeout)
	// lookupcache retries, backs off and times out: the client makes one
	// attempt per call, bounded by the call's context.
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolTimeout = timeout
	o.ContextTimeoutEnabled = true
	o.PoolSize = l.cfg.Concurrency + 1
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return o, nil
}

// where names the server in messages, without credentials.
func (l *lookup) where() string {
	if l.cfg.URL != "" {
		if o, err := goredis.ParseURL(l.cfg.URL); err == nil {
			return o.Addr
		}
		return "url"
	}
	return l.cfg.Addr
}

func (l *lookup) name() string { return "redis lookup " + l.where() }

// quietOnce silences go-redis's own logger, which is global and prints
// every failed dial to stderr: the lookup reports failures through its
// errors and the breaker's log lines, once per outage rather than per dial.
var quietOnce sync.Once

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Open implements connector.Lookup. It makes no round trip: the server may
// come up later, and a lookup then waits or rejects per policy.
func (l *lookup) Open(ctx context.Context, env *connector.Env) (connector.Table, error) {
	quietOnce.Do(func() { goredis.SetLogger(quiet{}) })
	o, err := l.options()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name(), err)
	}
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	f := &fetcher{l: l, c: goredis.NewClient(o), loc: loc}
	if l.json != nil {
		f.json = l.json.In(loc)
	}
	t := &table{f: f, schema: l.schema}
	t.Table = lookupcache.New(f, lookupcache.Options{Name: l.name(), Keys: l.cfg.Key, Config: l.cfg.Config, BatchSize: l.cfg.BatchSize, Logger: env.Logger})
	return t, nil
}

// Check implements connector.Checker: a PING.
func (l *lookup) Check(ctx context.Context, env *connector.Env) error {
	o, err := l.options()
	if err != nil {
		return fmt.Errorf("%s: %w", l.name(), err)
	}
	c := goredis.NewClient(o)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return connector.Unavailable(fmt.Errorf("%s: %w", l.name(), err))
	}
	return nil
}

// table is an opened redis lookup.
type table struct {
	*lookupcache.Table
	f      *fetcher
	schema *record.Schema
}

// Schema implements connector.Table.
func (t *table) Schema() *record.Schema { return t.schema }

// Close implements connector.Table.
func (t *table) Close() error { return t.f.c.Close() }

// fetcher reads keys from Redis; lookupcache retries and caches.
type fetcher struct {
	l    *lookup
	c    *goredis.Client
	loc  *time.Location
	json *jsonrec.Reader
}

// redisKey renders the Redis key of a lookup key.
func (f *fetcher) redisKey(k lookupcache.Key) string {
	vals := make([]string, len(f.l.slots))
	for i, slot := range f.l.slots {
		vals[i] = keyText(k.Vals[slot])
	}
	return f.l.tpl.render(vals)
}

// Fetch implements lookupcache.Fetcher.
func (f *fetcher) Fetch(ctx context.Context, keys []lookupcache.Key, out []lookupcache.Result) error {
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = f.redisKey(k)
	}
	if f.l.cfg.Command == cmdHGetAll {
		return f.hgetall(ctx, keys, rkeys, out)
	}
	vals, err := f.c.MGet(ctx, rkeys...).Result()
	if err != nil {
		return f.classify(err)
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // nil: no such key, or not a string
		}
		row, err := f.decode(s)
		if err != nil {
			out[i].Err = connector.Reject(fmt.Errorf("%s: key %s: %w", f.l.name(), rkeys[i], err))
			continue
		}
		f.fillKeys(row, keys[i])
		out[i] = lookupcache.Result{Row: row, OK: true}
	}
	return nil
}

// decode turns a string value into a row.
func (f *fetcher) decode(s string) (record.Row, error) {
	if f.json != nil {
		doc, err := jsonrec.Decode([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("the value is %v", err)
		}
		return f.json.Row(doc)
	}
	row := make(record.Row, f.l.schema.Len())
	fd := f.l.schema.Field(f.l.scalar)
	v, err := record.ParseText(s, fd.Type, f.loc)
	if err != nil {
		return nil, fmt.Errorf("field %s: %v", fd.Name, err)
	}
	row[f.l.scalar] = v
	return row, nil
}

// hgetall reads hashes with one pipeline.
func (f *fetcher) hgetall(ctx context.Context, keys []lookupcache.Key, rkeys []string, out []lookupcache.Result) error {
	cmds := make([]*goredis.MapStringStringCmd, len(rkeys))
	_, err := f.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range rkeys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil && !isServerError(err) {
		return f.classify(err)
	}
	for i, cmd := range cmds {
		m, err := cmd.Result()
		switch {
		case err != nil && goredis.HasErrorPrefix(err, "WRONGTYPE"):
			out[i].Err = connector.Reject(fmt.Errorf("%s: key %s: %w", f.l.name(), rkeys[i], err))
			continue
		case err != nil:
			return f.classify(err)
		case len(m) == 0:
			continue // no such hash
		}
		row := make(record.Row, f.l.schema.Len())
		var cerr error
		for j, hf := range f.l.hashFields {
			s, ok := m[hf]
			if !ok {
				continue
			}
			fd := f.l.schema.Field(j)
			v, err := hashValue(s, fd.Type, f.loc)
			if err != nil {
				cerr = fmt.Errorf("field %s: %v", fd.Name, err)
				break
			}
			row[j] = v
		}
		if cerr != nil {
			out[i].Err = connector.Reject(fmt.Errorf("%s: key %s: %w", f.l.name(), rkeys[i], cerr))
			continue
		}
		f.fillKeys(row, keys[i])
		out[i] = lookupcache.Result{Row: row, OK: true}
	}
	return nil
}

// hashValue converts a hash field's text; a json field holds JSON text.
func hashValue(s string, t record.Type, loc *time.Location) (any, error) {
	if t == record.JSON {
		return jsonrec.Decode([]byte(s))
	}
	return record.ParseText(s, t, loc)
}

// fillKeys gives key fields of the schema that the value lacks the key's
// values.
func (f *fetcher) fillKeys(row record.Row, k lookupcache.Key) {
	for i, name := range f.l.cfg.Key {
		if idx, ok := f.l.schema.Index(name); ok && row[idx] == nil {
			if v, err := record.Convert(k.Vals[i], f.l.schema.Field(idx).Type, f.loc); err == nil {
				row[idx] = v
			}
		}
	}
}

// isServerError says whether err is a reply of the server (as opposed to a
// failure to reach it).
func isServerError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && !errors.Is(err, goredis.Nil)
}

// classify marks what a retry may fix: the server unreachable, timed out,
// a broken connection, or a reply saying it is busy. A refused login or
// another reply fails the run.
func (f *fetcher) classify(err error) error {
	if !isServerError(err) {
		return connector.Transient(err)
	}
	for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY"} {
		if goredis.HasErrorPrefix(err, p) {
			return connector.Transient(err)
		}
	}
	if goredis.IsMaxClientsError(err) {
		return connector.Transient(err)
	}
	return err
}

// keyText is a key value's text in a Redis key: canonical, so that 42,
// 42.0 and "42" read the same key.
func keyText(v any) string {
	var buf [32]byte
	return string(connector.AppendKey(buf[:0], []any{v}))
}

// template is a Redis key with {{field}} placeholders.
type template struct {
	lits  []string
	names []string
}

func parseTemplate(s string) (*template, error) {
	t := &template{}
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return nil, errors.New("a }} without its {{")
			}
			t.lits = append(t.lits, s)
			return t, nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, errors.New("a {{ without its }}")
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		if name == "" || strings.ContainsAny(name, "{} ") {
			return nil, fmt.Errorf("{{%s}} does not name a field", s[i+2:i+j])
		}
		t.lits = append(t.lits, s[:i])
		t.names = append(t.names, name)
		s = s[i+j+2:]
	}
}

func (t *template) render(vals []string) string {
	var b strings.Builder
	for i, l := range t.lits {
		b.WriteString(l)
		if i < len(t.names) {
			b.WriteString(vals[i])
		}
	}
	return b.String()
}
