package e2e

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// diffJSON is the part of `backbone diff --format json` these tests read.
type diffJSON struct {
	Sampled       int    `json:"sampled"`
	MatchedBy     string `json:"matched_by"`
	Unchanged     int    `json:"unchanged"`
	Changed       int    `json:"changed"`
	OnlyOld       int    `json:"only_in_old"`
	OnlyNew       int    `json:"only_in_new"`
	ChangedFields []struct {
		Field   string `json:"field"`
		Records int    `json:"records"`
	} `json:"changed_fields"`
	Old, New struct {
		Read       int64   `json:"read"`
		Rejected   int64   `json:"rejected"`
		RejectRate float64 `json:"reject_rate"`
		TopReasons []struct {
			Step, Reason string
			Count        int64
		} `json:"top_reasons"`
	}
	Schema struct {
		Added, Removed, Retyped []json.RawMessage
	}
	Failures []string `json:"failures"`
}

// TestDiffQuickstart runs `backbone diff` on the quickstart against three
// changes — a refactor that changes nothing, a formula that changes the EUR
// orders, a check that rejects about 30% — and compares each report with
// what the warehouse a real run loaded says it must be. The sources, the
// warehouse and the state store are byte for byte the same afterwards.
func TestDiffQuickstart(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../examples/quickstart", dir)
	if res := backbone(t, dir, nil, "run", "-q", "pipeline.yaml"); res.code != 0 {
		t.Fatalf("run: exit %d\n%s", res.code, res.out)
	}
	before := checksums(t, dir)
	for _, f := range []string{"warehouse.db", ".backbone/state.db", "data/orders/orders-2026-11-01.csv"} {
		if _, ok := before[f]; !ok {
			t.Fatalf("%s missing after the run: %v", f, before)
		}
	}
	orig, err := os.ReadFile(filepath.Join(dir, "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name, old, new string) {
		t.Helper()
		if !strings.Contains(string(orig), old) {
			t.Fatalf("%s: the quickstart no longer has %q", name, old)
		}
		write(t, filepath.Join(dir, name), strings.Replace(string(orig), old, new, 1))
	}
	const formula = `      total_usd: round(qty * unit_price * lookup("fx", currency).rate, 2)`
	variant("refactor.yaml", formula, `      total_usd: round(total * lookup("fx", currency).rate, 2)`)
	variant("formula.yaml", formula, `      total_usd: 'round(total * lookup("fx", currency).rate * (currency == "EUR" ? 2 : 1), 2)'`)
	variant("check.yaml", "        message: total_usd is implausibly large\n",
		"        message: total_usd is implausibly large\n      - check: order_id % 10 >= 3\n        message: order ids ending in 0, 1 or 2 are held back\n")

	// What the warehouse holds decides what each report must say.
	wh := queryInts(t, dir, "warehouse.db",
		`SELECT count(*) FROM orders_enriched`,
		`SELECT count(*) FROM orders_enriched WHERE currency = 'EUR' AND total_usd != 0`,
		`SELECT count(*) FROM orders_enriched WHERE order_id % 10 < 3`)
	written, eur, held := wh[0], wh[1], wh[2]

	diff := func(newFile string, extra ...string) (diffJSON, result) {
		t.Helper()
		args := append([]string{"diff", "pipeline.yaml", newFile, "--sample", "0", "--format", "json"}, extra...)
		res := backbone(t, dir, nil, args...)
		var d diffJSON
		if err := json.Unmarshal([]byte(res.out), &d); err != nil {
			t.Fatalf("%s: %v\n%s", newFile, err, res.out)
		}
		if d.Sampled != 1200 || d.MatchedBy != "key" || d.Old.Read != 1200 || d.New.Read != 1200 {
			t.Fatalf("%s: sampled %d, matched by %s, read %d/%d; want all 1200 records matched by key", newFile, d.Sampled, d.MatchedBy, d.Old.Read, d.New.Read)
		}
		if len(d.Schema.Added)+len(d.Schema.Removed)+len(d.Schema.Retyped) != 0 {
			t.Errorf("%s: schema changed: %+v", newFile, d.Schema)
		}
		return d, res
	}

	t.Run("refactor", func(t *testing.T) {
		d, res := diff("refactor.yaml", "--max-changed", "0", "--max-reject-rate", "5%")
		if res.code != 0 || d.Changed != 0 || d.OnlyOld != 0 || d.OnlyNew != 0 || int64(d.Unchanged) != written {
			t.Fatalf("exit %d, unchanged %d changed %d only old %d only new %d; want exit 0 and all %d unchanged\n%s",
				res.code, d.Unchanged, d.Changed, d.OnlyOld, d.OnlyNew, written, res.out)
		}
		if d.Old.Rejected != d.New.Rejected || d.Old.Rejected == 0 {
			t.Errorf("rejects old %d new %d: the malformed rows are rejected by both", d.Old.Rejected, d.New.Rejected)
		}
	})

	t.Run("formula", func(t *testing.T) {
		d, res := diff("formula.yaml", "--max-changed", "5%")
		if res.code != 1 || len(d.Failures) != 1 {
			t.Errorf("exit %d, failures %v; want exit 1 over --max-changed", res.code, d.Failures)
		}
		if len(d.ChangedFields) != 1 || d.ChangedFields[0].Field != "total_usd" || int64(d.ChangedFields[0].Records) != eur || int64(d.Changed) != eur {
			t.Fatalf("changed %d, fields %+v; want total_usd in the %d EUR orders\n%s", d.Changed, d.ChangedFields, eur, res.out)
		}
		if int64(d.Unchanged+d.Changed) != written || d.OnlyOld+d.OnlyNew != 0 {
			t.Errorf("unchanged %d + changed %d != %d written", d.Unchanged, d.Changed, written)
		}
		text := backbone(t, dir, nil, "diff", "pipeline.yaml", "formula.yaml", "--sample", "0")
		if text.code != 0 || !strings.Contains(text.out, "total_usd: ") || !strings.Contains(text.out, "records matched by sink key order_id") {
			t.Errorf("text report, exit %d:\n%s", text.code, text.out)
		}
	})

	t.Run("check rejecting 30%", func(t *testing.T) {
		d, res := diff("check.yaml", "--max-reject-rate", "5%")
		if res.code != 1 || len(d.Failures) != 1 || !strings.Contains(d.Failures[0], "reject rate") {
			t.Errorf("exit %d, failures %v; want exit 1 over --max-reject-rate", res.code, d.Failures)
		}
		if d.New.Rejected != d.Old.Rejected+held || int64(d.OnlyOld) != held || d.Changed != 0 {
			t.Fatalf("rejected old %d new %d, only in old %d; want %d more rejects, each only in old\n%s", d.Old.Rejected, d.New.Rejected, d.OnlyOld, held, res.out)
		}
		if d.New.RejectRate < 0.2 || d.New.RejectRate > 0.4 {
			t.Errorf("new reject rate %.3f, want about 30%%", d.New.RejectRate)
		}
		top := d.New.TopReasons[0]
		if top.Step != "validate[4]" || top.Count != held || !strings.Contains(top.Reason, "held back") {
			t.Errorf("top reason %+v, want the new check's, %d times", top, held)
		}
	})

	if after := checksums(t, dir); !equalSums(before, after) {
		t.Fatalf("diff changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// copyTree copies a directory's files.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if strings.HasPrefix(d.Name(), "warehouse.db") {
			return nil // a run of the example in place
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checksums maps every file under dir (except the variants written by
// the test) to the SHA-256 of its content.
func checksums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch rel {
		case "refactor.yaml", "formula.yaml", "check.yaml":
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		sums[filepath.ToSlash(rel)] = hex.EncodeToString(h[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func equalSums(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// queryInts runs queries that each return one integer on a copy of a
// SQLite database, so that not even its -shm file is touched.
func queryInts(t *testing.T, dir, name string, queries ...string) []int64 {
	t.Helper()
	cp := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(filepath.Join(dir, name+suffix))
		if err != nil {
			if suffix != "" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		write(t, filepath.Join(cp, name+suffix), string(data))
	}
	conn, err := sql.Open("sqlite", filepath.Join(cp, name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := make([]int64, len(queries))
	for i, q := range queries {
		if err := conn.QueryRow(q).Scan(&out[i]); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return out
}
