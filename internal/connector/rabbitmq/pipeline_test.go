package rabbitmq

import (
	"fmt"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
)

// Pipeline-level tests: brokertest's scenarios read a queue of the test
// broker.

// testBroker makes a queue of each test's own for brokertest (a quorum
// queue when quorum), published to on a channel of its own.
func testBroker(quorum bool) brokertest.Broker {
	return brokertest.Broker{
		Register: Register,
		New: func(t testing.TB) brokertest.Target {
			queue := testQueue(t, testChannel(t), quorum, nil)
			pub := testChannel(t)
			return brokertest.Target{
				Source:  fmt.Sprintf("type: rabbitmq\nurl: %s\nqueue: %s", testURL(), queue),
				Publish: func(t testing.TB, bodies ...[]byte) { publish(t, pub, queue, bodies...) },
			}
		},
	}
}

// The delivery count is the quorum queue's own, or the source's for a
// classic queue.
func TestPoisonMessageIsDeadLetteredAndTheQueueFlows(t *testing.T) {
	for _, quorum := range []bool{false, true} {
		t.Run(fmt.Sprintf("quorum=%v", quorum), func(t *testing.T) { brokertest.Poison(t, testBroker(quorum)) })
	}
}

// The broker sends at most the prefetch window ahead of the sink.
func TestSlowSinkKeepsMemoryFlatAndDropsNothing(t *testing.T) {
	brokertest.SlowSink(t, testBroker(false))
}
