package rabbitmq

import (
	"fmt"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestSourceConformance(t *testing.T) {
	for _, quorum := range []bool{false, true} {
		t.Run(fmt.Sprintf("quorum=%v", quorum), func(t *testing.T) {
			connectortest.RunSource(t, connectortest.SourceHarness{
				Unbounded: true,
				New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
					ch := testChannel(t)
					queue := testQueue(t, ch, quorum, nil)
					publish(t, ch, queue, brokertest.Bodies(rows)...)
					return &connectortest.SourceTarget{
						// The suite reads the same messages many times, and reads
						// a whole queue before it acknowledges.
						// Quorum queues read everything with a consumer: a
						// quorum queue may hand a message acknowledged after a
						// basic.get back to the queue when the channel closes
						// right after, which the suite, acknowledging just
						// before each restart, would see.
						Source: func(t testing.TB) connector.Source {
							wait := "1ms"
							if quorum {
								wait = "0s"
							}
							return buildSource(t, fmt.Sprintf("queue: %s\nlinger: 20ms\nmax_deliver: 100000\nprefetch: 2000\nsuspect_wait: %s\n%s", queue, wait, brokertest.ConformanceSchema))
						},
						Add: func(t testing.TB, rows []record.Row) { publish(t, ch, queue, brokertest.Bodies(rows)...) },
					}
				},
			})
		})
	}
}

func TestSinkConformance(t *testing.T) {
	connectortest.RunSink(t, connectortest.SinkHarness{
		New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
			queue := testQueue(t, testChannel(t), false, nil)
			return &connectortest.SinkTarget{
				Sink: func(t testing.TB) connector.Sink {
					return buildSink(t, "routing_key: "+queue)
				},
				Stored: func(t testing.TB) []record.Row { return brokertest.Rows(t, queued(t, queue)) },
			}
		},
	})
}
