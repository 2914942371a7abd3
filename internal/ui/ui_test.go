package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/backbone-etl/backbone/internal/api"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// files lists the URL paths of every embedded asset but the index.
func files(t *testing.T) []string {
	t.Helper()
	fs, err := load()
	if err != nil {
		t.Fatalf("loading the embedded assets: %v", err)
	}
	var out []string
	for p, a := range fs {
		if !a.html {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func checkSecurityHeaders(t *testing.T, what string, r *http.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// The policy itself: same-origin scripts and styles only, nothing inline,
// no framing, no HTML built from strings.
func TestContentSecurityPolicyIsStrict(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src":               "'none'",
		"script-src":                "'self'",
		"style-src":                 "'self'",
		"connect-src":               "'self'",
		"frame-ancestors":           "'none'",
		"base-uri":                  "'none'",
		"require-trusted-types-for": "'script'",
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("%s = %q, want %q", k, directives[k], v)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "data:", "*", "http:", "https:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("the policy allows %s: %s", bad, ContentSecurityPolicy)
		}
	}
}

func TestIndexIsNeverCached(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/index.html"} {
		r := get(t, h, "GET", target, nil)
		b := body(t, r)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %s", target, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("ETag") != "" {
			t.Errorf("%s: Cache-Control %q ETag %q, want no-store and no ETag", target, r.Header.Get("Cache-Control"), r.Header.Get("ETag"))
		}
		checkSecurityHeaders(t, target, r)
		if !strings.Contains(b, `<script type="module" src="/assets/js/main.js">`) {
			t.Errorf("%s does not load the application", target)
		}
		// A conditional request still gets the page: it is never a 304.
		if r := get(t, h, "GET", target, map[string]string{"If-None-Match": "*"}); r.StatusCode != 200 {
			t.Errorf("%s with If-None-Match: %d, want 200", target, r.StatusCode)
		}
	}
}

// Every asset is served with its type, the security headers and an ETag,
// and answers 304 to a request that has it.
func TestEveryAssetIsServed(t *testing.T) {
	h := Handler()
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, p := range files(t) {
		t.Run(p, func(t *testing.T) {
			r := get(t, h, "GET", p, nil)
			b := body(t, r)
			if r.StatusCode != 200 || len(b) == 0 {
				t.Fatalf("status %d, %d bytes", r.StatusCode, len(b))
			}
			if want := types[path.Ext(p)]; want == "" || r.Header.Get("Content-Type") != want {
				t.Errorf("Content-Type %q, want %q", r.Header.Get("Content-Type"), want)
			}
			checkSecurityHeaders(t, p, r)
			etag := r.Header.Get("ETag")
			if r.Header.Get("Cache-Control") != "no-cache" || etag == "" {
				t.Errorf("Cache-Control %q ETag %q, want no-cache with an ETag", r.Header.Get("Cache-Control"), etag)
			}
			again := get(t, h, "GET", p, map[string]string{"If-None-Match": etag})
			if again.StatusCode != http.StatusNotModified || body(t, again) != "" {
				t.Errorf("with its ETag: %d, want 304 with no body", again.StatusCode)
			}
			if other := get(t, h, "GET", p, map[string]string{"If-None-Match": `"other"`}); other.StatusCode != 200 {
				t.Errorf("with another ETag: %d, want 200", other.StatusCode)
			}
			head := get(t, h, "HEAD", p, nil)
			if head.StatusCode != 200 || body(t, head) != "" {
				t.Errorf("HEAD: %d", head.StatusCode)
			}
		})
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/nope", "/assets/", "/assets/js/none.js", "/assets/../ui.go", "/api-docs"} {
		r := get(t, h, "GET", target, nil)
		if r.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", target, r.StatusCode)
		}
		checkSecurityHeaders(t, target, r)
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		r := get(t, h, m, "/", nil)
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d Allow %q, want 405 GET, HEAD", m, r.StatusCode, r.Header.Get("Allow"))
		}
		checkSecurityHeaders(t, m, r)
	}
}

var (
	htmlRef  = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)
	jsImport = regexp.MustCompile(`from\s+'(\./[^']+)'`)
)

// Every asset is reachable from the page (no dead file ships) and every
// reference of the page and its modules resolves.
func TestEveryAssetIsReachable(t *testing.T) {
	h := Handler()
	seen := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		r := get(t, h, "GET", p, nil)
		if r.StatusCode != 200 {
			t.Errorf("%s is referenced but answers %d", p, r.StatusCode)
			return
		}
		b := body(t, r)
		switch {
		case p == "/":
			for _, m := range htmlRef.FindAllStringSubmatch(b, -1) {
				walk(m[1])
			}
		case strings.HasSuffix(p, ".js"):
			for _, m := range jsImport.FindAllStringSubmatch(b, -1) {
				walk(path.Join(path.Dir(p), m[1]))
			}
		}
	}
	walk("/")
	for _, p := range files(t) {
		if !seen[p] {
			t.Errorf("%s is embedded but nothing loads it", p)
		}
	}
}

// The page runs under the policy: no inline script or style, no event
// handler attributes, no HTML built from strings, nothing from another
// host (the page works with no internet).
func TestNoInlineCodeAndNothingRemote(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "GET", "/", nil))
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		if !strings.Contains(m, `src="/assets/`) {
			t.Errorf("inline script in index.html: %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`<style`)} {
		if loc := bad.FindString(index); loc != "" {
			t.Errorf("index.html has %q, which the policy refuses", loc)
		}
	}
	remote := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	sinks := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "srcdoc"}
	for _, p := range append(files(t), "/") {
		b := body(t, get(t, h, "GET", p, nil))
		for _, m := range remote.FindAllString(b, -1) {
			if m != "http://www.w3.org" && m != "//www.w3.org" {
				t.Errorf("%s refers to another host: %s", p, m)
			}
		}
		if strings.HasSuffix(p, ".js") {
			for _, s := range sinks {
				if strings.Contains(b, s) {
					t.Errorf("%s uses %s: text from the API must stay text", p, s)
				}
			}
		}
	}
}

// apiCall finds the endpoints api.js calls: get(`…`), post(`…`) and
// call('…').
var apiCall = regexp.MustCompile("(get|post|call)\\(\\s*['`](/api/v1/[^'`]*)['`]")

// Every endpoint the dashboard calls is one the API documents, with the
// method the dashboard uses; every change it makes is admin-only there.
func TestDashboardCallsDocumentedEndpoints(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]*\}`)
	documented := map[string]string{} // normalized path → original
	for p := range doc.Paths {
		documented[param.ReplaceAllString(p, "{}")] = p
	}
	src := body(t, get(t, Handler(), "GET", "/assets/js/api.js", nil))
	calls := apiCall.FindAllStringSubmatch(src, -1)
	if len(calls) < 14 {
		t.Fatalf("found %d API calls in api.js; the pattern no longer matches the code", len(calls))
	}
	var used []string
	for _, c := range calls {
		method := "get"
		if c[1] == "post" {
			method = "post"
		}
		p, _, _ := strings.Cut(c[2], "?")
		p = regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(p, "{}")
		orig, ok := documented[p]
		if !ok {
			t.Errorf("the dashboard calls %s %s, which openapi.yaml does not document", strings.ToUpper(method), c[2])
			continue
		}
		op, ok := doc.Paths[orig][method].(map[string]any)
		if !ok {
			t.Errorf("the dashboard calls %s %s; the API documents no %s there", strings.ToUpper(method), orig, strings.ToUpper(method))
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		if _, forbidden := responses["403"]; (method == "post") != forbidden {
			t.Errorf("%s %s: a change the dashboard makes must be admin-only (403 documented), a read must not", strings.ToUpper(method), orig)
		}
		used = append(used, strings.ToUpper(method)+" "+orig)
	}
	// Every endpoint of the pages' data is used.
	for _, want := range []string{
		"GET /api/v1/whoami", "GET /api/v1/pipelines", "GET /api/v1/pipelines/{name}", "GET /api/v1/pipelines/{name}/runs",
		"GET /api/v1/pipelines/{name}/versions", "GET /api/v1/pipelines/{name}/versions/{hash}", "GET /api/v1/runs/{id}",
		"GET /api/v1/deadletters", "POST /api/v1/pipelines/{name}/trigger", "POST /api/v1/pipelines/{name}/backfill",
		"POST /api/v1/pipelines/{name}/pause", "POST /api/v1/pipelines/{name}/resume",
		"POST /api/v1/deadletters/replay", "POST /api/v1/deadletters/purge",
	} {
		if !slices.Contains(used, want) {
			t.Errorf("the dashboard does not call %s", want)
		}
	}
}

// Mounted in the API server, the page loads without a token (it holds no
// data) while its data needs one.
func TestServedBesideTheAPI(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Options{UI: Handler(),
		Tokens: []api.Token{{Name: "ops", Role: api.RoleAdmin, Value: "tok-6c1f"}}}))
	defer srv.Close()
	for target, want := range map[string]int{"/": 200, "/assets/js/main.js": 200, "/api/v1/pipelines": 401, "/api/v1/whoami": 401, "/nope": 404} {
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a token: %d, want %d", target, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer tok-6c1f")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"role": "admin"`) {
		t.Errorf("whoami: %d %s", resp.StatusCode, b)
	}
}
