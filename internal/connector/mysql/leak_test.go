package mysql

import (
	"context"
	"runtime"
	"testing"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/sqlkit/sqlkittest"
	"github.com/backbone-etl/backbone/internal/record"
)

// Every component closes what it opened: no goroutine and no server
// connection outlives Close, whatever state it was closed in.
func TestNoLeakedGoroutinesOrConnections(t *testing.T) {
	db := newTestDB(t)
	ratesTable(db)
	db.exec(`CREATE TABLE ev (id INT PRIMARY KEY, v VARCHAR(10))`)
	db.exec(`INSERT INTO ev SELECT seq, CONCAT('v', seq) FROM seq_1_to_100`)
	db.exec(`CREATE TABLE heap (v VARCHAR(10))`)
	db.exec(`INSERT INTO heap SELECT CONCAT('v', seq) FROM seq_1_to_100`)
	if n := len(db.conns()); n != 0 {
		t.Fatalf("%d connections before the test", n)
	}
	base := runtime.NumGoroutine()
	ctx := context.Background()
	env := sqlkittest.Env(t)

	// An incremental read to its end, and a streaming read closed halfway.
	res := sqlkittest.ReadAll(t, kit.Source(t, db.yaml("table: ev\nmode: incremental\ncursor: id\nkey: id\nbatch_rows: 7")), env, connector.Task{Key: "ev"}, nil)
	if len(res.Rows) != 100 {
		t.Fatalf("read %d rows", len(res.Rows))
	}
	r, err := kit.Source(t, db.yaml("query: SELECT v FROM heap\nbatch_rows: 10")).Open(ctx, env, connector.Task{Key: "q"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sqlkittest.Drain(t, r, 2)
	r.Close()

	// A committed writer, one closed with staged rows, an abandoned replace.
	for _, tc := range []struct {
		yaml   string
		commit bool
	}{{"table: kv\ncreate: true", true}, {"table: kv\ncreate: true", false}, {"table: kv\nmode: replace", false}} {
		w, err := kit.Sink(t, db.yaml(tc.yaml)).Open(ctx, env, kv)
		if err != nil {
			t.Fatal(err)
		}
		sqlkittest.Write(t, w, kv, []record.Row{{"a", int64(1), "x"}})
		if tc.commit {
			sqlkittest.Commit(t, w, connector.Checkpoint{Task: "t"})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kit.Sink(t, db.yaml("table: kv")).(connector.CheckpointLoader).LoadCheckpoints(ctx, env); err != nil {
		t.Fatal(err)
	}

	// Lookups: preload with a background refresh, and query mode.
	for _, mode := range []string{"{mode: preload, refresh: 1ms}", "{mode: query}"} {
		tbl, err := kit.Lookup(t, db.yaml("table: rates\nkey: [currency, day]\ncache: "+mode)).Open(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := tbl.Get(ctx, []any{"EUR", "2024-01-01"}); err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		if err := tbl.Close(); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, "the components' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	eventually(t, "the components' connections to close", func() bool { return len(db.conns()) == 0 })
}
