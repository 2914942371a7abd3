package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/backbone-etl/backbone/internal/connector"
)

// DefaultURL is the broker of a source or sink that names none.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// dial connects; ctx bounds the connection.
func dial(ctx context.Context, rawURL, name string) (*amqp.Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	cfg := amqp.Config{
		Properties: props,
		Heartbeat:  10 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake is bounded too; amqp091 clears the deadline after.
			if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	conn, err := amqp.DialConfig(rawURL, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, connector.Unavailable(fmt.Errorf("connect to %s: %w", redactURL(rawURL), err))
	}
	return conn, nil
}

// redactURL drops the password of a broker URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the broker"
	}
	return u.Redacted()
}

// amqpError classifies a broker's error: a closed channel or connection
// may succeed on a new one; a missing queue or exchange will not.
func amqpError(what string, err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.NotFound, amqp.AccessRefused, amqp.PreconditionFailed, amqp.NotAllowed:
			return fmt.Errorf("%s: %s", what, ae.Reason)
		}
	}
	return connector.Transient(fmt.Errorf("%s: %w", what, err))
}
