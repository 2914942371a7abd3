// Package scheduler decides when each pipeline of `backbone serve` runs, and
// keeps those runs apart: schedules, catch-up after downtime, retries,
// quarantine, timeouts, concurrency limits and leases. What a run does is
// opaque to it: it calls the Options.Run it is given with a Job (pipeline,
// logical time, trigger, attempt, fencing token), so it imports neither the
// engine nor the config, and a FakeClock with fake jobs tests all of it.
//
//	every, err := scheduler.Parse("*/5 * * * *", chicago) // *SpecError when bad
//	s, err := scheduler.New(scheduler.Options{Run: runPipeline, MaxConcurrent: 8, Hooks: hooks})
//	err = s.Set(scheduler.PipelineSpec{Name: "orders", Schedule: every, CatchUp: scheduler.CatchUpOnce,
//		Timeout: time.Hour, Retry: scheduler.RetryPolicy{Retries: 3, Jitter: 0.2}, QuarantineAfter: 5,
//		LastLogical: lastFromHistory})
//	err = s.Start(ctx)
//	…
//	job, err := s.Trigger("orders", scheduler.TriggerManual, time.Time{})
//	…
//	err = s.Drain(shutdownCtx) // no new runs; runs in flight stop softly and commit
//
// # Invariants
//
//   - Logical times. A run's logical time is a fire time of its schedule (or
//     the time given to Trigger), never the time it happened to start; every
//     attempt of a run has the same one. Schedules are evaluated in their
//     zone: across daylight saving time, a wall time that does not exist
//     does not fire and one that happens twice fires twice, as robfig/cron
//     does (see Parse); `every` intervals are aligned to the Unix epoch.
//   - Each fire time is decided once. A pipeline's fire times are decided in
//     order: each runs or is reported skipped (Hooks.Skipped), and none is
//     decided again — a clock that jumps back reruns nothing; the next run is
//     the next fire time after the last one decided.
//   - Catch-up. Fire times missed while a pipeline could not start — the
//     daemon down (known from LastLogical), the pipeline paused, quarantined
//     or busy with its previous run, the clock jumping forward — follow its
//     CatchUp policy (see Due): skip them, run the latest once, or run them
//     all, oldest first, up to Limits.MaxCatchUp. A pipeline that never ran
//     misses nothing before it was first scheduled. A job waiting only for
//     the global limit is not missed: it was decided on time and starts when
//     a slot frees, first come first served.
//   - No overlap. At most Concurrency runs of a pipeline are in flight (1 by
//     default: never two), counting a pending retry, a run of the previous
//     version of a reloaded pipeline (Set), a run of a removed one added
//     again, and a stuck run. A manual or backfill trigger of a busy pipeline
//     is queued, not refused, and starts after the run in flight (manual jobs
//     before scheduled ones, backfills after them). Across processes, an
//     optional Lease with a fencing token does the same.
//   - Isolation. A panic in Run is recovered into a failed attempt with its
//     stack (*PanicError). At its Timeout an attempt's context is cancelled
//     (soft: finish the batches in flight and commit); half of Options.Grace
//     later its hard context (see Hard); at the end of Grace, if Run has not
//     returned, the attempt is declared stuck: it gives back its global slot,
//     so that hung runs cannot starve other pipelines, but keeps its
//     pipeline's slot, so that its pipeline never overlaps a run that may
//     still write. Each pipeline's fire times, retries and failures are its
//     own: one pipeline failing, hanging or crash-looping does not move
//     another's schedule.
//   - Retries and quarantine. A failed attempt is retried after an
//     exponential backoff with jitter, up to RetryPolicy.Retries times; the
//     run holds its pipeline's slot meanwhile. A run that failed its last
//     attempt counts as a failure; QuarantineAfter failures in a row pause
//     the pipeline (quarantined) until Resume. A run stopped by Drain is
//     neither a failure nor retried.
//   - Ownership. Every goroutine the scheduler starts is one attempt's, and
//     Drain waits for it (up to its context's deadline); timers are those of
//     the Clock, so that a FakeClock drives everything — fire times,
//     backoffs, timeouts, lease renewals — in tests without a sleep.
//
// # Testing with a FakeClock
//
// Move the clock one step at a time (Advance lets time pass through each
// timer; Set jumps like a wall clock), then call WaitIdle, which returns
// once every run has returned and the scheduler has nothing left to do at
// that time. When some runs block on purpose, Settle waits for the rest of
// that state, every attempt in flight being inside Run; since it cannot
// know that a Run is about to return, such a test also counts its runs
// (RunStarted, RunFinished), as the package's own tests do.
package scheduler
