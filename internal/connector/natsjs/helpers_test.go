package natsjs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/broker/brokertest"
)

// The tests run against the NATS JetStream server of the machine
// (BACKBONE_NATS_URL, nats://127.0.0.1:4222 by default). They skip when it
// cannot be reached, unless CI=true. Each test works on its own stream with
// a random suffix, deleted at cleanup.

func testURL() string {
	if u := os.Getenv("BACKBONE_NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// testJS connects to the test server.
func testJS(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(testURL(), nats.Timeout(2*time.Second))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			if _, err = js.AccountInfo(ctx); err == nil {
				t.Cleanup(nc.Close)
				return nc, js
			}
		}
		nc.Close()
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("NATS JetStream at %s is not reachable and CI=true: %v", testURL(), err)
	}
	t.Skipf("NATS JetStream at %s is not reachable: %v", testURL(), err)
	return nil, nil
}

// testStream creates a stream of its own for t, on subjects NAME.>, and
// deletes it at cleanup. edit may change its configuration.
func testStream(t testing.TB, js jetstream.JetStream, edit func(*jetstream.StreamConfig)) string {
	t.Helper()
	name := fmt.Sprintf("BBTEST_%d_%08x", time.Now().UnixNano()%1e6, rand.Uint32())
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	return name
}

// publish publishes bodies on subject and waits for the server.
func publish(t testing.TB, js jetstream.JetStream, subject string, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if _, err := js.PublishAsync(subject, b); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish: no acknowledgement within 30s")
	}
}

// streamBodies returns the bodies stored in a stream, in order.
func streamBodies(t testing.TB, js jetstream.JetStream, stream string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m.Data)
	}
	return out
}

func buildSource(t testing.TB, yaml string) connector.Source {
	return brokertest.Build(t, newSource, testURL(), yaml)
}

func buildSink(t testing.TB, yaml string) connector.Sink {
	return brokertest.Build(t, newSink, testURL(), yaml)
}
