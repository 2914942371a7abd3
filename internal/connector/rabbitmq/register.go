package rabbitmq

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the rabbitmq source and sink to r.
func Register(r *connector.Registry) {
	r.AddSource(sourceSpec, newSource)
	r.AddSink(sinkSpec, newSink)
}
