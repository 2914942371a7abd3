package alert

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// BodyVersion is the version of the JSON body a webhook receives. It changes
// only when a field is removed or changes meaning; new fields may be added
// within a version, so receivers should ignore fields they do not know.
const BodyVersion = 1

// Kind names the condition an alert is about. The constants are the kinds
// Backbone raises itself; any other non-empty string is accepted as a
// free-form kind.
type Kind string

// Kinds raised by Backbone.
const (
	KindRunFailed           Kind = "run_failed"
	KindBudgetBreached      Kind = "budget_breached"
	KindFreshnessBreached   Kind = "freshness_breached"
	KindPipelineQuarantined Kind = "pipeline_quarantined"
	KindReloadRefused       Kind = "reload_refused"
	KindVersionRolledBack   Kind = "version_rolled_back"

	// KindOther is used when an alert is fired without a kind.
	KindOther Kind = "alert"
)

// Severity tells a receiver how urgently a person should look.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// DefaultSeverity is the severity of an alert fired without one: critical
// for conditions that mean data is not arriving, warning otherwise.
func DefaultSeverity(k Kind) Severity {
	switch k {
	case KindFreshnessBreached, KindPipelineQuarantined, KindBudgetBreached:
		return SeverityCritical
	default:
		return SeverityWarning
	}
}

// Status is the state of a condition as a notification reports it.
type Status string

// Statuses.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one condition that a person should know about.
type Alert struct {
	// Kind is what happened; empty means KindOther.
	Kind Kind
	// Pipeline is the pipeline concerned, empty for daemon-wide conditions.
	Pipeline string
	// Key identifies the condition for deduplication and resolution, for
	// example "freshness/orders". Empty means Kind + "/" + Pipeline (or Kind
	// alone when Pipeline is empty).
	Key string
	// Severity is empty for DefaultSeverity(Kind).
	Severity Severity
	// Summary is one line for a person.
	Summary string
	// Details carries the facts behind the summary (run ID, reject rate,
	// last success...). Values are strings so that every one of them goes
	// through redaction.
	Details map[string]string
	// Since is when the condition began; zero means when Fire was called.
	// Firing an active key again keeps the first Since.
	Since time.Time
	// Status is set by the Notifier: Fire ignores it; Active reports
	// StatusFiring.
	Status Status
}

// normalize fills the defaults documented on Alert and copies Details, so
// that a caller reusing its map after Fire cannot change a pending alert.
func (a Alert) normalize(now time.Time) Alert {
	if a.Kind == "" {
		a.Kind = KindOther
	}
	if a.Key == "" {
		a.Key = string(a.Kind)
		if a.Pipeline != "" {
			a.Key += "/" + a.Pipeline
		}
	}
	if a.Severity == "" {
		a.Severity = DefaultSeverity(a.Kind)
	}
	// A time JSON cannot represent (outside years 0-9999) would make the
	// body impossible to encode: take it as unknown.
	if a.Since.IsZero() || a.Since.Year() < 0 || a.Since.Year() > 9999 {
		a.Since = now
	}
	a.Details = maps.Clone(a.Details)
	a.Status = StatusFiring
	return a
}

// body is the JSON a webhook receives; doc.go documents every field. The
// field names are part of the product's interface: never rename one.
type body struct {
	Version    int               `json:"version"`
	ID         string            `json:"id"`
	Status     Status            `json:"status"`
	Kind       string            `json:"kind"`
	Key        string            `json:"key"`
	Pipeline   string            `json:"pipeline"`
	Severity   string            `json:"severity"`
	Summary    string            `json:"summary"`
	Details    map[string]string `json:"details"`
	Since      time.Time         `json:"since"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	Source     string            `json:"source"`
}

// encode builds the body of one notification. Every string that came from
// the caller goes through redact; the ID is random rather than derived from
// the key so that it cannot carry a secret past redaction.
func encode(a Alert, status Status, at time.Time, source string, redact func(string) string) []byte {
	b := body{
		Version:  BodyVersion,
		ID:       rand.Text(),
		Status:   status,
		Kind:     redact(string(a.Kind)),
		Key:      redact(a.Key),
		Pipeline: redact(a.Pipeline),
		Severity: redact(string(a.Severity)),
		Summary:  redact(a.Summary),
		Details:  make(map[string]string, len(a.Details)),
		Since:    a.Since.UTC(),
		Source:   redact(source),
	}
	// Sorted so that two keys that redact to the same text resolve the
	// same way on every run.
	for _, k := range slices.Sorted(maps.Keys(a.Details)) {
		b.Details[redact(k)] = redact(a.Details[k])
	}
	if status == StatusResolved {
		t := at.UTC()
		b.ResolvedAt = &t
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Receivers show summaries to people: keep "<", ">" and "&" readable.
	enc.SetEscapeHTML(false)
	// body holds only strings, ints and times: Encode cannot fail.
	_ = enc.Encode(b)
	return buf.Bytes()
}
