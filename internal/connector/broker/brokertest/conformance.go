package brokertest

import (
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/connector/payload"
	"github.com/backbone-etl/backbone/internal/record"
)

// ConformanceSchema is connectortest.Schema as a source's setting.
const ConformanceSchema = "schema: {id: int, name: string, amount: decimal, created_at: timestamp, note: string}\n"

// Bodies renders rows of connectortest.Schema as the JSON messages a
// producer would publish.
func Bodies(rows []record.Row) [][]byte {
	out := make([][]byte, len(rows))
	for i, r := range rows {
		out[i] = record.RowJSON(connectortest.Schema, r)
	}
	return out
}

// Rows reads the JSON messages that a sink published back into rows of
// connectortest.Schema; a message that is not one fails t.
func Rows(t testing.TB, bodies [][]byte) []record.Row {
	t.Helper()
	dec, err := payload.NewDecoder(payload.FormatJSON, connectortest.Schema, "", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var rows []record.Row
	for _, b := range bodies {
		row := make(record.Row, connectortest.Schema.Len())
		if _, reason := dec.Decode(b, row); reason != "" {
			t.Fatalf("a published message is not a row: %s: %s", reason, b)
		}
		rows = append(rows, row)
	}
	return rows
}

// Build makes a source or sink with the settings of yaml on the broker at
// url, through newC, the connector's own constructor.
func Build[C any](t testing.TB, newC func(connector.Params) (C, error), url, yaml string) C {
	t.Helper()
	p, err := connector.ParamsFromYAML("url: " + url + "\n" + yaml)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newC(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
