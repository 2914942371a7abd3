package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/postgres"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/record"
	"github.com/backbone-etl/backbone/internal/state/sqlitestate"
)

func dsn() string {
	if d := os.Getenv("BACKBONE_TEST_POSTGRES_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// schemaFor makes a schema of its own for a test, dropped at its end.
func schemaFor(tb testing.TB) (*pgconn.PgConn, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, dsn())
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is not reachable and CI=true: %v", err)
		}
		tb.Skipf("PostgreSQL is not reachable (%v): skipping", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "bbe_" + hex.EncodeToString(b[:])
	run(tb, c, "CREATE SCHEMA "+schema)
	tb.Cleanup(func() {
		run(tb, c, "DROP SCHEMA "+schema+" CASCADE")
		c.Close(context.Background())
	})
	return c, schema
}

func run(tb testing.TB, c *pgconn.PgConn, sql string) [][][]byte {
	tb.Helper()
	res, err := c.Exec(context.Background(), sql).ReadAll()
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	if len(res) == 0 {
		return nil
	}
	return res[len(res)-1].Rows
}

// pipelineOf builds a pipeline from the postgres source and sink.
func pipelineOf(tb testing.TB, name, srcYAML, sinkYAML string, batchRows int) *config.Pipeline {
	tb.Helper()
	r := connector.NewRegistry()
	postgres.Register(r)
	build := func(kind connector.Kind, src string) *config.Component {
		p, err := connector.ParamsFromYAML(src)
		if err != nil {
			tb.Fatal(err)
		}
		e, _ := r.Get(kind, "postgres")
		c := &config.Component{Kind: kind, Type: "postgres", Label: string(kind), Entry: e, Params: p}
		switch kind {
		case connector.KindSource:
			c.Source, err = e.Source(p)
		case connector.KindSink:
			c.Sink, err = e.Sink(p)
		}
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	limits := record.DefaultLimits
	limits.BatchRows = batchRows
	return &config.Pipeline{
		File: "p.yaml", Dir: tb.TempDir(), Name: name, Hash: "h",
		Source:   build(connector.KindSource, srcYAML),
		Sink:     build(connector.KindSink, sinkYAML),
		Redactor: &config.Redactor{},
		Errors:   config.ErrorPolicy{MaxRejectRate: -1, MaxRejects: -1, MinSample: 1000},
		Settings: config.Settings{Limits: limits},
	}
}

func runOnce(tb testing.TB, p *config.Pipeline, store string) *engine.Result {
	tb.Helper()
	return runWith(tb, p, store, engine.Options{})
}

func runWith(tb testing.TB, p *config.Pipeline, store string, opts engine.Options) *engine.Result {
	tb.Helper()
	st, err := sqlitestate.Open(context.Background(), store)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	opts.Store = st
	res, err := engine.Run(context.Background(), p, opts)
	if err != nil {
		tb.Fatalf("run: %v", err)
	}
	return res
}

// TestEngineIncrementalCopyIsExactlyOnce runs PostgreSQL to PostgreSQL
// through the engine three times, with new and late rows in between.
func TestEngineIncrementalCopyIsExactlyOnce(t *testing.T) {
	c, schema := schemaFor(t)
	run(t, c, `SET search_path TO `+schema+`;
		CREATE TABLE src (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text);
		CREATE INDEX ON src (at, id);
		INSERT INTO src SELECT i, '2024-01-01'::timestamptz + (i / 7) * interval '1 microsecond', 'v' || i FROM generate_series(1, 20000) i;
		CREATE TABLE dst (id bigint PRIMARY KEY, at timestamptz, v text)`)
	conn := fmt.Sprintf("dsn: %q\ndb_schema: %s\n", dsn(), schema)
	p := pipelineOf(t, "copy", conn+"table: src\nmode: incremental\ncursor: at\nkey: id\nlookback: 1m",
		conn+"table: dst\nmode: upsert\nkey: id", 1000)
	store := filepath.Join(t.TempDir(), "state.db")
	res := runOnce(t, p, store)
	if res.Run.Read != 20000 || res.Run.Written != 20000 {
		t.Fatalf("first run: read %d, written %d", res.Run.Read, res.Run.Written)
	}
	run(t, c, `SET search_path TO `+schema+`;
		UPDATE src SET v = 'changed', at = at + interval '1 hour' WHERE id % 1000 = 0;
		INSERT INTO src VALUES (30000, '2024-01-01', 'late')`)
	res = runOnce(t, p, store)
	if res.Run.Written < 20 {
		t.Errorf("second run wrote %d rows, want the 20 changed ones at least", res.Run.Written)
	}
	rows := run(t, c, `SET search_path TO `+schema+`; SELECT count(*), count(*) FILTER (WHERE v = 'changed'),
		(SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst) d) FROM dst`)
	if got := fmt.Sprintf("%s %s %s", rows[0][0], rows[0][1], rows[0][2]); got != "20001 20 0" {
		t.Errorf("dst: rows, changed, differing = %s, want 20001 20 0", got)
	}
}

// BenchmarkPipelineIncremental compares PostgreSQL to PostgreSQL through
// the engine (incremental source, append sink) with psql piping COPY TO
// into COPY FROM. It needs psql and BACKBONE_BENCH_ROWS.
func BenchmarkPipelineIncremental(b *testing.B) {
	total := 0
	fmt.Sscan(os.Getenv("BACKBONE_BENCH_ROWS"), &total)
	if total <= 0 {
		b.Skip("set BACKBONE_BENCH_ROWS to compare with psql")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		b.Skip("psql is not installed")
	}
	batch := 4096
	fmt.Sscan(os.Getenv("BACKBONE_BENCH_BATCH"), &batch)
	c, schema := schemaFor(b)
	cols := "id bigint, name text, qty bigint, price double precision, amount numeric, at timestamptz, active boolean, note text"
	run(b, c, fmt.Sprintf(`SET search_path TO %s;
		CREATE TABLE src (%s, PRIMARY KEY (id));
		INSERT INTO src SELECT i, 'customer ' || i, i %% 100, i / 3.0, i * 7, '2024-01-01'::timestamptz + (i / 10) * interval '1 millisecond', i %% 2 = 0, 'some note text'
			FROM generate_series(1, %d) i;
		CREATE INDEX ON src (at, id); ANALYZE src;
		CREATE TABLE dst (%s); CREATE TABLE base (%s)`, schema, cols, total, cols, cols))
	conn := fmt.Sprintf("dsn: %q\ndb_schema: %s\n", dsn(), schema)
	var ours, theirs time.Duration
	for b.Loop() {
		run(b, c, "SET search_path TO "+schema+"; TRUNCATE dst; TRUNCATE base; DROP TABLE IF EXISTS backbone_checkpoints, backbone_meta; CHECKPOINT")
		start := time.Now()
		pipe := exec.Command("bash", "-c", fmt.Sprintf(`psql -X -q %q -c "COPY (SELECT * FROM %s.src ORDER BY at, id) TO STDOUT" | psql -X -q %q -c "COPY %s.base FROM STDIN"`,
			dsn(), schema, dsn(), schema))
		if out, err := pipe.CombinedOutput(); err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		theirs += time.Since(start)
		run(b, c, "CHECKPOINT")
		p := pipelineOf(b, "bench", conn+"table: src\nmode: incremental\ncursor: at\nkey: id", conn+"table: dst", batch)
		start = time.Now()
		// As `backbone run` does: a memory budget tunes the collector.
		res := runWith(b, p, filepath.Join(b.TempDir(), "state.db"), engine.Options{MemoryBudget: 80 << 20})
		ours += time.Since(start)
		if res.Run.Written != int64(total) {
			b.Fatalf("wrote %d rows, want %d", res.Run.Written, total)
		}
	}
	rows := run(b, c, "SET search_path TO "+schema+"; SELECT (SELECT count(*) FROM (SELECT * FROM dst EXCEPT SELECT * FROM base) d)")
	if !bytes.Equal(rows[0][0], []byte("0")) {
		b.Errorf("%s rows differ between the engine's copy and psql's", rows[0][0])
	}
	b.ReportMetric(float64(total)*float64(b.N)/ours.Seconds(), "rows/s")
	b.ReportMetric(float64(total)*float64(b.N)/theirs.Seconds(), "psql-rows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-psql")
}
