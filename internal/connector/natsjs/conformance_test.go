package natsjs

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

const conformanceSchema = "schema: {id: int, name: string, amount: decimal, created_at: timestamp, note: string}\n"

// rowBodies renders rows of connectortest.Schema as the JSON messages a
// producer would publish.
func rowBodies(rows []record.Row) [][]byte {
	out := make([][]byte, len(rows))
	for i, r := range rows {
		out[i] = record.RowJSON(connectortest.Schema, r)
	}
	return out
}

func TestSourceConformance(t *testing.T) {
	connectortest.RunSource(t, connectortest.SourceHarness{
		Unbounded: true,
		New: func(t testing.TB, env *connector.Env, rows []record.Row, _ int) *connectortest.SourceTarget {
			_, js := testJS(t)
			stream := testStream(t, js, nil)
			publish(t, js, stream+".rows", rowBodies(rows)...)
			durable := fmt.Sprintf("c%08x", rand.Uint32())
			return &connectortest.SourceTarget{
				// Every start of the process reads the same durable
				// consumer. Deliveries are not limited: the suite reads the
				// same messages many times. The suite acknowledges little,
				// so messages delivered again wait for it only briefly.
				Source: func(t testing.TB) connector.Source {
					return buildSource(t, fmt.Sprintf("stream: %s\ndurable: %s\nlinger: 20ms\nmax_deliver: 100000\nsuspect_wait: 1ms\n%s", stream, durable, conformanceSchema))
				},
				Add: func(t testing.TB, rows []record.Row) { publish(t, js, stream+".rows", rowBodies(rows)...) },
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
				Stored: func(t testing.TB) []record.Row {
					dec, err := payload.NewDecoder(payload.FormatJSON, connectortest.Schema, "", time.UTC)
					if err != nil {
						t.Fatal(err)
					}
					var rows []record.Row
					for _, b := range streamBodies(t, js, stream) {
						row := make(record.Row, connectortest.Schema.Len())
						if _, reason := dec.Decode(b, row); reason != "" {
							t.Fatalf("a stored message is not a row: %s: %s", reason, b)
						}
						rows = append(rows, row)
					}
					return rows
				},
				Refuse: func(r record.Row) record.Row {
					r[connectortest.ColName] = strings.Repeat("x", 2000)
					return r
				},
			}
		},
	})
}
