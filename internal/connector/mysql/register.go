package mysql

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the mysql source, sink and lookup to r.
func Register(r *connector.Registry) {
	r.AddSource(sourceSpec, newSource)
	r.AddSink(sinkSpec, newSink)
	r.AddLookup(lookupSpec, newLookup)
}
