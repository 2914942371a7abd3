package httpc

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the http source, lookup and sink to r.
func Register(r *connector.Registry) {
	r.AddSource(sourceSpec, newSource)
	r.AddLookup(lookupSpec, newLookup)
	r.AddSink(sinkSpec, newSink)
}
