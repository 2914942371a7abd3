package httpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml/ast"
	"golang.org/x/time/rate"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/lookupcache"
)

// Auth schemes.
const (
	authNone   = "none"
	authBearer = "bearer"
	authBasic  = "basic"
)

// authConfig names the environment variables that hold credentials, so
// that no secret is ever written in a pipeline file.
type authConfig struct {
	Type        string `yaml:"type"`
	TokenEnv    string `yaml:"token_env"`
	Username    string `yaml:"username"`
	UsernameEnv string `yaml:"username_env"`
	PasswordEnv string `yaml:"password_env"`
}

var authField = connector.FieldSpec{Name: "auth", Type: connector.TObject, Doc: "Credentials, read from environment variables when the run starts; their values are never printed.", Fields: []connector.FieldSpec{
	{Name: "type", Type: connector.TEnum, Enum: []string{authNone, authBearer, authBasic}, Default: authNone, Doc: "bearer sends `Authorization: Bearer <token>`; basic sends a user name and password."},
	{Name: "token_env", Type: connector.TString, Doc: "bearer: the environment variable holding the token."},
	{Name: "username", Type: connector.TString, Doc: "basic: the user name."},
	{Name: "username_env", Type: connector.TString, Doc: "basic: the environment variable holding the user name, instead of username."},
	{Name: "password_env", Type: connector.TString, Doc: "basic: the environment variable holding the password."},
}}

func (a *authConfig) check(p connector.Params) error {
	pos := p.FieldPos("auth")
	switch a.Type {
	case "", authNone:
		if a.TokenEnv != "" || a.Username != "" || a.UsernameEnv != "" || a.PasswordEnv != "" {
			return connector.Errorf(pos, "auth: credentials given without a type (bearer or basic)")
		}
	case authBearer:
		if a.TokenEnv == "" {
			return connector.Errorf(pos, "auth: type bearer needs token_env, the environment variable holding the token")
		}
		if a.Username != "" || a.UsernameEnv != "" || a.PasswordEnv != "" {
			return connector.Errorf(pos, "auth: type bearer takes token_env only")
		}
	case authBasic:
		if (a.Username == "") == (a.UsernameEnv == "") || a.PasswordEnv == "" {
			return connector.Errorf(pos, "auth: type basic needs one of username and username_env, and password_env")
		}
		if a.TokenEnv != "" {
			return connector.Errorf(pos, "auth: type basic takes no token_env")
		}
	default:
		return connector.Errorf(pos, "auth: type %q: want none, bearer or basic", a.Type)
	}
	return nil
}

// header returns the Authorization header's value, reading the environment.
func (a *authConfig) header() (string, error) {
	env := func(name string) (string, error) {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("auth: environment variable %s is not set", name)
		}
		return v, nil
	}
	switch a.Type {
	case authBearer:
		tok, err := env(a.TokenEnv)
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	case authBasic:
		user := a.Username
		if a.UsernameEnv != "" {
			var err error
			if user, err = env(a.UsernameEnv); err != nil {
				return "", err
			}
		}
		pass, err := env(a.PasswordEnv)
		if err != nil {
			return "", err
		}
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization"), nil
	}
	return "", nil
}

// Rate is a number of requests per second written as 10 or 0.5.
type Rate float64

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (r *Rate) UnmarshalYAML(n ast.Node) error {
	s := strings.TrimSpace(strings.TrimSuffix(n.GetToken().Value, "/s"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("rate_limit %q: want requests per second, like 10 or 0.5", n.GetToken().Value)
	}
	*r = Rate(v)
	return nil
}

// HTTPConfig is what every HTTP component shares (exported for the YAML
// decoder, which fills inline structs only when they are).
type HTTPConfig struct {
	Headers     connector.Map      `yaml:"headers"`
	Auth        authConfig         `yaml:"auth"`
	Timeout     connector.Duration `yaml:"timeout"`
	RateLimit   Rate               `yaml:"rate_limit"`
	MaxResponse connector.Size     `yaml:"max_response"`
}

func httpFields(timeout string) []connector.FieldSpec {
	return []connector.FieldSpec{
		{Name: "headers", Type: connector.TMap, Doc: "Headers sent with every request. Put secrets in ${ENV} variables whose names mark them secret (…_TOKEN, …_API_KEY)."},
		authField,
		{Name: "timeout", Type: connector.TDuration, Default: timeout, Doc: "Bound of one request, its response body included."},
		{Name: "rate_limit", Type: connector.TString, Doc: "Requests per second at most (like 10 or 0.5); none by default."},
		{Name: "max_response", Type: connector.TSize, Default: "64MiB", Doc: "A larger response body is an error, never buffered whole."},
	}
}

func (c *HTTPConfig) check(p connector.Params) error {
	if err := c.Auth.check(p); err != nil {
		return err
	}
	for _, kv := range c.Headers {
		if !validHeaderName(kv.Key) {
			return connector.Errorf(kv.KeyPos, "headers: %q is not a header name", kv.Key)
		}
		if strings.ContainsAny(kv.Value, "\r\n") {
			return connector.Errorf(kv.Pos, "headers: the value of %s holds a line break", kv.Key)
		}
	}
	switch {
	case c.Timeout <= 0:
		return connector.Errorf(p.FieldPos("timeout"), "timeout must be positive")
	case c.MaxResponse < 1:
		return connector.Errorf(p.FieldPos("max_response"), "max_response must be positive")
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// checkURL parses a URL (or a template's literal text) for a field.
func checkURL(p connector.Params, field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, connector.Errorf(p.FieldPos(field), "%s: want an http:// or https:// URL, got %q", field, redactURL(raw))
	}
	return u, nil
}

// client sends the requests of one component: its headers and
// credentials, its rate limit, its timeout, a bounded response body. It owns
// its connections, which Close releases.
type client struct {
	hc      *http.Client
	tr      *http.Transport
	headers http.Header
	auth    string
	limiter *rate.Limiter
	timeout time.Duration // 0: the caller's context bounds each request
	maxBody int64
	trace   bool // learn whether a failed request was written (for retries of a sink)
}

func newClient(c *HTTPConfig, conns int) (*client, error) {
	auth, err := c.Auth.header()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(conns, 2),
		MaxIdleConnsPerHost:   max(conns, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	h := http.Header{}
	for _, kv := range c.Headers {
		h.Add(kv.Key, kv.Value)
	}
	cl := &client{hc: &http.Client{Transport: tr}, tr: tr, headers: h, auth: auth, timeout: time.Duration(c.Timeout), maxBody: int64(c.MaxResponse)}
	if c.RateLimit > 0 {
		cl.limiter = rate.NewLimiter(rate.Limit(c.RateLimit), 1) // no burst: requests evenly spaced
	}
	return cl, nil
}

var jsonType = []string{"application/json"}

// readBody reads a response body of at most max bytes (one more tells it
// was larger), in one allocation when its length is announced.
func readBody(r io.Reader, n, max int64) ([]byte, error) {
	if n >= 0 && n <= max {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(r, max+1))
}

// close releases idle connections.
func (c *client) close() { c.tr.CloseIdleConnections() }

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// StatusError is an answer with a status other than 2xx.
type StatusError struct {
	Method, URL string // URL without its query and credentials
	Status      int
	Body        string // the start of the response body
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// retryable says whether a status tells of a service that may answer
// later: overloaded, timed out, a server error.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// maxErrorBody bounds the part of an error response kept in messages and
// dead letters.
const maxErrorBody = 1024

// send makes one request and reads its answer. The error is ctx's, a
// *StatusError for a status other than 2xx (marked transient with its
// Retry-After for 408, 429 and 5xx), or a failure of the connection
// (transient; sent tells whether the request may have reached the server,
// which only a client with trace knows: others say it may have).
func (c *client) send(ctx context.Context, method, u string, body []byte, hdr http.Header) (resp *response, sent bool, err error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, err
		}
	}
	rctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var wrote atomic.Bool // the request reached the connection: a retry may duplicate it
	tctx := rctx
	if c.trace {
		tctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }})
	} else {
		wrote.Store(true) // unknown: as if it had
	}
	req, err := http.NewRequestWithContext(tctx, method, u, rd)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: not a valid request", method, redactURL(u))
	}
	for k, v := range c.headers {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header["Content-Type"] = jsonType
	}
	if req.Header.Get("Accept") == "" {
		req.Header["Accept"] = jsonType
	}
	if c.auth != "" {
		req.Header["Authorization"] = []string{c.auth}
	}
	r, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, wrote.Load(), ctx.Err()
		}
		return nil, wrote.Load(), connector.Transient(fmt.Errorf("%s %s: %s", method, redactURL(u), netReason(err, rctx, c.timeout)))
	}
	defer r.Body.Close()
	data, err := readBody(r.Body, r.ContentLength, c.maxBody)
	if err != nil {
		if ctx.Err() != nil {
			return nil, true, ctx.Err()
		}
		return nil, true, connector.Transient(fmt.Errorf("%s %s: reading the response: %s", method, redactURL(u), netReason(err, rctx, c.timeout)))
	}
	if int64(len(data)) > c.maxBody {
		return nil, true, fmt.Errorf("%s %s: the response is larger than max_response (%d bytes)", method, redactURL(u), c.maxBody)
	}
	resp = &response{status: r.StatusCode, header: r.Header, body: data}
	if r.StatusCode/100 == 2 {
		return resp, true, nil
	}
	se := &StatusError{Method: method, URL: redactURL(u), Status: r.StatusCode, Body: excerpt(data)}
	if retryable(r.StatusCode) {
		if d, ok := parseRetryAfter(r.Header.Get("Retry-After"), time.Now()); ok {
			return resp, true, lookupcache.Retry(se, d)
		}
		return resp, true, connector.Transient(se)
	}
	return resp, true, se
}

// netReason explains a failed request without repeating its URL.
func netReason(err error, rctx context.Context, timeout time.Duration) string {
	if rctx.Err() == context.DeadlineExceeded {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// excerpt is the start of a response body for messages, on one line.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}

// redactURL drops the credentials and the query of a URL, where secrets
// hide (api_key=…), for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		return raw
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	return u.String()
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(lookupcache.MaxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// doRetry sends a request until it succeeds, retrying transient failures
// retries times with backoff and jitter (a Retry-After wins), when safe
// says a retry cannot duplicate anything; a request that never reached the
// server is always safe to send again.
func (c *client) doRetry(ctx context.Context, method, u string, body []byte, hdr http.Header, retries int, backoff time.Duration, safe bool, sleep func(context.Context, time.Duration) error) (*response, error) {
	for attempt := 1; ; attempt++ {
		resp, sent, err := c.send(ctx, method, u, body, hdr)
		if err == nil || !errors.Is(err, connector.ErrTransient) || attempt > retries || (sent && !safe) {
			return resp, err
		}
		d := lookupcache.Backoff(attempt, backoff)
		if hint, ok := lookupcache.RetryAfter(err); ok {
			d = hint
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
