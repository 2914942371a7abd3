package natsjs

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

func TestSourceConformance(t *testing.T) {
	connectortest.RunSource(t, connectortest.SourceHarness{
		Unbounded: true,
		New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
			_, js := testJS(t)
			stream := testStream(t, js, nil)
			publish(t, js, stream+".rows", brokertest.Bodies(rows)...)
			durable := fmt.Sprintf("c%08x", rand.Uint32())
			return &connectortest.SourceTarget{
				// Every start of the process reads the same durable
				// consumer. Deliveries are not limited: the suite reads the
				// same messages many times. The suite acknowledges little,
				// so messages delivered again wait for it only briefly.
				Source: func(t testing.TB) connector.Source {
					return buildSource(t, fmt.Sprintf("stream: %s\ndurable: %s\nlinger: 20ms\nmax_deliver: 100000\nsuspect_wait: 1ms\n%s", stream, durable, brokertest.ConformanceSchema))
				},
				Add: func(t testing.TB, rows []record.Row) { publish(t, js, stream+".rows", brokertest.Bodies(rows)...) },
			}
		},
	})
}

func TestSinkConformance(t *testing.T) {
	connectortest.RunSink(t, connectortest.SinkHarness{
		New: func(t testing.TB, env *connector.Env) *connectortest.SinkTarget {
			_, js := testJS(t)
			// Messages over 1 KiB are refused for their size.
			stream := testStream(t, js, func(c *jetstream.StreamConfig) { c.MaxMsgSize = 1024 })
			return &connectortest.SinkTarget{
				Sink: func(t testing.TB) connector.Sink {
					return buildSink(t, fmt.Sprintf("subject: %s.out\nstream: %s", stream, stream))
				},
				Stored: func(t testing.TB) []record.Row { return brokertest.Rows(t, streamBodies(t, js, stream)) },
				Refuse: func(r record.Row) record.Row {
					r[connectortest.ColName] = strings.Repeat("x", 2000)
					return r
				},
			}
		},
	})
}
