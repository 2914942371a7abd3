package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/backbone-etl/backbone/internal/record"
)

// A source position is JSON:
//
//	{"v":1,"run":"r42","n":4096,
//	 "cols":[{"name":"id","type":"bigint","rtype":"int"},…],
//	 "order":["updated_at","id"],
//	 "last":[{"type":"timestamp with time zone","v":"2024-05-01 10:00:00.123456+00"},{"type":"bigint","v":"17"}]}
//
// last holds the ordering values of the last row read, each as the text
// the server's input function of its type reads back to the same value
// (full microsecond precision, the zone of a timestamptz), with the type
// it is compared as. An unordered read keeps "offset" instead. cols is the
// list of columns read, against which the next run detects schema drift.
// run is the run that wrote the position: a later run applies lookback, a
// retry within the same run does not. n counts the rows read by the task
// (the line numbers of dead letters).
//
// The first read of a table in mode incremental goes through the table in
// its physical order (see initialScan); its positions hold "initial"
// instead of "last":
//
//	"initial":{"max":[…as last…],"after":"(1234,7)","file":"16417"}
//
// max is the last row in (cursor, key) order when the read began: the read
// takes the rows not after it, those after it come next, in order. after
// is the physical row number (ctid) of the last row read, file the table's
// storage (a rewrite of the table changes it, and its row numbers).
const posVersion = 1

type posJSON struct {
	V      int      `json:"v"`
	Run    string   `json:"run,omitempty"`
	N      int64    `json:"n"`
	Cols   []posCol `json:"cols,omitempty"`
	Order  []string `json:"order,omitempty"`
	Last   []posVal `json:"last,omitempty"`
	Offset *int64   `json:"offset,omitempty"`

	Initial *posInitial `json:"initial,omitempty"`
}

// posInitial is the position of a first read in physical order.
type posInitial struct {
	Max   []posVal `json:"max"`
	After string   `json:"after,omitempty"` // ctid of the last row read; "" before the first
	File  string   `json:"file"`
}

// posCol is a column read: its name, its database type and its record
// type.
type posCol struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	RType string `json:"rtype"`
}

// posVal is one ordering value; V nil is NULL.
type posVal struct {
	Type string  `json:"type"`
	V    *string `json:"v"`
}

func decodePos(pos record.Position) (*posJSON, error) {
	if len(pos) == 0 {
		return nil, nil
	}
	var p posJSON
	if err := json.Unmarshal(pos, &p); err != nil {
		return nil, fmt.Errorf("checkpoint %q is not a position of this source: %w", cut(pos), err)
	}
	if p.V != posVersion {
		return nil, fmt.Errorf("checkpoint %q has version %d; this version of backbone reads version %d", cut(pos), p.V, posVersion)
	}
	if p.Initial != nil {
		if len(p.Last) != 0 || len(p.Initial.Max) != len(p.Order) || (p.Initial.After != "" && !validTid(p.Initial.After)) {
			return nil, fmt.Errorf("checkpoint %q is not a position of this source: a first read's position is malformed", cut(pos))
		}
	} else if len(p.Last) != len(p.Order) {
		return nil, fmt.Errorf("checkpoint %q is not a position of this source: %d ordering columns, %d values", cut(pos), len(p.Order), len(p.Last))
	}
	if p.Offset != nil && *p.Offset < 0 {
		return nil, fmt.Errorf("checkpoint %q is not a position of this source: negative offset", cut(pos))
	}
	if p.N < 0 {
		p.N = 0
	}
	return &p, nil
}

func cut(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
