package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backbone-etl/backbone/internal/connector"
)

// DefaultURL is the server of a source or sink that names none.
const DefaultURL = "nats://127.0.0.1:4222"

// connect opens a connection that reconnects for ever: a continuous run
// waits out a server restart instead of failing. ctx bounds the first
// connection only.
func connect(ctx context.Context, url, name string) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url,
			nats.Name(name),
			nats.Timeout(timeout),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.ReconnectJitter(250*time.Millisecond, time.Second),
		)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, connector.Unavailable(fmt.Errorf("connect to %s: %w", redactURL(url), r.err))
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() { // the dial gives up at its timeout
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// redactURL drops the user information of a server URL, for messages.
func redactURL(url string) string {
	var out []string
	for _, u := range strings.Split(url, ",") {
		if i := strings.Index(u, "@"); i >= 0 {
			scheme := ""
			if j := strings.Index(u, "://"); j >= 0 && j < i {
				scheme = u[:j+3]
			}
			u = scheme + "…@" + u[i+1:]
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// streamError names a stream that is not there.
func streamError(stream string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %q not found", stream)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return connector.Transient(fmt.Errorf("stream %q: %w", stream, err))
}

// durableName makes a consumer name from a pipeline name: letters, digits,
// - and _ only.
func durableName(pipeline string) string {
	var b strings.Builder
	b.WriteString("backbone_")
	for _, r := range pipeline {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// preflight lists the stream settings under which the server can lose
// messages it acknowledged to their publisher.
func preflight(info *jetstream.StreamInfo) []string {
	name := info.Config.Name
	switch {
	case info.Config.Storage == jetstream.MemoryStorage:
		return []string{fmt.Sprintf("stream %q keeps its messages in memory: a restart of the server loses them, acknowledged or not", name)}
	case info.Config.Replicas <= 1:
		return []string{fmt.Sprintf("stream %q has a single replica on a file store, which the server writes to disk lazily (every 2 minutes unless it runs with sync_always): a power failure or a lost disk can lose messages it acknowledged; use 3 replicas", name)}
	}
	return nil
}
