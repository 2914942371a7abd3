package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// pgSourcePipeline reads schema.orders of PostgreSQL incrementally by
// (updated_at, order_id), filters, maps and validates, and loads into sink.
func pgSourcePipeline(schema, sink string) string {
	return fmt.Sprintf(`name: crash
source:
  type: postgres
  dsn: %q
  db_schema: %s
  table: orders
  mode: incremental
  cursor: updated_at
  key: order_id
steps:
  - filter: status != "cancelled"
  - map: {total: qty * unit_price}
  - validate:
      - {check: "qty > 0", message: "qty must be positive"}
settings: {batch_rows: 2000}
`, pgDSN, schema) + sink
}

// TestCrashPostgresSource kills `backbone run` reading 1M rows of
// PostgreSQL incrementally and upserting them into PostgreSQL and into
// SQLite, at random instants (five seeds) and at named points inside and
// around the commit (crashChains), reruns it, and checks the table equals the source
// (count, distinct keys, a hash over all columns, compared canonically),
// the dead letters are the source's bad rows once each, and the run history
// conserves every record with nothing read twice.
func TestCrashPostgresSource(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	t.Parallel()
	src := postgresTarget(t)
	db := reachable(t, "pgx", pgDSN, "PostgreSQL at 127.0.0.1:5432")
	srcSchema := pgSchema(t, db, "bb_src")
	ordersSource(t, db, srcSchema, dbCrashRows(t, 1_000_000))
	want := sqlDigest(t, "pgx", pgDSN, sourceOrdersQuery(srcSchema))
	wantDL := sourceRejects(t, db, srcSchema)
	if want.count == 0 || wantDL == 0 || want.count != want.distinct {
		t.Fatalf("source: %+v, %d bad rows", want, wantDL)
	}

	type target struct {
		name string
		// sink is the sink's YAML for a run in dir; schema is a fresh
		// PostgreSQL schema (unused by SQLite).
		sink   func(dir, schema string) string
		digest func(t *testing.T, dir, schema string) tableDigest
		count  func(t *testing.T, dir, schema string) int64
	}
	targets := []target{
		{
			name: "postgres",
			sink: func(_, schema string) string {
				return fmt.Sprintf("sink: {type: postgres, dsn: %q, db_schema: %s, table: orders, mode: upsert, key: [order_id], create: true}\n", pgDSN, schema)
			},
			digest: func(t *testing.T, _, schema string) tableDigest {
				return sqlDigest(t, "pgx", pgDSN, sinkOrdersQuery(schema+".orders"))
			},
			count: func(t *testing.T, _, schema string) int64 { return src.count(t, schema) },
		},
		{
			name: "sqlite",
			sink: func(string, string) string {
				return "sink: {type: sqlite, path: warehouse.db, table: orders, mode: upsert, key: [order_id], create: true}\n"
			},
			digest: func(t *testing.T, dir, _ string) tableDigest {
				return sqlDigest(t, "sqlite", "file:"+filepath.Join(dir, "warehouse.db")+"?mode=ro", sinkOrdersQuery("orders"))
			},
			count: func(t *testing.T, dir, _ string) int64 { return committedRows(filepath.Join(dir, "warehouse.db")) },
		},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			setup := func() (string, string) {
				dir, schema := t.TempDir(), ""
				if tg.name == "postgres" {
					schema = src.create(t)
				}
				write(t, filepath.Join(dir, "pipeline.yaml"), pgSourcePipeline(srcSchema, tg.sink(dir, schema)))
				return dir, schema
			}
			ref, refSchema := setup()
			start := time.Now()
			if res := backbone(t, ref, nil, "run", "pipeline.yaml"); res.code != 0 {
				t.Fatalf("reference run: exit %d\n%s", res.code, res.out)
			}
			full := time.Since(start)
			if got := tg.digest(t, ref, refSchema); got != want {
				t.Fatalf("uninterrupted run: table %+v, want the source's %+v", got, want)
			}
			checkHistory(t, filepath.Join(ref, ".backbone", "state.db"), "crash", want.count)
			t.Logf("reference: %d rows, %d dead letters in %s", want.count, wantDL, full)
			for i, c := range crashChains {
				t.Run(c.name, func(t *testing.T) {
					var schema string
					dir := crashChain(t, func() string {
						var dir string
						dir, schema = setup()
						return dir
					}, c.kills, uint64(100+i), full)
					before := tg.count(t, dir, schema)
					t.Logf("killed %q; %d rows committed before the last run", c.kills, before)
					if res := backbone(t, dir, nil, "run", "pipeline.yaml"); res.code != 0 {
						t.Fatalf("run after the kills: exit %d\n%s", res.code, res.out)
					}
					stateDB := filepath.Join(dir, ".backbone", "state.db")
					checkHistory(t, stateDB, "crash", tg.count(t, dir, schema)-before)
					if got := tg.digest(t, dir, schema); got != want {
						t.Fatalf("after the kills: table %+v, want the source's %+v", got, want)
					}
					if n := deadLettersOf(t, stateDB, "crash"); n != wantDL {
						t.Fatalf("after the kills: %d dead letters, want %d", n, wantDL)
					}
				})
			}
		})
	}
}
