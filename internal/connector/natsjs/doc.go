// Package natsjs is the NATS JetStream source and sink, over nats.go's
// jetstream package.
//
//	r := connector.NewRegistry()
//	natsjs.Register(r)
//	e, _ := r.Get(connector.KindSource, "nats")
//	p, _ := connector.ParamsFromYAML("stream: ORDERS\nschema: {id: int, qty: int}")
//	src, _ := e.Source(p)
//	tasks, _ := src.Plan(ctx, env)                // one task: the durable consumer
//	rd, _ := src.Open(ctx, env, tasks[0], nil)
//	b, _ := rd.Next(ctx)                          // waits for messages
//	// ... the sink commits b, then:
//	_ = rd.(connector.Acker).Ack(ctx, b.Pos)
//
// Invariants:
//
//   - The source reads a durable pull consumer with explicit acks through
//     Fetch (never the Messages iterator, which stalls under acks). A
//     message is acknowledged only by Ack, which the engine calls after the
//     sink committed the batch holding it; until then a progress
//     acknowledgement every third of ack_wait keeps it from redelivery, and
//     Close hands every message not acknowledged back to the server (NAK).
//   - A batch's position is the highest stream sequence returned so far,
//     with the stream's name and creation time. A message delivered again
//     at or below it — committed in an earlier run whose acknowledgement was
//     lost, or in flight in this one — is never returned again: it is
//     acknowledged with the next batch, which commits after the one that
//     holds it. A checkpoint of another life of the stream is ignored.
//   - The server never drops a message: the consumer has no MaxDeliver.
//     The source counts deliveries itself and sends a message delivered
//     more than max_deliver times to the dead letters, with its body, in
//     place of the steps; it is then acknowledged like any other.
//   - Memory is bounded: one Fetch asks for at most a batch, and the
//     fetching goroutine blocks while Next has not taken what it fetched,
//     asking for no more until then.
//   - The sink publishes with a Nats-Msg-Id made of the key or of the
//     record's origin, so a batch written again is stored once within the
//     stream's duplicate window. Write returns once the server acknowledged
//     every message of the batch; rows refused for their size come back in
//     a *connector.BatchError, anything else fails the batch as transient.
package natsjs
