package redis

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the redis lookup to r.
func Register(r *connector.Registry) {
	r.AddLookup(lookupSpec, newLookup)
}
