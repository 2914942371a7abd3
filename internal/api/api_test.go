package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/backbone-etl/backbone/internal/state"
)

// fakeBackend answers with fixed data and records the changes asked.
type fakeBackend struct {
	changes []string
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (f *fakeBackend) Pipelines(ctx context.Context) ([]Pipeline, error) {
	return []Pipeline{{Name: "orders", Status: "healthy"}}, nil
}
func (f *fakeBackend) Pipeline(ctx context.Context, name string) (PipelineDetail, error) {
	if name != "orders" {
		return PipelineDetail{}, fmt.Errorf("pipeline %q: %w", name, ErrNotFound)
	}
	return PipelineDetail{Pipeline: Pipeline{Name: "orders"}, YAML: "dsn: postgres://u:s3cret@h/db"}, nil
}
func (f *fakeBackend) Runs(ctx context.Context, rf state.RunFilter) ([]Run, error) {
	return []Run{RunOf(state.Run{ID: "r1", Pipeline: "orders", Start: t0, End: t0.Add(time.Second)}, t0)}, nil
}
func (f *fakeBackend) Run(ctx context.Context, id string) (RunDetail, error) {
	if id != "1" {
		return RunDetail{}, fmt.Errorf("run %q: %w", id, state.ErrNotFound)
	}
	return RunDetail{Run: Run{ID: "r1"}}, nil
}
func (f *fakeBackend) Trigger(ctx context.Context, name string) (Triggered, error) {
	f.changes = append(f.changes, "trigger "+name)
	if name == "paused" {
		return Triggered{}, fmt.Errorf("pipeline paused: %w", ErrConflict)
	}
	return Triggered{Pipeline: name, LogicalTimes: []time.Time{t0}}, nil
}
func (f *fakeBackend) Backfill(ctx context.Context, name string, from, to time.Time) (Triggered, error) {
	f.changes = append(f.changes, "backfill "+name)
	return Triggered{Pipeline: name, LogicalTimes: []time.Time{from, to}}, nil
}
func (f *fakeBackend) Pause(ctx context.Context, name string) error {
	f.changes = append(f.changes, "pause "+name)
	return nil
}
func (f *fakeBackend) Resume(ctx context.Context, name string) error {
	f.changes = append(f.changes, "resume "+name)
	return nil
}
func (f *fakeBackend) Versions(ctx context.Context, name string) ([]Version, error) { return nil, nil }
func (f *fakeBackend) Version(ctx context.Context, name, hash string) (Version, error) {
	return Version{Hash: hash}, nil
}
func (f *fakeBackend) DeadLetters(ctx context.Context, df state.DLQFilter) (DeadLetterPage, error) {
	return DeadLetterPage{Total: 0, Items: []DeadLetter{}}, nil
}
func (f *fakeBackend) DeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	return DeadLetter{ID: id}, nil
}
func (f *fakeBackend) Replay(ctx context.Context, sel Selection) (ReplayResult, error) {
	f.changes = append(f.changes, "replay")
	return ReplayResult{Selected: len(sel.IDs)}, nil
}
func (f *fakeBackend) Purge(ctx context.Context, sel Selection) (int, error) {
	f.changes = append(f.changes, "purge")
	return len(sel.IDs), nil
}
func (f *fakeBackend) Ready(ctx context.Context) Readiness { return Readiness{Ready: true} }

const (
	adminTok = "admin-token-7f3a"
	readTok  = "read-token-91c2"
)

func newServer(t *testing.T) (*httptest.Server, *fakeBackend) {
	fb := &fakeBackend{}
	h := New(Options{
		Backend: fb,
		Tokens:  []Token{{Name: "ops", Role: RoleAdmin, Value: adminTok}, {Name: "viewer", Role: RoleRead, Value: readTok}},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") }),
		Redact:  func(s string) string { return strings.ReplaceAll(s, "s3cret", "*****") },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, fb
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// concrete fills a route's path parameters with values the fake knows.
func concrete(path string) string {
	return strings.NewReplacer("{name}", "orders", "{id}", "1", "{hash}", "abc").Replace(path)
}

func bodyFor(rt route) string {
	switch {
	case strings.HasSuffix(rt.path, "/backfill"):
		return `{"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z"}`
	case strings.HasSuffix(rt.path, "/replay"), strings.HasSuffix(rt.path, "/purge"):
		return `{"ids":[1,2]}`
	}
	return ""
}

func TestEveryEndpointNeedsAToken(t *testing.T) {
	srv, fb := newServer(t)
	for _, rt := range routes {
		path := concrete(rt.path)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, tok := range []string{"", "wrong", adminTok + "x", strings.ToUpper(adminTok)} {
				code, body := do(t, srv, rt.method, path, tok, bodyFor(rt))
				if code != http.StatusUnauthorized {
					t.Errorf("token %q: status %d, want 401 (%s)", tok, code, body)
				}
			}
			code, body := do(t, srv, rt.method, path, readTok, bodyFor(rt))
			if rt.admin && code != http.StatusForbidden {
				t.Errorf("read-only token on a change: status %d, want 403 (%s)", code, body)
			}
			if !rt.admin && code != http.StatusOK {
				t.Errorf("read-only token: status %d, want 200 (%s)", code, body)
			}
			code, body = do(t, srv, rt.method, path, adminTok, bodyFor(rt))
			if code != http.StatusOK {
				t.Errorf("admin token: status %d, want 200 (%s)", code, body)
			}
		})
	}
	// Only the admin calls reached the backend: one per admin route.
	var admin int
	for _, rt := range routes {
		if rt.admin {
			admin++
		}
	}
	if len(fb.changes) != admin {
		t.Errorf("backend saw changes %v, want exactly one per admin route (%d)", fb.changes, admin)
	}
	if code, _ := do(t, srv, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz without a token: %d, want 200", code)
	}
	if code, _ := do(t, srv, "GET", "/api/v1/nothing", "", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown API path without a token: %d, want 401", code)
	}
}

func TestNoTokensRefusesEverything(t *testing.T) {
	srv := httptest.NewServer(New(Options{Backend: &fakeBackend{}, Tokens: []Token{{Name: "empty", Role: RoleAdmin}}}))
	defer srv.Close()
	for _, tok := range []string{"", " "} {
		if code, _ := do(t, srv, "GET", "/api/v1/pipelines", tok, ""); code != http.StatusUnauthorized {
			t.Errorf("token %q with no real token configured: %d, want 401", tok, code)
		}
	}
}

func TestErrorsAndRedaction(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"unknown pipeline", "GET", "/api/v1/pipelines/nope", "", 404, `pipeline \"nope\": not found`},
		{"unknown run", "GET", "/api/v1/runs/zzz", "", 404, "not found"},
		{"conflict", "POST", "/api/v1/pipelines/paused/trigger", "", 409, "paused"},
		{"bad limit", "GET", "/api/v1/runs?limit=0", "", 400, "limit"},
		{"bad status", "GET", "/api/v1/runs?status=odd", "", 400, "status"},
		{"backfill reversed", "POST", "/api/v1/pipelines/orders/backfill", `{"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z"}`, 400, "from <= to"},
		{"backfill unknown field", "POST", "/api/v1/pipelines/orders/backfill", `{"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z","file":"/etc/passwd"}`, 400, "unknown field"},
		{"purge everything refused", "POST", "/api/v1/deadletters/purge", `{}`, 400, "name the dead letters"},
		{"bad dead letter id", "GET", "/api/v1/deadletters/x", "", 404, "not found"},
		{"redacted", "GET", "/api/v1/pipelines/orders", "", 200, "postgres://u:*****@h/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.method, tt.path, adminTok, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.code, tt.want)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("secret in the body: %s", body)
			}
		})
	}
}

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any   `yaml:"properties"`
			AllOf      []map[string]any `yaml:"allOf"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadSpec(t *testing.T) openAPIDoc {
	var doc openAPIDoc
	if err := yaml.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadSpec(t)
	var documented, served []string
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if m == "parameters" {
				continue
			}
			method := strings.ToUpper(m)
			documented = append(documented, method+" "+path)
			resp := op.(map[string]any)["responses"].(map[string]any)
			if path == "/healthz" {
				continue
			}
			if _, ok := resp["401"]; !ok {
				t.Errorf("%s %s does not document 401", method, path)
			}
			admin := slices.ContainsFunc(routes, func(r route) bool { return r.path == path && r.method == method && r.admin })
			if _, ok := resp["403"]; ok != admin {
				t.Errorf("%s %s: documents 403 = %v, but admin-only = %v", method, path, ok, admin)
			}
		}
	}
	served = append(served, "GET /healthz")
	for _, r := range routes {
		served = append(served, r.method+" "+r.path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("openapi.yaml and the route table differ:\ndocumented %v\nserved     %v", documented, served)
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded structs
// flattened.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if f.Anonymous {
			names = append(names, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func TestOpenAPISchemasMatchDTOs(t *testing.T) {
	doc := loadSpec(t)
	props := func(name string) []string {
		s := doc.Components.Schemas[name]
		var out []string
		for p := range s.Properties {
			out = append(out, p)
		}
		for _, part := range s.AllOf {
			if ref, ok := part["$ref"].(string); ok {
				sub := strings.TrimPrefix(ref, "#/components/schemas/")
				for p := range doc.Components.Schemas[sub].Properties {
					out = append(out, p)
				}
			}
			if ps, ok := part["properties"].(map[string]any); ok {
				for p := range ps {
					out = append(out, p)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	for name, v := range map[string]any{
		"Pipeline": Pipeline{}, "PipelineDetail": PipelineDetail{}, "Run": Run{}, "RunDetail": RunDetail{},
		"Version": Version{}, "DeadLetter": DeadLetter{}, "DeadLetterPage": DeadLetterPage{}, "Selection": Selection{},
		"ReplayResult": ReplayResult{}, "Triggered": Triggered{}, "BackfillRequest": BackfillRequest{},
		"Readiness": Readiness{}, "Error": Error{},
	} {
		got, want := props(name), jsonFields(reflect.TypeOf(v))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type encodes %v", name, got, want)
		}
	}
}

func TestResponsesDecode(t *testing.T) {
	srv, _ := newServer(t)
	code, body := do(t, srv, "GET", "/api/v1/runs", readTok, "")
	var runs []Run
	if code != 200 || json.Unmarshal([]byte(body), &runs) != nil || len(runs) != 1 || runs[0].DurationSecs != 1 {
		t.Errorf("runs: %d %s", code, body)
	}
	code, body = do(t, srv, "GET", "/metrics", readTok, "")
	if code != 200 || body != "up 1\n" {
		t.Errorf("metrics: %d %q", code, body)
	}
}
