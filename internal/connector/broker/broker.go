package broker

import (
	"encoding/json"
	"fmt"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Rule is a check of a source's setting: Msg, at Field, when Bad.
type Rule struct {
	Field string
	Bad   bool
	Msg   string
}

// Check returns the error of the first bad rule, at its field in p.
func Check(p connector.Params, rules []Rule) error {
	for _, r := range rules {
		if r.Bad {
			return connector.Errorf(p.FieldPos(r.Field), "%s", r.Msg)
		}
	}
	return nil
}

// Poison returns the dead letter of a message delivered n times when n is
// more than maxDeliver: every run before failed on it, so it goes to the
// dead letters with its body in place of the steps. line is its place in
// the batch's origin.
func Poison(n, maxDeliver int, line int64, body []byte) (record.Reject, bool) {
	if n <= maxDeliver {
		return record.Reject{}, false
	}
	return record.Reject{Line: line, Step: "source",
		Err: fmt.Sprintf("delivered %d times, more than max_deliver %d: every run before failed on it", n, maxDeliver),
		Raw: body}, true
}

// BatchSize is how many messages a batch holds at most: the source's own
// size when set, else the run's batch_rows, else the default.
func BatchSize(size int, env *connector.Env) int {
	if size <= 0 {
		size = env.Limits.BatchRows
	}
	if size <= 0 {
		size = record.DefaultLimits.BatchRows
	}
	return size
}

// DecodePosition reads b, a position in JSON, into p, which holds its
// format's version at v: a position of another version is refused.
func DecodePosition(b record.Position, p any, v *int, version int) error {
	if err := json.Unmarshal(b, p); err != nil {
		return fmt.Errorf("position %q is not one of this source: %w", b, err)
	}
	if *v != version {
		return fmt.Errorf("position %q has version %d; this version of backbone reads version %d", b, *v, version)
	}
	return nil
}
