package lookupcache

import (
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Policies for a service that stays down.
const (
	Wait   = "wait"   // lookups wait for the service, at most MaxWait
	Reject = "reject" // the records asking become rejects
)

// Config is the part of a lookup's configuration this package implements.
// A connector embeds it inline in its own config struct, lists Fields in
// its spec and calls Check after decoding.
type Config struct {
	Cache         CacheConfig        `yaml:"cache"`
	Timeout       connector.Duration `yaml:"timeout"`
	Retries       int                `yaml:"retries"`
	Backoff       connector.Duration `yaml:"backoff"`
	Breaker       BreakerConfig      `yaml:"breaker"`
	Concurrency   int                `yaml:"concurrency"`
	OnUnavailable string             `yaml:"on_unavailable"`
	MaxWait       connector.Duration `yaml:"max_wait"`
}

// CacheConfig sizes the cache.
type CacheConfig struct {
	Size        int                `yaml:"size"`
	TTL         connector.Duration `yaml:"ttl"`
	NegativeTTL connector.Duration `yaml:"negative_ttl"`
}

// BreakerConfig tunes the circuit breaker.
type BreakerConfig struct {
	Failures int                `yaml:"failures"`
	Cooldown connector.Duration `yaml:"cooldown"`
}

// Defaults returns the configuration a lookup has before its fields are
// decoded; the values match Fields' defaults.
func Defaults() Config {
	return Config{
		Cache:         CacheConfig{Size: 100000, TTL: connector.Duration(10 * time.Minute), NegativeTTL: connector.Duration(time.Minute)},
		Timeout:       connector.Duration(5 * time.Second),
		Retries:       3,
		Backoff:       connector.Duration(100 * time.Millisecond),
		Breaker:       BreakerConfig{Failures: 5, Cooldown: connector.Duration(10 * time.Second)},
		Concurrency:   32,
		OnUnavailable: Wait,
		MaxWait:       connector.Duration(5 * time.Minute),
	}
}

// Fields documents Config for a spec; call is what one call to the service
// is, in the connector's words ("HTTP request", "Redis round trip").
func Fields(call string) []connector.FieldSpec {
	return []connector.FieldSpec{
		{Name: "cache", Type: connector.TObject, Doc: "The cache of answers (an LRU: the least recently used key goes first).", Fields: []connector.FieldSpec{
			{Name: "size", Type: connector.TInt, Default: "100000", Doc: "Keys kept at most."},
			{Name: "ttl", Type: connector.TDuration, Default: "10m", Doc: "How long a found record is kept."},
			{Name: "negative_ttl", Type: connector.TDuration, Default: "1m", Doc: "How long a key without a record is kept (0: not kept)."},
		}},
		{Name: "timeout", Type: connector.TDuration, Default: "5s", Doc: "Bound of one " + call + "."},
		{Name: "retries", Type: connector.TInt, Default: "3", Doc: "Retries of a " + call + " that failed because of the service (refused, timed out, overloaded), with exponential backoff and jitter; a server's Retry-After is honoured."},
		{Name: "backoff", Type: connector.TDuration, Default: "100ms", Doc: "Wait before the first retry, doubled for each next one (at most 10s)."},
		{Name: "breaker", Type: connector.TObject, Doc: "The circuit breaker.", Fields: []connector.FieldSpec{
			{Name: "failures", Type: connector.TInt, Default: "5", Doc: "Consecutive failed calls that open the circuit: no call is made until the cooldown has passed."},
			{Name: "cooldown", Type: connector.TDuration, Default: "10s", Doc: "How long the circuit stays open; then one call probes the service and closes it when it succeeds."},
		}},
		{Name: "concurrency", Type: connector.TInt, Default: "32", Doc: "Calls in flight at most. Below it the number adapts: it grows while calls succeed and shrinks when they fail or slow down."},
		{Name: "on_unavailable", Type: connector.TEnum, Enum: []string{Wait, Reject}, Default: Wait, Doc: "When the service cannot answer after the retries, or the circuit is open: wait for it (at most max_wait, then the run fails), or reject the records asking. Never are they enriched with nulls."},
		{Name: "max_wait", Type: connector.TDuration, Default: "5m", Doc: "on_unavailable wait: how long a lookup waits for the service before the run fails."},
	}
}

// Check verifies the decoded values, pointing at the field at fault.
func (c *Config) Check(p connector.Params) error {
	switch {
	case c.Cache.Size < 1:
		return connector.Errorf(p.FieldPos("cache"), "cache.size must be positive, got %d", c.Cache.Size)
	case c.Cache.TTL < 0 || c.Cache.NegativeTTL < 0:
		return connector.Errorf(p.FieldPos("cache"), "cache.ttl and cache.negative_ttl must not be negative")
	case c.Timeout <= 0:
		return connector.Errorf(p.FieldPos("timeout"), "timeout must be positive")
	case c.Retries < 0 || c.Retries > 20:
		return connector.Errorf(p.FieldPos("retries"), "retries must be between 0 and 20, got %d", c.Retries)
	case c.Backoff < 0:
		return connector.Errorf(p.FieldPos("backoff"), "backoff must not be negative")
	case c.Breaker.Failures < 1 || c.Breaker.Cooldown < 0:
		return connector.Errorf(p.FieldPos("breaker"), "breaker.failures must be positive and breaker.cooldown not negative")
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return connector.Errorf(p.FieldPos("concurrency"), "concurrency must be between 1 and 1024, got %d", c.Concurrency)
	case c.OnUnavailable != Wait && c.OnUnavailable != Reject:
		return connector.Errorf(p.FieldPos("on_unavailable"), "on_unavailable %q: want wait or reject", c.OnUnavailable)
	case c.MaxWait < 0:
		return connector.Errorf(p.FieldPos("max_wait"), "max_wait must not be negative")
	}
	return nil
}
