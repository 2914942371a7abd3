package file

import "github.com/backbone-etl/backbone/internal/connector"

// Register adds the file components to r: the csv, jsonl and parquet
// sources and sinks, the stdout sink, and the csv, jsonl and json lookups.
func Register(r *connector.Registry) {
	r.AddSource(csvSourceSpec, newCSVSource)
	r.AddSource(jsonlSourceSpec, newJSONLSource)
	r.AddSource(parquetSourceSpec, newParquetSource)

	r.AddSink(csvSinkSpec, newCSVSink)
	r.AddSink(jsonlSinkSpec, newJSONLSink)
	r.AddSink(parquetSinkSpec, newParquetSink)
	r.AddSink(stdoutSinkSpec, newStdoutSink)

	r.AddLookup(csvLookupSpec, newCSVLookup)
	r.AddLookup(jsonlLookupSpec, newJSONLLookup)
	r.AddLookup(jsonLookupSpec, newJSONLookup)
}
