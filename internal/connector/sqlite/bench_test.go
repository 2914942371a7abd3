package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

var benchSchema = record.MustSchema(
	record.Field{Name: "id", Type: record.Int}, record.Field{Name: "name", Type: record.String},
	record.Field{Name: "qty", Type: record.Int}, record.Field{Name: "price", Type: record.Float},
	record.Field{Name: "amount", Type: record.Decimal}, record.Field{Name: "at", Type: record.Timestamp},
	record.Field{Name: "active", Type: record.Bool}, record.Field{Name: "note", Type: record.String},
)

// BenchmarkSinkUpsert upserts 8-column rows in batches of 4096, one Commit
// (with a checkpoint) per batch; half of the rows update existing keys.
func BenchmarkSinkUpsert(b *testing.B) {
	env := sqlkittest.Env(b)
	w, err := kit.Sink(b, "path: bench.db\ntable: orders\nmode: upsert\nkey: id\ncreate: true").Open(context.Background(), env, benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	const batchRows = 4096
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	batches := make([]*record.Batch, 16)
	for i := range batches {
		rows := make([]record.Row, batchRows)
		for j := range rows {
			id := int64(i*batchRows/2 + j) // consecutive batches overlap by half
			rows[j] = record.Row{id, fmt.Sprint("customer ", id), id % 100, float64(id) / 3, record.DecFromInt(id * 7),
				at.Add(time.Duration(id) * time.Millisecond), id%2 == 0, "some note text"}
		}
		batches[i] = &record.Batch{Schema: benchSchema, Rows: rows}
	}
	ctx := context.Background()
	b.ResetTimer()
	rows := 0
	for i := 0; b.Loop(); i++ {
		batch := batches[i%len(batches)]
		if n, err := w.Write(ctx, batch); err != nil || n != batchRows {
			b.Fatalf("Write: n=%d err=%v", n, err)
		}
		if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position(fmt.Sprint(i))}}); err != nil {
			b.Fatal(err)
		}
		rows += batchRows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkSourceIncremental reads a table of 8-column rows written by the
// sink, with an index on (cursor, key), in keyset batches of 4096.
func BenchmarkSourceIncremental(b *testing.B) {
	env := sqlkittest.Env(b)
	w, err := kit.Sink(b, "path: bench.db\ntable: orders\nmode: upsert\nkey: id\ncreate: true").Open(context.Background(), env, benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	const total = 100_000
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]record.Row, total)
	for i := range rows {
		id := int64(i)
		rows[i] = record.Row{id, fmt.Sprint("customer ", id), id % 100, float64(id) / 3, record.DecFromInt(id * 7),
			at.Add(time.Duration(id/10) * time.Millisecond), id%2 == 0, "some note text"}
	}
	if _, err := w.Write(context.Background(), &record.Batch{Schema: benchSchema, Rows: rows}); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	w.Close()
	mustExec(b, testDB(b, dbPath(env, "bench.db")), "CREATE INDEX orders_cursor ON orders (at, id)")
	s := kit.Source(b, "path: bench.db\ntable: orders\nmode: incremental\ncursor: at\nkey: id")
	read := 0
	for b.Loop() {
		res := sqlkittest.ReadAll(b, s, env, connector.Task{Key: "orders"}, nil)
		if len(res.Rows) != total {
			b.Fatalf("read %d rows", len(res.Rows))
		}
		read += total
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "rows/s")
}
