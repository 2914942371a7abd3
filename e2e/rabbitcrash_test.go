package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitChannel connects to the machine's RabbitMQ, or skips (fails when
// CI=true).
func rabbitChannel(t *testing.T) (string, *amqp.Channel) {
	t.Helper()
	url := os.Getenv("BACKBONE_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err == nil {
		var ch *amqp.Channel
		if ch, err = conn.Channel(); err == nil {
			t.Cleanup(func() { conn.Close() })
			return url, ch
		}
		conn.Close()
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("RabbitMQ at 127.0.0.1:5672 is unreachable: %v", err)
	}
	t.Skipf("RabbitMQ at 127.0.0.1:5672 is unreachable: %v", err)
	return "", nil
}

const rabbitCrashPipeline = `name: rabbitcrash
source:
  type: rabbitmq
  url: %s
  queue: %s
  linger: 20ms
  schema: {id: int, v: string}
sink:
  type: sqlite
  path: out.db
  table: events
  mode: upsert
  key: [id]
  create: true
settings:
  batch_rows: 100
`

// TestRabbitMQCrashBetweenCommitAndAck kills `backbone run` right after the
// sink committed a batch and before its acknowledgement, twice; the broker
// delivers those messages again to the restarted run, and the table, keyed
// by the message's id, holds every message exactly once.
func TestRabbitMQCrashBetweenCommitAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	url, ch := rabbitChannel(t)
	queue := fmt.Sprintf("bbe2e.%08x", rand.Uint32())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= brokerMessages; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, `{"id": %d, "v": "event %d"}`, i, i)})
		if err != nil {
			t.Fatal(err)
		}
		if i == brokerMessages {
			dc.Wait()
		}
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), fmt.Sprintf(rabbitCrashPipeline, url, queue))
	db := filepath.Join(dir, "out.db")
	killedAt(t, dir, "after-commit:3")
	first, _ := eventRows(db)
	if first == 0 || first >= brokerMessages {
		t.Fatalf("%d rows committed before the kill, want a part of %d", first, brokerMessages)
	}
	// The broker hands the dead process's unacknowledged messages back once
	// it sees the connection closed: the committed batch is among them.
	waitFor(t, "the committed batch not acknowledged back in the queue", 10*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil && int64(q.Messages) > brokerMessages-first
	})
	killedAt(t, dir, "after-commit:2")

	runUntilDone(t, dir, func() bool {
		n, _ := eventRows(db)
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil && n >= brokerMessages && q.Messages == 0
	})
	n, distinct := eventRows(db)
	if n != brokerMessages || distinct != brokerMessages {
		t.Fatalf("the table holds %d rows, %d distinct; want each of the %d messages once", n, distinct, brokerMessages)
	}
	if q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("after the soft stop the queue holds %d messages (%v), want none: everything committed was acknowledged", q.Messages, err)
	}
}
