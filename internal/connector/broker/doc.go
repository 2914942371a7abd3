// Package broker is what the sources of message brokers (natsjs,
// rabbitmq) do alike, whatever the broker's protocol: gather the messages
// a fetch goroutine hands over into batches, count deliveries against
// max_deliver, after a failed run hand messages delivered again over one
// at a time, so that a poison message fails its runs alone, and check
// their settings and read their positions the same way.
//
//	batches := &broker.Batcher[jetstream.Msg]{Size: 500, Linger: 100 * time.Millisecond, Msgs: fetched, Errs: failures}
//	msgs, err := batches.Next(ctx) // in the reader's Next: 1 to 500 messages
//	for _, m := range msgs {
//		md, _ := m.Metadata()
//		if rej, ok := broker.Poison(int(md.NumDelivered), maxDeliver, int64(md.Sequence.Stream), m.Data()); ok {
//			b.Rejects = append(b.Rejects, rej) // to the dead letters, in place of the steps
//		}
//	}
//
// Invariants:
//
//   - A batch waits for its first message as long as its context allows,
//     then at most Linger for the others; messages received when the
//     context ends stay in the Batcher for the next call (or for Close to
//     hand back), never lost.
//   - A message delivered more than max_deliver times is a reject with its
//     body, so the stream or queue flows on; the broker's own limit never
//     drops it.
//   - Settle.Wait never waits past its limit: a reader whose sink is slow
//     goes on reading, one message at a time, rather than stalling.
package broker
