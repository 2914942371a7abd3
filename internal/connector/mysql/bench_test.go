package mysql

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

// benchBatches makes 16 batches of 8-column rows; consecutive batches
// share half of their ids.
func benchBatches(batchRows int) []*record.Batch {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	batches := make([]*record.Batch, 16)
	for i := range batches {
		rows := make([]record.Row, batchRows)
		for j := range rows {
			id := int64(i*batchRows/2 + j)
			rows[j] = record.Row{id, fmt.Sprint("customer ", id), id % 100, float64(id) / 3, record.MustDec(fmt.Sprintf("%d.%02d", id*7, id%100)),
				at.Add(time.Duration(id) * time.Millisecond), id%2 == 0, "some note text"}
		}
		batches[i] = &record.Batch{Schema: benchSchema, Rows: rows}
	}
	return batches
}

// benchSink writes batches of 4096 rows, one Commit (with a checkpoint)
// per batch, as the engine does.
func benchSink(b *testing.B, yaml string) {
	db := newTestDB(b)
	w, err := kit.Sink(b, db.yaml(yaml)).Open(context.Background(), sqlkittest.Env(b), benchSchema)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	const batchRows = 4096
	batches := benchBatches(batchRows)
	ctx := context.Background()
	rows := 0
	for i := 0; b.Loop(); i++ {
		if n, err := w.Write(ctx, batches[i%len(batches)]); err != nil || n != batchRows {
			b.Fatalf("Write: n=%d err=%v", n, err)
		}
		if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position(fmt.Sprint(i))}}); err != nil {
			b.Fatal(err)
		}
		rows += batchRows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkSinkAppend appends 8-column rows into an InnoDB table without
// secondary indexes.
func BenchmarkSinkAppend(b *testing.B) { benchSink(b, "table: orders\ncreate: true") }

// BenchmarkSinkUpsert upserts 8-column rows by an int primary key; half of
// the rows of each batch update existing keys.
func BenchmarkSinkUpsert(b *testing.B) {
	benchSink(b, "table: orders\nmode: upsert\nkey: id\ncreate: true")
}

// BenchmarkSourceIncremental reads 100k 8-column rows with an index on
// (cursor, key), in keyset batches of 4096.
func BenchmarkSourceIncremental(b *testing.B) {
	db := newTestDB(b)
	w, err := kit.Sink(b, db.yaml("table: orders\nmode: upsert\nkey: id\ncreate: true")).Open(context.Background(), sqlkittest.Env(b), benchSchema)
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
	db.exec("CREATE INDEX orders_cursor ON orders (at, id)")
	s := kit.Source(b, db.yaml("table: orders\nmode: incremental\ncursor: at\nkey: id"))
	read := 0
	for b.Loop() {
		res := sqlkittest.ReadAll(b, s, sqlkittest.Env(b), connector.Task{Key: "orders"}, nil)
		if len(res.Rows) != total {
			b.Fatalf("read %d rows", len(res.Rows))
		}
		read += total
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "rows/s")
}
