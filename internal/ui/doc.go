// Package ui is the dashboard of `backbone serve`: a small single-page
// application (HTML, CSS and JavaScript modules embedded in the binary) that
// shows every pipeline, its runs, versions and dead letters, and lets an
// admin run, backfill, pause, resume, replay and purge.
//
//	d, err := daemon.New(ctx, daemon.Options{Dir: "pipelines", UI: ui.Handler(), Tokens: tokens})
//
// Invariants:
//
//   - The page reads and changes everything through the JSON API
//     (package api), with the bearer token the user pasted, kept in the
//     tab's sessionStorage. The handler serves only static assets: it holds
//     no data and needs no token, and the API refuses a read-only token's
//     changes whatever the page shows.
//
//   - Nothing is fetched from elsewhere: no CDN, no web font, no build step.
//     The page works on a machine with no internet.
//
//   - Every response carries a strict Content-Security-Policy (scripts and
//     styles from the same origin only, no inline script, Trusted Types so
//     no string ever becomes HTML), X-Frame-Options DENY and nosniff. The
//     HTML is never cached; the other assets are revalidated by ETag, so an
//     upgraded daemon never serves a stale script.
//
//   - Text from the API (pipeline names, errors, records) is only ever put
//     in the page as text nodes, never parsed as HTML.
package ui
