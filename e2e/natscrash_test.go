package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// brokerMessages is the size of the broker crash tests.
const brokerMessages = 3000

// natsJS connects to the machine's NATS JetStream, or skips (fails when
// CI=true).
func natsJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	url := os.Getenv("BACKBONE_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err == nil {
		js, jerr := jetstream.New(nc)
		if err = jerr; err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			if err == nil {
				t.Cleanup(nc.Close)
				return js
			}
		}
		nc.Close()
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("NATS JetStream at %s is unreachable: %v", url, err)
	}
	t.Skipf("NATS JetStream at %s is unreachable: %v", url, err)
	return nil
}

// eventRows counts the rows of the events table and its distinct ids.
func eventRows(db string) (n, distinct int64) {
	if _, err := os.Stat(db); err != nil {
		return 0, 0
	}
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return 0, 0
	}
	defer conn.Close()
	if err := conn.QueryRow(`SELECT count(*), count(DISTINCT id) FROM events`).Scan(&n, &distinct); err != nil {
		return 0, 0
	}
	return n, distinct
}

// killedAt runs `backbone run` with a failpoint and checks that it died
// there (SIGKILL).
func killedAt(t *testing.T, dir, failpoint string) {
	t.Helper()
	cmd := exec.Command(binary, "run", "-q", "pipeline.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BACKBONE_FAILPOINT="+failpoint)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run with %s: %v, want a SIGKILL at the failpoint\n%s", failpoint, err, out.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("run with %s never reached it\n%s", failpoint, out.String())
	}
}

// runUntilDone runs `backbone run` until settled reports that everything
// was read and acknowledged, then stops it with SIGTERM (a soft stop,
// exit 143).
func runUntilDone(t *testing.T, dir string, settled func() bool) {
	t.Helper()
	cmd := exec.Command(binary, "run", "-q", "pipeline.yaml")
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !settled() {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the restarted run did not settle within 2 minutes\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond) // polling another process's progress
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("the restarted run after SIGTERM: %v, want exit 143\n%s", err, out.String())
	}
}

const natsCrashPipeline = `name: natscrash
source:
  type: nats
  url: %s
  stream: %s
  durable: crash
  linger: 20ms
  ack_wait: 2s
  schema: {id: int, v: string}
sink:
  type: sqlite
  path: out.db
  table: events
  mode: append
  create: true
settings:
  batch_rows: 100
`

// TestNATSCrashBetweenCommitAndAck kills `backbone run` right after the
// sink committed a batch and before the server heard of its
// acknowledgement, twice; the restarted run gets those messages again and
// skips them by its checkpoint: an append-only table holds every message
// exactly once.
func TestNATSCrashBetweenCommitAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	js := natsJS(t)
	ctx := context.Background()
	stream := fmt.Sprintf("BBE2E_%08x", rand.Uint32())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })
	for i := 1; i <= brokerMessages; i++ {
		if _, err := js.PublishAsync(stream+".events", fmt.Appendf(nil, `{"id": %d, "v": "event %d"}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()

	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), fmt.Sprintf(natsCrashPipeline, nats.DefaultURL, stream))
	db := filepath.Join(dir, "out.db")
	killedAt(t, dir, "after-commit:3")
	first, _ := eventRows(db)
	if first == 0 || first >= brokerMessages {
		t.Fatalf("%d rows committed before the kill, want a part of %d", first, brokerMessages)
	}
	killedAt(t, dir, "after-commit:2")

	cons, err := js.Consumer(ctx, stream, "crash")
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, dir, func() bool {
		info, err := cons.Info(ctx)
		n, _ := eventRows(db)
		// Everything delivered and acknowledged, the messages of the killed
		// runs included (after ack_wait).
		return err == nil && n >= brokerMessages && info.NumPending == 0 && info.NumAckPending == 0
	})
	n, distinct := eventRows(db)
	if n != brokerMessages || distinct != brokerMessages {
		t.Fatalf("the table holds %d rows, %d distinct; want each of the %d messages once", n, distinct, brokerMessages)
	}
}
