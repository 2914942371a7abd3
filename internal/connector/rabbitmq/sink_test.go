package rabbitmq

import (
	"context"
	"errors"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/connectortest"
	"github.com/backbone-etl/backbone/internal/record"
)

// A message no queue takes comes back (mandatory) and is a refused row; a
// routable one is confirmed and queued once, with its message id.
func TestSinkReturnsUnroutableRows(t *testing.T) {
	ch := testChannel(t)
	queue := testQueue(t, ch, false, nil)
	if err := ch.ExchangeDeclare(queue+".x", "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "good", queue+".x", false, nil); err != nil {
		t.Fatal(err)
	}
	env := connectortest.NewEnv(t)
	rows := connectortest.Rows(10)
	b := &record.Batch{Schema: connectortest.Schema, Rows: rows, Origin: "t", Pos: record.Position("10")}
	for _, tc := range []struct {
		key     string
		refused int
	}{{"good", 0}, {"nowhere", 10}} {
		w, err := buildSink(t, "exchange: "+queue+".x\nrouting_key: "+tc.key).Open(context.Background(), env, connectortest.Schema)
		if err != nil {
			t.Fatal(err)
		}
		n, err := w.Write(context.Background(), b)
		var be *connector.BatchError
		switch {
		case tc.refused == 0 && (err != nil || n != 10):
			t.Errorf("routing key %s: n=%d err=%v, want all 10 written", tc.key, n, err)
		case tc.refused > 0 && (!errors.As(err, &be) || len(be.Rows) != tc.refused || n != 10-tc.refused):
			t.Errorf("routing key %s: n=%d err=%v, want %d rows refused", tc.key, n, err, tc.refused)
		}
		if err := w.Commit(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if got := queued(t, queue); len(got) != 10 {
		t.Errorf("%d messages queued, want 10", len(got))
	}
}
