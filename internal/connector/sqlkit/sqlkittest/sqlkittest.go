// Package sqlkittest holds what the tests of the SQL connectors (PostgreSQL,
// MySQL/MariaDB, SQLite) share: an environment, the components built from
// YAML as the registry builds them, and reading or writing them to the end
// with every batch checked.
//
//	var kit = sqlkittest.Kit{Name: "sqlite", Register: Register}
//
//	res := sqlkittest.ReadAll(t, kit.Source(t, "path: a.db\ntable: t"), sqlkittest.Env(t), task, nil)
package sqlkittest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/record"
)

// Env is a run's environment: pipeline "orders", run "run1", a temporary
// directory, the default limits and UTC.
func Env(t testing.TB) *connector.Env {
	t.Helper()
	return &connector.Env{
		Pipeline: "orders",
		RunID:    "run1",
		RunTime:  time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Dir:      t.TempDir(),
		Limits:   record.DefaultLimits,
		Location: time.UTC,
	}
}

// Params parses a component's YAML configuration.
func Params(t testing.TB, src string) connector.Params {
	t.Helper()
	p, err := connector.ParamsFromYAML(src)
	if err != nil {
		t.Fatalf("ParamsFromYAML: %v", err)
	}
	return p
}

// Kit builds the components of one connector: Name as its Register
// registers them.
type Kit struct {
	Name     string
	Register func(*connector.Registry)
}

// Registry returns a registry holding the connector's components.
func (k Kit) Registry() *connector.Registry {
	r := connector.NewRegistry()
	k.Register(r)
	return r
}

// Source builds the connector's source from YAML.
func (k Kit) Source(t testing.TB, src string) connector.Source {
	t.Helper()
	e, _ := k.Registry().Get(connector.KindSource, k.Name)
	s, err := e.Source(Params(t, src))
	if err != nil {
		t.Fatalf("source factory: %v", err)
	}
	return s
}

// Sink builds the connector's sink from YAML.
func (k Kit) Sink(t testing.TB, src string) connector.Sink {
	t.Helper()
	e, _ := k.Registry().Get(connector.KindSink, k.Name)
	s, err := e.Sink(Params(t, src))
	if err != nil {
		t.Fatalf("sink factory: %v", err)
	}
	return s
}

// Lookup builds the connector's lookup from YAML.
func (k Kit) Lookup(t testing.TB, src string) connector.Lookup {
	t.Helper()
	e, _ := k.Registry().Get(connector.KindLookup, k.Name)
	l, err := e.Lookup(Params(t, src))
	if err != nil {
		t.Fatalf("lookup factory: %v", err)
	}
	return l
}

// Writer opens a writer of the connector's sink built from YAML, closed
// when the test ends.
func (k Kit) Writer(t testing.TB, env *connector.Env, src string, schema *record.Schema) connector.Writer {
	t.Helper()
	return OpenWriter(t, env, k.Sink(t, src), schema)
}

// ConfigErrors checks that the factory of kind refuses each configuration
// (YAML) of tests with a *connector.PosError containing its Want. check,
// when not nil, checks each error further.
func (k Kit) ConfigErrors(t *testing.T, kind connector.Kind, tests []struct{ Name, YAML, Want string }, check func(t *testing.T, pe *connector.PosError)) {
	t.Helper()
	e, _ := k.Registry().Get(kind, k.Name)
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			var err error
			switch p := Params(t, tc.YAML); kind {
			case connector.KindSource:
				_, err = e.Source(p)
			case connector.KindSink:
				_, err = e.Sink(p)
			case connector.KindLookup:
				_, err = e.Lookup(p)
			}
			var pe *connector.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *PosError containing %q", err, tc.Want)
			}
			if !strings.Contains(pe.Msg, tc.Want) {
				t.Errorf("error %q does not contain %q", pe.Msg, tc.Want)
			}
			if check != nil {
				check(t, pe)
			}
		})
	}
}

// Reads checks, for each of tests, that the source configured by
// config(YAML) opens task with the schema Schema (as Schema.String writes
// it) and reads the rows Want.
func (k Kit) Reads(t *testing.T, env *connector.Env, task connector.Task, config func(yaml string) string, tests []struct {
	Name, YAML, Schema string
	Want               []record.Row
}) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			r, err := k.Source(t, config(tc.YAML)).Open(context.Background(), env, task, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Schema().String(); got != tc.Schema {
				t.Errorf("schema %q, want %q", got, tc.Schema)
			}
			res := Drain(t, r, -1)
			if diff := cmp.Diff(tc.Want, res.Rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// IncrementalRun reads one run of an incremental source from pos, which
// must plan one task that is not final and reject nothing, and returns its
// rows and the position to resume from.
func IncrementalRun(t *testing.T, s connector.Source, env *connector.Env, pos record.Position) ([]record.Row, record.Position) {
	t.Helper()
	tasks, err := s.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Final {
		t.Fatalf("tasks %+v, want one task that is not final", tasks)
	}
	res := ReadAll(t, s, env, tasks[0], pos)
	if len(res.Rejects) > 0 {
		t.Fatalf("rejects: %+v", res.Rejects)
	}
	if res.Pos == nil {
		return res.Rows, pos
	}
	return res.Rows, res.Pos
}

// ReadResumed reads the first n batches of the one task s plans, closes
// the reader, then reads the rest from the position of the last batch, as
// a retry within the run does.
func ReadResumed(t *testing.T, s connector.Source, env *connector.Env, n int) (first, rest Read) {
	t.Helper()
	tasks, err := s.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(context.Background(), env, tasks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	first = Drain(t, r, n)
	r.Close()
	return first, ReadAll(t, s, env, tasks[0], first.Pos)
}

// RefusedPositions checks that s refuses to open task at each Pos of tests
// with an error containing its Want.
func RefusedPositions(t *testing.T, s connector.Source, env *connector.Env, task connector.Task, tests []struct {
	Name string
	Pos  record.Position
	Want string
}) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := s.Open(context.Background(), env, task, tc.Pos)
			if err == nil || !strings.Contains(err.Error(), tc.Want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.Want)
			}
		})
	}
}

// Checkpoints loads the checkpoints of env's pipeline that s, a
// connector.CheckpointLoader, stores.
func Checkpoints(t testing.TB, s connector.Sink, env *connector.Env) map[string]connector.Checkpoint {
	t.Helper()
	loader, ok := s.(connector.CheckpointLoader)
	if !ok {
		t.Fatal("the sink does not implement CheckpointLoader")
	}
	cps, err := loader.LoadCheckpoints(context.Background(), env)
	if err != nil {
		t.Fatalf("LoadCheckpoints: %v", err)
	}
	return cps
}

// RefusesUnstorable checks that a writer of the sink configured by yaml,
// for records of a string k and an x of any type, refuses the one row
// whose x no database stores (a struct) naming the field, and writes the
// others.
func (k Kit) RefusesUnstorable(t *testing.T, env *connector.Env, yaml string) {
	t.Helper()
	anyKV := record.MustSchema(record.Field{Name: "k", Type: record.String}, record.Field{Name: "x", Type: record.Any})
	w := k.Writer(t, env, yaml, anyKV)
	n, err := w.Write(context.Background(), &record.Batch{Schema: anyKV, Rows: []record.Row{
		{"a", int64(1)}, {"b", struct{}{}}, {"c", "text"},
	}})
	var be *connector.BatchError
	if n != 2 || !errors.As(err, &be) || len(be.Rows) != 1 || be.Rows[0].Index != 1 || !strings.Contains(be.Rows[0].Err.Error(), `field "x"`) {
		t.Errorf("Write: n=%d err=%v, want row 1 refused naming field x", n, err)
	}
}

// CheckpointsRoundTrip commits cps, then a move of task "orders", by a
// writer of s for records of schema, and a checkpoint of task "a.csv" of
// another pipeline; it checks that s loads for env's pipeline exactly cps,
// with "orders" moved.
func CheckpointsRoundTrip(t *testing.T, s connector.Sink, env *connector.Env, schema *record.Schema, cps []connector.Checkpoint) {
	t.Helper()
	moved := connector.Checkpoint{Task: "orders", Pos: record.Position("moved")}
	w, err := s.Open(context.Background(), env, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	Commit(t, w, cps...)
	Commit(t, w, moved)
	other := *env
	other.Pipeline = "someone_else"
	wo, err := s.Open(context.Background(), &other, schema)
	if err != nil {
		t.Fatal(err)
	}
	Commit(t, wo, connector.Checkpoint{Task: "a.csv", Pos: record.Position("theirs")})
	wo.Close()

	want := map[string]connector.Checkpoint{moved.Task: moved}
	for _, cp := range cps {
		if cp.Task != moved.Task {
			want[cp.Task] = cp
		}
	}
	if diff := cmp.Diff(want, Checkpoints(t, s, env)); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
}

// Read is everything a reader returned.
type Read struct {
	Rows    []record.Row
	Lines   []int64
	Rejects []record.Reject
	Batches int
	Pos     record.Position // of the last batch
}

// ReadAll opens task at pos and reads it to its end.
func ReadAll(t testing.TB, s connector.Source, env *connector.Env, task connector.Task, pos record.Position) Read {
	t.Helper()
	r, err := s.Open(context.Background(), env, task, pos)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	return Drain(t, r, -1)
}

// Drain reads up to max batches (all when max < 0), decoding what a batch
// left to decode and checking the accounting of every batch.
func Drain(t testing.TB, r connector.Reader, max int) Read {
	t.Helper()
	var res Read
	for max < 0 || res.Batches < max {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if b.Decode != nil {
			b.Decode(b)
			b.Decode = nil
		}
		if got := b.Len() + len(b.Rejects) + b.Filtered; got != b.Read {
			t.Fatalf("batch accounting: rows+rejects+filtered = %d, read = %d", got, b.Read)
		}
		if len(b.Lines) != b.Len() {
			t.Fatalf("batch has %d lines for %d rows", len(b.Lines), b.Len())
		}
		if b.Pos == nil {
			t.Fatal("batch without a position")
		}
		res.Batches++
		res.Rows = append(res.Rows, b.Rows...)
		res.Lines = append(res.Lines, b.Lines...)
		res.Rejects = append(res.Rejects, b.Rejects...)
		res.Pos = b.Pos
	}
	return res
}

// OpenWriter opens a writer of s, closed when the test ends.
func OpenWriter(t testing.TB, env *connector.Env, s connector.Sink, schema *record.Schema) connector.Writer {
	t.Helper()
	w, err := s.Open(context.Background(), env, schema)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// Write writes rows, every one of which must be written.
func Write(t testing.TB, w connector.Writer, schema *record.Schema, rows []record.Row) {
	t.Helper()
	n, err := w.Write(context.Background(), &record.Batch{Schema: schema, Rows: rows})
	if err != nil || n != len(rows) {
		t.Fatalf("Write: n=%d err=%v, want %d", n, err, len(rows))
	}
}

// Commit settles w, as the engine does, and commits it with cps.
func Commit(t testing.TB, w connector.Writer, cps ...connector.Checkpoint) {
	t.Helper()
	if st, ok := w.(connector.Settler); ok {
		if refused, err := st.Settle(context.Background()); err != nil || len(refused) > 0 {
			t.Fatalf("Settle: %v, refused %v", err, refused)
		}
	}
	if err := w.Commit(context.Background(), cps); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// MustTime parses a timestamp, in UTC when it has no zone.
func MustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := record.ParseTimestamp(s, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// MustDate parses a date.
func MustDate(t testing.TB, s string) record.LocalDate {
	t.Helper()
	d, err := record.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// LoadsOnly opens l for fields alone (connector.FieldLoader) and checks that
// its index keeps exactly the key fields and fields, and that the row of key
// reads want (nulls for the fields left out). It returns the table open.
func LoadsOnly(t testing.TB, l connector.Lookup, env *connector.Env, fields []string, key []any, want record.Row) connector.Table {
	t.Helper()
	fl, ok := l.(connector.FieldLoader)
	if !ok {
		t.Fatalf("%T does not load fields apart", l)
	}
	tbl, err := fl.OpenFields(context.Background(), env, fields)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	ix := connector.IndexOf(tbl)
	if ix == nil {
		t.Fatalf("%T keeps no index", tbl)
	}
	p, found, err := ix.Pos(key)
	if err != nil || !found {
		t.Fatalf("key %v: found %v, %v", key, found, err)
	}
	wanted := map[string]bool{}
	for _, f := range append(append([]string(nil), tbl.Keys()...), fields...) {
		wanted[f] = true
	}
	got := make(record.Row, tbl.Schema().Len())
	for i, f := range tbl.Schema().Fields() {
		if ix.Loaded(i) != wanted[f.Name] {
			t.Errorf("field %s loaded: %v", f.Name, ix.Loaded(i))
		}
		got[i] = ix.Field(p, i)
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b record.Dec) bool { return a.Cmp(b) == 0 })); d != "" {
		t.Errorf("row of %v (-want +got):\n%s", key, d)
	}
	if _, _, err := tbl.Get(context.Background(), key); err == nil {
		t.Error("Get of a row loaded in part answers")
	}
	return tbl
}
