package rabbitmq

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
)

// The tests run against the RabbitMQ broker of the machine
// (BACKBONE_AMQP_URL, amqp://guest:guest@127.0.0.1:5672/ by default). They
// skip when it cannot be reached, unless CI=true. Each test works on its
// own queues with a random suffix, deleted at cleanup.

func testURL() string {
	if u := os.Getenv("BACKBONE_AMQP_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// testChannel connects to the test broker.
func testChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dial(ctx, testURL(), "backbone test")
	if err == nil {
		var ch *amqp.Channel
		if ch, err = conn.Channel(); err == nil {
			t.Cleanup(func() { conn.Close() })
			return ch
		}
		conn.Close()
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("RabbitMQ at %s is not reachable and CI=true: %v", redactURL(testURL()), err)
	}
	t.Skipf("RabbitMQ at %s is not reachable: %v", redactURL(testURL()), err)
	return nil
}

// testQueue declares a durable queue of its own for t (a quorum queue when
// quorum), deleted at cleanup.
func testQueue(t testing.TB, ch *amqp.Channel, quorum bool, args amqp.Table) string {
	t.Helper()
	name := fmt.Sprintf("bbtest.%d.%08x", time.Now().UnixNano()%1e6, rand.Uint32())
	if args == nil {
		args = amqp.Table{}
	}
	if quorum {
		args["x-queue-type"] = "quorum"
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare queue %s: %v", name, err)
	}
	t.Cleanup(func() {
		c := testChannel(t)
		_, _ = c.QueueDelete(name, false, false, false)
	})
	return name
}

// publish publishes bodies to queue through the default exchange, with
// publisher confirms.
func publish(t testing.TB, ch *amqp.Channel, queue string, bodies ...[]byte) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var dcs []*amqp.DeferredConfirmation
	for _, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{Body: b, DeliveryMode: amqp.Persistent})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

// queued returns the bodies in a queue without taking them: it gets them
// unacknowledged and closes its channel, which puts them back.
func queued(t testing.TB, queue string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dial(ctx, testURL(), "backbone test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() // the leak checks count goroutines before cleanup
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, d.Body)
	}
}

func buildSource(t testing.TB, yaml string) connector.Source {
	return brokertest.Build(t, newSource, testURL(), yaml)
}

func buildSink(t testing.TB, yaml string) connector.Sink {
	return brokertest.Build(t, newSink, testURL(), yaml)
}
