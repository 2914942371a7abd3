package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/state"
)

// chromiumPath finds a headless-capable Chromium. Without one the browser
// tests skip, except in CI, where .ci/run installs Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium): skipping the browser tests")
	return ""
}

// artifacts is where screenshots go: $BACKBONE_ARTIFACTS/ui, or a
// temporary folder.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BACKBONE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab on the dashboard, 1366x768, that
// records uncaught exceptions and policy violations of the page.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, exe, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1366, 768))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, base: base, dir: artifacts(t)}
	start, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// The first action starts the browser; its life is bound to ctx, not to
	// this timeout (see chromedp's doc on the first Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	if err := chromedp.Do(start, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			text := m.String()
			if m.IsException() || strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Trusted Type") {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions, failing the test on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage problems: %v", what, err, b.pageProblems())
	}
}

// eval evaluates a JavaScript expression into T; promises are awaited.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript condition on the page. The page updates on
// its own (polling the API), so the test polls the page: DevTools
// evaluation, as chromedp's own Poll would inject a predicate through
// new Function, which the page's policy refuses.
func (b *browser) until(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	expr := "(() => { try { return !!(" + cond + "); } catch (e) { return false; } })()"
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: not true after 30s (%v): %s\npage problems: %v\npage text:\n%s",
				what, err, cond, b.pageProblems(), eval[string](b, "document.querySelector('main').innerText.slice(0, 3000)"))
		}
		<-tick.C
	}
}

// go sets the page's route (the fragment), as a click on a link does.
func (b *browser) goTo(route string) {
	b.t.Helper()
	eval[string](b, "location.hash = "+js(route))
}

// confirm accepts the confirmation dialog that the last click opened.
func (b *browser) confirm() {
	b.t.Helper()
	b.until("the confirmation dialog", "document.getElementById('confirm').open")
	b.do("confirming", chromedp.Click(chromedp.ID("confirm-ok")))
	b.until("the dialog to close", "!document.getElementById('confirm').open")
}

// shot saves a screenshot: the whole page, or with viewport only what a
// 1366x768 screen shows.
func (b *browser) shot(name string, viewport bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	act := chromedp.FullScreenshot(100) // quality 100: PNG
	if viewport {
		act = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(ctx, act)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// use makes the helpers report to t, a subtest.
func (b *browser) use(t *testing.T) {
	b.t = t
}

func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.until("the sign-in form", "document.getElementById('token')")
	b.setValue("token", "")
	b.do("signing in", chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin")))
}

// setValue sets an input's value as typing would (chromedp's SetValue
// insists on reading back the same string, which a datetime input
// normalizes).
func (b *browser) setValue(id, v string) {
	b.t.Helper()
	eval[string](b, fmt.Sprintf(`(() => { const e = document.getElementById(%s); e.value = %s;
		e.dispatchEvent(new Event('input', {bubbles: true})); return e.value })()`, js(id), js(v)))
}

// a11yCheck lists what the page shown breaks of the basics: a form
// control without a label, a button or link without a name, a chart
// without a text alternative, a column header without its scope, a
// duplicate id, and text whose contrast with its background is under
// WCAG AA's 4.5:1.
const a11yCheck = `(() => {
  const problems = [];
  const shown = e => e.getClientRects().length > 0 && !e.closest('[hidden]');
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')) problems.push('unlabelled control ' + (e.id || e.name || e.type));
  }
  for (const e of document.querySelectorAll('button, a[href]')) {
    if (shown(e) && !(e.textContent.trim() || e.getAttribute('aria-label'))) problems.push('a button or link without a name: ' + e.outerHTML.slice(0, 80));
  }
  for (const e of document.querySelectorAll('main svg')) {
    if (!e.getAttribute('aria-label')) problems.push('a chart without aria-label');
  }
  for (const e of document.querySelectorAll('thead th')) {
    if (e.getAttribute('scope') !== 'col') problems.push('a column header without scope: ' + e.textContent);
  }
  const ids = new Set();
  for (const e of document.querySelectorAll('[id]')) {
    if (ids.has(e.id)) problems.push('duplicate id ' + e.id);
    ids.add(e.id);
  }
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = c => {
    const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor, v = rgb(c);
      if (v.length === 3 || (v.length === 4 && v[3] === 1)) return c;
    }
    return 'rgb(255, 255, 255)';
  };
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('svg') || !shown(e)) continue;
    if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const fg = getComputedStyle(e).color, bg = background(e);
    const a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' of "' + e.textContent.trim().slice(0, 40) + '" (' + fg + ' on ' + bg + ')');
  }
  return problems;
})()`

// accessible fails the test with what the page shown breaks of a11yCheck.
func (b *browser) accessible(page string) {
	b.t.Helper()
	if ps := eval[[]string](b, a11yCheck); len(ps) > 0 {
		b.t.Errorf("%s: %d accessibility problems:\n%s", page, len(ps), strings.Join(ps[:min(len(ps), 20)], "\n"))
	}
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// row is the overview's row of a pipeline.
func row(name string) string {
	return fmt.Sprintf("[...document.querySelectorAll('#pipelines tbody tr')].find(r => r.dataset.pipeline === %s)", js(name))
}

// The dashboard against a real daemon: the overview tells a failing and a
// late pipeline apart from healthy ones and updates without a reload; the
// pages work from the keyboard and pass an accessibility check; an admin
// runs, backfills, pauses and resumes from the pipeline page, sees the
// diff of two versions, a run's counts and rejects, replays dead letters
// that then load and purges one; a read-only token sees no change button
// and is refused by the API when it tries anyway.
func TestDashboardInABrowser(t *testing.T) {
	exe := chromiumPath(t)
	s := serve(t)
	s.pipeline("healthy", "", "")
	s.input("healthy", "a.csv", 0, 5)
	s.pipeline("broken", "errors: {max_reject_rate: 0}\nruns: {retries: 0}\n",
		"  - validate: [{check: \"v < 0\", message: \"v must be negative\"}]\n")
	s.input("broken", "a.csv", 0, 3)
	s.pipeline("stale", "freshness: 1s\n", "")
	s.pipeline("rejects", "", "  - validate: [{check: \"v % 2 == 0\", message: \"v must be even\"}]\n")
	s.input("rejects", "a.csv", 0, 10)
	long := strings.Repeat("a_long_pipeline_name_", 6)[:120]
	s.pipeline(long, "", "")
	// 200 pipelines in all: the overview must stay usable.
	for i := range 195 {
		s.pipeline(fmt.Sprintf("bulk_%03d", i), "", "")
	}
	s.reload()
	if r := s.trigger("healthy"); r.Status != state.StatusSucceeded || r.Written != 5 {
		t.Fatalf("healthy's first run: %s written %d %s", r.Status, r.Written, r.Error)
	}
	if r := s.trigger("broken"); r.Status != state.StatusFailed {
		t.Fatalf("broken's run: %s %s, want failed", r.Status, r.Error)
	}

	b := newBrowser(t, exe, s.url)
	b.do("opening the dashboard", chromedp.Navigate(s.url+"/"))

	t.Run("an unknown token is refused", func(t *testing.T) {
		b.use(t)
		s.use(t)
		b.signIn("not-a-token")
		b.until("the refusal", "document.getElementById('login-error').textContent.includes('does not know this token')")
		b.accessible("sign-in")
		b.shot("signin", true)
	})

	t.Run("overview", func(t *testing.T) {
		b.use(t)
		s.use(t)
		b.signIn(adminToken)
		b.until("200 pipelines", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 200")
		b.until("broken shown as failing", row("broken")+".querySelector('td.status').textContent.trim() === 'failing'")
		b.until("stale shown as late", row("stale")+".dataset.status === 'late' && "+row("stale")+".querySelector('td.fresh').textContent.includes('late')")
		b.until("healthy shown as healthy with its run in the chart",
			row("healthy")+".dataset.status === 'healthy' && "+row("healthy")+".querySelectorAll('td.spark svg rect').length === 1")
		if first := eval[string](b, "document.querySelector('#pipelines tbody tr').dataset.pipeline"); first != "broken" {
			t.Errorf("first row %q: a failing pipeline comes first", first)
		}
		// Times in the viewer's zone, the UTC value on hover.
		if title := eval[string](b, row("healthy")+".querySelector('td.last time').title"); !strings.HasPrefix(title, "UTC ") || !strings.HasSuffix(title, "Z") {
			t.Errorf("last run's title %q, want the UTC time", title)
		}
		// 1366 pixels wide: nothing overflows, a 120-character name is cut
		// with its full text in the title.
		if !eval[bool](b, "document.documentElement.scrollWidth <= window.innerWidth") {
			t.Errorf("the overview is wider than the window: %v > %v",
				eval[float64](b, "document.documentElement.scrollWidth"), eval[float64](b, "window.innerWidth"))
		}
		if !eval[bool](b, fmt.Sprintf("(() => { const a = %s.querySelector('a.name'); return a.title === %s && a.scrollWidth > a.clientWidth })()", row(long), js(long))) {
			t.Error("the long name is not truncated with its full text in the title")
		}

		// Live: a run that happens while the page is open shows up
		// without a reload.
		eval[bool](b, "window.__sameDocument = true")
		if r := s.trigger("rejects"); r.Status != state.StatusSucceeded || r.Written != 5 || r.Rejected != 5 {
			t.Fatalf("rejects' run: %s written %d rejected %d %s", r.Status, r.Written, r.Rejected, r.Error)
		}
		b.until("rejects' run on the overview",
			row("rejects")+".dataset.status === 'healthy' && "+row("rejects")+".querySelector('td.num').textContent === '50%'")
		if !eval[bool](b, "window.__sameDocument === true") {
			t.Error("the page reloaded to show the update")
		}
		b.accessible("overview")
		b.shot("overview", true)
	})

	t.Run("keyboard", func(t *testing.T) {
		b.use(t)
		s.use(t)
		// A fresh load: the token is still in the tab, the focus nowhere.
		b.do("reloading", chromedp.Reload())
		b.until("the overview", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 200")
		b.do("tab", chromedp.KeyEvent("\t"))
		if !eval[bool](b, `document.activeElement.classList.contains('skip') && document.activeElement.getBoundingClientRect().left >= 0`) {
			t.Fatalf("the first Tab reaches %s, want the visible skip link", eval[string](b, "document.activeElement.outerHTML.slice(0, 80)"))
		}
		if !eval[bool](b, `(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle === 'solid' && parseFloat(s.outlineWidth) >= 2 })()`) {
			t.Error("the focused skip link shows no focus outline")
		}
		route := eval[string](b, "location.hash")
		b.do("enter", chromedp.KeyEvent("\r"))
		if !eval[bool](b, `document.activeElement.id === 'main' && location.hash === `+js(route)) {
			t.Errorf("the skip link leads to %q with the route %q", eval[string](b, "document.activeElement.id"), eval[string](b, "location.hash"))
		}
		b.do("tab to the filter", chromedp.KeyEvent("\t"))
		if id := eval[string](b, "document.activeElement.id"); id != "filter-text" {
			t.Fatalf("Tab from the content reaches #%s, want the name filter", id)
		}
		b.do("typing a filter", chromedp.KeyEvent("bulk_00"))
		b.until("the filtered rows", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 10 && document.querySelector('#overview-caption').textContent === '10 of 200 pipelines shown'")
		b.setValue("filter-text", "")
		b.until("every row again", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 200")

		// The focus survives a live refresh.
		eval[string](b, `(() => { document.querySelector('a[data-key="p:healthy"]').focus(); return '' })()`)
		stamp := eval[string](b, "document.getElementById('updated').textContent")
		b.until("a refresh", "document.getElementById('updated').textContent !== "+js(stamp))
		if key := eval[string](b, "document.activeElement.dataset.key || ''"); key != "p:healthy" {
			t.Errorf("after a refresh the focus is on %q, want the link it was on", key)
		}

		// Enter follows the link; the new page's heading takes the focus.
		b.do("enter", chromedp.KeyEvent("\r"))
		b.until("the pipeline page", "document.getElementById('run-now')")
		if tag := eval[string](b, "document.activeElement.tagName + ':' + document.activeElement.textContent"); !strings.HasPrefix(tag, "H1:healthy") {
			t.Errorf("after navigating the focus is on %s, want the heading", tag)
		}
		// A confirmation opens on Cancel and closes with Escape, giving
		// the focus back and changing nothing.
		runs := len(s.runsOf("healthy"))
		eval[string](b, `(() => { document.getElementById('run-now').focus(); return '' })()`)
		b.do("enter", chromedp.KeyEvent("\r"))
		b.until("the dialog", "document.getElementById('confirm').open")
		if id := eval[string](b, "document.activeElement.id"); id != "confirm-cancel" {
			t.Errorf("the dialog opens with the focus on #%s, want Cancel", id)
		}
		b.accessible("confirmation dialog")
		b.do("escape", chromedp.KeyEvent(kb.Escape))
		b.until("the dialog closed", "!document.getElementById('confirm').open")
		if id := eval[string](b, "document.activeElement.id"); id != "run-now" {
			t.Errorf("after Escape the focus is on #%s, want Run now", id)
		}
		if msg := eval[string](b, "document.getElementById('status').textContent"); msg != "" || len(s.runsOf("healthy")) != runs {
			t.Errorf("a cancelled confirmation acted: %q", msg)
		}
	})

	t.Run("line diff", func(t *testing.T) {
		b.use(t)
		var twenty, changed []string
		for i := 1; i <= 20; i++ {
			twenty = append(twenty, fmt.Sprint(i))
			changed = append(changed, fmt.Sprint(i))
		}
		changed[9] = "ten"
		tests := []struct {
			name, a, b, want string
			fold             bool // through hunks, as the page shows it
		}{
			{"same", "x\ny\n", "x\ny\n", "  x|  y", false},
			{"added at the end", "x\n", "x\ny\n", "  x|+ y", false},
			{"removed at the start", "x\ny\n", "y\n", "- x|  y", false},
			{"changed in the middle", "a\nb\nc\n", "a\nB\nc\n", "  a|- b|+ B|  c", false},
			{"from nothing", "", "a\n", "+ a", false},
			{"to nothing", "a\nb", "", "- a|- b", false},
			{"a line moved", "a\nb\nc\n", "b\nc\na\n", "- a|  b|  c|+ a", false},
			{"no final newline", "a\nb", "a\nb\n", "  a|  b", false},
			{"long unchanged runs fold", strings.Join(twenty, "\n"), strings.Join(changed, "\n"),
				"… 6|  7|  8|  9|- 10|+ ten|  11|  12|  13|… 7", true},
			{"nothing changed folds whole", "a\nb\nc\n", "a\nb\nc\n", "… 3", true},
		}
		for _, tt := range tests {
			fold := "d => d"
			if tt.fold {
				fold = "m.hunks"
			}
			got := eval[string](b, fmt.Sprintf(`import('/assets/js/diff.js').then(m =>
				(%s)(m.lineDiff(%s, %s)).map(d => d.op === '…' ? '… ' + d.count : d.op + ' ' + d.text).join('|'))`, fold, js(tt.a), js(tt.b)))
			if got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			}
		}
	})

	t.Run("pipeline: run now, backfill, pause and resume", func(t *testing.T) {
		b.use(t)
		s.use(t)
		b.goTo("#/")
		b.until("the overview", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 200")
		b.do("opening healthy", chromedp.Click(chromedp.CSS(`#pipelines a[data-key="p:healthy"]`)))
		b.until("the pipeline page", "document.getElementById('actions') && document.querySelectorAll('#runs tbody tr').length === 1")
		before := len(s.runsOf("healthy"))

		b.do("run now", chromedp.Click(chromedp.ID("run-now")))
		b.confirm()
		if r := s.waitRun("healthy"); r.Trigger != state.TriggerManual {
			t.Errorf("run now made a %s run, want manual", r.Trigger)
		}
		b.until("the new run in the table", "document.querySelectorAll('#runs tbody tr').length === 2")
		if n := len(s.runsOf("healthy")); n != before+1 {
			t.Errorf("%d runs after run now, want %d", n, before+1)
		}

		b.setValue("bf-from", "2026-01-01T00:00:00")
		b.setValue("bf-to", "2026-01-01T00:00:00")
		b.do("backfill", chromedp.Click(chromedp.ID("backfill")))
		b.confirm()
		r := s.waitRun("healthy")
		want, err := time.Parse(time.RFC3339, eval[string](b, "new Date('2026-01-01T00:00:00').toISOString()"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Trigger != state.TriggerBackfill || !r.LogicalTime.Equal(want) {
			t.Errorf("backfill made a %s run at %v, want a backfill at %v (the viewer's midnight)", r.Trigger, r.LogicalTime, want)
		}

		b.do("pause", chromedp.Click(chromedp.ID("pause")))
		b.confirm()
		b.until("paused", "document.querySelector('#pipeline-status').textContent === 'paused' && document.getElementById('resume')")
		var p api.PipelineDetail
		s.call("GET", "/api/v1/pipelines/healthy", readToken, &p)
		if !p.Paused {
			t.Error("the API does not show the pipeline paused")
		}
		b.shot("pipeline-paused", false)
		b.do("resume", chromedp.Click(chromedp.ID("resume")))
		b.confirm()
		b.until("resumed", "document.querySelector('#pipeline-status').textContent !== 'paused' && document.getElementById('pause')")
		s.call("GET", "/api/v1/pipelines/healthy", readToken, &p)
		if p.Paused {
			t.Error("the API still shows the pipeline paused")
		}
		b.until("every run in the table", "document.querySelectorAll('#runs tbody tr').length === 3 && document.querySelectorAll('#run-charts svg').length === 3")
		b.accessible("pipeline")
		b.shot("pipeline", false)
	})

	t.Run("pipeline: diff of two versions", func(t *testing.T) {
		b.use(t)
		s.use(t)
		s.pipeline("broken", "errors: {max_reject_rate: 0}\nruns: {retries: 0}\n",
			"  - validate: [{check: \"v >= 0\", message: \"v must not be negative\"}]\n")
		s.reload()
		if r := s.trigger("broken"); r.Status != state.StatusSucceeded || r.Written != 3 {
			t.Fatalf("the fixed version's run: %s written %d %s", r.Status, r.Written, r.Error)
		}
		b.goTo("#/pipelines/broken")
		b.until("two versions to compare", "document.getElementById('diff-form') && document.querySelectorAll('#versions tbody tr').length === 2")
		b.do("compare", chromedp.Click(chromedp.ID("compare")))
		b.until("the diff", "document.getElementById('diff')")
		del := eval[[]string](b, "[...document.querySelectorAll('#diff .del')].map(e => e.textContent)")
		add := eval[[]string](b, "[...document.querySelectorAll('#diff .add')].map(e => e.textContent)")
		if len(del) != 1 || !strings.Contains(del[0], `check: "v < 0"`) || !strings.HasPrefix(del[0], "- ") ||
			len(add) != 1 || !strings.Contains(add[0], `check: "v >= 0"`) || !strings.HasPrefix(add[0], "+ ") {
			t.Errorf("diff: removed %q, added %q; want the one changed line", del, add)
		}
		if st := eval[string](b, "document.querySelector('#pipeline-status').textContent"); st != "healthy" {
			t.Errorf("after the fix: %s, want healthy", st)
		}
		b.accessible("pipeline-diff")
		b.shot("pipeline-diff", false)
	})

	t.Run("run page", func(t *testing.T) {
		b.use(t)
		s.use(t)
		var runs []api.Run
		s.call("GET", "/api/v1/pipelines/rejects/runs", readToken, &runs)
		if len(runs) != 1 {
			t.Fatalf("rejects has %d runs, want 1", len(runs))
		}
		b.goTo("#/runs/" + runs[0].ID)
		b.until("the run's dead letters", "document.querySelectorAll('#deadletters tbody tr').length === 5")
		counts := eval[[]string](b, "[...document.querySelectorAll('#counts div')].map(d => d.querySelector('dt').textContent + '=' + d.querySelector('dd').textContent)")
		for _, want := range []string{"Read=10", "Written=5", "Rejected=5", "Filtered=0"} {
			if !slices.Contains(counts, want) {
				t.Errorf("counts %v lack %s", counts, want)
			}
		}
		if !strings.HasSuffix(eval[string](b, "document.querySelector('#counts div:last-child dd').textContent"), "rows/s") {
			t.Error("no throughput")
		}
		steps := eval[[]string](b, "[...document.querySelectorAll('#rejects-by-step tbody tr')].map(r => r.cells[0].textContent + '=' + r.cells[1].textContent)")
		if len(steps) != 1 || !strings.HasPrefix(steps[0], "validate") || !strings.HasSuffix(steps[0], "=5") {
			t.Errorf("rejects by step %v, want the validate step with 5", steps)
		}
		if errs := eval[[]string](b, "[...document.querySelectorAll('#deadletters .dl-error')].map(e => e.textContent)"); len(errs) != 5 || !strings.Contains(errs[0], "v must be even") {
			t.Errorf("dead letter errors %q", errs)
		}
		b.accessible("run")
		b.shot("run", false)
	})

	t.Run("dead letters: replay a selection after a fix", func(t *testing.T) {
		b.use(t)
		s.use(t)
		s.pipeline("rejects", "", "  - validate: [{check: \"v >= 0\", message: \"v must not be negative\"}]\n")
		s.reload()
		var page api.DeadLetterPage
		s.call("GET", "/api/v1/deadletters?pipeline=rejects", readToken, &page)
		if page.Total != 5 {
			t.Fatalf("%d dead letters of rejects, want 5", page.Total)
		}
		var chosen []int64
		for _, d := range page.Items {
			if d.Record == "1,1" || d.Record == "3,3" || d.Record == "5,5" {
				chosen = append(chosen, d.ID)
			}
		}
		if len(chosen) != 3 {
			t.Fatalf("records %v: want 1,1 3,3 and 5,5 among them", page.Items)
		}
		b.goTo("#/deadletters?pipeline=rejects")
		b.until("the filtered dead letters", "document.querySelectorAll('#deadletters tbody tr').length === 5 && document.getElementById('f-pipeline').value === 'rejects'")
		for _, id := range chosen {
			b.do("selecting a dead letter", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#deadletters tr[data-id="%d"] input.dl-select`, id))))
		}
		b.until("three selected", "document.getElementById('replay-selected').textContent === 'Replay selected (3)'")
		b.accessible("deadletters")
		b.shot("deadletters", false)
		b.do("replay", chromedp.Click(chromedp.ID("replay-selected")))
		b.confirm()
		b.until("the replay's outcome", "document.getElementById('status').textContent.startsWith('Replayed 3: 3 written, 3 removed')")
		b.until("the two left", "document.querySelectorAll('#deadletters tbody tr').length === 2")
		got := s.rows("rejects")
		for _, id := range []int64{0, 1, 2, 3, 4, 5, 6, 8} {
			if got[id] != 2*id {
				t.Errorf("row %d = %d after the replay, want %d", id, got[id], 2*id)
			}
		}
		if len(got) != 8 {
			t.Errorf("%d rows in rejects' table, want 8 (5 loaded, 3 replayed): %v", len(got), got)
		}

		// Purge one of the two left: it is gone, the other stays.
		purged := eval[string](b, "document.querySelector('#deadletters tbody tr').dataset.id")
		b.do("selecting one", chromedp.Click(chromedp.CSS(`#deadletters tr[data-id="`+purged+`"] input.dl-select`)))
		b.do("purge", chromedp.Click(chromedp.ID("purge-selected")))
		b.confirm()
		b.until("the purge's outcome", "document.getElementById('status').textContent === 'Purged 1 dead letter(s).'")
		b.until("one left", "document.querySelectorAll('#deadletters tbody tr').length === 1")
		if code, _ := s.call("GET", "/api/v1/deadletters/"+purged, readToken, nil); code != 404 {
			t.Errorf("the purged dead letter %s answers %d, want 404", purged, code)
		}
	})

	t.Run("read-only token", func(t *testing.T) {
		b.use(t)
		s.use(t)
		b.do("signing out", chromedp.Click(chromedp.ID("signout")))
		b.signIn(readToken)
		b.until("signed in", "document.body.dataset.role === 'read'")
		b.goTo("#/")
		b.until("the overview", "document.querySelectorAll('#pipelines tbody tr[data-pipeline]').length === 200")
		if who := eval[string](b, "document.getElementById('who-name').textContent"); who != "viewer (read-only)" {
			t.Errorf("signed in as %q", who)
		}
		b.accessible("overview-readonly")
		b.shot("overview-readonly", true)

		b.goTo("#/pipelines/healthy")
		b.until("the pipeline page", "document.querySelectorAll('#runs tbody tr').length === 3")
		if n := eval[int](b, "document.querySelectorAll('#actions, #run-now, #pause, #resume, #backfill, #backfill-form').length"); n != 0 {
			t.Errorf("a read-only token sees %d change controls on the pipeline page", n)
		}
		b.accessible("pipeline-readonly")
		b.shot("pipeline-readonly", false)

		b.goTo("#/deadletters?pipeline=rejects")
		b.until("the dead letters", "document.querySelectorAll('#deadletters tbody tr').length === 1")
		if n := eval[int](b, "document.querySelectorAll('#dlq-actions, #select-all, input.dl-select, #replay-selected, #purge-selected').length"); n != 0 {
			t.Errorf("a read-only token sees %d change controls on the dead letters page", n)
		}
		b.accessible("deadletters-readonly")
		b.shot("deadletters-readonly", false)

		// Asked anyway, with the tab's own token, the API refuses.
		runsBefore := len(s.runsOf("healthy"))
		for path, body := range map[string]string{
			"/api/v1/pipelines/healthy/trigger": "",
			"/api/v1/pipelines/healthy/pause":   "",
			"/api/v1/deadletters/replay":        `{"pipeline":"rejects"}`,
			"/api/v1/deadletters/purge":         `{"pipeline":"rejects"}`,
		} {
			code := eval[int](b, fmt.Sprintf(`fetch(%s, {method: 'POST', body: %s || undefined,
				headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + sessionStorage.getItem('backbone.token')}}).then(r => r.status)`,
				js(path), js(body)))
			if code != 403 {
				t.Errorf("POST %s with the read-only token: %d, want 403", path, code)
			}
		}
		if n := len(s.runsOf("healthy")); n != runsBefore {
			t.Errorf("healthy has %d runs after refused triggers, had %d", n, runsBefore)
		}
		var p api.PipelineDetail
		s.call("GET", "/api/v1/pipelines/healthy", readToken, &p)
		var page api.DeadLetterPage
		s.call("GET", "/api/v1/deadletters?pipeline=rejects", readToken, &page)
		if p.Paused || page.Total != 1 {
			t.Errorf("after refused changes: paused %v, %d dead letters (want not paused, 1)", p.Paused, page.Total)
		}
	})

	if ps := b.pageProblems(); len(ps) > 0 {
		t.Errorf("the page threw or broke its policy:\n%s", strings.Join(ps, "\n"))
	}
}
