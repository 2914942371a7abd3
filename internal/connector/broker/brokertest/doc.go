// Package brokertest holds the pipeline scenarios that every source of a
// message broker passes: the real engine reads the broker's stream or
// queue into a SQLite table, with a test step that fails a run on one
// record (a poison message) or that is slow. A connector's test supplies
// a Broker: how to make a stream or queue of the test's own, publish to
// it, and name it in a pipeline.
//
//	func TestPoisonMessageIsDeadLetteredAndTheStreamFlows(t *testing.T) {
//		brokertest.Poison(t, brokertest.Broker{
//			Register: natsjs.Register,
//			New: func(t testing.TB) brokertest.Target {
//				stream := createStream(t) // the connector's own way
//				return brokertest.Target{
//					Source:  "type: nats\nstream: " + stream,
//					Publish: func(t testing.TB, bodies ...[]byte) { publish(t, stream, bodies) },
//				}
//			},
//		})
//	}
//
// Invariants: each scenario works in a temporary folder of its own (the
// sink's SQLite file and the state store), stops a continuous run softly
// once the sink holds what it waits for, and fails, never hangs, when a
// run does not get there in two minutes.
package brokertest
