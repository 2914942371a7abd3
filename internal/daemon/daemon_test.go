package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/api"
	"github.com/backbone-etl/backbone/internal/state"
)

// Healthy pipelines keep their schedule while others panic, hang and lose
// their source; the panicking one is quarantined after its failures.
func TestSchedulesAndIsolation(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("good1", "schedule: every 1m\n", "")
	h.pipeline("good2", "schedule: every 1m\n", "")
	h.pipeline("panicky", "schedule: every 1m\nruns: {retries: 0, quarantine_after: 3}\n", "  - chaos: {mode: panic}\n")
	h.pipeline("hang", "schedule: every 1m\nruns: {retries: 0, timeout: 20s, quarantine_after: 0}\n", "  - chaos: {mode: hang}\n")
	h.pipeline("gone", "schedule: every 1m\nruns: {retries: 0, quarantine_after: 0}\n", "")
	h.retarget("gone", "${DATA}/in/gone/*.csv", "${DATA}/in/gone/orders.csv")
	for _, n := range []string{"good1", "good2", "panicky", "hang"} {
		h.input(n, "a.csv", 0, 10)
	}
	h.d.Reload(t.Context())

	const minutes = 5
	for i := 1; i <= minutes; i++ {
		if i == 3 {
			h.input("good1", "b.csv", 10, 20) // new data mid-way
		}
		h.advance(time.Minute)
		h.waitRuns(fmt.Sprintf("minute %d", i), func(m map[string][]state.Run) bool {
			return len(m["good1"]) == 1 && len(m["good2"]) == 1
		})
	}
	// The healthy ones ran once per minute, each logical time once. The
	// last runs of the failing pipelines may still be finishing: wait for
	// them.
	var runs []state.Run
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if runs, err = h.d.store.Runs(t.Context(), state.RunFilter{}); err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, r := range runs {
			busy = busy || ((r.Pipeline == "panicky" || r.Pipeline == "gone") && r.Status == state.StatusRunning)
		}
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	byPipe := map[string][]state.Run{}
	for _, r := range runs {
		byPipe[r.Pipeline] = append(byPipe[r.Pipeline], r)
	}
	for _, n := range []string{"good1", "good2"} {
		seen := map[time.Time]bool{}
		for _, r := range byPipe[n] {
			if r.Status != state.StatusSucceeded || r.Trigger != state.TriggerSchedule || seen[r.LogicalTime] {
				t.Errorf("%s: unexpected run %+v", n, r)
			}
			seen[r.LogicalTime] = true
		}
		if len(byPipe[n]) != minutes {
			t.Errorf("%s ran %d times in %d minutes, want %d", n, len(byPipe[n]), minutes, minutes)
		}
	}
	if got := h.table("good1"); len(got) != 20 || got[19] != 38 {
		t.Errorf("good1 holds %d rows (row 19 = %d), want 20 (38)", len(got), got[19])
	}
	if n := len(byPipe["panicky"]); n != 3 {
		t.Errorf("panicky ran %d times, want 3 (then quarantined)", n)
	}
	for _, r := range byPipe["panicky"] {
		if r.Status != state.StatusFailed || !strings.Contains(r.Error, "chaos step panicked") {
			t.Errorf("panicky run: %s %q", r.Status, r.Error)
		}
	}
	if len(byPipe["gone"]) == 0 {
		t.Error("gone never ran")
	}
	for _, r := range byPipe["gone"] {
		if r.Status != state.StatusFailed {
			t.Errorf("gone: run %s %s, want failed", r.ID, r.Status)
		}
	}
	h.hooks.wait(t, "pipeline_quarantined", "firing")

	var ps []api.Pipeline
	if code, body := h.call("GET", "/api/v1/pipelines", readToken, "", &ps); code != 200 {
		t.Fatalf("pipelines: %d %s", code, body)
	}
	status := map[string]string{}
	for _, p := range ps {
		status[p.Name] = p.Status
	}
	for name, want := range map[string]string{"good1": "healthy", "good2": "healthy", "panicky": "quarantined", "gone": "failing"} {
		if status[name] != want {
			t.Errorf("%s: status %q, want %q (all: %v)", name, status[name], want, status)
		}
	}
	// Resume lifts the quarantine.
	if code, body := h.call("POST", "/api/v1/pipelines/panicky/resume", adminToken, "", nil); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	var p api.PipelineDetail
	h.call("GET", "/api/v1/pipelines/panicky", readToken, "", &p)
	if p.Quarantined {
		t.Error("still quarantined after resume")
	}
}

// A valid change is applied to the next run; an invalid one is refused
// with an alert while the old version keeps running; a removed file's
// pipeline stops.
func TestReload(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("orders", "schedule: every 1m\n", "")
	h.input("orders", "a.csv", 0, 5)
	h.d.Reload(t.Context())
	h.advance(time.Minute)
	first := h.waitRuns("first run", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]

	// A valid change.
	h.pipeline("orders", "schedule: every 1m\n", "  - map: {doubled: v * 3}\n")
	h.input("orders", "b.csv", 5, 10)
	h.d.Reload(t.Context())
	h.advance(time.Minute)
	second := h.waitRuns("second run", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]
	if second.ConfigHash == first.ConfigHash {
		t.Fatal("the changed version did not run")
	}
	if got := h.table("orders"); got[7] != 21 || got[2] != 4 {
		t.Errorf("rows: 2 → %d (want 4, old version), 7 → %d (want 21, new version)", got[2], got[7])
	}

	// An invalid change: refused, alerted, the old version keeps running.
	h.pipeline("orders", "schedule: every 1m\n", "  - map: {doubled: nosuchfield * 3}\n")
	h.d.Reload(t.Context())
	alert := h.hooks.wait(t, "reload_refused", "firing")
	if !strings.Contains(fmt.Sprint(alert), "nosuchfield") {
		t.Errorf("the alert does not say what is wrong: %v", alert)
	}
	var p api.PipelineDetail
	h.call("GET", "/api/v1/pipelines/orders", readToken, "", &p)
	if !strings.Contains(p.Problem, "refused") || p.Version != second.ConfigHash {
		t.Errorf("pipeline after a refused reload: problem %q, version %s (want %s)", p.Problem, p.Version, second.ConfigHash)
	}
	h.input("orders", "c.csv", 10, 12)
	h.advance(time.Minute)
	third := h.waitRuns("run after refusal", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]
	if third.ConfigHash != second.ConfigHash || third.Status != state.StatusSucceeded {
		t.Errorf("after a refused change: version %s status %s, want the previous version to succeed", third.ConfigHash, third.Status)
	}
	// Fixing the file clears the alert.
	h.pipeline("orders", "schedule: every 1m\n", "  - map: {doubled: v * 3}\n")
	h.d.Reload(t.Context())
	h.hooks.wait(t, "reload_refused", "resolved")

	// Removed: no more runs, gone from the API.
	if err := os.Remove(filepath.Join(h.dir, "orders.yaml")); err != nil {
		t.Fatal(err)
	}
	h.d.Reload(t.Context())
	h.advance(3 * time.Minute)
	select {
	case r := <-h.runs:
		t.Errorf("a removed pipeline ran: %+v", r)
	default:
	}
	if code, _ := h.call("GET", "/api/v1/pipelines/orders", readToken, "", nil); code != 404 {
		t.Errorf("removed pipeline: %d, want 404", code)
	}
}

// A new version whose first run breaches the error budget is marked bad and
// rolled back; the good version processes the same data from the same
// checkpoint, and the sink ends with exactly the good version's rows.
func TestRollbackOfABadVersion(t *testing.T) {
	h := newHarness(t, nil, nil)
	const policy = "schedule: every 1h\non_bad_version: rollback\nerrors: {max_reject_rate: 10%}\nruns: {retries: 0}\n"
	h.pipeline("orders", policy, "")
	h.input("orders", "a.csv", 0, 50)
	h.d.Reload(t.Context())
	h.trigger("orders")
	good := h.waitRuns("good run", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]
	if good.Status != state.StatusSucceeded {
		t.Fatalf("first run: %s %s", good.Status, good.Error)
	}
	cpsBefore, err := h.d.store.LoadCheckpoints(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}

	// The bad version: its mapping fails on every record.
	h.pipeline("orders", policy, "  - map: {doubled: int(\"x\" + string(v))}\n")
	h.input("orders", "b.csv", 50, 100)
	h.d.Reload(t.Context())
	h.trigger("orders")
	bad := h.waitRuns("the bad version's run", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]
	h.idle() // the restored version's run is queued as the bad one returns
	again := h.waitRuns("the restored version's run", func(m map[string][]state.Run) bool { return len(m["orders"]) == 1 })["orders"][0]
	var budget bool
	if bad.Status == state.StatusFailed && strings.Contains(bad.Error, "error budget") {
		budget = true
	}
	if !budget || bad.Written != 0 {
		t.Fatalf("bad version's run: %s written %d %q, want failed on the error budget with nothing written", bad.Status, bad.Written, bad.Error)
	}
	if again.ConfigHash != good.ConfigHash || again.Status != state.StatusSucceeded || again.Written != 50 {
		t.Fatalf("after the rollback: version %s status %s written %d, want the good version writing b.csv's 50 rows",
			again.ConfigHash, again.Status, again.Written)
	}
	alert := h.hooks.wait(t, "version_rolled_back", "firing")
	if !strings.Contains(fmt.Sprint(alert), bad.ConfigHash[:12]) {
		t.Errorf("the rollback alert does not name the bad version: %v", alert)
	}
	// Exactly the good version's rows: every id 0..99 doubled.
	got := h.table("orders")
	if len(got) != 100 {
		t.Errorf("sink holds %d rows, want 100", len(got))
	}
	for id, v := range got {
		if v != 2*id {
			t.Fatalf("row %d = %d, want %d", id, v, 2*id)
		}
	}
	if n, _ := h.d.store.CountDeadLetters(t.Context(), state.DLQFilter{Pipeline: "orders"}); n != 0 {
		t.Errorf("%d dead letters left by the rolled back version, want 0 (its records were read again)", n)
	}
	// a.csv's checkpoint was not touched by the bad run.
	cpsAfter, _ := h.d.store.LoadCheckpoints(t.Context(), "orders")
	for task, cp := range cpsBefore {
		if string(cpsAfter[task].Pos) != string(cp.Pos) || cpsAfter[task].Done != cp.Done {
			t.Errorf("checkpoint of %s moved: %v → %v", task, cp, cpsAfter[task])
		}
	}
	var vs []api.Version
	h.call("GET", "/api/v1/pipelines/orders/versions", readToken, "", &vs)
	statuses := map[string]string{}
	for _, v := range vs {
		statuses[v.Hash] = v.Status
	}
	if statuses[bad.ConfigHash] != state.VersionBad || statuses[good.ConfigHash] != state.VersionGood {
		t.Errorf("versions: %v", statuses)
	}
	var p api.PipelineDetail
	h.call("GET", "/api/v1/pipelines/orders", readToken, "", &p)
	if p.Version != good.ConfigHash || !strings.Contains(p.Problem, "rolled back") {
		t.Errorf("pipeline after rollback: version %s problem %q", p.Version, p.Problem)
	}
	// The bad file is still on disk: reloading it does not bring it back.
	h.d.Reload(t.Context())
	h.call("GET", "/api/v1/pipelines/orders", readToken, "", &p)
	if p.Version != good.ConfigHash {
		t.Error("a reload brought the bad version back")
	}
}

// SIGTERM's drain: a run in flight stops at a batch boundary and commits;
// the daemon exits within its deadline; the next daemon finishes the work
// with each row exactly once.
func TestDrainCommitsAndResumes(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("slow", "settings: {batch_rows: 100}\n", "  - chaos: {mode: slow}\n  - map: {doubled: v * 2}\n")
	h.input("slow", "a.csv", 0, 20000)
	h.d.Reload(t.Context())
	h.trigger("slow")
	// Wait until some rows are committed, then stop.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rows, _ := h.rows("slow"); len(rows) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %v", d)
	}
	r := <-h.runs
	if r.Status != state.StatusCancelled || r.Read != r.Written+r.Rejected+r.Filtered {
		t.Fatalf("drained run: %s read %d written %d, want cancelled and conserved", r.Status, r.Read, r.Written)
	}
	if n := len(h.table("slow")); int64(n) != r.Written || n == 20000 {
		t.Fatalf("sink holds %d rows, the run says %d written (want a partial load)", n, r.Written)
	}
	// A new daemon on the same state finishes the file.
	h.start(env{"DATA": h.data}, nil)
	h.trigger("slow")
	r2 := h.waitRuns("second run", func(m map[string][]state.Run) bool { return len(m["slow"]) == 1 })["slow"][0]
	if r2.Status != state.StatusSucceeded || r.Written+r2.Written != 20000 {
		t.Errorf("second run %s wrote %d after %d, want 20000 in all", r2.Status, r2.Written, r.Written)
	}
	if n := len(h.table("slow")); n != 20000 {
		t.Errorf("sink holds %d rows, want 20000", n)
	}
}

// A valid change while a run is in flight: the run finishes with the
// version it started with, conserved; the next run uses the new one.
func TestReloadUnderLoad(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.pipeline("busy", "settings: {batch_rows: 200}\n", "  - chaos: {mode: slow}\n  - map: {doubled: v * 2}\n")
	h.input("busy", "a.csv", 0, 4000)
	h.d.Reload(t.Context())
	h.trigger("busy")
	for {
		if rows, _ := h.rows("busy"); len(rows) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.pipeline("busy", "settings: {batch_rows: 200}\n", "  - chaos: {mode: slow}\n  - map: {doubled: v * 3}\n")
	h.input("busy", "b.csv", 4000, 4100)
	h.d.Reload(t.Context())
	first := h.waitRuns("the run in flight", func(m map[string][]state.Run) bool { return len(m["busy"]) == 1 })["busy"][0]
	if first.Status != state.StatusSucceeded || first.Read != first.Written+first.Rejected+first.Filtered {
		t.Fatalf("run in flight during the reload: %s read %d written %d", first.Status, first.Read, first.Written)
	}
	h.trigger("busy")
	second := h.waitRuns("the next run", func(m map[string][]state.Run) bool { return len(m["busy"]) == 1 })["busy"][0]
	if second.ConfigHash == first.ConfigHash {
		t.Fatal("the next run did not use the new version")
	}
	got := h.table("busy")
	if len(got) != int(first.Written+second.Written) {
		t.Errorf("table holds %d rows, the runs wrote %d", len(got), first.Written+second.Written)
	}
	// Each row was written by exactly one version, whole: the old version
	// took the files it had started (a.csv at least), the new one the rest.
	for id, v := range got {
		if v != 2*id && v != 3*id {
			t.Fatalf("row %d = %d: neither version's value", id, v)
		}
	}
	if got[0] != 0 || got[3999] != 2*3999 || got[4050] == 0 {
		t.Errorf("a.csv by the old version, b.csv loaded: rows 3999 → %d, 4050 → %d", got[3999], got[4050])
	}
}
