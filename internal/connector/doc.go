// Package connector holds the contracts between the engine and its
// components — Source/Reader, Sink/Writer, Lookup/Table, Step — together
// with the Spec that documents and checks each component's configuration
// and the Registry that names them.
//
// The engine, not a connector, owns ordering, acknowledgement, retries,
// checkpoints and dead letters: a source only turns a Position into batches
// and a sink only stages and commits rows.
//
//	r := connector.NewRegistry()
//	builtin.Register(r)
//	e, ok := r.Get(connector.KindSource, "csv")
package connector
