package natsjs

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/backbone-etl/backbone/internal/connector/broker"
	"github.com/backbone-etl/backbone/internal/record"
)

// position is where a task stands once a batch is committed: Done lists
// the stream sequences of messages that are in the sink (or its dead
// letters) and whose acknowledgement may not have reached the server yet.
// Everything else the consumer has not yet had acknowledged is still to
// read. Seq is the highest sequence read so far, for people.
//
// Stream, Created and Subject tell one consumer's view of one stream from
// another: a stream deleted and created again restarts its sequences, and
// another subject filter delivers other messages in the same ranges.
type position struct {
	V       int       `json:"v"`
	Stream  string    `json:"stream"`
	Created time.Time `json:"created"`
	Subject string    `json:"subject,omitempty"`
	Seq     uint64    `json:"seq"`
	N       uint64    `json:"n"` // the batch's number in its reader: ties Ack to a batch
	Done    []span    `json:"done,omitempty"`
}

// span is the sequences lo to hi, both included.
type span [2]uint64

const positionVersion = 1

func (p position) encode() record.Position {
	p.V = positionVersion
	b, _ := json.Marshal(p)
	return b
}

func decodePosition(b record.Position) (position, error) {
	var p position
	if err := broker.DecodePosition(b, &p, &p.V, positionVersion); err != nil {
		return p, err
	}
	for _, s := range p.Done {
		if s[0] == 0 || s[0] > s[1] {
			return p, fmt.Errorf("position %q holds the invalid range %d-%d", b, s[0], s[1])
		}
	}
	return p, nil
}

// normalize sorts spans and merges those that overlap or touch: between
// two consecutive sequences there is no message that could be missing.
func normalize(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b span) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	out := s[:1]
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if x[0] <= last[1]+1 {
			last[1] = max(last[1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

// contains reports whether seq is in the normalized spans.
func contains(spans []span, seq uint64) bool {
	i, _ := slices.BinarySearchFunc(spans, seq, func(s span, q uint64) int {
		switch {
		case s[1] < q:
			return -1
		case s[0] > q:
			return 1
		}
		return 0
	})
	return i < len(spans) && spans[i][0] <= seq && seq <= spans[i][1]
}

// above drops the sequences at or below floor: the server will not deliver
// them again.
func above(spans []span, floor uint64) []span {
	var out []span
	for _, s := range spans {
		if s[1] <= floor {
			continue
		}
		s[0] = max(s[0], floor+1)
		out = append(out, s)
	}
	return out
}
