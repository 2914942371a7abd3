package mysql_test

import (
	"context"
	"fmt"
	"io"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/mysql"
	"github.com/backbone-etl/backbone/internal/record"
)

// A sink commits rows and the checkpoint together; a source reads them
// back incrementally. (It needs a server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	env := &connector.Env{Pipeline: "orders", RunID: "r1", Limits: record.DefaultLimits}
	r := connector.NewRegistry()
	mysql.Register(r)

	schema := record.MustSchema(record.Field{Name: "id", Type: record.Int}, record.Field{Name: "total", Type: record.Decimal})
	sinkEntry, _ := r.Get(connector.KindSink, "mysql")
	p, _ := connector.ParamsFromYAML("dsn: mysql://root@127.0.0.1:3306/test\ntable: orders\nmode: upsert\nkey: id\ncreate: true")
	sink, _ := sinkEntry.Sink(p)
	w, err := sink.Open(ctx, env, schema)
	if err != nil {
		panic(err)
	}
	rows := []record.Row{{int64(1), record.MustDec("9.90")}, {int64(2), record.MustDec("0.10")}}
	if _, err := w.Write(ctx, &record.Batch{Schema: schema, Rows: rows}); err != nil {
		panic(err)
	}
	if err := w.Commit(ctx, []connector.Checkpoint{{Task: "orders.csv", Pos: record.Position("42")}}); err != nil {
		panic(err)
	}
	w.Close()
	cps, _ := sink.(connector.CheckpointLoader).LoadCheckpoints(ctx, env)
	fmt.Printf("checkpoint: %s\n", cps["orders.csv"].Pos)

	srcEntry, _ := r.Get(connector.KindSource, "mysql")
	p, _ = connector.ParamsFromYAML("dsn: mysql://root@127.0.0.1:3306/test\ntable: orders\nmode: incremental\ncursor: id\nkey: id")
	src, _ := srcEntry.Source(p)
	tasks, _ := src.Plan(ctx, env)
	rd, err := src.Open(ctx, env, tasks[0], nil)
	if err != nil {
		panic(err)
	}
	defer rd.Close()
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			break
		}
		for _, row := range b.Rows {
			fmt.Println(row...) // 1 9.900000000000000000000000000000, 2 0.100000000000000000000000000000
		}
	}
}
