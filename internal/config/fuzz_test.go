package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/backbone-etl/backbone/internal/config"
)

// fuzzSecret is the value of the variables FuzzLoad offers whose names
// mark them secret: it must appear in no message.
const fuzzSecret = "Fuzz-S3cret-Value"

var fuzzEnv = envOf(map[string]string{
	"N":           "500",
	"DIR":         "/data",
	"EMPTY":       "",
	"DB_PASSWORD": fuzzSecret,
	"API_TOKEN":   `quote"d\` + fuzzSecret,
	"MY_VALUE":    "plain value",
	"RATE":        "1%",
})

// FuzzLoad checks that any bytes either load or fail with config.Errors,
// sorted, each at a place in the file, none showing a secret.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		validPipeline,
		"source: {type: csv, path: a.csv}\nsink: {type: stdout}\n",
		"secret_env: [MY_VALUE]\nsource:\n  type: ${MY_VALUE}\n  path: ${DIR}/a.csv\nsink:\n  type: sqlite\n  path: ${DB_PASSWORD}\n  table: t\nsettings:\n  batch_rows: ${N}\nerrors:\n  max_reject_rate: ${RATE}\n",
		"source:\n  type: ${DB_PASSWORD}\nsink:\n  type: \"${API_TOKEN}\"\n",
		"source:\n  type: jsonl\n  path: in.jsonl\n  schema: {a: int, b: json}\nsteps:\n  - cast: {a: string}\n  - rename: {a: b}\n  - drop: [b]\n  - dedupe: {key: [a]}\nsink:\n  type: parquet\n  path: out.parquet\n",
		"source:\n  type: sqlite\n  path: db.sqlite\n  table: t\n  mode: incremental\n  cursor: updated_at\n  key: id\nsink: {type: csv, path: out.csv, header: false}\n",
		"steps:\n  - validate:\n      - check: |\n          x > ${N}\n        message: >\n          folded ${EMPTY:-text}\n",
		"sorce: 1\nsource:\n  type: cvs\n  pathh: a\nsteps:\n  - fliter: x\n  - filter: {a: 1}\nsink:\n  type: stdot\nsettings:\n  batch_rows: abc\n",
		"source:\n  type: csv\n  path: [a\n",
		"source:\n  type: csv\n  path: a\n  path: b\n",
		"- a\n- b\n",
		"",
		"---\n",
		"a: b: c\n",
		"source: &x {type: csv, path: a}\nsink: *x\n",
		"source: !!map {type: csv, path: a}\nsink: !custom {type: stdout}\n",
		"{source: {type: csv, path: a}, sink: {type: stdout}, steps: [{filter: x}]}\n",
		"source: {type: csv, path: ${UNSET}, delimiter: \"${1BAD}\"}\nsink: {type: stdout}\nname: ${\n",
		"source:\n  type: csv\n  path: a\nsink:\n  type: stdout\n---\nsource: x\n",
		"\t\tsource: x\n",
		"source: \"unterminated\n",
		"steps:\n  -\n  - \n  - []\n  - {}\n  - filter:\n",
		"lookups:\n  a b: {type: csv}\n  c: 5\n  d: {type: nope}\nsource:\nsink:\n",
	}
	if paths, _ := filepath.Glob("../../examples/*/*.yaml"); len(paths) > 0 {
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	reg := probeRegistry()
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := config.Load("p.yaml", raw, config.Options{Registry: reg, Env: fuzzEnv})
		if err == nil {
			if p == nil || p.Source == nil || p.Sink == nil {
				t.Fatalf("Load succeeded without a source and a sink: %+v", p)
			}
			if p.Settings.Limits.BatchRows < 1 || p.Timezone == nil || p.Name == "" {
				t.Fatalf("Load succeeded with BatchRows %d, Timezone %v, Name %q", p.Settings.Limits.BatchRows, p.Timezone, p.Name)
			}
			return
		}
		if p != nil {
			t.Fatalf("Load returned a pipeline with its error %v", err)
		}
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Load error is a %T (%v), want config.Errors", err, err)
		}
		if len(errs) == 0 {
			t.Fatalf("Load failed with no errors")
		}
		if !sort.SliceIsSorted(errs, func(i, j int) bool {
			a, b := errs[i].Pos, errs[j].Pos
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		}) {
			t.Fatalf("errors are not in file order:\n%v", err)
		}
		for _, e := range errs {
			if e.Pos.File != "p.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Errorf("error %q is not at a place in p.yaml (pos %+v)", e.Error(), e.Pos)
			}
			if strings.TrimSpace(e.Msg) == "" {
				t.Errorf("error at %s has no message", e.Pos)
			}
			if strings.Contains(e.Error(), fuzzSecret) {
				t.Errorf("error %q shows a secret", e.Error())
			}
		}
	})
}
