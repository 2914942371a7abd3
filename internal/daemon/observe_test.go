package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/state"
)

// Freshness is judged apart from errors: a pipeline whose runs succeed but
// stop happening breaches it, fires once, shows as late, degrades /readyz,
// and resolves when a run succeeds again.
func TestFreshnessBreachAndResolve(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("fresh", "freshness: 5m\n", "") // no schedule: it runs only when triggered
	h.input("fresh", "a.csv", 0, 3)
	h.d.Reload(t.Context())
	h.trigger("fresh")
	h.waitRuns("first run", func(m map[string][]state.Run) bool { return len(m["fresh"]) == 1 })
	h.idle()

	h.advance(4 * time.Minute)
	var p api.PipelineDetail
	h.call("GET", "/api/v1/pipelines/fresh", readToken, "", &p)
	if p.Late || p.Status != "healthy" {
		t.Fatalf("4 minutes after a success: late %v status %s", p.Late, p.Status)
	}
	breach := time.Now()
	h.advance(2 * time.Minute)
	a := h.hooks.wait(t, "freshness_breached", "firing")
	t.Logf("alert latency after the breach was judged: %v", time.Since(breach))
	if !strings.Contains(a["summary"].(string), "no successful run for 6m0s") {
		t.Errorf("summary %q", a["summary"])
	}
	h.call("GET", "/api/v1/pipelines/fresh", readToken, "", &p)
	if !p.Late || p.Status != "late" {
		t.Errorf("after the breach: late %v status %s, want late", p.Late, p.Status)
	}
	var rd api.Readiness
	code, body := h.call("GET", "/readyz", readToken, "", &rd)
	if code != 200 || !rd.Degraded || !strings.Contains(body, "fresh: freshness breached") {
		t.Errorf("/readyz during the breach: %d %s", code, body)
	}
	// Further checks while late send nothing more.
	h.advance(time.Minute)
	h.advance(time.Minute)
	h.input("fresh", "b.csv", 3, 6)
	h.trigger("fresh")
	h.waitRuns("second run", func(m map[string][]state.Run) bool { return len(m["fresh"]) == 1 })
	h.advance(time.Second)
	h.hooks.wait(t, "freshness_breached", "resolved")
	firing := 0
	for _, raw := range h.hooks.all() {
		if strings.Contains(raw, `"freshness_breached"`) && strings.Contains(raw, `"firing"`) {
			firing++
		}
	}
	if firing != 1 {
		t.Errorf("%d firing messages for one breach, want 1", firing)
	}
	// A metric tells the age.
	_, metrics := h.call("GET", "/metrics", readToken, "", nil)
	if !strings.Contains(metrics, `backbone_freshness_slo_seconds{pipeline="fresh"} 300`) ||
		!strings.Contains(metrics, `backbone_records_written_total{pipeline="fresh"} 6`) ||
		!strings.Contains(metrics, `backbone_step_records_out_total{pipeline="fresh",step="map[1]"} 6`) {
		t.Errorf("metrics lack the freshness objective or the written count:\n%s", grepLines(metrics, "fresh"))
	}
}

// A run in flight that makes no progress for longer than the freshness is
// a stall, caught although nothing failed.
func TestStalledRunIsLate(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("stall", "freshness: 5m\nruns: {timeout: 1h}\n", "  - chaos: {mode: hang}\n")
	h.input("stall", "a.csv", 0, 3)
	h.d.Reload(t.Context())
	// A success long ago would not matter: the stall is what is judged.
	h.trigger("stall")
	h.advance(6 * time.Minute)
	a := h.hooks.wait(t, "freshness_breached", "firing")
	if s := a["summary"].(string); !strings.Contains(s, "no successful run") && !strings.Contains(s, "no progress") {
		t.Errorf("summary %q", s)
	}
}

// The secrets of pipelines, tokens and webhook headers appear in no log
// line, API response, metric or alert body.
func TestSecretsAreNeverShown(t *testing.T) {
	const secret = "pw-71c9e0d4"
	h := newHarness(t, env{"WAREHOUSE_PASSWORD": secret}, nil)
	h.pipeline("leaky", "description: loads with ${WAREHOUSE_PASSWORD}\nruns: {retries: 0}\n", "")
	// The source path holds the secret: every error about it would too.
	h.retarget("leaky", "${DATA}/in/leaky/*.csv", "${DATA}/in/${WAREHOUSE_PASSWORD}/orders.csv")
	h.d.Reload(t.Context())
	h.trigger("leaky")
	r := h.waitRuns("failed run", func(m map[string][]state.Run) bool { return len(m["leaky"]) == 1 })["leaky"][0]
	if r.Status != state.StatusFailed {
		t.Fatalf("run %s, want failed (no such file)", r.Status)
	}
	h.hooks.wait(t, "run_failed", "firing")

	var seen strings.Builder
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/pipelines/leaky", "/api/v1/runs", "/api/v1/runs/" + r.ID,
		"/api/v1/pipelines/leaky/versions", "/api/v1/deadletters", "/metrics", "/readyz"} {
		code, body := h.call("GET", path, adminToken, "", nil)
		if code != 200 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
		seen.WriteString(body)
	}
	var vs []api.Version
	h.call("GET", "/api/v1/pipelines/leaky/versions", readToken, "", &vs)
	for _, v := range vs {
		_, body := h.call("GET", "/api/v1/pipelines/leaky/versions/"+v.Hash, readToken, "", nil)
		seen.WriteString(body)
	}
	seen.WriteString(h.logs.String())
	for _, raw := range h.hooks.all() {
		// The receiver's own copy of the Authorization header is expected:
		// it is what the daemon must send; the body must not carry it.
		seen.WriteString(strings.TrimSuffix(raw, "Bearer hook-secret-5d2e"))
	}
	all := seen.String()
	if !strings.Contains(all, "[redacted]") {
		t.Error("nothing was redacted: the test did not exercise redaction")
	}
	for _, s := range []string{secret, adminToken, readToken, "hook-secret-5d2e"} {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("secret %q shown: …%s…", s, all[max(0, i-80):min(len(all), i+40)])
		}
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// healthz answers without a token; everything else needs one.
func TestHealthWithoutToken(t *testing.T) {
	h := newHarness(t, nil, nil)
	resp, err := http.Get(h.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "ok") {
		t.Errorf("/healthz: %d %s", resp.StatusCode, b)
	}
	for _, p := range []string{"/readyz", "/metrics", "/api/v1/pipelines"} {
		if code, _ := h.call("GET", p, "", "", nil); code != 401 {
			t.Errorf("%s without a token: %d, want 401", p, code)
		}
		if code, _ := h.call("GET", p, "nope", "", nil); code != 401 {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
	}
	if code, _ := h.call("POST", "/api/v1/pipelines/x/pause", readToken, "", nil); code != 403 {
		t.Errorf("pause with a read-only token: %d, want 403", code)
	}
}
