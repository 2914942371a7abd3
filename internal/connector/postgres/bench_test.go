package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

var benchSchema = record.MustSchema(
	record.Field{Name: "id", Type: record.Int}, record.Field{Name: "name", Type: record.String},
	record.Field{Name: "qty", Type: record.Int}, record.Field{Name: "price", Type: record.Float},
	record.Field{Name: "amount", Type: record.Decimal}, record.Field{Name: "at", Type: record.Timestamp},
	record.Field{Name: "active", Type: record.Bool}, record.Field{Name: "note", Type: record.String},
)

const benchTable = `(id bigint, name text, qty bigint, price double precision, amount numeric, at timestamptz, active boolean, note text)`

func benchRow(id int64) record.Row {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return record.Row{id, fmt.Sprint("customer ", id), id % 100, float64(id) / 3, record.DecFromInt(id * 7),
		at.Add(time.Duration(id) * time.Millisecond), id%2 == 0, "some note text"}
}

// benchBatches makes n batches of size rows with ids from first on.
func benchBatches(n, size int, first int64) []*record.Batch {
	out := make([]*record.Batch, n)
	for i := range out {
		rows := make([]record.Row, size)
		for j := range rows {
			rows[j] = benchRow(first + int64(i*size+j))
		}
		out[i] = &record.Batch{Schema: benchSchema, Rows: rows}
	}
	return out
}

// pump writes batches the way the engine does: Prepare on two workers
// ahead of Write, then Write and Commit (with a checkpoint) per batch in
// order.
func pump(tb testing.TB, w connector.Writer, batches []*record.Batch) {
	tb.Helper()
	ctx := context.Background()
	prep := w.(connector.Preparer)
	ready := make([]chan struct{}, len(batches))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range next {
				prep.Prepare(batches[i])
				close(ready[i])
			}
		})
	}
	go func() {
		for i := range batches {
			next <- i
		}
		close(next)
	}()
	for i, b := range batches {
		<-ready[i]
		if n, err := w.Write(ctx, b); err != nil || n != b.Len() {
			tb.Fatalf("Write: n=%d err=%v", n, err)
		}
		if err := w.Commit(ctx, []connector.Checkpoint{{Task: "t", Pos: record.Position(fmt.Sprint(i))}}); err != nil {
			tb.Fatal(err)
		}
		b.Prepared = nil
	}
	wg.Wait()
}

// BenchmarkSinkAppend appends 8-column rows in batches of 4096, one
// Commit (with a checkpoint) per batch, encoding on two workers.
func BenchmarkSinkAppend(b *testing.B) {
	p := newPG(b)
	p.exec("CREATE TABLE orders " + benchTable)
	w := openWriter(b, testEnv(b), buildSink(b, p.yaml("table: orders")), benchSchema)
	batches := benchBatches(16, 4096, 0)
	rows := 0
	for b.Loop() {
		pump(b, w, batches)
		rows += 16 * 4096
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkSinkUpsert upserts 8-column rows in batches of 4096, one Commit
// per batch; consecutive batches overlap by half, so half of the rows
// update existing keys.
func BenchmarkSinkUpsert(b *testing.B) {
	p := newPG(b)
	p.exec("CREATE TABLE orders " + benchTable + "; ALTER TABLE orders ADD PRIMARY KEY (id)")
	w := openWriter(b, testEnv(b), buildSink(b, p.yaml("table: orders\nmode: upsert\nkey: id")), benchSchema)
	batches := make([]*record.Batch, 16)
	for i := range batches {
		batches[i] = benchBatches(1, 4096, int64(i*4096/2))[0]
	}
	rows := 0
	for b.Loop() {
		pump(b, w, batches)
		rows += 16 * 4096
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// The comparisons below load the same rows with psql and through the sink
// and report the ratio. They need psql and BACKBONE_BENCH_ROWS (say
// 1000000); batch_rows is the sink's rows per Write and Commit.

func compareSetup(b *testing.B) (*pg, []*record.Batch, string, int) {
	total := 0
	fmt.Sscan(os.Getenv("BACKBONE_BENCH_ROWS"), &total)
	if total <= 0 {
		b.Skip("set BACKBONE_BENCH_ROWS to compare with psql")
	}
	if _, err := osexec.LookPath("psql"); err != nil {
		b.Skip("psql is not installed")
	}
	size := 4096
	fmt.Sscan(os.Getenv("BACKBONE_BENCH_BATCH"), &size)
	p := newPG(b)
	batches := benchBatches((total+size-1)/size, size, 0)
	// The same rows as a COPY text file, for psql.
	var buf bytes.Buffer
	cols := make([]copyColumn, benchSchema.Len())
	for i, f := range benchSchema.Fields() {
		cols[i] = copyColumn{name: f.Name, ftype: f.Type, target: targetOf(createdOID(f.Type))}
	}
	var scratch, line []byte
	for _, bt := range batches {
		for _, r := range bt.Rows {
			line, _, _ = appendCopyRow(line[:0], cols, r, time.UTC, -1, &scratch)
			buf.Write(line)
		}
	}
	file := filepath.Join(b.TempDir(), "rows.txt")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return p, batches, file, total
}

func psql(b *testing.B, p *pg, script string) time.Duration {
	b.Helper()
	start := time.Now()
	cmd := osexec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", baseDSN())
	cmd.Stdin = bytes.NewBufferString("SET search_path TO " + quoteIdent(p.schema) + ";\n" + script)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("psql: %v\n%s", err, out)
	}
	return time.Since(start)
}

// BenchmarkCompareAppend: psql \copy of a file against the sink in mode
// append.
func BenchmarkCompareAppend(b *testing.B) {
	p, batches, file, total := compareSetup(b)
	p.exec("CREATE TABLE orders " + benchTable + "; CREATE TABLE base " + benchTable)
	var ours, theirs time.Duration
	for b.Loop() {
		p.exec("TRUNCATE orders; TRUNCATE base; CHECKPOINT")
		theirs += psql(b, p, `\copy base FROM '`+file+`'`+"\n")
		p.exec("CHECKPOINT")
		w := openWriter(b, testEnv(b), buildSink(b, p.yaml("table: orders")), benchSchema)
		start := time.Now()
		pump(b, w, batches)
		ours += time.Since(start)
		w.Close()
	}
	b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(total)*float64(b.N)/theirs.Seconds(), "psql-rows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-psql")
}

// BenchmarkCompareUpsert: the SQL path (COPY into a temporary table, then
// INSERT … ON CONFLICT DO UPDATE, by psql) against the sink in mode upsert,
// both into a table holding half of the keys already.
func BenchmarkCompareUpsert(b *testing.B) {
	p, batches, file, total := compareSetup(b)
	p.exec("CREATE TABLE orders " + benchTable + "; ALTER TABLE orders ADD PRIMARY KEY (id); CREATE TABLE base (LIKE orders INCLUDING ALL)")
	set := "name = EXCLUDED.name, qty = EXCLUDED.qty, price = EXCLUDED.price, amount = EXCLUDED.amount, at = EXCLUDED.at, active = EXCLUDED.active, note = EXCLUDED.note"
	var ours, theirs time.Duration
	half := fmt.Sprint(total / 2)
	for b.Loop() {
		p.exec("TRUNCATE orders; TRUNCATE base; INSERT INTO orders SELECT * FROM generate_series(0, " + half + ") i, LATERAL (SELECT 'x', 0, 0, 0, now(), true, 'old') v; INSERT INTO base SELECT * FROM orders; CHECKPOINT")
		theirs += psql(b, p, "BEGIN;\nCREATE TEMP TABLE stage (LIKE base) ON COMMIT DROP;\n\\copy stage FROM '"+file+"'\n"+
			"INSERT INTO base SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET "+set+";\nCOMMIT;\n")
		p.exec("CHECKPOINT")
		w := openWriter(b, testEnv(b), buildSink(b, p.yaml("table: orders\nmode: upsert\nkey: id")), benchSchema)
		start := time.Now()
		pump(b, w, batches)
		ours += time.Since(start)
		w.Close()
	}
	b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(total)*float64(b.N)/theirs.Seconds(), "sql-rows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-sql")
}

// BenchmarkEncodeBinary renders 8-column rows in binary COPY format.
func BenchmarkEncodeBinary(b *testing.B) {
	cols := make([]copyColumn, benchSchema.Len())
	for i, f := range benchSchema.Fields() {
		oid := createdOID(f.Type)
		cols[i] = copyColumn{name: f.Name, ftype: f.Type, target: targetOf(oid), bin: binaryKind(f.Type, oid)}
	}
	w := &writer{s: &pgSink{cfg: sinkConfig{Mode: modeAppend}}, schema: benchSchema, nc: benchSchema.Len(), cols: cols, binary: true, loc: time.UTC}
	batch := benchBatches(1, 4096, 0)[0]
	b.ReportAllocs()
	for b.Loop() {
		w.encode(batch)
	}
	b.ReportMetric(float64(b.N*4096)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkDecode decodes 8-column rows read in binary.
func BenchmarkDecode(b *testing.B) {
	p := newPG(b)
	p.exec("CREATE TABLE orders " + benchTable)
	w := openWriter(b, testEnv(b), buildSink(b, p.yaml("table: orders")), benchSchema)
	pump(b, w, benchBatches(1, 4096, 0))
	env := testEnv(b)
	env.DeferDecode = true
	r, err := buildSource(b, p.yaml("table: orders")).Open(context.Background(), env, connector.Task{Key: "orders@run1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	batch, err := r.Next(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	decode := batch.Decode
	b.ReportAllocs()
	for b.Loop() {
		batch.Rows, batch.Rejects = nil, nil
		decode(batch)
	}
	b.ReportMetric(float64(b.N*batch.Len())/b.Elapsed().Seconds(), "rows/s")
}
