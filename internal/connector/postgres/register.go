package postgres

import (
	"sync/atomic"

	"github.com/backbone-etl/backbone/internal/connector"
)

// Register adds the postgres source, sink and lookup to r.
func Register(r *connector.Registry) {
	r.AddSource(sourceSpec, newSource)
	r.AddSink(sinkSpec, newSink)
	r.AddLookup(lookupSpec, newLookup)
}

// atomicCounter counts events for tests and statistics.
type atomicCounter struct{ atomic.Int64 }

func (c *atomicCounter) add() { c.Add(1) }
