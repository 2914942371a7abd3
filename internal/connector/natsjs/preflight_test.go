package natsjs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector/connectortest"
)

func TestPreflight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     jetstream.StreamConfig
		warning string // "" for none
	}{
		{"Memory", jetstream.StreamConfig{Name: "S", Storage: jetstream.MemoryStorage, Replicas: 3}, "in memory"},
		{"FileOneReplica", jetstream.StreamConfig{Name: "S", Storage: jetstream.FileStorage, Replicas: 1}, "single replica"},
		{"FileThreeReplicas", jetstream.StreamConfig{Name: "S", Storage: jetstream.FileStorage, Replicas: 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := preflight(&jetstream.StreamInfo{Config: tc.cfg})
			switch {
			case tc.warning == "" && len(got) > 0:
				t.Errorf("warnings %q for a stream that keeps what it acknowledged", got)
			case tc.warning != "" && (len(got) != 1 || !strings.Contains(got[0], tc.warning)):
				t.Errorf("warnings %q, want one about %q", got, tc.warning)
			}
		})
	}
}

// Open warns in the run's log, once per source, about a stream that can
// lose acknowledged messages.
func TestOpenWarnsAboutAStreamThatCanLoseMessages(t *testing.T) {
	_, js := testJS(t)
	stream := testStream(t, js, func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage })
	var log bytes.Buffer
	env := connectortest.NewEnv(t)
	env.Logger = slog.New(slog.NewTextHandler(&log, nil))
	src := buildSource(t, "stream: "+stream+"\nschema: {id: int}")
	tasks, err := src.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rd, err := src.Open(context.Background(), env, tasks[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		rd.Close()
	}
	if n := strings.Count(log.String(), "keeps its messages in memory"); n != 1 {
		t.Errorf("the warning appears %d times in the log, want once:\n%s", n, log.String())
	}
}
