// Package alert tells people, through webhooks, that a condition needs
// them — a failed run, a breached error budget or freshness, a quarantined
// pipeline, a refused reload, a rolled-back version — and tells them again
// when it has cleared.
//
//	n, err := alert.New(alert.Options{
//		Webhooks: []alert.Webhook{{
//			URL:     "https://hooks.example.com/backbone",
//			Headers: map[string]string{"Authorization": "Bearer " + os.Getenv("HOOK_TOKEN")},
//		}},
//		Redact: redactor.Redact,
//	})
//	if err != nil {
//		return err // *alert.ConfigError
//	}
//	defer n.Close(ctx)
//	n.Fire(alert.Alert{
//		Kind:     alert.KindFreshnessBreached,
//		Pipeline: "orders",
//		Key:      "freshness/orders",
//		Summary:  "orders: no successful run for 17m (freshness 15m)",
//		Details:  map[string]string{"last_success": "2025-06-01T10:00:00Z"},
//	})
//	…
//	n.Resolve("freshness/orders") // a run succeeded
//
// # Invariants
//
//   - Fire and Resolve never block on a webhook: they queue and return.
//     Each webhook has its own bounded queue and goroutine, so a slow or
//     dead receiver delays nobody else. When a queue is full the newest
//     notification for it is dropped, counted (Stats.Dropped) and logged;
//     the oldest are kept.
//   - A condition is identified by its key. While it lasts, firing it again
//     sends nothing, unless Options.Renotify has passed since it was last
//     sent. A queue never holds two waiting notifications of one key and
//     status: a newer one replaces the older.
//   - Resolve sends "resolved" to each webhook that was sent, or is still to
//     be sent, the firing notification: never a resolved one without its
//     firing one (a firing notification dropped from a full queue is not
//     followed by a resolved one).
//   - Delivery to one webhook is in order: a notification leaves its queue
//     only when its delivery is over, so a resolved notification never
//     overtakes its firing one, retries included.
//   - A request is retried after a network error, a timeout, 429 or 5xx,
//     with exponential backoff and jitter, waiting what Retry-After asks
//     when the receiver says (capped by Options.MaxRetryAfter); any other
//     4xx is final. Redirects are not followed. Delivery is at least once:
//     a receiver that accepted a request but timed out answering gets it
//     again, with the same id.
//   - Secrets stay out: Options.Redact is applied to every string of a body
//     and to every error text logged; webhook URLs and header values are
//     never logged nor part of an error; response bodies are never logged.
//   - Close delivers what is queued until its context is done, then
//     abandons the rest and says how many; every goroutine has ended when
//     it returns.
//
// # Body
//
// Each notification is a POST with Content-Type application/json and this
// body (version 1; new fields may be added, none is removed or renamed
// within a version):
//
//	{
//	  "version": 1,
//	  "id": "5LZ7QWUJ4NKY2UGNDO4XSNRNOB",
//	  "status": "firing",
//	  "kind": "freshness_breached",
//	  "key": "freshness/orders",
//	  "pipeline": "orders",
//	  "severity": "critical",
//	  "summary": "orders: no successful run for 17m (freshness 15m)",
//	  "details": {"last_success": "2025-06-01T10:00:00Z"},
//	  "since": "2025-06-01T10:15:00Z",
//	  "resolved_at": null,
//	  "source": "etl-1"
//	}
//
// The fields:
//
//   - version: the body's format, BodyVersion.
//   - id: random, unique per notification and the same on each retry and
//     for every webhook: a receiver can discard repeats with it.
//   - status: "firing" or "resolved".
//   - kind: run_failed, budget_breached, freshness_breached,
//     pipeline_quarantined, reload_refused, version_rolled_back, or a
//     free-form kind ("alert" when none was given).
//   - key: the condition's identity; a resolved notification has the key of
//     the firing one it ends.
//   - pipeline: the pipeline concerned, "" for daemon-wide conditions.
//   - severity: info, warning or critical.
//   - summary: one line for a person.
//   - details: string keys and values, {} when there are none.
//   - since: when the condition began (RFC 3339, UTC).
//   - resolved_at: when it cleared (RFC 3339, UTC); null while firing.
//   - source: Options.Source, "" when not set.
package alert
