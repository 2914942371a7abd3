// Package connectortest is the conformance suite every source and sink
// passes, against the real service or files it connects to. A connector's
// test supplies a harness that makes a fresh target in the connector's own
// way; the suite decides the rows (Schema, Rows) and checks behaviour
// through the connector contracts and the real engine only.
//
//	func TestSourceConformance(t *testing.T) {
//		connectortest.RunSource(t, connectortest.SourceHarness{
//			New: func(t testing.TB, env *connector.Env, rows []record.Row, tasks int) *connectortest.SourceTarget {
//				db := createTable(t, env, rows) // the connector's own way: SQL, files
//				return &connectortest.SourceTarget{
//					Source: func(t testing.TB) connector.Source { return buildSource(t, db) },
//					Conns:  connectortest.OpenFiles,
//				}
//			},
//		})
//	}
//
// Responsibility: what the engine relies on and no unit test of a single
// connector shows — every row read exactly once with its values; a restart
// from the position of the last acknowledged batch reads exactly the rest,
// within a task and at its end; the engine never commits a position past a
// batch its sink did not commit; Next and Open give up promptly when their
// context is cancelled; sinks stage, refuse rows one by one with a
// *connector.BatchError, make rows visible only at Commit when they say so
// (WriterInfo), keep checkpoints with their rows, store a retried batch
// once; nothing leaks (goroutines, connections, open files).
//
// Invariants of the suite:
//
//   - it adapts to what a connector declares instead of assuming: bounded
//     or unbounded sources (SourceHarness.Unbounded: a reader that never
//     returns io.EOF is read until it stays quiet), writers that are
//     transactional, once or neither (WriterInfo), sinks with or without
//     checkpoints (connector.CheckpointLoader), targets that can refuse a
//     row or not (SinkTarget.Refuse);
//   - each test makes its own target through the harness, so tests never
//     see each other's rows; the harness names it with a random suffix and
//     drops it at cleanup;
//   - the suite's own doubles (a recording sink, a source of Rows, a
//     wrapper that fails a real sink's call with a cancelled context) stand
//     for the engine's contracts, never for a service;
//   - leak checks compare counts before and after a test, once everything
//     the test opened is closed, waiting a bounded time for asynchronous
//     teardown; they never wait on a sleep for anything else.
package connectortest
