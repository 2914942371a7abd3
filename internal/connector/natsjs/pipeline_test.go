package natsjs

import (
	"fmt"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
)

// Pipeline-level tests: brokertest's scenarios read a stream of the test
// server.

// testBroker makes a stream of each test's own for brokertest. A message
// of a failed run comes again once its ack_wait has passed.
func testBroker() brokertest.Broker {
	return brokertest.Broker{
		Register: Register,
		New: func(t testing.TB) brokertest.Target {
			_, js := testJS(t)
			stream := testStream(t, js, nil)
			return brokertest.Target{
				Source:  fmt.Sprintf("type: nats\nurl: %s\nstream: %s\nack_wait: 5s", testURL(), stream),
				Publish: func(t testing.TB, bodies ...[]byte) { publish(t, js, stream+".events", bodies...) },
			}
		},
	}
}

func TestPoisonMessageIsDeadLetteredAndTheStreamFlows(t *testing.T) {
	brokertest.Poison(t, testBroker())
}

// The consumer pulls at most a batch ahead of the sink.
func TestSlowSinkKeepsMemoryFlatAndDropsNothing(t *testing.T) {
	brokertest.SlowSink(t, testBroker())
}
