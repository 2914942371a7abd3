package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/postgres"
	"github.com/backbone-etl/backbone/internal/record"
)

// A sink commits rows and the checkpoint together; a source reads them
// back incrementally. (It needs a server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	env := &connector.Env{Pipeline: "orders", RunID: "r1", Limits: record.DefaultLimits}
	r := connector.NewRegistry()
	postgres.Register(r)
	const conn = "dsn: postgres://postgres@127.0.0.1:5432/test\n"

	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "total", Type: record.Decimal})
	sinkEntry, _ := r.Get(connector.KindSink, "postgres")
	p, _ := connector.ParamsFromYAML(conn + "table: orders\nmode: upsert\nkey: id\ncreate: true")
	sink, err := sinkEntry.Sink(p)
	if err != nil {
		log.Fatal(err)
	}
	w, err := sink.Open(ctx, env, schema)
	if err != nil {
		log.Fatal(err) // errors.Is(err, connector.ErrUnavailable) when the server is down
	}
	rows := []record.Row{{int64(1), record.MustDec("9.90")}, {int64(2), record.MustDec("0.10")}}
	if _, err := w.Write(ctx, &record.Batch{Schema: schema, Rows: rows}); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(ctx, []connector.Checkpoint{{Task: "orders.csv", Pos: record.Position("42")}}); err != nil {
		log.Fatal(err)
	}
	w.Close()

	srcEntry, _ := r.Get(connector.KindSource, "postgres")
	p, _ = connector.ParamsFromYAML(conn + "table: orders\nmode: incremental\ncursor: id\nkey: id")
	src, _ := srcEntry.Source(p)
	tasks, _ := src.Plan(ctx, env)
	rd, err := src.Open(ctx, env, tasks[0], nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rd.Close()
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, row := range b.Rows {
			fmt.Println(row...)
		}
		fmt.Printf("resume from %s\n", b.Pos)
	}
}
