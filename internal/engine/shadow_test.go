package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backbone-etl/backbone/internal/config"
	"github.com/backbone-etl/backbone/internal/connector"
	"github.com/backbone-etl/backbone/internal/connector/builtin"
	"github.com/backbone-etl/backbone/internal/engine"
	"github.com/backbone-etl/backbone/internal/fixture"
	"github.com/backbone-etl/backbone/internal/record"
)

// TestShadowIsolated feeds prepared batches to a pipeline whose own source
// and sink must never be used: the output and every reject come back, the
// error budget does not stop the run, and nothing reaches a store.
func TestShadowIsolated(t *testing.T) {
	tasks := map[string]int{"a": 250, "b": 130}
	bad := map[int]bool{3: true, 100: true}
	prepared := &numSource{tasks: tasks, bad: bad, batch: 64}
	sample := readAll(t, prepared)

	ownSink := newMemSink(connector.WriterInfo{Transactional: true})
	p := pipeline(t, &numSource{tasks: map[string]int{"never": 5}, batch: 1}, ownSink, evenFilter{})
	p.Errors = config.ErrorPolicy{MaxRejectRate: 0.001, MaxRejects: 1, MinSample: 1} // two rejects: a run would fail
	capture := &fixture.Sink{}
	res, err := engine.Shadow(context.Background(), p, fixture.NewSource(numSchema, "sample", sample), capture, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ownSink.commits != 0 || len(ownSink.rows) != 0 {
		t.Fatalf("the pipeline's own sink was used: %d commits", ownSink.commits)
	}
	if res.Run.Read != 380 || res.Run.Rejected != 4 || !res.Conserved() {
		t.Fatalf("read %d rejected %d written %d filtered %d; want 380 read, 4 rejected (2 per task)", res.Run.Read, res.Run.Rejected, res.Run.Written, res.Run.Filtered)
	}
	if len(res.Rejects) != 4 {
		t.Fatalf("%d rejects returned, want 4", len(res.Rejects))
	}
	for _, d := range res.Rejects {
		if d.Step != "source" || !strings.HasPrefix(d.Loc, "a:") && !strings.HasPrefix(d.Loc, "b:") {
			t.Errorf("reject %+v: want a source reject at its task's place", d)
		}
	}
	rows := capture.Rows()
	if int64(len(rows)) != res.Run.Written {
		t.Fatalf("%d rows captured, %d written", len(rows), res.Run.Written)
	}
	for _, r := range rows {
		if r.Values[1].(int64)%2 == 1 {
			t.Fatalf("row %v passed the filter", r.Values)
		}
	}

	// The same source feeds a second run the same records: the first run's
	// steps did not change them.
	again := &fixture.Sink{}
	res2, err := engine.Shadow(context.Background(), p, fixture.NewSource(numSchema, "sample", sample), again, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Run.Written != res.Run.Written || len(again.Rows()) != len(rows) {
		t.Fatalf("second run wrote %d, first %d", res2.Run.Written, res.Run.Written)
	}
}

// readAll reads every batch of a source, as TakeSample would.
func readAll(t *testing.T, src connector.Source) []*record.Batch {
	t.Helper()
	ctx := context.Background()
	tasks, err := src.Plan(ctx, &connector.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*record.Batch
	for _, task := range tasks {
		rd, err := src.Open(ctx, &connector.Env{}, task, nil)
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := rd.Next(ctx)
			if err != nil {
				break
			}
			out = append(out, b)
		}
		rd.Close()
	}
	return out
}

func loadPipeline(t *testing.T, dir, src string) *config.Pipeline {
	t.Helper()
	r := connector.NewRegistry()
	builtin.Register(r)
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.LoadFile(path, config.Options{Registry: r, Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTakeSample(t *testing.T) {
	dir := t.TempDir()
	var a strings.Builder
	a.WriteString("id,at\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&a, "%d,%s\n", i, time.Date(2026, 11, i, 0, 0, 0, 0, time.UTC).Format(time.RFC3339))
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.csv", a.String())
	write("b.csv", "id,at\n11,2026-11-11T00:00:00Z\nbad,2026-11-12T00:00:00Z\n13,2026-11-13T00:00:00Z\n")
	p := loadPipeline(t, dir, "source: {type: csv, path: \"*.csv\", schema: {id: int, at: timestamp}}\nsink: {type: jsonl, path: out.jsonl}\n")
	before := snapshot(t, dir)

	for _, tc := range []struct {
		name       string
		opts       engine.SampleOptions
		records    int
		rows       int
		truncated  bool
		timeField  string
		wantErrSub string
	}{
		{name: "all", opts: engine.SampleOptions{}, records: 13, rows: 12},
		{name: "first 4", opts: engine.SampleOptions{Max: 4}, records: 4, rows: 4, truncated: true},
		{name: "across files, with the malformed record", opts: engine.SampleOptions{Max: 12}, records: 12, rows: 11, truncated: true},
		{name: "since", opts: engine.SampleOptions{Since: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)}, records: 5, rows: 4, timeField: "at"},
		{name: "since, capped", opts: engine.SampleOptions{Since: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC), Max: 2}, records: 2, rows: 2, truncated: true, timeField: "at"},
		{name: "since on a field that is not a time", opts: engine.SampleOptions{Since: time.Now(), TimeField: "id"}, wantErrSub: `time field "id" is a int`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := engine.TakeSample(context.Background(), p, tc.opts)
			if tc.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			for _, b := range s.Batches {
				rows += len(b.Rows)
				if b.Read != len(b.Rows)+len(b.Rejects) {
					t.Errorf("batch read %d, holds %d rows and %d rejects", b.Read, len(b.Rows), len(b.Rejects))
				}
			}
			if s.Records != tc.records || rows != tc.rows || s.Truncated != tc.truncated || s.TimeField != tc.timeField {
				t.Errorf("records %d rows %d truncated %v time field %q; want %d, %d, %v, %q",
					s.Records, rows, s.Truncated, s.TimeField, tc.records, tc.rows, tc.truncated, tc.timeField)
			}
		})
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("sampling changed the directory:\n%s\n---\n%s", before, after)
	}
}

// snapshot lists a directory's files with their sizes and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b.WriteString(path + " " + fi.ModTime().String() + "\n" + string(data) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// With nothing to read, the sample is empty and has the declared schema,
// so both versions still bind and run.
func TestTakeSampleNoInput(t *testing.T) {
	p := loadPipeline(t, t.TempDir(), "source: {type: csv, path: \"none/*.csv\", schema: {id: int}}\nsink: {type: jsonl, path: out.jsonl}\n")
	s, err := engine.TakeSample(context.Background(), p, engine.SampleOptions{Max: 10, Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 0 || len(s.Batches) != 0 || s.Schema.String() != "id int" {
		t.Fatalf("sample %+v", s)
	}
}
