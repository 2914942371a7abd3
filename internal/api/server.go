package api

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/backbone-etl/backbone/internal/state"
)

// Backend is what the API serves: the daemon. Every method may be called
// from many requests at once. Data it returns is already redacted; the
// server redacts the encoded body once more as a safety net.
type Backend interface {
	Pipelines(ctx context.Context) ([]Pipeline, error)
	// Pipeline returns ErrNotFound (or an error wrapping state.ErrNotFound)
	// for an unknown name.
	Pipeline(ctx context.Context, name string) (PipelineDetail, error)
	Runs(ctx context.Context, f state.RunFilter) ([]Run, error)
	Run(ctx context.Context, id string) (RunDetail, error)
	// Trigger starts (or queues) a run now; ErrConflict when the pipeline
	// cannot take one (paused, quarantined).
	Trigger(ctx context.Context, name string) (Triggered, error)
	// Backfill runs every logical time of the schedule in [from, to],
	// without reading or moving the live checkpoints.
	Backfill(ctx context.Context, name string, from, to time.Time) (Triggered, error)
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Versions(ctx context.Context, name string) ([]Version, error)
	Version(ctx context.Context, name, hash string) (Version, error)
	DeadLetters(ctx context.Context, f state.DLQFilter) (DeadLetterPage, error)
	DeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	Replay(ctx context.Context, sel Selection) (ReplayResult, error)
	Purge(ctx context.Context, sel Selection) (int, error)
	Ready(ctx context.Context) Readiness
}

// Errors a Backend returns to choose the status code.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrBadRequest = errors.New("bad request")
)

// Role is what a token may do.
type Role string

const (
	RoleRead  Role = "read"  // every GET
	RoleAdmin Role = "admin" // everything
)

// Token is one bearer token. Value is a secret: never logged.
type Token struct {
	Name  string
	Role  Role
	Value string
}

// Options configure a Server.
type Options struct {
	Backend Backend
	Tokens  []Token
	// Metrics serves /metrics (behind a token like every endpoint but
	// /healthz). Nil: no /metrics.
	Metrics http.Handler
	// UI serves everything outside /api/, /metrics and the health
	// endpoints; nil: 404.
	UI http.Handler
	// Redact replaces secrets in a response body; nil: none.
	Redact func(string) string
	Logger *slog.Logger
}

//go:embed openapi.yaml
var specFS embed.FS

// OpenAPI returns the API's OpenAPI document.
func OpenAPI() []byte {
	b, _ := specFS.ReadFile("openapi.yaml")
	return b
}

// route is one endpoint; the table is what the OpenAPI test compares the
// document against.
type route struct {
	method, path string
	admin        bool
	h            func(s *server, w http.ResponseWriter, r *http.Request) (any, error)
}

var routes = []route{
	{"GET", "/api/v1/pipelines", false, (*server).pipelines},
	{"GET", "/api/v1/pipelines/{name}", false, (*server).pipeline},
	{"GET", "/api/v1/pipelines/{name}/runs", false, (*server).pipelineRuns},
	{"POST", "/api/v1/pipelines/{name}/trigger", true, (*server).trigger},
	{"POST", "/api/v1/pipelines/{name}/backfill", true, (*server).backfill},
	{"POST", "/api/v1/pipelines/{name}/pause", true, (*server).pause},
	{"POST", "/api/v1/pipelines/{name}/resume", true, (*server).resume},
	{"GET", "/api/v1/pipelines/{name}/versions", false, (*server).versions},
	{"GET", "/api/v1/pipelines/{name}/versions/{hash}", false, (*server).version},
	{"GET", "/api/v1/runs", false, (*server).runs},
	{"GET", "/api/v1/runs/{id}", false, (*server).run},
	{"GET", "/api/v1/deadletters", false, (*server).deadLetters},
	{"GET", "/api/v1/deadletters/{id}", false, (*server).deadLetter},
	{"POST", "/api/v1/deadletters/replay", true, (*server).replay},
	{"POST", "/api/v1/deadletters/purge", true, (*server).purge},
	{"GET", "/api/v1/whoami", false, (*server).whoami},
	{"GET", "/api/v1/openapi.yaml", false, nil},
	{"GET", "/readyz", false, nil},
	{"GET", "/metrics", false, nil},
}

type server struct {
	opts Options
}

// New returns the API's handler: the routes above, /healthz without a
// token, everything else behind a bearer token.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	for _, rt := range routes {
		rt := rt
		var h http.Handler
		switch {
		case rt.h != nil:
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v, err := rt.h(s, w, r)
				s.reply(w, r, v, err)
			})
		case rt.path == "/readyz":
			h = http.HandlerFunc(s.readyz)
		case rt.path == "/metrics":
			if opts.Metrics == nil {
				continue
			}
			h = opts.Metrics
		default: // the OpenAPI document
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/yaml")
				_, _ = w.Write(OpenAPI())
			})
		}
		mux.Handle(rt.method+" "+rt.path, s.auth(rt.admin, h))
	}
	// Unknown API paths answer JSON, behind the token like the rest.
	mux.Handle("/api/", s.auth(false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, nil, fmt.Errorf("%w: no endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	})))
	if opts.UI != nil {
		mux.Handle("/", opts.UI)
	}
	return mux
}

// auth admits a request with a known token; a change needs an admin token.
func (s *server) auth(admin bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := s.token(r)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="backbone"`)
			s.writeJSON(w, http.StatusUnauthorized, Error{Error: "missing or unknown bearer token"})
		case admin && tok.Role != RoleAdmin:
			s.writeJSON(w, http.StatusForbidden, Error{Error: fmt.Sprintf("token %q is read-only", tok.Name)})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// token finds the request's bearer token. Every configured token is
// compared in constant time, so timing does not tell how much matched.
func (s *server) token(r *http.Request) (Token, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return Token{}, false
	}
	got := []byte(strings.TrimSpace(h[len(prefix):]))
	var (
		found Token
		ok    bool
	)
	for _, t := range s.opts.Tokens {
		if t.Value != "" && subtle.ConstantTimeCompare(got, []byte(t.Value)) == 1 {
			found, ok = t, true
		}
	}
	return found, ok
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.opts.Backend.Ready(r.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, rd)
}

// reply writes v, or err with its status code.
func (s *server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err == nil {
		if v == nil {
			v = struct{}{}
		}
		s.writeJSON(w, http.StatusOK, v)
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, state.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusInternalServerError {
		s.opts.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", s.redact(err.Error()))
	}
	s.writeJSON(w, code, Error{Error: err.Error()})
}

func (s *server) redact(str string) string {
	if s.opts.Redact == nil {
		return str
	}
	return s.opts.Redact(str)
}

func (s *server) writeJSON(w http.ResponseWriter, code int, v any) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // JSON with nosniff: "<=" reads better than "\u003c="
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encode response"}`)
	}
	body := s.redact(strings.TrimSuffix(buf.String(), "\n"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}

// decode reads a JSON body of at most 1 MiB into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrBadRequest, err)
	}
	return nil
}

func limit(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("%w: limit %q: want 1 to 10000", ErrBadRequest, s)
	}
	return n, nil
}

// whoami tells the caller what its token may do, so a client such as the
// dashboard shows change buttons only to an admin. auth admitted the token.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) (any, error) {
	tok, _ := s.token(r)
	return Identity{Name: tok.Name, Role: tok.Role}, nil
}

func (s *server) pipelines(w http.ResponseWriter, r *http.Request) (any, error) {
	ps, err := s.opts.Backend.Pipelines(r.Context())
	if ps == nil {
		ps = []Pipeline{}
	}
	return ps, err
}

func (s *server) pipeline(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.opts.Backend.Pipeline(r.Context(), r.PathValue("name"))
}

func (s *server) runFilter(r *http.Request, pipeline string) (state.RunFilter, error) {
	n, err := limit(r, 100)
	if err != nil {
		return state.RunFilter{}, err
	}
	st := r.URL.Query().Get("status")
	switch st {
	case "", state.StatusRunning, state.StatusSucceeded, state.StatusFailed, state.StatusCancelled:
	default:
		return state.RunFilter{}, fmt.Errorf("%w: status %q: want running, succeeded, failed or cancelled", ErrBadRequest, st)
	}
	return state.RunFilter{Pipeline: pipeline, Status: st, Limit: n}, nil
}

func (s *server) pipelineRuns(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if _, err := s.opts.Backend.Pipeline(r.Context(), name); err != nil {
		return nil, err
	}
	f, err := s.runFilter(r, name)
	if err != nil {
		return nil, err
	}
	return nonNil(s.opts.Backend.Runs(r.Context(), f))
}

func (s *server) runs(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := s.runFilter(r, r.URL.Query().Get("pipeline"))
	if err != nil {
		return nil, err
	}
	return nonNil(s.opts.Backend.Runs(r.Context(), f))
}

func nonNil(rs []Run, err error) (any, error) {
	if rs == nil {
		rs = []Run{}
	}
	return rs, err
}

func (s *server) run(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.opts.Backend.Run(r.Context(), r.PathValue("id"))
}

func (s *server) trigger(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.opts.Backend.Trigger(r.Context(), r.PathValue("name"))
}

func (s *server) backfill(w http.ResponseWriter, r *http.Request) (any, error) {
	var req BackfillRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.From.IsZero() || req.To.IsZero() || req.To.Before(req.From) {
		return nil, fmt.Errorf("%w: backfill needs from <= to, both RFC 3339 times", ErrBadRequest)
	}
	return s.opts.Backend.Backfill(r.Context(), r.PathValue("name"), req.From, req.To)
}

func (s *server) pause(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := s.opts.Backend.Pause(r.Context(), name); err != nil {
		return nil, err
	}
	return s.opts.Backend.Pipeline(r.Context(), name)
}

func (s *server) resume(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := s.opts.Backend.Resume(r.Context(), name); err != nil {
		return nil, err
	}
	return s.opts.Backend.Pipeline(r.Context(), name)
}

func (s *server) versions(w http.ResponseWriter, r *http.Request) (any, error) {
	vs, err := s.opts.Backend.Versions(r.Context(), r.PathValue("name"))
	if vs == nil {
		vs = []Version{}
	}
	return vs, err
}

func (s *server) version(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.opts.Backend.Version(r.Context(), r.PathValue("name"), r.PathValue("hash"))
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) (any, error) {
	n, err := limit(r, 100)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := state.DLQFilter{Pipeline: q.Get("pipeline"), RunID: q.Get("run"), Step: q.Get("step"), Contains: q.Get("contains"), Limit: n}
	return s.opts.Backend.DeadLetters(r.Context(), f)
}

func (s *server) deadLetter(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: dead letter id %q", ErrNotFound, r.PathValue("id"))
	}
	return s.opts.Backend.DeadLetter(r.Context(), id)
}

func (s *server) selection(r *http.Request) (Selection, error) {
	var sel Selection
	if err := decode(r, &sel); err != nil {
		return sel, err
	}
	if sel.Empty() {
		return sel, fmt.Errorf("%w: name the dead letters: ids, or a pipeline, run_id, step or contains filter", ErrBadRequest)
	}
	return sel, nil
}

func (s *server) replay(w http.ResponseWriter, r *http.Request) (any, error) {
	sel, err := s.selection(r)
	if err != nil {
		return nil, err
	}
	return s.opts.Backend.Replay(r.Context(), sel)
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) (any, error) {
	sel, err := s.selection(r)
	if err != nil {
		return nil, err
	}
	n, err := s.opts.Backend.Purge(r.Context(), sel)
	return map[string]int{"purged": n}, err
}
