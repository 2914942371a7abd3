package natsjs

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the nats source and sink to r.
func Register(r *connector.Registry) {
	r.AddSource(sourceSpec, newSource)
	r.AddSink(sinkSpec, newSink)
}
