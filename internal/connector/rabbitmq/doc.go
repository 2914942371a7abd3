// Package rabbitmq is the RabbitMQ source and sink, over amqp091-go.
//
//	r := connector.NewRegistry()
//	rabbitmq.Register(r)
//	e, _ := r.Get(connector.KindSource, "rabbitmq")
//	p, _ := connector.ParamsFromYAML("queue: orders\nschema: {id: int, qty: int}")
//	src, _ := e.Source(p)
//	tasks, _ := src.Plan(ctx, env)                // one task: the queue
//	rd, _ := src.Open(ctx, env, tasks[0], nil)
//	b, _ := rd.Next(ctx)                          // waits for messages
//	// ... the sink commits b, then:
//	_ = rd.(connector.Acker).Ack(ctx, b.Pos)
//
// Invariants:
//
//   - The source consumes with manual acknowledgements and a prefetch
//     window (basic.qos), so the broker never has more than prefetch
//     messages out to it: memory stays bounded and a slow sink slows the
//     consumption. A batch is acknowledged by Ack only, which the engine
//     calls once the sink committed it: one basic.ack with multiple set, up
//     to the batch's last delivery tag. Close closes the channel, which
//     hands every message not acknowledged back to its queue.
//   - A queue has no positions: a batch's position is its channel's last
//     delivery tag, for Ack; a restarted reader reads what the queue holds.
//     A message whose acknowledgement was lost is delivered again: a sink
//     keyed by the record's key stores it once.
//   - A message delivered more than max_deliver times goes to the dead
//     letters, with its body, in place of the steps, then is acknowledged
//     with its batch. Quorum queues count deliveries (x-delivery-count);
//     for classic queues the source counts the redeliveries it sees, by
//     message id or body, in a table of bounded size that outlives a run.
//     A dead letter's place is a hash of the message id (or body), so the
//     same message dead-lettered again replaces its dead letter.
//   - The sink publishes persistent, mandatory messages with a message id
//     on a channel in confirm mode; Write returns once the broker confirmed
//     every message of the batch. Messages returned as unroutable come back
//     in a *connector.BatchError; a negative confirm fails the batch as
//     transient.
package rabbitmq
